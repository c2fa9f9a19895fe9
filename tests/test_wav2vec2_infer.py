"""``s3prl wav2vec2 infer`` / ``s3prl transcribe`` and the fine-tuned wav2vec 2.0 CTC model.

Fixture ``tests/fixtures/w2v_infer_oracle`` (``tests/oracle/make_w2v_infer_fixtures.py``): a tiny fine-tuned
checkpoint written by fairseq 0.12.2's Trainer, fairseq's emissions / viterbi transcripts of three synthetic
files (``dump.py``), and the ``--results-path`` files of fairseq's own ``examples/speech_recognition/infer.py``
with viterbi and with KenLM + lexicon decoding (the seed's flags).
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from s3prl.cli import main
from s3prl.wav2vec2.ctc_model import load_ctc
from s3prl.wav2vec2.featurize import read_audio
from s3prl.wav2vec2.infer import DecoderOptions, build_decoder, emissions

pytestmark = pytest.mark.usefixtures("one_thread")

FIX = os.path.join(os.path.dirname(__file__), "fixtures", "w2v_infer_oracle")
TOL = 1e-4
SEED_FLAGS = ["--task", "audio_finetuning", "--nbest", "1", "--criterion", "ctc", "--labels", "ltr",
              "--max-tokens", "4000000", "--post-process", "letter", "--gen-subset", "test"]


@pytest.fixture(scope="module")
def dump():
    return torch.load(os.path.join(FIX, "dump.pt"), weights_only=True)


@pytest.fixture(scope="module")
def model():
    return load_ctc(os.path.join(FIX, "ctc.pt"))


def data_folder(tmp_path) -> str:
    """The fixture's data folder with its manifest pointing at the copied audio."""
    data = str(tmp_path / "data")
    shutil.copytree(os.path.join(FIX, "data"), data)
    tsv = os.path.join(data, "test.tsv")
    with open(tsv) as f:
        text = f.read()
    with open(tsv, "w") as f:
        f.write(text.replace("@ROOT@", os.path.join(data, "audio"), 1))
    shutil.copy(os.path.join(FIX, "ctc.pt"), os.path.join(data, "ctc.pt"))
    return data


def fairseq_wer(folder: str) -> str:
    with open(os.path.join(FIX, folder, "log.txt")) as f:
        return next(line.strip() for line in f if line.startswith("WER:"))


def test_emissions_equal_fairseq(model, dump):
    """Each file alone: emissions (fairseq's get_logits) within 1e-4, viterbi transcripts identical."""
    wavs = [read_audio(os.path.join(FIX, "data", "audio", rel)) for rel in dump["files"]]
    for wav, expected, text in zip(wavs, dump["emissions"], dump["transcripts"]):
        with torch.no_grad():
            logits, frames = model(wav[None], torch.tensor([wav.numel()]))
        assert logits.shape[1:] == expected.shape and int(frames) == expected.shape[0]
        assert (logits[0] - expected).abs().max() <= TOL
        ids, _ = build_decoder(DecoderOptions(), model.vocabulary)(logits[0])
        assert model.vocabulary.words(model.vocabulary.string(ids)) == text
    # a padded batch gives every file its batch-size-1 emissions (fairseq's batch does not: GroupNorm on padding)
    batch = emissions(model, wavs)
    for got, expected in zip(batch, dump["emissions"]):
        assert (got - expected).abs().max() <= TOL
    assert any((b[: e.shape[0]] - e).abs().max() > 1e-3 for b, e in zip(dump["batch_emissions"], dump["emissions"]))


