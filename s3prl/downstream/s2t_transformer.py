"""The speech-translation head: the S2T transformer of the original ``speech_translation`` task (fairseq's
``s2t_transformer`` architecture, 3 encoder + 3 decoder layers), written here without fairseq.

Upstream features (B, T, D) -> two strided 1-D convolutions with GLU (4x fewer frames) -> scaled by sqrt(d), plus
sinusoidal positions -> pre-LN transformer encoder -> pre-LN transformer decoder over the target sub-words (causal
self-attention, attention over the encoder) -> linear output layer without bias. Parameter names follow fairseq's
(``encoder.subsample.conv_layers.0``, ``decoder.layers.0.encoder_attn.k_proj`` ...), so the original's weights map
one to one (:func:`from_fairseq_state_dict`). The decoder keeps a key/value cache for step-wise beam search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, EOS = 1, 2  # fairseq's dictionary: <s>=0, <pad>=1, </s>=2, <unk>=3


@dataclass(frozen=True)
class S2TConfig:
    """Architecture only; the defaults are the original task's (``s2t_transformer`` with 3 + 3 layers)."""

    input_dim: int
    vocab_size: int
    embed_dim: int = 512
    ffn_dim: int = 2048
    heads: int = 8
    encoder_layers: int = 3
    decoder_layers: int = 3
    conv_kernel_sizes: tuple[int, ...] = (5, 5)
    conv_channels: int = 1024
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.1
    max_source_positions: int = 6000
    max_target_positions: int = 1024

    def __post_init__(self):
        if self.embed_dim % self.heads or self.embed_dim % 2:
            raise ValueError(f"embed_dim {self.embed_dim} must be even and divisible by heads {self.heads}")
        if self.conv_channels % 2 or not self.conv_kernel_sizes:
            raise ValueError("conv_channels must be even (GLU halves them) and conv_kernel_sizes not empty")


