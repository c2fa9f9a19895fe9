"""SI-SDR, its improvement over the mixture, and the best source order (PIT) for separation and enhancement.

The definition is the original s3prl's scoring (asteroid's ``get_metrics``, which calls pb_bss_eval 0.0.2):
both signals made zero-mean, ``alpha = <s, s_hat> / (<s, s> + eps)``, ``SI-SDR = 10 log10(|alpha s|^2 /
(|s_hat - alpha s|^2 + eps) + eps)`` with ``eps = 1e-8`` (Le Roux et al., "SDR - half-baked or well done?",
ICASSP 2019), here in float64 (the original computes in the audio's float32: differences below 1e-3 dB).

A silent reference (no energy once its mean is removed) is an error naming the signal: the original would give
-80 dB whatever the estimate, a number that means nothing. A silent estimate scores -80 dB (the floor the epsilons
set), as the original; an exact copy scores the epsilons' ceiling.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

EPS = 1e-8  # the original's (pb_bss_eval's) epsilon


def _signal(x, what: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{what}: expected one mono signal (1-D), got shape {tuple(a.shape)}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what}: the signal has NaN or infinite samples")
    return a


def si_sdr(reference, estimate, name: str = "") -> float:
    """SI-SDR in dB of ``estimate`` against ``reference`` (1-D, same length)."""
    where = f" ({name})" if name else ""
    ref, est = _signal(reference, f"reference{where}"), _signal(estimate, f"estimate{where}")
    if len(ref) != len(est):
        raise ValueError(f"SI-SDR{where}: reference has {len(ref)} samples but the estimate {len(est)}: they "
                         "must be the same length (the same recording, the same sample rate)")
    ref, est = ref - ref.mean(), est - est.mean()
    energy = float(ref @ ref)
    if energy < 1e-20:  # exactly zero, up to the rounding of a constant's mean
        raise ValueError(f"SI-SDR{where}: the reference is silent (all zeros or constant), SI-SDR is undefined for "
                         "it: remove this file from the scored set")
    target = (float(ref @ est) / (energy + EPS)) * ref
    residual = est - target
    return float(10.0 * np.log10(float(target @ target) / (float(residual @ residual) + EPS) + EPS))


def si_sdr_improvement(reference, estimate, mixture, name: str = "") -> float:
    """SI-SDRi: SI-SDR of the estimate minus that of the unprocessed mixture, against the same reference."""
    return si_sdr(reference, estimate, name) - si_sdr(reference, mixture, name)


def best_permutation(references: Sequence, estimates: Sequence) -> tuple[int, ...]:
    """The order of ``estimates`` with the highest mean SI-SDR: ``estimates[perm[i]]`` goes with ``references[i]``.

    (The original's SS scoring lets mir_eval pick the order by BSS-Eval SDR; here SI-SDR picks it. They agree
    whenever one order is clearly better.)"""
    if len(references) != len(estimates):
        raise ValueError(f"{len(references)} reference sources but {len(estimates)} estimated ones")
    n = len(references)
    table = [[si_sdr(references[i], estimates[j], f"source {i + 1}") for j in range(n)] for i in range(n)]
    return max(itertools.permutations(range(n)), key=lambda p: sum(table[i][p[i]] for i in range(n)))


def separation_scores(references: Sequence, estimates: Sequence, mixture, permute: bool = True) -> dict:
    """Per-utterance SI-SDR, input SI-SDR and SI-SDRi averaged over sources (estimates put in the best order
    when ``permute``), as the original's per-utterance records."""
    order = best_permutation(references, estimates) if permute else tuple(range(len(references)))
    out = [si_sdr(r, estimates[j], f"source {i + 1}") for i, (r, j) in enumerate(zip(references, order))]
    inp = [si_sdr(r, mixture, f"source {i + 1} vs mixture") for i, r in enumerate(references)]
    return {"si_sdr": float(np.mean(out)), "input_si_sdr": float(np.mean(inp)),
            "si_sdri": float(np.mean(out) - np.mean(inp)), "permutation": list(order)}
