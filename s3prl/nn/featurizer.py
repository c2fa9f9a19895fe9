"""Featurizer: a learned softmax-weighted sum of an upstream's hidden states."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class Featurizer(nn.Module):
    """Combine the hidden states of ``upstream`` into one sequence.

    Args:
        upstream: an ``S3PRLUpstream`` (anything with ``num_layers``, ``hidden_sizes``, ``downsample_rates``).
        layer_selections: indices of the hidden states to combine (default: all).
        normalize: layer-normalise each selected state over its feature dimension before the sum.

    With one selected state the Featurizer passes it through. Weights start equal (zeros before softmax).
    """

    def __init__(self, upstream, layer_selections: list[int] | None = None, normalize: bool = False):
        super().__init__()
        num_layers = upstream.num_layers
        selections = sorted(layer_selections) if layer_selections is not None else list(range(num_layers))
        bad = [i for i in selections if not -num_layers <= i < num_layers]
        if bad:
            raise ValueError(f"layer_selections {bad} out of range for an upstream with {num_layers} hidden states")
        selections = [i % num_layers for i in selections]
        sizes = {upstream.hidden_sizes[i] for i in selections}
        rates = {upstream.downsample_rates[i] for i in selections}
        if len(sizes) > 1 or len(rates) > 1:
            raise ValueError(
                f"the selected hidden states differ in size {sorted(sizes)} or downsample rate {sorted(rates)}; "
                "select layers of one kind with layer_selections"
            )
        self.layer_selections = selections
        self.normalize = normalize
        self.output_size = sizes.pop()
        self.downsample_rate = rates.pop()
        if len(selections) > 1:
            self.weights = nn.Parameter(torch.zeros(len(selections)))

    def forward(self, all_hs: list[torch.Tensor], all_lens: list[torch.Tensor]):
        """(list of (B, T, D), list of (B,)) -> ((B, T, D), (B,))."""
        if len(self.layer_selections) == 1:
            index = self.layer_selections[0]
            return all_hs[index], all_lens[index]
        hs = torch.stack([all_hs[i] for i in self.layer_selections])  # (L, B, T, D)
        if self.normalize:
            hs = F.layer_norm(hs, hs.shape[-1:])
        weights = F.softmax(self.weights, dim=-1).to(hs.dtype)
        summed = torch.einsum("l,lbtd->btd", weights, hs)
        return summed, all_lens[self.layer_selections[0]]

    @property
    def layer_weights(self) -> torch.Tensor:
        """The normalised weight of each selected layer (sums to 1)."""
        if len(self.layer_selections) == 1:
            return torch.ones(1)
        return F.softmax(self.weights.detach(), dim=-1)
