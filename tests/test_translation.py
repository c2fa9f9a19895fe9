"""Speech translation (``-d speech_translation``): parity with the original expert on fairseq 0.12.2 (fixture from
tests/oracle/make_translation_fixtures.py: same weights and features -> same logits, losses, beam-search
hypotheses and sentencepiece vocabulary), the end-to-end run through ``s3prl downstream train`` / ``evaluate`` on a
synthesized fairseq-style tsv corpus, and the bad-input errors. BLEU itself equals the original's metric code in
tests/test_bleu.py."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("sentencepiece")
pytest.importorskip("sacrebleu")

from s3prl.cli import main  # noqa: E402
from s3prl.decode.seq2seq import beam_search  # noqa: E402
from s3prl.downstream import tasks  # noqa: E402
from s3prl.downstream.corpora import CorpusLayoutError  # noqa: E402
from s3prl.downstream.s2t_transformer import S2TConfig, S2TTransformer  # noqa: E402
from s3prl.downstream.tasks import translation  # noqa: E402
from s3prl.text.subword import SubwordVocabulary, train_sentencepiece  # noqa: E402
from s3prl.train import TrainConfig, schedule  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "translation_oracle.pt"
ORACLE_TGT = ["Hallo Welt, wie geht es dir?", "Das ist ein kleiner Test.", "Guten Morgen!", "Wir sehen uns morgen.",
              "Ein Haus am See."]
ORACLE_SRC = ["hello world how are you", "this is a small test", "good morning", "see you tomorrow",
              "a house by the lake"]


@pytest.fixture(scope="module")
def oracle():
    return torch.load(FIXTURE, weights_only=False)


def oracle_downstream(oracle) -> translation.TranslationDownstream:
    """Our head with the original expert's weights (its small widths), vocabularies trained here on the same text."""
    small = oracle["small"]
    model = dict(embed_dim=small["encoder_embed_dim"], ffn_dim=small["encoder_ffn_embed_dim"],
                 heads=small["encoder_attention_heads"], conv_channels=small["conv_channels"])
    tgt, src = train_sentencepiece(ORACLE_TGT), train_sentencepiece(ORACLE_SRC)
    record = dict(tgt_model=tgt, tgt_pieces=None, src_model=src, src_pieces=None, use_asr=True, model=model,
                  tgt_lang="de", asr_weight=0.3, label_smoothing=0.1, beam=20, max_len_a=0, max_len_b=60,
                  upstream_rate=-1, downsample_method="drop", feature_rate=160)
    record["tgt_pieces"] = SubwordVocabulary(tgt).symbols[4:]
    record["src_pieces"] = SubwordVocabulary(src).symbols[4:]
    ds = translation.TranslationDownstream(oracle["input_dim"], record)
    ds.load_state_dict(translation.from_original_state_dict(oracle["state_dict"]))
    return ds.eval()


def batch(oracle):
    feats = oracle["features"]
    return torch.nn.utils.rnn.pad_sequence(feats, batch_first=True), torch.tensor([len(f) for f in feats])


def labels(ds, oracle):
    return [translation.Translation(ds.tgt.decode(ds.tgt.encode(t)), tuple(ds.tgt.encode(t)), s,
                                    tuple(ds.src.encode(s)), ds.record)
            for t, s in zip(oracle["tgt_text"], oracle["src_text"])]


def test_vocabularies_trained_here_equal_the_originals(oracle):
    ds = oracle_downstream(oracle)
    assert ds.tgt.symbols == oracle["tgt_dict"]
    assert ds.src.symbols + ["<blank>"] == oracle["asr_dict"]  # the original appends the CTC blank
    for b, text in enumerate(oracle["tgt_text"]):
        ids = oracle["target"][b]
        assert ds.tgt.encode(text) == ids[ids != 1].tolist()  # the original's tokenizer path, pad removed
    for b, text in enumerate(oracle["src_text"]):
        n = int(oracle["asr_target_lengths"][b])
        assert ds.src.encode(text) == oracle["asr_target"][b, :n].tolist()  # ends with </s>, as the original


