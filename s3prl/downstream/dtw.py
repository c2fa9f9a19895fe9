"""Subsequence DTW for query-by-example search (the original ``quesst14_dtw`` matching), vectorised in numpy.

A query (N frames) is matched against every document (M frames): a frame distance matrix (N, M), optionally
min-max normalised per query frame (row), then dynamic programming with the ``asymmetric`` step pattern of
``dtw-python`` (every step advances the query by exactly one frame and the document by 0, 1 or 2 frames, each
step costing the distance of the cell it lands on), open begin and open end on the document axis. The cost of
the best path divided by N (the pattern's normalisation) is the match distance; the score is its negative.

Checked against ``dtw-python`` (``dtw(dist, step_pattern="asymmetric", open_begin=True, open_end=True)``,
``normalizedDistance``) and against the original expert's outputs in ``tests/test_qbe_parity.py``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

DISTANCES = ("cosine_exp", "cosine", "cityblock", "euclidean", "cosine_neg_log")


def distance_matrix(query: np.ndarray, doc: np.ndarray, method: str = "cosine_exp") -> np.ndarray:
    """Frame distances (N, M) in float64 between ``query`` (N, D) and ``doc`` (M, D).

    ``cosine`` is 1 - cos(q, d) (a frame with zero norm is at distance 1 from everything: digital silence
    never matches); ``cosine_exp`` = exp(cosine) - 1; ``cosine_neg_log`` = -log(1 - cosine) (cos <= 0 gives
    +inf: such frames can never be on a finite path); ``cityblock`` and ``euclidean`` are the L1 / L2 norms.
    """
    if method not in DISTANCES:
        raise ValueError(f"unknown DTW distance {method!r}; choose one of {', '.join(DISTANCES)}")
    return _distances(_prepare(query, method), _prepare(doc, method), method)


def _prepare(x: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """What the distance needs of one side, computed once: (float64 frames, squared norms) for the L1 / L2
    distances, (unit-norm frames, non-zero mask) for the cosine family."""
    x = np.asarray(x, dtype=np.float64)
    if method in ("cityblock", "euclidean"):
        return x, (x * x).sum(1)
    norm = np.linalg.norm(x, axis=1)
    unit = np.divide(x, norm[:, None], out=np.zeros_like(x), where=norm[:, None] > 0)
    return unit, norm > 0


def _distances(q: tuple, d: tuple, method: str) -> np.ndarray:
    if method == "cityblock":
        return np.abs(q[0][:, None, :] - d[0][None, :, :]).sum(-1)
    if method == "euclidean":
        return np.sqrt(np.maximum(q[1][:, None] + d[1][None, :] - 2.0 * q[0] @ d[0].T, 0.0))
    cos = 1.0 - q[0] @ d[0].T
    cos[~q[1], :] = 1.0
    cos[:, ~d[1]] = 1.0
    cos = np.clip(cos, 0.0, 2.0)  # rounding can leave it a hair outside [0, 2]
    if method == "cosine":
        return cos
    if method == "cosine_exp":
        return np.exp(cos) - 1.0
    with np.errstate(divide="ignore"):
        return -np.log(np.maximum(1.0 - cos, 0.0))


def minmax_rows(dist: np.ndarray) -> np.ndarray:
    """Each row (query frame) scaled to [0, 1] over the document frames (a constant row becomes 0)."""
    low, high = dist.min(axis=-1, keepdims=True), dist.max(axis=-1, keepdims=True)
    return (dist - low) / np.clip(high - low, 1e-9, None)


def subsequence_dtw(dists: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Normalised subsequence-DTW distance of each distance matrix: ``min_path cost / N``.

    ``dists`` is one (N, M) matrix or several with the same N (M may differ: they are padded with +inf on
    the right, which no path can reach, since steps only move right). Returns a float (one matrix) or an
    array (one value per matrix). Step pattern ``asymmetric``: g[i, j] = d[i, j] + min(g[i-1, j], g[i-1, j-1],
    g[i-1, j-2]); open begin (g[0, j] = d[0, j]) and open end (the minimum over the last row).
    """
    single = isinstance(dists, np.ndarray) and dists.ndim == 2
    mats = [dists] if single else list(dists)
    n = mats[0].shape[0]
    if any(m.shape[0] != n for m in mats):
        raise ValueError("subsequence_dtw: every matrix must have the same number of query frames")
    if n == 0 or any(m.shape[1] == 0 for m in mats):
        raise ValueError("subsequence_dtw: the query and every document need at least one frame")
    width = max(m.shape[1] for m in mats)
    stack = np.full((len(mats), n, width), np.inf)
    for k, m in enumerate(mats):
        stack[k, :, : m.shape[1]] = m
    g = stack[:, 0, :].copy()  # (K, M): open begin
    for i in range(1, n):
        prev = g
        best = prev.copy()
        np.minimum(best[:, 1:], prev[:, :-1], out=best[:, 1:])
        np.minimum(best[:, 2:], prev[:, :-2], out=best[:, 2:])
        g = stack[:, i, :] + best
    out = g.min(axis=1) / n  # open end
    return float(out[0]) if single else out


