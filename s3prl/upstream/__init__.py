"""Upstream model families.

A family module exposes ``build(ckpt, **options) -> nn.Module``: ``ckpt`` is a local file or folder
(already downloaded) or None for families that need no checkpoint; ``options`` are the entry's
``extra_conf`` merged with the user's. The module it returns follows one contract:

* ``forward(wavs, wavs_len)``: ``wavs`` (B, T) float32 at 16 kHz, zero-padded; ``wavs_len`` (B,) long.
  Returns ``(hidden_states, lengths)``: a list of (B, T_l, D_l) tensors and a list of (B,) long tensors
  holding each utterance's number of frames the model really produced for it. Every utterance's
  frames must not depend on what else is in the batch.
* ``num_layers``, ``hidden_sizes`` (list[int]), ``downsample_rates`` (list[int]): from the configuration.
* optional ``legacy_extras(hidden_states, lengths) -> dict``: family-specific keys of the original hub
  interface (e.g. DistilHuBERT's ``paper``).

``S3PRLUpstream`` adds the original length contract on top (800-sample minimum input, ceil(len/stride)
frames, last frame repeated), so family modules only compute what the model computes.
"""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from . import baseline, distiller, wav2vec2

FAMILIES: dict[str, Callable[..., nn.Module]] = {
    "baseline": baseline.build,
    "wav2vec2": wav2vec2.build,
    "hubert": wav2vec2.build,
    "data2vec": wav2vec2.build,
    "wavlm": wav2vec2.build,
    "unispeech_sat": wav2vec2.build,
    "hf_wav2vec2": wav2vec2.build,
    "hf_hubert": wav2vec2.build,
    "distiller": distiller.build,
}


class FamilyNotImplementedError(NotImplementedError):
    pass


def build(family: str, name: str, ckpt: str | None, options: dict) -> nn.Module:
    """Build the model of ``family`` for registry name ``name``."""
    if family not in FAMILIES:
        raise FamilyNotImplementedError(
            f"Upstream {name!r} belongs to family {family!r}, which is not implemented yet in this "
            f"version of s3prl. Implemented families: {', '.join(sorted(set(FAMILIES)))}."
        )
    return FAMILIES[family](ckpt, **options)