@pytest.mark.parametrize("decoder", ["viterbi", "kenlm"])
def test_infer_writes_fairseqs_files(tmp_path, capsys, decoder):
    """The seed's command line; the four result files equal fairseq infer.py's byte for byte, same WER."""
    if decoder == "kenlm":
        pytest.importorskip("flashlight.lib.text")
    data = data_folder(tmp_path)
    out = str(tmp_path / "results")
    extra = ["--w2l-decoder", "viterbi"] if decoder == "viterbi" else [
        "--w2l-decoder", "kenlm", "--lm-model", os.path.join(data, "lm.arpa"), "--lexicon",
        os.path.join(data, "lexicon.lst"), "--lm-weight", "2", "--word-score", "-1", "--sil-weight", "0",
        "--beam", "5"]
    rc = main(["wav2vec2", "infer", data, "--path", os.path.join(data, "ctc.pt"), "--results-path", out,
               "--quiet", "--cpu", *SEED_FLAGS, *extra])
    assert rc == 0
    stdout = capsys.readouterr().out
    assert fairseq_wer(f"infer_{decoder}") in stdout.splitlines()
    expected = sorted(n for n in os.listdir(os.path.join(FIX, f"infer_{decoder}")) if n != "log.txt")
    assert sorted(os.listdir(out)) == expected and len(expected) == 4
    for name in expected:
        with open(os.path.join(out, name), "rb") as a, open(os.path.join(FIX, f"infer_{decoder}", name), "rb") as b:
            assert a.read() == b.read(), name


def test_transcribe_cli(tmp_path, capsys, dump):
    files = [os.path.join(FIX, "data", "audio", rel) for rel in dump["files"]]
    assert main(["transcribe", "-k", os.path.join(FIX, "ctc.pt"), *files]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{f}\t{t}" for f, t in zip(files, dump["transcripts"])]


def _same_emissions(a, b) -> None:
    wav = read_audio(os.path.join(FIX, "data", "audio", "7/11/7-11-0000.flac"))
    with torch.no_grad():
        ea, eb = a(wav[None], torch.tensor([wav.numel()]))[0], b(wav[None], torch.tensor([wav.numel()]))[0]
    assert torch.equal(ea, eb)


def test_older_fairseq_layouts(tmp_path, model):
    """fairseq files without ``w2v_args`` (the pre-training cfg read from ``w2v_path``, found next to the file) and
    the old ``args`` Namespace layout of the first released ``*_960h.pt`` files."""
    import argparse

    from s3prl import checkpoint as ckpt_io

    obj = ckpt_io.load_checkpoint(os.path.join(FIX, "ctc.pt"))
    w2v_args = obj["cfg"]["model"]["w2v_args"]
    torch.save({"cfg": w2v_args, "model": {}}, tmp_path / "pretrained.pt")
    dropped = {**obj, "cfg": {**obj["cfg"], "model": {**obj["cfg"]["model"], "w2v_args": None,
                                                       "w2v_path": "/elsewhere/pretrained.pt"}}}
    torch.save(dropped, tmp_path / "dropped.pt")
    _same_emissions(load_ctc(str(tmp_path / "dropped.pt")), model)
    os.remove(tmp_path / "pretrained.pt")
    with pytest.raises(ValueError, match="w2v_path"):
        load_ctc(str(tmp_path / "dropped.pt"))
    flat = {k: v for k, v in obj["cfg"]["model"].items() if k != "w2v_args"}
    flat["w2v_args"] = argparse.Namespace(**{**w2v_args["task"], **w2v_args["model"]})
    torch.save({"args": argparse.Namespace(**flat), "model": obj["model"]}, tmp_path / "old.pt")
    old = load_ctc(str(tmp_path / "old.pt"))
    assert old.vocabulary is None  # old files hold no dictionary: dict.ltr.txt is needed
    _same_emissions(old, model)


def test_dump_emissions(tmp_path, capsys, dump):
    import numpy as np

    data = data_folder(tmp_path)
    out = str(tmp_path / "em.npy")
    assert main(["wav2vec2", "infer", data, "--path", os.path.join(data, "ctc.pt"), *SEED_FLAGS,
                 "--dump-emissions", out]) == 0
    arrays = np.load(out, allow_pickle=True)
    with open(os.path.join(data, "test.tsv")) as f:
        order = [line.split("\t")[0] for line in f.read().splitlines()[1:]]
    assert len(arrays) == 3
    for rel, arr in zip(order, arrays):
        expected = torch.log_softmax(dump["emissions"][dump["files"].index(rel)], -1)
        assert (torch.from_numpy(arr) - expected).abs().max() <= TOL


def test_transcribe_very_short_file(tmp_path, capsys):
    """Shorter than the receptive field (400 samples): no frame, an empty text, not a crash."""
    import soundfile

    soundfile.write(tmp_path / "short.wav", 0.1 * torch.randn(100).numpy(), 16000)
    soundfile.write(tmp_path / "ok.wav", 0.1 * torch.randn(1000).numpy(), 16000)
    assert main(["transcribe", "-k", os.path.join(FIX, "ctc.pt"), str(tmp_path / "short.wav"),
                 str(tmp_path / "ok.wav")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{tmp_path / 'short.wav'}\t" and lines[1].startswith(f"{tmp_path / 'ok.wav'}\t")


# ---------------------------------------------------------------------------------------------
# HuggingFace Wav2Vec2ForCTC
# ---------------------------------------------------------------------------------------------


def test_huggingface_ctc_logits(tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    config = transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4, conv_dim=(32,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2), vocab_size=12, pad_token_id=0, layerdrop=0.0)
    torch.manual_seed(0)
    hf = transformers.Wav2Vec2ForCTC(config).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * (0.1 * float(p.std()) if p.numel() > 1 else 0.0) + 0.02)
    folder = tmp_path / "hf"
    hf.save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(folder)
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: i + 5 for i, c in enumerate("EATOHNI")}}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    wav = 0.1 * torch.sin(torch.arange(12000) / 7.0) + 0.05 * torch.randn(12000, generator=gen)
    ours = load_ctc(str(folder))
    with torch.no_grad():
        normed = (wav - wav.mean()) / torch.sqrt(wav.var(unbiased=False) + 1e-7)
        expected = hf(normed[None]).logits[0]
        got, frames = ours(wav[None], torch.tensor([wav.numel()]))
    assert got.shape[1:] == expected.shape and (got[0] - expected).abs().max() <= TOL
    assert ours.vocabulary.blank == 0 and ours.vocabulary.symbols[4] == "|"
    # transcribe: HF's own CTC decoding of the argmax path (tokenizer.decode groups repeats, drops <pad>)
    import soundfile

    soundfile.write(tmp_path / "a.wav", wav.numpy(), 16000, subtype="FLOAT")
    assert main(["transcribe", "-k", str(folder), str(tmp_path / "a.wav")]) == 0
    text = capsys.readouterr().out.split("\t", 1)[1].rstrip("\n")
    tok = transformers.Wav2Vec2CTCTokenizer(str(folder / "vocab.json"))
    assert text == tok.decode(expected.argmax(-1)).strip()
    hf.wav2vec2.save_pretrained(tmp_path / "base")  # a Wav2Vec2Model folder: no CTC head
    with pytest.raises(ValueError, match="pre-trained .* without a CTC output layer"):
        load_ctc(str(tmp_path / "base"))


