"""Modified CPC (Libri-light): a 5-layer conv encoder (stride 160) and a recurrent autoregressive network.

Hidden states, as the original hooks: the encoder output, then the autoregressive output.

The checkpoint is the Libri-light release format ``{'config': training args, 'weights': state dict}``;
the config's ``normMode`` (layerNorm = per-frame channel norm, instanceNorm, batchNorm, ID), ``arMode``
(LSTM, GRU, RNN, no_ar), ``nLevelsGRU``, ``hiddenEncoder``/``hiddenGar`` and ``cpc_mode='reverse'`` choose
the architecture, over the original's defaults.

Differences from the original, on purpose:
* it loaded the weights with ``strict=False``: missing weights silently kept their random init. Here a
  missing or unknown weight raises (the released ``weights`` are exactly the model's state dict).
* each utterance runs on its own samples (instance norm and the reversed recurrent network would
  otherwise see the batch padding): that is the original at batch size 1.
* with ``samplingType='sequential'`` the original carried the recurrent state over from the previous call;
  here every utterance starts from a zero state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint as ckpt_io
from ..convert import config as config_io
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointFormatError
from ..convert.keys import rename_keys

# (kernel, stride, padding) of the five encoder convs
ENCODER_CONVS = ((10, 5, 3), (8, 4, 2), (4, 2, 1), (4, 2, 1), (4, 2, 1))
# The original's defaults (``get_default_cpc_config``) for the keys that shape the model.
DEFAULTS = {"hiddenEncoder": 256, "hiddenGar": 256, "normMode": "layerNorm", "arMode": "LSTM", "nLevelsGRU": 1,
            "cpc_mode": None, "encoder_type": "cpc"}
RNN_MODES = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN": nn.RNN}

# The released ``weights`` are exactly the model's state dict (Libri-light's ``get_features_state_dict``), so
# nothing is known to be unused: the original's ``strict=False`` ignored no key of those files.
DROP: list[str] = []
KEY_MAP = [
    (r"gEncoder\.conv(\d)\.(weight|bias)", r"encoder.convs.\1.\2"),
    (r"gEncoder\.batchNorm(\d)\.(weight|bias|running_mean|running_var|num_batches_tracked)", r"encoder.norms.\1.\2"),
    (r"gAR\.baseNet\.((weight|bias)_(ih|hh)_l\d+)", r"ar.\1"),
]


@dataclass
class CPCConfig:
    """Architecture of modified CPC."""

    hidden_encoder: int = 256
    hidden_ar: int = 256
    norm_mode: str = "layerNorm"  # layerNorm, instanceNorm, batchNorm, ID
    ar_mode: str = "LSTM"  # LSTM, GRU, RNN, no_ar
    ar_layers: int = 1
    reverse: bool = False  # the recurrent network reads time backwards
    extra: dict = field(default_factory=dict)

    @property
    def downsample_rate(self) -> int:
        return math.prod(stride for _, stride, _ in ENCODER_CONVS)


class ChannelNorm(nn.Module):
    """Per-frame normalisation over channels (unbiased variance), with a per-channel affine."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, dim, 1))
        self.bias = nn.Parameter(torch.zeros(1, dim, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (1, C, T)
        mean, var = x.mean(dim=1, keepdim=True), x.var(dim=1, keepdim=True)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


def make_norm(mode: str, dim: int) -> nn.Module:
    if mode == "layerNorm":
        return ChannelNorm(dim)
    if mode == "instanceNorm":  # statistics over the utterance's own frames
        return nn.InstanceNorm1d(dim, affine=True)
    if mode == "batchNorm":
        return nn.BatchNorm1d(dim)
    if mode == "ID":
        return nn.Identity()
    raise CheckpointFormatError(f"unknown CPC normMode {mode!r} (layerNorm, instanceNorm, batchNorm, ID)")


class Encoder(nn.Module):
    def __init__(self, cfg: CPCConfig):
        super().__init__()
        dim = cfg.hidden_encoder
        self.convs = nn.ModuleList(
            nn.Conv1d(1 if i == 0 else dim, dim, k, stride=s, padding=p) for i, (k, s, p) in enumerate(ENCODER_CONVS))
        self.norms = nn.ModuleList(make_norm(cfg.norm_mode, dim) for _ in ENCODER_CONVS)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(1, samples) -> (1, T, C)."""
        x = wav[:, None, :]
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(conv(x)))
        return x.transpose(1, 2)


def frame_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """Frames of the zero-padded ("same"-style) encoder convs: floor((L + 2p - k) / s) + 1, never < 0."""
    for kernel, stride, pad in ENCODER_CONVS:
        lengths = (torch.div(lengths + 2 * pad - kernel, stride, rounding_mode="floor") + 1).clamp(min=0)
    return lengths


class CPC(nn.Module):
    """Waveform -> [encoder output (B, T, hiddenEncoder), autoregressive output (B, T, hiddenGar)]."""

    def __init__(self, cfg: CPCConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.ar = None
        if cfg.ar_mode != "no_ar":
            self.ar = RNN_MODES[cfg.ar_mode](cfg.hidden_encoder, cfg.hidden_ar, num_layers=cfg.ar_layers,
                                             batch_first=True)

    @property
    def num_layers(self) -> int:
        return 2

    @property
    def hidden_sizes(self) -> list[int]:
        return [self.cfg.hidden_encoder, self.cfg.hidden_encoder if self.ar is None else self.cfg.hidden_ar]

    @property
    def downsample_rates(self) -> list[int]:
        return [self.cfg.downsample_rate] * 2

    def single(self, wav: torch.Tensor) -> list[torch.Tensor]:
        """One unpadded utterance (1, samples) -> [(1, T, C), (1, T, H)]."""
        enc = self.encoder(wav)
        if self.ar is None:
            return [enc, enc]
        x = enc.flip(1) if self.cfg.reverse else enc
        x = self.ar(x)[0]  # zero initial state
        return [enc, x.flip(1) if self.cfg.reverse else x]

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        """wavs (B, T) zero-padded, wavs_len (B,) -> (hidden states [(B, T', D)], lengths [(B,)])."""
        wavs_len = wavs_len.to(wavs.device)
        frames = frame_lengths(wavs_len)
        T = int(frames.max()) if frames.numel() else 0
        states = [wavs.new_zeros(wavs.size(0), T, d) for d in self.hidden_sizes]
        for b, (n, t) in enumerate(zip(wavs_len.tolist(), frames.tolist())):
            if t > 0:
                for out, h in zip(states, self.single(wavs[b : b + 1, :n])):
                    out[b, :t] = h[0]
        return states, [frames, frames]


def config_from_dict(conf: dict, source: str) -> CPCConfig:
    """Libri-light's ``config`` -> CPCConfig; sizes are type- and range-checked (``CheckpointConfigError``)."""
    get = config_io.Settings(conf, DEFAULTS, source)
    if get.raw("encoder_type") != "cpc":
        raise CheckpointFormatError(f"{source}: CPC encoder_type={get.raw('encoder_type')!r} is not supported (cpc)")
    ar_mode = get.str("arMode")
    if ar_mode not in (*RNN_MODES, "no_ar"):
        raise CheckpointFormatError(f"{source}: CPC arMode={ar_mode!r} is not supported (LSTM, GRU, RNN, no_ar)")
    norm_mode = get.str("normMode")
    make_norm(norm_mode, 1)  # validates
    return CPCConfig(hidden_encoder=get.int("hiddenEncoder"), hidden_ar=get.int("hiddenGar"), norm_mode=norm_mode,
                     ar_mode=ar_mode, ar_layers=get.int("nLevelsGRU", 1, config_io.MAX_LAYERS),
                     reverse=conf.get("cpc_mode") == "reverse", extra={"source": source})


def estimated_parameters(cfg: CPCConfig) -> int:
    """A lower bound of the weights of ``CPC(cfg)``: the encoder's 1x1-or-wider convs after the first, the RNN."""
    rnn = 0 if cfg.ar_mode == "no_ar" else cfg.ar_layers * cfg.hidden_ar * (cfg.hidden_encoder + cfg.hidden_ar)
    return 4 * cfg.hidden_encoder * cfg.hidden_encoder + rnn


def map_state(state: dict, source: str) -> dict:
    return rename_keys(state, KEY_MAP, DROP, source)


def build(ckpt: str | None, **options) -> CPC:
    """Modified CPC from a Libri-light checkpoint ``{'config': ..., 'weights': ...}``."""
    if options:
        raise TypeError(f"unknown option(s) for CPC: {', '.join(sorted(options))}")
    if ckpt is None:
        raise ValueError("CPC needs a checkpoint: pass path_or_url / ckpt")
    obj = ckpt_io.load_checkpoint(ckpt)
    if not isinstance(obj, dict) or not isinstance(obj.get("config"), dict) or not isinstance(obj.get("weights"), dict):
        raise CheckpointFormatError(f"{ckpt} is {fairseq_convert.describe_format(obj)}, not a CPC checkpoint "
                                    "({'config': ..., 'weights': ...})")
    cfg = config_from_dict(obj["config"], ckpt)
    config_io.require_tensors(obj["weights"], ckpt)
    config_io.check_model_size(estimated_parameters(cfg), obj["weights"], ckpt)
    model = CPC(cfg)
    state = map_state(obj["weights"], ckpt)
    for key, value in model.state_dict().items():  # files older than torch 0.4.1 have no BatchNorm counter;
        if key.endswith("num_batches_tracked"):  # it is unused in eval mode
            state.setdefault(key, value)
    fairseq_convert.load_state(model, state, ckpt, mapped=True)
    return model.eval()
