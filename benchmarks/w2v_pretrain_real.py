"""Learning check of ``s3prl wav2vec2 train`` on real recordings: a tiny wav2vec 2.0 pre-trained for a few
hundred updates on /work/shared/data's librispeech_test_other_mini (100 FLAC files) + ljspeech_mini (32 clips,
resampled 22.05 -> 16 kHz into a temporary folder; nothing is copied into the project).

    S3PRL_TEST_DATA=../shared/data OMP_NUM_THREADS=1 .venv/bin/python benchmarks/w2v_pretrain_real.py \\
        [--updates 300] [--profile seed|fast|continuous] [--work /tmp/w2v_real] \\
        [--png docs/wav2vec2_pretraining_loss.png] [--set=--FLAG=VALUE ...]

The command is the seed's pre-training command line (examples/wav2vec/README.md) with a tiny architecture, a
short schedule (warm-up 40, decay over --updates), 2 s crops and 4 files per batch (CPU). Prints the first / last logged values
(contrastive accuracy, perplexities, loss) and the validation losses, and draws them into the PNG.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent

TINY = ["--encoder-layers", "2", "--encoder-embed-dim", "64", "--encoder-ffn-embed-dim", "256",
        "--encoder-attention-heads", "4", "--conv-feature-layers", "[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32,2,2)] * 2",
        "--conv-pos", "32", "--conv-pos-groups", "4", "--final-dim", "32", "--latent-vars", "64"]


# --profile fast: what differs from the seed's values (a tiny model leaves the chance plateau sooner)
FAST = {"--lr": "0.005", "--warmup-updates": "20", "--num-negatives": "20", "--mask-length": "5",
        "--max-sample-size": "16000", "--min-sample-size": "16000", "--encoder-layerdrop": "0.0"}


def seed_command(data: str, save: str, updates: int, profile: str = "seed") -> list[str]:
    cmd = _seed_command(data, save, updates)
    if profile in ("fast", "continuous"):
        for flag, value in FAST.items():
            cmd[cmd.index(flag) + 1] = value
    if profile == "continuous":  # sanity check of the loop: unquantized targets (no Gumbel noise), no diversity loss
        cmd.remove("--quantize-targets")
        cmd[cmd.index("--loss-weights") + 1] = "[10]"
    return cmd


def _seed_command(data: str, save: str, updates: int) -> list[str]:
    return ["wav2vec2", "train", data, "--save-dir", save, "--fp16", "--num-workers", "6", "--task",
            "audio_pretraining", "--criterion", "wav2vec", "--arch", "wav2vec2", "--log-keys",
            '["prob_perplexity","code_perplexity","temp"]', "--quantize-targets", "--extractor-mode", "default",
            "--latent-groups", "2", "--latent-temp", "(2,0.5,0.999995)", "--infonce", "--optimizer", "adam",
            "--adam-betas", "(0.9,0.98)", "--adam-eps", "1e-06", "--lr-scheduler", "polynomial_decay",
            "--total-num-update", str(updates), "--lr", "0.001", "--warmup-updates", "40", "--mask-length", "10",
            "--mask-prob", "0.65", "--mask-selection", "static", "--mask-other", "0", "--encoder-layerdrop", "0.05",
            "--dropout-input", "0.1", "--dropout-features", "0.1", "--feature-grad-mult", "0.1", "--loss-weights",
            "[0.1, 10]", "--num-negatives", "100", "--cross-sample-negatives", "0", "--max-sample-size",
            "32000", "--min-sample-size", "16000", "--dropout", "0.1", "--attention-dropout", "0.1",
            "--weight-decay", "0.01", "--max-tokens", "128000", "--max-update", str(updates),
            "--skip-invalid-size-inputs-valid-test", "--ddp-backend", "no_c10d", "--log-interval", "10",
            "--validate-interval-updates", "50", "--save-interval-updates", "100", "--no-progress-bar"] + TINY


def prepare(shared: Path, work: Path) -> Path:
    """Manifest over the LibriSpeech FLACs (in place) and 16 kHz copies of the LJSpeech clips (in ``work``)."""
    import soundfile

    from s3prl.audio import load_audio

    audio = work / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    files = []
    for path in sorted((shared / "librispeech_test_other_mini").rglob("*.flac")):
        link = audio / path.name
        if not link.exists():
            link.symlink_to(path.resolve())  # a relative S3PRL_TEST_DATA would dangle
        files.append((path.name, soundfile.info(str(path)).frames))
    for path in sorted((shared / "ljspeech_mini").glob("*.wav")):
        out = audio / path.name
        if not out.exists():
            soundfile.write(str(out), load_audio(path, 16000).numpy(), 16000, subtype="PCM_16")
        files.append((path.name, soundfile.info(str(out)).frames))
    valid = [f for i, f in enumerate(files) if i % 11 == 5]  # 12 files, both corpora
    train = [f for f in files if f not in valid]
    for name, rows in (("train", train), ("valid", valid)):
        (work / f"{name}.tsv").write_text(str(audio) + "\n" + "".join(f"{r}\t{n}\n" for r, n in rows))
    return work


def plot(history: list[dict], png: Path, chance: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [h for h in history if h["split"] == "train_inner"]
    valid = [h for h in history if h["split"] == "valid"]
    quantized = bool(train) and "code_perplexity" in train[0]
    fig, axes = plt.subplots(1, 4 if quantized else 3, figsize=(17 if quantized else 13, 3.8))
    steps = [h["step"] for h in train]
    axes[0].plot(steps, [h["loss"] for h in train], label="train loss (bits)")
    axes[0].plot([h["step"] for h in valid], [h["loss"] for h in valid], "o-", label="valid loss (bits)")
    if chance is not None:
        axes[0].axhline(chance, color="grey", linestyle="--", label="chance log2(K+1)")
    axes[0].set_xlabel("update"), axes[0].legend()
    axes[1].plot(steps, [h["accuracy"] for h in train], label="train contrastive accuracy")
    axes[1].plot([h["step"] for h in valid], [h["accuracy"] for h in valid], "o-", label="valid accuracy")
    axes[1].set_xlabel("update"), axes[1].legend()
    # the feature penalty is the last extra loss: loss_2 with the quantizer (loss_1 = diversity), else loss_1
    pen = "loss_2" if quantized else "loss_1"
    axes[2].semilogy([h["step"] for h in train if pen in h], [h[pen] for h in train if pen in h],
                     label="weighted feature penalty (bits)")
    axes[2].set_xlabel("update"), axes[2].legend()
    if quantized:
        for key in ("code_perplexity", "prob_perplexity"):
            axes[3].plot(steps, [h[key] for h in train], label=key.replace("_", " "))
        axes[3].set_xlabel("update"), axes[3].legend()
    fig.suptitle("s3prl wav2vec2 train: tiny wav2vec 2.0 on librispeech_test_other_mini + ljspeech_mini (CPU)")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=64)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--updates", type=int, default=300)
    p.add_argument("--profile", choices=("seed", "fast", "continuous"), default="seed",
                   help="seed: the values of seed_command; fast: FAST on top; continuous: fast without the "
                        "quantizer (a sanity check that the loop learns)")
    p.add_argument("--work", default="/tmp/w2v_real")
    p.add_argument("--png", default=str(PROJECT / "docs" / "wav2vec2_pretraining_loss.png"))
    p.add_argument("--set", action="append", default=[], metavar="FLAG=VALUE",
                   help="replace a flag's value of the profile's command (or add the flag), e.g. "
                        "--set=--loss-weights=[0.1,0]; repeatable")
    args = p.parse_args()
    shared = Path(os.environ.get("S3PRL_TEST_DATA", PROJECT.parent / "shared" / "data"))
    if not (shared / "librispeech_test_other_mini").is_dir():
        print(f"no librispeech_test_other_mini under {shared}: set S3PRL_TEST_DATA", file=sys.stderr)
        return 1
    work = Path(args.work)
    data = prepare(shared, work)
    save = work / "ck"
    cmd = [sys.executable, "-m", "s3prl.cli", *seed_command(str(data), str(save), args.updates, args.profile)]
    for change in args.set:
        flag, _, value = change.partition("=")
        if flag in cmd:
            cmd[cmd.index(flag) + 1] = value
        else:
            cmd += [flag, value]
    print("command: s3prl " + " ".join(cmd[3:]), flush=True)
    started = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=PROJECT)
    seconds = time.perf_counter() - started
    history = [json.loads(line) for line in (save / "history.jsonl").read_text().splitlines()]
    train = [h for h in history if h["split"] == "train_inner"]
    valid = [h for h in history if h["split"] == "valid"]
    plot(history, Path(args.png), math.log2(int(cmd[cmd.index("--num-negatives") + 1]) + 1))
    keys = ("loss", "loss_0", "loss_2", "accuracy", "code_perplexity", "prob_perplexity", "temp", "lr")
    print(f"{train[-1]['step']} of {args.updates} updates in {seconds:.0f} s "
          f"(torch threads: {os.environ.get('OMP_NUM_THREADS', '?')})")
    for h in (train[0], train[len(train) // 2], train[-1]):
        print(f"update {h['step']:4d}: " + ", ".join(f"{k} {h[k]:.4g}" for k in keys if k in h))
    print("valid: " + ", ".join(f"{h['step']}: loss {h['loss']:.3f} acc {h['accuracy']:.3f}" for h in valid))
    print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
