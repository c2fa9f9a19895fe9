"""Sliding windows for the audio-domain upstreams (AST, SSAST, BYOL-A/S, VGGish, PaSST).

Two schemes, both applied to each utterance on its own samples so that a padded batch gives every
utterance exactly its batch-size-1 result (the original pads every utterance to the longest one).

``stack_windows`` / ``merge_windows`` / ``run_windowed``: the start-range scheme of the original
AST / SSAST / BYOL experts, for an utterance of ``n`` samples:

* window starts are ``range(0, n, stride)``;
* the utterance is zero-padded to ``starts[-1] + window`` samples;
* each window ``wav[start : start + window]`` becomes one batch item of the model;
* the outputs of an utterance's windows are concatenated along time;
* the result is trimmed to ``len(range(0, n, downsample_rate))`` frames (= ceil(n / rate)).

Windows of all utterances go through the model as one batch: windows never interact, so batching
them changes nothing but speed.

``centered_windows``: the HEAR-style timestamp scheme of PaSST: reflect-pad ``window // 2`` samples on
both sides, then one window every ``hop`` samples (``(n + 2 * (window // 2) - window) // hop + 1``
windows), window ``i`` centred on sample ``i * hop``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F


def frame_count(length: int, rate: int) -> int:
    """``len(range(0, length, rate))``: the frames the original keeps for ``length`` samples."""
    return -(-int(length) // int(rate)) if length > 0 else 0


def window_starts(length: int, stride: int) -> range:
    """Start sample of every window of an utterance of ``length`` samples."""
    if stride <= 0:
        raise ValueError(f"window stride must be positive, got {stride} samples")
    return range(0, int(length), int(stride))


def split_windows(wav: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """(n,) one utterance -> (W, window): zero-padded to ``starts[-1] + window``, one row per start."""
    if wav.dim() != 1:
        raise ValueError(f"expected one 1-D utterance, got shape {tuple(wav.shape)}")
    if window <= 0:
        raise ValueError(f"window must be positive, got {window} samples")
    starts = window_starts(wav.numel(), stride)
    if len(starts) == 0:
        raise ValueError("cannot cut windows from an empty utterance (0 samples)")
    total = max(starts[-1] + window, wav.numel())  # a window shorter than the stride may skip the tail
    padded = F.pad(wav, (0, total - wav.numel()))
    index = torch.tensor(list(starts), device=wav.device)[:, None] + torch.arange(window, device=wav.device)
    return padded[index]  # (W, window)


def stack_windows(wavs: torch.Tensor, wavs_len: torch.Tensor, window: int,
                  stride: int) -> tuple[torch.Tensor, list[int]]:
    """(B, T) padded batch -> (N, window) windows of every utterance (utterance-major) and their counts."""
    pieces = [split_windows(wavs[b, : int(n)], window, stride) for b, n in enumerate(wavs_len.tolist())]
    return torch.cat(pieces, dim=0), [p.size(0) for p in pieces]


def merge_windows(outputs: torch.Tensor, counts: Sequence[int],
                  keep: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, T_w, D) per-window outputs -> (B, T, D) zero-padded and (B,) frame counts.

    Utterance ``b`` gets its ``counts[b]`` windows concatenated along time, trimmed to ``keep[b]`` frames.
    """
    per_utt, start = [], 0
    for count, n_keep in zip(counts, keep):
        h = outputs[start : start + count].reshape(-1, outputs.size(-1))  # (count * T_w, D)
        per_utt.append(h[:n_keep])
        start += count
    lengths = torch.tensor([h.size(0) for h in per_utt], dtype=torch.long, device=outputs.device)
    out = outputs.new_zeros(len(per_utt), int(lengths.max()) if per_utt else 0, outputs.size(-1))
    for b, h in enumerate(per_utt):
        out[b, : h.size(0)] = h
    return out, lengths


def run_windowed(wavs: torch.Tensor, wavs_len: torch.Tensor, window: int, stride: int,
                 model: Callable[[torch.Tensor], list[torch.Tensor]], rates: Sequence[int],
                 max_batch: int | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The whole start-range scheme: ``model`` maps (N, window) windows to a list of (N, T_w, D_l) states;
    state ``l`` of utterance ``b`` keeps ``frame_count(wavs_len[b], rates[l])`` frames. ``max_batch`` bounds
    how many windows go through ``model`` at once (memory on long batches)."""
    windows, counts = stack_windows(wavs, wavs_len, window, stride)
    chunks = [model(chunk) for chunk in windows.split(max_batch or windows.size(0))]
    outputs = [torch.cat(parts) for parts in zip(*chunks)]
    states, lengths = [], []
    for h, rate in zip(outputs, rates):
        keep = [frame_count(n, rate) for n in wavs_len.tolist()]
        merged, n_frames = merge_windows(h, counts, keep)
        states.append(merged)
        lengths.append(n_frames)
    return states, lengths


def centered_windows(wav: torch.Tensor, window: int, hop: int) -> torch.Tensor:
    """(n,) -> (W, window): reflect-padded by ``window // 2`` on each side, one window every ``hop``."""
    pad = window // 2
    if wav.dim() != 1:
        raise ValueError(f"expected one 1-D utterance, got shape {tuple(wav.shape)}")
    if pad >= wav.numel():
        raise ValueError(
            f"an utterance of {wav.numel()} samples is too short for a {window}-sample window: reflect padding "
            f"needs more than {pad} samples"
        )
    padded = F.pad(wav[None, None], (pad, pad), mode="reflect")[0, 0]  # (n + 2 * pad,)
    return padded.unfold(0, window, hop)  # (W, window)
