"""Deltas, utterance CMVN and the centred-STFT features of the original s3prl "preprocessor".

The preprocessor is what the ``mel`` and ``linear`` baselines (and the Mockingjay / TERA front-end)
use: a Hann-windowed, centred, reflect-padded STFT (n_fft = 2 * (n_freq - 1), 25 ms window, 10 ms
hop at 16 kHz), its power spectrum (``linear``), HTK mel filters on it (``mel``) or torchaudio-style
MFCCs (``mfcc``), optionally logged (``log(x + eps)``), with deltas and per-utterance CMVN.
All functions here work on one utterance at a time, laid out (T, D).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

__all__ = ["compute_deltas", "add_deltas", "cmvn", "power_spectrogram", "htk_mel_filters", "stft_feature",
           "STFT_FEATURES"]

STFT_FEATURES = ("linear", "mel", "mfcc")


def compute_deltas(specgram: torch.Tensor, win_length: int = 5, mode: str = "replicate") -> torch.Tensor:
    """Delta coefficients along the last (time) axis, as ``torchaudio.functional.compute_deltas``.

    ``d[t] = sum_{k=1..n} k * (x[t+k] - x[t-k]) / (2 * sum_{k=1..n} k^2)`` with ``n = (win_length - 1) // 2``
    and the edges padded with ``mode`` (Kaldi repeats the edge frames). ``specgram``: (..., F, T).
    """
    if win_length < 3:
        raise ValueError(f"win_length must be at least 3, got {win_length}")
    n = (win_length - 1) // 2
    denom = n * (n + 1) * (2 * n + 1) / 3
    shape = specgram.shape
    if specgram.numel() == 0:
        return specgram.clone()
    x = F.pad(specgram.reshape(1, -1, shape[-1]), (n, n), mode=mode)  # (1, rows, T + 2n)
    kernel = torch.arange(-n, n + 1, device=x.device, dtype=x.dtype).repeat(x.size(1), 1, 1)  # (rows, 1, 2n+1)
    return (F.conv1d(x, kernel, groups=x.size(1)) / denom).reshape(shape)


def add_deltas(feats: torch.Tensor, order: int = 2, win_length: int = 5, mode: str = "replicate") -> torch.Tensor:
    """(T, D) -> (T, D * (order + 1)): the features followed by their deltas, delta-deltas, ..."""
    parts = [feats]
    for _ in range(order):
        parts.append(compute_deltas(parts[-1].T, win_length, mode).T)  # deltas of the previous order
    return torch.cat(parts, dim=-1)


def cmvn(feats: torch.Tensor, eps: float = 1e-10, dim: int = 0) -> torch.Tensor:
    """Utterance CMVN: ``(x - mean) / (eps + std)`` over the time axis ``dim`` (0 for (T, D)), std with
    Bessel's correction, as the original baselines compute.

    With fewer than two frames the original divides by a NaN standard deviation; here the standard
    deviation is taken as 0, so a single frame becomes zeros.
    """
    mean = feats.mean(dim=dim, keepdim=True)
    if feats.size(dim) < 2:
        return feats - mean
    return (feats - mean) / (eps + feats.std(dim=dim, keepdim=True))


def _reflect_indices(n: int, pad: int, device) -> torch.Tensor:
    """Indices of a length-n signal reflect-padded by ``pad`` on both sides (edge sample not repeated),
    folding again where the padding is longer than the signal (torch's reflect pad refuses that)."""
    idx = torch.arange(-pad, n + pad, device=device)
    if n == 1:
        return torch.zeros_like(idx)
    idx = idx.remainder(2 * (n - 1))
    return torch.where(idx >= n, 2 * (n - 1) - idx, idx)


def _hann(win_length: int, n_fft: int, dtype, device) -> torch.Tensor:
    """torch.hann_window (periodic) in the waveform's dtype, as the original builds it, zero-padded to
    n_fft in the centre as torch.stft does."""
    window = torch.hann_window(win_length, dtype=dtype, device=device)
    left = (n_fft - win_length) // 2
    return F.pad(window, (left, n_fft - win_length - left))


def power_spectrogram(wav: torch.Tensor, n_fft: int, hop_length: int, win_length: int) -> torch.Tensor:
    """|STFT|^2 of a (N,) waveform, centred and reflect-padded like ``torch.stft(center=True)``.

    Returns (N // hop_length + 1, n_fft // 2 + 1); a waveform with no samples gives no frames.
    """
    if wav.dim() != 1:
        raise ValueError(f"Expected a 1-D waveform, got shape {tuple(wav.shape)}")
    if wav.numel() == 0:
        return wav.new_zeros(0, n_fft // 2 + 1)
    window = _hann(win_length, n_fft, wav.dtype, wav.device)
    padded = wav[_reflect_indices(wav.numel(), n_fft // 2, wav.device)]  # (N + n_fft,)
    frames = padded.unfold(0, n_fft, hop_length) * window  # (T, n_fft)
    return torch.fft.rfft(frames).abs().pow(2)  # (T, n_fft // 2 + 1)


def htk_mel_filters(n_freqs: int, n_mels: int, sample_rate: int, f_min: float = 0.0,
                    f_max: float | None = None) -> torch.Tensor:
    """Triangular HTK-scale mel filters over linearly spaced STFT bins, without area normalisation
    (torchaudio's ``melscale_fbanks`` defaults). Returns (n_freqs, n_mels) float32, the precision the
    original computes them in."""
    return _htk_mel_filters(n_freqs, n_mels, sample_rate, f_min, f_max).clone()


@functools.lru_cache(maxsize=8)
def _htk_mel_filters(n_freqs, n_mels, sample_rate, f_min=0.0, f_max=None):
    f_max = float(sample_rate // 2) if f_max is None else f_max
    freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float32)

    def to_mel(f):
        return 2595.0 * math.log10(1.0 + f / 700.0)

    mels = torch.linspace(to_mel(f_min), to_mel(f_max), n_mels + 2, dtype=torch.float32)
    points = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)  # (n_mels + 2,) filter edges in Hz
    widths = points[1:] - points[:-1]
    offsets = points[None, :] - freqs[:, None]  # (n_freqs, n_mels + 2)
    rising = -offsets[:, :-2] / widths[:-1]
    falling = offsets[:, 2:] / widths[1:]
    return torch.minimum(rising, falling).clamp_min(0.0)  # (n_freqs, n_mels)


@functools.lru_cache(maxsize=8)
def _ortho_dct(n_mfcc: int, n_mels: int) -> torch.Tensor:
    """Orthonormal DCT-II as a right-multiplied (n_mels, n_mfcc) float32 matrix."""
    n = torch.arange(n_mels, dtype=torch.float32)[:, None]
    k = torch.arange(n_mfcc, dtype=torch.float32)[None]
    dct = torch.cos(math.pi / n_mels * (n + 0.5) * k) * math.sqrt(2.0 / n_mels)
    dct[:, 0] /= math.sqrt(2.0)
    return dct


def stft_feature(wav: torch.Tensor, feat_type: str = "mel", *, sample_rate: int = 16000, win_ms: float = 25,
                 hop_ms: float = 10, n_freq: int = 201, n_mels: int = 40, n_mfcc: int = 13, log: bool = False,
                 delta: int = 0, use_cmvn: bool = False, eps: float = 1e-10) -> torch.Tensor:
    """One utterance's preprocessor feature: (N,) waveform -> (N // hop + 1, dim * (delta + 1)).

    ``feat_type``: ``linear`` (power spectrum, n_freq bins), ``mel`` (n_mels HTK mel filters on it) or
    ``mfcc`` (torchaudio ``MFCC`` with its defaults: 128 mel filters, ``log(mel + 1e-6)``, orthonormal DCT).
    ``log`` applies ``log(x + eps)``; ``delta`` appends that many orders of deltas; ``use_cmvn`` normalises
    each dimension over the utterance.
    """
    if feat_type not in STFT_FEATURES:
        raise ValueError(f"Unknown feat_type {feat_type!r}; supported: {', '.join(STFT_FEATURES)}")
    win = round(win_ms * sample_rate / 1000)
    hop = round(hop_ms * sample_rate / 1000)
    n_fft = (n_freq - 1) * 2
    power = power_spectrogram(wav, n_fft, hop, win)  # (T, n_freq)
    if feat_type == "linear":
        feats = power
    elif feat_type == "mel":
        feats = power @ _htk_mel_filters(n_freq, n_mels, sample_rate).to(power)  # (T, n_mels)
    else:
        mel = power @ _htk_mel_filters(n_freq, 128, sample_rate).to(power)  # (T, 128)
        feats = (mel + 1e-6).log() @ _ortho_dct(n_mfcc, 128).to(power)  # (T, n_mfcc)
    if log:
        feats = (feats + eps).log()
    feats = add_deltas(feats, delta)
    return cmvn(feats, eps) if use_cmvn else feats
