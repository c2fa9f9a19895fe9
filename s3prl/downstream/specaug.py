"""SpecAugment on upstream features during training (the original runner's ``specaug`` section, ASR and SF).

Applied to the featurizer's output before the head: per utterance a time warp (the frames left of a random
centre squeezed or stretched by up to ``time_warp_window`` frames, bicubic), then over the zero-padded batch
``num_freq_mask`` feature-dimension masks of width in ``[lo, hi)`` and ``num_time_mask`` time masks (masked
values set to 0). ``adaptive`` time masks: ``min(int(0.04 T), 20)`` masks of width up to ``min(hi, int(0.04 T))``
for a padded length T (SF). The random draws are those of the original, in its order, from torch's global
generator, so that a seed gives the original's masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class SpecAugConfig:
    apply_time_warp: bool = True
    time_warp_window: int = 5
    time_warp_mode: str = "bicubic"
    apply_freq_mask: bool = True
    freq_mask_width_range: tuple = (0, 50)
    num_freq_mask: int = 4
    apply_time_mask: bool = True
    time_mask_width_range: tuple = (0, 40)
    num_time_mask: int = 2
    adaptive: bool = False
    adaptive_number_ratio: float = 0.04
    adaptive_size_ratio: float = 0.04
    max_n_time_masks: int = 20


def time_warp(x: torch.Tensor, window: int, mode: str = "bicubic") -> torch.Tensor:
    """One utterance (T, D): frames [0, c) resized to [0, w) and [c, T) to [w, T); unchanged when T <= 2 window."""
    steps = x.size(0)
    if steps - window <= window:
        return x
    centre = int(torch.randint(window, steps - window, (1,))[0])
    warped = int(torch.randint(centre - window, centre + window, (1,))[0]) + 1
    image = x[None, None]  # (1, 1, T, D)
    left = F.interpolate(image[:, :, :centre], (warped, x.size(1)), mode=mode, align_corners=False)
    right = F.interpolate(image[:, :, centre:], (steps - warped, x.size(1)), mode=mode, align_corners=False)
    return torch.cat([left, right], dim=2)[0, 0]


def mask_along(x: torch.Tensor, axis: int, width_range, count: int) -> torch.Tensor:
    """Zero ``count`` random bands per utterance of ``x`` (B, T, D) along ``axis`` (1: time, 2: features)."""
    size, (lo, hi) = x.size(axis), width_range
    widths = torch.randint(lo, hi, (x.size(0), count), device=x.device).unsqueeze(2)  # (B, K, 1)
    starts = torch.randint(0, max(1, size - int(widths.max())), (x.size(0), count), device=x.device).unsqueeze(2)
    positions = torch.arange(size, device=x.device)[None, None, :]
    mask = ((starts <= positions) & (positions < starts + widths)).any(dim=1)  # (B, size)
    mask = mask.unsqueeze(2) if axis == 1 else mask.unsqueeze(1)
    return x.masked_fill(mask, 0.0)


class SpecAug(torch.nn.Module):
    """SpecAugment over a padded batch: ``forward(x (B, T, D), lengths) -> x'`` (padding comes back zero)."""

    def __init__(self, **options):
        super().__init__()
        self.cfg = SpecAugConfig(**options)
        if not (self.cfg.apply_time_warp or self.cfg.apply_freq_mask or self.cfg.apply_time_mask):
            raise ValueError("specaug: enable at least one of time warp, frequency masks and time masks")
        for name in ("freq_mask_width_range", "time_mask_width_range"):
            lo, hi = getattr(self.cfg, name)
            if not 0 <= lo < hi:
                raise ValueError(f"specaug.{name} must be [low, high) with 0 <= low < high, got {[lo, hi]}")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        longest = int(lengths.max())
        out = x.new_zeros(x.size(0), longest, x.size(2))  # (B, T, D)
        for i, n in enumerate(lengths.tolist()):
            frames = x[i, :n]
            out[i, :n] = time_warp(frames, cfg.time_warp_window, cfg.time_warp_mode) if cfg.apply_time_warp else frames
        if cfg.apply_freq_mask:
            out = mask_along(out, 2, cfg.freq_mask_width_range, cfg.num_freq_mask)
        if cfg.apply_time_mask:
            count, (lo, hi) = cfg.num_time_mask, cfg.time_mask_width_range
            if cfg.adaptive:
                if cfg.adaptive_number_ratio > 0:
                    count = min(int(cfg.adaptive_number_ratio * longest), cfg.max_n_time_masks)
                if cfg.adaptive_size_ratio > 0:
                    hi = min(hi, int(cfg.adaptive_size_ratio * longest))
            if count > 0 and hi > lo:
                out = mask_along(out, 1, (lo, hi), count)
        if out.size(1) < x.size(1):
            out = F.pad(out, (0, 0, 0, x.size(1) - out.size(1)))
        return out
