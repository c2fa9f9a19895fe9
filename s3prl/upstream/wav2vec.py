"""wav2vec (v1) and vq-wav2vec: a conv feature encoder (stride 160) and a causal conv context network.

vq-wav2vec inserts a quantizer (Gumbel-softmax or k-means codebooks) between the two; its code words feed
the context network.

Hidden states, as the original hooks define them: the feature encoder output ``z`` (before quantization),
the input of every context conv but the first (= the output of the previous one, after its skip
connection), then the context network output ``c``; 13 states for the released models.

Exactness: every norm here (GroupNorm with one group, the k-means projection's GroupNorm) averages over
the whole time axis, and the original has no padding mask, so its outputs depend on the padding of the
batch. Each utterance runs on its own samples instead: that is the original at batch size 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint as ckpt_io
from ..convert import fairseq as fairseq_convert
from ..convert import config as config_io
from ..convert.errors import CheckpointConfigError, CheckpointFormatError
from ..convert.keys import rename_keys
from .wav2vec2 import conv_output_lengths

# Defaults of the original's converted-checkpoint config (fairseq's Wav2VecConfig dataclass).
CONFIG_DEFAULTS = {
    "conv_feature_layers": "[(512, 10, 5), (512, 8, 4)] + [(512, 4, 2)] * 3 + [(512, 1, 1)] * 3",
    "conv_aggregator_layers": str([(512, k, 1) for k in range(2, 14)]),
    "log_compression": True,
    "skip_connections_feat": False,
    "skip_connections_agg": True,
    "residual_scale": 0.5,
    "non_affine_group_norm": False,
    "no_conv_bias": False,
    "agg_zero_pad": False,
    "activation": "relu",
    "aggregator": "cnn",
    "vq_type": "none",
    "vq_vars": 320,
    "vq_groups": 2,
    "vq_dim": 0,
    "vq_depth": 1,
    "combine_groups": False,
}
# Old fairseq files keep an argparse ``args``; fairseq (and the original's legacy expert) fill the missing
# ones with ``base_wav2vec_architecture``, whose defaults differ from the dataclass above.
ARGS_DEFAULTS = dict(
    CONFIG_DEFAULTS,
    conv_feature_layers="[(512, 10, 5)] + [(512, 8, 4)] + [(512, 4, 2)] * 3",
    conv_aggregator_layers="[(512, 3, 1)] * 9",
    log_compression=False,
    skip_connections_agg=False,
)

# Stored tensors that only feed the pre-training loss.
DROP = [r"wav2vec_predictions\..+", r"project_features\..+"]

KEY_MAP = [
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.weight", r"feature_extractor.layers.\1.conv.weight"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.(weight|bias)", r"feature_extractor.layers.\1.norm.\2"),
    (r"feature_aggregator\.conv_layers\.(\d+)\.1\.(weight|bias)", r"aggregator.layers.\1.block.conv.\2"),
    (r"feature_aggregator\.conv_layers\.(\d+)\.3\.(weight|bias)", r"aggregator.layers.\1.block.norm.\2"),
    (r"feature_aggregator\.residual_proj\.(\d+)\.weight", r"aggregator.layers.\1.residual_proj.weight"),
    (r"vector_quantizer\.vars", r"quantizer.vars"),
    (r"vector_quantizer\.weight_proj\.(weight|bias)", r"quantizer.proj.0.\1"),
    (r"vector_quantizer\.weight_proj\.(\d+)\.0\.(weight|bias)", r"quantizer.proj.\1.\2"),
    (r"vector_quantizer\.weight_proj\.(\d+)\.(weight|bias)", r"quantizer.proj.\1.\2"),
    (r"vector_quantizer\.embedding", r"quantizer.embedding"),
    (r"vector_quantizer\.projection\.0\.weight", r"quantizer.proj.weight"),
    (r"vector_quantizer\.projection\.1\.(weight|bias)", r"quantizer.norm.\1"),
]


@dataclass
class Wav2VecConfig:
    """Architecture of wav2vec / vq-wav2vec (shapes and structural switches only)."""

    conv_layers: tuple[tuple[int, int, int], ...]  # feature encoder (channels, kernel, stride)
    agg_layers: tuple[tuple[int, int, int], ...]  # context network, stride 1, causal
    log_compression: bool = True
    skip_connections_feat: bool = False
    skip_connections_agg: bool = True
    residual_scale: float = 0.5  # residual sums are scaled by sqrt(residual_scale)
    affine_norm: bool = True
    agg_conv_bias: bool = True
    agg_zero_pad: bool = False  # left padding with zeros instead of repeating the first frame
    activation: str = "relu"
    vq_type: str = "none"  # "none", "gumbel" or "kmeans"
    vq_vars: int = 320
    vq_groups: int = 2
    vq_depth: int = 1  # Gumbel: layers of the logit projection
    combine_groups: bool = False  # one codebook shared by all groups
    extra: dict = field(default_factory=dict)  # informational (source)

    @property
    def downsample_rate(self) -> int:
        return math.prod(stride for _, _, stride in self.conv_layers)

    @property
    def embed_dim(self) -> int:
        return self.conv_layers[-1][0]


def activation_fn(name: str):
    if name not in ("relu", "gelu"):
        raise CheckpointFormatError(f"unknown wav2vec activation {name!r} (relu or gelu)")
    return F.relu if name == "relu" else F.gelu


def group_norm(norm: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    """fairseq's Fp32GroupNorm: statistics in float32 whatever the input dtype."""
    out = F.group_norm(x.float(), norm.num_groups, None if norm.weight is None else norm.weight.float(),
                       None if norm.bias is None else norm.bias.float(), norm.eps)
    return out.type_as(x)


