"""Deterministic weights for the VC parity fixtures (imported by the oracle script and by the tests).

The original Taco2-AR head at its own sizes holds about 25 M values: far too many to commit. Both sides
instead fill every tensor of the state dict from ``seeded_ckpt.unit_noise`` keyed by the tensor's name, so
the fixture only records the inputs, the outputs and the loss.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from seeded_ckpt import unit_noise


def seeded_state(shapes: dict[str, tuple], tag: str) -> dict[str, torch.Tensor]:
    """``{name: tensor}`` for ``{name: shape}``: weights ~ N(0, 1 / fan_in), biases ~ 0.05 N(0, 1),
    batch-norm running variances 1 + 0.5 |N(0, 1)|, counters 0."""
    out = {}
    for name, shape in shapes.items():
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if name.endswith("num_batches_tracked"):
            out[name] = torch.zeros(shape, dtype=torch.long)
            continue
        noise = unit_noise(n, f"{tag}/{name}")
        if name.endswith("running_var") or name.endswith("target_scale"):
            values = 1.0 + 0.5 * np.abs(noise)
        elif len(shape) >= 2:
            values = noise / math.sqrt(n / shape[0])
        else:
            values = 0.05 * noise
        out[name] = torch.from_numpy(values.astype(np.float32)).reshape(shape)
    return out