# ---------------------------------------------------------------------------------------------
# Bad input: one clear line, exit 1
# ---------------------------------------------------------------------------------------------


def _error(capsys, argv) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_pretrained_checkpoint_is_refused(tmp_path, capsys):
    data = data_folder(tmp_path)
    pretrained = os.path.join(os.path.dirname(__file__), "fixtures", "w2v_loss_base_ckpt.pt")
    err = _error(capsys, ["wav2vec2", "infer", data, "--path", pretrained, *SEED_FLAGS])
    assert "pre-trained" in err and "fine-tuned" in err and "w2v_encoder.proj" in err


def _without_dictionary(data: str) -> str:
    """The fixture checkpoint without its pickled target dictionary (as pre-0.12 fairseq files)."""
    from s3prl import checkpoint as ckpt_io

    obj = ckpt_io.load_checkpoint(os.path.join(FIX, "ctc.pt"))
    obj["task_state"] = {}
    path = os.path.join(data, "old.pt")
    torch.save(obj, path)
    return path


def test_dictionary_errors(tmp_path, capsys):
    data = data_folder(tmp_path)
    old = _without_dictionary(data)
    # the file is needed now, and read: this run works
    assert main(["wav2vec2", "infer", data, "--path", old, "--quiet", *SEED_FLAGS]) == 0
    assert "WER:" in capsys.readouterr().out
    dict_path = os.path.join(data, "dict.ltr.txt")
    with open(dict_path) as f:
        rows = f.read().splitlines()
    os.remove(dict_path)
    assert "dict.ltr.txt" in _error(capsys, ["wav2vec2", "infer", data, "--path", old, *SEED_FLAGS])
    with open(dict_path, "w") as f:  # no word boundary, same size
        f.write("\n".join(["_ 1" if r.startswith("| ") else r for r in rows]) + "\n")
    assert "word boundary" in _error(capsys, ["wav2vec2", "infer", data, "--path", old, *SEED_FLAGS])
    with open(dict_path, "w") as f:  # one symbol short
        f.write("\n".join(rows[:-1]) + "\n")
    assert "outputs" in _error(capsys, ["wav2vec2", "infer", data, "--path", old, *SEED_FLAGS])


