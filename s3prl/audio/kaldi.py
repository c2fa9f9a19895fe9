"""Kaldi-compatible ``spectrogram``, ``fbank`` and ``mfcc`` in plain torch.

Keyword names and defaults follow ``torchaudio.compliance.kaldi`` (which the original s3prl calls), so
configuration files written for it work unchanged: ``dither`` 0.0, ``energy_floor`` 1.0, 25 ms frames
every 10 ms, Povey window, pre-emphasis 0.97, ``snip_edges`` True. Like the original, waveforms are used
as given (s3prl passes floats in [-1, 1], not int16-scaled samples).

Differences from torchaudio, all on inputs it rejects: a waveform shorter than one frame gives a
(0, D) tensor instead of an assertion error, and ``min_duration`` also returns (0, D).
The computation is vectorised: frames are a strided view of the waveform and one ``rfft`` does all
of them, in the waveform's dtype (float32 math, as in Kaldi).
"""

from __future__ import annotations

import functools
import math

import torch

__all__ = ["spectrogram", "fbank", "mfcc", "mel_banks"]

# Kaldi floors energies at float32 epsilon before taking logs.
_EPS = torch.finfo(torch.float32).eps
WINDOWS = ("hamming", "hanning", "povey", "rectangular", "blackman")


def _mel(freq):
    return 1127.0 * (torch.log(1.0 + freq / 700.0) if torch.is_tensor(freq) else math.log(1.0 + freq / 700.0))


def _inverse_mel(mel):
    return 700.0 * (torch.exp(mel / 1127.0) - 1.0)


def _select_channel(waveform: torch.Tensor, channel: int) -> torch.Tensor:
    """(T,) or (C, T) -> (T,); ``channel`` -1 means mono (the first row), as in torchaudio."""
    if waveform.dim() == 1:
        return waveform
    if waveform.dim() != 2:
        raise ValueError(f"Expected a waveform of shape (T,) or (C, T), got {tuple(waveform.shape)}")
    channel = max(channel, 0)
    if channel >= waveform.size(0):
        raise ValueError(f"channel {channel} does not exist in a waveform with {waveform.size(0)} channels")
    return waveform[channel]


def _frame_sizes(sample_frequency, frame_shift, frame_length, round_to_power_of_two):
    shift = int(sample_frequency * frame_shift * 0.001)
    size = int(sample_frequency * frame_length * 0.001)
    padded = 2 ** (size - 1).bit_length() if round_to_power_of_two else size
    if size < 2 or shift < 1:
        raise ValueError(f"frame_length {frame_length} ms / frame_shift {frame_shift} ms give a window of "
                         f"{size} samples and a shift of {shift}: need at least 2 and 1")
    if padded % 2:
        raise ValueError(f"The FFT size {padded} must be even: use round_to_power_of_two=True or change "
                         f"frame_length")
    return shift, size, padded


