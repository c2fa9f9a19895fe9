"""Metrics of the SUPERB utterance-level tasks: accuracy, equal error rate, minimum detection cost.

The verification metrics are computed exactly from the ROC curve, with no numerical root finding:

- The ROC points are ``(false-alarm rate, hit rate)`` for accepting every trial whose score is ``>=`` a
  threshold, one point per distinct score (tied scores move together, so ties form one straight step),
  plus ``(0, 0)`` for accepting nothing. This is ``sklearn.metrics.roc_curve``'s curve.
- EER is where the piecewise-linear ROC crosses ``miss rate == false-alarm rate``. The original
  (``sv_voxceleb1/utils.py``, ``s3prl.metric.compute_eer``) finds that same point with ``brentq`` on
  ``interp1d(fpr, tpr)``, so the two agree to the root finder's tolerance (~1e-12).
- minDCF is ``min over ROC points of (c_miss * P_miss * p_target + c_fa * P_fa * (1 - p_target))``
  divided by ``min(c_miss * p_target, c_fa * (1 - p_target))``, with the original's defaults
  ``p_target = 0.01, c_miss = c_fa = 1`` (``s3prl.metric.compute_minDCF``, as used by ``SuperbASV``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _as_list(values) -> list:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def accuracy(predictions: Sequence, targets: Sequence) -> float:
    """Share of ``predictions`` equal to ``targets``; items may be tuples (IC counts all slots or none)."""
    predictions, targets = _as_list(predictions), _as_list(targets)
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    if not targets:
        raise ValueError("accuracy of no items is undefined")
    return sum(p == t for p, t in zip(predictions, targets)) / len(targets)


def roc_points(labels: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` from the strictest threshold (+inf: accept nothing) to the loosest.

    ``labels`` are 1 for target and 0 for non-target trials; a trial is accepted when its score is
    ``>=`` the threshold. Both classes must be present.
    """
    labels = np.asarray(_as_list(labels), dtype=np.int64)
    scores = np.asarray(_as_list(scores), dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be 1-D of the same length")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (non-target) or 1 (target)")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    n_pos, n_neg = int(labels.sum()), int((labels == 0).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"need target and non-target trials, got {n_pos} and {n_neg}")
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    hits, false_alarms = np.cumsum(labels), np.cumsum(1 - labels)
    last_of_tie = np.r_[scores[1:] != scores[:-1], True]  # a threshold accepts a whole tie group at once
    tpr = np.r_[0.0, hits[last_of_tie] / n_pos]
    fpr = np.r_[0.0, false_alarms[last_of_tie] / n_neg]
    thresholds = np.r_[np.inf, scores[last_of_tie]]
    return fpr, tpr, thresholds


def compute_eer(labels: Sequence[int], scores: Sequence[float]) -> tuple[float, float]:
    """Equal error rate (a fraction, not a percentage) and the threshold there.

    The threshold is interpolated along the ROC segment that holds the crossing (the top score when the
    crossing lies on the first segment, whose other end accepts nothing). The original interpolates the
    threshold against the false-alarm rate on sklearn's thinned curve, so its threshold can differ where the
    crossing lies on a vertical step; the EER itself does not.
    """
    fpr, tpr, thresholds = roc_points(labels, scores)
    gap = 1.0 - tpr - fpr  # miss rate - false-alarm rate: 1 at the start, -1 at the end, non-increasing
    i = int(np.argmax(gap <= 0.0))  # first point at or past the crossing (exists: gap[-1] == -1)
    t = gap[i - 1] / (gap[i - 1] - gap[i])  # in (0, 1]: where on segment (i-1, i) the gap is 0
    eer = fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
    if i == 1:
        threshold = thresholds[1]
    else:
        threshold = thresholds[i - 1] + t * (thresholds[i] - thresholds[i - 1])
    return float(eer), float(threshold)


def compute_min_dcf(labels: Sequence[int], scores: Sequence[float], p_target: float = 0.01,
                    c_miss: float = 1.0, c_fa: float = 1.0) -> tuple[float, float]:
    """Normalised minimum detection cost and the threshold reaching it (the strictest one on ties)."""
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    fpr, tpr, thresholds = roc_points(labels, scores)
    cost = c_miss * (1.0 - tpr) * p_target + c_fa * fpr * (1.0 - p_target)
    best = int(np.argmin(cost))
    return float(cost[best] / min(c_miss * p_target, c_fa * (1.0 - p_target))), float(thresholds[best])


compute_minDCF = compute_min_dcf  # the original's name


def cosine_scores(embeddings: dict, trials: Sequence[tuple[str, str, int]]) -> tuple[list[int], list[float]]:
    """``(labels, scores)`` of ``trials`` ``(uid1, uid2, target)``: cosine similarity of the two embeddings."""
    labels, scores = [], []
    for uid1, uid2, target in trials:
        if uid1 not in embeddings or uid2 not in embeddings:
            missing = uid1 if uid1 not in embeddings else uid2
            raise KeyError(f"no embedding for trial utterance {missing!r}")
        a = np.asarray(_as_list(embeddings[uid1]), dtype=np.float64)
        b = np.asarray(_as_list(embeddings[uid2]), dtype=np.float64)
        denom = max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12)
        labels.append(int(target))
        scores.append(float(a @ b) / denom)
    return labels, scores


__all__ = ["accuracy", "roc_points", "compute_eer", "compute_min_dcf", "compute_minDCF", "cosine_scores"]
