"""NPC (Non-autoregressive Predictive Coding): conv blocks and masked convolutions on 80-d Kaldi fbank.

Each block (conv k=3, BatchNorm, act, 1x1 conv, BatchNorm, residual, act) is followed by a masked convolution
whose centre taps are zeroed (mask_size + 2 per block, so a frame never sees itself); the masked outputs of
all blocks are summed into the representation. Hidden states in the original's execution order (its hooks):
block 1, masked conv 1, block 2, masked conv 2, ..., then the summed representation (2 * n_blocks + 1); with
``disable_cross_layer`` only the last block has a masked conv: block 1, ..., block N, masked conv N, representation.
The product VQ and the ``postnet`` predictor only serve pre-training and are not loaded (``DROP``); the
exposed representation is pre-VQ, as in the original.

Exactness: every convolution sees zeros past an utterance's end, exactly as when the utterance is alone
(block outputs are zeroed on padded frames before the next temporal convolution); BatchNorm uses its running
statistics in eval mode, and in train mode the statistics of the valid frames only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..convert import config as config_io
from ..convert.errors import CheckpointFormatError
from .apc import FbankConfig, KaldiFbank, check_paras, fbank_config, lengths_to_mask, load_mapped, read_apc_series

NPC_KEYS = [
    (r"blocks\.\d+\.(conv|linear)\.(weight|bias)", r"\g<0>"),
    (r"blocks\.\d+\.bn[12]\.(weight|bias|running_mean|running_var|num_batches_tracked)", r"\g<0>"),
    (r"masked_convs\.\d+\.conv\.(weight|bias)", r"\g<0>"),
    (r"ae_bottleneck\.weight", r"\g<0>"),
]
NPC_DROP = [  # pre-training predictor only; conv_mask is checked against the rebuilt mask in `build`
    r"postnet\.(weight|bias)",
    r"vq_layers\.\d+\.vq_logits\.(weight|bias)",
    r"vq_layers\.\d+\.codebook_CxE\.weight",
    r"masked_convs\.\d+\.conv_mask",
]
ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh}


@dataclass
class NPCConfig:
    """Architecture of NPC."""

    hidden_size: int = 512
    n_blocks: int = 4
    kernel_size: int = 15
    mask_size: int = 5
    residual: bool = True
    batch_norm: bool = True
    activate: str = "relu"
    dropout: float = 0.1
    dim_bottleneck: int | None = None  # auto-encoder bottleneck on the representation (changes its size)
    disable_cross_layer: bool = False  # only the last block has a masked conv; it alone is the representation
    vq: dict | None = None  # product quantiser: predictor only
    fbank: FbankConfig = field(default_factory=FbankConfig)


def centre_mask(kernel_size: int, mask_size: int) -> torch.Tensor:
    """(kernel_size,) ones with the ``mask_size`` centre taps zeroed."""
    mask = torch.ones(kernel_size)
    head = (kernel_size - mask_size) // 2
    mask[head : head + mask_size] = 0
    return mask


class ConvBlock(nn.Module):
    def __init__(self, in_dim: int, cfg: NPCConfig, residual: bool):
        super().__init__()
        hidden = cfg.hidden_size
        self.conv = nn.Conv1d(in_dim, hidden, kernel_size=3, padding=1)
        self.linear = nn.Conv1d(hidden, hidden, kernel_size=1)
        self.bn1 = nn.BatchNorm1d(hidden) if cfg.batch_norm else None
        self.bn2 = nn.BatchNorm1d(hidden) if cfg.batch_norm else None
        self.act = ACTIVATIONS[cfg.activate]
        self.residual, self.dropout = residual, cfg.dropout

    def norm(self, bn: nn.BatchNorm1d | None, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if bn is None or not self.training:  # running statistics: per frame, padding cannot leak in
            return x if bn is None else bn(x)
        valid = mask.bool()  # (B, T)
        out = torch.zeros_like(x.transpose(1, 2))  # (B, T, C)
        out[valid] = bn(x.transpose(1, 2)[valid])  # batch statistics of the valid frames only
        return out.transpose(1, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, C, T) with zeros on padded frames, mask (B, T) float -> (B, H, T), zeros on padded frames."""
        out = self.act(self.norm(self.bn1, self.conv(x), mask))
        out = self.norm(self.bn2, self.linear(out), mask)
        out = F.dropout(out, self.dropout, self.training)
        if self.residual:
            out = out + x
        return self.act(out) * mask[:, None, :]


