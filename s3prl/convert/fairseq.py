"""Importers for the wav2vec 2.0 family: fairseq-style checkpoints -> (Wav2Vec2Config, our state dict).

Formats read (all without fairseq installed):
* s3prl-converted ``{task_cfg, model_cfg, model_weight[, dictionaries_symbols]}`` (wav2vec2, HuBERT, data2vec);
* raw fairseq ``{cfg: {task, model, ...}, model}`` (newer) or ``{args: Namespace, model}`` (older);
* Microsoft WavLM / UniSpeech-SAT ``{cfg: flat model config, model}``;
* HuggingFace folders (``config.json`` + weights), delegated to ``convert.huggingface``.

Every checkpoint key is either mapped onto our model or named in a drop list; anything else raises.
"""

from __future__ import annotations

import ast
import os
import re

import torch

from .errors import CheckpointFormatError

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


def parse_conv_layers(spec) -> tuple[tuple[int, int, int], ...]:
    """Evaluate fairseq's ``conv_feature_layers`` string safely (list/tuple literals, + and * only)."""
    if not isinstance(spec, str):
        return tuple(tuple(int(v) for v in layer) for layer in spec)

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [ev(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = ev(node.left), ev(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise ValueError(f"unsupported element in conv_feature_layers {spec!r}")

    layers = ev(ast.parse(spec, mode="eval"))
    return tuple((int(c), int(k), int(s)) for c, k, s in layers)


def config_from_fairseq(model_cfg: dict, normalize: bool, source: str):
    """fairseq / WavLM model config dict -> Wav2Vec2Config (unknown training-only keys are ignored)."""
    from ..upstream.wav2vec2 import Wav2Vec2Config

    get = lambda key: model_cfg.get(key) if model_cfg.get(key) is not None else FAIRSEQ_DEFAULTS[key]  # noqa: E731
    for key, ok in UNSUPPORTED.items():
        if model_cfg.get(key, ok) != ok:
            raise CheckpointFormatError(f"{source}: model option {key}={model_cfg[key]!r} is not supported")
    return Wav2Vec2Config(
        conv_layers=parse_conv_layers(get("conv_feature_layers")),
        extractor_mode=str(get("extractor_mode")),
        conv_bias=bool(get("conv_bias")),
        embed_dim=int(get("encoder_embed_dim")),
        ffn_dim=int(get("encoder_ffn_embed_dim")),
        num_layers=int(get("encoder_layers")),
        num_heads=int(get("encoder_attention_heads")),
        activation=str(get("activation_fn")),
        layer_norm_first=bool(get("layer_norm_first")),
        conv_pos=int(get("conv_pos")),
        conv_pos_groups=int(get("conv_pos_groups")),
        pos_conv_depth=int(get("pos_conv_depth")),
        layer_type=str(get("layer_type")),
        pos_enc_type=str(get("pos_enc_type")),
        depthwise_conv_kernel_size=int(get("depthwise_conv_kernel_size")),
        relative_position_embedding=bool(get("relative_position_embedding")),
        num_buckets=int(get("num_buckets")),
        max_distance=int(get("max_distance")),
        gru_rel_pos=bool(get("gru_rel_pos")),
        crop_seq_to_multiple=int(get("crop_seq_to_multiple")),
        normalize_waveform=bool(normalize),
        dropout=float(get("dropout")),
        attention_dropout=float(get("attention_dropout")),
        activation_dropout=float(get("activation_dropout")),
        extra={"name": model_cfg.get("_name"), "source": source},
    )


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
    """Any wav2vec 2.0-family format -> (Wav2Vec2Config, state dict with the checkpoint's key names)."""
    if isinstance(obj, str) and os.path.isdir(obj):
        from . import huggingface

        return huggingface.load_folder(obj)
    if not isinstance(obj, dict):
        raise CheckpointFormatError(f"{source} is {describe_format(obj)}, not a wav2vec 2.0-family checkpoint")
    if {"task_cfg", "model_cfg", "model_weight"} <= set(obj):  # s3prl-converted
        task_cfg = _as_dict(obj["task_cfg"])
        return config_from_fairseq(_as_dict(obj["model_cfg"]), task_cfg.get("normalize", False), source), dict(
            obj["model_weight"]
        )
    if "model" in obj and ("cfg" in obj or "args" in obj):
        cfg = _as_dict(obj["cfg"] if obj.get("cfg") is not None else obj["args"])
        if "model" in cfg and isinstance(cfg["model"], dict):  # raw fairseq, hydra layout
            model_cfg, task_cfg = _as_dict(cfg["model"]), _as_dict(cfg.get("task") or {})
            if "w2v_args" in model_cfg or "w2v_path" in model_cfg:
                raise CheckpointFormatError(
                    f"{source} is a fine-tuned fairseq model (Wav2Vec2Ctc/Seq2Seq): pass the pre-trained checkpoint"
                )
            return config_from_fairseq(model_cfg, task_cfg.get("normalize", False), source), dict(obj["model"])
        # WavLM / UniSpeech-SAT: one flat dict; old fairseq `args`: one flat Namespace
        return config_from_fairseq(cfg, cfg.get("normalize", False), source), dict(obj["model"])
    raise CheckpointFormatError(f"{source} is {describe_format(obj)}, not a wav2vec 2.0-family checkpoint")


def _rename(key: str, table) -> str | None:
    for pattern, repl in table:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, repl, key)
    return None


def map_state(state: dict, cfg) -> dict:
    """Checkpoint key names -> our key names; q/k/v projections are fused into one matrix."""
    table = list(KEY_MAP)
    if cfg.layer_type == "conformer":
        from ..upstream.conformer import CONFORMER_KEY_MAP

        table += CONFORMER_KEY_MAP
        drop = DROP + [r"encoder\.pos_conv\..+"]  # built but never used by conformer encoders
    else:
        table += POS_CONV_STACK if cfg.pos_conv_depth > 1 else POS_CONV_SINGLE
        drop = list(DROP)
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
        raise CheckpointFormatError(f"unexpected checkpoint keys (not mapped, not known to be unused): {unknown[:10]}")
    for (layer, kind), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise CheckpointFormatError(f"layer {layer}: incomplete q/k/v {kind} projections ({sorted(parts)})")
        out[f"encoder.layers.{layer}.attention.qkv.{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def load_state(model: torch.nn.Module, state: dict, source: str, mapped: bool = False) -> None:
    """Strictly load a checkpoint state (checkpoint names unless ``mapped``) into ``model``."""
    if not mapped:
        state = map_state(state, model.cfg)
    own = model.state_dict()
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
