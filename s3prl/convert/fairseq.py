"""Importers for the wav2vec 2.0 family: fairseq-style checkpoints -> (Wav2Vec2Config, our state dict).

Formats read (all without fairseq installed):
* s3prl-converted ``{task_cfg, model_cfg, model_weight[, dictionaries_symbols]}`` (wav2vec2, HuBERT, data2vec);
* raw fairseq ``{cfg: {task, model, ...}, model}`` (newer) or ``{args: Namespace, model}`` (older);
* Microsoft WavLM / UniSpeech-SAT ``{cfg: flat model config, model}``;
* HuggingFace folders (``config.json`` + weights), delegated to ``convert.huggingface``.

Every checkpoint key is either mapped onto our model or named in a drop list; anything else raises.
"""

from __future__ import annotations

import os
import re

import torch

from . import config as config_io
from .errors import CheckpointConfigError, CheckpointFormatError

# fairseq model-config keys that change the architecture, with fairseq's defaults.
FAIRSEQ_DEFAULTS = {
    "extractor_mode": "default",
    "conv_feature_layers": "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] * 2",
    "conv_bias": False,
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "layer_norm_first": False,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "pos_conv_depth": 1,
    "layer_type": "transformer",
    "pos_enc_type": "abs",
    "depthwise_conv_kernel_size": 31,
    "relative_position_embedding": False,
    "num_buckets": 320,
    "max_distance": 1280,
    "gru_rel_pos": False,
    "crop_seq_to_multiple": 1,
    "dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.0,
}

# Switches we do not implement: refuse rather than silently compute something else.
UNSUPPORTED = {"quantize_input": False, "deep_norm": False}

# Stored tensors that feed only pre-training heads, never a hidden state.
DROP = [
    r"mask_emb",
    r"quantizer\..+",
    r"project_q\..+",
    r"final_proj\..+",
    r"label_embs_concat",
    r"target_glu\..+",
    r"_ema",
    r"ema\..+",
]

KEY_MAP = [
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", r"feature_extractor.conv_layers.\1.conv.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.(weight|bias)", r"feature_extractor.conv_layers.\1.norm.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)", r"feature_extractor.conv_layers.\1.norm.\2"),
    (r"layer_norm\.(weight|bias)", r"feature_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"feature_proj.\1"),
    (r"encoder\.layers\.(\d+)\.self_attn\.out_proj\.(weight|bias)", r"encoder.layers.\1.attention.out_proj.\2"),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"encoder.layers.\1.attention_norm.\2"),
    (r"encoder\.layers\.(\d+)\.fc([12])\.(weight|bias)", r"encoder.layers.\1.fc\2.\3"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"encoder.layers.\1.final_norm.\2"),
    (r"encoder\.layers\.(\d+)\.self_attn\.relative_attention_bias\.weight",
     r"encoder.layers.\1.attention.rel_attn_embed.weight"),
    (r"encoder\.layers\.(\d+)\.self_attn\.grep_linear\.(weight|bias)", r"encoder.layers.\1.attention.gate_proj.\2"),
    (r"encoder\.layers\.(\d+)\.self_attn\.grep_a", r"encoder.layers.\1.attention.gate_scale"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
]

POS_CONV_SINGLE = [
    (r"encoder\.pos_conv\.0\.(weight_g|weight_v|bias)", r"encoder.pos_conv.conv.\1"),
    (r"encoder\.pos_conv\.0\.parametrizations\.weight\.original0", "encoder.pos_conv.conv.weight_g"),
    (r"encoder\.pos_conv\.0\.parametrizations\.weight\.original1", "encoder.pos_conv.conv.weight_v"),
]
POS_CONV_STACK = [(r"encoder\.pos_conv\.(\d+)\.0\.(weight|bias)", r"encoder.pos_conv.layers.\1.\2")]

QKV = re.compile(r"encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)")


def parse_conv_layers(spec, source: str = "checkpoint", key: str = "conv_feature_layers"):
    """fairseq's ``conv_feature_layers`` (a list expression string, or a list) -> ``((channels, kernel,
    stride), ...)``, evaluated safely and within bounds (see ``convert.config.parse_conv_layers``)."""
    return config_io.parse_conv_layers(spec, source, key)


ACTIVATIONS = ("gelu", "relu", "swish", "gelu_accurate")


