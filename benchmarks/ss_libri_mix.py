"""A small real-data SS run: Libri2Mix-style two-speaker mixtures made from the real LibriSpeech recordings of
$S3PRL_TEST_DATA/librispeech_test_other_mini, then an SS task (fbank upstream, reduced head).

    S3PRL_TEST_DATA=../shared/data python benchmarks/ss_libri_mix.py [WORKDIR] [STEPS] [TASK]

Mixtures ("min" mode as Libri2Mix: cut to the shorter utterance, here also to at most 4 s): each source scaled to
the same RMS, then a random relative gain in [-2.5, 2.5] dB, the sum scaled below clipping. Speakers: 8 for
train (120 mixtures) and dev (8 mixtures of other utterance pairs of the same speakers), the other 2 speakers
only in test (10 mixtures: held-out speakers). Written as the original's Kaldi-style lists
(<split>/{mix_clean,s1,s2}/wav.scp); TASK (default `separation_stft`), fbank upstream, BLSTM 2 x 96.
After training: the test SI-SDRi, the separated audio written
(WORKDIR/exp/test_audio), and `s3prl score sisdr` on it against the true sources.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from s3prl.cli import main as s3prl

SRC = Path(os.environ["S3PRL_TEST_DATA"]) / "librispeech_test_other_mini"
work = Path(sys.argv[1] if len(sys.argv) > 1 else "result/ss_libri_mix")
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 300
task = sys.argv[3] if len(sys.argv) > 3 else "separation_stft"  # or separation_stft2
MAX = 4 * 16000


def mix(a: np.ndarray, b: np.ndarray, rng: random.Random) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = min(len(a), len(b), MAX)
    a, b = a[:n] / (np.sqrt(np.mean(a[:n] ** 2)) + 1e-9), b[:n] / (np.sqrt(np.mean(b[:n] ** 2)) + 1e-9)
    b = b * 10 ** (rng.uniform(-2.5, 2.5) / 20)
    scale = 0.9 / max(np.max(np.abs(a + b)), np.max(np.abs(a)), np.max(np.abs(b)))
    return (a + b) * scale, a * scale, b * scale


def write_split(split: str, pairs: list, rng: random.Random) -> None:
    lists = {c: [] for c in ("mix_clean", "s1", "s2")}
    for k, (p1, p2) in enumerate(pairs):
        name = f"{p1.stem}_{p2.stem}"
        sigs = dict(zip(("mix_clean", "s1", "s2"), mix(sf.read(p1)[0], sf.read(p2)[0], rng)))
        for cond, x in sigs.items():
            path = work / "data" / split / cond / f"{name}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, x, 16000, subtype="PCM_16")
            lists[cond].append(f"{name} {path.resolve()}\n")
    for cond, lines in lists.items():
        (work / "data" / split / cond / "wav.scp").write_text("".join(lines))


def make_data() -> None:
    rng = random.Random(0)
    speakers = sorted(p.name for p in SRC.iterdir() if p.is_dir())
    files = {s: sorted((SRC / s).rglob("*.flac")) for s in speakers}
    seen, test_spk = speakers[:8], speakers[8:]
    pool = [(a, b) for i, s in enumerate(seen) for t in seen[i + 1:] for a in files[s] for b in files[t]]
    rng.shuffle(pool)
    write_split("train", pool[:120], rng)
    write_split("dev", pool[120:128], rng)
    write_split("test", list(zip(files[test_spk[0]], files[test_spk[1]])), rng)


make_data()
exp = work / "exp"
opts = (f"task.root={work / 'data'},,task.hidden_size=96,,task.rnn_layers=2,,task.dropout=0.0,,data.num_workers=0,,"
        f"task.metrics=[si_sdr],,train.total_steps={steps},,train.eval_step={steps // 3},,"
        f"train.save_step={steps // 3},,train.log_step={steps // 6},,train.lr=1e-3,,data.batch_seconds=16")
rc = s3prl(["downstream", "train", "-u", "fbank", "-d", task, "-p", str(exp), "-o", opts])
if rc:
    sys.exit(rc)
metrics = json.loads((exp / "results.json").read_text())["metrics"]
print(json.dumps(metrics, indent=1))
# the written audio, scored outside the run against the true sources (s1 / s2 in the order PIT picked)
refs, ests = work / "score_ref", work / "score_est"
for d in (refs, ests):
    d.mkdir(exist_ok=True)
for line in (work / "data" / "test" / "s1" / "wav.scp").read_text().splitlines():
    name = line.split()[0]
    s = [sf.read(work / "data" / "test" / c / f"{name}.wav")[0] for c in ("s1", "s2")]
    e = [sf.read(exp / "test_audio" / f"{name}_s{k}.wav")[0] for k in (1, 2)]
    straight = np.dot(s[0], e[0]) ** 2 + np.dot(s[1], e[1]) ** 2
    swapped = np.dot(s[0], e[1]) ** 2 + np.dot(s[1], e[0]) ** 2
    order = (1, 0) if swapped > straight else (0, 1)
    for k in (0, 1):
        sf.write(refs / f"{name}_s{k + 1}.wav", s[k], 16000, subtype="PCM_16")
        sf.write(ests / f"{name}_s{k + 1}.wav", e[order[k]], 16000, subtype="PCM_16")
s3prl(["score", "sisdr", str(refs), str(ests)])
