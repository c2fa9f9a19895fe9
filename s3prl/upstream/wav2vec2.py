"""wav2vec 2.0 and the models built from its blocks.

One model serves wav2vec 2.0 (Base/Large, XLSR-53, XLS-R, VoxPopuli, s2st), HuBERT (mHuBERT, ContentVec,
HuBERT-MGR, MS-HuBERT), data2vec-audio, WavLM and UniSpeech-SAT (gated relative position bias) and
wav2vec2-conformer (relative / rotary positions): they differ only in configuration switches.

Exactness: every utterance of a padded batch gets exactly what it would get alone. The conv feature
extractor runs each utterance on its own samples (so the first conv's GroupNorm never sees padding),
frames past an utterance's end are zeroed before every operation that looks across time (positional
convs, conformer depthwise convs), and attention masks padded keys. Per-frame work (projections, FFN,
norms) runs on the valid frames only, packed, so padding costs no matmul time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint as ckpt_io
from ..convert import fairseq as fairseq_convert

DEFAULT_CONV_LAYERS = ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2


@dataclass
class Wav2Vec2Config:
    """Architecture of the wav2vec 2.0 family (shapes and structural switches only)."""

    conv_layers: tuple[tuple[int, int, int], ...] = DEFAULT_CONV_LAYERS  # (channels, kernel, stride)
    extractor_mode: str = "default"  # "default": GroupNorm after conv 0; "layer_norm": LayerNorm after each
    conv_bias: bool = False
    embed_dim: int = 768
    ffn_dim: int = 3072
    num_layers: int = 12
    num_heads: int = 12
    activation: str = "gelu"
    layer_norm_first: bool = False  # pre-LN transformer (Large models)
    conv_pos: int = 128
    conv_pos_groups: int = 16
    pos_conv_depth: int = 1  # data2vec: 5 conv blocks of kernel max(3, conv_pos // depth)
    layer_type: str = "transformer"  # or "conformer"
    pos_enc_type: str = "abs"  # conformer: "rel_pos" or "rope"
    depthwise_conv_kernel_size: int = 31
    relative_position_embedding: bool = False  # WavLM / UniSpeech-SAT
    num_buckets: int = 320
    max_distance: int = 1280
    gru_rel_pos: bool = False
    crop_seq_to_multiple: int = 1
    force_feature_proj: bool = False  # HF projects the features even when conv and encoder sizes agree
    normalize_waveform: bool = False  # the task's `normalize`: per-utterance zero mean, unit variance
    normalize_eps: float = 1e-5  # fairseq layer_norm; HF's feature extractor uses 1e-7
    layer_norm_eps: float = 1e-5
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    feature_selection: str | None = None  # None, "fairseq_layers", "fairseq_layers_before_residual"
    extra: dict = field(default_factory=dict)  # informational (family, source format)

    @property
    def downsample_rate(self) -> int:
        return math.prod(stride for _, _, stride in self.conv_layers)


def conv_output_lengths(lengths: torch.Tensor, conv_layers) -> torch.Tensor:
    """Frames a stack of unpadded strided convs produces: floor((L - k) / s) + 1 per layer, never < 0."""
    for _, kernel, stride in conv_layers:
        lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
        lengths = lengths.clamp(min=0)
    return lengths


class GradMultiply(torch.autograd.Function):
    """Identity forward, gradient times ``scale`` backward: the trainers' ``feature_grad_mult`` on the CNN."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.scale, None


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool, True on valid positions."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def activation_fn(name: str):
    if name == "gelu":
        return F.gelu
    if name == "relu":
        return F.relu
    if name == "swish":
        return F.silu
    if name == "gelu_accurate":
        return lambda x: F.gelu(x, approximate="tanh")
    raise ValueError(f"unsupported activation_fn {name!r} (supported: gelu, relu, swish, gelu_accurate)")


# ---------------------------------------------------------------------------------------------
# Convolutional feature extractor
# ---------------------------------------------------------------------------------------------


