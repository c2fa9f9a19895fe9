"""LightHuBERT: a once-for-all HuBERT supernet, used through one of its subnets.

A checkpoint ``{'cfg': {'model': {...}}, 'model': state_dict}`` holds the whole supernet (12 layers of the
supernet width). The original slices weights at run time for the chosen subnet; here the subnet is
configuration: the checkpoint is sliced once at load time into a plain model of the subnet's size,
built from the wav2vec 2.0 blocks. The subnet the original picks:

* ``_name == 'student_hubert'``: the supernet type's ``max_subnet``;
* ``_name == 'hubert_pruner'``: the supernet type's pruned ``subnet`` (the type comes from
  ``pruner_supernet``'s file name, ``...small.yaml`` / ``...base.yaml``).

``subnet=`` (the original's dict: ``embed_dim``, ``layer_num``, per-layer ``heads_num``, ``atten_dim``,
``ffn_embed``, ``slide_wsz``) selects another subnet. Slicing rules, as the original's: every weight keeps
its leading rows / columns, except the FFN, whose supernet hidden units form ``ffn // embed`` equal
blocks from each of which the subnet keeps a prefix; the positional conv is weight-normalised over the
whole supernet kernel before it is sliced; ``layer_num < 12`` keeps the layers of a fixed depth map.

The waveform is always layer-normalised per utterance. Hidden states, as the original's: the projected
CNN features (before the positional conv), then the output of every kept layer (no final LayerNorm).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint as ckpt_io
from ..convert import config as config_io
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointFormatError
from .wav2vec2 import (FeatureExtractor, Packing, SelfAttention, TransformerLayer, Wav2Vec2Config,
                       activation_fn, lengths_to_mask)

HEAD_DIM = 64  # fixed by LightHuBERT: atten_dim = heads * 64
# Which of the 12 supernet layers a subnet of `layer_num` layers keeps (the original's depth maps).
DEPTH_MAPS = {
    6: [1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0],
    7: [1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 0, 0],
    8: [1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 0],
    9: [1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0],
    10: [1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0],
    11: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0],
    12: [1] * 12,
}
# The original's search spaces: the largest value of each dimension gives `max_subnet`.
MAX_SUBNET = {"base": (768, 12, 4.0, 12), "small": (512, 8, 4.0, 12)}  # embed, heads, ffn ratio, layers
PRUNED_SUBNET = {"base": (640, 10, 2560), "small": (384, 6, 1536)}  # embed, heads, ffn (12 layers)
DEFAULTS = {  # LightHuBERTConfig defaults for the architecture keys
    "supernet_type": "base", "extractor_mode": "layer_norm", "encoder_layers": 12, "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072, "encoder_attention_heads": 12, "activation_fn": "gelu",
    "layer_type": "transformer", "layer_norm_first": False, "conv_bias": False, "conv_pos": 128,
    "conv_pos_groups": 16, "pos_conv_depth": 1, "feature_grad_mult": 1.0,
    "conv_feature_layers": "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2",
}
DROP = [r"mask_emb", r"label_embs_concat", r"final_proj\..+", r"layer_pred_heads\..+"]


def table_subnet(kind: str, supernet_type: str) -> dict:
    """The original's ``max_subnet`` / ``subnet`` of a supernet type, in its dict format."""
    if kind == "max":
        embed, heads, ratio, layers = MAX_SUBNET[supernet_type]
        ffn = int(ratio * embed)
    else:
        (embed, heads, ffn), layers = PRUNED_SUBNET[supernet_type], 12
    return {"atten_dim": [heads * HEAD_DIM] * layers, "embed_dim": embed, "ffn_embed": [ffn] * layers,
            "heads_num": [heads] * layers, "layer_num": layers, "slide_wsz": ["global"] * layers}


