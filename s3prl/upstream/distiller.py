"""DistilHuBERT: a wav2vec 2.0 CNN + a small transformer + heads that predict teacher layers.

Hidden states, as the original: the projected CNN features, the output of every transformer layer, then one
state per prediction head (the released model predicts HuBERT Base layers 4, 8 and 12). ``paper`` (the
representation of the DistilHuBERT paper) is the last transformer layer.
"""

from __future__ import annotations

import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint as ckpt_io
from ..convert import config as config_io
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointConfigError, CheckpointFormatError
from .wav2vec2 import Encoder, FeatureExtractor, Wav2Vec2Config, lengths_to_mask

# DistillerConfig keys and the original's defaults (they differ from fairseq's).
DEFAULTS = {
    "extractor_mode": "default",
    "extractor_conv_feature_layers": "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2",
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "encoder_layers": 1,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "layer_norm_first": False,
    "dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.1,
    "final_dim": 768,
    "out_layer_inter_dim": -1,
    "n_tasks": 12,
    "task_emb_type": "expand-last",
    "out_layer_type": "expand-last",
    "attention_type": "original",
}

HEAD_KEYS = [
    (r"output_layer\.0\.(weight|bias)", r"head_in.\1"),
    (r"output_layer\.2\.(weight|bias)", r"head_out_\1"),
]


class Distiller(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config, n_tasks: int, inter_dim: int, final_dim: int):
        super().__init__()
        self.cfg, self.n_tasks = cfg, n_tasks
        self.feature_extractor = FeatureExtractor(cfg)
        conv_dim = cfg.conv_layers[-1][0]
        self.feature_proj = nn.Linear(conv_dim, cfg.embed_dim) if conv_dim != cfg.embed_dim else nn.Identity()
        self.encoder = Encoder(cfg)
        self.head_in = nn.Linear(cfg.embed_dim, inter_dim * n_tasks)
        self.head_out_weight = nn.Parameter(torch.zeros(n_tasks, inter_dim, final_dim))  # one matrix per head
        self.head_out_bias = nn.Parameter(torch.zeros(1, 1, n_tasks, final_dim))
        self.final_dim = final_dim

    @property
    def num_layers(self) -> int:
        return 1 + self.cfg.num_layers + self.n_tasks

    @property
    def hidden_sizes(self) -> list[int]:
        return [self.cfg.embed_dim] * (1 + self.cfg.num_layers) + [self.final_dim] * self.n_tasks

    @property
    def downsample_rates(self) -> list[int]:
        return [self.cfg.downsample_rate] * self.num_layers

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        wavs_len = wavs_len.to(wavs.device)
        with torch.no_grad():  # the original never trains the CNN of a loaded DistilHuBERT upstream
            feats, lengths = self.feature_extractor(wavs, wavs_len)
        max_len = int(lengths.max())
        x = self.feature_proj(feats[:, :max_len])
        x = x * lengths_to_mask(lengths, max_len)[:, :, None].to(x.dtype)  # (B, T, D)
        layers = self.encoder(x, lengths)  # every layer's output (feature_selection="fairseq_layers")
        top = self.encoder.layer_norm(layers[-1]) if self.cfg.layer_norm_first else layers[-1]
        h = F.gelu(self.head_in(top))  # (B, T, N * inter)
        B, T = h.shape[:2]
        h = h.view(B, T, self.n_tasks, -1)
        heads = torch.einsum("btki,kio->btko", h, self.head_out_weight) + self.head_out_bias  # (B, T, N, final)
        states = [x] + layers + [heads[:, :, k] for k in range(self.n_tasks)]
        return states, [lengths] * len(states)

    def legacy_extras(self, states, lengths) -> dict:
        mask = lengths_to_mask(lengths[0], states[0].size(1)).to(states[0].dtype)
        return {"paper": states[self.cfg.num_layers], "pad_mask": mask}


