"""Log-mel spectrograms of the voice-conversion targets, their inversion to a linear spectrogram, and
Griffin-Lim: the numbers of librosa's ``stft`` / ``filters.mel`` (Slaney scale and area normalisation) /
``griffinlim`` without librosa.

:func:`log_mel` is the original VC task's target feature (``a2o-vc-vcc2020`` ``utils.logmelspectrogram``):
``log10(max(1e-10, |STFT| @ mel))`` of the magnitude (not the power) of a Hann-windowed, centred,
reflect-padded STFT. With the task's defaults (24 kHz, n_fft 1024, hop 256, 80 bins, 80-7600 Hz) it is the
feature the original's Parallel WaveGAN vocoders were trained on.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above (librosa, htk=False)."""
    f = np.asarray(f, dtype=np.float64)
    step, min_log_hz, min_log_mel, log_step = 200.0 / 3, 1000.0, 15.0, math.log(6.4) / 27.0
    mel = f / step
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / log_step, mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    step, min_log_hz, min_log_mel, log_step = 200.0 / 3, 1000.0, 15.0, math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(log_step * (m - min_log_mel)), step * m)


@functools.lru_cache(maxsize=16)
def mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Slaney-normalised triangular filters (n_mels, n_fft // 2 + 1), float32: ``librosa.filters.mel``'s
    defaults (computed in float64, as librosa, then cast)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(f"mel filters: need 0 <= fmin < fmax <= {sample_rate / 2} Hz, got fmin {fmin}, fmax {fmax}")
    freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))  # (n_mels + 2,)
    widths = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    rising, falling = -ramps[:-2] / widths[:-1, None], ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    weights.setflags(write=False)
    return weights.astype(np.float32)


def stft(wav: torch.Tensor, n_fft: int, hop: int, win_length: int | None = None) -> torch.Tensor:
    """Complex STFT (frames, n_fft // 2 + 1) of a 1-D waveform: periodic Hann window, centred with reflect
    padding; ``1 + len // hop`` frames (librosa's ``stft`` defaults)."""
    win_length = win_length or n_fft
    window = torch.hann_window(win_length, dtype=wav.dtype, device=wav.device)
    pad_mode = "reflect" if wav.numel() > n_fft // 2 else "constant"  # reflect needs more samples than the pad
    spec = torch.stft(wav, n_fft, hop, win_length, window=window, center=True, pad_mode=pad_mode,
                      return_complex=True)  # (F, T)
    return spec.transpose(0, 1)


def log_mel(wav: torch.Tensor, sample_rate: int = 24000, n_fft: int = 1024, hop: int = 256, n_mels: int = 80,
            fmin: float = 80.0, fmax: float | None = 7600.0, win_length: int | None = None,
            eps: float = 1e-10) -> torch.Tensor:
    """``log10(max(eps, |STFT| @ mel))`` (frames, n_mels), float32, of a 1-D waveform at ``sample_rate``."""
    if wav.dim() != 1:
        raise ValueError(f"log_mel takes a 1-D waveform, got shape {tuple(wav.shape)}")
    if wav.numel() == 0:
        return wav.new_zeros(0, n_mels, dtype=torch.float32)
    mag = stft(wav.float(), n_fft, hop, win_length).abs()  # (T, F)
    basis = torch.from_numpy(mel_filters(sample_rate, n_fft, n_mels, fmin, fmax)).to(mag.device)
    return torch.log10(torch.clamp(mag @ basis.T, min=eps))  # (T, n_mels)


def mel_to_linear(lmspc: torch.Tensor, sample_rate: int = 24000, n_fft: int = 1024, fmin: float = 80.0,
                  fmax: float | None = 7600.0, eps: float = 1e-10) -> torch.Tensor:
    """The linear magnitude (frames, n_fft // 2 + 1) whose mel projection best matches ``10 ** lmspc``
    (pseudo-inverse of the filters, floored at ``eps``), as the original's Griffin-Lim path."""
    basis = mel_filters(sample_rate, n_fft, lmspc.size(-1), fmin, fmax)
    inverse = torch.from_numpy(np.linalg.pinv(basis)).to(lmspc.device)  # (F, n_mels) float32
    return torch.clamp(torch.pow(10.0, lmspc.float()) @ inverse.T, min=eps)


def griffin_lim(magnitude: torch.Tensor, n_fft: int = 1024, hop: int = 256, win_length: int | None = None,
                n_iter: int = 64, momentum: float = 0.99, seed: int = 0) -> torch.Tensor:
    """A waveform whose STFT magnitude approaches ``magnitude`` (frames, n_fft // 2 + 1): the fast
    Griffin-Lim algorithm with momentum (librosa's ``griffinlim``), random initial phases drawn from
    ``seed`` so that the same input always gives the same waveform."""
    win_length = win_length or n_fft
    window = torch.hann_window(win_length, dtype=torch.float32, device=magnitude.device)
    mag = magnitude.float().transpose(0, 1)  # (F, T)
    if mag.size(1) == 0:
        return mag.new_zeros(0)
    gen = torch.Generator().manual_seed(seed)
    angles = torch.polar(torch.ones_like(mag), 2 * math.pi * torch.rand(mag.shape, generator=gen).to(mag.device))

    def inverse(z):
        return torch.istft(z, n_fft, hop, win_length, window=window, center=True)

    previous = torch.zeros_like(angles)
    for _ in range(n_iter):
        rebuilt = torch.stft(inverse(mag * angles), n_fft, hop, win_length, window=window, center=True,
                             pad_mode="reflect" if mag.size(1) > 2 else "constant", return_complex=True)
        rebuilt = rebuilt[:, :mag.size(1)]
        angles = rebuilt - (momentum / (1 + momentum)) * previous
        angles = angles / (angles.abs() + 1e-16)
        previous = rebuilt
    return inverse(mag * angles)
