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

from . import (
    apc,
    ast,
    baseline,
    byol_a,
    byol_s,
    cpc,
    decoar,
    distiller,
    espnet_hubert,
    example,
    lighthubert,
    log_stft,
    mae_ast,
    mockingjay,
    mos_prediction,
    multires_hubert,
    npc,
    pase,
    passt,
    roberta,
    timit_phone,
    vggish,
    wav2vec,
    wav2vec2,
)

FAMILIES: dict[str, Callable[..., nn.Module]] = {
    "lighthubert": lighthubert.build,
    "multires_hubert": multires_hubert.build,
    "espnet_hubert": espnet_hubert.build,
    "mos_prediction": mos_prediction.build,
    "log_stft": log_stft.build,
    "example": example.build,
    "timit_phone": timit_phone.build,
    "pase": pase.build,
    "ast": ast.build,
    "ssast": ast.build_ssast,
    "mae_ast": mae_ast.build,
    "passt": passt.build,
    "byol_a": byol_a.build,
    "byol_s": byol_s.build,
    "vggish": vggish.build,
    "apc": apc.build,
    "npc": npc.build,
    "decoar": decoar.build_decoar,
    "decoar_layers": decoar.build_decoar_layers,
    "decoar2": decoar.build_decoar2,
    "baseline": baseline.build,
    "wav2vec2": wav2vec2.build,
    "hubert": wav2vec2.build,
    "data2vec": wav2vec2.build,
    "wavlm": wav2vec2.build,
    "unispeech_sat": wav2vec2.build,
    "hf_wav2vec2": wav2vec2.build,
    "hf_hubert": wav2vec2.build,
    "distiller": distiller.build,
    "mockingjay": mockingjay.build,
    "tera": mockingjay.build,
    "audio_albert": mockingjay.build,
    "spec_augment": mockingjay.build,
    "wav2vec": wav2vec.build,
    "vq_wav2vec": wav2vec.build,
    "roberta": roberta.build,
    "cpc": cpc.build,
}


class FamilyNotImplementedError(NotImplementedError):
    pass


# Families whose builder only explains why they cannot be built here (asked before any download).
UNAVAILABLE: dict[str, Callable[..., nn.Module]] = {}


def check_buildable(family: str, name: str) -> None:
    """Raise a clear error, before anything is downloaded, when ``family`` cannot be built."""
    if family not in FAMILIES:
        raise FamilyNotImplementedError(
            f"Upstream {name!r} belongs to family {family!r}, which is not implemented yet in this "
            f"version of s3prl. Implemented families: {', '.join(sorted(set(FAMILIES)))}."
        )
    if family in UNAVAILABLE:
        UNAVAILABLE[family](None)


def build(family: str, name: str, ckpt: str | None, options: dict) -> nn.Module:
    """Build the model of ``family`` for registry name ``name``."""
    check_buildable(family, name)
    return FAMILIES[family](ckpt, **options)
