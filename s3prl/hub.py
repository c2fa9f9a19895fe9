"""The legacy hub interface: ``s3prl.hub.<name>(ckpt=..., refresh=..., **options)``.

Each name of the registry is an attribute of this module (``__getattr__``/``__dir__``, generated from the
registry table, no globals scan). Calling it returns a module that takes a list of unpadded 1-D 16 kHz
waveforms and returns a dict with ``hidden_states``, ``last_hidden_state``, ``hidden_state_{i}`` and the
family's extra keys (e.g. DistilHuBERT's ``paper``), as the original expert did.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
import torch.nn as nn

from . import registry
from .nn.upstream import MIN_SAMPLES, build_upstream, check_features, check_input, model_dtype

__all__ = ["options", "LegacyUpstream"]


class LegacyUpstream(nn.Module):
    """An upstream called on a list of wavs; outputs are padded to the longest utterance's frames."""

    def __init__(self, model: nn.Module, name: str):
        super().__init__()
        self.model = model
        self.name = name

    def get_downsample_rates(self, key: str = "hidden_states") -> int:
        return int(self.model.downsample_rates[-1])

    def forward(self, wavs: list[torch.Tensor]) -> dict:
        """The same input rules as ``S3PRLUpstream`` (``s3prl.nn.upstream.check_input``): float waveforms of any
        dtype are cast to the model's, integer ones refused, NaN/inf and overflowing amplitudes named."""
        if isinstance(wavs, torch.Tensor) or not len(wavs):
            raise TypeError("the hub interface takes a non-empty list of 1-D waveforms (unpadded, 16 kHz)")
        for i, wav in enumerate(wavs):
            if not isinstance(wav, torch.Tensor) or wav.dim() != 1:
                raise ValueError(f"wav {i}: expected a 1-D float tensor, got {describe(wav)}")
            if not wav.is_floating_point():
                raise TypeError(f"wav {i}: expected float samples scaled to [-1, 1], got {wav.dtype}; "
                                "for int16 PCM use wav.float() / 32768")
        common = functools.reduce(torch.promote_types, [w.dtype for w in wavs])
        lengths = torch.tensor([len(w) for w in wavs], device=wavs[0].device)
        padded = torch.nn.utils.rnn.pad_sequence([w.to(common) for w in wavs], batch_first=True)  # (B, T)
        padded, lengths = check_input(padded, lengths, model_dtype(self.model))
        if hasattr(self.model, "legacy_forward"):  # entries with their own outputs (MOS predictors: `scores`)
            out = self.model.legacy_forward([wav[:n] for wav, n in zip(padded, lengths.tolist())])
            scores = [v[:, None] for v in out.values() if torch.is_tensor(v) and v.dim() == 1]  # (B, 1) each
            check_features(self.name, scores, [torch.ones_like(lengths)] * len(scores), padded)
            return out
        if padded.size(1) < MIN_SAMPLES:
            padded = torch.nn.functional.pad(padded, (0, MIN_SAMPLES - padded.size(1)))
        states, frame_lens = self.model(padded, lengths.clamp(min=MIN_SAMPLES))
        check_features(self.name, states, frame_lens, padded)
        out = {"hidden_states": states, "last_hidden_state": states[-1]}
        for i, state in enumerate(states):
            out[f"hidden_state_{i}"] = state
        if hasattr(self.model, "legacy_extras"):
            out.update(self.model.legacy_extras(states, frame_lens))
        return out


def describe(wav) -> str:
    if isinstance(wav, torch.Tensor):
        return f"shape {tuple(wav.shape)} {wav.dtype}"
    return type(wav).__name__


def _entry(name: str) -> Callable[..., LegacyUpstream]:
    def make(ckpt: str | None = None, refresh: bool = False, **options) -> LegacyUpstream:
        options = {k: v for k, v in options.items() if v is not None}  # the original passed None for unset options
        return LegacyUpstream(build_upstream(name, ckpt, refresh, options), name)

    make.__name__ = name
    make.__doc__ = f"Legacy hub entry for the upstream {name!r} (see `s3prl info {name}`)."
    return make


def options(only_registered_ckpt: bool = False) -> list[str]:
    """Every entry name (as the original ``hub.options``)."""
    return registry.available_names(only_registered_ckpt)


def __getattr__(name: str):
    if name in registry.REGISTRY:
        return _entry(name)
    raise AttributeError(f"module 's3prl.hub' has no upstream {name!r}; `s3prl list` shows every name")


def __dir__():
    return sorted(set(globals()) | set(registry.REGISTRY))
