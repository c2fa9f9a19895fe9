"""The ``example`` family: the original's template upstream (``customized_upstream``).

Two per-sample linear layers, 1 -> 8 -> 8, no downsampling: hidden states ``[hidden, feature]``, each
(B, T, 8) with one frame per input sample. As in the original the weights are PyTorch's default random
initialisation, drawn from the global RNG in the same order (``model1`` then ``model2``), so the same
``torch.manual_seed`` gives the original's weights. The legacy hub output also carries the template's
SUPERB task keys (``PR``, ``ASR``, ... ``secret``), each the same ``[hidden, feature]`` list.

Unlike the original (which prints ``ckpt`` and ignores it), a ``ckpt`` here is loaded: a state dict of
this template (``model1.weight``, ``model1.bias``, ``model2.weight``, ``model2.bias``). ``model_config``
is the template's place for a user configuration; the template itself does not read it.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .. import checkpoint as ckpt_io
from ..convert.errors import CheckpointFormatError

HIDDEN_DIM = 8
TASK_KEYS = ("PR", "ASR", "QbE", "SID", "ASV", "SD", "ER", "SF", "SE", "SS", "secret")


class ExampleUpstream(nn.Module):
    """wav (B, T) -> [hidden (B, T, 8), feature (B, T, 8)], one frame per sample."""

    num_layers = 2
    hidden_sizes = [HIDDEN_DIM, HIDDEN_DIM]
    downsample_rates = [1, 1]

    def __init__(self):
        super().__init__()
        self.model1 = nn.Linear(1, HIDDEN_DIM)
        self.model2 = nn.Linear(HIDDEN_DIM, HIDDEN_DIM)

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        hidden = self.model1(wavs[:, :, None])  # (B, T, 8): per sample, so padding cannot leak
        feature = self.model2(hidden)  # (B, T, 8)
        lengths = wavs_len.to(wavs.device)
        return [hidden, feature], [lengths, lengths]

    def legacy_extras(self, states, lengths) -> dict:
        return {key: list(states) for key in TASK_KEYS}


def build(ckpt: str | None = None, model_config: str | None = None, **options) -> ExampleUpstream:
    """The template upstream; ``ckpt`` (optional) is a state dict of it."""
    if options:
        raise TypeError(f"unknown option(s) for customized_upstream: {', '.join(sorted(options))} "
                        "(it takes ckpt and model_config)")
    model = ExampleUpstream()
    if ckpt is not None:
        state = ckpt_io.load_checkpoint(ckpt)
        own = model.state_dict()
        if not isinstance(state, dict) or set(state) != set(own):
            keys = sorted(state)[:8] if isinstance(state, dict) else type(state).__name__
            raise CheckpointFormatError(
                f"{ckpt} is not a state dict of the example template (expected keys {sorted(own)}, got {keys})"
            )
        for key, value in state.items():
            if not isinstance(value, torch.Tensor) or value.shape != own[key].shape:
                raise CheckpointFormatError(f"{ckpt}: {key} must be a tensor of shape {tuple(own[key].shape)}")
        model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.eval()