def match_scores(query: np.ndarray, docs: Sequence[np.ndarray], method: str = "cosine_exp",
                 minmax: bool = True) -> np.ndarray:
    """The original's score of ``query`` against each document: minus the normalised DTW distance."""
    dists = []
    for doc in docs:
        dist = distance_matrix(query, doc, method)
        dists.append(minmax_rows(dist) if minmax else dist)
    return -subsequence_dtw(dists) if dists else np.zeros(0)


def znorm_scores(scores: np.ndarray) -> np.ndarray:
    """Scores of one query over all documents, z-normalised (population std, floored at 1e-9)."""
    scores = np.asarray(scores, dtype=np.float64)
    return (scores - scores.mean()) / np.clip(scores.std(), 1e-9, None)


def score_matrix(queries: Sequence[np.ndarray], docs: Sequence[np.ndarray], method: str = "cosine_exp",
                 minmax: bool = True, min_query_frames: int = 5, budget: int = 4_000_000) -> np.ndarray:
    """Raw scores (Q, K) of every query against every document (minus the normalised DTW distance).

    As the original, a query shorter than ``min_query_frames`` is not searched: its scores are all 0. Documents
    are processed in groups of similar length (sorted by length) so that one DTW pass holds about ``budget``
    cells for the longest query; each group's frames are prepared once for all queries. A document without
    frames is an error naming its index.
    """
    if method not in DISTANCES:
        raise ValueError(f"unknown DTW distance {method!r}; choose one of {', '.join(DISTANCES)}")
    empty = [k for k, d in enumerate(docs) if len(d) == 0]
    if empty:
        raise ValueError(f"document(s) {empty[:5]} have no feature frames (empty audio): remove them from the list")
    out = np.zeros((len(queries), len(docs)))
    searched = [i for i, q in enumerate(queries) if len(q) >= max(min_query_frames, 1)]
    if not searched or not len(docs):
        return out
    prepared = {i: _prepare(queries[i], method) for i in searched}
    longest = max(len(queries[i]) for i in searched)
    order = sorted(range(len(docs)), key=lambda k: len(docs[k]))
    start = 0
    while start < len(order):
        stop = start + 1  # a group: as many documents as fit the budget at the group's largest width
        while stop < len(order) and (stop - start + 1) * longest * len(docs[order[stop]]) <= budget:
            stop += 1
        group = order[start:stop]
        joined = _prepare(np.concatenate([docs[k] for k in group]), method)
        cuts = np.cumsum([len(docs[k]) for k in group])[:-1]
        for i in searched:
            parts = np.split(_distances(prepared[i], joined, method), cuts, axis=1)  # (N, M_k) each
            out[i, group] = -subsequence_dtw([minmax_rows(p) for p in parts] if minmax else parts)
        start = stop
    return out
