"""The Taco2-AR head of the any-to-one voice conversion task (the original's ``a2o-vc-vcc2020`` ``Model`` with
``config_taco2_ar.yaml``): upstream features -> mel spectrogram of the target speaker.

* The features are stretched in time to the mel frame rate (nearest neighbour, factor ``resample_ratio`` =
  target rate / mel hop * upstream hop / 16 kHz: 1.875 for 24 kHz, hop 256 and a 320-sample upstream).
* Encoder (Tacotron 2's): Linear -> 3 x (Conv1d k5 512, batch norm, ReLU, dropout 0.5) -> one BLSTM
  layer of ``hidden_dim`` (both directions together).
* Decoder, one mel frame per encoder frame, autoregressive: the previous frame (normalised with the
  training targets' statistics; the true one while training, the predicted one otherwise) goes through the
  prenet (2 x Linear 256 + ReLU, dropout 0.5 ALWAYS on, evaluation included, as Tacotron 2), is joined to
  the encoder frame and goes through 2 LSTMP cells (LSTMCell ``hidden_dim``, dropout 0.2, Linear + tanh)
  and a Linear to the mel bins.

Parameter names are the original's. Random draws (dropout) happen in the original's order, so the same seed
gives the same masks. One difference, for padded batches only: padded frames are zeroed before each encoder
convolution, so that an utterance gets its batch-size-1 output whatever shares its batch (the original lets
the convolutions read the padding).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Taco2ARConfig:
    """Architecture (``config_taco2_ar.yaml`` ``modelrc``; ``lstmp_proj_dim`` and ``lstmp_layernorm`` of that
    file are unused by the original's AR decoder and not kept)."""

    input_dim: int
    output_dim: int = 80
    resample_ratio: float = 1.875
    hidden_dim: int = 1024
    prenet_layers: int = 2
    prenet_dim: int = 256
    prenet_dropout_rate: float = 0.5
    lstmp_layers: int = 2
    lstmp_dropout_rate: float = 0.2
    conv_channels: int = 512  # the encoder's, fixed by the original
    conv_layers: int = 3
    conv_kernel: int = 5
    conv_dropout_rate: float = 0.5


def frame_mask(lengths: torch.Tensor, total: int) -> torch.Tensor:
    """(B, total) True on valid frames."""
    return torch.arange(total, device=lengths.device)[None, :] < lengths[:, None]


class Taco2Encoder(nn.Module):
    def __init__(self, cfg: Taco2ARConfig):
        super().__init__()
        self.input_layer = nn.Linear(cfg.input_dim, cfg.conv_channels)
        self.convs = nn.ModuleList([
            nn.Sequential(nn.Conv1d(cfg.conv_channels, cfg.conv_channels, cfg.conv_kernel,
                                    padding=(cfg.conv_kernel - 1) // 2, bias=False),
                          nn.BatchNorm1d(cfg.conv_channels), nn.ReLU(), nn.Dropout(cfg.conv_dropout_rate))
            for _ in range(cfg.conv_layers)])
        self.blstm = nn.LSTM(cfg.conv_channels, cfg.hidden_dim // 2, 1, batch_first=True, bidirectional=True)
        gain = nn.init.calculate_gain("relu")
        for block in self.convs:  # Tacotron 2's initialisation
            nn.init.xavier_uniform_(block[0].weight, gain)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        keep = frame_mask(lengths, x.size(1))[:, None, :].to(x.dtype)  # (B, 1, T)
        h = self.input_layer(x).transpose(1, 2)  # (B, C, T)
        for block in self.convs:
            h = block(h * keep)
        packed = nn.utils.rnn.pack_padded_sequence(h.transpose(1, 2), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        out, _ = nn.utils.rnn.pad_packed_sequence(self.blstm(packed)[0], batch_first=True, total_length=x.size(1))
        return out  # (B, T, hidden)


class Taco2Prenet(nn.Module):
    def __init__(self, idim: int, n_layers: int, n_units: int, dropout_rate: float):
        super().__init__()
        self.dropout_rate = dropout_rate
        self.prenet = nn.ModuleList([nn.Sequential(nn.Linear(idim if i == 0 else n_units, n_units), nn.ReLU())
                                     for i in range(n_layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not len(self.prenet):
            return F.dropout(x, self.dropout_rate, training=True)
        for layer in self.prenet:
            x = F.dropout(layer(x), self.dropout_rate, training=True)  # on in evaluation too (Tacotron 2)
        return x


class LSTMPCell(nn.Module):
    """LSTMCell -> dropout -> Linear + tanh (the original's ``RNNCell`` with ``proj=True``)."""

    def __init__(self, input_dim: int, dim: int, dropout: float):
        super().__init__()
        self.cell = nn.LSTMCell(input_dim, dim)
        self.dp = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.pj = nn.Linear(dim, dim)

    def forward(self, x, z, c):
        z, c = self.cell(x, (z, c))
        return torch.tanh(self.pj(self.dp(z))), c


class Taco2AR(nn.Module):
    """``forward(features (B, T, D), lengths (B,), targets (B, T', output_dim) or None)`` -> mel (B, T'', bins)
    and its lengths (B,); ``T''`` = floor(T * resample_ratio). ``targets`` (teacher forcing) are the
    de-normalised mel frames; shorter ones are zero-padded."""

    def __init__(self, cfg: Taco2ARConfig, target_mean: torch.Tensor | None = None,
                 target_scale: torch.Tensor | None = None):
        super().__init__()
        self.cfg = cfg
        mean = torch.zeros(cfg.output_dim) if target_mean is None else torch.as_tensor(target_mean).float()
        scale = torch.ones(cfg.output_dim) if target_scale is None else torch.as_tensor(target_scale).float()
        self.register_buffer("target_mean", mean.clone())
        self.register_buffer("target_scale", scale.clone())
        self.encoder = Taco2Encoder(cfg)
        self.prenet = Taco2Prenet(cfg.output_dim, cfg.prenet_layers, cfg.prenet_dim, cfg.prenet_dropout_rate)
        prev = cfg.output_dim if cfg.prenet_layers == 0 else cfg.prenet_dim
        self.lstmps = nn.ModuleList([LSTMPCell(cfg.hidden_dim + prev if i == 0 else cfg.hidden_dim, cfg.hidden_dim,
                                               cfg.lstmp_dropout_rate) for i in range(cfg.lstmp_layers)])
        self.proj = nn.Linear(cfg.hidden_dim, cfg.output_dim)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.target_mean) / self.target_scale

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        # the original multiplies the int lengths by the float ratio (float32) and truncates
        return (lengths.to(torch.float32) * self.cfg.resample_ratio).long()

    def forward(self, features: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor | None = None):
        x = F.interpolate(features.float().transpose(1, 2), scale_factor=self.cfg.resample_ratio)  # (B, D, T'')
        x = x.transpose(1, 2)
        out_lengths = self.output_lengths(lengths).clamp(min=1, max=x.size(1))
        enc = self.encoder(x, out_lengths)  # (B, T'', hidden)
        B, T = enc.shape[:2]
        if targets is not None:
            targets = F.pad(targets.float(), (0, 0, 0, max(0, T - targets.size(1))))
        z = [enc.new_zeros(B, self.cfg.hidden_dim) for _ in self.lstmps]
        c = [enc.new_zeros(B, self.cfg.hidden_dim) for _ in self.lstmps]
        prev = enc.new_zeros(B, self.cfg.output_dim)
        frames = []
        for t in range(T):
            h = torch.cat([enc[:, t], self.prenet(prev)], dim=1)  # (B, hidden + prenet)
            for i, cell in enumerate(self.lstmps):
                z[i], c[i] = cell(h if i == 0 else z[i - 1], z[i], c[i])
            frames.append(self.proj(z[-1]))  # (B, bins)
            prev = self.normalize(targets[:, t] if targets is not None else frames[-1])
        return torch.stack(frames, dim=1), out_lengths  # (B, T'', bins), (B,)


def masked_l1(pred: torch.Tensor, pred_lengths: torch.Tensor, target: torch.Tensor, target_lengths: torch.Tensor,
              model: Taco2AR) -> torch.Tensor:
    """Mean absolute error of the normalised mel frames over the frames both sides have (the original's
    ``Loss``; it masks by the predicted lengths only, which is the same whenever the predictions are not longer
    than their targets, as the frame arithmetic makes them)."""
    total = min(pred.size(1), target.size(1))
    valid = torch.minimum(pred_lengths.to(target_lengths.device), target_lengths).to(pred.device)
    mask = frame_mask(valid, total)[:, :, None].expand(-1, -1, pred.size(2))  # (B, T, bins)
    diff = model.normalize(pred[:, :total]) - model.normalize(target[:, :total].to(pred.device))
    return diff.abs().masked_select(mask).mean()
