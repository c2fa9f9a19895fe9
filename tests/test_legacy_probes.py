"""The legacy ``mosei`` and ``voxceleb2_ge2e`` downstreams against the ORIGINAL code.

Fixture: tests/fixtures/legacy_probes_oracle.pt, written by tests/oracle/make_legacy_probe_fixtures.sh (the
original experts, models, GE2E loss and EER run in the s3prl-oracle venv).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

from s3prl.cli import main
from s3prl.downstream import metrics, tasks
from s3prl.downstream.corpora import mosei as mosei_corpus
from s3prl.downstream.corpora import voxceleb_ge2e
from s3prl.downstream.corpora._common import CorpusLayoutError
from s3prl.downstream.data import Example
from s3prl.downstream.tasks import legacy

torch.set_num_threads(1)
FIXTURE = torch.load(Path(__file__).parent / "fixtures" / "legacy_probes_oracle.pt", weights_only=True)
ATOL = 1e-5


def _padded(features):
    return pad_sequence(features, batch_first=True), torch.tensor([len(f) for f in features])


# ---------------------------------------------------------------- mosei


def _mosei_head(classes, count_padding):
    sd = FIXTURE["mosei"]["heads"][classes]["state_dict"]
    head = legacy.MoseiHead(sd["connector.weight"].shape[1], classes, sd["connector.weight"].shape[0], count_padding)
    head.load_state_dict({"projector.weight": sd["connector.weight"], "projector.bias": sd["connector.bias"],
                          "classifier.weight": sd["model.linear.weight"], "classifier.bias": sd["model.linear.bias"]})
    return tasks.Downstream(head)


@pytest.mark.parametrize("classes", [3, 7])
@pytest.mark.parametrize("batch", ["padded", "equal"])
def test_mosei_head_equals_original(classes, batch):
    ref = FIXTURE["mosei"]["heads"][classes]["batches"][batch]
    x, lengths = _padded(ref["features"])
    ds = _mosei_head(classes, count_padding=True)
    logits = ds.head(x, lengths)
    assert torch.allclose(logits, ref["logits"], atol=ATOL)
    loss = legacy.MOSEI_CLASSIFICATION.loss(ds, x, lengths, ref["labels"])
    assert abs(float(loss.detach()) - float(ref["loss"])) <= ATOL
    guess = legacy.MOSEI_CLASSIFICATION.predict(ds, x, lengths)
    assert [float(g) for g in guess] == ref["predicted"]
    examples = [Example(str(i), "", int(y)) for i, y in enumerate(ref["labels"])]
    scores = legacy.mosei_score({str(i): g for i, g in enumerate(guess)}, examples)
    assert abs(scores["accuracy"] - ref["accuracy"]) <= 1e-6 and abs(scores["macro_f1"] - ref["macro_f1"]) <= 1e-9
    # ours (padding not counted) equals the original without padding, and differs with it
    ours = _mosei_head(classes, count_padding=False).head(x, lengths)
    assert torch.allclose(ours, ref["logits"], atol=ATOL) == (batch == "equal")


def test_macro_f1_against_a_hand_count():
    # F1 = 2TP / (2TP + FP + FN): class 0 (TP 1, FP 1, FN 1) 1/2, class 1 (TP 1, FP 1, FN 1) 1/2, class 2 (never
    # right) 0 -> mean 1/3; a class only guessed (3) counts too, with F1 0 -> the mean over 4 classes
    assert abs(legacy.macro_f1([0, 0, 1, 1, 2], [0, 1, 1, 2, 0]) - 1 / 3) < 1e-12
    assert abs(legacy.macro_f1([0, 0, 1, 1, 2, 2], [0, 1, 1, 2, 0, 3]) - (1 / 2 + 1 / 2 + 0 + 0) / 4) < 1e-12
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.RandomState(1)
    truth, guess = rng.randint(0, 5, 200).tolist(), rng.randint(0, 6, 200).tolist()
    assert abs(legacy.macro_f1(truth, guess) - sklearn.f1_score(truth, guess, average="macro")) < 1e-12


@pytest.mark.parametrize("num_class", [2, 3, 6, 7])
def test_mosei_label_table_equals_original(num_class, tmp_path):
    path = tmp_path / "CMU_MOSEI_Labels.csv"
    path.write_text(FIXTURE["mosei"]["csv"], encoding="latin-1")
    ours = mosei_corpus.read_labels(str(path), num_class)
    assert ours == {k: [tuple(r) for r in v] for k, v in FIXTURE["mosei"]["tables"][num_class].items()}


def _mosei_layout(tmp_path, per_split=4, seconds=0.5):
    import soundfile as sf

    root = tmp_path / "CMU_MOSEI"
    lines = [",file,index,start,end,label2a,label2b,label6,label7,split"]
    rng = np.random.RandomState(0)
    for s, split in enumerate(("train", "dev", "test")):
        (root / "Segmented_Audio" / split).mkdir(parents=True)
        for k in range(per_split):
            label = k % 2  # label2a: a low tone for 0, a high one for 1
            t = np.arange(int(16000 * seconds)) / 16000
            wav = 0.3 * np.sin(2 * np.pi * (200 if label == 0 else 1200) * t) + 0.01 * rng.randn(len(t))
            sf.write(root / "Segmented_Audio" / split / f"vid{s}_{k}.wav", wav, 16000)
            lines.append(f"{len(lines)},vid{s},{k},0.0,{seconds},{label},{label},0,{label},{s}")
    lines.append(f"{len(lines)},nofold,0,0.0,1.0,1,1,0,1,3")  # split 3: in no split, its audio never read
    (root / "CMU_MOSEI_Labels.csv").write_text("\n".join(lines) + "\n", encoding="latin-1")
    return root


def test_mosei_train_evaluate_through_runner(tmp_path):
    root = _mosei_layout(tmp_path)
    exp = tmp_path / "exp"
    opts = (f"task.root={root},,task.num_class=2,,data.num_workers=0,,train.total_steps=4,,train.eval_step=2,,"
            "train.save_step=2,,train.log_step=1,,train.lr=0.01,,train.gradient_accumulate_steps=1")
    assert main(["downstream", "train", "-u", "fbank", "-d", "mosei", "-p", str(exp), "-o", opts]) == 0
    result = json.loads((exp / "results.json").read_text())
    assert result["metric"] == "accuracy" and {"accuracy", "macro_f1"} <= set(result["metrics"])
    state = torch.load(exp / "dev-best.ckpt", map_location="cpu", weights_only=False)
    assert state["Downstream"]["head.classifier.weight"].shape == (2, 256)
    assert main(["downstream", "evaluate", "-e", str(exp), "-t", "test"]) == 0
    assert (exp / "test_predict.txt").is_file()


def test_mosei_bad_layouts(tmp_path):
    root = _mosei_layout(tmp_path, per_split=2)
    with pytest.raises(ValueError, match="num_class must be one of"):
        mosei_corpus.load(str(root), num_class=5)
    (root / "Segmented_Audio" / "dev" / "vid1_1.wav").unlink()
    with pytest.raises(CorpusLayoutError, match="Segmented_Audio/dev/vid1_1.wav"):
        mosei_corpus.load(str(root))
    (root / "bad.csv").write_text("file,index,split\nx,0,0\n")
    with pytest.raises(CorpusLayoutError, match="lacks column.*label7"):
        mosei_corpus.load(str(root), label_path=str(root / "bad.csv"), num_class=7)
    with pytest.raises(CorpusLayoutError, match="label table.*not found"):
        mosei_corpus.load(str(root), label_path=str(root / "none.csv"))
    # through the CLI: a clear message, exit code 2, no traceback
    assert main(["downstream", "train", "-u", "fbank", "-d", "mosei", "-p", str(tmp_path / "e"), "-o",
                 f"task.root={tmp_path / 'missing'}"]) != 0


# ---------------------------------------------------------------- voxceleb2_ge2e


@pytest.mark.parametrize("case", range(3))
def test_ge2e_loss_equals_original(case):
    ref = FIXTURE["ge2e"]["loss"][case]
    loss_fn = legacy.GE2ELoss(ref["w"], ref["b"])
    emb = ref["embeddings"].clone().requires_grad_(True)
    loss = loss_fn(emb)
    loss.backward()
    loss = loss.detach()
    assert abs(float(loss) - float(ref["loss"])) <= ATOL
    assert abs(float(loss_fn.w.grad) - float(ref["grad_w"])) <= ATOL
    assert abs(float(loss_fn.b.grad) - float(ref["grad_b"])) <= ATOL
    assert torch.allclose(emb.grad, ref["grad_embeddings"], atol=ATOL)


def _ge2e_downstream(agg):
    sd = FIXTURE["ge2e"]["models"][agg]["state_dict"]
    head = legacy.GE2EHead(sd["connector.weight"].shape[1], sd["connector.weight"].shape[0], agg)
    inner = "attention" if agg == "SAP" else "linear"
    src = "model.agg_method.sap_layer.W" if agg == "SAP" else "model.agg_method.linear"
    head.load_state_dict({"projector.weight": sd["connector.weight"], "projector.bias": sd["connector.bias"],
                          f"{inner}.weight": sd[f"{src}.weight"], f"{inner}.bias": sd[f"{src}.bias"]})
    loss = legacy.GE2ELoss(float(sd["objective.w"]), float(sd["objective.b"]), utter_number=3)
    return tasks.Downstream(head, loss)


@pytest.mark.parametrize("agg,batch", [("SAP", "padded"), ("SAP", "equal"), ("Mean", "equal")])
def test_ge2e_model_equals_original(agg, batch):
    ref = FIXTURE["ge2e"]["models"][agg]["batches"][batch]
    ds = _ge2e_downstream(agg)
    x, lengths = _padded(ref["features"])
    assert torch.allclose(ds.head.pooled(x, lengths), ref["pooled"], atol=ATOL)
    labels = torch.arange(len(lengths)) // 3  # speaker-major: M = 3 utterances of each speaker
    loss = legacy.GE2E_VERIFICATION.loss(ds, x, lengths, labels).detach()
    assert abs(float(loss) - float(ref["loss"])) <= ATOL
    half = len(lengths) // 2
    emb = ds.head(x, lengths)
    scores = torch.nn.functional.cosine_similarity(emb[:half], emb[half:2 * half], dim=-1)
    assert np.allclose(scores.tolist(), ref["scores"], atol=ATOL)


def test_ge2e_mean_differs_from_original_with_padding():
    """The original ``Mean`` also averages the first padded frame; ours takes the valid frames only."""
    ref = FIXTURE["ge2e"]["models"]["Mean"]["batches"]["padded"]
    x, lengths = _padded(ref["features"])
    pooled = _ge2e_downstream("Mean").head.pooled(x, lengths)
    longest = lengths == lengths.max()
    assert torch.allclose(pooled[longest], ref["pooled"][longest], atol=ATOL)  # no padding: equal
    assert not torch.allclose(pooled[~longest], ref["pooled"][~longest], atol=1e-3)


def test_ge2e_eer_equals_original():
    ref = FIXTURE["ge2e"]["eer"]
    assert abs(metrics.compute_eer(ref["labels"], ref["scores"])[0] - ref["eer"]) <= 1e-9


def test_ge2e_loss_rejects_batches_not_grouped_by_speaker():
    ds = _ge2e_downstream("SAP")
    x, lengths = torch.randn(6, 5, 12), torch.full((6,), 5)
    with pytest.raises(ValueError, match="M=3 consecutive utterances"):
        legacy.GE2E_VERIFICATION.loss(ds, x, lengths, torch.tensor([0, 1, 0, 1, 0, 1]))


def test_speaker_batch_sampler():
    """The original's windows: each epoch, speakers in a random order with M drawn utterances each; batch k holds
    speakers k .. k+N-1 of that order (cut at the end), every k but the last, in random order."""
    labels = [s for s in range(6) for _ in range(4 + s)]
    sampler = legacy.SpeakerBatchSampler(labels, speakers_per_batch=3, utter_number=3, seed=5)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 5
    groups = [[tuple(b[i:i + 3]) for i in range(0, len(b), 3)] for b in batches]
    drawn = {}
    for b in groups:
        for g in b:
            assert len({labels[i] for i in g}) == 1 and len(set(g)) == 3  # M distinct utterances of one speaker
            assert drawn.setdefault(labels[g[0]], g) == g  # drawn once per epoch: the same M in every window
    windows = [tuple(labels[g[0]] for g in b) for b in groups]
    # rebuild the epoch's speaker order from the windows: the first speaker is in one window only, at its head
    inner = {s for w in windows for s in w[1:]}
    by_head = {w[0]: w for w in windows}
    order = [next(w[0] for w in windows if w[0] not in inner)]
    while len(order) < 6:
        order.append(by_head[order[-1]][1])  # the window at speaker k holds speaker k + 1 next
    assert sorted(order) == list(range(6))
    assert sorted(windows) == sorted(tuple(order[k:k + 3]) for k in range(5))  # every k but the last, cut at the end
    assert batches == list(sampler)  # a function of (seed, epoch)
    sampler.set_epoch(1)
    assert list(sampler) != batches
    sampler.set_epoch(1, start=2)
    assert list(sampler) == sampler.epoch_batches(1)[2:] and len(sampler) == 3
    ranks = [legacy.SpeakerBatchSampler(labels, 3, 3, seed=5, num_replicas=2, rank=r) for r in range(2)]
    assert [len(list(r)) for r in ranks] == [2, 2] and not set(map(tuple, ranks[0])) & set(map(tuple, ranks[1]))
    with pytest.raises(ValueError, match="at least|>= 2 speakers"):
        legacy.SpeakerBatchSampler([0, 0, 0, 1], 2, 3)


def _tone(freq, seconds, seed):
    t = np.arange(int(16000 * seconds)) / 16000
    return 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * np.random.RandomState(seed).randn(len(t))


def _ge2e_layout(tmp_path, speakers=4, per_speaker=4):
    """VoxCeleb-style folders: vox1 dev (training + dev trial speakers), vox2 dev, vox1 test, and the lists."""
    import soundfile as sf

    def speaker_dir(base, spk, freq, n):
        for k in range(n):
            path = base / spk / f"vid{k % 2}" / f"{k:05d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, _tone(freq, 0.4 + 0.1 * k, hash((spk, k)) % 1000), 16000)

    vox1, vox2, test = tmp_path / "vox1_dev" / "wav", tmp_path / "vox2_dev" / "wav", tmp_path / "vox1_test" / "wav"
    for s in range(speakers):
        speaker_dir(vox1, f"id1{s:04d}", 150 + 200 * s, per_speaker)
    speaker_dir(vox2, "id00001", 1100, per_speaker)
    speaker_dir(vox1, "id19998", 300, 3)  # held-out (dev) speakers: fewer than M utterances is fine for them
    speaker_dir(vox1, "id19999", 900, 3)
    speaker_dir(test, "id20001", 250, 3)
    speaker_dir(test, "id20002", 1000, 3)
    (tmp_path / "dev_speaker_ids.txt").write_text("id19998\nid19999\n")
    (tmp_path / "dev_meta_data.txt").write_text("1 id19998/vid0/00000.wav id19998/vid1/00001.wav\n"
                                                "0 id19998/vid0/00000.wav id19999/vid0/00000.wav\n"
                                                "1 id19999/vid0/00002.wav id19999/vid1/00001.wav\n")
    (tmp_path / "veri_test.txt").write_text("1 id20001/vid0/00000.wav id20001/vid1/00001.wav\n"
                                            "0 id20001/vid0/00000.wav id20002/vid0/00000.wav\n"
                                            "0 id20001/vid0/00002.wav id20002/vid1/00001.wav\n"
                                            "1 id20002/vid0/00002.wav id20002/vid1/00001.wav\n")
    return {"root": vox1, "vox2_root": vox2, "dev_speakers": tmp_path / "dev_speaker_ids.txt",
            "dev_trials": tmp_path / "dev_meta_data.txt", "test_root": test, "test_trials": tmp_path / "veri_test.txt"}


def test_ge2e_reader(tmp_path):
    paths = {k: str(v) for k, v in _ge2e_layout(tmp_path).items()}
    splits, trials = voxceleb_ge2e.load_with_trials(**paths, utter_number=3)
    assert sorted({ex.label for ex in splits["train"]}) == list(range(5))  # 4 vox1 + 1 vox2, dev speakers held out
    assert not any("id1999" in ex.path for ex in splits["train"])
    assert all(ex.end == 8.0 for ex in splits["train"]) and all(ex.end == 8.2 for ex in splits["dev"])
    assert all(ex.end is None for ex in splits["test"])
    uids = {ex.uid for s in ("dev", "test") for ex in splits[s]}
    assert len(trials) == 7 and all(a in uids and b in uids for a, b, _ in trials)
    assert trials[0] == ("dev:id19998/vid0/00000.wav", "dev:id19998/vid1/00001.wav", 1)


def test_ge2e_bad_layouts(tmp_path):
    paths = {k: str(v) for k, v in _ge2e_layout(tmp_path).items()}
    with pytest.raises(CorpusLayoutError, match="fewer than utter_number=5"):
        voxceleb_ge2e.load_with_trials(**paths, utter_number=5)
    Path(paths["test_trials"]).write_text("1 id20001/vid0/00000.wav\n")
    with pytest.raises(ValueError, match="bad line in test trial list"):
        voxceleb_ge2e.load_with_trials(**paths, utter_number=3)
    Path(paths["test_trials"]).write_text("1 id20001/vid0/00000.wav id20001/vid9/00009.wav\n")
    with pytest.raises(CorpusLayoutError, match="id20001/vid9/00009.wav"):
        voxceleb_ge2e.load_with_trials(**paths, utter_number=3)
    with pytest.raises(ValueError, match="needs test_trials: pass -o task.test_trials"):
        tasks.get("voxceleb2_ge2e").load({"root": paths["root"], "dev_trials": paths["dev_trials"],
                                          "test_root": paths["test_root"]})


def test_ge2e_aggregation_option():
    task = tasks.get("voxceleb2_ge2e")
    ds = task.build(12, None)
    options = {**task.options, "utter_number": 4}
    task.configure(ds, options)
    assert ds.head.aggregation == "SAP" and ds.loss.utter_number == 4
    task.configure(ds, {**options, "agg_module": "Mean"})
    assert ds.head.aggregation == "Mean" and set(dict(ds.head.named_parameters())) == {
        "projector.weight", "projector.bias", "linear.weight", "linear.bias"}
    with pytest.raises(ValueError, match="task.agg_module must be SAP or Mean"):
        task.configure(ds, {**options, "agg_module": "LSTM"})


@pytest.mark.parametrize("agg", ["SAP", "Mean"])
def test_ge2e_train_evaluate_through_runner(agg, tmp_path):
    paths = _ge2e_layout(tmp_path)
    exp = tmp_path / "exp"
    opts = ",,".join(f"task.{k}={v}" for k, v in paths.items())
    opts += (f",,task.agg_module={agg},,task.utter_number=3,,task.speakers_per_batch=2,,data.num_workers=0,,train.total_steps=6,,"
             "train.eval_step=3,,train.save_step=3,,train.log_step=1,,train.warmup_steps=0")
    assert main(["downstream", "train", "-u", "fbank", "-d", "voxceleb2_ge2e", "-p", str(exp), "-o", opts]) == 0
    result = json.loads((exp / "results.json").read_text())
    assert result["metric"] == "EER" and 0.0 <= result["metrics"]["EER"] <= 1.0
    state = torch.load(exp / "dev-best.ckpt", map_location="cpu", weights_only=False)
    assert {"loss.w", "loss.b", "head.attention.weight" if agg == "SAP" else "head.linear.weight"} <= set(
        state["Downstream"])
    assert float(state["Downstream"]["loss.w"]) != 10.0  # w is learnt
    assert main(["downstream", "evaluate", "-e", str(exp), "-t", "dev"]) == 0
