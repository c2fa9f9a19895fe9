"""The legacy speaker probes (``speaker_linear_utter_libri`` / ``speaker_linear_frame_libri``): head output and
loss equal to the ORIGINAL experts' forward, the split lists drawn as the original ``SpeakerDataset`` draws them
(fixture from tests/oracle/make_probe_fixtures.py), bad layouts, and a few training steps on real LibriSpeech
recordings through ``s3prl downstream train``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

from s3prl.cli import main
from s3prl.downstream import tasks
from s3prl.downstream.corpora import libri_speaker_probe
from s3prl.downstream.corpora._common import CorpusLayoutError
from s3prl.downstream.tasks import probes

FIXTURE = torch.load(Path(__file__).parent / "fixtures" / "probes_oracle.pt", weights_only=True)
LIBRI = Path(os.environ.get("S3PRL_TEST_DATA", "/nonexistent")) / "librispeech_test_other_mini"


def _head(pooling, count_padding=False):
    sd = FIXTURE["state_dict"]
    head = probes.LinearProbe(sd["linear.weight"].shape[1], sd["linear.weight"].shape[0], pooling, count_padding)
    head.load_state_dict(sd)
    return head


def _batch(name):
    """The padded batch and lengths the original was given (``frame_equal``: the utterances of 4+ frames, cut to 4)."""
    feats = FIXTURE["features"]
    if name == "frame_equal":
        feats = [f[:4] for f in feats if len(f) >= 4]
    assert [len(f) for f in feats] == FIXTURE[name]["lengths"]
    return pad_sequence(feats, batch_first=True), torch.tensor([len(f) for f in feats])


def test_utterance_probe_equals_original():
    case = FIXTURE["utter"]
    x, lengths = _batch("utter")
    head = _head("mean")
    logits = head(x, lengths)
    torch.testing.assert_close(logits, case["logits"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(head.loss(logits, case["labels"]), case["loss"], rtol=1e-5, atol=1e-6)
    acc = (head.predict(logits) == case["labels"]).float().tolist()
    assert acc == case["acc"]


@pytest.mark.parametrize("name", ["frame", "frame_equal"])
def test_frame_probe_equals_original(name):
    case = FIXTURE[name]
    x, lengths = _batch(name)
    original = _head(None, count_padding=True)  # the original scores the zero-padded frames too
    logits = original(x, lengths)
    torch.testing.assert_close(logits, case["logits"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(original.loss(logits, case["labels"], lengths), case["loss"], rtol=1e-5, atol=1e-6)
    ds = probes.Downstream(_head(None))
    predicted = probes.frame_predict(ds, x, lengths)
    assert torch.cat([p == y for p, y in zip(predicted, case["labels"])]).float().tolist() == case["acc"]
    ours = probes.frame_loss(ds, x, lengths, case["labels"])  # real frames only
    frames = torch.cat([lg[:n] for lg, n in zip(logits, lengths)])
    truth = torch.cat([torch.full((int(n),), int(y)) for n, y in zip(lengths, case["labels"])])
    torch.testing.assert_close(ours, torch.nn.functional.cross_entropy(frames, truth))
    if name == "frame_equal":  # no padding: the same loss as the original
        torch.testing.assert_close(ours, case["loss"], rtol=1e-5, atol=1e-6)
    else:
        assert abs(ours.item() - case["loss"].item()) > 1e-3  # the padded frames change it


def _layout(tmp_path, uids, train, test):
    root, lists = tmp_path / "LibriSpeech", tmp_path / "lists"
    for u in uids:
        s, c, _ = u.split("-")
        folder = root / "train-clean-100" / s / c
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{u}.flac").write_bytes(b"")  # the reader only looks at names
    lists.mkdir()
    (lists / "train_split.txt").write_text("".join(u + "\n" for u in train))
    (lists / "test_split.txt").write_text("".join(u + "\n" for u in test))
    return str(root), str(lists)


def test_splits_and_classes_equal_original(tmp_path):
    sp = FIXTURE["speaker_splits"]
    root, lists = _layout(tmp_path, sp["uids"], sp["train_list"], sp["test_list"])
    got = libri_speaker_probe.load(root, lists)
    assert {k: [ex.uid for ex in v] for k, v in got.items()} == sp["result"]
    for split in got.values():
        for ex in split:
            assert ex.label == sp["speaker2idx"][ex.uid.split("-")[0]]
    task = tasks.get("speaker_linear_utter_libri")
    task.load({"root": root, "split_dir": lists})
    assert task.count_classes(got["train"]) == len(sp["speaker2idx"])  # every speaker of the corpus, as the original


def test_bad_layouts(tmp_path):
    sp = FIXTURE["speaker_splits"]
    root, lists = _layout(tmp_path, sp["uids"], sp["train_list"] + ["999-1-0001"], sp["test_list"])
    with pytest.raises(CorpusLayoutError, match="999-1-0001"):
        libri_speaker_probe.load(root, lists)
    Path(lists, "train_split.txt").write_text("2-100-0000\n" + "".join(u + "\n" for u in sp["train_list"]))
    with pytest.raises(ValueError, match="speaker\\(s\\) 2 have fewer than 2"):
        libri_speaker_probe.load(root, lists)
    Path(lists, "test_split.txt").unlink()
    with pytest.raises(CorpusLayoutError, match="test_split.txt"):
        libri_speaker_probe.load(root, lists)
    with pytest.raises(ValueError, match="task.split_dir"):
        libri_speaker_probe.load(root, None)


@pytest.mark.skipif(not LIBRI.is_dir(), reason="needs $S3PRL_TEST_DATA/librispeech_test_other_mini")
@pytest.mark.parametrize("task", ["speaker_linear_utter_libri", "speaker_linear_frame_libri"])
def test_train_on_real_recordings(task, tmp_path):
    """A few steps through the CLI on real LibriSpeech: 3 train + 1 test utterances of 4 speakers (the classes are
    all 10 speakers found under the root, as the original counts them)."""
    files = sorted(p.stem for p in LIBRI.rglob("*.flac"))
    by_speaker: dict[str, list[str]] = {}
    for u in files:
        by_speaker.setdefault(u.split("-")[0], []).append(u)
    chosen = sorted(by_speaker)[:4]
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "train_split.txt").write_text("".join(u + "\n" for s in chosen for u in by_speaker[s][:3]))
    (lists / "test_split.txt").write_text("".join(by_speaker[s][3] + "\n" for s in chosen))
    exp = tmp_path / "exp"
    opts = (f"task.root={LIBRI},,task.split_dir={lists},,data.num_workers=0,,train.total_steps=3,,"
            "train.eval_step=3,,train.save_step=3,,train.log_step=1,,train.lr=0.01")
    assert main(["downstream", "train", "-u", "fbank", "-d", task, "-p", str(exp), "-o", opts]) == 0
    result = json.loads((exp / "results.json").read_text())
    metric = "accuracy" if task.endswith("utter_libri") else "frame_accuracy"
    assert result["metric"] == metric and 0.0 <= result["metrics"][metric] <= 1.0
    state = torch.load(next(exp.glob("*.ckpt")), map_location="cpu", weights_only=False)
    weights = [v for k, v in _flatten(state) if k.endswith("linear.weight")]
    assert weights and weights[0].shape[0] == len(by_speaker)  # 10 classes


def _flatten(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flatten(v, f"{prefix}{k}.")
    elif torch.is_tensor(obj):
        yield prefix.rstrip("."), obj


# ------------------------------------------------------------------------------------------------
# phone probes
# ------------------------------------------------------------------------------------------------

PHONE = FIXTURE["phone"]
_BUILD = {"phone_linear": lambda d: probes.LinearProbe(d, 41, pooling=None),
          "phone_1hidden": lambda d: probes.OneHiddenProbe(d, 41, hidden_size=32),
          "phone_linear_concat": lambda d: probes.ConcatProbe(d, 41, 9),
          "phone_linear_concat3": lambda d: probes.ConcatProbe(d, 41, 3)}


@pytest.mark.parametrize("model", sorted(_BUILD))
@pytest.mark.parametrize("batch", ["same_rate", "half_rate"])
def test_phone_probe_equals_original(model, batch):
    """Loss and logits of the original experts (pad, match length to the alignments, model, cross-entropy)."""
    b, want = PHONE["batches"][batch], PHONE["models"][model]["results"][batch]
    head = _BUILD[model](b["features"][0].shape[1])
    head.load_state_dict(PHONE["models"][model]["state_dict"])
    head.eval()
    ds = probes.Downstream(head)
    x = pad_sequence(b["features"], batch_first=True)
    lengths = torch.tensor([len(f) for f in b["features"]])
    labels = [probes.libri_phone_probe.FramePhones(tuple(y.tolist())) for y in b["labels"]]
    loss = probes.phone_loss(ds, x, lengths, labels)
    torch.testing.assert_close(loss, want["loss"], rtol=1e-5, atol=1e-6)
    target_len = max(len(y) for y in labels)
    torch.testing.assert_close(head(probes.match_length(x, target_len)), want["logits"], rtol=1e-5, atol=1e-6)
    # scoring: the original's per-frame hits, from the same logits fitted to each utterance
    hits = [want["logits"][i, :len(y)].argmax(-1) == torch.tensor(y.ids) for i, y in enumerate(labels)]
    assert torch.cat(hits).float().tolist() == want["acc"]
    assert [float(h.float().mean()) for h in hits] == pytest.approx(want["sample_wise"])


def test_phone_predict_at_alignment_rate():
    """Predictions at a 20 ms upstream are repeated to 10 ms and fitted to each utterance's frames; for a
    frame-wise head they equal the original's on the same batch (it repeats the features, then cuts/pads)."""
    b, want = PHONE["batches"]["half_rate"], PHONE["models"]["phone_linear"]["results"]["half_rate"]
    ds = probes.phone_linear(b["features"][0].shape[1], 41)
    ds.head.load_state_dict(PHONE["models"]["phone_linear"]["state_dict"])
    task = tasks.get("phone_linear")
    task.configure(ds, task.bind({}, 320))
    assert ds.head.label_factor == 2
    x = pad_sequence(b["features"], batch_first=True)
    predicted = probes.phone_predict(ds, x, torch.tensor([len(f) for f in b["features"]]))
    examples = [probes.Example(f"u{i}", "", probes.libri_phone_probe.FramePhones(tuple(y.tolist())))
                for i, y in enumerate(b["labels"])]
    got = probes.phone_score(dict(zip([e.uid for e in examples], predicted)), examples)
    # the original's numbers wherever an utterance's own frames reach (the last id repeats beyond them)
    fitted = [probes.fit_ids(p, len(e.label)) for p, e in zip(predicted, examples)]
    truth = torch.cat([torch.tensor(e.label.ids) for e in examples])
    assert got["frame_accuracy"] == pytest.approx(float((torch.cat(fitted) == truth).float().mean()))
    for p, i in zip(predicted, range(len(examples))):
        n = len(p)
        assert torch.equal(p[:min(n, len(examples[i].label))], want["logits"][i, :min(n, len(examples[i].label))]
                           .argmax(-1))