class ConvLayer(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, bias: bool, norm: str | None):
        super().__init__()
        self.conv = nn.Conv1d(in_ch, out_ch, kernel, stride=stride, bias=bias)
        self.kind = norm
        if norm == "group":
            self.norm = nn.GroupNorm(out_ch, out_ch)
        elif norm == "layer":
            self.norm = nn.LayerNorm(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)  # (B, C, T)
        if self.kind == "group":  # over the whole time axis: callers pass unpadded utterances
            x = self.norm(x)
        elif self.kind == "layer":
            x = F.layer_norm(x.transpose(1, 2), (x.size(1),), self.norm.weight, self.norm.bias, self.norm.eps)
            x = x.transpose(1, 2)
        return F.gelu(x)


class FeatureExtractor(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        layers, in_ch = [], 1
        for i, (ch, kernel, stride) in enumerate(cfg.conv_layers):
            if cfg.extractor_mode == "layer_norm":
                norm = "layer"
            elif cfg.extractor_mode == "default":
                norm = "group" if i == 0 else None
            else:
                raise ValueError(f"unknown extractor_mode {cfg.extractor_mode!r} (default or layer_norm)")
            layers.append(ConvLayer(in_ch, ch, kernel, stride, cfg.conv_bias, norm))
            in_ch = ch
        self.conv_layers = nn.ModuleList(layers)
        self.conv_specs = cfg.conv_layers

    def run(self, wavs: torch.Tensor) -> torch.Tensor:
        x = wavs[:, None, :]  # (B, 1, T)
        for layer in self.conv_layers:
            x = layer(x)
        return x.transpose(1, 2)  # (B, T', C)

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each utterance runs on its own samples: the first conv's GroupNorm then sees no padding, and no
        time is spent convolving zeros (a third of the model's FLOPs). On CPU this is also ~20% faster than a
        batched conv for equal lengths (smaller working set) and needs a fraction of the memory; on GPU,
        equal-length batches still run as one batch."""
        out_lens = conv_output_lengths(lengths, self.conv_specs)
        if wavs.is_cuda and bool((lengths == wavs.size(1)).all()):
            return self.run(wavs), out_lens
        padded = wavs.new_zeros(wavs.size(0), int(out_lens.max()), self.conv_specs[-1][0])
        for b, (n, frames) in enumerate(zip(lengths.tolist(), out_lens.tolist())):
            if frames > 0:  # shorter than the receptive field: no frame at all
                padded[b, :frames] = self.run(wavs[b : b + 1, :n])[0]
        return padded, out_lens


# ---------------------------------------------------------------------------------------------
# Positional convolution
# ---------------------------------------------------------------------------------------------


class WeightNormConv(nn.Module):
    """The weight-normalised grouped conv of wav2vec 2.0 (norm over every dim but the kernel axis)."""

    def __init__(self, dim: int, kernel: int, groups: int):
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.empty(dim, dim // groups, kernel))
        self.bias = nn.Parameter(torch.zeros(dim))
        nn.init.normal_(self.weight_v, std=math.sqrt(4 / (kernel * dim)))
        self.kernel, self.groups = kernel, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        v = self.weight_v
        weight = v * (self.weight_g / v.norm(dim=(0, 1), keepdim=True))
        x = F.conv1d(x, weight, self.bias, padding=self.kernel // 2, groups=self.groups)
        if self.kernel % 2 == 0:  # "same" padding of an even kernel yields one extra frame
            x = x[:, :, :-1]
        return F.gelu(x)


class PositionalConv(nn.Module):
    """x + conv(x): one weight-normed conv (wav2vec 2.0), or a stack of plain convs (data2vec)."""

    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.depth = cfg.pos_conv_depth
        if self.depth == 1:
            self.conv = WeightNormConv(cfg.embed_dim, cfg.conv_pos, cfg.conv_pos_groups)
        else:
            kernel = max(3, cfg.conv_pos // self.depth)
            self.layers = nn.ModuleList(
                nn.Conv1d(cfg.embed_dim, cfg.embed_dim, kernel, padding=kernel // 2, groups=cfg.conv_pos_groups)
                for _ in range(self.depth)
            )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, C) with zeros on padded frames; mask (B, T) True = valid."""
        h = x.transpose(1, 2)  # (B, C, T)
        if self.depth == 1:
            h = self.conv(h)
        else:
            keep = mask[:, None, :].to(h.dtype)
            for conv in self.layers:
                h = conv(h)
                if conv.kernel_size[0] % 2 == 0:
                    h = h[:, :, :-1]
                h = F.layer_norm(h.transpose(1, 2), (h.size(1),)).transpose(1, 2)
                h = F.gelu(h) * keep  # padded frames back to zero, as an unpadded input would see
        return x + h.transpose(1, 2)


# ---------------------------------------------------------------------------------------------
# Packed sequences: per-frame work on valid frames only
# ---------------------------------------------------------------------------------------------


class Packing:
    """Index bookkeeping between padded (B, T, ...) tensors and packed (N, ...) valid frames."""

    def __init__(self, lengths: torch.Tensor, max_len: int):
        self.lengths = lengths
        self.batch, self.max_len = lengths.numel(), max_len
        self.mask = lengths_to_mask(lengths, max_len)  # (B, T)
        self.full = bool((lengths == max_len).all())
        self.index = None if self.full else self.mask.reshape(-1).nonzero().squeeze(1)

    def pack(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (N, C)
        x = x.reshape(self.batch * self.max_len, -1)
        return x if self.full else x.index_select(0, self.index)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:  # (N, C) -> (B, T, C), zeros on padding
        if self.full:
            return x.reshape(self.batch, self.max_len, -1)
        out = x.new_zeros(self.batch * self.max_len, x.size(-1))
        out.index_copy_(0, self.index, x)
        return out.reshape(self.batch, self.max_len, -1)


# ---------------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------------


class SelfAttention(nn.Module):
    """Multi-head self-attention on packed frames, with the optional WavLM gated relative position bias."""

    def __init__(self, cfg: Wav2Vec2Config, has_relative_bias: bool):
        super().__init__()
        self.num_heads, self.head_dim = cfg.num_heads, cfg.embed_dim // cfg.num_heads
        self.qkv = nn.Linear(cfg.embed_dim, 3 * cfg.embed_dim)
        self.out_proj = nn.Linear(cfg.embed_dim, cfg.embed_dim)
        self.dropout = cfg.attention_dropout
        self.gru_rel_pos = cfg.gru_rel_pos
        if has_relative_bias:
            self.rel_attn_embed = nn.Embedding(cfg.num_buckets, cfg.num_heads)
            self.num_buckets, self.max_distance = cfg.num_buckets, cfg.max_distance
        if cfg.gru_rel_pos:
            self.gate_proj = nn.Linear(self.head_dim, 8)
            self.gate_scale = nn.Parameter(torch.ones(1, cfg.num_heads, 1, 1))

    def relative_bias(self, length: int, device) -> torch.Tensor:
        """(H, T, T) bias from bidirectional log-spaced buckets of key - query distance."""
        pos = torch.arange(length, device=device)
        rel = pos[None, :] - pos[:, None]  # (T, T) key minus query
        half = self.num_buckets // 2
        bucket = (rel > 0).long() * half
        rel = rel.abs()
        max_exact = half // 2
        far = max_exact + (
            torch.log(rel.float() / max_exact) / math.log(self.max_distance / max_exact) * (half - max_exact)
        ).long()
        far = far.clamp(max=half - 1)
        bucket = bucket + torch.where(rel < max_exact, rel, far)
        return self.rel_attn_embed(bucket).permute(2, 0, 1)  # (H, T, T)

    def forward(self, x: torch.Tensor, pack: Packing, pos_bias: torch.Tensor | None):
        """x (N, C) packed -> (N, C); pos_bias (H, T, T) or None."""
        B, T, H, Dh = pack.batch, pack.max_len, self.num_heads, self.head_dim
        qkv = pack.unpack(self.qkv(x)).view(B, T, 3, H, Dh).permute(2, 0, 3, 1, 4)  # (3, B, H, T, Dh)
        q, k, v = qkv[0], qkv[1], qkv[2]
        bias = None
        if pos_bias is not None:
            bias = pos_bias[None]  # (1, H, T, T)
            if self.gru_rel_pos:
                query = pack.unpack(x).view(B, T, H, Dh).transpose(1, 2)  # (B, H, T, Dh): the layer input
                gates = torch.sigmoid(self.gate_proj(query).view(B, H, T, 2, 4).sum(-1))
                gate_a, gate_b = gates[..., 0:1], gates[..., 1:2]
                bias = (gate_a * (gate_b * self.gate_scale - 1.0) + 2.0) * bias  # (B, H, T, T)
        if not pack.full:
            key_ok = pack.mask[:, None, None, :]
            if bias is None:
                bias = key_ok
            else:
                bias = bias.masked_fill(~key_ok, float("-inf"))
        drop = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=drop)  # (B, H, T, Dh)
        out = pack.pack(out.transpose(1, 2).reshape(B, T, H * Dh))
        return self.out_proj(out)


# ---------------------------------------------------------------------------------------------
# Transformer layer and encoder
# ---------------------------------------------------------------------------------------------


class TransformerLayer(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config, has_relative_bias: bool = False):
        super().__init__()
        self.attention = SelfAttention(cfg, has_relative_bias)
        self.attention_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.fc1 = nn.Linear(cfg.embed_dim, cfg.ffn_dim)
        self.fc2 = nn.Linear(cfg.ffn_dim, cfg.embed_dim)
        self.final_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.pre_norm = cfg.layer_norm_first
        self.act = activation_fn(cfg.activation)
        self.dropout, self.act_dropout = cfg.dropout, cfg.activation_dropout

    def ffn(self, x: torch.Tensor) -> torch.Tensor:
        x = F.dropout(self.act(self.fc1(x)), self.act_dropout, self.training)
        return self.fc2(x)

    def forward(self, x: torch.Tensor, pack: Packing, pos_bias):
        """x (N, C) packed. Returns (output, FFN output before the residual add)."""
        drop = lambda t: F.dropout(t, self.dropout, self.training)  # noqa: E731
        if self.pre_norm:
            x = x + drop(self.attention(self.attention_norm(x), pack, pos_bias))
            ffn_out = self.ffn(self.final_norm(x))
            return x + drop(ffn_out), ffn_out
        x = self.attention_norm(x + drop(self.attention(x, pack, pos_bias)))
        ffn_out = self.ffn(x)
        return self.final_norm(x + drop(ffn_out)), ffn_out


class Encoder(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.cfg = cfg
        if cfg.layer_type == "conformer":
            from .conformer import ConformerLayer, relative_position_table

            self.pos_conv = None
            self.layers = nn.ModuleList(ConformerLayer(cfg) for _ in range(cfg.num_layers))
            self.position_table = relative_position_table
        elif cfg.layer_type == "transformer":
            self.pos_conv = PositionalConv(cfg)
            rel = cfg.relative_position_embedding
            self.layers = nn.ModuleList(TransformerLayer(cfg, rel and i == 0) for i in range(cfg.num_layers))
        else:
            raise ValueError(f"unknown layer_type {cfg.layer_type!r} (transformer or conformer)")
        self.layer_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """x (B, T, C) with zeros past each length -> hidden states, each (B, T, C)."""
        cfg, T = self.cfg, x.size(1)
        pack = Packing(lengths, T)
        if self.pos_conv is not None:
            x = self.pos_conv(x, pack.mask)
        if not cfg.layer_norm_first:
            x = self.layer_norm(x)
        extra = {}
        if cfg.layer_type == "conformer" and cfg.pos_enc_type == "rel_pos":
            extra["pos_emb"] = self.position_table(T, cfg.embed_dim, x.device, x.dtype)
        pos_bias = None
        if cfg.relative_position_embedding:
            pos_bias = self.layers[0].attention.relative_bias(T, x.device)
        x = pack.pack(F.dropout(x, cfg.dropout, self.training))  # (N, C)
        states = [pack.unpack(x)]
        residual_free = []
        for layer in self.layers:
            if cfg.layer_type == "conformer":
                x, ffn_out = layer(x, pack, **extra)
            else:
                x, ffn_out = layer(x, pack, pos_bias)
            states.append(pack.unpack(x))
            residual_free.append(ffn_out)
        if cfg.feature_selection == "fairseq_layers":
            return states[1:]
        if cfg.feature_selection == "fairseq_layers_before_residual":
            return [pack.unpack(h) for h in residual_free]
        if cfg.layer_norm_first:
            states[-1] = pack.unpack(self.layer_norm(x))
        return states


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


class Wav2Vec2(nn.Module):
    """Waveform -> the L+1 hidden states (input of every layer, then the encoder output)."""

    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.cfg = cfg
        self.feature_extractor = FeatureExtractor(cfg)
        conv_dim = cfg.conv_layers[-1][0]
        self.feature_norm = nn.LayerNorm(conv_dim, eps=cfg.layer_norm_eps)
        project = conv_dim != cfg.embed_dim or cfg.force_feature_proj
        self.feature_proj = nn.Linear(conv_dim, cfg.embed_dim) if project else nn.Identity()
        self.encoder = Encoder(cfg)

    @property
    def num_layers(self) -> int:
        return self.cfg.num_layers + (1 if self.cfg.feature_selection is None else 0)

    @property
    def hidden_sizes(self) -> list[int]:
        return [self.cfg.embed_dim] * self.num_layers

    @property
    def downsample_rates(self) -> list[int]:
        return [self.cfg.downsample_rate] * self.num_layers

    def normalize(self, wavs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Zero mean, unit variance per utterance over its own samples (layer_norm without affine)."""
        mask = lengths_to_mask(lengths, wavs.size(1)).to(wavs.dtype)
        count = lengths.clamp(min=1)[:, None].to(wavs.dtype)
        mean = (wavs * mask).sum(1, keepdim=True) / count
        var = (((wavs - mean) * mask) ** 2).sum(1, keepdim=True) / count
        return (wavs - mean) * torch.rsqrt(var + self.cfg.normalize_eps) * mask

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        """wavs (B, T) zero-padded, wavs_len (B,) -> (hidden states [(B, T', C)], lengths [(B,)])."""
        wavs_len = wavs_len.to(wavs.device)
        if self.cfg.normalize_waveform:
            wavs = self.normalize(wavs, wavs_len)
        with torch.no_grad():  # the original freezes the conv extractor (feature_grad_mult = 0)
            feats, lengths = self.feature_extractor(wavs, wavs_len)  # (B, T', C)
        if self.cfg.crop_seq_to_multiple > 1:
            lengths = lengths - lengths % self.cfg.crop_seq_to_multiple
        max_len = int(lengths.max()) if lengths.numel() else 0
        feats = feats[:, :max_len]
        x = self.feature_proj(self.feature_norm(feats))
        x = x * lengths_to_mask(lengths, max_len)[:, :, None].to(x.dtype)  # padded frames are zeros
        states = self.encoder(x, lengths)
        return states, [lengths] * len(states)


def build(ckpt: str | None, feature_selection: str | None = None, fairseq: bool = False,
          legacy: bool = False, **options) -> Wav2Vec2:
    """Build from any supported checkpoint format of the family (see ``s3prl.convert``)."""
    if ckpt is None:
        raise ValueError("the wav2vec 2.0 family needs a checkpoint: pass path_or_url / ckpt")
    if legacy:
        raise ValueError(
            "legacy=True loaded checkpoints through fairseq in the original; this toolkit reads fairseq "
            "files without fairseq: pass fairseq=True instead (or nothing, the format is detected)"
        )
    if options:
        raise TypeError(f"unknown option(s) for the wav2vec 2.0 family: {', '.join(sorted(options))}")
    if feature_selection not in (None, "fairseq_layers", "fairseq_layers_before_residual"):
        raise ValueError(
            f"feature_selection={feature_selection!r} is not supported; use None, 'fairseq_layers' "
            "or 'fairseq_layers_before_residual'"
        )
    cfg, state = fairseq_convert.load_any(ckpt_io.load_checkpoint(ckpt) if not _is_folder(ckpt) else ckpt, ckpt)
    cfg.feature_selection = feature_selection
    model = Wav2Vec2(cfg)
    fairseq_convert.load_state(model, state, ckpt)
    return model.eval()


def _is_folder(path: str) -> bool:
    import os

    return os.path.isdir(path)
