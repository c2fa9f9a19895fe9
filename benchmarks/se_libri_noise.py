"""SE trained on real clean speech plus noise, tested on held-out pairs and on the real VoiceBank-DEMAND pairs.

    S3PRL_TEST_DATA=../shared/data python benchmarks/se_libri_noise.py [WORKDIR] [STEPS] [demand|babble] [TASK]

Clean speech: the real LibriSpeech recordings of $S3PRL_TEST_DATA/librispeech_test_other_mini (first 6 s of each).
Noise, added at a random SNR:
  demand (default): the real DEMAND noise of VoiceBank-DEMAND pairs p287_001..003 (noisy minus clean), a random
      stretch of one of them, half of the time plus coloured Gaussian noise of a random spectral tilt; SNR in
      [0, 15] dB. The VoiceBank pairs p287_004..006 then have noise recordings never seen in training.
  babble: three utterances of other speakers (same RMS each) plus pink noise; SNR in [0, 10] dB.
Speakers: 8 for train (2 noise draws per utterance: 160 pairs), 1 for dev (10), 1 for test (10).
Written as the original's lists (<split>/{noisy,clean}/wav.scp); TASK (default `enhancement_stft`) with the fbank
upstream and a reduced head (BLSTM 2 x 96). Then `s3prl downstream enhance` on the 6 VoiceBank-DEMAND noisy files
(another speaker; in demand mode the noise of 004..006 was never seen) and `s3prl score pesq|stoi|sisdr` of the enhanced and of the noisy audio.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from s3prl.cli import main as s3prl

DATA = Path(os.environ["S3PRL_TEST_DATA"])
work = Path(sys.argv[1] if len(sys.argv) > 1 else "result/se_libri_noise")
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 600
kind = sys.argv[3] if len(sys.argv) > 3 else "demand"
task = sys.argv[4] if len(sys.argv) > 4 else "enhancement_stft"
VB = DATA / "voicebank_demand_mini"
SEEN = ("p287_001", "p287_002", "p287_003")  # their noise is used for training (demand mode)
MAX = 6 * 16000


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x ** 2)) + 1e-9)


def coloured(n: int, rng: np.random.Generator, tilt: float = 1.0) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.arange(1, len(spec) + 1) ** (tilt / 2)  # 1/f^tilt power (tilt 1: pink)
    x = np.fft.irfft(spec, n)
    return x / rms(x)


DEMAND = [sf.read(VB / "noisy" / f"{n}.wav")[0] - sf.read(VB / "clean" / f"{n}.wav")[0] for n in SEEN]


def make_noise(n: int, others: list[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, float]:
    if kind == "babble":
        babble = sum(np.resize(o, n) / rms(o) for o in others) / 3
        return babble / rms(babble) + 0.5 * coloured(n, rng), rng.uniform(0, 10)
    rec = DEMAND[rng.integers(len(DEMAND))]
    rec = np.roll(np.resize(rec, max(n, len(rec))), -int(rng.integers(len(rec))))[:n]
    noise = rec / rms(rec)
    if rng.random() < 0.5:
        noise = noise + rng.uniform(0.2, 1.0) * coloured(n, rng, rng.uniform(0.0, 2.0))
    return noise, rng.uniform(0, 15)


def noisy_pair(clean: np.ndarray, others: list[np.ndarray], rng: np.random.Generator):
    noise, snr = make_noise(len(clean), others, rng)
    noise *= rms(clean) / rms(noise) / 10 ** (snr / 20)
    scale = 0.9 / max(np.max(np.abs(clean + noise)), 1e-9)
    return (clean + noise) * min(scale, 1.0), clean * min(scale, 1.0)


def make_data() -> None:
    rng = np.random.default_rng(0)
    src = DATA / "librispeech_test_other_mini"
    speakers = sorted(p.name for p in src.iterdir() if p.is_dir())
    audio = {s: [sf.read(f)[0][:MAX] for f in sorted((src / s).rglob("*.flac"))] for s in speakers}
    plan = {"train": (speakers[:8], 2), "dev": (speakers[8:9], 1), "test": (speakers[9:], 1)}
    for split, (spks, draws) in plan.items():
        lists = {"noisy": [], "clean": []}
        for spk in spks:
            for k, clean in enumerate(audio[spk]):
                others = [a for s in speakers if s != spk for a in audio[s]]  # babble: other speakers
                for d in range(draws):
                    picks = [others[i] for i in rng.choice(len(others), 3, replace=False)]
                    pair = dict(zip(("noisy", "clean"), noisy_pair(clean, picks, rng)))
                    name = f"{spk}_{k:02d}_{d}"
                    for cond, x in pair.items():
                        path = work / "data" / split / cond / f"{name}.wav"
                        path.parent.mkdir(parents=True, exist_ok=True)
                        sf.write(path, x, 16000, subtype="PCM_16")
                        lists[cond].append(f"{name} {path.resolve()}\n")
        for cond, lines in lists.items():
            (work / "data" / split / cond / "wav.scp").write_text("".join(lines))


def score_folder(ref: Path, est: Path) -> dict:
    """Mean over all files and over the files whose noise training never saw (demand mode: p287_004..006)."""
    import contextlib
    import io

    out = {}
    for metric in ("pesq", "stoi", "sisdr"):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert s3prl(["score", metric, str(ref), str(est), "--json"]) == 0
        result = json.loads(buf.getvalue())
        unseen = [r["score"] for f, r in result["per_file"].items() if Path(f).stem not in SEEN]
        out[metric] = {"all 6": result["mean"]["score"], "unseen noise (004-006)": float(np.mean(unseen))}
    return out


make_data()
exp = work / "exp"
opts = (f"task.root={work / 'data'},,task.hidden_size=96,,task.rnn_layers=2,,task.dropout=0.0,,data.num_workers=0,,"
        f"train.total_steps={steps},,train.eval_step={steps // 4},,train.save_step={steps // 4},,"
        f"train.log_step={steps // 12},,train.lr=1e-3,,data.batch_seconds=16")
rc = s3prl(["downstream", "train", "-u", "fbank", "-d", task, "-p", str(exp), "-o", opts])
if rc:
    sys.exit(rc)
held_out = json.loads((exp / "results.json").read_text())["metrics"]
vb = VB
enhanced = work / "voicebank_enhanced"
assert s3prl(["downstream", "enhance", "-e", str(exp), *map(str, sorted((vb / "noisy").glob("*.wav"))),
              "-o", str(enhanced)]) == 0
report = {"task": task, "noise": kind, "steps": steps, "held-out LibriSpeech + noise (test, 10 pairs)": {
              "enhanced": {k: held_out[k] for k in ("pesq", "stoi", "si_sdr")},
              "noisy": {"pesq": held_out["input_pesq"], "stoi": held_out["input_stoi"],
                        "si_sdr": held_out["input_si_sdr"]}},
          "VoiceBank-DEMAND (6 real pairs)": {"enhanced": score_folder(vb / "clean", enhanced),
                                               "noisy": score_folder(vb / "clean", vb / "noisy")}}
print(json.dumps(report, indent=1))
(work / "report.json").write_text(json.dumps(report, indent=1))
