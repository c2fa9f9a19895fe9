"""The CTC tasks end to end (PR, ASR, SF through `s3prl downstream train` / `evaluate` on tiny synthetic corpora in
the LibriSpeech and Audio SNIPS layouts), and their bad-input behaviour."""

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from s3prl.cli import main
from s3prl.downstream import tasks
from s3prl.downstream.corpora import CorpusLayoutError, librispeech_text, snips
from s3prl.downstream.tasks import ctc
from s3prl.text import OutOfVocabularyError, UnknownSymbolError, read_lexicon

SR = 16000
WORDS = ("YES", "NO", "UP", "GO", "ON", "OFF")
SMALL_HEAD = "task.model={project_dim: 16, dim: [16, 16], dropout: [0.0, 0.0]}"


def word_audio(words, seed):
    rng = np.random.default_rng(seed)
    parts = []
    for w in words:
        t = np.arange(int(0.25 * SR)) / SR
        f0 = 150.0 * 1.3 ** WORDS.index(w)
        parts.append(0.3 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal(t.shape))
        parts.append(np.zeros(int(0.05 * SR)))
    return np.concatenate(parts).astype(np.float32)


def librispeech(root: Path, per_subset=6) -> Path:
    """``<subset>/<spk>/<chapter>/<spk>-<chapter>.trans.txt`` + flac files (train-clean-100, dev-clean, test-clean)."""
    rng = np.random.default_rng(0)
    for s, subset in enumerate(("train-clean-100", "dev-clean", "test-clean")):
        spk, chapter = 10 + s, 100
        folder = root / subset / str(spk) / str(chapter)
        folder.mkdir(parents=True)
        lines = []
        for u in range(per_subset):
            words = [WORDS[i] for i in rng.integers(0, len(WORDS), 3)]
            uid = f"{spk}-{chapter}-{u:04d}"
            sf.write(str(folder / f"{uid}.flac"), word_audio(words, 7 * s + u), SR)
            lines.append(f"{uid} {' '.join(words)}")
        (folder / f"{spk}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return root


def audio_snips(root: Path) -> Path:
    rng = np.random.default_rng(1)
    lines = []
    for folder, speakers in (("train", ("Ivy", "Joey")), ("valid", ("Amy",)), ("test", ("Emma",))):
        for spk in speakers:
            for u in range(4):
                words = [WORDS[i] for i in rng.integers(0, len(WORDS), 3)]
                uid = f"{spk}-snips-{folder}-{u}"
                (root / folder).mkdir(parents=True, exist_ok=True)
                sf.write(str(root / folder / f"{uid}.wav"), word_audio(words, u), SR)
                tags = ["O", "city" if u % 2 else "O", "city"]
                lines.append(f"{uid} BOS {' '.join(words)} EOS\tO {' '.join(tags)} GetWeather")
    (root / "all.iob.snips.txt").write_text("\n".join(lines) + "\n")
    (root / "slots.txt").write_text("O\ncity\nartist\n")
    return root


def run(*argv):
    assert main(["downstream", *argv]) == 0


def options(root, cache, extra=""):
    base = (f"task.root={root},,data.cache_dir={cache},,data.num_workers=0,,train.total_steps=4,,train.eval_step=2,,"
            "train.log_step=2,,train.save_step=2,,data.batch_seconds=4.0,,train.lr=0.001")
    return base + (",," + extra if extra else "")


@pytest.fixture(scope="module")
def libri(tmp_path_factory):
    return librispeech(tmp_path_factory.mktemp("libri"))


@pytest.mark.parametrize("task,hyp_file,metric", [("ctc_libriphone", "test-hyp.ark", "per"),
                                                  ("asr", "test-noLM-hyp.ark", "wer")])
def test_librispeech_tasks_train_test_and_evaluate(tmp_path, libri, task, hyp_file, metric):
    exp = tmp_path / "exp"
    extra = "train.gradient_accumulate_steps=1" + ("" if task == "ctc_libriphone" else ",," + SMALL_HEAD)
    run("train", "-u", "fbank", "-d", task, "-p", str(exp), "-o", options(libri, tmp_path / "cache", extra))
    result = json.loads((exp / "results.json").read_text())
    assert result["metric"] == metric and result["checkpoint"] == "dev-best.ckpt"
    assert np.isfinite(result["metrics"][metric])
    refs = (exp / hyp_file.replace("hyp", "ref")).read_text().splitlines()
    assert len(refs) == 6 and refs[0].startswith("12-100-0000 ")
    if task == "asr":
        assert set(refs[0].split()[1:]) <= set(WORDS)  # words, not characters
    else:
        assert all(p.isupper() for p in refs[0].split()[1:])  # phonemes
    assert len((exp / hyp_file).read_text().splitlines()) == 6
    ckpt = torch.load(exp / "dev-best.ckpt", weights_only=True)
    assert ckpt["Classes"]["kind"] == ("tokens" if task == "ctc_libriphone" else "dictionary")
    run("evaluate", "-e", str(exp), "-t", "dev")
    assert (exp / hyp_file.replace("test", "dev")).is_file()
    assert json.loads((exp / "results_dev.json").read_text())["split"] == "dev"


def test_asr_evaluates_with_a_kenlm_lexicon_decoder(tmp_path, libri, capsys):
    pytest.importorskip("flashlight.lib.text.decoder")
    exp = tmp_path / "asr"
    run("train", "-u", "fbank", "-d", "asr", "-p", str(exp), "-o",
        options(libri, tmp_path / "cache", "train.total_steps=2,,train.eval_step=2,," + SMALL_HEAD))
    words = sorted(WORDS)
    (tmp_path / "lexicon.lst").write_text("".join(f"{w}\t{' '.join(w)} |\n" for w in words))
    unigrams = "".join(f"-0.8\t{w}\t0.0\n" for w in words)
    (tmp_path / "lm.arpa").write_text(f"\\data\\\nngram 1={len(words) + 3}\nngram 2=1\n\n\\1-grams:\n"
                                      f"-1.0\t<unk>\t0.0\n-99\t<s>\t0.0\n-1.0\t</s>\t0.0\n{unigrams}\n"
                                      "\\2-grams:\n-0.1\tYES NO\n\n\\end\\\n")  # KenLM needs a bigram
    run("evaluate", "-e", str(exp), "-t", "test", "-o",
        f"task.decoder={{kenlm_model: {tmp_path}/lm.arpa, lexicon: {tmp_path}/lexicon.lst, unk_weight: -inf}}")
    hyps = (exp / "test-LM-hyp.ark").read_text().splitlines()
    assert len(hyps) == 6 and all(set(h.split()[1:]) <= set(WORDS) for h in hyps)  # lexicon words only
    assert (exp / "test-LM-ref.ark").is_file() and (exp / "test-noLM-hyp.ark").is_file()
    # transcribe: the same hypotheses for the files on their own, greedy and with the LM decoder
    files = sorted((libri / "test-clean").rglob("*.flac"))[:2]
    greedy = dict(line.split(" ", 1) for line in (exp / "test-noLM-hyp.ark").read_text().splitlines())
    with_lm = dict(line.split(" ", 1) for line in hyps)
    for decoder, expected in ((None, greedy), (f"task.decoder={{kenlm_model: {tmp_path}/lm.arpa, lexicon: "
                                               f"{tmp_path}/lexicon.lst, unk_weight: -inf}}", with_lm)):
        argv = ["transcribe", "-e", str(exp), *map(str, files)] + (["-o", decoder] if decoder else [])
        capsys.readouterr()
        run(*argv)
        lines = capsys.readouterr().out.splitlines()
        assert [line.split("\t")[0] for line in lines] == [str(f) for f in files]
        for line, f in zip(lines, files):
            assert line.split("\t", 1)[1].strip() == expected[f.stem].strip(), (decoder, f)
    with pytest.raises(ValueError, match="task.decoder"):
        tasks.get("asr").configure(ctc.CTCDownstream(torch.nn.Linear(1, 1), ctc.char_dictionary({}), None),
                                   {"decoder": {"kenlm": "x"}})


def test_slot_filling_trains_and_reports_the_slot_metrics(tmp_path):
    root = audio_snips(tmp_path / "snips")
    exp = tmp_path / "sf"
    run("train", "-u", "fbank", "-d", "ctc_snips", "-p", str(exp), "-o",
        options(root, tmp_path / "cache", SMALL_HEAD + ",,task.train_speakers=[Ivy, Joey],,task.dev_speakers=[Amy]"
                ",,task.test_speakers=[Emma]"))
    result = json.loads((exp / "results.json").read_text())
    assert set(result["metrics"]) == {"slot_type_f1", "slot_value_cer", "slot_value_wer", "slot_edit_f1_full",
                                      "slot_edit_f1_part", "wer", "cer"}
    refs = (exp / "test-ref.ark").read_text().splitlines()
    assert any("B-city " in r and " E-city" in r for r in refs)
    ckpt = torch.load(exp / "dev-best.ckpt", weights_only=True)
    assert ckpt["Classes"]["slots"] == ["city", "artist"]
    assert ckpt["Downstream"]["head.model.linear.weight"].shape[0] == 3 + 28 + 4


def test_common_voice_lists_and_character_vocabulary(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    rows = ["client_id\tpath\tsentence\tup_votes"]
    for i in range(6):
        words = [WORDS[(i + k) % len(WORDS)] for k in range(2)]
        sf.write(str(clips / f"cv_{i}.wav"), word_audio(words, i), SR)
        rows.append(f"c{i}\tcv_{i}.wav\t{' '.join(words).lower()}\t2")
    (tmp_path / "all.tsv").write_text("\n".join(rows) + "\n")
    (tmp_path / "vocab.txt").write_text(" \n" + "\n".join("abcdefghijklmnopqrstuvwxyz'") + "\n")
    exp = tmp_path / "cv"
    tsv = tmp_path / "all.tsv"
    run("train", "-u", "fbank", "-d", "ctc_commonvoice", "-p", str(exp), "-o",
        f"task.root={clips},,task.train={tsv},,task.dev={tsv},,task.test={tsv},,task.vocab_file={tmp_path}/vocab.txt,,"
        f"data.cache_dir={tmp_path}/c,,data.num_workers=0,,train.total_steps=2,,train.eval_step=2,,{SMALL_HEAD}")
    result = json.loads((exp / "results.json").read_text())
    assert set(result["metrics"]) == {"wer", "cer"}
    assert (exp / "test-ref.ark").read_text().splitlines()[0] == "cv_0 yes no"
    ckpt = torch.load(exp / "dev-best.ckpt", weights_only=True)
    assert ckpt["Classes"]["upstream_rate"] == 160 and ckpt["Classes"]["head"]["total_rate"] == 320
    with pytest.raises(ValueError, match="task.vocab_file"):
        tasks.get("ctc_commonvoice").load({"root": str(clips), "train": str(tsv), "dev": str(tsv), "test": str(tsv)})


def test_the_original_defaults():
    pr, asr, sf_task = (tasks.get(n) for n in ("ctc_libriphone", "asr", "ctc_snips"))
    assert pr.train["lr"] == 1e-2 and pr.train["total_steps"] == 100000 and pr.train["gradient_accumulate_steps"] == 2
    assert pr.head == {"project_dim": 256, "select": "FrameLevel"} and pr.specaug is None
    assert asr.head["project_dim"] == 1024 and asr.head["dim"] == [1024, 1024] and asr.head["dropout"] == [0.2, 0.2]
    assert asr.specaug["num_freq_mask"] == 4 and not asr.specaug["adaptive"] and sf_task.specaug["adaptive"]
    assert asr.train["lr"] == 1e-4 and asr.train["eval_step"] == 2000 and not asr.higher_better
    assert sf_task.metric == "slot_type_f1" and sf_task.higher_better


def test_bad_transcripts_are_named(tmp_path, libri):
    trans = next((libri / "dev-clean").rglob("*.trans.txt"))
    bad = tmp_path / "bad"
    folder = bad / "dev-clean" / "1" / "2"
    folder.mkdir(parents=True)
    flac = next(trans.parent.glob("*.flac"))
    (folder / "1-2-0000.flac").write_bytes(flac.read_bytes())
    (folder / "1-2.trans.txt").write_text("1-2-0000 HELLO WORLD ZZQX\n")
    opts = {"root": str(bad), "train": ["dev-clean"], "dev": ["dev-clean"], "test": ["dev-clean"]}
    with pytest.raises(OutOfVocabularyError, match="1 utterance.*ZZQX.*skip_oov"):
        tasks.get("ctc_libriphone").load(opts)
    with pytest.raises(ValueError, match="no train utterance left"):  # skipped, and then nothing is left
        tasks.get("ctc_libriphone").load({**opts, "skip_oov": True})
    (folder / "1-2.trans.txt").write_text("1-2-0000 HELLO WORLD 42\n")
    with pytest.raises(UnknownSymbolError, match=r"1-2-0000.*'2', '4'"):
        tasks.get("asr").load(opts)
    (folder / "1-2.trans.txt").write_text("1-2-0000 \n")
    with pytest.raises(ValueError, match="empty transcript"):
        tasks.get("asr").load(opts)
    (folder / "1-2.trans.txt").write_text("1-2-0001 HELLO\n")
    with pytest.raises(CorpusLayoutError, match="1-2-0001.flac"):
        librispeech_text.load(str(bad), "dev-clean", "dev-clean", "dev-clean")
    with pytest.raises(CorpusLayoutError, match="train-clean-100"):
        librispeech_text.load(str(bad))
    lexicon = tmp_path / "lex.txt"
    lexicon.write_text("HELLO HH AH0 L OW1\nHELLO HH EH0 L OW1\nWORLD W ER1 L D\nBAD XX1\n")
    with pytest.raises(ValueError, match="XX1"):
        read_lexicon(lexicon)
    lexicon.write_text("HELLO HH AH0 L OW1\nhello HH EH0 L OW1\nWORLD W ER1 L D\n")
    (folder / "1-2.trans.txt").write_text("1-2-0001 HELLO WORLD\n")
    (folder / "1-2-0001.flac").write_bytes(flac.read_bytes())
    (folder / "1-2-0000.flac").unlink()
    splits = tasks.get("ctc_libriphone").load({**opts, "lexicon": str(lexicon)})
    assert splits["dev"][0].label.text == "HH AH0 L OW1 W ER1 L D"  # first pronunciation wins


def test_infeasible_utterances_give_zero_loss_and_are_counted(caplog):
    vocabulary = {**ctc.phoneme_vocabulary({}), "head": {"project_dim": 8, "select": "FrameLevel"}}
    ds = tasks.get("ctc_libriphone").build_head(5, vocabulary)
    x, lengths = torch.randn(2, 6, 5), torch.tensor([6, 2])
    labels = [ctc.Transcript("", (5, 6, 1)), ctc.Transcript("", (5, 5, 7, 1))]  # the second needs 5 frames
    with caplog.at_level(logging.WARNING):
        loss = ctc.ctc_loss(ds, x, lengths, labels)
    assert torch.isfinite(loss) and ds.infeasible == 1 and ds.seen == 2
    assert "1 of 2 training utterances" in caplog.text
    assert ctc.required_frames((5, 5, 7, 1)) == 5


DATA = os.environ.get("S3PRL_TEST_DATA")
MINI = Path(DATA) / "librispeech_test_other_mini" if DATA else None


@pytest.mark.skipif(not (MINI and MINI.is_dir()), reason="S3PRL_TEST_DATA/librispeech_test_other_mini not found")
def test_real_librispeech_recordings_through_the_phoneme_task(tmp_path):
    """The 100 real test-other utterances and their official transcripts (cmudict; OOV utterances left out)."""
    exp = tmp_path / "pr"
    run("train", "-u", "fbank", "-d", "ctc_libriphone", "-p", str(exp), "-o",
        f"task.root={MINI},,task.train=.,,task.dev=.,,task.test=.,,task.skip_oov=true,,data.cache_dir={tmp_path}/c,,"
        "data.num_workers=0,,train.total_steps=2,,train.eval_step=2,,train.gradient_accumulate_steps=1,,"
        "data.batch_seconds=60,,train.lr=0.01")
    result = json.loads((exp / "results.json").read_text())
    assert 0 < result["metrics"]["per"] < 5
    refs = (exp / "test-ref.ark").read_text().splitlines()
    assert len(refs) == 74 and not (exp / "test_predict.txt").exists()


def test_snips_layout_errors(tmp_path):
    with pytest.raises(CorpusLayoutError, match="all.iob.snips.txt"):
        snips.load(str(tmp_path))


@pytest.mark.slow
def test_heads_learn_on_a_synthesized_corpus(tmp_path):
    """benchmarks/ctc_espeak_learning.py with fewer steps (minutes on a CPU; needs espeak-ng and flashlight-text)."""
    import shutil
    import sys

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    pytest.importorskip("flashlight.lib.text.decoder")
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import ctc_espeak_learning

    results = ctc_espeak_learning.run(tmp_path, steps=200)
    pr, asr = results["ctc_libriphone"], results["asr"]
    assert pr["after_200_steps"]["per"] < 0.2 < pr["untrained_1_step"]
    assert asr["after_200_steps"]["wer"] < asr["untrained_1_step"]