class ConvBlock(nn.Module):
    """conv -> GroupNorm(1 group: over channels and time) -> activation."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, bias: bool, cfg: Wav2VecConfig):
        super().__init__()
        self.conv = nn.Conv1d(in_ch, out_ch, kernel, stride=stride, bias=bias)
        self.norm = nn.GroupNorm(1, out_ch, affine=cfg.affine_norm)
        self.act = activation_fn(cfg.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (1, C, T)
        return self.act(group_norm(self.norm, self.conv(x)))


class FeatureExtractor(nn.Module):
    def __init__(self, cfg: Wav2VecConfig):
        super().__init__()
        chans = [1] + [c for c, _, _ in cfg.conv_layers]
        self.layers = nn.ModuleList(
            ConvBlock(chans[i], c, k, s, False, cfg) for i, (c, k, s) in enumerate(cfg.conv_layers))
        self.skip, self.scale = cfg.skip_connections_feat, math.sqrt(cfg.residual_scale)
        self.log_compression = cfg.log_compression

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(1, samples) -> z (1, C, T)."""
        x = wav[:, None, :]
        for layer in self.layers:
            residual, x = x, layer(x)
            if self.skip and x.size(1) == residual.size(1):
                # the residual is subsampled to the new frame rate, then cropped
                residual = residual[..., :: residual.size(2) // x.size(2)][..., : x.size(2)]
                x = (x + residual) * self.scale
        if self.log_compression:
            x = (x.abs() + 1).log()  # not log1p: the original's op order, for identical rounding
        return x


class ContextLayer(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, cfg: Wav2VecConfig):
        super().__init__()
        self.block = ConvBlock(in_ch, out_ch, kernel, 1, cfg.agg_conv_bias, cfg)
        self.pad, self.zero_pad = kernel - 1, cfg.agg_zero_pad
        skip = cfg.skip_connections_agg
        self.residual_proj = nn.Conv1d(in_ch, out_ch, 1, bias=False) if skip and in_ch != out_ch else None
        self.skip, self.scale = skip, math.sqrt(cfg.residual_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (1, C, T), causal: all padding on the left
        mode = "constant" if self.zero_pad else "replicate"
        out = self.block(F.pad(x, (self.pad, 0), mode=mode))
        if not self.skip:
            return out
        residual = x if self.residual_proj is None else self.residual_proj(x)
        return (out + residual) * self.scale


class Aggregator(nn.Module):
    def __init__(self, cfg: Wav2VecConfig):
        super().__init__()
        chans = [cfg.embed_dim] + [c for c, _, _ in cfg.agg_layers]
        self.layers = nn.ModuleList(ContextLayer(chans[i], c, k, cfg) for i, (c, k, _) in enumerate(cfg.agg_layers))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(1, C, T) -> the inputs of layers 1..N-1, then the output (each (1, C_l, T))."""
        states = []
        for i, layer in enumerate(self.layers):
            if i > 0:
                states.append(x)
            x = layer(x)
        return states + [x]

    def output(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> the context network output c (B, C_N, T) alone."""
        return self.forward(x)[-1]


def _forward_idx(quantizer: nn.Module, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """fairseq's ``vector_quantizer.forward_idx``: z (B, C, T) -> (code words (B, C, T), code ids (B, T, G))."""
    outs = [quantizer(z[b : b + 1]) for b in range(z.size(0))]
    return torch.cat([w for w, _ in outs]), torch.cat([i for _, i in outs])


class GumbelQuantizer(nn.Module):
    """Eval-mode Gumbel VQ: per group, the code word with the largest logit."""

    def __init__(self, cfg: Wav2VecConfig):
        super().__init__()
        dim, groups, n = cfg.embed_dim, cfg.vq_groups, cfg.vq_vars
        self.groups, self.num_vars = groups, n
        self.vars = nn.Parameter(torch.zeros(1, (1 if cfg.combine_groups else groups) * n, dim // groups))
        sizes = [dim] + [dim * 2] * (cfg.vq_depth - 1) + [groups * n]  # inner width: 2 x dim
        self.proj = nn.ModuleList(nn.Linear(sizes[i], sizes[i + 1]) for i in range(cfg.vq_depth))
        self.act = activation_fn(cfg.activation)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (1, C, T) -> code words (1, C, T), code ids (1, T, G)."""
        x = z[0].transpose(0, 1)  # (T, C)
        for i, linear in enumerate(self.proj):
            x = linear(x)
            if i < len(self.proj) - 1:
                x = self.act(x)
        ids = x.view(x.size(0), self.groups, self.num_vars).argmax(-1)  # (T, G)
        book = self.vars[0].view(-1, self.num_vars, self.vars.size(-1))  # (G or 1, V, d)
        words = torch.stack([book[g % book.size(0)][ids[:, g]] for g in range(self.groups)], 1)  # (T, G, d)
        return words.reshape(words.size(0), -1).t()[None], ids[None]

    forward_idx = _forward_idx


class KmeansQuantizer(nn.Module):
    """k-means VQ: grouped 1x1 projection + GroupNorm, then the nearest code word per group (L2)."""

    CHUNK = 64  # frames per distance computation: bounds memory (V x T x G x d floats otherwise)

    def __init__(self, cfg: Wav2VecConfig):
        super().__init__()
        dim, groups = cfg.embed_dim, cfg.vq_groups
        self.groups = groups
        self.embedding = nn.Parameter(torch.zeros(cfg.vq_vars, 1 if cfg.combine_groups else groups, dim // groups))
        self.proj = nn.Conv1d(dim, dim, 1, groups=groups, bias=False)
        self.norm = nn.GroupNorm(groups, dim)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (1, C, T) -> code words (1, C, T), code ids (1, T, G)."""
        ze = group_norm(self.norm, self.proj(z))[0]  # (C, T)
        ze = ze.view(self.groups, -1, ze.size(-1)).permute(2, 0, 1)  # (T, G, d)
        book = self.embedding.expand(-1, self.groups, -1)  # (V, G, d)
        ids = torch.cat([
            (chunk[None] - book[:, None]).norm(dim=-1).argmin(0)  # (V, t, G, d) -> (t, G)
            for chunk in ze.split(self.CHUNK)
        ]) if ze.size(0) else ze.new_zeros(0, self.groups, dtype=torch.long)
        words = torch.stack([book[ids[:, g], g] for g in range(self.groups)], 1)  # (T, G, d)
        return words.reshape(words.size(0), -1).t()[None], ids[None]

    forward_idx = _forward_idx


class Wav2Vec(nn.Module):
    """Waveform -> [z, inputs of context convs 1..N-1, c], each (B, T, D)."""

    def __init__(self, cfg: Wav2VecConfig):
        super().__init__()
        self.cfg = cfg
        self.feature_extractor = FeatureExtractor(cfg)
        quantizers = {"gumbel": GumbelQuantizer, "kmeans": KmeansQuantizer}
        self.quantizer = quantizers[cfg.vq_type](cfg) if cfg.vq_type in quantizers else None
        self.aggregator = Aggregator(cfg)

    # fairseq's attribute names, for the python usage of fairseq's wav2vec README (aliases: no new weights)
    @property
    def feature_aggregator(self):
        """``model.feature_aggregator(z)``: z (B, C, T) from ``model.feature_extractor(wav (B, samples))`` -> c."""
        return self.aggregator.output

    @property
    def vector_quantizer(self) -> nn.Module | None:
        """``model.vector_quantizer.forward_idx(z)`` -> (code words, code ids (B, T, G)); None for wav2vec."""
        return self.quantizer

    @property
    def num_layers(self) -> int:
        return len(self.cfg.agg_layers) + 1

    @property
    def hidden_sizes(self) -> list[int]:
        return [self.cfg.embed_dim] + [c for c, _, _ in self.cfg.agg_layers]

    @property
    def downsample_rates(self) -> list[int]:
        return [self.cfg.downsample_rate] * self.num_layers

    def frame_lengths(self, wavs_len: torch.Tensor) -> torch.Tensor:
        return conv_output_lengths(wavs_len, self.cfg.conv_layers)

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (1, C, T) -> (code words (1, C, T), code ids (1, T, G)); vq-wav2vec only."""
        if self.quantizer is None:
            raise ValueError("this wav2vec model has no quantizer (vq_type='none')")
        return self.quantizer(z)

    def single(self, wav: torch.Tensor) -> list[torch.Tensor]:
        """One unpadded utterance (1, samples) -> its hidden states, each (1, T, D)."""
        z = self.feature_extractor(wav)  # (1, C, T)
        x = self.quantize(z)[0] if self.quantizer is not None else z
        return [h.transpose(1, 2) for h in [z] + self.aggregator(x)]

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        """wavs (B, T) zero-padded, wavs_len (B,) -> (hidden states [(B, T', D)], lengths [(B,)])."""
        wavs_len = wavs_len.to(wavs.device)
        frames = self.frame_lengths(wavs_len)
        T = int(frames.max()) if frames.numel() else 0
        states = [wavs.new_zeros(wavs.size(0), T, d) for d in self.hidden_sizes]
        for b, (n, t) in enumerate(zip(wavs_len.tolist(), frames.tolist())):
            if t == 0:  # shorter than the receptive field: no frame at all
                continue
            for out, h in zip(states, self.single(wavs[b : b + 1, :n])):
                out[b, :t] = h[0]
        return states, [frames] * len(states)

    def legacy_extras(self, states: list[torch.Tensor], lengths: list[torch.Tensor]) -> dict:
        """The original expert's ``z``, ``c``, ``default`` (= c) and, for vq-wav2vec, ``codewords``/``codeids``."""
        extras = {"z": states[0], "c": states[-1], "default": states[-1]}
        if self.quantizer is not None:
            z, frames = states[0], lengths[0]
            words = torch.zeros_like(z)
            ids = torch.zeros(z.size(0), z.size(1), self.cfg.vq_groups, dtype=torch.long, device=z.device)
            for b, t in enumerate(frames.tolist()):
                if t > 0:  # codes of each utterance from its own frames (the k-means norm spans time)
                    w, i = self.quantize(z[b : b + 1, :t].transpose(1, 2))
                    words[b, :t], ids[b, :t] = w[0].t(), i[0]
            extras.update(codewords=words, codeids=ids)
        return extras


# ---------------------------------------------------------------------------------------------
# Checkpoint import
# ---------------------------------------------------------------------------------------------


def config_from_dict(conf: dict, defaults: dict, source: str) -> Wav2VecConfig:
    """fairseq wav2vec model config (dict) -> Wav2VecConfig; training-only keys are ignored. Every value is
    type- and range-checked before anything is built (``CheckpointConfigError`` names the key and file)."""
    get = config_io.Settings(conf, defaults, source)
    if get.raw("aggregator") != "cnn":
        raise CheckpointFormatError(f"{source}: aggregator={get.raw('aggregator')!r} is not supported (only 'cnn', "
                                    "which is also the only one the original s3prl could hook)")
    if get.raw("vq_type") not in ("none", "gumbel", "kmeans"):
        raise CheckpointFormatError(f"{source}: unknown vq_type {get.raw('vq_type')!r} (none, gumbel or kmeans)")
    conv = get.conv_layers("conv_feature_layers")
    agg = get.conv_layers("conv_aggregator_layers")
    if any(stride != 1 for _, _, stride in agg):
        raise CheckpointFormatError(f"{source}: strided context convs are not supported: {agg}")
    vq_dim = get.int("vq_dim", 0)
    if get.raw("vq_type") != "none" and vq_dim not in (0, conv[-1][0]):
        raise CheckpointFormatError(f"{source}: vq_dim={vq_dim} differs from the feature size {conv[-1][0]}")
    groups = get.int("vq_groups")
    if get.raw("vq_type") != "none" and conv[-1][0] % groups:
        raise CheckpointConfigError(source, "vq_groups", groups, f"a divisor of the feature size {conv[-1][0]}")
    return Wav2VecConfig(
        conv_layers=conv, agg_layers=agg,
        log_compression=get.bool("log_compression"),
        skip_connections_feat=get.bool("skip_connections_feat"),
        skip_connections_agg=get.bool("skip_connections_agg"),
        residual_scale=get.float("residual_scale", 0.0, 1e6),
        affine_norm=not get.bool("non_affine_group_norm"),
        agg_conv_bias=not get.bool("no_conv_bias"),
        agg_zero_pad=get.bool("agg_zero_pad"),
        activation=get.str("activation", ("relu", "gelu")),
        vq_type=get.str("vq_type"),
        vq_vars=get.int("vq_vars"),
        vq_groups=groups,
        vq_depth=get.int("vq_depth", 1, config_io.MAX_CONV_LAYERS),
        combine_groups=get.bool("combine_groups"),
        extra={"source": source},
    )


def estimated_parameters(cfg: Wav2VecConfig) -> int:
    """A lower bound of the conv weights of ``Wav2Vec(cfg)`` (feature extractor and context network)."""
    return config_io.conv_parameters(cfg.conv_layers + cfg.agg_layers)


def read_checkpoint(obj, source: str) -> tuple[Wav2VecConfig, dict]:
    """s3prl-converted ``{task_cfg, model_cfg, model_weight}`` or raw fairseq (``cfg`` or ``args``) ->
    (config, state dict with fairseq key names)."""
    if not isinstance(obj, dict):
        raise CheckpointFormatError(f"{source} is {fairseq_convert.describe_format(obj)}, not a wav2vec checkpoint")
    if {"task_cfg", "model_cfg", "model_weight"} <= set(obj):
        conf, defaults, state = fairseq_convert._as_dict(obj["model_cfg"]), CONFIG_DEFAULTS, obj["model_weight"]
    elif "model" in obj and obj.get("cfg") is not None:
        conf, defaults, state = fairseq_convert._as_dict(obj["cfg"]).get("model"), CONFIG_DEFAULTS, obj["model"]
    elif "model" in obj and obj.get("args") is not None:
        conf, defaults, state = fairseq_convert._as_dict(obj["args"]), ARGS_DEFAULTS, obj["model"]
    else:
        raise CheckpointFormatError(f"{source} is {fairseq_convert.describe_format(obj)}, not a wav2vec checkpoint")
    if not isinstance(conf, dict) or not isinstance(state, dict):
        raise CheckpointFormatError(f"{source}: the model config or weights are missing")
    if not any(k.startswith("feature_aggregator.") for k in state):
        kind = "a wav2vec 2.0-family checkpoint (use wav2vec2_custom / hubert_custom / data2vec_custom)" if any(
            k.startswith("encoder.layers.") for k in state) else fairseq_convert.describe_format(obj)
        raise CheckpointFormatError(f"{source} is {kind}, not a wav2vec / vq-wav2vec checkpoint")
    cfg = config_from_dict(conf, defaults, source)
    config_io.require_tensors(state, source)
    config_io.check_model_size(estimated_parameters(cfg), state, source)
    return cfg, dict(state)


def map_state(state: dict) -> dict:
    """fairseq key names -> ours; every key is mapped or in DROP, anything else raises."""
    return rename_keys(state, KEY_MAP, DROP)


def load_model(ckpt: str) -> Wav2Vec:
    """A wav2vec / vq-wav2vec model in eval mode from a converted or raw fairseq checkpoint file."""
    cfg, state = read_checkpoint(ckpt_io.load_checkpoint(ckpt), ckpt)
    model = Wav2Vec(cfg)
    fairseq_convert.load_state(model, map_state(state), ckpt, mapped=True)
    return model.eval()


def build(ckpt: str | None, legacy: bool = False, **options) -> Wav2Vec:
    """Build wav2vec / vq-wav2vec from an s3prl-converted or raw fairseq checkpoint (no fairseq needed)."""
    if options:
        raise TypeError(f"unknown option(s) for wav2vec / vq-wav2vec: {', '.join(sorted(options))}")
    if ckpt is None:
        raise ValueError("wav2vec / vq-wav2vec need a checkpoint: pass path_or_url / ckpt")
    if legacy:
        raise ValueError("legacy=True loaded checkpoints through fairseq in the original; this toolkit reads the "
                         "fairseq file itself: pass it as path_or_url without legacy=True")
    return load_model(ckpt)
