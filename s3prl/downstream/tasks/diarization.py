"""Speaker diarization (SD), as the original ``downstream/diarization`` with one scoring path.

* Labels: per-speaker frame activity at the upstream's downsample rate (the task's ``frame_shift``, set by
  the runner and stored in every checkpoint); training on chunks of ``chunk_size`` frames (2000).
* Head: the original's: a 1-layer unidirectional LSTM (512) and a linear layer, one logit per speaker slot.
* Loss: permutation-invariant BCE (PIT): for each utterance the speaker order of the labels that gives the
  lowest BCE (mean over speakers, summed over valid frames), summed over the batch / the number of frames.
* Inference: whole recordings; posteriors (sigmoid) > ``threshold``, a ``median`` filter over frames
  (zero-padded at the ends, as scipy's ``medfilt``), turns per speaker slot -> RTTM (``<rec>_<slot>``).
* Score: DER of :mod:`s3prl.metrics.der` against the reference turns (the RTTM when the data has one), with the
  policy in the task options (defaults: the original's dscore settings: collar 0, overlap scored, UEM when the
  data has one). Also reported: DER at every ``thresholds`` x ``medians`` (the original's score.sh grid) and
  the frame accuracy after the best permutation (the original's in-training "acc").
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...metrics import der
from ..corpora import diarization as corpus
from ..data import SAMPLE_RATE
from .base import Downstream, Objective, Task, data_root, register


class DiarizationHead(nn.Module):
    """LSTM(input -> hidden, ``rnn_layers``) + Linear(hidden -> speakers): logits (B, T, N).
    ``rnn_layers=0``: the linear layer alone (the original's option)."""

    def __init__(self, input_size: int, num_speakers: int, hidden_size: int = 512, rnn_layers: int = 1):
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, num_layers=rnn_layers, batch_first=True) if rnn_layers else None
        self.linear = nn.Linear(hidden_size if rnn_layers else input_size, num_speakers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rnn is not None:
            x, _ = self.rnn(x.float())  # (B, T, H); causal, so padding at the end leaves valid frames alone
        return self.linear(x.float())  # (B, T, N)


def match_length(x: torch.Tensor, frames: int) -> torch.Tensor:
    """Features (B, T, D) brought to ``frames`` label frames as the original: repeated ``round(frames / T)`` times
    each when the labels are denser, then cut, or padded with the last frame."""
    factor = int(round(frames / max(x.size(1), 1)))
    if factor > 1:
        x = x.repeat_interleave(factor, dim=1)
    if x.size(1) >= frames:
        return x[:, :frames]
    return torch.cat([x, x[:, -1:].expand(-1, frames - x.size(1), -1)], dim=1)


def pit_loss(logits: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Permutation-invariant BCE. logits, labels (B, T, N); lengths (B,) valid frames.

    Returns the loss (sum over utterances of the best permutation's BCE, each summed over valid frames and
    averaged over speakers, divided by the total of valid frames) and the best permutation per utterance (B, N):
    output slot ``i`` is label column ``perm[b, i]``."""
    n = labels.size(2)
    valid = (torch.arange(labels.size(1), device=labels.device)[None] < lengths.to(labels.device)[:, None]).float()
    # pair[b, i, j]: BCE of output i against label column j, summed over valid frames  (B, N, N)
    out = logits.float()[:, :, :, None].expand(-1, -1, -1, n)
    tgt = labels.float()[:, :, None, :].expand(-1, -1, n, -1)
    pair = (F.binary_cross_entropy_with_logits(out, tgt, reduction="none") * valid[:, :, None, None]).sum(1)
    perms = torch.tensor(list(itertools.permutations(range(n))), device=labels.device)  # (P, N)
    per_perm = pair[:, torch.arange(n, device=labels.device)[None], perms].mean(-1)  # (B, P)
    best, index = per_perm.min(dim=1)
    return best.sum() / lengths.sum().to(best.device).float(), perms[index]


def sd_loss(ds: Downstream, x: torch.Tensor, lengths: torch.Tensor, labels: list) -> torch.Tensor:
    frames = [torch.from_numpy(lab.frames.astype(np.float32)) for lab in labels]
    label_lengths = torch.tensor([len(f) for f in frames])
    target = nn.utils.rnn.pad_sequence(frames, batch_first=True).to(x.device)  # (B, T, N)
    logits = ds.head(match_length(x, target.size(1)))
    return pit_loss(logits, target, label_lengths)[0]


def sd_predict(ds: Downstream, x: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
    posteriors = torch.sigmoid(ds.head(x)).float().cpu()  # (B, T, N)
    return [posteriors[b, :int(n)] for b, n in enumerate(lengths.tolist())]


# ------------------------------------------------------------------------------------------------
# posteriors -> turns -> DER
# ------------------------------------------------------------------------------------------------


def fit_frames(posteriors: np.ndarray, frames: int) -> np.ndarray:
    """Posteriors (T, N) cut to the recording's label frames, or padded with the last row (an upstream that gives
    fewer frames than ``duration / frame_shift``)."""
    if len(posteriors) >= frames:
        return posteriors[:frames]
    last = posteriors[-1:] if len(posteriors) else np.zeros((1, posteriors.shape[1]), posteriors.dtype)
    return np.concatenate([posteriors, np.repeat(last, frames - len(posteriors), axis=0)])


def median_filter(active: np.ndarray, width: int) -> np.ndarray:
    """Median over ``width`` frames of a 0/1 (T, N) array, zero-padded at both ends (scipy's ``medfilt``)."""
    if width <= 1:
        return active
    half = width // 2
    padded = np.pad(active.astype(np.int32), ((half, half), (0, 0)))
    sums = np.lib.stride_tricks.sliding_window_view(padded, width, axis=0).sum(-1)  # (T, N)
    return (sums > half).astype(active.dtype)


def decide(posteriors: np.ndarray, threshold: float, median: int) -> np.ndarray:
    """Speaking or not per frame and slot: ``posteriors > threshold``, then the median filter."""
    return median_filter((posteriors > threshold).astype(np.int32), median)


def to_turns(active: np.ndarray, rec: str, frame_shift: int) -> der.Turns:
    """Runs of active frames per slot -> ``{"<rec>_<slot>": [(start, end)]}`` in seconds."""
    step = frame_shift / SAMPLE_RATE
    turns = {}
    for slot in range(active.shape[1]):
        edges = np.flatnonzero(np.diff(np.pad(active[:, slot], (1, 1))))
        if len(edges):
            turns[f"{rec}_{slot}"] = [(s * step, e * step) for s, e in zip(edges[::2], edges[1::2])]
    return turns


def hypotheses(predictions: dict, examples, threshold: float, median: int) -> dict[str, der.Turns]:
    return {ex.uid: to_turns(decide(fit_frames(np.asarray(predictions[ex.uid]), len(ex.label.frames)), threshold,
                                    median), ex.label.rec, ex.label.frame_shift) for ex in examples}


def der_result(predictions: dict, examples, threshold: float, median: int) -> dict:
    scoring = examples[0].label.scoring
    reference = {ex.label.rec: ex.label.turns for ex in examples}
    uems = [ex.label.uem for ex in examples]
    uem = {ex.label.rec: ex.label.uem for ex in examples} if all(u is not None for u in uems) else None
    return der.score(reference, hypotheses(predictions, examples, threshold, median), uem,
                     collar=scoring["collar"], skip_overlap=scoring["skip_overlap"])


def frame_accuracy(predictions: dict, examples) -> float:
    """Share of (frame, slot) decisions at 0.5 equal to the labels under each recording's best slot order."""
    right = total = 0
    for ex in examples:
        ref = ex.label.frames.astype(bool)
        hyp = fit_frames(np.asarray(predictions[ex.uid]), len(ref)) > 0.5
        n = ref.shape[1]
        right += max(int((hyp == ref[:, list(p)]).sum()) for p in itertools.permutations(range(n)))
        total += ref.size
    return right / max(total, 1)


def sd_score(predictions: dict, examples, trials=None) -> dict:
    """DER (and its parts) at the task's threshold and median, and the frame accuracy."""
    scoring = examples[0].label.scoring
    main = der_result(predictions, examples, scoring["threshold"], scoring["median"])["total"]
    metrics = {"DER": main["DER"], "missed": main["missed_rate"], "false_alarm": main["false_alarm_rate"],
               "confusion": main["confusion_rate"], "frame_accuracy": frame_accuracy(predictions, examples)}
    return metrics


def der_grid(predictions: dict, examples) -> dict:
    """DER at every ``thresholds`` x ``medians`` (the original's score.sh grid), and the best of them."""
    scoring = examples[0].label.scoring
    grid = {f"threshold {th:g}, median {med}": der_result(predictions, examples, th, med)["total"]["DER"]
            for th, med in itertools.product(scoring["thresholds"], scoring["medians"])}
    return {"grid": grid, "best": min(grid, key=grid.get) if grid else None}


def sd_write(folder: Path, split: str, predictions: dict, examples) -> None:
    """``<split>_predict.rttm`` (the task's threshold and median), ``<split>_der.json`` / ``.md`` (policy, per
    recording), and ``<split>_timeline/<recording>.png`` (reference vs hypothesis)."""
    from ..report import plot_diarization

    scoring = examples[0].label.scoring
    hyp = hypotheses(predictions, examples, scoring["threshold"], scoring["median"])
    der.write_rttm(folder / f"{split}_predict.rttm", {ex.label.rec: hyp[ex.uid] for ex in examples})
    result = der_result(predictions, examples, scoring["threshold"], scoring["median"])
    result["decision"] = {"threshold": scoring["threshold"], "median": scoring["median"],
                          "frame_shift": examples[0].label.frame_shift}
    result["threshold_median_grid"] = der_grid(predictions, examples)
    (folder / f"{split}_der.json").write_text(json.dumps(result, indent=1))
    from ...cli.score_der import table

    (folder / f"{split}_der.md").write_text(
        f"DER of {split} (threshold {scoring['threshold']:g}, median filter {scoring['median']} frames)\n\n```\n"
        f"{table(result)}\n```\n\nDER over the original's threshold x median grid (picked on this split: "
        "optimistic):\n\n" + "".join(f"- {k}: {100 * v:.2f}%\n"
                                       for k, v in result["threshold_median_grid"]["grid"].items()))
    timeline = folder / f"{split}_timeline"
    timeline.mkdir(exist_ok=True)
    for ex in examples:
        rec = result["recordings"][ex.label.rec]
        plot_diarization(ex.label.turns, hyp[ex.uid], timeline / f"{ex.label.rec}.png", mapping=rec.get("mapping"),
                         uem=ex.label.uem, title=f"{ex.label.rec}: DER " +
                         ("n/a" if rec["DER"] is None else f"{100 * rec['DER']:.1f}%"))


DIARIZATION = Objective(sd_loss, sd_predict, sd_score, write=sd_write)


class DiarizationTask(Task):
    """A task whose labels are framed at the upstream's rate and whose head size is ``num_speakers``."""

    def bind(self, options: dict, downsample_rate: int) -> dict:
        given = options.get("frame_shift")
        if given not in (None, downsample_rate):
            raise ValueError(f"task {self.name}: frame_shift {given} was used for this run but the upstream's "
                             f"downsample rate is {downsample_rate}; labels are framed at the upstream's rate")
        return {**options, "frame_shift": int(downsample_rate)}

    def count_classes(self, train):
        """The head's shape: ``(num_speakers, hidden_size, rnn_layers)`` (kept in checkpoints as ``Classes``)."""
        if not train:
            raise ValueError(f"task {self.name}: the training split is empty")
        label = train[0].label
        return (int(label.frames.shape[1]), label.scoring["hidden_size"], label.scoring["rnn_layers"])


def diarization_head(input_size: int, shape) -> Downstream:
    num_speakers, hidden_size, rnn_layers = shape
    return Downstream(DiarizationHead(input_size, num_speakers, hidden_size, rnn_layers))


_OPTIONS = {"root": None, "num_speakers": 2, "chunk_size": 2000, "frame_shift": None, "threshold": 0.5, "median": 1,
            "thresholds": [0.3, 0.4, 0.5, 0.6, 0.7], "medians": [1, 11], "collar": 0.0, "skip_overlap": False,
            "hidden_size": 512, "rnn_layers": 1}

SD = register(DiarizationTask(
    name="diarization", description="SD: 2-speaker diarization (Kaldi data dirs or RTTM folder), PIT BCE, DER",
    corpus=corpus.load, options=dict(_OPTIONS), build=diarization_head, objective=DIARIZATION, metric="DER",
    higher_better=False,
    train=dict(total_steps=30000, optimizer="Adam", lr=1e-4, gradient_clipping=1.0, gradient_accumulate_steps=4,
               log_step=500, eval_step=500, save_step=500, max_keep=1),
    data={"batch_seconds": 320.0, "eval_batch_seconds": 320.0},  # 8 chunks of 2000 frames at 20 ms
))
register(DiarizationTask(
    name="ami_diarization", description="SD on AMI meeting excerpts (RTTM + UEM folder), up to 4 speakers",
    corpus=corpus.load, options={**_OPTIONS, "root": data_root("ami_mini"), "num_speakers": 4},
    build=diarization_head, objective=DIARIZATION, metric="DER", higher_better=False,
    train=dict(total_steps=300, optimizer="Adam", lr=1e-3, gradient_clipping=1.0, gradient_accumulate_steps=1,
               log_step=50, eval_step=50, save_step=50, max_keep=1),  # 10 meetings: it overfits after ~100 steps
    data={"batch_seconds": 80.0, "eval_batch_seconds": 120.0},
))
