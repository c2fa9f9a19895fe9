"""Vision-Transformer blocks shared by the spectrogram transformers (AST, SSAST, PaSST).

The blocks compute what timm's (0.4.5) DeiT blocks compute, written here so that no timm is needed:
pre-norm blocks (LayerNorm -> multi-head self-attention -> residual, LayerNorm -> GELU MLP -> residual),
a fused ``qkv`` projection, a class token and a distillation token in front of the patch tokens. Parameter
names follow timm's (``blocks.N.norm1``, ``attn.qkv``, ``attn.proj``, ``mlp.fc1``, ...) so that the importers'
key maps stay short and readable.

Also here: the positional-embedding grid rules of the original models (cut from the middle or bilinear
interpolation, with the exact quirks of each original), applied once when a checkpoint is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..convert.keys import rename_keys


@dataclass
class ViTConfig:
    """Architecture of the transformer stack (shapes only)."""

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_dim: int = 3072
    layer_norm_eps: float = 1e-6  # timm's DeiT: LayerNorm(eps=1e-6)
    qkv_bias: bool = True


def heads_for(embed_dim: int) -> int:
    """DeiT/ViT convention (tiny 192/3, small 384/6, base 768/12): 64-dimensional heads."""
    if embed_dim < 64 or embed_dim % 64:
        raise ValueError(f"cannot infer the number of attention heads for embed_dim={embed_dim} (expects 64 per head)")
    return embed_dim // 64


class PatchEmbed(nn.Module):
    """Conv2d patchifier over a (frequency, time) image with one channel."""

    def __init__(self, embed_dim: int, kernel: tuple[int, int], stride: tuple[int, int]):
        super().__init__()
        self.proj = nn.Conv2d(1, embed_dim, kernel_size=kernel, stride=stride)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """(N, F, T) -> (N, D, F', T')."""
        return self.proj(spec[:, None])

    @staticmethod
    def grid(size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int]) -> tuple[int, int]:
        """Patch-grid shape for an input of ``size`` (frequency bins, frames)."""
        return tuple((n - k) // s + 1 for n, k, s in zip(size, kernel, stride))


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, L, D = x.shape
        qkv = self.qkv(x).view(N, L, 3, self.num_heads, D // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (N, H, L, Dh), scale Dh ** -0.5
        return self.proj(out.transpose(1, 2).reshape(N, L, D))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.attn = Attention(cfg.embed_dim, cfg.num_heads, cfg.qkv_bias)
        self.norm2 = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.mlp = Mlp(cfg.embed_dim, cfg.mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    """The block stack and the final LayerNorm."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(N, L, D) tokens -> (output of every block, final LayerNorm of the last)."""
        states = []
        for block in self.blocks:
            x = block(x)
            states.append(x)
        return states, self.norm(x)


# Checkpoint names -> ours with a (regex, replacement) table; unknown keys raise (shared with other importers).
rename_state = rename_keys


def check_vit_state(state: dict, prefix: str, source: str) -> ViTConfig:
    """Read a ViTConfig from timm-named block weights under ``prefix`` (e.g. ``"v."``)."""
    from ..convert.errors import CheckpointFormatError

    depth = 0
    while f"{prefix}blocks.{depth}.attn.qkv.weight" in state:
        depth += 1
    if depth == 0 or f"{prefix}blocks.0.mlp.fc1.weight" not in state:
        raise CheckpointFormatError(f"{source}: no transformer blocks under {prefix!r}blocks.N (timm ViT layout)")
    dim = state[f"{prefix}blocks.0.attn.qkv.weight"].shape[1]
    return ViTConfig(embed_dim=dim, depth=depth, num_heads=heads_for(dim),
                     mlp_dim=state[f"{prefix}blocks.0.mlp.fc1.weight"].shape[0],
                     qkv_bias=f"{prefix}blocks.0.attn.qkv.bias" in state)


# ---------------------------------------------------------------------------------------------
# Positional-embedding grids (1, D, F, T): the originals' adaptation rules
# ---------------------------------------------------------------------------------------------


def tokens_to_grid(pos: torch.Tensor, f: int, t: int) -> torch.Tensor:
    """(1, f * t, D) patch position embeddings (frequency-major) -> (1, D, f, t)."""
    return pos.transpose(1, 2).reshape(1, pos.size(-1), f, t)


def grid_to_tokens(grid: torch.Tensor) -> torch.Tensor:
    """(1, D, f, t) -> (1, f * t, D)."""
    return grid.flatten(2).transpose(1, 2)


def cut_middle(grid: torch.Tensor, axis: int, size: int, length: int | None = None,
               ref: int | None = None) -> torch.Tensor:
    """Slice ``length`` (default ``size``) entries of ``axis`` from int(ref / 2) - int(size / 2), ``ref`` being
    the axis length unless given (Python slicing: a slice past the end is shortened)."""
    start = int((grid.size(axis) if ref is None else ref) / 2) - int(size / 2)
    return grid.narrow(axis, start, min(length or size, grid.size(axis) - start))


def resize(grid: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(grid, size=size, mode="bilinear")  # align_corners=False, as the originals


def ast_pos_grid(grid: torch.Tensor, f: int, t: int) -> torch.Tensor:
    """AST (AudioSet-pretrained loader): time cut from the middle when t is smaller, else interpolated to
    (F_old, t); then frequency cut when smaller, interpolated to (f, t) when larger."""
    f_old, t_old = grid.shape[2:]
    grid = cut_middle(grid, 3, t) if t < t_old else resize(grid, (f_old, t))
    if f < f_old:
        grid = cut_middle(grid, 2, f)
    elif f > f_old:
        grid = resize(grid, (f, t))
    return grid


def ssast_pos_grid(grid: torch.Tensor, f: int, t: int) -> torch.Tensor:
    """SSAST fine-tuning loader, quirks included: time cut when smaller, otherwise interpolated to a grid of
    8 frequency rows (whatever the pretraining grid had); frequency cut (its slice length is t, a slip of the
    original) when smaller, otherwise interpolated to (f, t)."""
    f_old, t_old = grid.shape[2:]
    grid = cut_middle(grid, 3, t) if t < t_old else resize(grid, (8, t))
    if f < f_old:
        grid = cut_middle(grid, 2, f, length=t, ref=f_old)
    else:
        grid = resize(grid, (f, t))
    return grid
