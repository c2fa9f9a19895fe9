"""Audio input and feature front-ends: reading, resampling, Kaldi features, STFT features.

``load_audio`` reads any file ``soundfile`` can (wav, flac, ogg, ...), mixes it to mono and resamples
it; ``resample`` is a windowed-sinc polyphase resampler giving the numbers of
``torchaudio.functional.resample`` with its defaults (no torchaudio needed).
"""

from __future__ import annotations

import functools
import math
import os

import torch
import torch.nn.functional as F

from .features import add_deltas, cmvn, compute_deltas, htk_mel_filters, power_spectrogram, stft_feature
from .kaldi import fbank, mel_banks, mfcc, spectrogram

__all__ = ["load_audio", "resample", "describe_conversions", "fbank", "mfcc", "spectrogram", "mel_banks", "compute_deltas",
           "add_deltas", "cmvn", "power_spectrogram", "htk_mel_filters", "stft_feature"]


def load_audio(path: str | os.PathLike, sample_rate: int = 16000) -> torch.Tensor:
    """Read an audio file as a 1-D float32 tensor at ``sample_rate`` Hz.

    Channels are averaged; the signal is resampled when the file's rate differs. Raises
    ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file when it cannot be
    decoded or holds no samples.
    """
    import soundfile  # imported here so that the features work without it

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Audio file not found: {path}")
    try:
        data, file_rate = soundfile.read(path, dtype="float32", always_2d=True)  # (N, C)
    except Exception as error:  # libsndfile raises its own error types
        raise ValueError(f"Cannot read audio file {path}: {error}") from error
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise ValueError(f"Audio file {path} contains no samples")
    wav = torch.from_numpy(data).mean(dim=1)  # (N,)
    if file_rate != sample_rate:
        wav = resample(wav, file_rate, sample_rate)
    return wav.contiguous()


def describe_conversions(headers: list[tuple[int, int]], sample_rate: int = 16000) -> str | None:
    """One line saying what ``load_audio`` will do to files with these ``(sample rate, channels)`` headers
    (channels averaged, rates resampled), or None when every file is already mono at ``sample_rate``."""
    multi = [c for _, c in headers if c > 1]
    rates: dict[int, int] = {}
    for rate, _ in headers:
        if rate != sample_rate:
            rates[rate] = rates.get(rate, 0) + 1
    parts = []
    if multi:
        parts.append(f"{len(multi)} with {'/'.join(map(str, sorted(set(multi))))} channels averaged to mono")
    if rates:
        counts = ", ".join(f"{n} at {rate} Hz" for rate, n in sorted(rates.items()))
        parts.append(f"{sum(rates.values())} resampled to {sample_rate} Hz ({counts})")
    if not parts:
        return None
    return f"note: of {len(headers)} audio files, " + "; ".join(parts)


@functools.lru_cache(maxsize=16)
def _sinc_kernel(orig: int, new: int, lowpass_filter_width: int, rolloff: float,
                 dtype: torch.dtype) -> tuple[torch.Tensor, int]:
    """Polyphase filters (new, 1, 2 * width + orig) and the half width in input samples.

    Built in the waveform's dtype, as torchaudio does: upsampled audio has almost no energy above the
    old Nyquist frequency, so log features of those bands turn 1e-7 differences into 1e-3.
    """
    cutoff = min(orig, new) * rolloff  # anti-aliasing below the lower Nyquist frequency
    width = math.ceil(lowpass_filter_width * orig / cutoff)
    # output phase j (time -j/new) against input taps i/orig for i in [-width, width + orig)
    taps = torch.arange(-width, width + orig, dtype=dtype) / orig
    t = (torch.arange(0, -new, -1, dtype=dtype)[:, None] / new + taps[None]) * cutoff  # (new, taps)
    t = t.clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2  # Hann window over the taps
    t = t * math.pi
    safe_t = torch.where(t == 0, torch.ones((), dtype=dtype), t)
    sinc = torch.where(t == 0, torch.ones((), dtype=dtype), torch.sin(t) / safe_t)
    return (sinc * (window * (cutoff / orig)))[:, None], width


def resample(wav: torch.Tensor, orig_sr: int, new_sr: int, lowpass_filter_width: int = 6,
             rolloff: float = 0.99) -> torch.Tensor:
    """Band-limited resampling of (..., T) from ``orig_sr`` to ``new_sr`` Hz.

    Windowed sinc (Hann window, ``lowpass_filter_width`` zero crossings, cut-off at ``rolloff`` times
    the lower Nyquist frequency), as ``torchaudio.functional.resample``'s defaults. The output has
    ``ceil(T * new_sr / orig_sr)`` samples.
    """
    if int(orig_sr) != orig_sr or int(new_sr) != new_sr or orig_sr <= 0 or new_sr <= 0:
        raise ValueError(f"Sample rates must be positive integers, got {orig_sr} and {new_sr}")
    if not wav.is_floating_point():
        raise TypeError(f"Expected a floating point waveform, got {wav.dtype}")
    if orig_sr == new_sr:
        return wav
    if wav.dtype not in (torch.float32, torch.float64):  # no half-precision conv on every device
        return resample(wav.float(), orig_sr, new_sr, lowpass_filter_width, rolloff).to(wav.dtype)
    gcd = math.gcd(int(orig_sr), int(new_sr))
    orig, new = int(orig_sr) // gcd, int(new_sr) // gcd
    kernel, width = _sinc_kernel(orig, new, int(lowpass_filter_width), float(rolloff), wav.dtype)
    shape = wav.shape
    x = wav.reshape(-1, 1, shape[-1])  # (B, 1, T)
    x = F.pad(x, (width, width + orig))
    y = F.conv1d(x, kernel.to(wav.device), stride=orig)  # (B, new, blocks)
    y = y.transpose(1, 2).reshape(x.size(0), -1)  # interleave the phases: (B, new * blocks)
    target = -(-new * shape[-1] // orig)  # exact integer ceil(T * new / orig)
    return y[:, :target].reshape(*shape[:-1], -1)