class MaskedConv(nn.Module):
    def __init__(self, hidden: int, kernel_size: int, mask_size: int):
        super().__init__()
        self.conv = nn.Conv1d(hidden, hidden, kernel_size, padding=(kernel_size - 1) // 2)
        self.register_buffer("tap_mask", centre_mask(kernel_size, mask_size), persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, H, T) with zeros on padded frames -> (B, T, H), zeros on padded frames."""
        h = F.conv1d(x, self.conv.weight * self.tap_mask, self.conv.bias, padding=self.conv.padding)
        return torch.tanh(h).transpose(1, 2) * mask[:, :, None]


class NPC(nn.Module):
    def __init__(self, cfg: NPCConfig):
        super().__init__()
        self.cfg = cfg
        self.frontend = KaldiFbank(cfg.fbank)
        n, hidden = cfg.n_blocks, cfg.hidden_size
        self.blocks = nn.ModuleList(
            ConvBlock(cfg.fbank.num_mel_bins if i == 0 else hidden, cfg, cfg.residual and i > 0) for i in range(n))
        # without cross-layer sums only the last block has a masked conv; the others stay empty slots so the
        # checkpoint's ``masked_convs.<last>.*`` keys keep their index
        self.masked_convs = nn.ModuleList(
            None if cfg.disable_cross_layer and i < n - 1 else MaskedConv(hidden, cfg.kernel_size, cfg.mask_size + 2 * (i + 1))
            for i in range(n))
        self.ae_bottleneck = nn.Linear(hidden, cfg.dim_bottleneck, bias=False) if cfg.dim_bottleneck else None

    @property
    def num_layers(self) -> int:
        return self.cfg.n_blocks + sum(m is not None for m in self.masked_convs) + 1

    @property
    def hidden_sizes(self) -> list[int]:
        return [self.cfg.hidden_size] * (self.num_layers - 1) + [self.cfg.dim_bottleneck or self.cfg.hidden_size]

    @property
    def downsample_rates(self) -> list[int]:
        return [self.cfg.fbank.stride] * self.num_layers

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        """wavs (B, N) zero-padded, wavs_len (B,) -> 2 * n_blocks + 1 states (B, T, H), frames (B,) each."""
        feats, lengths = self.frontend(wavs, wavs_len.to(wavs.device))  # (B, T, 80), zero-padded
        mask = lengths_to_mask(lengths, feats.size(1)).to(feats.dtype)  # (B, T)
        x = feats.transpose(1, 2)  # (B, 80, T)
        states, total = [], 0
        for block, masked_conv in zip(self.blocks, self.masked_convs):
            x = block(x, mask)  # (B, H, T)
            states.append(x.transpose(1, 2))
            if masked_conv is not None:
                masked = masked_conv(x, mask)  # (B, T, H)
                states.append(masked)
                total = total + masked
        if self.ae_bottleneck is not None:
            total = self.ae_bottleneck(total)
        states.append(total)
        return states, [lengths] * len(states)


def npc_config(paras: dict, audio: dict, source: str) -> NPCConfig:
    required = ("hidden_size", "n_blocks", "dropout", "residual", "kernel_size", "mask_size")
    optional = ("vq", "batch_norm", "activate", "disable_cross_layer", "dim_bottleneck")
    if "num_layers" in paras and "n_blocks" not in paras:
        raise CheckpointFormatError(f"{source} is an s3prl APC / VQ-APC checkpoint: use apc_local")
    check_paras(paras, required, optional, source, "NPC")
    fbank = fbank_config(audio, source)
    get = config_io.Settings(paras, {"batch_norm": True, "activate": "relu"}, source)
    bottleneck = paras.get("dim_bottleneck")
    cfg = NPCConfig(
        hidden_size=get.int("hidden_size"), n_blocks=get.int("n_blocks", 1, config_io.MAX_LAYERS),
        kernel_size=get.int("kernel_size"), mask_size=get.int("mask_size", 0), residual=get.bool("residual"),
        batch_norm=get.bool("batch_norm"), activate=get.str("activate"), dropout=get.float("dropout"),
        dim_bottleneck=None if bottleneck is None else get.int("dim_bottleneck"), vq=paras.get("vq"), fbank=fbank,
        disable_cross_layer=get.bool("disable_cross_layer") if "disable_cross_layer" in paras else False)
    problems = []
    if cfg.activate not in ACTIVATIONS:
        problems.append(f"activate={cfg.activate!r} (relu or tanh)")
    if cfg.kernel_size % 2 == 0 or cfg.mask_size % 2 == 0:
        problems.append("even kernel_size or mask_size (both must be odd)")
    if cfg.kernel_size <= cfg.mask_size + 2 * cfg.n_blocks:
        problems.append(f"kernel_size {cfg.kernel_size} too small for mask {cfg.mask_size} and {cfg.n_blocks} blocks")
    if cfg.vq is not None and cfg.dim_bottleneck is not None:
        problems.append("both vq and dim_bottleneck")
    if fbank.dim != fbank.num_mel_bins:
        problems.append("fbank use_energy (it changes the input size)")
    if problems:
        raise CheckpointFormatError(f"{source}: unsupported NPC configuration: {'; '.join(problems)}")
    return cfg


def check_masks(model: NPC, state: dict, source: str) -> None:
    """The stored 0/1 masks of the masked convolutions must be the ones the configuration implies."""
    for i, masked_conv in enumerate(model.masked_convs):
        stored = state.get(f"masked_convs.{i}.conv_mask")
        if stored is None or masked_conv is None:
            continue
        want = masked_conv.tap_mask.expand_as(masked_conv.conv.weight)
        if stored.shape != want.shape or not torch.equal(stored.to(want.dtype), want):
            raise CheckpointFormatError(f"{source}: masked_convs.{i}.conv_mask is not the centre mask of size "
                                        f"{int((masked_conv.tap_mask == 0).sum())} that the configuration implies")


def build(ckpt: str | None, **options) -> NPC:
    """Build NPC from an s3prl APC-series checkpoint (``npc_*``)."""
    if ckpt is None:
        raise ValueError("NPC needs a checkpoint: pass path_or_url / ckpt")
    if options:
        raise TypeError(f"unknown option(s) for NPC: {', '.join(sorted(options))} (it takes none)")
    paras, audio, state = read_apc_series(ckpt, "NPC")
    cfg = npc_config(paras, audio, ckpt)
    config_io.check_model_size(cfg.n_blocks * cfg.hidden_size * cfg.hidden_size, state, ckpt)  # conv weights
    model = NPC(cfg)
    load_mapped(model, state, NPC_KEYS, NPC_DROP, ckpt)
    check_masks(model, state, ckpt)
    return model.eval()
