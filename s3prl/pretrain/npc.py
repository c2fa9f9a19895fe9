"""NPC pre-training: reconstruct every fbank frame from its context without the frame's neighbourhood (L1).

The network has the original's module names (``blocks.N.{conv,linear,bn1,bn2}``, ``masked_convs.N.conv`` and
its ``conv_mask`` buffer, ``vq_layers.N``, ``ae_bottleneck``, ``postnet``), so its state dict is the ``model``
entry the original NPC reader and ours load.

Objective, as the original pre-trainer: the whole padded batch goes through the network (convolutions and
BatchNorm statistics see the padding, as in the original); the loss is the L1 error averaged over feature
channels, summed over each utterance's valid frames and divided by the total number of valid frames.

``disable_cross_layer``: the representation is the last block's masked convolution alone (the others are not
built). The original's NPC upstream cannot load such a checkpoint (its hooks expect every masked convolution),
and neither does ours (``npc_local`` names the option).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .apc import Batch, vq_groups

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


class ConvBlock(nn.Module):
    """conv k=3 -> BatchNorm -> act -> 1x1 conv -> BatchNorm -> dropout (-> + input) -> act, on (B, C, T)."""

    def __init__(self, in_dim: int, hidden: int, residual: bool, dropout: float, batch_norm: bool, activate: str):
        super().__init__()
        self.residual, self.dropout, self.batch_norm = residual, dropout, batch_norm
        self.act = ACTIVATIONS[activate]()
        self.conv = nn.Conv1d(in_dim, hidden, kernel_size=3, padding=1)
        self.linear = nn.Conv1d(hidden, hidden, kernel_size=1)
        if batch_norm:
            self.bn1, self.bn2 = nn.BatchNorm1d(hidden), nn.BatchNorm1d(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        y = self.act(self.bn1(y) if self.batch_norm else y)
        y = self.linear(y)
        y = F.dropout(self.bn2(y) if self.batch_norm else y, self.dropout, self.training)
        return self.act(y + x if self.residual else y)


class MaskedConv(nn.Module):
    """A convolution whose ``mask_size`` centre taps are zeroed (``conv_mask``), then tanh: (B, C, T) -> (B, T, C)."""

    def __init__(self, hidden: int, kernel_size: int, mask_size: int):
        super().__init__()
        self.conv = nn.Conv1d(hidden, hidden, kernel_size, padding=(kernel_size - 1) // 2)
        mask = torch.ones_like(self.conv.weight)
        head = (kernel_size - mask_size) // 2
        mask[:, :, head: head + mask_size] = 0
        self.register_buffer("conv_mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv1d(x, self.conv_mask * self.conv.weight, self.conv.bias, padding=self.conv.padding)
        return torch.tanh(y.transpose(1, 2))


class NPCNet(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, n_blocks: int, dropout: float, residual: bool,
                 kernel_size: int, mask_size: int, vq: dict | None = None, batch_norm: bool = True,
                 activate: str = "relu", disable_cross_layer: bool = False, dim_bottleneck: int | None = None):
        super().__init__()
        if kernel_size % 2 == 0 or mask_size % 2 == 0 or n_blocks < 1:
            raise ValueError("model.paras: kernel_size and mask_size must be odd and n_blocks >= 1")
        if kernel_size - (mask_size + 2 * n_blocks) <= 0:
            raise ValueError(f"model.paras: kernel_size {kernel_size} must exceed mask_size + 2 * n_blocks")
        if activate not in ACTIVATIONS:
            raise ValueError(f"model.paras.activate = {activate!r}: one of {sorted(ACTIVATIONS)}")
        if vq is not None and dim_bottleneck is not None:
            raise ValueError("model.paras: vq and dim_bottleneck exclude each other (as in the original)")
        self.blocks = nn.ModuleList(ConvBlock(input_size if i == 0 else hidden_size, hidden_size, i > 0 and residual,
                                              dropout, batch_norm, activate) for i in range(n_blocks))
        # disable_cross_layer: only the last block has a masked convolution (None keeps the original's indices)
        self.masked_convs = nn.ModuleList(
            None if disable_cross_layer and i < n_blocks - 1 else MaskedConv(hidden_size, kernel_size,
                                                                             mask_size + 2 * (i + 1))
            for i in range(n_blocks))
        self.code_dims = list(vq["code_dim"]) if vq else []
        if vq:
            self.vq_layers = vq_groups(vq, hidden_size)
        if dim_bottleneck is not None:
            self.ae_bottleneck = nn.Linear(hidden_size, dim_bottleneck, bias=False)
        self.postnet = nn.Linear(hidden_size if dim_bottleneck is None else dim_bottleneck, input_size)

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, D) -> prediction (B, T, D), representation (B, T, H)."""
        x, rep = feats.transpose(1, 2), 0  # (B, D, T)
        for block, masked in zip(self.blocks, self.masked_convs):
            x = block(x)  # (B, H, T)
            if masked is not None:
                rep = rep + masked(x)  # (B, T, H)
        if self.code_dims:
            out = torch.cat([vq(part) for vq, part in zip(self.vq_layers, rep.split(self.code_dims, dim=-1))], -1)
        else:
            out = self.ae_bottleneck(rep) if hasattr(self, "ae_bottleneck") else rep
        return self.postnet(out), rep


class NPCObjective(nn.Module):
    """``objective(batch) -> loss``: the original NPC ``pretrain_expert.forward``."""

    def __init__(self, model_config: dict):
        super().__init__()
        self.model = NPCNet(int(model_config["data"]["audio"]["feat_dim"]), **model_config["model"]["paras"])

    def forward(self, batch: Batch) -> torch.Tensor:
        device = self.model.postnet.weight.device
        feats = batch.feats.to(device)  # (B, T, D)
        pred, _ = self.model(feats)
        error = (pred - feats).abs().mean(dim=-1)  # (B, T)
        valid = torch.arange(feats.size(1), device=device)[None, :] < batch.lengths.to(device)[:, None]
        return (error * valid).sum() / batch.lengths.sum().to(device)