def _frames(wave: torch.Tensor, size: int, shift: int, snip_edges: bool) -> torch.Tensor:
    """Cut (T,) into (m, size) frames the way Kaldi's ExtractWindow does."""
    n = wave.size(0)
    if snip_edges:
        if n < size:
            return wave.new_zeros(0, size)
        return wave.unfold(0, size, shift)  # (m, size), a view
    m = (n + shift // 2) // shift
    if m == 0:
        return wave.new_zeros(0, size)
    # Frames are centred on i*shift + shift/2; samples outside [0, n) are mirrored with the edge
    # sample repeated (Kaldi: s -> -s-1 and s -> 2n-1-s), applied until they fall inside.
    start = torch.arange(m, device=wave.device) * shift + (shift // 2 - size // 2)
    idx = (start[:, None] + torch.arange(size, device=wave.device)).remainder(2 * n)
    idx = torch.where(idx >= n, 2 * n - 1 - idx, idx)
    return wave[idx]  # (m, size)


def _window(window_type: str, size: int, blackman_coeff: float, dtype, device) -> torch.Tensor:
    """Kaldi's frame window (symmetric). Built with torch's window functions in the waveform's dtype,
    as torchaudio does: float32 round-off in the window shows in the log of weak bands, so this keeps
    us closest to the original's numbers."""
    kw = dict(periodic=False, dtype=dtype, device=device)
    if window_type == "hanning":
        return torch.hann_window(size, **kw)
    if window_type == "povey":  # a Hann window raised to 0.85: reaches zero at the edges
        return torch.hann_window(size, **kw).pow(0.85)
    if window_type == "hamming":
        return torch.hamming_window(size, alpha=0.54, beta=0.46, **kw)
    if window_type == "rectangular":
        return torch.ones(size, dtype=dtype, device=device)
    if window_type == "blackman":
        a = 2 * math.pi / (size - 1)
        i = torch.arange(size, dtype=dtype, device=device)
        return blackman_coeff - 0.5 * torch.cos(a * i) + (0.5 - blackman_coeff) * torch.cos(2 * a * i)
    raise ValueError(f"Unknown window_type {window_type!r}; choose one of {', '.join(WINDOWS)}")


def _log_energy(frames: torch.Tensor, energy_floor: float) -> torch.Tensor:
    log_energy = frames.pow(2).sum(1).clamp_min(_EPS).log()  # (m,)
    if energy_floor > 0.0:
        log_energy = log_energy.clamp_min(math.log(energy_floor))
    return log_energy


def _windowed_frames(waveform, channel, sample_frequency, frame_shift, frame_length, round_to_power_of_two,
                     snip_edges, dither, remove_dc_offset, raw_energy, energy_floor, preemphasis_coefficient,
                     window_type, blackman_coeff):
    """Kaldi's frame pipeline. Returns (windowed, zero-padded frames (m, fft size), log energy (m,), fft size)."""
    wave = _select_channel(waveform, channel)
    if not wave.is_floating_point():
        raise TypeError(f"Expected a floating point waveform, got {wave.dtype}")
    if not 0.0 <= preemphasis_coefficient <= 1.0:
        raise ValueError(f"preemphasis_coefficient must be in [0, 1], got {preemphasis_coefficient}")
    shift, size, padded = _frame_sizes(sample_frequency, frame_shift, frame_length, round_to_power_of_two)
    window = _window(window_type, size, blackman_coeff, wave.dtype, wave.device)
    frames = _frames(wave, size, shift, snip_edges)  # (m, size)
    if dither != 0.0:
        frames = frames + torch.randn_like(frames) * dither
    if remove_dc_offset:
        frames = frames - frames.mean(dim=1, keepdim=True)
    if raw_energy:  # energy of the frame before pre-emphasis and windowing
        log_energy = _log_energy(frames, energy_floor)
    if preemphasis_coefficient != 0.0:
        # x[j] -= c * x[j-1], with x[-1] taken as x[0]
        previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
        frames = frames - preemphasis_coefficient * previous
    frames = frames * window  # (m, size)
    if padded != size:  # zeros up to the FFT size (before the energy: the sum then rounds as in torchaudio)
        frames = torch.nn.functional.pad(frames, (0, padded - size))  # (m, padded)
    if not raw_energy:
        log_energy = _log_energy(frames, energy_floor)
    return frames, log_energy, padded


def _too_short(waveform, channel, min_duration, sample_frequency):
    return _select_channel(waveform, channel).size(0) < min_duration * sample_frequency


def spectrogram(
    waveform: torch.Tensor,
    blackman_coeff: float = 0.42,
    channel: int = -1,
    dither: float = 0.0,
    energy_floor: float = 1.0,
    frame_length: float = 25.0,
    frame_shift: float = 10.0,
    min_duration: float = 0.0,
    preemphasis_coefficient: float = 0.97,
    raw_energy: bool = True,
    remove_dc_offset: bool = True,
    round_to_power_of_two: bool = True,
    sample_frequency: float = 16000.0,
    snip_edges: bool = True,
    subtract_mean: bool = False,
    window_type: str = "povey",
) -> torch.Tensor:
    """Kaldi ``compute-spectrogram-feats``: log power spectrum, column 0 replaced by the log energy.

    ``waveform``: (T,) or (C, T). Returns (m, fft_size // 2 + 1).
    """
    if _too_short(waveform, channel, min_duration, sample_frequency):
        padded = _frame_sizes(sample_frequency, frame_shift, frame_length, round_to_power_of_two)[2]
        return waveform.new_zeros(0, padded // 2 + 1)
    frames, log_energy, padded = _windowed_frames(
        waveform, channel, sample_frequency, frame_shift, frame_length, round_to_power_of_two, snip_edges,
        dither, remove_dc_offset, raw_energy, energy_floor, preemphasis_coefficient, window_type, blackman_coeff)
    if frames.size(0) == 0:  # shorter than one frame (the FFT refuses empty batches)
        return frames.new_zeros(0, padded // 2 + 1)
    power = torch.fft.rfft(frames).abs().pow(2.0)  # (m, padded // 2 + 1)
    out = power.clamp_min(_EPS).log()
    out[:, 0] = log_energy
    return out - out.mean(dim=0, keepdim=True) if subtract_mean else out


def _vtln_warp(freq, low_freq, high_freq, vtln_low, vtln_high, warp):
    """Kaldi's piecewise-linear VTLN frequency warp (Hz -> Hz)."""
    lo = vtln_low * max(1.0, warp)
    hi = vtln_high * min(1.0, warp)
    scale = 1.0 / warp
    if not (lo > low_freq and hi < high_freq):
        raise ValueError(f"vtln_low {vtln_low} / vtln_high {vtln_high} must lie inside low_freq {low_freq} "
                         f"/ high_freq {high_freq} after warping by {warp}")
    scale_left = (scale * lo - low_freq) / (lo - low_freq)
    scale_right = (high_freq - scale * hi) / (high_freq - hi)
    warped = torch.where(freq < lo, low_freq + scale_left * (freq - low_freq),
                         torch.where(freq < hi, scale * freq, high_freq + scale_right * (freq - high_freq)))
    return torch.where((freq < low_freq) | (freq > high_freq), freq, warped)


def mel_banks(num_bins: int, fft_size: int, sample_frequency: float, low_freq: float = 20.0,
              high_freq: float = 0.0, vtln_low: float = 100.0, vtln_high: float = -500.0,
              vtln_warp: float = 1.0) -> torch.Tensor:
    """Kaldi's triangular mel filters: (num_bins, fft_size // 2 + 1) float32 (the Nyquist column is 0).

    ``high_freq`` <= 0 and ``vtln_high`` < 0 are offsets from the Nyquist frequency, as in Kaldi.
    """
    return _mel_banks(int(num_bins), int(fft_size), float(sample_frequency), float(low_freq),
                      float(high_freq), float(vtln_low), float(vtln_high), float(vtln_warp)).clone()


@functools.lru_cache(maxsize=32)
def _mel_banks(num_bins, fft_size, sample_frequency, low_freq, high_freq, vtln_low, vtln_high, vtln_warp):
    # float32 on purpose: these are the weights torchaudio (the original's back-end) computes, and
    # float64 weights move the log of weak bands by up to 1e-3.
    if num_bins <= 3:
        raise ValueError(f"num_mel_bins must be at least 4, got {num_bins}")
    nyquist = 0.5 * sample_frequency
    if high_freq <= 0.0:
        high_freq += nyquist
    if not (0.0 <= low_freq < nyquist and 0.0 < high_freq <= nyquist and low_freq < high_freq):
        raise ValueError(f"Bad low_freq {low_freq} / high_freq {high_freq} for Nyquist frequency {nyquist}")
    if vtln_high < 0.0:
        vtln_high += nyquist
    mel_low, mel_high = _mel(low_freq), _mel(high_freq)
    step = (mel_high - mel_low) / (num_bins + 1)
    i = torch.arange(num_bins, dtype=torch.float32)[:, None]
    left, center, right = (mel_low + (i + k) * step for k in range(3))  # each (num_bins, 1)
    fft_mel = _mel(sample_frequency / fft_size * torch.arange(fft_size // 2, dtype=torch.float32))[None]
    if vtln_warp == 1.0:
        up = (fft_mel - left) / (center - left)
        down = (right - fft_mel) / (right - center)
        banks = torch.minimum(up, down).clamp_min(0.0)
    else:
        def warp(m):
            return _mel(_vtln_warp(_inverse_mel(m), low_freq, high_freq, vtln_low, vtln_high, vtln_warp))
        left, center, right = warp(left), warp(center), warp(right)
        up = (fft_mel - left) / (center - left)
        down = (right - fft_mel) / (right - center)
        banks = torch.where((fft_mel > left) & (fft_mel <= center), up,
                            torch.where((fft_mel > center) & (fft_mel < right), down, torch.zeros(())))
    return torch.nn.functional.pad(banks, (0, 1))  # (num_bins, fft_size // 2 + 1)


def fbank(
    waveform: torch.Tensor,
    blackman_coeff: float = 0.42,
    channel: int = -1,
    dither: float = 0.0,
    energy_floor: float = 1.0,
    frame_length: float = 25.0,
    frame_shift: float = 10.0,
    high_freq: float = 0.0,
    htk_compat: bool = False,
    low_freq: float = 20.0,
    min_duration: float = 0.0,
    num_mel_bins: int = 23,
    preemphasis_coefficient: float = 0.97,
    raw_energy: bool = True,
    remove_dc_offset: bool = True,
    round_to_power_of_two: bool = True,
    sample_frequency: float = 16000.0,
    snip_edges: bool = True,
    subtract_mean: bool = False,
    use_energy: bool = False,
    use_log_fbank: bool = True,
    use_power: bool = True,
    vtln_high: float = -500.0,
    vtln_low: float = 100.0,
    vtln_warp: float = 1.0,
    window_type: str = "povey",
) -> torch.Tensor:
    """Kaldi ``compute-fbank-feats``: (log) mel filterbank energies.

    ``waveform``: (T,) or (C, T). Returns (m, num_mel_bins + use_energy); with ``use_energy`` the log
    energy is the first column (the last with ``htk_compat``).
    """
    if _too_short(waveform, channel, min_duration, sample_frequency):
        return waveform.new_zeros(0, num_mel_bins + int(use_energy))
    frames, log_energy, padded = _windowed_frames(
        waveform, channel, sample_frequency, frame_shift, frame_length, round_to_power_of_two, snip_edges,
        dither, remove_dc_offset, raw_energy, energy_floor, preemphasis_coefficient, window_type, blackman_coeff)
    if frames.size(0) == 0:  # shorter than one frame (the FFT refuses empty batches)
        return frames.new_zeros(0, num_mel_bins + int(use_energy))
    spectrum = torch.fft.rfft(frames).abs()  # (m, padded // 2 + 1)
    if use_power:
        spectrum = spectrum.pow(2.0)
    banks = _mel_banks(num_mel_bins, padded, float(sample_frequency), float(low_freq), float(high_freq),
                       float(vtln_low), float(vtln_high), float(vtln_warp))
    mel = spectrum @ banks.to(device=frames.device, dtype=frames.dtype).T  # (m, num_mel_bins)
    if use_log_fbank:
        mel = mel.clamp_min(_EPS).log()
    if use_energy:
        parts = (mel, log_energy[:, None]) if htk_compat else (log_energy[:, None], mel)
        mel = torch.cat(parts, dim=1)
    return mel - mel.mean(dim=0, keepdim=True) if subtract_mean else mel


@functools.lru_cache(maxsize=16)
def _kaldi_dct(num_ceps: int, num_bins: int) -> torch.Tensor:
    """Kaldi's orthonormal DCT-II as a right-multiplied (num_bins, num_ceps) matrix, in float32 like
    torchaudio's (float64 would move the cepstra by ~1e-4). It is a column slice of the transposed
    square matrix, as there: that memory layout picks the same matmul kernel, so sums round the same."""
    k = torch.arange(num_bins, dtype=torch.float32)[:, None]
    n = torch.arange(num_bins, dtype=torch.float32)[None]
    dct = torch.cos(math.pi / num_bins * (n + 0.5) * k) * math.sqrt(2.0 / num_bins)  # (k, n)
    dct[0] = math.sqrt(1.0 / num_bins)
    return dct.T[:, :num_ceps]  # (num_bins, num_ceps), strides (1, num_bins)


def mfcc(
    waveform: torch.Tensor,
    blackman_coeff: float = 0.42,
    cepstral_lifter: float = 22.0,
    channel: int = -1,
    dither: float = 0.0,
    energy_floor: float = 1.0,
    frame_length: float = 25.0,
    frame_shift: float = 10.0,
    high_freq: float = 0.0,
    htk_compat: bool = False,
    low_freq: float = 20.0,
    num_ceps: int = 13,
    min_duration: float = 0.0,
    num_mel_bins: int = 23,
    preemphasis_coefficient: float = 0.97,
    raw_energy: bool = True,
    remove_dc_offset: bool = True,
    round_to_power_of_two: bool = True,
    sample_frequency: float = 16000.0,
    snip_edges: bool = True,
    subtract_mean: bool = False,
    use_energy: bool = False,
    vtln_high: float = -500.0,
    vtln_low: float = 100.0,
    vtln_warp: float = 1.0,
    window_type: str = "povey",
) -> torch.Tensor:
    """Kaldi ``compute-mfcc-feats``: DCT of the log mel energies, liftered.

    ``waveform``: (T,) or (C, T). Returns (m, num_ceps). With ``use_energy`` C0 is replaced by the log
    energy; with ``htk_compat`` C0 (or the energy) moves to the last column.
    """
    if num_ceps > num_mel_bins:
        raise ValueError(f"num_ceps ({num_ceps}) cannot be larger than num_mel_bins ({num_mel_bins})")
    feats = fbank(waveform, blackman_coeff=blackman_coeff, channel=channel, dither=dither,
                  energy_floor=energy_floor, frame_length=frame_length, frame_shift=frame_shift,
                  high_freq=high_freq, htk_compat=False, low_freq=low_freq, min_duration=min_duration,
                  num_mel_bins=num_mel_bins, preemphasis_coefficient=preemphasis_coefficient,
                  raw_energy=raw_energy, remove_dc_offset=remove_dc_offset,
                  round_to_power_of_two=round_to_power_of_two, sample_frequency=sample_frequency,
                  snip_edges=snip_edges, use_energy=use_energy, vtln_high=vtln_high, vtln_low=vtln_low,
                  vtln_warp=vtln_warp, window_type=window_type)  # (m, use_energy + num_mel_bins)
    log_energy = feats[:, 0] if use_energy else None
    mel = feats[:, int(use_energy):]
    ceps = mel @ _kaldi_dct(num_ceps, num_mel_bins).to(device=mel.device, dtype=mel.dtype)  # (m, num_ceps)
    if cepstral_lifter != 0.0:
        i = torch.arange(num_ceps, dtype=torch.float32)
        lifter = 1.0 + 0.5 * cepstral_lifter * torch.sin(math.pi * i / cepstral_lifter)
        ceps = ceps * lifter.to(device=ceps.device, dtype=ceps.dtype)
    if use_energy:
        ceps = torch.cat([log_energy[:, None], ceps[:, 1:]], dim=1)
    if htk_compat:
        c0 = ceps[:, :1] if use_energy else ceps[:, :1] * math.sqrt(2.0)  # HTK's C0 scaling
        ceps = torch.cat([ceps[:, 1:], c0], dim=1)
    return ceps - ceps.mean(dim=0, keepdim=True) if subtract_mean else ceps