def sinusoids(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """fairseq's sinusoidal table rows for ``positions`` (padding_idx + 1 + index): [sin | cos] halves with
    frequencies 10000^(-k / (dim/2 - 1)); position ``PAD`` (padding) is the zero vector."""
    half = dim // 2
    freq = torch.exp(torch.arange(half, dtype=torch.float, device=positions.device) * -(math.log(10000) / (half - 1)))
    angles = positions.float().unsqueeze(-1) * freq  # (..., half)
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    if dim % 2:
        table = F.pad(table, (0, 1))
    return table.masked_fill((positions == PAD).unsqueeze(-1), 0.0)


def padding_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """(B, size) True at padded positions."""
    return torch.arange(size, device=lengths.device)[None, :] >= lengths[:, None]


class Conv1dSubsampler(nn.Module):
    """Strided (2) convolutions, each followed by GLU over channels: (B, T, D) -> (T', B, d)."""

    def __init__(self, in_dim: int, mid: int, out: int, kernels: tuple[int, ...]):
        super().__init__()
        self.kernels = tuple(kernels)
        self.conv_layers = nn.ModuleList(
            nn.Conv1d(in_dim if i == 0 else mid // 2, mid if i < len(kernels) - 1 else out * 2, k, stride=2,
                      padding=k // 2) for i, k in enumerate(kernels))

    def out_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for _ in self.conv_layers:  # stride 2, padding k // 2: ceil-like halving
            lengths = torch.div(lengths - 1, 2, rounding_mode="floor") + 1
        return lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.transpose(1, 2)  # (B, D, T)
        for conv in self.conv_layers:
            x = F.glu(conv(x), dim=1)
        return x.permute(2, 0, 1), self.out_lengths(lengths)  # (T', B, d)


class Attention(nn.Module):
    """Multi-head attention on (T, B, d) tensors; ``cache`` holds keys / values for step-wise decoding."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout, self.scaling = heads, dropout, (dim // heads) ** -0.5
        self.k_proj, self.v_proj, self.q_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))

    def split(self, x: torch.Tensor) -> torch.Tensor:  # (T, B, d) -> (B, H, T, d/H)
        t, b, d = x.shape
        return x.reshape(t, b, self.heads, d // self.heads).permute(1, 2, 0, 3)

    def forward(self, query: torch.Tensor, memory: torch.Tensor | None, key_padding: torch.Tensor | None = None,
                causal: bool = False, cache: dict | None = None, static: bool = False) -> torch.Tensor:
        """``memory`` None: self-attention. ``cache`` (decoding): ``static`` memory keys are computed once;
        self-attention keys of earlier steps are kept and the new step's appended."""
        q = self.split(self.q_proj(query) * self.scaling)
        source = query if memory is None else memory
        if cache is not None and static and "k" in cache:
            k, v = cache["k"], cache["v"]
        else:
            k, v = self.split(self.k_proj(source)), self.split(self.v_proj(source))
            if cache is not None and not static and "k" in cache:
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            if cache is not None:
                cache["k"], cache["v"] = k, v
        scores = q @ k.transpose(-1, -2)  # (B, H, Tq, Tk)
        if causal and cache is None:
            tq = scores.size(-1)
            scores = scores.masked_fill(torch.ones(tq, tq, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
        if key_padding is not None:
            scores = scores.masked_fill(key_padding[:, None, None, :], float("-inf"))
        attn = F.dropout(F.softmax(scores.float(), dim=-1).type_as(scores), self.dropout, self.training)
        out = (attn @ v).permute(2, 0, 1, 3).flatten(2)  # (Tq, B, d)
        return self.out_proj(out)


class Layer(nn.Module):
    """A pre-LN transformer layer; with ``cross`` (decoder) causal self-attention then attention over memory."""

    def __init__(self, cfg: S2TConfig, cross: bool):
        super().__init__()
        d = cfg.embed_dim
        self.self_attn = Attention(d, cfg.heads, cfg.attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        if cross:
            self.encoder_attn = Attention(d, cfg.heads, cfg.attention_dropout)
            self.encoder_attn_layer_norm = nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, cfg.ffn_dim), nn.Linear(cfg.ffn_dim, d)
        self.final_layer_norm = nn.LayerNorm(d)
        self.dropout, self.activation_dropout, self.cross = cfg.dropout, cfg.activation_dropout, cross

    def forward(self, x, key_padding=None, memory=None, memory_padding=None, cache: dict | None = None):
        drop = lambda h: F.dropout(h, self.dropout, self.training)  # noqa: E731
        h = self.self_attn(self.self_attn_layer_norm(x), None, key_padding, causal=self.cross,
                           cache=None if cache is None else cache.setdefault("self", {}))
        x = x + drop(h)
        if self.cross:
            h = self.encoder_attn(self.encoder_attn_layer_norm(x), memory, memory_padding,
                                  cache=None if cache is None else cache.setdefault("memory", {}), static=True)
            x = x + drop(h)
        h = F.dropout(F.relu(self.fc1(self.final_layer_norm(x))), self.activation_dropout, self.training)
        return x + drop(self.fc2(h))


class Encoder(nn.Module):
    def __init__(self, cfg: S2TConfig):
        super().__init__()
        self.cfg = cfg
        self.subsample = Conv1dSubsampler(cfg.input_dim, cfg.conv_channels, cfg.embed_dim, cfg.conv_kernel_sizes)
        self.transformer_layers = nn.ModuleList(Layer(cfg, cross=False) for _ in range(cfg.encoder_layers))
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D), (B,) -> encoder states (T', B, d) and their padding mask (B, T')."""
        x, out_lengths = self.subsample(feats, lengths)
        pad = padding_mask(out_lengths, x.size(0))
        positions = torch.where(pad, PAD, torch.cumsum(~pad, dim=1) + PAD)  # (B, T')
        x = x * math.sqrt(self.cfg.embed_dim) + sinusoids(positions, self.cfg.embed_dim).transpose(0, 1)
        x = F.dropout(x, self.cfg.dropout, self.training)
        for layer in self.transformer_layers:
            x = layer(x, pad)
        return self.layer_norm(x), pad


class Decoder(nn.Module):
    def __init__(self, cfg: S2TConfig):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=PAD)
        nn.init.normal_(self.embed_tokens.weight, 0, cfg.embed_dim ** -0.5)
        nn.init.zeros_(self.embed_tokens.weight[PAD])
        self.layers = nn.ModuleList(Layer(cfg, cross=True) for _ in range(cfg.decoder_layers))
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        self.output_projection = nn.Linear(cfg.embed_dim, cfg.vocab_size, bias=False)
        nn.init.normal_(self.output_projection.weight, 0, cfg.embed_dim ** -0.5)

    def forward(self, prev: torch.Tensor, memory: torch.Tensor, memory_padding: torch.Tensor,
                cache: list | None = None) -> torch.Tensor:
        """Logits (B, U, V) for ``prev`` (B, U) (teacher forcing), or with ``cache`` (a list, one dict per layer)
        for the last token of ``prev`` only (B, 1, V)."""
        pad = prev.eq(PAD)
        positions = torch.where(pad, PAD, torch.cumsum(~pad, dim=1) + PAD)
        if cache is not None:
            prev, positions, pad = prev[:, -1:], positions[:, -1:], None
        x = self.embed_tokens(prev) * math.sqrt(self.cfg.embed_dim) + sinusoids(positions, self.cfg.embed_dim)
        x = F.dropout(x, self.cfg.dropout, self.training).transpose(0, 1)  # (U, B, d)
        if pad is not None and not pad.any():
            pad = None
        for i, layer in enumerate(self.layers):
            x = layer(x, pad, memory, memory_padding, None if cache is None else cache[i])
        return self.output_projection(self.layer_norm(x).transpose(0, 1))


class S2TTransformer(nn.Module):
    def __init__(self, cfg: S2TConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder, self.decoder = Encoder(cfg), Decoder(cfg)

    def forward(self, feats, lengths, prev):
        memory, memory_padding = self.encoder(feats, lengths)
        return self.decoder(prev, memory, memory_padding), memory, memory_padding


def label_smoothed_nll(logits: torch.Tensor, target: torch.Tensor, epsilon: float) -> tuple[torch.Tensor, torch.Tensor]:
    """fairseq's label-smoothed cross-entropy, summed over the non-padding target tokens: (loss, nll).
    The smoothing mass ``epsilon`` is spread over the V - 1 other classes (the target keeps 1 - epsilon)."""
    lprobs = F.log_softmax(logits.float(), dim=-1)
    keep = target.ne(PAD)
    nll = -lprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1)[keep].sum()
    smooth = -lprobs.sum(-1)[keep].sum()
    eps_i = epsilon / (lprobs.size(-1) - 1)
    return (1.0 - epsilon - eps_i) * nll + eps_i * smooth, nll


# fairseq 0.12's encoder layers also store fused copies of their weights for PyTorch's "BetterTransformer" fast
# path (``in_proj_weight`` = q/k/v stacked, ``fc1_weight`` ...): filled from the real weights when loaded, never
# trained, so dropped here
_FUSED_COPIES = ("in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias", "fc1_weight", "fc1_bias",
                 "fc2_weight", "fc2_bias")


def from_fairseq_state_dict(state: dict, prefix: str = "") -> dict:
    """Weights of fairseq's ``S2TTransformerModel`` (keys under ``prefix``, e.g. the original expert's ``model.``)
    as an :class:`S2TTransformer` state. fairseq's position tables, version counters and fused weight copies are
    not weights (dropped); any other unknown key raises."""
    out = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        if name.endswith(("embed_positions._float_tensor", ".version")) or name.split(".")[-1] in _FUSED_COPIES:
            continue
        if not name.startswith(("encoder.", "decoder.")):
            raise KeyError(f"unexpected key {key!r} in a fairseq S2T transformer state")
        out[name] = value
    return out