def test_missing_lm_and_label_mismatch(tmp_path, capsys):
    data = data_folder(tmp_path)
    ckpt = os.path.join(data, "ctc.pt")
    err = _error(capsys, ["wav2vec2", "infer", data, "--path", ckpt, *SEED_FLAGS, "--w2l-decoder", "kenlm",
                          "--lm-model", os.path.join(data, "nope.bin"), "--lexicon", os.path.join(data, "lexicon.lst")])
    assert "--lm-model" in err and "nope.bin" in err
    with open(os.path.join(data, "test.ltr")) as f:
        lines = f.readlines()
    with open(os.path.join(data, "test.ltr"), "w") as f:
        f.writelines(lines[:-1])
    err = _error(capsys, ["wav2vec2", "infer", data, "--path", ckpt, *SEED_FLAGS])
    assert "test.ltr" in err and "has no label line" in err
    with open(os.path.join(data, "test.ltr"), "w") as f:
        f.writelines(lines)
    err = _error(capsys, ["wav2vec2", "infer", data, "--path", os.path.join(data, "missing.pt"), *SEED_FLAGS])
    assert "missing.pt" in err


def test_ignored_flags_notice(tmp_path, capsys):
    data = data_folder(tmp_path)
    assert main(["wav2vec2", "infer", data, "--path", os.path.join(data, "ctc.pt"), *SEED_FLAGS, "--quiet",
                 "--num-workers", "4", "--fp16", "--w2l-decoder", "viterbi"]) == 0
    assert "ignored" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Real recordings: manifest + labels + infer (random tiny model: the pipeline, not accuracy)
# ---------------------------------------------------------------------------------------------


def test_real_recordings_end_to_end(tmp_path, capsys):
    root = os.path.join(os.environ.get("S3PRL_TEST_DATA", ""), "librispeech_test_other_mini")
    if not os.environ.get("S3PRL_TEST_DATA") or not os.path.isdir(root):
        pytest.skip("S3PRL_TEST_DATA (../shared/data) is not set")
    pytest.importorskip("flashlight.lib.text")
    data = str(tmp_path / "m")
    assert main(["wav2vec2", "manifest", root, "--dest", data, "--ext", "flac", "--valid-percent", "0"]) == 0
    os.rename(os.path.join(data, "train.tsv"), os.path.join(data, "test.tsv"))
    assert main(["wav2vec2", "labels", os.path.join(data, "test.tsv"), "--output-dir", data, "--output-name", "test",
                 "--no-dict"]) == 0
    shutil.copy(os.path.join(FIX, "dict.ltr.txt"), os.path.join(data, "dict.ltr.txt"))
    assert main(["lm", "build", os.path.join(data, "test.wrd"), "-o", os.path.join(data, "lm.arpa"),
                 "--lexicon", os.path.join(data, "lexicon.lst")]) == 0
    ckpt = os.path.join(FIX, "ctc.pt")
    for extra in (["--w2l-decoder", "viterbi"],
                  ["--w2l-decoder", "kenlm", "--lm-model", os.path.join(data, "lm.arpa"), "--lexicon",
                   os.path.join(data, "lexicon.lst"), "--lm-weight", "2", "--word-score", "-1", "--beam", "5"]):
        capsys.readouterr()
        out = str(tmp_path / extra[1])
        assert main(["wav2vec2", "infer", data, "--path", ckpt, "--results-path", out, "--quiet", *SEED_FLAGS,
                     *extra]) == 0
        wer = float(next(l for l in capsys.readouterr().out.splitlines() if l.startswith("WER:")).split()[1])
        assert 50.0 <= wer  # a random model
        with open(os.path.join(out, "ref.word-ctc.pt-test.txt")) as f:
            refs = f.read().splitlines()
        assert len(refs) == 100 and all(r.endswith(")") and "(None-" in r for r in refs)
        with open(os.path.join(out, "hypo.word-ctc.pt-test.txt")) as f:
            hyps = f.read().splitlines()
        assert len(hyps) == 100
        if extra[1] == "kenlm":  # every hypothesis word is a lexicon word
            with open(os.path.join(data, "lexicon.lst")) as f:
                lexicon = {line.split("\t")[0] for line in f}
            assert all(w in lexicon for h in hyps for w in h.rsplit(" (None-", 1)[0].split())


