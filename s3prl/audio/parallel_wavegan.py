"""Parallel WaveGAN vocoders in the format of the ``parallel_wavegan`` package (the original VC task's
vocoders, e.g. its VCC2020 ``pwg_task1``), and Griffin-Lim when there is no vocoder.

A vocoder folder holds what that package's trainer writes: ``checkpoint-<N>steps.pkl`` (a dict whose
``model`` -> ``generator`` is the generator's state dict, weight-normalised convolutions as ``weight_g`` /
``weight_v``), ``config.yml`` (``generator_params``, ``sampling_rate``, ``hop_size``, ``num_mels``, ...) and
``stats.h5`` (``mean`` / ``scale`` of the log-mel features it was trained on; ``stats.npy`` also read).
:func:`load_vocoder` rebuilds the generator (:class:`ParallelWaveGANGenerator`, parameter names the
package's) with the weight norm folded into plain weights, after loading the file safely (tensors only).

Generator: 1x1 conv of a noise signal; the mel features, replication-padded by ``aux_context_window``
frames, pass a conv (kernel ``2 * window + 1``) and an upsampling network (per scale: nearest-neighbour
stretch in time then a (1, 2 * scale + 1) Conv2d, optionally an activation) to the sample rate; residual
blocks (dilated conv -> gated tanh * sigmoid with the features added through a 1x1 conv -> 1x1 to the
residual and to the skip path), dilations ``2 ** (i % layers_per_stack)``; the skips, summed and scaled by
sqrt(1 / layers), go through ReLU -> 1x1 -> ReLU -> 1x1 to the waveform.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..extras import MissingExtraError

ACTIVATIONS = {"ReLU": nn.ReLU, "LeakyReLU": nn.LeakyReLU, "Tanh": nn.Tanh, "ELU": nn.ELU, "PReLU": nn.PReLU}


@dataclass
class PWGConfig:
    """``generator_params`` of a ``config.yml`` (defaults: the package's ``ParallelWaveGANGenerator``)."""

    in_channels: int = 1
    out_channels: int = 1
    kernel_size: int = 3
    layers: int = 30
    stacks: int = 3
    residual_channels: int = 64
    gate_channels: int = 128
    skip_channels: int = 64
    aux_channels: int = 80
    aux_context_window: int = 2
    dropout: float = 0.0
    bias: bool = True
    use_weight_norm: bool = True
    use_causal_conv: bool = False
    upsample_conditional_features: bool = True
    upsample_net: str = "ConvInUpsampleNetwork"
    upsample_params: dict = field(default_factory=lambda: {"upsample_scales": [4, 4, 4, 4]})


class UpsampleNetwork(nn.Module):
    def __init__(self, upsample_scales, nonlinear_activation=None, nonlinear_activation_params=None,
                 interpolate_mode="nearest", freq_axis_kernel_size=1, use_causal_conv=False):
        super().__init__()
        if freq_axis_kernel_size % 2 != 1:
            raise ValueError(f"upsample_params.freq_axis_kernel_size must be odd, got {freq_axis_kernel_size}")
        if nonlinear_activation is not None and nonlinear_activation not in ACTIVATIONS:
            raise ValueError(f"upsample_params.nonlinear_activation {nonlinear_activation!r} is not supported; "
                             f"supported: {sorted(ACTIVATIONS)}")
        self.scales, self.mode, self.causal = list(upsample_scales), interpolate_mode, use_causal_conv
        layers = []
        for scale in self.scales:  # names follow the package: up_layers.<i> (stretches hold no weights)
            layers.append(nn.Identity())
            pad = ((freq_axis_kernel_size - 1) // 2, 2 * scale if use_causal_conv else scale)
            layers.append(nn.Conv2d(1, 1, (freq_axis_kernel_size, 2 * scale + 1), padding=pad, bias=False))
            if nonlinear_activation is not None:
                layers.append(ACTIVATIONS[nonlinear_activation](**(nonlinear_activation_params or {})))
        self.up_layers = nn.ModuleList(layers)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        c = c.unsqueeze(1)  # (B, 1, C, T)
        scales = iter(self.scales)
        for layer in self.up_layers:
            if isinstance(layer, nn.Identity):
                c = F.interpolate(c, scale_factor=(1, next(scales)), mode=self.mode)
            elif isinstance(layer, nn.Conv2d):
                c = layer(c)[..., :c.size(-1)] if self.causal else layer(c)
            else:
                c = layer(c)
        return c.squeeze(1)  # (B, C, T * prod(scales))


class ConvInUpsampleNetwork(nn.Module):
    def __init__(self, upsample_scales, aux_channels=80, aux_context_window=0, use_causal_conv=False, **params):
        super().__init__()
        self.aux_context_window = aux_context_window
        self.causal = use_causal_conv and aux_context_window > 0
        kernel = aux_context_window + 1 if use_causal_conv else 2 * aux_context_window + 1
        self.conv_in = nn.Conv1d(aux_channels, aux_channels, kernel, bias=False)  # the input is padded already
        self.upsample = UpsampleNetwork(upsample_scales, use_causal_conv=use_causal_conv, **params)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        c = self.conv_in(c)
        return self.upsample(c[:, :, :-self.aux_context_window] if self.causal else c)


class ResidualBlock(nn.Module):
    def __init__(self, cfg: PWGConfig, dilation: int):
        super().__init__()
        k = cfg.kernel_size
        if not cfg.use_causal_conv and k % 2 != 1:
            raise ValueError(f"generator_params.kernel_size must be odd for a non-causal generator, got {k}")
        pad = (k - 1) * dilation if cfg.use_causal_conv else (k - 1) // 2 * dilation
        self.causal, self.dropout = cfg.use_causal_conv, cfg.dropout
        self.conv = nn.Conv1d(cfg.residual_channels, cfg.gate_channels, k, padding=pad, dilation=dilation,
                              bias=cfg.bias)
        self.conv1x1_aux = nn.Conv1d(cfg.aux_channels, cfg.gate_channels, 1, bias=False) if cfg.aux_channels > 0 \
            else None
        half = cfg.gate_channels // 2
        self.conv1x1_out = nn.Conv1d(half, cfg.residual_channels, 1, bias=cfg.bias)
        self.conv1x1_skip = nn.Conv1d(half, cfg.skip_channels, 1, bias=cfg.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None):
        h = self.conv(F.dropout(x, self.dropout, self.training))
        h = h[:, :, :x.size(-1)] if self.causal else h
        a, b = h.chunk(2, dim=1)
        if c is not None and self.conv1x1_aux is not None:
            ca, cb = self.conv1x1_aux(c).chunk(2, dim=1)
            a, b = a + ca, b + cb
        h = torch.tanh(a) * torch.sigmoid(b)
        return (self.conv1x1_out(h) + x) * math.sqrt(0.5), self.conv1x1_skip(h)


class ParallelWaveGANGenerator(nn.Module):
    """The generator (without weight norm: weights are folded at loading). ``forward(noise (B, 1, T),
    features (B, aux_channels, T_frames + 2 * aux_context_window)) -> (B, out_channels, T)``."""

    def __init__(self, cfg: PWGConfig):
        super().__init__()
        if cfg.layers % cfg.stacks:
            raise ValueError(f"generator_params: layers ({cfg.layers}) must be a multiple of stacks ({cfg.stacks})")
        self.cfg = cfg
        params = dict(cfg.upsample_params)
        scales = params.get("upsample_scales")
        if not scales:
            raise ValueError("generator_params.upsample_params.upsample_scales is missing")
        self.hop = int(np.prod(scales)) if cfg.upsample_conditional_features else 1
        self.first_conv = nn.Conv1d(cfg.in_channels, cfg.residual_channels, 1)
        if not cfg.upsample_conditional_features:
            self.upsample_net = None
        elif cfg.upsample_net == "ConvInUpsampleNetwork":
            self.upsample_net = ConvInUpsampleNetwork(aux_channels=cfg.aux_channels,
                                                      aux_context_window=cfg.aux_context_window,
                                                      use_causal_conv=cfg.use_causal_conv, **params)
        elif cfg.upsample_net == "UpsampleNetwork":
            self.upsample_net = UpsampleNetwork(use_causal_conv=cfg.use_causal_conv, **params)
        else:
            raise ValueError(f"generator_params.upsample_net {cfg.upsample_net!r} is not supported "
                             "(ConvInUpsampleNetwork or UpsampleNetwork)")
        per_stack = cfg.layers // cfg.stacks
        self.conv_layers = nn.ModuleList([ResidualBlock(cfg, 2 ** (i % per_stack)) for i in range(cfg.layers)])
        self.last_conv_layers = nn.ModuleList([nn.ReLU(), nn.Conv1d(cfg.skip_channels, cfg.skip_channels, 1),
                                               nn.ReLU(), nn.Conv1d(cfg.skip_channels, cfg.out_channels, 1)])

    def forward(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        if c is not None and self.upsample_net is not None:
            c = self.upsample_net(c)  # (B, aux, T)
            if c.size(-1) != z.size(-1):
                raise ValueError(f"the features give {c.size(-1)} samples but the noise has {z.size(-1)}")
        x, skips = self.first_conv(z), 0
        for block in self.conv_layers:
            x, s = block(x, c)
            skips = skips + s
        x = skips * math.sqrt(1.0 / len(self.conv_layers))
        for layer in self.last_conv_layers:
            x = layer(x)
        return x


class Vocoder(nn.Module):
    """A loaded Parallel WaveGAN: ``generator``, the feature statistics and the rates of ``config.yml``."""

    def __init__(self, generator: ParallelWaveGANGenerator, mean: torch.Tensor, scale: torch.Tensor, config: dict):
        super().__init__()
        self.generator = generator.eval()
        self.register_buffer("mean", mean.float())
        self.register_buffer("scale", scale.float())
        self.sample_rate = int(config.get("sampling_rate", 24000))
        self.hop = generator.hop
        self.num_mels = generator.cfg.aux_channels
        self.config = config

    @torch.no_grad()
    def forward(self, mel: torch.Tensor, noise: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
        """Waveform (frames * hop,) of log-mel frames (frames, num_mels) as the task computes them (not
        normalised: the vocoder's statistics are applied here, as ``parallel-wavegan-normalize`` does).
        ``noise`` (frames * hop,) is the generator's input; by default Gaussian noise drawn from ``seed``."""
        if mel.dim() != 2 or mel.size(1) != self.num_mels:
            raise ValueError(f"the vocoder takes (frames, {self.num_mels}) log-mel features, got {tuple(mel.shape)}")
        device = self.mean.device
        c = ((mel.to(device).float() - self.mean) / self.scale).transpose(0, 1)[None]  # (1, bins, frames)
        pad = self.generator.cfg.aux_context_window
        c = F.pad(c, (pad, pad), mode="replicate") if pad else c
        if noise is None:
            noise = torch.randn(mel.size(0) * self.hop, generator=torch.Generator().manual_seed(seed))
        return self.generator(noise.to(device).float()[None, None], c).view(-1)


def fold_weight_norm(state: dict) -> dict:
    """Plain weights from weight-normalised ones: ``w = g * v / ||v||`` (norm over all but the first dim),
    for both ``weight_g``/``weight_v`` and ``parametrizations.weight.original0/1`` names."""
    out = {}
    for key, value in state.items():
        for g_suffix, v_suffix in (("weight_g", "weight_v"), ("parametrizations.weight.original0",
                                                             "parametrizations.weight.original1")):
            if key.endswith(v_suffix):
                break
            if key.endswith(g_suffix):
                base = key[:-len(g_suffix)]
                v = state.get(base + v_suffix)
                if v is None:
                    raise ValueError(f"{key} has no matching {base + v_suffix}")
                norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
                out[base + "weight"] = value * v / norm
                break
        else:
            out[key] = value
    return out


def _read_config(path: Path) -> dict:
    import yaml

    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not a readable YAML file ({err})") from err
    if not isinstance(config, dict) or "generator_params" not in config:
        raise ValueError(f"{path}: no generator_params: not a parallel_wavegan config.yml")
    return config


def _read_stats(folder: Path, config: dict, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    h5, npy = folder / "stats.h5", folder / "stats.npy"
    if h5.is_file():
        try:
            import h5py
        except ImportError as err:
            raise MissingExtraError(f"reading {h5} needs h5py: pip install 's3prl[hdf5]' (or 's3prl[vc]')") from err
        with h5py.File(h5, "r") as f:
            if "mean" not in f or "scale" not in f:
                raise ValueError(f"{h5}: expected datasets 'mean' and 'scale', found {sorted(f.keys())}")
            mean, scale = np.asarray(f["mean"][()]).reshape(-1), np.asarray(f["scale"][()]).reshape(-1)
    elif npy.is_file():
        stats = np.load(npy, allow_pickle=False)
        mean, scale = stats[0].reshape(-1), stats[1].reshape(-1)
    else:
        raise FileNotFoundError(f"no stats.h5 or stats.npy in {folder}: a Parallel WaveGAN folder holds the "
                                "feature statistics its generator was trained with next to the checkpoint")
    if mean.shape != (bins,) or scale.shape != (bins,):
        raise ValueError(f"the statistics in {folder} have {mean.shape[0]} / {scale.shape[0]} values for a "
                         f"generator of {bins} mel bins")
    return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(scale.astype(np.float32))


def find_checkpoint(path: str | Path) -> Path:
    """The checkpoint itself, or a folder's newest ``*.pkl`` (the original's decode script's choice)."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.pkl"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise FileNotFoundError(f"no *.pkl checkpoint in {path} (a Parallel WaveGAN folder holds "
                                    "checkpoint-<N>steps.pkl, config.yml and stats.h5)")
        return found[-1]
    if not path.is_file():
        raise FileNotFoundError(f"no such vocoder checkpoint: {str(path)!r}")
    return path


def load_vocoder(path: str | Path, device: str | torch.device = "cpu") -> Vocoder:
    """A Parallel WaveGAN vocoder from a ``parallel_wavegan`` checkpoint (or its folder) with ``config.yml``
    and ``stats.h5`` beside it. Any other format is refused with a message saying what was found."""
    ckpt = find_checkpoint(path)
    config_path = ckpt.parent / "config.yml"
    if not config_path.is_file():
        raise FileNotFoundError(f"no config.yml next to {ckpt}: a parallel_wavegan checkpoint is read with the "
                                "config.yml its trainer wrote in the same folder")
    config = _read_config(config_path)
    kind = config.get("generator_type", "ParallelWaveGANGenerator")
    if kind != "ParallelWaveGANGenerator":
        raise ValueError(f"{config_path}: generator_type {kind!r} is not supported; only Parallel WaveGAN "
                         "(ParallelWaveGANGenerator) vocoders load here, or use Griffin-Lim (no vocoder)")
    params = dict(config["generator_params"])
    unknown = sorted(set(params) - {f.name for f in fields(PWGConfig)})
    if unknown:
        raise ValueError(f"{config_path}: unknown generator_params {unknown}")
    cfg = PWGConfig(**params)
    if cfg.out_channels != 1 or cfg.in_channels != 1:
        raise ValueError(f"{config_path}: in/out_channels {cfg.in_channels}/{cfg.out_channels}: only single-band "
                         "Parallel WaveGAN generators (1 in, 1 out) are supported")
    try:
        data = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as err:  # a pickle of arbitrary objects, or not a torch file at all
        raise ValueError(f"{ckpt}: not a parallel_wavegan checkpoint readable as tensors ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''})") from err
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict) or "generator" not in data["model"]:
        found = sorted(data.keys()) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{ckpt}: not a parallel_wavegan checkpoint (expected a dict with model -> generator, "
                         f"as its trainer saves); found {found}")
    generator = ParallelWaveGANGenerator(cfg)
    state = fold_weight_norm(data["model"]["generator"])
    missing, unexpected = [sorted(set(a) - set(b)) for a, b in ((generator.state_dict(), state),
                                                                 (state, generator.state_dict()))]
    if missing or unexpected:
        raise ValueError(f"{ckpt}: the generator weights do not match {config_path}'s generator_params "
                         f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    try:
        generator.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{ckpt}: weight shapes do not match {config_path}: {str(err).splitlines()[-1]}") from err
    mean, scale = _read_stats(ckpt.parent, config, cfg.aux_channels)
    return Vocoder(generator, mean, scale, config).to(device)


def griffin_lim_vocoder(mel: torch.Tensor, sample_rate: int = 24000, n_fft: int = 1024, hop: int = 256,
                        fmin: float = 80.0, fmax: float | None = 7600.0, n_iter: int = 64, seed: int = 0,
                        win_length: int | None = None) -> torch.Tensor:
    """The checkpoint-free fallback (the original's dev/test audio): log-mel -> linear magnitude through the
    filters' pseudo-inverse -> Griffin-Lim (``n_iter`` 64 as the original's ``gl_iters``)."""
    from .mel import griffin_lim, mel_to_linear

    spec = mel_to_linear(mel, sample_rate, n_fft, fmin, fmax)
    return griffin_lim(spec, n_fft, hop, win_length, n_iter=n_iter, seed=seed)