@dataclass
class LightHuBERTConfig:
    """The supernet (as stored) and the subnet it is sliced to."""

    conv: Wav2Vec2Config  # feature extractor settings (conv_layers, extractor_mode, conv_bias)
    supernet_embed: int
    supernet_ffn: int
    embed_dim: int  # the subnet's width
    kept_layers: list[int]  # supernet layer indices that run
    heads: list[int]  # per kept layer
    ffn_dims: list[int]  # per kept layer
    conv_pos: int = 128
    conv_pos_groups: int = 16
    layer_norm_first: bool = False
    activation: str = "gelu"
    feature_grad_mult: float = 1.0  # gradient scale into the CNN (0: frozen)
    extra: dict = field(default_factory=dict)


def subnet_config(model_cfg: dict, subnet: dict | None, source: str) -> LightHuBERTConfig:
    """Checkpoint model config (+ the subnet) -> LightHuBERTConfig, with the original's subnet choice."""
    get = config_io.Settings(model_cfg, DEFAULTS, source)
    name = model_cfg.get("_name")
    if name not in ("student_hubert", "hubert_pruner"):
        raise CheckpointFormatError(f"{source}: cfg.model._name is {name!r}; LightHuBERT checkpoints are "
                                    "'student_hubert' or 'hubert_pruner'")
    supernet_type = get.str("supernet_type").lower()
    if name == "hubert_pruner":
        pruner = str(model_cfg.get("pruner_supernet", "")).lower()
        for kind in ("small", "base"):  # the type is read from the pruner's supernet yaml name
            supernet_type = kind if pruner.endswith(f"{kind}.yaml") else supernet_type
    if supernet_type not in MAX_SUBNET:
        raise CheckpointFormatError(f"{source}: supernet_type {supernet_type!r} is not 'base' or 'small'")
    if (get.int("encoder_layers", 1, config_io.MAX_LAYERS) != 12 or get.raw("layer_type") != "transformer"
            or get.int("pos_conv_depth", 1, config_io.MAX_CONV_LAYERS) != 1):
        raise CheckpointFormatError(f"{source}: only 12-layer transformer supernets with one positional conv "
                                    "exist (and are supported)")
    if subnet is None:
        subnet = table_subnet("max" if name == "student_hubert" else "pruned", supernet_type)
    embed, kept, heads, ffns = check_subnet(subnet)
    conv = Wav2Vec2Config(conv_layers=get.conv_layers("conv_feature_layers"),
                          extractor_mode=get.str("extractor_mode", ("default", "layer_norm")),
                          conv_bias=get.bool("conv_bias"))
    return LightHuBERTConfig(
        conv=conv, supernet_embed=get.int("encoder_embed_dim"), supernet_ffn=get.int("encoder_ffn_embed_dim"),
        embed_dim=embed, kept_layers=kept, heads=heads, ffn_dims=ffns, conv_pos=get.int("conv_pos"),
        conv_pos_groups=get.int("conv_pos_groups"), layer_norm_first=get.bool("layer_norm_first"),
        activation=get.str("activation_fn", fairseq_convert.ACTIVATIONS),
        feature_grad_mult=get.float("feature_grad_mult", 0.0, 1e6),
        extra={"name": name, "supernet_type": supernet_type, "subnet": subnet},
    )


def check_subnet(subnet: dict) -> tuple[int, list[int], list[int], list[int]]:
    """Validate a subnet dict; returns (embed_dim, kept supernet layers, heads and FFN dims per kept layer)."""
    need = {"embed_dim", "layer_num", "heads_num", "atten_dim", "ffn_embed"}
    if not isinstance(subnet, dict) or not need <= set(subnet):
        raise ValueError(f"subnet must be a dict with keys {sorted(need)} (and slide_wsz), got {subnet!r}")
    n = int(subnet["layer_num"])
    if n not in DEPTH_MAPS:
        raise ValueError(f"subnet layer_num must be one of {sorted(DEPTH_MAPS)}, got {n}")
    heads, atten, ffns = (list(subnet[k])[:n] for k in ("heads_num", "atten_dim", "ffn_embed"))
    if min(len(heads), len(atten), len(ffns)) < n or any(a != h * HEAD_DIM for a, h in zip(atten, heads)):
        raise ValueError(f"subnet needs {n} entries per layer with atten_dim == heads_num * {HEAD_DIM}: {subnet}")
    if any(w != "global" for w in list(subnet.get("slide_wsz") or ["global"] * n)[:n]):
        raise NotImplementedError("sliding-window attention subnets (slide_wsz != 'global') are not supported")
    kept = [i for i, keep in enumerate(DEPTH_MAPS[n]) if keep]
    return int(subnet["embed_dim"]), kept, [int(h) for h in heads], [int(f) for f in ffns]