@pytest.mark.oracle
@pytest.mark.parametrize("decoder", ["viterbi", "kenlm"])
def test_real_recordings_equal_fairseq_infer_now(tmp_path, capsys, decoder):
    """fairseq's infer.py run now on the 100 real LibriSpeech files (one file per batch), ours on the same
    manifest: the four result files byte-identical, the same WER. Needs the fairseq oracle venv with editdistance
    in /tmp/oracle_extra_ed (see tests/oracle/make_w2v_infer_fixtures.py) and S3PRL_TEST_DATA."""
    import subprocess

    py = os.path.expanduser(os.environ.get("FAIRSEQ_ORACLE_PYTHON", "~/.cache/fairseq-oracle/venv/bin/python"))
    root = os.path.join(os.environ.get("S3PRL_TEST_DATA", ""), "librispeech_test_other_mini")
    if not os.path.exists(py) or not os.path.isdir("/tmp/oracle_extra_ed") or not os.environ.get("S3PRL_TEST_DATA"):
        pytest.skip("fairseq oracle venv (+ /tmp/oracle_extra_ed) or S3PRL_TEST_DATA missing")
    pytest.importorskip("flashlight.lib.text")
    data = str(tmp_path / "m")
    assert main(["wav2vec2", "manifest", root, "--dest", data, "--valid-percent", "0"]) == 0
    os.rename(os.path.join(data, "train.tsv"), os.path.join(data, "test_other.tsv"))
    assert main(["wav2vec2", "labels", os.path.join(data, "test_other.tsv"), "--output-dir", data, "--output-name",
                 "test_other", "--no-dict"]) == 0
    shutil.copy(os.path.join(FIX, "dict.ltr.txt"), data)
    assert main(["lm", "build", os.path.join(data, "test_other.wrd"), "-o", os.path.join(data, "lm.arpa"),
                 "--lexicon", os.path.join(data, "lexicon.lst")]) == 0
    flags = ["--w2l-decoder", "viterbi"] if decoder == "viterbi" else [
        "--w2l-decoder", "kenlm", "--lm-model", os.path.join(data, "lm.arpa"), "--lexicon",
        os.path.join(data, "lexicon.lst"), "--lm-weight", "2", "--word-score", "-1", "--sil-weight", "0"]
    ckpt = os.path.join(FIX, "ctc.pt")
    ref = str(tmp_path / "fairseq")
    script = os.path.join(os.path.dirname(__file__), "oracle", "make_w2v_infer_fixtures.py")
    subprocess.run([py, script, "--infer", data, "test_other", ckpt, ref, *flags], check=True,
                   env=dict(os.environ, PYTHONPATH="/tmp/oracle_extra_ed"))
    capsys.readouterr()
    ours = str(tmp_path / "ours")
    flags_ours = [f for f in SEED_FLAGS if f != "test"]
    flags_ours[flags_ours.index("--gen-subset") + 1:flags_ours.index("--gen-subset") + 1] = ["test_other"]
    assert main(["wav2vec2", "infer", data, "--path", ckpt, "--results-path", ours, "--quiet", *flags_ours,
                 *flags]) == 0
    with open(os.path.join(ref, "log.txt")) as f:
        assert next(line.strip() for line in f if line.startswith("WER:")) in capsys.readouterr().out.splitlines()
    names = sorted(n for n in os.listdir(ref) if n != "log.txt")
    assert sorted(os.listdir(ours)) == names and len(names) == 4
    for name in names:
        with open(os.path.join(ours, name), "rb") as a, open(os.path.join(ref, name), "rb") as b:
            assert a.read() == b.read(), name