def config_from_fairseq(model_cfg: dict, normalize: bool, source: str):
    """fairseq / WavLM model config dict -> Wav2Vec2Config (unknown training-only keys are ignored).

    Every architecture value is type- and range-checked (``CheckpointConfigError`` names the key and file)."""
    from ..upstream.wav2vec2 import Wav2Vec2Config

    conf = config_io.Settings(model_cfg, FAIRSEQ_DEFAULTS, source)
    for key, ok in UNSUPPORTED.items():
        if model_cfg.get(key, ok) != ok:
            raise CheckpointFormatError(f"{source}: model option {key}={model_cfg[key]!r} is not supported")
    embed, heads = conf.int("encoder_embed_dim"), conf.int("encoder_attention_heads", 1, 1024)
    layer_type = conf.str("layer_type", ("transformer", "conformer"))
    groups = conf.int("conv_pos_groups", 1, config_io.MAX_SIZE)
    if embed % heads:
        raise CheckpointConfigError(source, "encoder_attention_heads", heads,
                                    f"a divisor of encoder_embed_dim={embed}")
    if layer_type == "transformer" and embed % groups:
        raise CheckpointConfigError(source, "conv_pos_groups", groups, f"a divisor of encoder_embed_dim={embed}")
    return Wav2Vec2Config(
        conv_layers=conf.conv_layers("conv_feature_layers"),
        extractor_mode=conf.str("extractor_mode", ("default", "layer_norm")),
        conv_bias=conf.bool("conv_bias"),
        embed_dim=embed,
        ffn_dim=conf.int("encoder_ffn_embed_dim"),
        num_layers=conf.int("encoder_layers", 1, config_io.MAX_LAYERS),
        num_heads=heads,
        activation=conf.str("activation_fn", ACTIVATIONS),
        layer_norm_first=conf.bool("layer_norm_first"),
        conv_pos=conf.int("conv_pos"),
        conv_pos_groups=groups,
        pos_conv_depth=conf.int("pos_conv_depth", 1, config_io.MAX_CONV_LAYERS),
        layer_type=layer_type,
        pos_enc_type=conf.str("pos_enc_type", ("abs", "rel_pos", "rope")),
        depthwise_conv_kernel_size=conf.int("depthwise_conv_kernel_size"),
        relative_position_embedding=conf.bool("relative_position_embedding"),
        num_buckets=conf.int("num_buckets"),
        max_distance=conf.int("max_distance", 1, 2**24),
        gru_rel_pos=conf.bool("gru_rel_pos"),
        crop_seq_to_multiple=conf.int("crop_seq_to_multiple"),
        normalize_waveform=config_io.as_bool(False if normalize is None else normalize, "normalize", source),
        dropout=conf.float("dropout"),
        attention_dropout=conf.float("attention_dropout"),
        activation_dropout=conf.float("activation_dropout"),
        extra={"name": model_cfg.get("_name"), "source": source},
    )


def estimated_parameters(cfg) -> int:
    """A lower bound of the parameter count of ``Wav2Vec2(cfg)`` (conv extractor, attention, FFN, positional
    conv), computed without building it."""
    d = cfg.embed_dim
    pos = d * (d // cfg.conv_pos_groups) * cfg.conv_pos if cfg.layer_type == "transformer" else 0
    return config_io.conv_parameters(cfg.conv_layers) + pos + cfg.num_layers * layer_parameters(cfg)


def layer_parameters(cfg) -> int:
    """A lower bound of one encoder layer's weights (attention projections and FFN)."""
    return 4 * cfg.embed_dim * cfg.embed_dim + 2 * cfg.embed_dim * cfg.ffn_dim


def _as_dict(obj) -> dict:
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "__dict__"):  # argparse.Namespace of old fairseq files
        return dict(vars(obj))
    raise CheckpointFormatError(f"expected a config mapping, got {type(obj).__name__}")


def describe_format(obj) -> str:
    """A short guess of what a loaded checkpoint is, for error messages."""
    if not isinstance(obj, dict):
        return f"a {type(obj).__name__}, not a checkpoint dict"
    keys = set(obj)
    if {"Transformer"} & keys:
        return "an s3prl Mockingjay/TERA/Audio ALBERT checkpoint (use the mockingjay/tera/audio_albert entries)"
    if "Distiller" in keys:
        return "an s3prl DistilHuBERT checkpoint (use distiller_local)"
    if {"config", "model"} <= keys and isinstance(obj.get("config"), dict) and "data" in obj["config"]:
        return "an s3prl APC/VQ-APC/NPC checkpoint (use apc_local / npc_local)"
    return f"a dict with top-level keys {sorted(keys)[:12]}"


def load_any(obj, source: str = "checkpoint"):
    """Any wav2vec 2.0-family format -> (Wav2Vec2Config, state dict with the checkpoint's key names).

    ``source``: the file name, for the error messages."""
    if isinstance(obj, str) and os.path.isdir(obj):
        from . import huggingface

        return huggingface.load_folder(obj)
    cfg, state = _load_fairseq(obj, source)
    check_weight_types(state, key_table(cfg)[0], source)
    config_io.check_model_size(estimated_parameters(cfg), state, source)
    return cfg, state


