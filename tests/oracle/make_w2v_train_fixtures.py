"""Fixtures of ``s3prl wav2vec2 train``, checked by FAIRSEQ 0.12.2 (tests/test_wav2vec2_train.py).

Run from the project root with the PROJECT venv (about 1 minute; it calls the fairseq oracle venv itself):

    O=../shared/tools/fairseq-oracle; bash $O/setup.sh >/dev/null
    .venv/bin/python tests/oracle/make_w2v_train_fixtures.py tests/fixtures/w2v_train_oracle

What it writes:

* ``audio/`` + ``train.tsv`` / ``valid.tsv``: 7 synthetic 16 kHz 16-bit WAV files (root written as ``@ROOT@``);
* ``command.json``: the training flags (the seed's pre-training command with a tiny architecture and few updates);
* ``dump.pt``: OUR trainer ran that command (CPU, 1 thread) and wrote ``checkpoint_last.pt``; fairseq's own loader
  (``dump.py``, ``checkpoint_utils.load_model_ensemble_and_task``) read it and computed the features of two files
  alone (``single``: conv features, every layer, final ``x``, quantizer indices); only those tensors are kept.
  The test trains again with the same command and compares its checkpoint's features with fairseq's;
* ``optim.pt``: fairseq's ``adam`` + ``polynomial_decay`` on a fixed gradient sequence
  (``make_w2v_train_optim.py``, run in the oracle venv).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(os.path.dirname(HERE))
ORACLE = os.environ.get("FAIRSEQ_ORACLE_DIR", os.path.join(PROJECT, "..", "shared", "tools", "fairseq-oracle"))
ORACLE_PY = os.environ.get("FAIRSEQ_ORACLE_PYTHON",
                           os.path.expanduser("~/.cache/fairseq-oracle/venv/bin/python"))

SIZES = [9000, 11000, 8000, 12000, 10000, 9500, 10500]  # 5 train, 2 valid
TINY = ["--encoder-layers", "2", "--encoder-embed-dim", "32", "--encoder-ffn-embed-dim", "64",
        "--encoder-attention-heads", "4", "--conv-feature-layers", "[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32,2,2)] * 2",
        "--conv-pos", "16", "--conv-pos-groups", "4", "--final-dim", "16", "--latent-vars", "8",
        "--num-negatives", "10", "--mask-length", "3"]
# the seed's command (examples/wav2vec/README.md), tiny sizes and few updates
COMMAND = ["--save-dir", "@SAVE@", "--fp16", "--num-workers", "6", "--task", "audio_pretraining", "--criterion",
           "wav2vec", "--arch", "wav2vec2", "--log-keys", '["prob_perplexity","code_perplexity","temp"]',
           "--quantize-targets", "--extractor-mode", "default", "--latent-groups", "2",
           "--latent-temp", "(2,0.5,0.999995)", "--infonce", "--optimizer", "adam", "--adam-betas", "(0.9,0.98)",
           "--adam-eps", "1e-06", "--lr-scheduler", "polynomial_decay", "--total-num-update", "40", "--lr", "0.005",
           "--warmup-updates", "2", "--mask-prob", "0.65", "--mask-selection", "static", "--mask-other", "0",
           "--encoder-layerdrop", "0.05", "--dropout-input", "0.1", "--dropout-features", "0.1",
           "--feature-grad-mult", "0.1", "--loss-weights", "[0.1, 10]", "--cross-sample-negatives", "0",
           "--max-sample-size", "250000", "--min-sample-size", "3200", "--dropout", "0.1", "--attention-dropout",
           "0.1", "--weight-decay", "0.01", "--max-tokens", "24000", "--max-update", "6",
           "--skip-invalid-size-inputs-valid-test", "--ddp-backend", "no_c10d", "--log-interval", "2",
           "--no-progress-bar", "--seed", "3"] + TINY


def write_audio(folder: str) -> None:
    import soundfile

    rng = np.random.default_rng(7)
    os.makedirs(os.path.join(folder, "audio"), exist_ok=True)
    rows = []
    for i, n in enumerate(SIZES):
        t = np.arange(n) / 16000
        wav = 0.3 * np.sin(2 * np.pi * (150 + 40 * i) * t * (1 + 0.3 * t)) + 0.05 * rng.standard_normal(n)
        soundfile.write(os.path.join(folder, "audio", f"u{i}.wav"), wav.astype(np.float32), 16000, subtype="PCM_16")
        rows.append(f"u{i}.wav\t{n}")
    for name, part in (("train", rows[:5]), ("valid", rows[5:])):
        with open(os.path.join(folder, f"{name}.tsv"), "w") as f:
            f.write("@ROOT@\n" + "\n".join(part) + "\n")


def main(out: str) -> None:
    import torch

    os.makedirs(out, exist_ok=True)
    write_audio(out)
    with open(os.path.join(out, "command.json"), "w") as f:
        json.dump(COMMAND, f, indent=1)
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        shutil.copytree(out, data, ignore=shutil.ignore_patterns("*.pt", "*.json"))
        for name in ("train", "valid"):
            path = os.path.join(data, f"{name}.tsv")
            text = open(path).read().replace("@ROOT@", os.path.join(data, "audio"))
            open(path, "w").write(text)
        save = os.path.join(tmp, "ck")
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        subprocess.run([sys.executable, "-m", "s3prl.cli", "wav2vec2", "train", data,
                        *[a.replace("@SAVE@", save) for a in COMMAND]], check=True, env=env, cwd=PROJECT)
        wavs = [os.path.join(data, "audio", f"u{i}.wav") for i in (5, 6)]
        dump = os.path.join(tmp, "dump.pt")
        subprocess.run([ORACLE_PY, os.path.join(ORACLE, "dump.py"), "--ckpt", os.path.join(save, "checkpoint_last.pt"),
                        "--wav", *wavs, "--out", dump], check=True, env=env, stdout=subprocess.DEVNULL)
        d = torch.load(dump, weights_only=False)
        keep = {"single": [{k: v for k, v in s.items() if k in ("conv", "layers", "x", "quantizer_idx")}
                           for s in d["single"]],
                "meta": {"kind": d["meta"]["kind"], "model_class": d["meta"]["model_class"],
                         "versions": d["meta"]["versions"], "wavs": ["u5.wav", "u6.wav"]}}
        torch.save(keep, os.path.join(out, "dump.pt"))
        subprocess.run([ORACLE_PY, os.path.join(HERE, "make_w2v_train_optim.py"), os.path.join(out, "optim.pt")],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(PROJECT, "tests", "fixtures", "w2v_train_oracle"))