def test_phone_splits_equal_original(tmp_path):
    sp = FIXTURE["phone_splits"]
    root, lists = _layout(tmp_path, sp["uids"], sp["train_list"], sp["test_list"])
    Path(lists, "converted_aligned_phones.txt").write_text(sp["alignment"])
    got = probes.libri_phone_probe.load(root, lists)
    assert {k: {ex.uid: list(ex.label.ids) for ex in v} for k, v in got.items()} == sp["result"]
    Path(lists, "converted_aligned_phones.txt").write_text(sp["alignment"].replace(" 3 ", " 41 ", 1))
    with pytest.raises(ValueError, match="outside 0..40"):
        probes.libri_phone_probe.load(root, lists)
    Path(lists, "converted_aligned_phones.txt").write_text(sp["alignment"].split("\n", 1)[1])
    with pytest.raises(CorpusLayoutError, match="without alignment"):
        probes.libri_phone_probe.load(root, lists)
    with pytest.raises(ValueError, match="task.phone_dir"):
        probes.libri_phone_probe.load(root, "")


@pytest.mark.skipif(not LIBRI.is_dir(), reason="needs $S3PRL_TEST_DATA/librispeech_test_other_mini")
@pytest.mark.parametrize("task", ["phone_linear", "phone_1hidden", "phone_linear_concat"])
def test_phone_train_on_real_recordings(task, tmp_path):
    """A few steps through the CLI on real LibriSpeech audio. STAND-IN labels (no forced alignments ship with the
    test data): class 1 for 10 ms frames louder than the utterance's median energy, else 0."""
    import numpy as np
    import soundfile as sf

    files = sorted(LIBRI.rglob("*.flac"))[:12]
    lists = tmp_path / "phones"
    lists.mkdir()
    lines = []
    for path in files:
        audio, _ = sf.read(path)
        frames = len(audio) // 160
        energy = (audio[: frames * 160].reshape(frames, 160) ** 2).mean(axis=1)
        lines.append(path.stem + " " + " ".join(str(int(e > np.median(energy))) for e in energy))
    (lists / "converted_aligned_phones.txt").write_text("\n".join(lines) + "\n")
    (lists / "train_split.txt").write_text("".join(p.stem + "\n" for p in files[:9]))
    (lists / "test_split.txt").write_text("".join(p.stem + "\n" for p in files[9:]))
    exp = tmp_path / "exp"
    opts = (f"task.root={LIBRI},,task.phone_dir={lists},,data.num_workers=0,,train.total_steps=3,,"
            "train.eval_step=3,,train.save_step=3,,train.log_step=1,,train.lr=0.01")
    assert main(["downstream", "train", "-u", "fbank", "-d", task, "-p", str(exp), "-o", opts]) == 0
    result = json.loads((exp / "results.json").read_text())
    assert result["metric"] == "frame_accuracy" and 0.0 <= result["metrics"]["frame_accuracy"] <= 1.0
    assert {"frame_accuracy", "utterance_mean_accuracy"} <= set(result["metrics"])
