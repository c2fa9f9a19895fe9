"""APC and VQ-APC pre-training: predict the fbank frame ``n_future`` steps ahead with stacked GRUs (L1).

The network has the original's module names (``rnn_layers.N``, ``vq_layers.N.{vq_logits,codebook_CxE}``,
``postnet``), so its state dict is the ``model`` entry the original APC reader and ours load.

Objective, as the original: the input is the padded batch without its last ``n_future`` frames, each
utterance's length shortened by ``n_future``; the target is the batch shifted by ``n_future``; the loss is
the mean absolute error over the whole padded tensor (padded frames included: there the prediction is the
postnet's bias and the target zero, exactly what the original optimises). VQ-APC quantises the last GRU's
output in groups with a hard Gumbel-softmax (training) before the predictor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..upstream.apc import run_rnn


def vq_groups(vq: dict, hidden_size: int) -> nn.ModuleList:
    """One ``VQLayer`` per group of the config's ``vq`` section (``codebook_size``, ``code_dim`` lists whose code
    dimensions split the ``hidden_size`` features), as APC's and NPC's quantisers are built."""
    sizes, dims = list(vq["codebook_size"]), list(vq["code_dim"])
    if len(sizes) != len(dims) or sum(dims) != hidden_size:
        raise ValueError(f"model.paras.vq: codebook_size {sizes} and code_dim {dims} must have one entry per "
                         f"group, code_dim summing to {hidden_size}")
    return nn.ModuleList(VQLayer(d, c, d, vq["gumbel_temperature"]) for c, d in zip(sizes, dims))


class VQLayer(nn.Module):
    """One group of the quantiser: logits over the codebook, a one-hot code (Gumbel in training, argmax
    otherwise), and its embedding."""

    def __init__(self, input_size: int, codebook_size: int, code_dim: int, gumbel_temperature: float):
        super().__init__()
        self.temperature = gumbel_temperature
        self.vq_logits = nn.Linear(input_size, codebook_size)
        self.codebook_CxE = nn.Linear(codebook_size, code_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.vq_logits(x)  # (B, T, C)
        if self.training:
            onehot = F.gumbel_softmax(logits, tau=self.temperature, hard=True, dim=-1)
        else:
            onehot = F.one_hot(logits.argmax(-1), logits.size(-1)).to(logits.dtype)
        return self.codebook_CxE(onehot)  # (B, T, E)


class APCNet(nn.Module):
    """GRU stack (residual from layer 2 on, dropout on every output), optional VQ on the last layer, postnet."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float, residual: bool,
                 vq: dict | None = None):
        super().__init__()
        sizes = [input_size] + [hidden_size] * num_layers
        self.rnn_layers = nn.ModuleList(nn.GRU(i, o, batch_first=True) for i, o in zip(sizes[:-1], sizes[1:]))
        self.dropout, self.residual = dropout, residual
        self.code_dims = list(vq["code_dim"]) if vq else []
        if vq:
            self.vq_layers = vq_groups(vq, hidden_size)
        self.postnet = nn.Linear(hidden_size, input_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, D) zero-padded, lengths (B,) -> prediction (B, T, D), last-layer feature (B, T, H)."""
        for i, rnn in enumerate(self.rnn_layers):
            h = F.dropout(run_rnn(rnn, x, lengths), self.dropout, self.training)  # (B, T, H), zeros past lengths
            if self.residual and i > 0:
                h = h + x
            x = h
        feature = x
        if self.code_dims:
            x = torch.cat([vq(part) for vq, part in zip(self.vq_layers, x.split(self.code_dims, dim=-1))], dim=-1)
        return self.postnet(x), feature


@dataclass
class Batch:
    """Padded features (B, T, D), frame counts (B,), utterance ids."""

    feats: torch.Tensor
    lengths: torch.Tensor
    uids: list


class APCObjective(nn.Module):
    """``objective(batch) -> loss``: the original ``pretrain_expert.forward``."""

    def __init__(self, model_config: dict):
        super().__init__()
        paras = model_config["model"]["paras"]
        self.n_future = int(model_config["task"]["n_future"])
        self.model = APCNet(int(model_config["data"]["audio"]["feat_dim"]), **paras)

    def forward(self, batch: Batch) -> torch.Tensor:
        device = self.model.postnet.weight.device
        feats, n = batch.feats.to(device), self.n_future
        pred, _ = self.model(feats[:, :-n], batch.lengths.to(device) - n)  # (B, T - n, D)
        return F.l1_loss(pred, feats[:, n:])