def test_logits_and_losses_equal_the_original_expert(oracle):
    ds = oracle_downstream(oracle)
    x, lengths = batch(oracle)
    with torch.no_grad():
        logits, memory, _ = ds.head(x, lengths, oracle["prev_output_tokens"])
        assert (memory.transpose(0, 1) - oracle["encoder_out"]).abs().max() <= 1e-5
        assert (logits - oracle["logits"]).abs().max() <= 1e-5
        loss = translation.translation_loss(ds, x, lengths, labels(ds, oracle))
    assert float(loss) == pytest.approx(oracle["loss"], abs=1e-5, rel=1e-6)
    st, _ = translation.label_smoothed_nll(logits, oracle["target"], 0.1)
    assert float(st) == pytest.approx(oracle["st_loss"], abs=1e-4, rel=1e-6)
    assert oracle["asr_loss"] > 1.0  # the fixture's CTC term is feasible (not zeroed): it is tested in `loss`
    ds.record = {**ds.record, "use_asr": False}
    asr_head, ds.asr_head = ds.asr_head, None
    with torch.no_grad():
        st_only = translation.translation_loss(ds, x, lengths, labels(ds, oracle))
    ds.asr_head = asr_head
    assert float(st_only) == pytest.approx(oracle["st_loss"] / 3, rel=1e-6)
    assert float(loss) == pytest.approx((0.7 * oracle["st_loss"] + 0.3 * oracle["asr_loss"]) / 3, rel=1e-6)


@pytest.mark.parametrize("beam", [20, 3])
def test_beam_search_equals_fairseq_sequence_generator(oracle, beam):
    ds = oracle_downstream(oracle)
    x, lengths = batch(oracle)
    memory, padding = ds.head.encoder(x, lengths)
    rows = torch.arange(x.size(0)).repeat_interleave(beam)
    state = {"m": memory.index_select(1, rows), "p": padding.index_select(0, rows)}
    cache = [{} for _ in ds.head.decoder.layers]

    def step(tokens):
        return torch.log_softmax(ds.head.decoder(tokens, state["m"], state["p"], cache)[:, -1], dim=-1)

    def reorder(index):
        for layer in cache:
            for part in layer.values():
                part["k"], part["v"] = part["k"][index], part["v"][index]
        state["m"], state["p"] = state["m"][:, index], state["p"][index]

    with torch.no_grad():
        ours = beam_search(step, reorder, x.size(0), beam, 60, 2, 1, 3)
    for got, want in zip(ours, oracle[f"beam{beam}"]):
        assert [tokens for _, tokens in got] == [tokens for _, tokens in want]  # every finished hypothesis, ranked
        assert [s for s, _ in got] == pytest.approx([s for s, _ in want], abs=1e-5)


def test_predictions_and_text_equal_the_original_expert(oracle):
    ds = oracle_downstream(oracle)
    x, lengths = batch(oracle)
    hyps = translation.translation_predict(ds, x, lengths)
    assert [h.text for h in hyps] == oracle["hyps"]
    assert [ex.text for ex in labels(ds, oracle)] == oracle["refs"]
    # greedy CTC transcripts: the original decodes every frame of the padded batch, so a shorter utterance gets
    # the padding frames' symbols appended; here only valid frames are decoded (the same for the longest one,
    # a prefix of the original's otherwise, and independent of the batch)
    assert hyps[0].asr == oracle["asr_hyps"][0] and int(lengths[0]) == x.size(1)
    assert all(theirs.startswith(h.asr) for h, theirs in zip(hyps, oracle["asr_hyps"]))
    for b, n in enumerate(lengths.tolist()):
        alone = translation.translation_predict(ds, x[b : b + 1, :n], lengths[b : b + 1])[0]
        assert alone == hyps[b]


def test_the_original_defaults(oracle):
    task = tasks.get("speech_translation")
    assert task.options["beam"] == 20 and task.options["max_len_b"] == 400 and task.options["label_smoothing"] == 0.1
    assert task.options["asr_weight"] == 0.3 and task.options["spm_type"] == "char" and task.metric == "bleu"
    assert task.train["gradient_accumulate_steps"] == 8 and task.train["total_steps"] == 32000
    cfg = S2TConfig(input_dim=80, vocab_size=len(oracle["tgt_dict"]))
    model = S2TTransformer(cfg)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    names = translation.from_original_state_dict({k: None for k in oracle["full_shapes"] if k.startswith("model.")})
    shapes = {k[len("head."):]: oracle["full_shapes"]["model." + k[len("head."):]] for k in names}
    assert ours == shapes  # the full-size original (512 wide, 8 heads, 1024 conv channels, 3 + 3 layers)
    factor = schedule(TrainConfig(scheduler="sqrt_decay", warmup_steps=100, total_steps=1000))
    assert factor(0) == 0.0 and factor(50) == 0.5 and factor(400) == pytest.approx(1 / math.sqrt(400))


