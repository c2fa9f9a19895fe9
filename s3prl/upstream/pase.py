"""PASE+ (``pase_plus``, ``pase_local``, ``pase_url``): the PASE ``WaveFe`` encoder on CPU, no CUDA kernels.

Architecture (facts of the original ``pase.models.frontend.WaveFe``, configured by a JSON ``PASE+.cfg``):

* block 0: SincNet, 64 band-pass filters of 251 taps built from two learned frequencies per filter
  (``low_hz_``, ``band_hz_``); blocks 1-7: Conv1d with bias. Every block: "same" padding in ``pad_mode``
  (reflect for PASE+), BatchNorm (running statistics), PReLU per channel. Strides 1, 10, 2, 1, 2, 1, 2, 2.
* dense skips: a 1x1 projection (no bias) of blocks 0..6 to ``emb_dim``, mean-pooled over non-overlapping
  windows of ``L_j // T`` frames (the tail cut) to the final frame count ``T``;
* a forward-only QRNN (window 2: each frame sees itself and the previous frame; forget and output gates),
  ``W`` (1x1 conv) on its output, the pooled skips added, then ``norm_out`` (BatchNorm without affine).

Hidden states, as s3prl's ``pase_plus`` hooks define them (9 for PASE+, all ``emb_dim`` = 256 wide): the
seven pooled skips, ``W``'s output (before the skips are added) and the model output. Frames: ``T =
floor(ceil(N / 10) / 16)`` for ``N`` samples; the stride is the product of the strides (160).

Exactness: the original zero-pads a batch and runs it without a mask, so the last frames of shorter
utterances depend on the batch (their reflect padding reflects zeros, their skips are pooled with the longest
utterance's window). Here each utterance runs alone on its own samples, so a padded batch gives every utterance
exactly (bit for bit) its batch-size-1 result, which is the original's batch-size-1 result. Inputs shorter
than the receptive field (471 samples for PASE+; the original crashes on them) raise a ValueError naming the
minimum; ``S3PRLUpstream`` and the hub pad clips to 800 samples first, as the original S3PRLUpstream does.

Checkpoint: the flat state dict PASE's trainer saves (``FE_e199.ckpt``; a ``{'state_dict': ...}`` wrapper
also loads). Config: ``model_config=`` (path or URL), else a side file next to the checkpoint
(``<stem>.cfg`` or ``<file>.cfg``), else the released ``PASE+.cfg`` (the ``pase_plus`` entry's second URL).
Built in evaluation mode (BatchNorm with running statistics, as the oracle compares); in training mode the
batch statistics come from each utterance alone, where the original uses the padded batch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from .. import checkpoint as ckpt_io
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointConfigError, CheckpointFormatError

SAMPLE_RATE = 16000
MIN_LOW_HZ, MIN_BAND_HZ = 50.0, 50.0  # fixed by the original SincNet layer
PAD_MODES = ("reflect", "replicate", "constant")
OTHER_FRONTENDS = ("asppRes", "Resnet50", "tdnn")  # wf_builder's other encoders (a config with 'name')
OPTIONAL_KEYS = ("num_batches_tracked",)  # BatchNorm counters: no effect in evaluation, absent in old files


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass
class PaseConfig:
    """Architecture of a PASE ``WaveFe`` encoder (defaults: ``WaveFe``'s own; PASE+ sets the rest)."""

    kwidths: list[int] = field(default_factory=lambda: [251, 10, 5, 5, 5, 5, 5, 5])
    strides: list[int] = field(default_factory=lambda: [1, 10, 2, 1, 2, 1, 2, 2])
    dilations: list[int] = field(default_factory=lambda: [1] * 8)
    fmaps: list[int] = field(default_factory=lambda: [64, 64, 128, 128, 256, 256, 512, 512])
    sincnet: bool = True
    pad_mode: str = "reflect"
    sr: int = SAMPLE_RATE  # only shapes the sinc filters; inputs are 16 kHz in s3prl
    emb_dim: int = 256
    rnn_dim: int | None = None
    rnn_pool: bool = False
    rnn_layers: int = 1
    rnn_dropout: float = 0.0  # between QRNN layers, training only
    denseskips: bool = False
    norm_out: bool = False
    tanh_out: bool = False

    @property
    def num_blocks(self) -> int:
        return len(self.kwidths)

    @property
    def rnn_size(self) -> int:
        return self.rnn_dim if self.rnn_dim is not None else self.emb_dim


# WaveFe options whose other values build another model than the one implemented here -> the values allowed
FIXED_VALUES = {
    "num_inputs": (1,),
    "norm_type": ("bnorm",),
    "activation": (None, "prelu"),
    "rnn_type": ("qrnn",),  # compared in lower case, as the original; only used with rnn_pool
    "resblocks": (False,),
    "densemerge": ("sum",),
    "vq_K": (None, 0),
}
IGNORED = ("vq_beta", "vq_gamma")  # only used with vq_K


def _int_list(raw: dict, key: str, source: str, n: int | None, minimum: int) -> list[int]:
    value = raw[key]
    ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum
                                         for v in value) and len(value) > 0 and (n is None or len(value) == n)
    if not ok:
        size = f"{n} " if n is not None else ""
        raise CheckpointConfigError(source, key, value, f"a list of {size}integers >= {minimum}")
    return list(value)