def _state_dict(value, key: str, source: str) -> dict:
    if not isinstance(value, dict):
        raise CheckpointFormatError(f"{source}: {key!r} is a {type(value).__name__}, expected a dict of tensors")
    return dict(value)


def _load_fairseq(obj, source: str):
    if not isinstance(obj, dict):
        raise CheckpointFormatError(f"{source} is {describe_format(obj)}, not a wav2vec 2.0-family checkpoint")
    if {"task_cfg", "model_cfg", "model_weight"} <= set(obj):  # s3prl-converted
        task_cfg = config_io.as_mapping(obj["task_cfg"] or {}, "task_cfg", source)
        model_cfg = config_io.as_mapping(obj["model_cfg"], "model_cfg", source)
        return (config_from_fairseq(model_cfg, task_cfg.get("normalize", False), source),
                _state_dict(obj["model_weight"], "model_weight", source))
    if "model" in obj and ("cfg" in obj or "args" in obj):
        cfg = config_io.as_mapping(obj["cfg"] if obj.get("cfg") is not None else obj["args"], "cfg", source)
        state = _state_dict(obj["model"], "model", source)
        if "model" in cfg and isinstance(cfg["model"], dict):  # raw fairseq, hydra layout
            model_cfg = _as_dict(cfg["model"])
            task_cfg = config_io.as_mapping(cfg.get("task") or {}, "cfg.task", source)
            if "w2v_args" in model_cfg or "w2v_path" in model_cfg:
                raise CheckpointFormatError(
                    f"{source} is a fine-tuned fairseq model (Wav2Vec2Ctc/Seq2Seq): pass the pre-trained checkpoint"
                )
            return config_from_fairseq(model_cfg, task_cfg.get("normalize", False), source), state
        # WavLM / UniSpeech-SAT: one flat dict; old fairseq `args`: one flat Namespace
        return config_from_fairseq(cfg, cfg.get("normalize", False), source), state
    raise CheckpointFormatError(f"{source} is {describe_format(obj)}, not a wav2vec 2.0-family checkpoint")


def _rename(key: str, table) -> str | None:
    for pattern, repl in table:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, repl, key)
    return None


def key_table(cfg) -> tuple[list, list]:
    """(rename table, drop list) for a configuration."""
    table = list(KEY_MAP)
    if cfg.layer_type == "conformer":
        from ..upstream.conformer import CONFORMER_KEY_MAP

        return table + CONFORMER_KEY_MAP, DROP + [r"encoder\.pos_conv\..+"]  # built but never used by conformers
    return table + (POS_CONV_STACK if cfg.pos_conv_depth > 1 else POS_CONV_SINGLE), list(DROP)


def check_weight_types(state: dict, table, source: str) -> None:
    """A value under the name of a weight we load must be a tensor (checked before anything is built)."""
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) and (QKV.fullmatch(key) or _rename(key, table) is not None):
            raise CheckpointConfigError(source, key, value, "a tensor (a model weight)")


def map_state(state: dict, cfg, source: str = "checkpoint") -> dict:
    """Checkpoint key names -> our key names; q/k/v projections are fused into one matrix."""
    table, drop = key_table(cfg)
    check_weight_types(state, table, source)
    out, qkv, unknown = {}, {}, []
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            if key == "_ema":
                continue
            unknown.append(key)
            continue
        match = QKV.fullmatch(key)
        if match and cfg.layer_type != "conformer":
            layer, which, kind = match.groups()
            qkv.setdefault((layer, kind), {})[which] = value
            continue
        new = _rename(key, table)
        if new is not None:
            out[new] = value
        elif not any(re.fullmatch(p, key) for p in drop):
            unknown.append(key)
    if unknown:
        raise CheckpointFormatError(f"{source}: unexpected checkpoint keys (not mapped, not known to be unused): "
                                    f"{unknown[:10]}")
    for (layer, kind), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise CheckpointFormatError(f"layer {layer}: incomplete q/k/v {kind} projections ({sorted(parts)})")
        out[f"encoder.layers.{layer}.attention.qkv.{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def load_state(model: torch.nn.Module, state: dict, source: str, mapped: bool = False) -> None:
    """Strictly load a checkpoint state (checkpoint names unless ``mapped``) into ``model``."""
    if not mapped:
        state = map_state(state, model.cfg, source)
    own = model.state_dict()
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointConfigError(source, key, value, "a tensor (a model weight)")
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    if missing or extra:
        raise CheckpointFormatError(
            f"{source}: checkpoint does not fit the configured model; missing {missing[:8]}, unexpected {extra[:8]}"
        )
    for key, value in state.items():
        if own[key].shape != value.shape:
            raise CheckpointFormatError(
                f"{source}: {key} has shape {tuple(value.shape)} in the checkpoint, {tuple(own[key].shape)} in the model"
            )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)
