"""Mel-cepstral distortion (MCD, dB) as the original VC task's evaluation computes it (``a2o-vc-vcc2020``
``vc_evaluate.calculate_mcd_f0``, after ESPnet's ``mcd_calculate.py``):

1. each signal (float in [-1, 1]) is scaled to the 16-bit range and high-passed (255-tap FIR, 70 Hz);
2. WORLD analysis: F0 by Harvest (``f0min``..``f0max`` Hz, 5 ms frames), the spectral envelope by
   CheapTrick (FFT 1024);
3. 40 mel-cepstral coefficients (order 39, all-pass constant 0.466) of the envelope: log envelope -> real
   cepstrum -> SPTK's frequency warping ``freqt`` (as ``pysptk.sp2mc``, written here as one matrix);
4. frames more than 20 dB below the utterance's mean power are dropped (power from the envelope);
5. the two sequences are aligned by FastDTW (radius 1, Euclidean distance) and
   ``MCD = mean over aligned pairs of 10 / ln 10 * sqrt(2 * sum_d (c_d - c'_d)^2)`` (coefficient 0 included).

WORLD and FastDTW come from ``pyworld`` and ``fastdtw`` (the ``vc`` extra: ``pip install 's3prl[vc]'``).
The F0 search range is per target speaker in the original (``VCC2020_F0``, its ``data/f0.yaml``).
"""

from __future__ import annotations

import functools

import numpy as np

from ..extras import MissingExtraError

MCEP_DIM, MCEP_ALPHA, FRAME_PERIOD_MS, FFT_SIZE = 39, 0.466, 5.0, 1024
POWER_THRESHOLD_DB = -20.0
# the original's data/f0.yaml: Harvest's search range per VCC2020 target speaker
VCC2020_F0 = {"TEF1": (127, 405), "TEF2": (108, 361), "TEM1": (71, 227), "TEM2": (57, 182), "TFF1": (139, 387),
              "TFM1": (60, 189), "TGF1": (109, 345), "TGM1": (75, 236), "TMF1": (126, 409), "TMM1": (81, 254)}


def _require():
    try:
        import fastdtw  # noqa: F401
        import pyworld  # noqa: F401
        import scipy.signal  # noqa: F401
    except ImportError as err:
        raise MissingExtraError(f"MCD needs WORLD (pyworld), fastdtw and scipy ({err.name} is missing): "
                          "pip install 's3prl[vc]'") from err


def f0_range(speaker: str | None, f0min: float | None = None, f0max: float | None = None) -> tuple[float, float]:
    """The F0 search range: given values, else the original's per-speaker table (VCC2020 targets)."""
    if f0min is not None and f0max is not None:
        if not 0 < f0min < f0max:
            raise ValueError(f"the F0 range needs 0 < f0min < f0max, got {f0min}..{f0max}")
        return float(f0min), float(f0max)
    if speaker in VCC2020_F0:
        low, high = VCC2020_F0[speaker]
        return float(f0min or low), float(f0max or high)
    raise ValueError(f"no F0 range for speaker {speaker!r}: give f0min and f0max (Hz; the original's table covers "
                     f"{', '.join(VCC2020_F0)})")


def low_cut(x: np.ndarray, rate: int, cutoff: float = 70.0) -> np.ndarray:
    from scipy.signal import firwin, lfilter

    taps = firwin(255, cutoff / (rate // 2), pass_zero=False)
    return lfilter(taps, 1, x)


@functools.lru_cache(maxsize=4)
def freqt_matrix(n_in: int, order: int, alpha: float) -> np.ndarray:
    """SPTK's ``freqt`` (cepstrum -> warped cepstrum of ``order``) is linear: its (order + 1, n_in) matrix,
    from the recursion run on every unit vector at once."""
    b = 1 - alpha * alpha
    g = np.zeros((order + 1, n_in))
    eye = np.eye(n_in)
    for i in range(n_in - 1, -1, -1):  # SPTK feeds c[m1], ..., c[0]
        d = g.copy()
        g[0] = eye[i] + alpha * d[0]
        if order >= 1:
            g[1] = b * d[0] + alpha * d[1]
        for j in range(2, order + 1):
            g[j] = d[j - 1] + alpha * (d[j] - g[j - 1])
    g.setflags(write=False)
    return g


def sp2mc(sp: np.ndarray, order: int = MCEP_DIM, alpha: float = MCEP_ALPHA) -> np.ndarray:
    """Mel-cepstrum (frames, order + 1) of a power envelope (frames, fft // 2 + 1): ``pysptk.sp2mc``
    (cepstrum of the log power with coefficient 0 halved, then warped)."""
    c = np.fft.irfft(np.log(sp))  # (frames, fft)
    c[..., 0] /= 2.0
    return c @ freqt_matrix(c.shape[-1], order, alpha).T


def normalized_power(sp: np.ndarray) -> np.ndarray:
    """Frame power in dB relative to the utterance mean, from the power envelope (frames, bins)."""
    power = (sp[:, 0] + sp[:, -1] + 2.0 * sp[:, 1:-1].sum(axis=1)) / (2 * (sp.shape[1] - 1))
    return 10.0 * np.log10(power / power.mean())


def world_mcep(x: np.ndarray, rate: int, f0min: float, f0max: float) -> tuple[np.ndarray, np.ndarray]:
    """Mel-cepstra (frames, 40) and normalised power (frames,) of a signal in [-1, 1]."""
    _require()
    import pyworld

    x = low_cut(np.asarray(x, dtype=np.float64) * np.iinfo(np.int16).max, rate)
    f0, times = pyworld.harvest(x, rate, f0_floor=f0min, f0_ceil=f0max, frame_period=FRAME_PERIOD_MS)
    sp = pyworld.cheaptrick(x, f0, times, rate, fft_size=FFT_SIZE)
    return sp2mc(sp), normalized_power(sp)


def mcd(converted: np.ndarray, reference: np.ndarray, rate: int, f0min: float, f0max: float,
        name: str = "") -> float:
    """MCD (dB) of a converted signal against the reference (both float in [-1, 1] at ``rate`` Hz)."""
    from fastdtw import fastdtw
    from scipy.spatial.distance import euclidean

    for what, sig in (("converted", converted), ("reference", reference)):
        if np.asarray(sig).ndim != 1 or len(sig) < rate * FRAME_PERIOD_MS / 1000 * 2:
            raise ValueError(f"{name or 'MCD'}: the {what} signal must be mono and longer than 10 ms "
                             f"(got shape {np.asarray(sig).shape})")
    # the original's evaluate passes the converted signal first and aligns in the reversed order: kept
    first, first_pow = world_mcep(converted, rate, f0min, f0max)
    second, second_pow = world_mcep(reference, rate, f0min, f0max)
    a, b = second[second_pow > POWER_THRESHOLD_DB], first[first_pow > POWER_THRESHOLD_DB]
    if not len(a) or not len(b):
        raise ValueError(f"{name or 'MCD'}: no frame above {POWER_THRESHOLD_DB} dB of the mean power (silent signal?)")
    _, path = fastdtw(a, b, dist=euclidean)
    i, j = np.array(path).T
    diff2 = np.sum((a[i] - b[j]) ** 2, axis=1)
    return float(np.mean(10.0 / np.log(10.0) * np.sqrt(2 * diff2)))
