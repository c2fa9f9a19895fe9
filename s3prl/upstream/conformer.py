"""The wav2vec2-conformer layer (fairseq ``ConformerWav2Vec2EncoderLayer``, HF ``Wav2Vec2ConformerEncoderLayer``).

One layer: x + FFN1 / 2, then x + MHSA (relative or rotary positions), then x + convolution module, then
x + FFN2 / 2, then LayerNorm. The encoder around it (``wav2vec2.Encoder``) has no positional convolution.

Like the transformer layer of ``wav2vec2.py`` it runs per-frame work on the packed valid frames (N, C).
Batch independence: the depthwise convolution reads frames past an utterance's end as zeros, as a lone
utterance would see its zero padding; attention masks padded keys; positions are counted per utterance.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# fairseq conformer checkpoint key -> our key. ``wav2vec2.KEY_MAP`` is tried first and already maps
# ``self_attn_layer_norm`` -> ``attention_norm`` and ``final_layer_norm`` -> ``final_norm`` of every layer.
_L = r"encoder\.layers\.(\d+)\."
CONFORMER_KEY_MAP = [
    (_L + r"(ffn[12])\.layer_norm\.(weight|bias)", r"encoder.layers.\1.\2.norm.\3"),
    (_L + r"(ffn[12])\.w_([12])\.(weight|bias)", r"encoder.layers.\1.\2.fc\3.\4"),
    (_L + r"self_attn\.linear_([qkv])\.(weight|bias)", r"encoder.layers.\1.attention.\2_proj.\3"),
    (_L + r"self_attn\.linear_out\.(weight|bias)", r"encoder.layers.\1.attention.out_proj.\2"),
    (_L + r"self_attn\.linear_pos\.weight", r"encoder.layers.\1.attention.pos_proj.weight"),
    (_L + r"self_attn\.pos_bias_([uv])", r"encoder.layers.\1.attention.pos_bias_\2"),
    (_L + r"self_attn\.rotary_emb\.inv_freq", r"encoder.layers.\1.attention.inv_freq"),
    (_L + r"conv_module\.layer_norm\.(weight|bias)", r"encoder.layers.\1.conv.norm.\2"),
    (_L + r"conv_module\.pointwise_conv([12])\.weight", r"encoder.layers.\1.conv.pointwise\2.weight"),
    (_L + r"conv_module\.depthwise_conv\.weight", r"encoder.layers.\1.conv.depthwise.weight"),
    (_L + r"conv_module\.batch_norm\.(weight|bias|running_mean|running_var|num_batches_tracked)",
     r"encoder.layers.\1.conv.batch_norm.\2"),
]

LAYER_NORM_EPS = 1e-5  # every LayerNorm inside the layer (fairseq and HF both use the torch default)


def relative_position_table(length: int, dim: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(2T-1, dim) sinusoids of the relative positions T-1, T-2, ..., -(T-1) (row r: position T-1-r).

    Position p = query index - key index (positive: key to the left). Even features sin(p w_k), odd cos(p w_k),
    w_k = 10000^(-2k/dim): the table of ESPnet/fairseq ``RelPositionalEncoding``, computed in float32.
    """
    pos = torch.arange(length - 1, -length, -1, device=device, dtype=torch.float32)[:, None]  # (2T-1, 1)
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * -(math.log(10000.0) / dim))
    table = torch.zeros(2 * length - 1, dim, device=device, dtype=torch.float32)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table.to(dtype)


