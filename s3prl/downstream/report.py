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
PERCENT |= {"DER", "missed", "false_alarm", "confusion", "frame_accuracy"}  # diarization


def _number(name: str, value) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}%" if name in PERCENT else f"{value:.4f}"


def pyplot():
    """matplotlib's pyplot on the file-only backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, title: str) -> Path:
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
    return path


def plot_layer_weights(weights: dict[str, tuple[list[int], list[float]]], path: str | Path,
                       title: str = "learned layer weights") -> Path:
    """Bar chart of the Featurizer's softmax weights per hidden state, one panel per upstream."""
    plt = pyplot()
    n = len(weights)
    fig, axes = plt.subplots(1, n, figsize=(max(4.0, 3.2 * n), 3.0), squeeze=False)
    for ax, (name, (layers, values)) in zip(axes[0], weights.items()):
        ax.bar([str(l) for l in layers], values, color="#4477aa")
        ax.set_title(name if len(values) > 1 else f"{name} (one hidden state)", fontsize=9)
        ax.set_xlabel("hidden state")
        ax.set_ylim(0, max(values) * 1.15 if values else 1)
    axes[0][0].set_ylabel("weight")
    return save_figure(fig, path, title)


def read_history(path: str | Path) -> list[dict]:
    """The records of ``history.jsonl`` (a line cut by a killed run is skipped); a resumed run's repeats
    of a step replace the earlier record."""
    import json

    records: dict[tuple[str, int], dict] = {}
    for line in Path(path).read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        records[(rec.get("split", "train"), int(rec.get("step", 0)))] = rec
    return sorted(records.values(), key=lambda r: r["step"])


def plot_curves(history: str | Path, path: str | Path, metric: str | None = None, title: str = "training") -> Path | None:
    """Training loss (left) and each evaluated split's ``metric`` (right) against the step."""
    plt = pyplot()
    records = read_history(history)
    train = [r for r in records if r.get("split") == "train" and r.get("loss") == r.get("loss")]  # drop NaN
    evals: dict[str, list[dict]] = {}
    for r in records:
        if r.get("split") != "train" and metric in r:
            evals.setdefault(r["split"], []).append(r)
    if not train and not evals:
        return None
    fig, axes = plt.subplots(1, 2 if evals else 1, figsize=(9.0 if evals else 4.8, 3.2), squeeze=False)
    ax = axes[0][0]
    ax.plot([r["step"] for r in train], [r["loss"] for r in train], color="#4477aa")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    if evals:
        ax = axes[0][1]
        for split, rs in evals.items():
            ax.plot([r["step"] for r in rs], [r[metric] for r in rs], marker="o", label=split)
        ax.set_xlabel("step")
        ax.set_ylabel(metric)
        ax.legend(fontsize=8)
    return save_figure(fig, path, title)


def plot_diarization(reference: dict, hypothesis: dict, path: str | Path, mapping: dict | None = None,
                     uem: list | None = None, title: str = "diarization") -> Path:
    """One recording's timeline: a row per reference speaker (top) and per hypothesis speaker (bottom, labelled
    with the reference speaker it is mapped to), turns as bars; regions outside the UEM are shaded."""
    plt = pyplot()
    mapping = mapping or {}
    rows = [(f"ref {s}", reference[s], "#4477aa") for s in sorted(reference)]
    rows += [(f"hyp {h}" + (f" = {mapping[h]}" if h in mapping else ""), hypothesis[h], "#ee7733")
             for h in sorted(hypothesis)]
    ends = [e for _, segs, _ in rows for _, e in segs] + [e for _, e in (uem or [])]
    fig, ax = plt.subplots(figsize=(10, 0.45 * max(len(rows), 2) + 1.2))
    for i, (_, segs, color) in enumerate(rows):
        ax.broken_barh([(s, e - s) for s, e in segs], (i - 0.4, 0.8), facecolors=color)
    if uem:
        cursor = 0.0
        for s, e in sorted(uem):
            if s > cursor:
                ax.axvspan(cursor, s, color="0.85", zorder=0)
            cursor = e
    ax.set_yticks(range(len(rows)), [name for name, _, _ in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, max(ends, default=1.0))
    ax.set_xlabel("seconds")
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path, title)
