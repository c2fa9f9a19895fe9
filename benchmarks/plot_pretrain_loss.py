"""Draw the training loss of one or more `s3prl pretrain` runs (their history.jsonl) into a PNG.

    python benchmarks/plot_pretrain_loss.py OUT.png EXPDIR [EXPDIR ...]
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(out: str, expdirs: list[str]) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for expdir in expdirs:
        records = [json.loads(line) for line in open(Path(expdir) / "history.jsonl")]
        train = [r for r in records if r.get("split") == "train"]
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label=Path(expdir).name)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