def pase_config(raw: dict, source: str) -> PaseConfig:
    """A ``PASE+.cfg`` dict (``WaveFe`` keyword arguments) -> PaseConfig; unknown or unsupported values raise."""
    if not isinstance(raw, dict):
        raise CheckpointFormatError(f"{source}: a PASE config is a JSON object, got {type(raw).__name__}")
    raw = dict(raw)
    if "name" in raw:  # the original's wf_builder builds WaveFe only from a config without 'name'
        what = "is not supported here" if raw["name"] in OTHER_FRONTENDS else "is unknown to the original PASE"
        raise CheckpointFormatError(f"{source}: the PASE front end {raw['name']!r} {what}; only the WaveFe encoder "
                                    "of PASE / PASE+ (a config without 'name', like PASE+.cfg) is")
    cfg = PaseConfig()
    known = set(PaseConfig.__dataclass_fields__) | set(FIXED_VALUES) | set(IGNORED)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise CheckpointFormatError(f"{source}: unknown PASE config key(s) {unknown}; allowed: {sorted(known)}")
    if isinstance(raw.get("rnn_type"), str):
        raw["rnn_type"] = raw["rnn_type"].lower()
    if not raw.get("rnn_pool", False):
        raw.pop("rnn_type", None)
    for key, allowed in FIXED_VALUES.items():
        if key in raw and raw[key] not in allowed:
            raise CheckpointConfigError(source, key, raw[key], f"one of {list(allowed)} (other values are "
                                        "not implemented in this s3prl)")
    n = len(_int_list(raw, "kwidths", source, None, 1)) if "kwidths" in raw else cfg.num_blocks
    for key, minimum in (("kwidths", 1), ("strides", 1), ("dilations", 1), ("fmaps", 1)):
        if key in raw:
            setattr(cfg, key, _int_list(raw, key, source, n, minimum))
        elif len(getattr(cfg, key)) != n:
            raise CheckpointConfigError(source, key, None, f"{n} values, one per block (kwidths has {n})")
    for key in ("sincnet", "rnn_pool", "denseskips", "norm_out", "tanh_out"):
        if key in raw:
            if not isinstance(raw[key], bool):
                raise CheckpointConfigError(source, key, raw[key], "true or false")
            setattr(cfg, key, raw[key])
    for key, minimum in (("sr", 1), ("emb_dim", 1), ("rnn_layers", 1), ("rnn_dim", 2)):
        value = raw.get(key, getattr(cfg, key))
        if key == "rnn_dim" and value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise CheckpointConfigError(source, key, value, f"an integer >= {minimum}")
        setattr(cfg, key, value)
    if "rnn_dropout" in raw:
        if not isinstance(raw["rnn_dropout"], (int, float)) or not 0 <= raw["rnn_dropout"] < 1:
            raise CheckpointConfigError(source, "rnn_dropout", raw["rnn_dropout"], "a number in [0, 1)")
        cfg.rnn_dropout = float(raw["rnn_dropout"])
    if raw.get("pad_mode", cfg.pad_mode) not in PAD_MODES:
        raise CheckpointConfigError(source, "pad_mode", raw["pad_mode"], f"one of {list(PAD_MODES)}")
    cfg.pad_mode = raw.get("pad_mode", cfg.pad_mode)
    if cfg.rnn_pool and cfg.rnn_size % 2:  # the QRNN has 2 * (rnn_dim // 2) units, W expects rnn_dim inputs
        raise CheckpointConfigError(source, "rnn_dim", cfg.rnn_size, "an even number (the original fails on odd)")
    for i, (k, s, d) in enumerate(zip(cfg.kwidths, cfg.strides, cfg.dilations)):
        if d > 1 and (s > 1 or k % 2 == 0) and not (i == 0 and cfg.sincnet) and k > 1:
            raise CheckpointConfigError(source, "dilations", cfg.dilations,
                                        f"1 for block {i} (stride {s}, kernel {k}): the original cannot dilate it")
    return cfg


