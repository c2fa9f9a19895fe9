"""QbE (``quesst14_dtw``): the QUESST14 reader, the stdlist file, the training-free runner path and bad input."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

import minicorpus
from s3prl.cli import main
from s3prl.downstream.corpora import quesst14
from s3prl.downstream.corpora._common import CorpusLayoutError
from s3prl.downstream.tasks.qbe import QBE_OPTIONS, check_options, plot_mtwv, qbe_scores, score_stdlist

HUBERT_TINY = str(Path(__file__).parent / "fixtures" / "oracle" / "hubert_tiny.pt")  # 3 hidden states
SR = minicorpus.SR


MELODIES = [(0, 2, 4), (4, 2, 0), (2, 0, 4)]  # a 'word' is 3 tones; the orders differ, so only DTW's order tells


def word(label: int, seed: int) -> np.ndarray:
    """Subsequence DTW with row min-max normalisation matches any stationary query anywhere (the path may stay on
    one document frame), so the test words change over time, as speech does."""
    return np.concatenate([minicorpus.tone(t, 0.15, seed + j) for j, t in enumerate(MELODIES[label])])


@pytest.fixture(scope="module")
def quesst_root(tmp_path_factory):
    """Queries are tone 'words' 0-2; each document is a pause, a word, a pause (truth exact)."""
    pause = np.zeros(SR // 10, np.float32)
    queries = {"dev": {f"quesst14_dev_{k:04d}": (word(k, 100 + k), SR) for k in range(3)},
               "eval": {f"quesst14_eval_{k:04d}": (word(k, 200 + k), SR) for k in range(3)}}
    docs, holds = {}, {}
    for i, content in enumerate([[0], [1], [2], [0], [1], [2], [0], [1]]):
        docs[f"quesst14_{i:05d}"] = (np.concatenate([pause] + [word(k, 10 * i + k) for k in content] + [pause]), SR)
        holds[f"quesst14_{i:05d}"] = set(content)
    truth = {split: {q: {d for d, h in holds.items() if int(q[-4:]) in h} for q in items}
             for split, items in queries.items()}
    return quesst14.write_layout(tmp_path_factory.mktemp("q") / "quesst14Database", queries, docs, truth)


def test_reader_and_ground_truth(quesst_root):
    splits = quesst14.load(str(quesst_root))
    assert sorted(splits) == ["dev", "test"]
    assert [ex.label for ex in splits["dev"]].count("query") == 3 and len(splits["dev"]) == 11
    assert splits["test"][0].uid == "quesst14_eval_0000"
    terms, documents, truth = quesst14.ground_truth(quesst_root, "dev")
    assert terms == ["quesst14_dev_0000", "quesst14_dev_0001", "quesst14_dev_0002"]
    assert len(documents) == 8 and truth["quesst14_dev_0000"] == {"quesst14_00000", "quesst14_00003", "quesst14_00006"}


def test_reader_errors_show_the_layout(tmp_path, quesst_root):
    with pytest.raises(CorpusLayoutError, match="language_key_utterances.lst"):
        quesst14.load(str(tmp_path))
    with pytest.raises(CorpusLayoutError, match="no 'basque' lines"):
        quesst14.load(str(quesst_root), language="basque")
    bad = tmp_path / "bad"
    (bad / "scoring").mkdir(parents=True)
    (bad / "scoring" / "language_key_utterances.lst").write_text("only-one-field\n")
    with pytest.raises(CorpusLayoutError, match="expected '<path> <language>'"):
        quesst14.load(str(bad))


def test_stdlist_round_trip(tmp_path):
    scores = {"q1": {"d1": 2.5, "d2": -0.25}, "q2": {"d1": 1.99999, "d2": 2.00001}}
    path = quesst14.write_stdlist(tmp_path / "benchmark.stdlist.xml", scores, 2.0)
    text = path.read_text()
    assert text.startswith("<?xml") and 'system_id="benchmark"' in text and 'termid="q1"' in text
    got, decisions = quesst14.read_stdlist(path)
    assert got[("q1", "d2")] == -0.25 and got[("q2", "d1")] == 2.0  # 4 decimals, as the original
    assert decisions == {("q1", "d1"): True, ("q1", "d2"): False, ("q2", "d1"): False, ("q2", "d2"): True}


def test_evaluate_sweeps_layers_and_writes_results(tmp_path, quesst_root):
    exp = tmp_path / "exp"
    opts = f"task.root={quesst_root},,data.cache_dir={tmp_path / 'cache'},,data.num_workers=0"
    assert main(["downstream", "evaluate", "-u", "hubert_local", "-k", HUBERT_TINY, "-d", "quesst14_dtw",
                 "-p", str(exp), "-t", "dev", "-l", "all", "-o", opts]) == 0
    rec = json.loads((exp / "results_dev.json").read_text())
    assert rec["metric"] == "MTWV" and rec["layers"] == [0, 1, 2]
    per_layer = rec["details"]["per_layer"]
    assert set(per_layer) == {"0", "1", "2"}
    assert rec["metrics"]["MTWV"] == max(v["MTWV"] for v in per_layer.values())
    assert rec["checkpoint"] == f"layer {rec['details']['best_layer']}"
    for layer in range(3):
        scores, _ = quesst14.read_stdlist(exp / f"layer_{layer}" / "benchmark.stdlist.xml")
        assert len(scores) == 3 * 8
    assert (exp / "mtwv_per_layer.png").stat().st_size > 1000 and (exp / "results_dev.md").is_file()


def test_fbank_finds_the_tone_words(tmp_path, quesst_root):
    """Same-'speaker' tones: DTW on fbank must rank every true document first (MTWV 1 at some threshold)."""
    exp = tmp_path / "fb"
    opts = f"task.root={quesst_root},,data.cache=false,,data.num_workers=0"
    assert main(["downstream", "evaluate", "-u", "fbank", "-d", "quesst14_dtw", "-p", str(exp), "-t", "test",
                 "-o", opts]) == 0
    rec = json.loads((exp / "results_test.json").read_text())
    assert rec["metrics"]["MTWV"] > 0.9, rec["metrics"]
    # the stand-alone scorer reads the written file back: the same numbers (scores have 4 decimals there)
    again = score_stdlist(exp / "benchmark.stdlist.xml", quesst14.truth_folder(quesst_root, "test"))
    assert again["MTWV"] == pytest.approx(rec["metrics"]["MTWV"], abs=1e-9)
    assert again["ATWV"] == pytest.approx(rec["metrics"]["ATWV"], abs=1e-9)


def test_train_and_misuse_give_clear_errors(tmp_path, quesst_root, capsys):
    assert main(["downstream", "train", "-u", "fbank", "-d", "quesst14_dtw", "-p", str(tmp_path / "t"),
                 "-o", f"task.root={quesst_root}"]) != 0
    assert "nothing to train" in capsys.readouterr().err
    assert main(["downstream", "evaluate", "-d", "quesst14_dtw", "-p", str(tmp_path / "t")]) != 0
    assert "needs -u UPSTREAM" in capsys.readouterr().err
    assert main(["downstream", "evaluate", "-u", "fbank", "-d", "fsdd_digits", "-p", str(tmp_path / "t")]) != 0
    assert "trained first" in capsys.readouterr().err
    assert main(["downstream", "evaluate", "-u", "fbank", "-d", "quesst14_dtw", "-p", str(tmp_path / "t")]) != 0
    assert "task.root" in capsys.readouterr().err


def test_bad_options_and_input():
    with pytest.raises(ValueError, match="feature_normalization=false"):
        check_options({**QBE_OPTIONS, "dist_method": "cosine_neg_log"})
    with pytest.raises(ValueError, match="choose one of"):
        check_options({**QBE_OPTIONS, "dist_method": "manhattan"})
    with pytest.raises(ValueError, match="p_target"):
        check_options({**QBE_OPTIONS, "p_target": 2.0})
    rng = np.random.default_rng(0)
    feats = {"q": rng.normal(size=(40, 4)), "d1": rng.normal(size=(6, 4)), "d2": np.zeros((0, 4))}
    with pytest.raises(ValueError, match="no frames left"):
        qbe_scores(feats, ["q"], ["d1", "d2"], dict(QBE_OPTIONS))
    # a query longer than every document is still scored (the asymmetric steps let the document stay)
    feats["d2"] = rng.normal(size=(3, 4))
    out = qbe_scores(feats, ["q"], ["d1", "d2"], dict(QBE_OPTIONS))
    assert all(np.isfinite(v) for v in out["q"].values())
    # digital silence: zero-norm frames are at cosine distance 1 from everything (never NaN)
    feats = {"q": np.zeros((8, 4)), "d1": rng.normal(size=(20, 4)), "d2": np.zeros((20, 4))}
    out = qbe_scores(feats, ["q"], ["d1", "d2"], {**QBE_OPTIONS, "feature_normalization": False})
    assert all(np.isfinite(v) for v in out["q"].values())


def test_silent_files_are_named_or_skipped(tmp_path, capsys):
    pause = np.zeros(SR // 10, np.float32)
    queries = {"dev": {f"quesst14_dev_{k:04d}": (word(k, 100 + k), SR) for k in range(2)},
               "eval": {"quesst14_eval_0000": (np.zeros(SR // 2, np.float32), SR)}}
    docs = {f"quesst14_{i:05d}": (np.concatenate([pause, word(i % 2, i), pause]), SR) for i in range(4)}
    docs["quesst14_00009"] = (np.zeros(SR, np.float32), SR)
    truth = {"dev": {f"quesst14_dev_{k:04d}": {f"quesst14_{i:05d}" for i in range(4) if i % 2 == k} for k in range(2)},
             "eval": {"quesst14_eval_0000": {"quesst14_00000"}}}
    root = quesst14.write_layout(tmp_path / "db", queries, docs, truth)
    opts = f"task.root={root},,data.cache=false,,data.num_workers=0"
    argv = ["downstream", "evaluate", "-u", "fbank", "-d", "quesst14_dtw", "-p", str(tmp_path / "e"), "-t", "dev"]
    assert main([*argv, "-o", opts]) != 0
    err = capsys.readouterr().err
    assert "digitally silent" in err and "quesst14_00009.wav" in err and "quesst14_eval_0000.wav" in err
    assert main([*argv, "-o", opts + ",,task.skip_silent=true"]) == 0
    rec = json.loads((tmp_path / "e" / "results_dev.json").read_text())
    assert rec["details"]["documents"] == 4 and rec["metrics"]["MTWV"] > 0.9


def test_mtwv_plot(tmp_path):
    path = plot_mtwv({0: {"MTWV": 0.1}, 1: {"MTWV": 0.3}}, tmp_path / "p.png", "t")
    assert path.stat().st_size > 1000


FSDD = Path(os.environ.get("S3PRL_TEST_DATA", "")) / "fsdd"


@pytest.mark.slow
@pytest.mark.skipif(not FSDD.is_dir(), reason="set S3PRL_TEST_DATA to ../shared/data for fsdd")
def test_real_digits_above_random(tmp_path):
    """Real speech, the docs/qbe.md headline setting: one-digit documents (other takes of the query speakers).
    Measured there: random max 0.0063; fbank 0.074 (defaults) / 0.228 (minmax_norm=false), mfcc 0.326."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("qbe_fsdd", Path(__file__).parents[1] / "benchmarks" / "qbe_fsdd.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    root = bench.build(FSDD, tmp_path, 200, 1, 0, doc_speakers="same")
    mean, worst = bench.random_floor(root, "dev")
    mfcc = bench.run("mfcc", root, tmp_path, "dev", "all")["metrics"]["MTWV"]
    fbank = bench.run("fbank", root, tmp_path, "dev", "all")["metrics"]["MTWV"]
    no_minmax = bench.run("fbank", root, tmp_path, "dev", "all", "task.minmax_norm=false")["metrics"]["MTWV"]
    assert min(mfcc, fbank, no_minmax) > 5 * worst, (mfcc, fbank, no_minmax, mean, worst)
