"""PESQ and STOI through their maintained implementations (the ``pesq`` and ``pystoi`` packages), called as the
original s3prl's scoring calls them (asteroid -> pb_bss_eval): PESQ wide band at 16 kHz (narrow band at 8 kHz),
STOI not extended. Both are optional: ``pip install s3prl[enhance]``."""

from __future__ import annotations

import numpy as np

from ..extras import MissingExtraError
from .separation import _signal

EXTRA_HINT = "install the speech-enhancement extra: pip install 's3prl[enhance]' (pesq, pystoi)"


def _require(module: str):
    try:
        return __import__(module)
    except ImportError as err:
        raise MissingExtraError(f"{module} is needed for this metric but is not installed: {EXTRA_HINT}") from err


def _pair(reference, estimate, metric: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    where = f" ({name})" if name else ""
    ref, est = _signal(reference, f"reference{where}"), _signal(estimate, f"estimate{where}")
    if len(ref) != len(est):
        raise ValueError(f"{metric}{where}: reference has {len(ref)} samples but the estimate {len(est)}: they must "
                         "be the same length")
    if not np.any(ref):
        raise ValueError(f"{metric}{where}: the reference is silent (all zeros): {metric} is undefined for it")
    return ref, est


def pesq(reference, estimate, sample_rate: int = 16000, name: str = "") -> float:
    """PESQ (ITU-T P.862.2 wide band at 16 kHz, P.862 narrow band at 8 kHz) of ``estimate`` against ``reference``."""
    lib = _require("pesq")
    if sample_rate not in (8000, 16000):
        raise ValueError(f"PESQ is defined at 8000 or 16000 Hz, not {sample_rate} Hz: resample the audio first")
    ref, est = _pair(reference, estimate, "PESQ", name)
    try:
        return float(lib.pesq(sample_rate, ref, est, "wb" if sample_rate == 16000 else "nb"))
    except lib.PesqError as err:  # e.g. no utterance detected in the reference
        where = f" ({name})" if name else ""
        raise ValueError(f"PESQ{where}: {type(err).__name__}: {err}".rstrip(": ")) from err


def stoi(reference, estimate, sample_rate: int = 16000, extended: bool = False, name: str = "") -> float:
    """STOI (Taal et al. 2011; ``extended``: ESTOI) of ``estimate`` against ``reference``."""
    lib = _require("pystoi")
    ref, est = _pair(reference, estimate, "STOI", name)
    return float(lib.stoi(ref, est, sample_rate, extended=extended))