# ---------------------------------------------------------------------------------------------
# Length arithmetic
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockGeometry:
    """How one block pads and convolves: (left, right) padding, effective kernel, stride."""

    left: int
    right: int
    span: int  # dilation * (kernel - 1) + 1
    stride: int

    def frames(self, n: int) -> int:
        """Output frames for ``n`` input frames (0 when the padded input is shorter than the kernel)."""
        total = n + self.left + self.right
        return (total - self.span) // self.stride + 1 if total >= self.span else 0


def block_geometry(cfg: PaseConfig, i: int) -> BlockGeometry:
    k, s, d = cfg.kwidths[i], cfg.strides[i], cfg.dilations[i]
    if i == 0 and cfg.sincnet:
        k += 1 - k % 2  # SincNet makes its filters odd; it ignores the dilation
        pad = (k // 2 - 1, k // 2) if s > 1 else (k // 2, k // 2)
        return BlockGeometry(*pad, k, s)
    if k == 1:
        return BlockGeometry(0, 0, 1, s)
    if s > 1 or k % 2 == 0:
        return BlockGeometry(k // 2 - 1, k // 2, k, s)
    return BlockGeometry((k // 2) * d, (k // 2) * d, d * (k - 1) + 1, s)


def padding_fits(geo: BlockGeometry, n: int, mode: str) -> bool:
    """Whether ``F.pad`` accepts padding an input of ``n`` frames (reflection needs more frames than padding)."""
    if mode == "reflect":
        return max(geo.left, geo.right) < n
    if mode == "replicate":
        return n > 0 or geo.left + geo.right == 0
    return True


def frame_counts(cfg: PaseConfig, n: int) -> list[int] | None:
    """Frames after each block for ``n`` samples, or None when the original cannot run on them."""
    counts = []
    for i in range(cfg.num_blocks):
        geo = block_geometry(cfg, i)
        if not padding_fits(geo, n, cfg.pad_mode):
            return None
        n = geo.frames(n)
        if n < 1:
            return None
        counts.append(n)
    return counts


def minimum_samples(cfg: PaseConfig) -> int:
    """The fewest samples the encoder runs on (padding fits everywhere and at least one output frame)."""
    high = 1
    while frame_counts(cfg, high) is None:
        high *= 2
        if high > 1 << 40:
            raise CheckpointFormatError("this PASE configuration produces no frame for any input length")
    low = high // 2  # frame_counts(low) is None (or low == 0); counts grow with the input
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if frame_counts(cfg, mid) is not None else (mid, high)
    return high


# ---------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------


class SincFilters(nn.Module):
    """SincNet band-pass filters: ``low_hz_``, ``band_hz_`` (out, 1) in Hz -> (out, 1, kernel) conv weights."""

    def __init__(self, out_channels: int, kernel: int, sr: int):
        super().__init__()
        kernel += 1 - kernel % 2
        self.kernel, self.sr = kernel, sr
        self.low_hz_ = nn.Parameter(torch.zeros(out_channels, 1))
        self.band_hz_ = nn.Parameter(torch.zeros(out_channels, 1))
        half = kernel // 2
        # Half of a Hamming-like window: 0.54 - 0.46 cos(2 pi n / K) at n = linspace(0, K/2 - 1, floor(K/2)),
        # i.e. steps of (K/2 - 1) / (floor(K/2) - 1), not 1 (PASE's window, not torch.hamming_window).
        n_lin = torch.linspace(0, kernel / 2 - 1, steps=half)
        self.register_buffer("window", 0.54 - 0.46 * torch.cos(2 * math.pi * n_lin / kernel), persistent=False)
        self.register_buffer("t_left", 2 * math.pi * torch.arange(-half, 0).float().view(1, -1) / sr,
                             persistent=False)  # (1, half) angular time of the left taps

    def forward(self) -> torch.Tensor:
        low = MIN_LOW_HZ + self.low_hz_.abs()  # (out, 1)
        high = torch.clamp(low + MIN_BAND_HZ + self.band_hz_.abs(), MIN_LOW_HZ, self.sr / 2)
        band = (high - low)[:, 0]  # (out,)
        left = (torch.sin(high * self.t_left) - torch.sin(low * self.t_left)) / (self.t_left / 2) * self.window
        filters = torch.cat([left, 2 * band[:, None], left.flip(1)], dim=1) / (2 * band[:, None])  # (out, K)
        return filters[:, None, :]


class Block(nn.Module):
    """Padding -> conv (SincNet or Conv1d) -> BatchNorm -> PReLU."""

    def __init__(self, cfg: PaseConfig, i: int, in_channels: int):
        super().__init__()
        fmaps = cfg.fmaps[i]
        self.geo, self.pad_mode = block_geometry(cfg, i), cfg.pad_mode
        self.sinc = i == 0 and cfg.sincnet
        if self.sinc:
            self.conv = SincFilters(fmaps, cfg.kwidths[i], cfg.sr)
        else:
            self.conv = nn.Conv1d(in_channels, fmaps, cfg.kwidths[i], cfg.strides[i], dilation=cfg.dilations[i])
        self.norm = nn.BatchNorm1d(fmaps)
        self.act = nn.PReLU(fmaps, init=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(1, C, L) one utterance -> (1, C', L') with L' = ``self.geo.frames(L)``."""
        geo = self.geo
        x = F.pad(x, (geo.left, geo.right), mode=self.pad_mode)  # (1, C, L + left + right)
        h = F.conv1d(x, self.conv(), stride=geo.stride) if self.sinc else self.conv(x)
        return self.act(self.norm(h))


class QRNNLayer(nn.Module):
    """QRNN-fo, window 2: gates from [x_t, x_{t-1}] (x_{-1} = 0); c_t = f_t z_t + (1 - f_t) c_{t-1}; h_t = o_t c_t."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.linear = nn.Linear(2 * input_size, 3 * hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(T, B, D) -> (T, B, H). Causal: frame t depends on frames <= t only (padding at the end is harmless)."""
        previous = torch.cat([torch.zeros_like(x[:1]), x[:-1]], dim=0)  # (T, B, D)
        z, f, o = self.linear(torch.cat([x, previous], dim=2)).chunk(3, dim=2)  # (T, B, H) each
        z, f = torch.tanh(z), torch.sigmoid(f)
        fz, keep = f * z, 1 - f
        cells = [fz[0]]
        for t in range(1, x.size(0)):
            cells.append(fz[t] + keep[t] * cells[-1])
        return torch.sigmoid(o) * torch.stack(cells)  # (T, B, H)


class QRNN(nn.Module):
    """Stacked forward-only QRNN layers (PASE asks for a bidirectional one; the QRNN ignores the flag)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        sizes = [input_size] + [hidden_size] * num_layers
        self.layers = nn.ModuleList(QRNNLayer(i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.dropout(x, self.dropout, self.training)
        return x


def pool_to(skip: torch.Tensor, frames: int) -> torch.Tensor:
    """(1, C, L) -> (1, C, frames): means over windows of ``L // frames`` frames, the tail beyond them cut."""
    factor = skip.size(2) // frames
    if factor <= 1:
        return skip[:, :, :frames]
    return skip[:, :, : frames * factor].reshape(1, skip.size(1), frames, factor).mean(dim=3)


class PASE(nn.Module):
    """The PASE / PASE+ ``WaveFe`` encoder with s3prl's hidden states (pooled skips, ``W``, output)."""

    def __init__(self, cfg: PaseConfig):
        super().__init__()
        self.cfg = cfg
        channels = [1] + cfg.fmaps
        self.blocks = nn.ModuleList(Block(cfg, i, channels[i]) for i in range(cfg.num_blocks))
        if cfg.denseskips:
            self.denseskips = nn.ModuleList(nn.Conv1d(c, cfg.emb_dim, 1, bias=False) for c in cfg.fmaps[:-1])
        if cfg.rnn_pool:
            self.rnn = QRNN(cfg.fmaps[-1], 2 * (cfg.rnn_size // 2), cfg.rnn_layers, cfg.rnn_dropout)
        self.W = nn.Conv1d(cfg.rnn_size if cfg.rnn_pool else cfg.fmaps[-1], cfg.emb_dim, 1)
        if cfg.norm_out:
            self.norm_out = nn.BatchNorm1d(cfg.emb_dim, affine=False)
        self.min_samples = minimum_samples(cfg)

    @property
    def num_layers(self) -> int:
        return (self.cfg.num_blocks - 1 if self.cfg.denseskips else 0) + 2

    @property
    def hidden_sizes(self) -> list[int]:
        return [self.cfg.emb_dim] * self.num_layers

    @property
    def downsample_rates(self) -> list[int]:
        return [math.prod(self.cfg.strides)] * self.num_layers

    def check_lengths(self, wavs_len: torch.Tensor) -> None:
        short = (wavs_len < self.min_samples).nonzero().flatten().tolist()
        if short:
            raise ValueError(
                f"PASE needs at least {self.min_samples} samples ({self.min_samples / SAMPLE_RATE:.4f} s at 16 kHz) "
                f"per utterance (its receptive field: reflect padding must be shorter than every block's input and "
                f"the last block must give a frame); utterance(s) {short} have {wavs_len[short].tolist()} samples. "
                "Pad them, or use S3PRLUpstream / s3prl.hub, which pad clips to 800 samples.")

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        """wavs (B, N) zero-padded, wavs_len (B,) -> (skips..., W, output) each (B, T, emb_dim), frames (B,).

        Each utterance runs alone on its own samples (its padding is the reflection of its own end): the
        batch gives every utterance exactly its batch-size-1 result."""
        wavs_len = wavs_len.to(wavs.device)
        self.check_lengths(wavs_len)
        wavs = wavs.to(self.W.weight.dtype)
        per_utt = [self.encode(wavs[b, :n]) for b, n in enumerate(wavs_len.tolist())]
        frames = [frame_counts(self.cfg, n)[-1] for n in wavs_len.tolist()]  # conv arithmetic = sizes of per_utt
        lengths = torch.tensor(frames, dtype=torch.long, device=wavs.device)
        states = [pad_sequence([u[i] for u in per_utt], batch_first=True) for i in range(self.num_layers)]
        return states, [lengths] * len(states)

    def encode(self, wav: torch.Tensor) -> list[torch.Tensor]:
        """(N,) samples of one utterance -> the hidden states, each (T, emb_dim)."""
        x = wav[None, None, :]  # (1, 1, N)
        skips = []
        for i, block in enumerate(self.blocks):
            x = block(x)  # (1, C_i, L_i)
            if self.cfg.denseskips and i < len(self.blocks) - 1:
                skips.append(self.denseskips[i](x))  # (1, emb, L_i), pooled once T is known
        frames = x.size(2)
        if self.cfg.rnn_pool:
            x = self.rnn(x.permute(2, 0, 1)).permute(1, 2, 0)  # (1, H, T)
        w = self.W(x)  # (1, emb, T)
        skips = [pool_to(skip, frames) for skip in skips]  # (1, emb, T) each
        y = w
        for skip in skips:
            y = y + skip
        if self.cfg.norm_out:
            y = self.norm_out(y)
        if self.cfg.tanh_out:
            y = torch.tanh(y)
        return [h[0].T for h in skips + [w, y]]


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def side_config(ckpt: str) -> Path | None:
    """``<stem>.cfg`` or ``<file>.cfg`` next to the checkpoint, if one exists."""
    path = Path(ckpt)
    for candidate in (path.with_suffix(".cfg"), path.with_name(path.name + ".cfg")):
        if candidate.is_file():
            return candidate
    return None


def read_config(ckpt: str, model_config) -> tuple[PaseConfig, str]:
    """The model config: ``model_config`` (dict, path or URL), a side file, or the released PASE+.cfg."""
    from .. import download, registry

    if isinstance(model_config, dict):
        return pase_config(model_config, "model_config"), "model_config"
    if model_config is not None:
        source = download.resolve_checkpoint(model_config)
    else:
        source = side_config(ckpt)
        if source is None:  # the released PASE+ config (what the pase_plus entry loads)
            source = download.resolve_checkpoint(registry.REGISTRY["pase_plus"].urls[1])
    try:
        raw = json.loads(Path(source).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointFormatError(f"{source}: not a PASE config (a JSON file like PASE+.cfg): {err}") from err
    return pase_config(raw, str(source)), str(source)


def read_state(ckpt: str) -> dict:
    """The flat state dict of a PASE checkpoint (``FE_e199.ckpt``) or of a trainer's ``{'state_dict': ...}``."""
    obj = ckpt_io.load_checkpoint(ckpt)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]  # PASE's Saver format ({step, state_dict, optimizer}); the rest is training state
    if not isinstance(obj, dict) or not any(str(k).startswith("blocks.") for k in obj):
        raise CheckpointFormatError(f"{ckpt} is {fairseq_convert.describe_format(obj)}, not a PASE checkpoint "
                                    "(a state dict with blocks.*, W.* keys, like FE_e199.ckpt)")
    return obj


def load_weights(model: PASE, state: dict, ckpt: str, config_source: str) -> None:
    """Load ``state`` (the original's key names = ours); BatchNorm counters are optional, anything else strict."""
    own = model.state_dict()
    state = dict(state)
    for key in own:
        if key not in state and key.rsplit(".", 1)[-1] in OPTIONAL_KEYS:
            state[key] = own[key]
    try:
        fairseq_convert.load_state(model, state, ckpt, mapped=True)
    except CheckpointFormatError as err:
        raise CheckpointFormatError(f"{err} (model built from the config {config_source}; if the checkpoint has "
                                    "another architecture, pass its config as extra_conf={'model_config': PATH})"
                                    ) from None


def build(ckpt: str | None, model_config=None, **options) -> PASE:
    """PASE / PASE+ from its checkpoint and ``model_config`` (path, URL or dict; see the module docstring)."""
    if options:
        raise TypeError(f"unknown option(s) for PASE+: {', '.join(sorted(options))} (allowed: model_config)")
    if ckpt is None:
        raise ValueError("PASE+ needs a checkpoint: pass path_or_url (e.g. FE_e199.ckpt)")
    state = read_state(ckpt)
    cfg, config_source = read_config(ckpt, model_config)
    model = PASE(cfg)
    load_weights(model, state, ckpt, config_source)
    return model.eval()