def frame_positions(pack) -> torch.Tensor:
    """(N,) index of every packed frame within its own utterance."""
    if pack.full:
        return torch.arange(pack.max_len, device=pack.mask.device).repeat(pack.batch)
    return pack.index % pack.max_len


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of x (N, H, D) with cos/sin (N, 1, D): pairs (i, i + D/2) rotated together."""
    half = x.size(-1) // 2
    turned = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + turned * sin


class ConformerAttention(nn.Module):
    """ESPnet-style multi-head self-attention with relative (Transformer-XL) or rotary positions."""

    def __init__(self, dim: int, num_heads: int, pos_enc_type: str, dropout: float):
        super().__init__()
        if pos_enc_type not in ("rel_pos", "rope"):
            raise ValueError(f"conformer pos_enc_type {pos_enc_type!r} is not supported (rel_pos or rope)")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.pos_enc_type, self.dropout = pos_enc_type, dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        if pos_enc_type == "rel_pos":
            self.pos_proj = nn.Linear(dim, dim, bias=False)
            self.pos_bias_u = nn.Parameter(torch.zeros(num_heads, self.head_dim))
            self.pos_bias_v = nn.Parameter(torch.zeros(num_heads, self.head_dim))
            nn.init.xavier_uniform_(self.pos_bias_u)
            nn.init.xavier_uniform_(self.pos_bias_v)
        else:  # stored in checkpoints (fairseq per layer, HF once per encoder): load it, do not rebuild it
            inv_freq = 1.0 / (10000 ** (torch.arange(0, self.head_dim, 2).float() / self.head_dim))
            self.register_buffer("inv_freq", inv_freq)

    def heads(self, x: torch.Tensor, pack) -> torch.Tensor:  # (N, C) -> (B, H, T, Dh)
        return pack.unpack(x).view(pack.batch, pack.max_len, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, pack, pos_emb: torch.Tensor | None) -> torch.Tensor:
        """x (N, C) packed -> (N, C); pos_emb (2T-1, C) for rel_pos."""
        B, T, H, Dh = pack.batch, pack.max_len, self.num_heads, self.head_dim
        bias = None
        if self.pos_enc_type == "rope":
            # as fairseq and HF: the rotation applies to the layer input, before the q/k projections
            angle = frame_positions(pack).to(torch.float32)[:, None] * self.inv_freq.float()[None, :]  # (N, Dh/2)
            angle = torch.cat((angle, angle), dim=-1)[:, None, :]  # (N, 1, Dh)
            turned = rotate(x.view(-1, H, Dh), angle.cos().to(x.dtype), angle.sin().to(x.dtype)).reshape(x.shape)
            q, k = self.heads(self.q_proj(turned), pack), self.heads(self.k_proj(turned), pack)
        else:
            q, k = self.q_proj(x), self.heads(self.k_proj(x), pack)
            q_v = self.heads(q + self.pos_bias_v.reshape(-1), pack)  # (B, H, T, Dh)
            q = self.heads(q + self.pos_bias_u.reshape(-1), pack)
            pos = self.pos_proj(pos_emb).view(2 * T - 1, H, Dh).permute(1, 2, 0)  # (H, Dh, 2T-1)
            bd = torch.matmul(q_v, pos).contiguous()  # (B, H, T, 2T-1): query i against position T-1-c
            # Transformer-XL shift: score[i, j] = bd[i, T-1-i+j] (position i-j), read in place
            s = bd.stride()
            bias = bd.as_strided((B, H, T, T), (s[0], s[1], s[2] - 1, s[3]), bd.storage_offset() + T - 1)
            bias = bias / math.sqrt(Dh)
        v = self.heads(self.v_proj(x), pack)
        if not pack.full:
            key_ok = pack.mask[:, None, None, :]  # (B, 1, 1, T)
            bias = key_ok if bias is None else bias.masked_fill(~key_ok, float("-inf"))
        drop = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=drop)  # (B, H, T, Dh)
        return self.out_proj(pack.pack(out.transpose(1, 2).reshape(B, T, H * Dh)))


class FeedForward(nn.Module):
    """LayerNorm -> Linear -> swish -> Linear (the caller adds half of it)."""

    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.dropout(F.silu(self.fc1(self.norm(x))), self.dropout, self.training)
        return F.dropout(self.fc2(x), self.dropout, self.training)


class ConvModule(nn.Module):
    """LayerNorm -> pointwise conv (2C) -> GLU -> depthwise conv -> BatchNorm -> swish -> pointwise conv."""

    def __init__(self, dim: int, kernel: int, dropout: float):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"depthwise_conv_kernel_size must be odd for 'same' padding, got {kernel}")
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.pointwise1 = nn.Conv1d(dim, 2 * dim, 1, bias=False)
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=(kernel - 1) // 2, groups=dim, bias=False)
        self.batch_norm = nn.BatchNorm1d(dim)
        self.pointwise2 = nn.Conv1d(dim, dim, 1, bias=False)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, pack) -> torch.Tensor:
        """x (N, C) packed -> (N, C)."""
        x = F.glu(F.linear(self.norm(x), self.pointwise1.weight[:, :, 0]), dim=-1)  # (N, C)
        h = pack.unpack(x).transpose(1, 2)  # (B, C, T), zeros past every utterance's end
        x = pack.pack(self.depthwise(h).transpose(1, 2))  # (N, C)
        x = self.batch_norm(x)  # (N, C): in training, statistics of the valid frames only
        x = F.linear(F.silu(x), self.pointwise2.weight[:, :, 0])
        return F.dropout(x, self.dropout, self.training)


class ConformerLayer(nn.Module):
    """x + FFN1/2 -> x + MHSA -> x + Conv -> x + FFN2/2 -> LayerNorm, on packed frames."""

    def __init__(self, cfg):
        super().__init__()
        dim = cfg.embed_dim
        self.ffn1 = FeedForward(dim, cfg.ffn_dim, cfg.dropout)
        self.attention_norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attention = ConformerAttention(dim, cfg.num_heads, cfg.pos_enc_type, cfg.dropout)
        self.conv = ConvModule(dim, cfg.depthwise_conv_kernel_size, cfg.dropout)
        self.ffn2 = FeedForward(dim, cfg.ffn_dim, cfg.dropout)
        self.final_norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor, pack, pos_emb: torch.Tensor | None = None):
        """x (N, C) packed. Returns (output, FFN2 output before its half-step residual)."""
        x = x + 0.5 * self.ffn1(x)
        attn = self.attention(self.attention_norm(x), pack, pos_emb)
        x = x + F.dropout(attn, self.dropout, self.training)
        x = x + self.conv(x, pack)
        ffn_out = self.ffn2(x)
        return self.final_norm(x + 0.5 * ffn_out), ffn_out