# ---------------------------------------------------------------------------------------------
# Modules (subnet-sized; the wav2vec 2.0 layer math with attention width heads * 64)
# ---------------------------------------------------------------------------------------------


class LightAttention(SelfAttention):
    """wav2vec 2.0 self-attention whose q/k/v width (heads * 64) differs from the model width."""

    def __init__(self, embed_dim: int, heads: int, dropout: float = 0.0):
        nn.Module.__init__(self)
        self.num_heads, self.head_dim = heads, HEAD_DIM
        self.qkv = nn.Linear(embed_dim, 3 * heads * HEAD_DIM)
        self.out_proj = nn.Linear(heads * HEAD_DIM, embed_dim)
        self.dropout, self.gru_rel_pos = dropout, False


class LightLayer(TransformerLayer):
    def __init__(self, embed_dim: int, heads: int, ffn_dim: int, cfg: LightHuBERTConfig):
        nn.Module.__init__(self)
        self.attention = LightAttention(embed_dim, heads)
        self.attention_norm = nn.LayerNorm(embed_dim)
        self.fc1 = nn.Linear(embed_dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, embed_dim)
        self.final_norm = nn.LayerNorm(embed_dim)
        self.pre_norm = cfg.layer_norm_first
        self.act = activation_fn(cfg.activation)
        self.dropout, self.act_dropout = 0.0, 0.0


