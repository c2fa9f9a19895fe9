"""Learning check of the CTC tasks on a synthesized corpus (CPU, minutes): PR and ASR heads on fbank learn.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ctc_espeak_learning.py OUTDIR [--steps 600]

1. Synthesizes, with espeak-ng, sentences of 3-5 spoken digits ("three one four") in the LibriSpeech layout:
   ``train-clean-100`` (voices 0-3), ``dev-clean`` (voice 4) and ``test-clean`` (voice 5, unseen in training),
   with the speed / pitch / noise variation of ``s3prl demo``.
2. Trains ``ctc_libriphone`` (PR, words -> phonemes by the CMU dictionary) and ``asr`` (characters) with the
   runner exactly as ``s3prl downstream train -u fbank -d TASK`` does, with a small BLSTM head
   (``task.model``) so that it runs on a CPU, and prints the test PER / WER next to the untrained head's.
3. Builds a 3-gram of the training transcripts (``s3prl lm build``) and decodes the ASR test set with it
   (lexicon + KenLM beam search, ``task.decoder``).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from s3prl.cli import main as s3prl
from s3prl.downstream.demo import DIGITS, VOICES, add_noise, find_espeak

SPLITS = (("train-clean-100", (0, 1, 2, 3), 60), ("dev-clean", (4,), 30), ("test-clean", (5,), 30))
HEAD = ("task.model={project_dim: 128, select: RNNs, module: LSTM, bidirection: true, dim: [128, 128], "
        "dropout: [0.1, 0.1], layer_norm: [false, false], proj: [false, false], sample_rate: [1, 1], "
        "sample_style: concat, total_rate: -1}")


def synthesize(root: Path, seed: int = 0) -> Path:
    exe, rng, jobs = find_espeak(), random.Random(seed), []
    for subset, voices, per_voice in SPLITS:
        for v in voices:
            spk, chapter = 100 + v, 1
            folder = root / subset / str(spk) / str(chapter)
            folder.mkdir(parents=True, exist_ok=True)
            lines = []
            for u in range(per_voice):
                words = [rng.choice(DIGITS) for _ in range(rng.randint(3, 5))]
                speed, pitch, snr = rng.randint(130, 190), rng.randint(30, 70), rng.uniform(15.0, 30.0)
                uid = f"{spk}-{chapter}-{u:04d}"
                path = folder / f"{uid}.wav"
                lines.append(f"{uid} {' '.join(words).upper()}")
                if not path.is_file():
                    raw = path.with_name(uid + ".espeak.wav")
                    jobs.append(([exe, "-v", VOICES[v], "-s", str(speed), "-p", str(pitch), "-w", str(raw),
                                  " ".join(words)], raw, path, snr))
            (folder / f"{spk}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    with ThreadPoolExecutor(max_workers=2) as pool:
        for done in pool.map(lambda job: subprocess.run(job[0], capture_output=True, text=True), jobs):
            if done.returncode != 0:
                raise RuntimeError(done.stderr)
    for _, raw, path, snr in jobs:
        add_noise(raw, path, snr)
    return root


def train(task: str, root: Path, out: Path, steps: int, lr: float) -> dict:
    exp = out / f"{task}_{steps}"
    opts = (f"task.root={root},,data.cache_dir={out / 'cache'},,data.num_workers=0,,train.total_steps={steps},,"
            f"train.eval_step={max(1, steps // 4)},,train.save_step={max(1, steps // 4)},,train.log_step=50,,"
            f"train.gradient_accumulate_steps=1,,train.lr={lr},,data.batch_seconds=40,,{HEAD}")
    if not (exp / "results.json").is_file():
        assert s3prl(["downstream", "train", "-u", "fbank", "-d", task, "-p", str(exp), "-o", opts]) == 0
    return json.loads((exp / "results.json").read_text())["metrics"]


def run(out: Path, steps: int) -> dict:
    root = synthesize(out / "corpus")
    results = {}
    for task, metric, lr in (("ctc_libriphone", "per", 2e-3), ("asr", "wer", 2e-3)):
        before = train(task, root, out, 1, lr)[metric]
        after = train(task, root, out, steps, lr)
        results[task] = {"untrained_1_step": before, f"after_{steps}_steps": after}
        print(f"{task}: test {metric} {before:.4f} after 1 step -> {after[metric]:.4f} after {steps} steps; "
              f"all: {after}", flush=True)
    results["asr"]["with_lm"] = lm_evaluation(root, out, out / f"asr_{steps}")
    print(f"asr with a 3-gram LM of the training transcripts: {results['asr']['with_lm']}", flush=True)
    (out / "ctc_learning.json").write_text(json.dumps(results, indent=1))
    return results


def lm_evaluation(root: Path, out: Path, exp: Path) -> dict:
    """``s3prl lm build`` on the training transcripts, then the ASR test set decoded with it."""
    texts = [str(p) for p in sorted((root / "train-clean-100").rglob("*.trans.txt"))]
    assert s3prl(["lm", "build", *texts, "--with-ids", "-o", str(out / "lm.arpa"), "--order", "3",
                  "--lexicon", str(out / "lexicon.lst")]) == 0
    assert s3prl(["downstream", "evaluate", "-e", str(exp), "-t", "test", "-o",
                  f"task.decoder={{kenlm_model: {out / 'lm.arpa'}, lexicon: {out / 'lexicon.lst'}}}"]) == 0
    return json.loads((exp / "results_test.json").read_text())["metrics"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--steps", type=int, default=600)
    args = parser.parse_args()
    run(args.outdir, args.steps)
    sys.exit(0)