@pytest.mark.parametrize("method", ["drop", "concat", "average"])
def test_downsampling_as_the_original_per_utterance(oracle, method):
    """``upstream_rate`` 480 over 160-sample features: every utterance as the original's ``downsample`` computes it
    on the unpadded features (drop: every 3rd frame; concat / average: groups of 3, the last one zero-padded)."""
    ds = oracle_downstream(oracle)
    ds.record = {**ds.record, "upstream_rate": 480, "downsample_method": method}
    ds.ratio = 3
    feats = [torch.randn(n, 4) for n in (10, 7, 3)]
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True, padding_value=5.0)  # garbage past the ends
    out, lengths = ds.inputs(x, torch.tensor([10, 7, 3]))
    for b, f in enumerate(feats):
        grouped = torch.nn.functional.pad(f, (0, 0, 0, (-len(f)) % 3)).reshape(-1, 3, 4)
        want = {"drop": f[::3], "concat": grouped.flatten(1), "average": grouped.mean(1)}[method]
        assert int(lengths[b]) == len(want)
        assert torch.allclose(out[b, : len(want)], want)


# ------------------------------------------------------------------------------------------------
# end to end on a synthesized corpus
# ------------------------------------------------------------------------------------------------

SR = 16000
WORDS = {"yes": "Ja", "no": "Nein", "up": "Hoch", "go": "Geh"}
SMALL = "task.model={embed_dim: 16, ffn_dim: 32, heads: 2, conv_channels: 16}"


def word_audio(words, seed):
    rng = np.random.default_rng(seed)
    parts = []
    for w in words:
        t = np.arange(int(0.2 * SR)) / SR
        f0 = 150.0 * 1.4 ** list(WORDS).index(w)
        parts += [0.3 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal(t.shape), np.zeros(int(0.05 * SR))]
    return np.concatenate(parts).astype(np.float32)


def corpus(root: Path, per_split=(8, 4, 4), config=True) -> Path:
    """fairseq S2T tsv splits ("translations" of tone-word sequences) and a config.yaml without a sentencepiece
    model (the task trains one)."""
    rng = np.random.default_rng(0)
    (root / "clips").mkdir(parents=True)
    for s, (split, count) in enumerate(zip(("train", "dev", "test"), per_split)):
        rows = []
        for u in range(count):
            words = [list(WORDS)[i] for i in rng.integers(0, len(WORDS), 2)]
            uid, wav = f"{split}{u}", word_audio(words, 100 * s + u)
            sf.write(str(root / "clips" / f"{uid}.wav"), wav, SR)
            rows.append([uid, f"{uid}.wav", len(wav), " ".join(words), " ".join(WORDS[w] for w in words) + "."])
        with open(root / f"{split}.tsv", "w", newline="") as f:
            w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n")
            w.writerow(["id", "audio", "n_frames", "src_text", "tgt_text"])
            w.writerows(rows)
    if config:
        (root / "config.yaml").write_text("audio_root: clips\nuse_audio_input: true\n")
    return root


def run(*argv):
    assert main(["downstream", *argv]) == 0


def options(root, cache, extra=""):
    base = (f"task.root={root},,data.cache_dir={cache},,data.num_workers=0,,train.total_steps=4,,train.eval_step=2,,"
            "train.log_step=2,,train.save_step=2,,data.batch_seconds=4.0,,train.lr=0.001,,train.scheduler=constant,,"
            f"train.warmup_steps=0,,train.gradient_accumulate_steps=1,,task.beam=3,,task.max_len_b=12,,{SMALL}")
    return base + (",," + extra if extra else "")


@pytest.mark.parametrize("asr", [False, True])
def test_trains_tests_and_evaluates_through_the_runner(tmp_path, asr):
    root, exp = corpus(tmp_path / "st"), tmp_path / "exp"
    run("train", "-u", "fbank", "-d", "speech_translation", "-p", str(exp), "-o",
        options(root, tmp_path / "cache", f"task.use_asr={str(asr).lower()}"))
    result = json.loads((exp / "results.json").read_text())
    assert result["metric"] == "bleu" and 0.0 <= result["metrics"]["bleu"] <= 100.0
    assert ("asr_cer" in result["metrics"]) == asr
    rows = (exp / "output-st-test.tsv").read_text().splitlines()
    assert rows[0] == "utt_id\thyp\tref" and len(rows) == 5 and rows[1].split("\t")[2] in {
        f"{a} {b}." for a in WORDS.values() for b in WORDS.values()}
    assert (exp / "spm-tgt_text.model").is_file() and (exp / "spm-src_text.model").is_file() == asr
    # the written files score the same with `s3prl score bleu`
    from s3prl.cli.score_bleu import pair_sentences
    from s3prl.metrics.bleu import corpus_bleu

    refs, hyps, _ = pair_sentences(str(exp / "test-ref.ark"), str(exp / "test-hyp.ark"), False)
    assert corpus_bleu(hyps, refs)["bleu"] == pytest.approx(result["metrics"]["bleu"])
    ckpt = torch.load(exp / "dev-best.ckpt", weights_only=True)
    assert isinstance(ckpt["Classes"]["tgt_model"], bytes)  # the vocabulary travels in the checkpoint
    run("evaluate", "-e", str(exp), "-t", "dev", "-o", "task.beam=2,,task.max_len_b=3")  # decoding options apply
    assert json.loads((exp / "results_dev.json").read_text())["split"] == "dev"
    hyps = [row.split("\t")[1] for row in (exp / "output-st-dev.tsv").read_text().splitlines()[1:]]
    assert len(hyps) == 4 and all(len(h.replace("<unk>", "?").replace(" ", "")) <= 3 for h in hyps)  # char pieces


