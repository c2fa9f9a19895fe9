"""Reporting: the results table (markdown, readable in a terminal) and the layer-weight plot (PNG)."""

from __future__ import annotations

from pathlib import Path


def results_table(records: list[dict]) -> str:
    """One row per results record (``runner.record``): task, upstream, split, every metric, checkpoint."""
    names = []
    for rec in records:
        names += [k for k in rec["metrics"] if k not in names]
    header = ["task", "upstream", "split", *names, "checkpoint"]
    rows = [header, ["---"] * len(header)]
    for rec in records:
        values = [_number(k, rec["metrics"].get(k)) for k in names]
        rows.append([rec["task"], rec["upstream"], rec["split"], *values, str(rec.get("checkpoint", ""))])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows)


PERCENT = {"accuracy", "balanced_accuracy", "EER"}


def _number(name: str, value) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}%" if name in PERCENT else f"{value:.4f}"


def plot_layer_weights(weights: dict[str, tuple[list[int], list[float]]], path: str | Path,
                       title: str = "learned layer weights") -> Path:
    """Bar chart of the Featurizer's softmax weights per hidden state, one panel per upstream."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    n = len(weights)
    fig, axes = plt.subplots(1, n, figsize=(max(4.0, 3.2 * n), 3.0), squeeze=False)
    for ax, (name, (layers, values)) in zip(axes[0], weights.items()):
        ax.bar([str(l) for l in layers], values, color="#4477aa")
        ax.set_title(name if len(values) > 1 else f"{name} (one hidden state)", fontsize=9)
        ax.set_xlabel("hidden state")
        ax.set_ylim(0, max(values) * 1.15 if values else 1)
    axes[0][0].set_ylabel("weight")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