class LightHuBERT(nn.Module):
    """Waveform -> [projected features, output of every kept layer], each (B, T, embed_dim)."""

    def __init__(self, cfg: LightHuBERTConfig):
        super().__init__()
        self.cfg = cfg
        E, conv_dim = cfg.embed_dim, cfg.conv.conv_layers[-1][0]
        self.feature_extractor = FeatureExtractor(cfg.conv)
        self.feature_norm = nn.LayerNorm(conv_dim)
        self.feature_proj = nn.Linear(conv_dim, E) if conv_dim != cfg.supernet_embed else nn.Identity()
        self.pos_conv = nn.Conv1d(E, E, cfg.conv_pos, padding=cfg.conv_pos // 2, groups=cfg.conv_pos_groups)
        self.encoder_norm = nn.LayerNorm(E) if not cfg.layer_norm_first else None  # pre-LN: final LN, no state
        self.layers = nn.ModuleList(LightLayer(E, h, f, cfg) for h, f in zip(cfg.heads, cfg.ffn_dims))

    @property
    def num_layers(self) -> int:
        return 1 + len(self.layers)

    @property
    def hidden_sizes(self) -> list[int]:
        return [self.cfg.embed_dim] * self.num_layers

    @property
    def downsample_rates(self) -> list[int]:
        return [320] * self.num_layers  # what the original declares

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        wavs_len = wavs_len.to(wavs.device)
        wavs = utterance_norm(wavs, wavs_len)
        mult = self.cfg.feature_grad_mult
        with torch.set_grad_enabled(torch.is_grad_enabled() and mult > 0):
            feats, lengths = self.feature_extractor(wavs, wavs_len)  # (B, T, C)
        if feats.requires_grad and mult != 1:  # the original's GradMultiply: identity forward, scaled gradient
            feats = feats * mult + feats.detach() * (1 - mult)
        T = int(lengths.max()) if lengths.numel() else 0
        mask = lengths_to_mask(lengths, T)[:, :, None].to(feats.dtype)
        x = self.feature_proj(self.feature_norm(feats[:, :T])) * mask  # (B, T, E), zeros past each end
        states = [x]
        pos = self.pos_conv(x.transpose(1, 2))  # (B, E, T'), zero-padded like each utterance alone
        if self.cfg.conv_pos % 2 == 0:
            pos = pos[:, :, :-1]
        h = x + F.gelu(pos).transpose(1, 2)
        if self.encoder_norm is not None:
            h = self.encoder_norm(h)
        pack = Packing(lengths, T)
        h = pack.pack(h)  # (N, E)
        for layer in self.layers:
            h, _ = layer(h, pack, None)
            states.append(pack.unpack(h))
        return states, [lengths] * len(states)


def utterance_norm(wavs: torch.Tensor, lengths: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``F.layer_norm(wav, wav.shape)`` of each utterance over its own samples; padding stays 0."""
    mask = lengths_to_mask(lengths, wavs.size(1)).to(wavs.dtype)
    count = lengths.clamp(min=1)[:, None].to(wavs.dtype)
    mean = (wavs * mask).sum(1, keepdim=True) / count
    var = (((wavs - mean) * mask) ** 2).sum(1, keepdim=True) / count
    return (wavs - mean) * torch.rsqrt(var + eps) * mask


# ---------------------------------------------------------------------------------------------
# Checkpoint slicing
# ---------------------------------------------------------------------------------------------


def split_rows(w: torch.Tensor, dim_full: int, splits: int, dim_sub: int, ratio: float) -> torch.Tensor:
    """The original's split slicing along dim 0: ``ceil(ratio)`` blocks of ``dim_full // splits`` rows,
    each contributing a prefix of ``int(dim_sub / ratio)`` rows (the last one what remains)."""
    if splits == 1 or dim_sub == dim_full:
        return w[:dim_sub]
    block, size = dim_full // splits, int(dim_sub / ratio)
    parts = [w[i * block: (i + 1) * block][: min(size, dim_sub - i * size)] for i in range(math.ceil(ratio))]
    return torch.cat(parts, 0)


def slice_state(state: dict, cfg: LightHuBERTConfig, source: str) -> dict:
    """Supernet checkpoint keys -> the subnet model's state dict (every key mapped, dropped or an error)."""
    E, full_e = cfg.embed_dim, cfg.supernet_embed
    splits = max(cfg.supernet_ffn // full_e, 1)
    state = {k: v.float() for k, v in state.items() if isinstance(v, torch.Tensor)}
    out, used = {}, set()

    def take(key):
        if key not in state:
            raise CheckpointFormatError(f"{source}: missing key {key}")
        used.add(key)
        return state[key]

    for key in state:
        new = fairseq_convert._rename(key, fairseq_convert.KEY_MAP[:3])  # conv extractor
        if new is not None:
            out[new] = take(key)
    out["feature_norm.weight"], out["feature_norm.bias"] = take("layer_norm.weight"), take("layer_norm.bias")
    if cfg.conv.conv_layers[-1][0] != full_e:  # the supernet projects the CNN features
        out["feature_proj.weight"] = take("post_extract_proj.weight")[:E]
        out["feature_proj.bias"] = take("post_extract_proj.bias")[:E]
    out.update(pos_conv_weights(state, take, cfg, source))
    if not cfg.layer_norm_first:
        out["encoder_norm.weight"] = take("encoder.layer_norm.weight")[:E]
        out["encoder_norm.bias"] = take("encoder.layer_norm.bias")[:E]
    else:
        used.update({"encoder.layer_norm.weight", "encoder.layer_norm.bias"})  # final LN: in no hidden state
    for j, (i, heads, ffn) in enumerate(zip(cfg.kept_layers, cfg.heads, cfg.ffn_dims)):
        p, q, A, ratio = f"encoder.layers.{i}.", f"layers.{j}.", heads * HEAD_DIM, ffn / E
        out[q + "attention.qkv.weight"] = torch.cat([take(f"{p}self_attn.{n}_proj.weight")[:A, :E] for n in "qkv"])
        out[q + "attention.qkv.bias"] = torch.cat([take(f"{p}self_attn.{n}_proj.bias")[:A] for n in "qkv"])
        out[q + "attention.out_proj.weight"] = take(p + "self_attn.out_proj.weight")[:E, :A]
        out[q + "attention.out_proj.bias"] = take(p + "self_attn.out_proj.bias")[:E]
        for ours, theirs in (("attention_norm", "self_attn_layer_norm"), ("final_norm", "final_layer_norm")):
            out[f"{q}{ours}.weight"] = take(f"{p}{theirs}.weight")[:E]
            out[f"{q}{ours}.bias"] = take(f"{p}{theirs}.bias")[:E]
        out[q + "fc1.weight"] = split_rows(take(p + "fc1.weight")[:, :E], cfg.supernet_ffn, splits, ffn, ratio)
        out[q + "fc1.bias"] = split_rows(take(p + "fc1.bias"), cfg.supernet_ffn, splits, ffn, ratio)
        out[q + "fc2.weight"] = split_rows(take(p + "fc2.weight").t(), cfg.supernet_ffn, splits, ffn, ratio).t()[:E]
        out[q + "fc2.bias"] = take(p + "fc2.bias")[:E]
    skipped = tuple(f"encoder.layers.{i}." for i in range(12) if i not in cfg.kept_layers)
    unknown = [k for k in state if k not in used and not k.startswith(skipped)
               and not any(re.fullmatch(d, k) for d in DROP)]
    if unknown:
        raise CheckpointFormatError(f"{source}: unexpected LightHuBERT checkpoint keys: {unknown[:10]}")
    return out


def pos_conv_weights(state: dict, take, cfg: LightHuBERTConfig, source: str) -> dict:
    """Weight-normalise the supernet's positional conv (norm over all but the kernel axis), then slice."""
    prefix = "encoder.pos_conv.0."
    if prefix + "weight_g" in state:
        g, v = take(prefix + "weight_g"), take(prefix + "weight_v")
    else:
        g = take(prefix + "parametrizations.weight.original0")
        v = take(prefix + "parametrizations.weight.original1")
    weight = v * (g / v.norm(dim=(0, 1), keepdim=True))  # (E_full, E_full / groups, K)
    E, groups = cfg.embed_dim, cfg.conv_pos_groups
    if E % groups:
        raise CheckpointFormatError(f"{source}: subnet width {E} is not divisible by conv_pos_groups={groups}")
    return {"pos_conv.weight": weight[:E, : E // groups].contiguous(), "pos_conv.bias": take(prefix + "bias")[:E]}


def build(ckpt: str | None, subnet: dict | None = None, **options) -> LightHuBERT:
    """Build the subnet the original uses (or ``subnet``) from a LightHuBERT checkpoint."""
    if ckpt is None:
        raise ValueError("LightHuBERT needs a checkpoint: pass path_or_url / ckpt")
    if options:
        raise TypeError(f"unknown option(s) for LightHuBERT: {', '.join(sorted(options))} (it takes subnet)")
    obj = ckpt_io.load_checkpoint(ckpt)
    if not (isinstance(obj, dict) and isinstance(obj.get("cfg"), dict) and isinstance(obj["cfg"].get("model"), dict)
            and isinstance(obj.get("model"), dict)):
        raise CheckpointFormatError(f"{ckpt} is {fairseq_convert.describe_format(obj)}, not a LightHuBERT "
                                    "checkpoint ({'cfg': {'model': ...}, 'model': state_dict})")
    cfg = subnet_config(obj["cfg"]["model"], subnet, ckpt)
    config_io.require_tensors(obj["model"], ckpt)
    config_io.check_model_size(config_io.conv_parameters(cfg.conv.conv_layers), obj["model"], ckpt)
    conv_dim = cfg.conv.conv_layers[-1][0]
    if conv_dim == cfg.supernet_embed and cfg.embed_dim != conv_dim:
        raise CheckpointFormatError(f"{ckpt}: this supernet has no feature projection, so its subnets keep width "
                                    f"{conv_dim}; subnet width {cfg.embed_dim} is impossible")
    model = LightHuBERT(cfg)
    fairseq_convert.load_state(model, slice_state(obj["model"], cfg, ckpt), ckpt, mapped=True)
    return model.eval()