def test_the_head_learns_the_synthesized_translations(tmp_path):
    """Overfitting 8 utterances: the teacher-forced loss falls far below its start (the model trains)."""
    root = corpus(tmp_path / "st", per_split=(8, 2, 2))
    task = tasks.get("speech_translation")
    splits = task.load(task.bind({"root": str(root), "model": {"embed_dim": 32, "ffn_dim": 64, "heads": 2,
                                                               "conv_channels": 32}}, 160))
    ds = task.build(23, task.count_classes(splits["train"]))
    torch.manual_seed(0)
    feats = [torch.randn(40 + 5 * i, 23) for i in range(8)]
    x, lengths = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True), torch.tensor([len(f) for f in feats])
    labels_ = [ex.label for ex in splits["train"]]
    optimizer = torch.optim.Adam(ds.parameters(), lr=2e-3)
    losses = []
    for _ in range(60):
        loss = translation.translation_loss(ds.train(), x, lengths, labels_)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.3 * losses[0]


# ------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------


def load(root, **options):
    task = tasks.get("speech_translation")
    return task.load(task.bind({"root": str(root), **options}, 160))


def test_missing_sentencepiece_model_is_a_clear_error(tmp_path):
    root = corpus(tmp_path / "st", per_split=(2, 1, 1))
    with pytest.raises(FileNotFoundError, match=r"sentencepiece model \(task.spm_model\) .*nope.model.* not found"):
        load(root, spm_model=str(tmp_path / "nope.model"))
    (root / "config.yaml").write_text("audio_root: clips\nbpe_tokenizer:\n  bpe: sentencepiece\n"
                                      "  sentencepiece_model: spm-tgt_text.model\n")
    with pytest.raises(FileNotFoundError, match=r"from .*config.yaml.*spm-tgt_text.model.* not found"):
        load(root)
    (root / "bad.model").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="is not a sentencepiece model"):
        load(root, spm_model=str(root / "bad.model"))


def test_layout_errors_name_the_problem(tmp_path):
    with pytest.raises(CorpusLayoutError, match="folder .* not found"):
        load(tmp_path / "absent")
    root = corpus(tmp_path / "st", per_split=(2, 1, 1))
    (root / "dev.tsv").write_text("id\taudio\ttgt_text\nx\tx.wav\thallo\n")
    with pytest.raises(CorpusLayoutError, match="no column.*n_frames"):
        load(root)
    (root / "dev.tsv").write_text("id\taudio\tn_frames\ttgt_text\nx\tmissing.wav\t10\thallo\n")
    with pytest.raises(CorpusLayoutError, match="1 of 1 listed files are missing"):
        load(root)
    root = corpus(tmp_path / "st2", per_split=(2, 1, 1))
    with pytest.raises(ValueError, match="task.model must be a mapping"):
        load(root, model={"layers": 2})
    with pytest.raises(ValueError, match="embed_dim 30 must be even and divisible by heads 8"):
        load(root, model={"embed_dim": 30})
    with pytest.raises(ValueError, match="downsample_method must be drop, concat or average"):
        load(root, downsample_method="max")


def test_asr_multitask_needs_transcripts(tmp_path):
    root = corpus(tmp_path / "st", per_split=(2, 1, 1))
    for split in ("train", "dev", "test"):
        rows = (root / f"{split}.tsv").read_text().splitlines()
        (root / f"{split}.tsv").write_text("\n".join("\t".join(r.split("\t")[:3] + r.split("\t")[4:])
                                                     for r in rows) + "\n")
    assert load(root)["train"][0].label.src_text is None
    with pytest.raises(ValueError, match="use_asr needs a src_text column"):
        load(root, use_asr=True)


def test_missing_extra_names_it(tmp_path, monkeypatch):
    import importlib.util

    root = corpus(tmp_path / "st", per_split=(2, 1, 1))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sentencepiece" else real(name, *a))
    with pytest.raises(RuntimeError, match=r"needs sentencepiece: .*pip install 's3prl\[st\]'"):
        load(root)


def test_missing_task_root_is_named():
    with pytest.raises(ValueError, match="needs root"):
        tasks.get("speech_translation").load({})