def config_from_checkpoint(conf: dict, source: str) -> tuple[Wav2Vec2Config, int, int, int]:
    """``Config['distiller']`` -> (encoder config, n_tasks, head inner width, head output width); every value is
    type- and range-checked before anything is built (``CheckpointConfigError`` names the key and file)."""
    get = config_io.Settings(conf, DEFAULTS, source)
    for key in ("task_emb_type", "out_layer_type"):
        if get.raw(key) != "expand-last":
            raise CheckpointFormatError(f"{source}: DistilHuBERT with {key}={get.raw(key)!r} is not supported")
    if get.raw("attention_type") != "original":
        raise CheckpointFormatError(f"{source}: attention_type={get.raw('attention_type')!r} is not supported")
    n_tasks = get.int("n_tasks", 1, config_io.MAX_LAYERS)
    pred_layers = conf.get("pred_layer_id")
    if pred_layers is not None:
        pred_layers = config_io.parse_int_list(pred_layers, source, "pred_layer_id", config_io.MAX_LAYERS, 0,
                                               config_io.MAX_LAYERS)
        if len(pred_layers) != n_tasks:
            raise CheckpointFormatError(f"{source}: pred_layer_id {pred_layers} does not match n_tasks={n_tasks}")
    embed, heads = get.int("encoder_embed_dim"), get.int("encoder_attention_heads", 1, 1024)
    groups = get.int("conv_pos_groups")
    for key, value in (("encoder_attention_heads", heads), ("conv_pos_groups", groups)):
        if embed % value:
            raise CheckpointConfigError(source, key, value, f"a divisor of encoder_embed_dim={embed}")
    cfg = Wav2Vec2Config(
        conv_layers=get.conv_layers("extractor_conv_feature_layers"),
        extractor_mode=get.str("extractor_mode", ("default", "layer_norm")),
        conv_bias=False,
        embed_dim=embed,
        ffn_dim=get.int("encoder_ffn_embed_dim"),
        num_layers=get.int("encoder_layers", 1, config_io.MAX_LAYERS),
        num_heads=heads,
        activation=get.str("activation_fn", fairseq_convert.ACTIVATIONS),
        layer_norm_first=get.bool("layer_norm_first"),
        conv_pos=get.int("conv_pos"),
        conv_pos_groups=groups,
        dropout=get.float("dropout"),
        attention_dropout=get.float("attention_dropout"),
        activation_dropout=get.float("activation_dropout"),
        feature_selection="fairseq_layers",
        extra={"source": source, "pred_layer_id": list(pred_layers or [])},
    )
    inter = get.int("out_layer_inter_dim", -1)
    return cfg, n_tasks, inter if inter > 0 else cfg.embed_dim, get.int("final_dim")


def map_state(state: dict, cfg: Wav2Vec2Config) -> dict:
    heads, rest = {}, {}
    for key, value in state.items():
        for pattern, repl in HEAD_KEYS:
            if re.fullmatch(pattern, key):
                heads[re.sub(pattern, repl, key)] = value
                break
        else:
            rest[key] = value
    return {**fairseq_convert.map_state(rest, cfg), **heads}


def build(ckpt: str | None, model_config: str | None = None, **options) -> Distiller:
    """Build DistilHuBERT from an s3prl distiller checkpoint ``{Distiller, Config, ...}``."""
    if ckpt is None:
        raise ValueError("DistilHuBERT needs a checkpoint: pass path_or_url / ckpt")
    if options:
        raise TypeError(f"unknown option(s) for DistilHuBERT: {', '.join(sorted(options))}")
    if model_config is not None:
        raise ValueError("model_config (load_pretrain / no_grad / permute_input switches) is not supported; "
                         "the checkpoint alone defines the model")
    obj = ckpt_io.load_checkpoint(ckpt)
    if not isinstance(obj, dict) or "Distiller" not in obj or "Config" not in obj:
        raise CheckpointFormatError(f"{ckpt} is {fairseq_convert.describe_format(obj)}, not a DistilHuBERT checkpoint")
    conf = obj["Config"].get("distiller") if isinstance(obj["Config"], dict) else None
    if not isinstance(conf, dict):
        raise CheckpointFormatError(f"{ckpt}: Config['distiller'] is missing")
    cfg, n_tasks, inter, final = config_from_checkpoint(conf, ckpt)
    if not isinstance(obj["Distiller"], dict):
        raise CheckpointFormatError(f"{ckpt}: 'Distiller' is a {type(obj['Distiller']).__name__}, expected a dict "
                                    "of tensors")
    config_io.require_tensors(obj["Distiller"], ckpt)
    heads = n_tasks * (cfg.embed_dim * inter + inter * final)
    config_io.check_model_size(fairseq_convert.estimated_parameters(cfg) + heads, obj["Distiller"], ckpt)
    model = Distiller(cfg, n_tasks, inter, final)
    fairseq_convert.load_state(model, map_state(obj["Distiller"], cfg), ckpt, mapped=True)
    return model.eval()
