"""Greedy (best-path) CTC decoding: the most likely symbol per frame, repeats merged, blanks dropped."""

from __future__ import annotations

from typing import Iterable

import torch


def greedy_ids(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0,
               drop: Iterable[int] = ()) -> list[list[int]]:
    """Token ids per utterance of ``log_probs`` (B, T, V) over its first ``lengths[b]`` frames.

    Consecutive repeats are merged before ``blank`` (and any id in ``drop``, e.g. the end-of-sentence symbol
    the original CTC tasks train on) is removed, so ``a _ a`` gives two ``a`` and ``a a`` one.
    """
    removed = {int(blank), *map(int, drop)}
    best = log_probs.argmax(dim=-1).cpu()  # (B, T)
    out = []
    for row, n in zip(best, lengths.tolist()):
        ids = torch.unique_consecutive(row[: int(n)]).tolist()
        out.append([i for i in ids if i not in removed])
    return out
