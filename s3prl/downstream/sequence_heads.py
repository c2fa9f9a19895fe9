"""Frame-level heads of the CTC tasks (PR, ASR, SF, out-of-domain ASR), as the original ``downstream/asr`` and
``downstream/ctc`` experts build them: ``projector = Linear(D -> project_dim)`` then a model.

- :class:`FrameLinear` (PR, ``FrameLevel``): optional ``Linear + activation`` hidden layers, then ``Linear`` to
  the vocabulary, on every frame.
- :class:`RNNs` (ASR, SF): optional input downsampling to a total frame rate (``concat``: neighbouring frames
  stacked, ``drop``: every r-th frame kept), stacked one-layer (B)LSTM/GRU layers each with optional layer norm,
  dropout, ``drop``-downsampling and ``tanh(Linear)`` projection, then ``Linear`` to the vocabulary. The
  SUPERB ASR/SF head is ``project_dim 1024``, two BLSTM layers of 1024 per direction, dropout 0.2, no layer
  norm, no projection, no downsampling (``total_rate -1``).
- :class:`Wav2Letter` (``select: Wav2Letter``, the original's alternative): a stack of 1-D convolutions whose
  first stride turns the upstream's hop into ``total_rate``.

Parameter names follow the original's (``projector``, ``model.rnns.N.layer``, ``model.linear``...), so that its
trained ``Downstream`` weights load as they are. Padding never changes an utterance's output: recurrent layers
read packed sequences, and lengths are data.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def downsample(x: torch.Tensor, lengths: torch.Tensor, rate: int, style: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, D) -> (B, T // rate, D) (``drop``: ceil) or (B, T // rate, D * rate) (``concat``); lengths // rate."""
    if style == "drop":
        return x[:, ::rate].contiguous(), lengths // rate
    if style == "concat":
        batch, steps, dim = x.shape
        x = x[:, : steps - steps % rate]
        return x.reshape(batch, steps // rate, dim * rate), lengths // rate
    raise ValueError(f"sample_style must be 'drop' or 'concat', got {style!r}")


class RNNLayer(nn.Module):
    """One recurrent layer with the original's optional layer norm, dropout, downsampling and projection."""

    def __init__(self, input_size: int, module: str, bidirection: bool, dim: int, dropout: float,
                 layer_norm: bool, sample_rate: int, proj: bool):
        super().__init__()
        if module.upper() not in ("LSTM", "GRU", "RNN"):
            raise ValueError(f"module must be LSTM, GRU or RNN, got {module!r}")
        self.out_dim = 2 * dim if bidirection else dim
        self.sample_rate, self.use_ln, self.use_proj = sample_rate, layer_norm, proj
        self.layer = getattr(nn, module.upper())(input_size, dim, bidirectional=bidirection, num_layers=1,
                                                 batch_first=True)
        if layer_norm:
            self.ln = nn.LayerNorm(self.out_dim)
        self.dp = nn.Dropout(dropout) if dropout > 0 else None
        if proj:
            self.pj = nn.Linear(self.out_dim, self.out_dim)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        packed = pack_padded_sequence(x, lengths.cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
        out, _ = self.layer(packed)
        out, _ = pad_packed_sequence(out, batch_first=True)  # (B, max(lengths), H)
        if self.use_ln:
            out = self.ln(out)
        if self.dp is not None:
            out = self.dp(out)
        if self.sample_rate > 1:
            out, lengths = downsample(out, lengths, self.sample_rate, "drop")
        if self.use_proj:
            out = torch.tanh(self.pj(out))
        return out, lengths


class RNNs(nn.Module):
    """Recurrent CTC model (see module docstring); ``total_rate`` is the wanted input-to-output hop in samples
    (-1: keep the upstream's rate)."""

    def __init__(self, input_size: int, output_size: int, upstream_rate: int, module: str = "LSTM",
                 bidirection: bool = True, dim: Sequence[int] = (1024, 1024), dropout: Sequence[float] = (0.2, 0.2),
                 layer_norm: Sequence[bool] = (False, False), proj: Sequence[bool] = (False, False),
                 sample_rate: Sequence[int] = (1, 1), sample_style: str = "concat", total_rate: int = -1):
        super().__init__()
        lists = {"dropout": dropout, "layer_norm": layer_norm, "proj": proj, "sample_rate": sample_rate}
        wrong = [k for k, v in lists.items() if len(v) != len(dim)]
        if wrong:
            raise ValueError(f"RNNs: {wrong} must have one entry per layer ({len(dim)} layers in dim)")
        self.sample_rate = 1 if total_rate == -1 else round(total_rate / upstream_rate)
        self.sample_style = sample_style
        size = input_size * (self.sample_rate if sample_style == "concat" else 1)
        self.rnns = nn.ModuleList()
        for i in range(len(dim)):
            layer = RNNLayer(size, module, bidirection, dim[i], dropout[i], layer_norm[i], sample_rate[i], proj[i])
            self.rnns.append(layer)
            size = layer.out_dim
        self.linear = nn.Linear(size, output_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.sample_rate > 1:
            x, lengths = downsample(x, lengths, self.sample_rate, self.sample_style)
        for rnn in self.rnns:
            x, lengths = rnn(x, lengths)
        return self.linear(x), lengths  # (B, T', V), (B,)


class FrameLinear(nn.Module):
    """The original ``FrameLevel``: hidden ``Linear + activation`` layers (none by default) and ``linear``."""

    def __init__(self, input_size: int, output_size: int, upstream_rate: int = 0,
                 hiddens: Sequence[int] | None = None, activation: str = "ReLU"):
        super().__init__()
        layers, size = [], input_size
        for width in hiddens or ():
            layers += [nn.Linear(size, width), getattr(nn, activation)()]
            size = width
        self.hiddens = nn.Sequential(*layers)
        self.linear = nn.Linear(size, output_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.linear(self.hiddens(x)), lengths


class Wav2Letter(nn.Module):
    """The original's ``Wav2Letter`` (torchaudio's, with the first stride set to keep ``total_rate``): eleven
    ``Conv1d + ReLU`` layers (250 channels, kernels 48 / 7 x7 / 32 / 1 / 1, 2000 before the last two), the
    output ReLU-ed as in the original. ``total_rate`` is the wanted hop in samples (-1: the upstream's).

    Each layer's input is zeroed beyond the utterance's valid frames (conv arithmetic), so an utterance gives
    its batch-size-1 output in any padded batch (the original lets padding leak into the last frames). Output
    lengths are ``lengths // stride`` as the original's.
    """

    def __init__(self, input_size: int, output_size: int, upstream_rate: int, total_rate: int = 320):
        super().__init__()
        stride = 1 if total_rate == -1 else total_rate // upstream_rate
        if stride < 1:
            raise ValueError(f"Wav2Letter: total_rate {total_rate} is below the upstream's hop {upstream_rate} "
                             "samples; use a multiple of it, or -1 to keep the upstream's rate")
        self.downsample_rate = stride
        shapes = [(input_size, 250, 48, stride, 23)] + [(250, 250, 7, 1, 3)] * 7 + [
            (250, 2000, 32, 1, 16), (2000, 2000, 1, 1, 0), (2000, output_size, 1, 1, 0)]
        layers = []
        for c_in, c_out, kernel, step, pad in shapes:  # parameter names acoustic_model.{0,2,..,20} as the original
            layers += [nn.Conv1d(c_in, c_out, kernel, stride=step, padding=pad), nn.ReLU()]
        self.acoustic_model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.transpose(1, 2)  # (B, D, T)
        valid = lengths.to(x.device)
        for layer in self.acoustic_model:
            if isinstance(layer, nn.Conv1d):
                frames = torch.arange(x.size(-1), device=x.device)
                x = layer(x * (frames[None, :] < valid[:, None]).unsqueeze(1).to(x.dtype))
                (kernel,), (step,), (pad,) = layer.kernel_size, layer.stride, layer.padding
                valid = torch.div(valid + 2 * pad - kernel, step, rounding_mode="floor").clamp(min=-1) + 1
            else:
                x = layer(x)
        return x.transpose(1, 2), lengths // self.downsample_rate  # (B, T', V), (B,)


MODELS = {"RNNs": RNNs, "FrameLevel": FrameLinear, "Wav2Letter": Wav2Letter}


class CTCHead(nn.Module):
    """``projector`` then the ``select``-ed model:
    ``forward(x (B, T, D), lengths) -> (logits (B, T', V), lengths')``."""

    def __init__(self, input_size: int, vocab_size: int, upstream_rate: int, project_dim: int, select: str,
                 **model_options):
        super().__init__()
        if select not in MODELS:
            raise ValueError(f"model select must be one of {sorted(MODELS)}, got {select!r}")
        self.projector = nn.Linear(input_size, project_dim)
        self.model = MODELS[select](project_dim, vocab_size, upstream_rate, **model_options)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(self.projector(x), lengths)
