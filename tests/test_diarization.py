"""Speaker diarization: parity of head, PIT loss and RTTM output with the original (committed oracle fixtures),
the corpus readers (Kaldi folders, RTTM folders), and the task end to end through the runner."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import minicorpus
from s3prl.cli import main
from s3prl.downstream.corpora import diarization as corpus
from s3prl.downstream.tasks import diarization as sd
from s3prl.metrics import der

FIXTURES = Path(__file__).parent / "fixtures" / "oracle" / "diarization"  # tests/oracle/make_diarization_fixtures.py
AMI = Path(os.environ.get("S3PRL_TEST_DATA", "")) / "ami_mini"


# ------------------------------------------------------------------------------------------------
# parity with the original (fixtures written by its Model, _match_length, pit_loss and make_rttm.py)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["two", "three", "tiled"])
def test_head_and_pit_loss_equal_the_original(case):
    ref = torch.load(FIXTURES / "head_pit.pt", weights_only=True)[case]
    n, dim = ref["labels"].shape[2], ref["features"].shape[2]
    head = sd.DiarizationHead(dim, n, hidden_size=ref["hidden"])
    head.load_state_dict(ref["state_dict"])  # the original's keys: rnn.*, linear.*
    matched = sd.match_length(ref["features"], ref["labels"].shape[1])
    assert torch.equal(matched, ref["matched"])
    logits = head(matched)
    assert torch.allclose(logits, ref["logits"], atol=1e-6)
    loss, perms = sd.pit_loss(logits, ref["labels"], ref["lengths"])
    assert loss.item() == pytest.approx(ref["loss"].item(), abs=1e-6)
    assert torch.equal(perms, ref["perms"])


def test_rttm_equals_the_original_make_rttm():
    for case in torch.load(FIXTURES / "rttm_cases.pt", weights_only=True):
        step = case["frame_shift"] / 16000
        active = sd.decide(case["posteriors"].numpy(), case["threshold"], case["median"])
        ours = {(spk, round(s / step), round(e / step)) for spk, segs in
                sd.to_turns(active, case["rec"], case["frame_shift"]).items() for s, e in segs}
        theirs = set()
        for line in case["rttm"].splitlines():  # 2-decimal times: frames are recovered exactly (shift >= 10 ms)
            f = line.split()
            onset, dur = float(f[3]), float(f[4])
            theirs.add((f[7], round(onset / step), round((onset + dur) / step)))
        assert ours == theirs and len(ours) > 5, (case["threshold"], case["median"], case["frame_shift"])


def test_median_filter_is_scipys_medfilt():
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(0)
    active = (rng.random((200, 3)) > 0.6).astype(np.int32)
    for width in (1, 3, 11):
        assert np.array_equal(sd.median_filter(active, width), signal.medfilt(active, (width, 1)))


def test_pit_loss_ignores_speaker_order_and_padding():
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 10, 3), (torch.rand(2, 10, 3) > 0.5).float()
    lengths = torch.tensor([10, 6])
    loss, _ = sd.pit_loss(logits, labels, lengths)
    swapped, _ = sd.pit_loss(logits, labels[:, :, [2, 0, 1]], lengths)
    labels[1, 6:] = 1 - labels[1, 6:]  # padding frames do not count
    assert loss.item() == pytest.approx(swapped.item()) == pytest.approx(sd.pit_loss(logits, labels, lengths)[0].item())


# ------------------------------------------------------------------------------------------------
# corpora
# ------------------------------------------------------------------------------------------------


def meeting(seed: int, seconds: float = 8.0):
    """Two 'speakers' (tones of different pitch) taking turns with a little overlap: (audio, turns)."""
    rng = np.random.default_rng(seed)
    sr, wav = minicorpus.SR, np.zeros(int(seconds * minicorpus.SR), np.float32)
    turns, t, who = {"spkA": [], "spkB": []}, float(rng.uniform(0.1, 0.6)), seed % 2
    while t < seconds - 0.8:
        length = float(rng.uniform(0.8, 2.0))
        end = min(t + length, seconds - 0.1)
        name = ("spkA", "spkB")[who]
        turns[name].append((round(t, 2), round(end, 2)))
        a, b = int(round(t, 2) * sr), int(round(end, 2) * sr)
        wav[a:b] += minicorpus.tone(3 * who, (b - a) / sr, seed * 100 + len(turns[name]))
        t, who = end + float(rng.uniform(-0.3, 0.4)), 1 - who
    return wav, turns


def kaldi_corpus(root: Path, counts=(6, 2, 2), seconds: float = 8.0) -> Path:
    """``{train,dev,test}/{wav.scp,segments,utt2spk,spk2utt,reco2dur,rttm}`` like the original SD data."""
    for split, count in zip(("train", "dev", "test"), counts):
        folder = root / split
        scp, segs, u2s, dur, rttm = [], [], [], [], []
        for i in range(count):
            rec = f"{split}{i:02d}"
            wav, turns = meeting(10 * len(split) + i, seconds)
            minicorpus.write(root / "wav" / f"{rec}.wav", wav)
            scp.append(f"{rec} wav/{rec}.wav")
            dur.append(f"{rec} {seconds}")
            for spk, items in turns.items():
                for j, (s, e) in enumerate(items):
                    utt = f"{spk}-{rec}-{j:03d}"
                    segs.append(f"{utt} {rec} {s:.2f} {e:.2f}")
                    u2s.append(f"{utt} {spk}")
                    rttm.append(f"SPEAKER {rec} 1 {s:.2f} {e - s:.2f} <NA> <NA> {spk} <NA> <NA>")
        folder.mkdir(parents=True, exist_ok=True)
        for name, lines in (("wav.scp", scp), ("segments", segs), ("utt2spk", u2s), ("reco2dur", dur), ("rttm", rttm)):
            (folder / name).write_text("\n".join(sorted(lines)) + "\n")
    return root


@pytest.fixture(scope="module")
def kaldi_root(tmp_path_factory):
    return kaldi_corpus(tmp_path_factory.mktemp("sd"))


def test_kaldi_reader_frames_and_chunks(kaldi_root):
    splits = corpus.load(str(kaldi_root), num_speakers=2, chunk_size=300, frame_shift=160)
    assert [len(splits[s]) for s in ("dev", "test")] == [2, 2]
    train = splits["train"]
    assert len(train) == 6 * 3  # 800 frames -> 300, 300, 200
    first, last = train[0], train[2]
    assert (first.start, first.end) == (0.0, 3.0) and (last.start, last.end) == (6.0, 8.0)
    assert first.label.frames.shape == (300, 2) and last.label.frames.shape == (200, 2)
    rec = splits["test"][0].label
    assert rec.speakers == ["spkA", "spkB"] and rec.frames.shape == (800, 2) and rec.frame_shift == 160
    s, e = rec.turns["spkA"][0]
    assert rec.frames[int(round(s * 100)):int(round(e * 100)), 0].all()
    assert not rec.frames[:int(round(s * 100)), 0].any()


def test_reader_errors(kaldi_root, tmp_path):
    with pytest.raises(ValueError, match="num_speakers=2"):
        corpus.load(str(kaldi_root), num_speakers=1, frame_shift=160)
    with pytest.raises(ValueError, match="frame_shift"):
        corpus.load(str(kaldi_root))
    bad = tmp_path / "bad"
    (bad / "train").mkdir(parents=True)
    (bad / "train" / "wav.scp").write_text("r1 sox x.wav -t wav - |\n")
    for name in ("segments", "utt2spk"):
        (bad / "train" / name).write_text("")
    with pytest.raises(corpus.CorpusLayoutError, match="read from a command"):
        corpus.load(str(bad), frame_shift=160)
    with pytest.raises(corpus.CorpusLayoutError, match="Expected layout"):
        corpus.load(str(tmp_path / "empty"), frame_shift=160)


@pytest.mark.skipif(not AMI.is_dir(), reason="set S3PRL_TEST_DATA to ../shared/data for ami_mini")
def test_rttm_folder_reader_on_ami():
    splits = corpus.load(str(AMI), num_speakers=4, frame_shift=320)
    assert [len(splits["dev"]), len(splits["test"])] == [2, 2]
    assert len(splits["train"]) == 10  # 30 s = 1500 frames: one chunk each
    rec = splits["test"][0].label
    assert rec.rec == "tst00" and rec.uem == [(0.0, 30.0)] and len(rec.speakers) == 4
    assert rec.turns == der.read_rttm(AMI / "debug.test.rttm")["tst00"]


# ------------------------------------------------------------------------------------------------
# the task through the runner
# ------------------------------------------------------------------------------------------------


def test_train_evaluate_and_score(kaldi_root, tmp_path, capsys):
    exp = tmp_path / "exp"
    opts = (f"task.root={kaldi_root},,task.chunk_size=300,,data.cache_dir={tmp_path / 'cache'},,data.num_workers=0,,"
            "train.total_steps=30,,train.eval_step=15,,train.save_step=15,,train.log_step=15,,train.lr=0.003,,"
            "data.batch_seconds=24,,task.hidden_size=64")
    assert main(["downstream", "train", "-u", "fbank", "-d", "diarization", "-p", str(exp), "-o", opts]) == 0
    for name in ("results.json", "results.md", "test_predict.rttm", "test_der.json", "test_der.md",
                 "test_timeline/test00.png", "dev-best.ckpt"):
        assert (exp / name).is_file(), name
    result = json.loads((exp / "results.json").read_text())
    assert result["metric"] == "DER" and result["task_options"]["frame_shift"] == 160
    assert result["task_options"]["collar"] == 0.0 and result["task_options"]["skip_overlap"] is False
    assert result["metrics"]["DER"] < 0.6  # two well separated pitches: far better than one speaker all along
    # one scoring path: `s3prl score der` on the written RTTM gives the task's DER
    capsys.readouterr()
    assert main(["score", "der", str(kaldi_root / "test" / "rttm"), str(exp / "test_predict.rttm"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["total"]["DER"] == pytest.approx(result["metrics"]["DER"], abs=1e-9)
    details = json.loads((exp / "test_der.json").read_text())
    assert details["policy"]["collar"] == 0.0 and details["decision"]["frame_shift"] == 160
    assert len(details["threshold_median_grid"]["grid"]) == 10
    assert main(["downstream", "evaluate", "-e", str(exp), "-t", "dev"]) == 0
    assert (exp / "dev_predict.rttm").is_file() and (exp / "results_dev.json").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not AMI.is_dir(), reason="set S3PRL_TEST_DATA to ../shared/data for ami_mini")
def test_ami_beats_trivial_baselines_and_equals_pyannote(tmp_path, monkeypatch):
    """Real meetings (a short run; docs/diarization.md has the full record): better than any trivial output."""
    pytest.importorskip("pyannote.metrics")
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import diarization_ami

    monkeypatch.setenv("S3PRL_DATA", str(AMI.parent))
    exp = tmp_path / "ami"
    opts = (f"task.root={AMI},,data.cache_dir={tmp_path / 'cache'},,data.num_workers=0,,train.total_steps=50,,"
            "train.eval_step=50,,train.save_step=50")
    assert main(["downstream", "train", "-u", "fbank", "-d", "ami_diarization", "-p", str(exp), "-o", opts]) == 0
    reference, uem = der.read_rttm(AMI / "debug.test.rttm"), der.read_uem(AMI / "debug.test.uem")
    hypothesis = der.read_rttm(exp / "test_predict.rttm")
    ours = der.score(reference, hypothesis, uem)["total"]["DER"]
    assert ours == pytest.approx(json.loads((exp / "results.json").read_text())["metrics"]["DER"], abs=1e-9)
    assert ours == pytest.approx(diarization_ami.pyannote_der(reference, hypothesis, uem), abs=1e-6)
    for name, trivial in diarization_ami.baselines(reference, uem).items():
        assert ours < der.score(reference, trivial, uem)["total"]["DER"], name


def test_frame_shift_is_the_upstreams():
    task = sd.SD
    assert task.bind({"frame_shift": None}, 320)["frame_shift"] == 320
    with pytest.raises(ValueError, match="downsample rate is 320"):
        task.bind({"frame_shift": 160}, 320)
