"""Span masks and negative sampling of wav2vec 2.0 pre-training, drawn from a ``torch.Generator``.

The semantics are fairseq's ``compute_mask_indices`` / ``sample_negatives`` (same distributions, same counts);
the random streams are ours (torch instead of numpy), so a run is reproducible from its generator state, and any
draw can be given from outside instead (replay: parity tests feed fairseq's own draws).
"""

from __future__ import annotations

import torch

MASK_TYPES = ("static", "uniform", "normal", "poisson")


def _uniform(generator: torch.Generator | None) -> float:
    return float(torch.rand((), generator=generator))


def _span_lengths(num: int, mask_type: str, length: int, other: float, generator) -> list[int]:
    """Lengths of ``num`` spans: static = ``length``; uniform in [other, 2*length]; normal(length, other)
    rounded, at least 1; poisson(length) rounded."""
    if mask_type == "static":
        return [length] * num
    if mask_type == "uniform":
        return torch.randint(int(other), length * 2 + 1, (num,), generator=generator).tolist()
    if mask_type == "normal":
        draws = torch.randn(num, generator=generator, dtype=torch.float64) * other + length
        return [max(1, int(round(v))) for v in draws.tolist()]
    if mask_type == "poisson":
        rate = torch.full((num,), float(length), dtype=torch.float64)
        return [int(round(v)) for v in torch.poisson(rate, generator=generator).tolist()]
    raise ValueError(f"unknown mask selection {mask_type!r} (allowed: {', '.join(MASK_TYPES)})")


def _row_spans(size: int, num: int, lengths: list[int], generator) -> torch.Tensor:
    """Positions covered by ``num`` spans with distinct random starts (spans may overlap), clipped to ``size``."""
    shortest = min(lengths)
    if size - shortest <= num:  # too short for the spans: let them start anywhere but keep the count
        shortest = size - num - 1
    starts = torch.randperm(size - shortest, generator=generator)[:num]  # distinct starts, uniformly
    span = torch.tensor(lengths, dtype=torch.long)
    offsets = torch.arange(int(span.max()) if num else 0)
    covered = starts[:, None] + offsets[None, :]  # (num, longest)
    covered = covered[(offsets[None, :] < span[:, None]) & (covered < size)]
    return torch.unique(covered)


def compute_span_mask(shape: tuple[int, int], lengths: torch.Tensor | None, mask_prob: float, mask_length: int,
                      mask_type: str = "static", mask_other: float = 0.0, min_masks: int = 0,
                      require_same_masks: bool = True, mask_dropout: float = 0.0, no_overlap: bool = False,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, T) bool span mask, fairseq ``compute_mask_indices`` semantics (``no_overlap=False``).

    Row b (valid length ``lengths[b]``, or T) gets ``max(min_masks, floor(mask_prob * len / mask_length + U))``
    spans (U ~ U[0, 1): probabilistic rounding) with distinct uniform starts; spans may overlap and are clipped
    to the valid length. With ``require_same_masks`` every row is then thinned at random to the smallest row's
    count (so masked frames form a (B, M) grid); ``mask_dropout`` drops that fraction of each row's positions."""
    if no_overlap:
        raise ValueError("no_mask_overlap=True is not supported (fairseq's recursive non-overlapping spans); "
                         "set no_mask_overlap / no_mask_channel_overlap to false")
    if mask_type not in MASK_TYPES:
        raise ValueError(f"unknown mask selection {mask_type!r} (allowed: {', '.join(MASK_TYPES)})")
    B, T = shape
    sizes = [T] * B if lengths is None else [int(n) for n in lengths.tolist()]
    rows = []
    for size in sizes:
        num = max(min_masks, int(mask_prob * size / float(mask_length) + _uniform(generator)))
        span_lens = _span_lengths(num, mask_type, mask_length, mask_other, generator)
        if num and sum(span_lens) == 0:
            span_lens[0] = min(mask_length, size - 1)
        rows.append(_row_spans(size, num, span_lens, generator) if num else torch.zeros(0, dtype=torch.long))
    fewest = min((len(r) for r in rows), default=0)
    mask = torch.zeros(B, T, dtype=torch.bool)
    for b, row in enumerate(rows):
        if require_same_masks and len(row) > fewest:
            row = row[torch.randperm(len(row), generator=generator)[:fewest]]
        if mask_dropout > 0:
            keep = len(row) - int(round(len(row) * mask_dropout))
            row = row[torch.randperm(len(row), generator=generator)[:keep]]
        mask[b, row] = True
    return mask


def sample_negatives(batch: int, num: int, num_negatives: int, cross_sample_negatives: int = 0,
                     generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """Indices of negatives for targets laid out (B, M) and flattened to (B*M): (K, B, M) int64, K = num_negatives
    + cross_sample_negatives. The first ``num_negatives`` come from the same utterance, uniformly among its other
    M - 1 targets; the cross-sample ones uniformly among all other B*M - 1 targets of the batch. (fairseq excludes
    index ``t`` instead of ``b*M + t`` for the cross-sample ones, a slip we do not copy.)"""
    if num_negatives and num < 2:
        raise ValueError(f"{num} masked frame(s) per utterance: at least 2 are needed to draw negatives from the "
                         "same utterance (longer audio, or a larger mask_prob)")
    parts = []
    t = torch.arange(num).view(1, num, 1)  # (1, M, 1)
    if num_negatives > 0:
        idx = torch.randint(0, num - 1, (batch, num, num_negatives), generator=generator)
        idx = idx + (idx >= t).long()  # skip the positive itself
        parts.append(idx + torch.arange(batch).view(batch, 1, 1) * num)
    if cross_sample_negatives > 0:
        total = batch * num
        if total < 2:
            raise ValueError("cross_sample_negatives needs at least 2 target frames in the batch")
        own = torch.arange(total).view(batch, num, 1)
        idx = torch.randint(0, total - 1, (batch, num, cross_sample_negatives), generator=generator)
        parts.append(idx + (idx >= own).long())
    if not parts:
        return torch.zeros(0, batch, num, dtype=torch.long, device=device)
    return torch.cat(parts, dim=-1).permute(2, 0, 1).contiguous().to(device)  # (K, B, M)

