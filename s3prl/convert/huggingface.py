"""HuggingFace ``transformers`` folders of the wav2vec 2.0 family, both directions, without ``transformers``.

``load_folder(path) -> (Wav2Vec2Config, state dict)`` reads ``config.json`` (+ ``preprocessor_config.json``)
and the weights (``model.safetensors`` / ``pytorch_model.bin``, possibly sharded with ``*.index.json``) of
the model types wav2vec2, hubert, wavlm, data2vec-audio, unispeech-sat and wav2vec2-conformer, bare
(``Wav2Vec2Model``) or inside a task wrapper (``*ForCTC``, ``*ForPreTraining``, ...). The state dict it
returns uses fairseq key names, so that ``convert.fairseq.map_state`` (q/k/v fusion, conformer keys)
maps it onto our model like any fairseq checkpoint.

``to_huggingface(model) -> (config dict, state dict)`` and ``save_huggingface(model, folder)`` go the other
way, for every configuration HF can express.

Waveform normalisation: the original ``hf_wav2vec2`` / ``hf_hubert`` entries run HF's
``Wav2Vec2FeatureExtractor`` of the folder, i.e. per utterance ``(x - mean) / sqrt(var + 1e-7)`` when
``do_normalize``. A folder without ``preprocessor_config.json`` makes the original fall back to the extractor
of ``facebook/wav2vec2-base`` (or ``facebook/hubert-base-ls960``), which normalises: so does ``load_folder``.

Hidden states: our model returns the L+1 states of the original s3prl, which for these entries returned HF's
``hidden_states`` under transformers 4.x: input of every layer, then the encoder output, the last one *after*
the final LayerNorm for stable-layer-norm (pre-LN) and conformer models. transformers >= 5 returns the last
layer's output *before* that LayerNorm as ``hidden_states[-1]`` (its ``last_hidden_state`` is still after it).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from . import config as config_io
from .errors import CheckpointConfigError, CheckpointFormatError

SUPPORTED = {  # model_type -> key prefix inside the task wrappers (and the class-name prefix)
    "wav2vec2": ("wav2vec2", "Wav2Vec2"),
    "hubert": ("hubert", "Hubert"),
    "wavlm": ("wavlm", "WavLM"),
    "data2vec-audio": ("data2vec_audio", "Data2VecAudio"),
    "unispeech-sat": ("unispeech_sat", "UniSpeechSat"),
    "wav2vec2-conformer": ("wav2vec2_conformer", "Wav2Vec2Conformer"),
}
FALLBACK_DO_NORMALIZE = True  # facebook/wav2vec2-base's and facebook/hubert-base-ls960's extractors normalise
HF_NORMALIZE_EPS = 1e-7  # Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm

ACTIVATIONS = {"gelu": "gelu", "gelu_python": "gelu", "relu": "relu", "swish": "swish", "silu": "swish",
               "gelu_new": "gelu_accurate", "gelu_pytorch_tanh": "gelu_accurate"}

# Tensors of the task heads around the base model (top level of *ForCTC, *ForPreTraining, ...).
HEAD_DROP = [
    r"(lm_head|project_hid|project_q|quantizer|classifier|projector|tdnn|objective|speaker_proj"
    r"|layer_norm_for_extract)\..+",
    r"layer_weights",
    r"label_embeddings_concat",
    r"feature_extractor\.(weight|bias)",  # *ForXVector's linear head (the conv extractor is inside the base)
]
# Tensors of the base model that never reach a hidden state.
BASE_DROP = [
    r"masked_spec_embed",
    r"adapter\..+",  # Wav2Vec2Adapter: applied to last_hidden_state only, never to hidden_states
    r"encoder\.embed_positions\.pe",
]
CONFORMER_DROP = [r"encoder\.pos_conv_embed\..+"]  # built by HF, never used by its conformer encoder

_L = r"encoder\.layers\.(\d+)\."
_F = r"encoder.layers.\1."
HF_TO_FAIRSEQ = [
    (r"feature_extractor\.conv_layers\.(\d+)\.conv\.(weight|bias)", r"feature_extractor.conv_layers.\1.0.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.(weight|bias)", r"feature_extractor.conv_layers.\1.2.\2"),
    (r"feature_projection\.layer_norm\.(weight|bias)", r"layer_norm.\1"),
    (r"feature_projection\.projection\.(weight|bias)", r"post_extract_proj.\1"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (r"encoder\.pos_conv_embed\.conv\.(bias|weight_g|weight_v)", r"encoder.pos_conv.0.\1"),
    (r"encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0", "encoder.pos_conv.0.weight_g"),
    (r"encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1", "encoder.pos_conv.0.weight_v"),
    (r"encoder\.pos_conv_embed\.layers\.(\d+)\.conv\.(weight|bias)", r"encoder.pos_conv.\1.0.\2"),  # data2vec
    (_L + r"attention\.([qkv]|out)_proj\.(weight|bias)", _F + r"self_attn.\2_proj.\3"),
    (_L + r"layer_norm\.(weight|bias)", _F + r"self_attn_layer_norm.\2"),
    (_L + r"feed_forward\.intermediate_dense\.(weight|bias)", _F + r"fc1.\2"),
    (_L + r"feed_forward\.output_dense\.(weight|bias)", _F + r"fc2.\2"),
    (_L + r"final_layer_norm\.(weight|bias)", _F + r"final_layer_norm.\2"),
    (_L + r"attention\.gru_rel_pos_const", _F + r"self_attn.grep_a"),  # WavLM
    (_L + r"attention\.gru_rel_pos_linear\.(weight|bias)", _F + r"self_attn.grep_linear.\2"),
    (_L + r"attention\.rel_attn_embed\.weight", _F + r"self_attn.relative_attention_bias.weight"),
    (_L + r"(ffn[12])_layer_norm\.(weight|bias)", _F + r"\2.layer_norm.\3"),  # conformer
    (_L + r"(ffn[12])\.intermediate_dense\.(weight|bias)", _F + r"\2.w_1.\3"),
    (_L + r"(ffn[12])\.output_dense\.(weight|bias)", _F + r"\2.w_2.\3"),
    (_L + r"self_attn_layer_norm\.(weight|bias)", _F + r"self_attn_layer_norm.\2"),
    (_L + r"self_attn\.(linear_[qkv]|linear_out|linear_pos)\.(weight|bias)", _F + r"self_attn.\2.\3"),
    (_L + r"self_attn\.(pos_bias_[uv])", _F + r"self_attn.\2"),
    (_L + r"conv_module\.(layer_norm|batch_norm)\.(weight|bias)", _F + r"conv_module.\2.\3"),
    (_L + r"conv_module\.batch_norm\.(running_mean|running_var|num_batches_tracked)",
     _F + r"conv_module.batch_norm.\2"),
    (_L + r"conv_module\.(pointwise_conv1|depthwise_conv|pointwise_conv2)\.weight", _F + r"conv_module.\2.weight"),
]

# our key -> HF key (the q/k/v split and the rotary table are handled in code)
OURS_TO_HF = [
    (r"feature_extractor\.conv_layers\.(\d+)\.conv\.(weight|bias)", r"feature_extractor.conv_layers.\1.conv.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.norm\.(weight|bias)", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"feature_norm\.(weight|bias)", r"feature_projection.layer_norm.\1"),
    (r"feature_proj\.(weight|bias)", r"feature_projection.projection.\1"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (r"encoder\.pos_conv\.conv\.bias", "encoder.pos_conv_embed.conv.bias"),
    (r"encoder\.pos_conv\.conv\.weight_g", "encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    (r"encoder\.pos_conv\.conv\.weight_v", "encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    (r"encoder\.pos_conv\.layers\.(\d+)\.(weight|bias)", r"encoder.pos_conv_embed.layers.\1.conv.\2"),
    (_L + r"attention\.out_proj\.(weight|bias)", _F + r"attention.out_proj.\2"),
    (_L + r"attention_norm\.(weight|bias)", _F + r"layer_norm.\2"),
    (_L + r"fc1\.(weight|bias)", _F + r"feed_forward.intermediate_dense.\2"),
    (_L + r"fc2\.(weight|bias)", _F + r"feed_forward.output_dense.\2"),
    (_L + r"final_norm\.(weight|bias)", _F + r"final_layer_norm.\2"),
    (_L + r"attention\.rel_attn_embed\.weight", _F + r"attention.rel_attn_embed.weight"),
    (_L + r"attention\.gate_proj\.(weight|bias)", _F + r"attention.gru_rel_pos_linear.\2"),
    (_L + r"attention\.gate_scale", _F + r"attention.gru_rel_pos_const"),
]
OURS_TO_HF_CONFORMER = [
    (_L + r"(ffn[12])\.norm\.(weight|bias)", _F + r"\2_layer_norm.\3"),
    (_L + r"(ffn[12])\.fc1\.(weight|bias)", _F + r"\2.intermediate_dense.\3"),
    (_L + r"(ffn[12])\.fc2\.(weight|bias)", _F + r"\2.output_dense.\3"),
    (_L + r"attention_norm\.(weight|bias)", _F + r"self_attn_layer_norm.\2"),
    (_L + r"attention\.([qkv]|out)_proj\.(weight|bias)", _F + r"self_attn.linear_\2.\3"),
    (_L + r"attention\.pos_proj\.weight", _F + r"self_attn.linear_pos.weight"),
    (_L + r"attention\.(pos_bias_[uv])", _F + r"self_attn.\2"),
    (_L + r"conv\.norm\.(weight|bias)", _F + r"conv_module.layer_norm.\2"),
    (_L + r"conv\.pointwise([12])\.weight", _F + r"conv_module.pointwise_conv\2.weight"),
    (_L + r"conv\.depthwise\.weight", _F + r"conv_module.depthwise_conv.weight"),
    (_L + r"conv\.batch_norm\.(\w+)", _F + r"conv_module.batch_norm.\2"),
    (_L + r"final_norm\.(weight|bias)", _F + r"final_layer_norm.\2"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
]


def _rename(key: str, table) -> str | None:
    for pattern, repl in table:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, repl, key)
    return None


def _matches(key: str, patterns) -> bool:
    return any(re.fullmatch(p, key) for p in patterns)


# ---------------------------------------------------------------------------------------------
# Reading a folder
# ---------------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict:
    """A JSON file that must hold one object (``config.json``, ``preprocessor_config.json``, an index)."""
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except (OSError, ValueError, RecursionError) as e:
        raise CheckpointFormatError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(obj, dict):
        raise CheckpointFormatError(f"{path}: expected a JSON object ({{...}}), found a JSON {type(obj).__name__}")
    return obj


def _load_file(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointFormatError(f"{path}: not a readable safetensors file ({e})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointFormatError(f"{path}: not a readable weights-only torch file ({e})") from None
    if not isinstance(state, dict):
        raise CheckpointFormatError(f"{path}: expected a state dict, found a {type(state).__name__}")
    return state


def read_weights(folder: str | os.PathLike) -> dict:
    """The merged state dict of a HF folder: safetensors first, then pytorch_model.bin; shards via *.index.json."""
    folder = Path(folder)
    for name in ("model.safetensors", "pytorch_model.bin"):
        index = folder / f"{name}.index.json"
        if index.is_file():
            shards = sorted(set(_read_json(index).get("weight_map", {}).values()))
            if not shards:
                raise CheckpointFormatError(f"{index}: no weight_map")
            state = {}
            for shard in shards:
                if not (folder / shard).is_file():
                    raise CheckpointFormatError(f"{folder}: shard {shard} listed in {index.name} is missing")
                state.update(_load_file(folder / shard))
            return state
        if (folder / name).is_file():
            return _load_file(folder / name)
    raise CheckpointFormatError(
        f"{folder} has no model.safetensors or pytorch_model.bin (nor a sharded *.index.json): "
        "pass a HuggingFace model folder as written by save_pretrained"
    )


def model_type_of(hf: dict, source: str) -> str:
    """config.json's model_type (or a guess from ``architectures`` for old files)."""
    kind = hf.get("model_type")
    if kind is None:
        archs = hf.get("architectures") or []
        for arch in archs if isinstance(archs, list) else []:
            for name, (_, cls) in sorted(SUPPORTED.items(), key=lambda kv: -len(kv[1][1])):
                if isinstance(arch, str) and arch.startswith(cls):
                    kind = name
                    break
            if kind:
                break
    if not isinstance(kind, str) or kind not in SUPPORTED:
        raise CheckpointFormatError(
            f"{source}: HuggingFace model_type {kind!r} is not of the wav2vec 2.0 family; "
            f"supported: {', '.join(SUPPORTED)}"
        )
    return kind


def _unsupported(source: str, what: str) -> CheckpointFormatError:
    return CheckpointFormatError(f"{source}: {what} is not supported by this toolkit's wav2vec 2.0 model")


HF_DEFAULTS = {  # transformers' defaults of the keys read below
    "conv_bias": False, "feat_extract_activation": "gelu", "conv_pos_batch_norm": False, "feat_proj_layer_norm": True,
    "hidden_act": "gelu", "feat_extract_norm": "group", "hidden_size": 768, "num_conv_pos_embeddings": 128,
    "conv_pos_kernel_size": 19, "do_stable_layer_norm": False, "num_buckets": 320, "max_bucket_distance": 800,
    "position_embeddings_type": "relative", "conv_depthwise_kernel_size": 31, "intermediate_size": 3072,
    "num_hidden_layers": 12, "num_attention_heads": 12, "num_conv_pos_embedding_groups": 16, "layer_norm_eps": 1e-5,
    "hidden_dropout": 0.1, "attention_dropout": 0.1, "activation_dropout": 0.1,
}


def conv_layers_from_hf(hf: dict, source: str) -> tuple[tuple[int, int, int], ...]:
    """conv_dim / conv_kernel / conv_stride: equally long lists of 1 to 64 integers in 1..65536."""
    lists = []
    for key in ("conv_dim", "conv_kernel", "conv_stride"):
        value = hf.get(key)
        if value is not None and not isinstance(value, list):
            raise CheckpointConfigError(source, key, value, f"a JSON list of 1 to {config_io.MAX_CONV_LAYERS} integers")
        lists.append(config_io.parse_int_list(value, source, key, config_io.MAX_CONV_LAYERS) if value else [])
    if not (len(lists[0]) == len(lists[1]) == len(lists[2]) > 0):
        raise CheckpointFormatError(f"{source}: conv_dim / conv_kernel / conv_stride differ in length or are missing")
    return tuple(zip(*lists))


def config_from_hf(hf: dict, model_type: str, do_normalize: bool, source: str):
    """HF config.json dict -> Wav2Vec2Config (every value type- and range-checked: ``CheckpointConfigError``)."""
    from ..upstream.wav2vec2 import Wav2Vec2Config

    conf = config_io.Settings(hf, HF_DEFAULTS, source)
    conv_layers = conv_layers_from_hf(hf, source)
    if conf.str("feat_extract_activation") != "gelu":
        raise _unsupported(source, f"feat_extract_activation={hf.get('feat_extract_activation')!r}")
    if hf.get("adapter_attn_dim") is not None:
        raise _unsupported(source, "adapter_attn_dim (attention adapters inside the layers)")
    if conf.bool("conv_pos_batch_norm"):
        raise _unsupported(source, "conv_pos_batch_norm=True")
    if not conf.bool("feat_proj_layer_norm"):
        raise _unsupported(source, "feat_proj_layer_norm=False")
    act = conf.str("hidden_act")
    if act not in ACTIVATIONS:
        raise _unsupported(source, f"hidden_act={act!r} (supported: {', '.join(ACTIVATIONS)})")
    norm = "layer" if model_type == "data2vec-audio" else conf.str("feat_extract_norm")
    if norm not in ("group", "layer"):
        raise CheckpointFormatError(f"{source}: feat_extract_norm must be 'group' or 'layer', got {norm!r}")
    hidden, heads = conf.int("hidden_size"), conf.int("num_attention_heads", 1, 1024)
    groups = conf.int("num_conv_pos_embedding_groups")
    if hidden % heads:
        raise CheckpointConfigError(source, "num_attention_heads", heads, f"a divisor of hidden_size={hidden}")
    if model_type != "wav2vec2-conformer" and hidden % groups:
        raise CheckpointConfigError(source, "num_conv_pos_embedding_groups", groups,
                                    f"a divisor of hidden_size={hidden}")
    extra_cfg = {}
    if model_type == "data2vec-audio":
        depth = conf.int("num_conv_pos_embeddings", 1, config_io.MAX_CONV_LAYERS)
        kernel = conf.int("conv_pos_kernel_size")
        if kernel < 3:
            raise _unsupported(source, f"conv_pos_kernel_size={kernel} (< 3)")
        extra_cfg.update(pos_conv_depth=depth, conv_pos=kernel * depth, layer_norm_first=False)
    else:
        extra_cfg.update(conv_pos=conf.int("num_conv_pos_embeddings"),
                         layer_norm_first=conf.bool("do_stable_layer_norm"))
    if model_type == "wavlm":
        extra_cfg.update(relative_position_embedding=True, gru_rel_pos=True, num_buckets=conf.int("num_buckets"),
                         max_distance=conf.int("max_bucket_distance", 1, 2**24))
    if model_type == "wav2vec2-conformer":
        pos = {"relative": "rel_pos", "rotary": "rope"}.get(hf.get("position_embeddings_type"))
        if pos is None:
            raise _unsupported(source, f"position_embeddings_type={hf.get('position_embeddings_type')!r}")
        if ACTIVATIONS[act] != "swish":
            raise _unsupported(source, f"a conformer with hidden_act={act!r} (conformer layers use swish)")
        extra_cfg.update(layer_type="conformer", pos_enc_type=pos, layer_norm_first=True,
                         depthwise_conv_kernel_size=conf.int("conv_depthwise_kernel_size"))
    return Wav2Vec2Config(
        conv_layers=conv_layers,
        extractor_mode="default" if norm == "group" else "layer_norm",
        conv_bias=conf.bool("conv_bias"),
        embed_dim=hidden,
        ffn_dim=conf.int("intermediate_size"),
        num_layers=conf.int("num_hidden_layers", 1, config_io.MAX_LAYERS),
        num_heads=heads,
        activation=ACTIVATIONS[act],
        conv_pos_groups=groups,
        normalize_waveform=bool(do_normalize),
        normalize_eps=HF_NORMALIZE_EPS,
        force_feature_proj=conv_layers[-1][0] == hidden,  # HF always projects, fairseq only when the sizes differ
        layer_norm_eps=conf.float("layer_norm_eps", 0.0, 1.0),
        dropout=conf.float("hidden_dropout"),
        attention_dropout=conf.float("attention_dropout"),
        activation_dropout=conf.float("activation_dropout"),
        extra={"name": model_type, "source": source, "format": "huggingface"},
        **extra_cfg,
    )


def base_model_state(state: dict, model_type: str, source: str) -> dict:
    """Strip the task wrapper's prefix; every head tensor must be a known one."""
    prefix = SUPPORTED[model_type][0] + "."
    if not any(k.startswith(prefix) for k in state):
        return dict(state)
    base, unknown = {}, []
    for key, value in state.items():
        if key.startswith(prefix):
            base[key[len(prefix):]] = value
        elif not _matches(key, HEAD_DROP):
            unknown.append(key)
    if unknown:
        raise CheckpointFormatError(f"{source}: unexpected task-head keys (not known to be unused): {unknown[:10]}")
    return base


def hf_to_fairseq(state: dict, cfg, source: str) -> dict:
    """HF base-model key names -> fairseq names (read by ``convert.fairseq.map_state``)."""
    conformer = cfg.layer_type == "conformer"
    drop = BASE_DROP + (CONFORMER_DROP if conformer else [])
    out, unknown = {}, []
    for key, value in state.items():
        if key == "encoder.pos_conv_embed.conv.weight" and not conformer:  # weight norm already folded in
            out["encoder.pos_conv.0.weight_v"] = value
            out["encoder.pos_conv.0.weight_g"] = value.norm(dim=(0, 1), keepdim=True)
            continue
        if conformer and key == "encoder.embed_positions.inv_freq":  # one rotary table for every layer
            for i in range(cfg.num_layers):
                out[f"encoder.layers.{i}.self_attn.rotary_emb.inv_freq"] = value
            continue
        new = _rename(key, HF_TO_FAIRSEQ)
        if new is not None and cfg.extractor_mode == "layer_norm":
            new = re.sub(r"^(feature_extractor\.conv_layers\.\d+)\.2\.", r"\1.2.1.", new)
        if new is not None:
            out[new] = value
        elif not _matches(key, drop):
            unknown.append(key)
    if unknown:
        raise CheckpointFormatError(f"{source}: unexpected HuggingFace keys (not mapped, not known to be unused): "
                                    f"{unknown[:10]}")
    if cfg.pos_enc_type == "rope" and "encoder.layers.0.self_attn.rotary_emb.inv_freq" not in out:
        from ..upstream.conformer import ConformerAttention

        table = ConformerAttention(cfg.embed_dim, cfg.num_heads, "rope", 0.0).inv_freq
        for i in range(cfg.num_layers):  # old folders without the buffer: HF's default base 10000
            out[f"encoder.layers.{i}.self_attn.rotary_emb.inv_freq"] = table
    return out


def load_folder(path: str | os.PathLike, weights: dict | None = None):
    """A HuggingFace model folder -> (Wav2Vec2Config, state dict with fairseq key names). ``weights``: the
    folder's state dict when the caller has read it already (``read_weights``)."""
    from .fairseq import check_weight_types, estimated_parameters, key_table

    folder = Path(path)
    source = str(folder)
    if not (folder / "config.json").is_file():
        raise CheckpointFormatError(f"{source} has no config.json: pass a HuggingFace model folder")
    hf = _read_json(folder / "config.json")
    model_type = model_type_of(hf, str(folder / "config.json"))
    pre = folder / "preprocessor_config.json"
    do_normalize = FALLBACK_DO_NORMALIZE
    if pre.is_file():
        value = _read_json(pre).get("do_normalize")
        do_normalize = True if value is None else config_io.as_bool(value, "do_normalize", str(pre))
    cfg = config_from_hf(hf, model_type, do_normalize, str(folder / "config.json"))
    state = base_model_state(read_weights(folder) if weights is None else weights, model_type, source)
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointConfigError(source, key, value, "a tensor (a model weight)")
    state = hf_to_fairseq(state, cfg, source)
    check_weight_types(state, key_table(cfg)[0], source)
    config_io.check_model_size(estimated_parameters(cfg), state, source)
    return cfg, state


# ---------------------------------------------------------------------------------------------
# Writing a folder
# ---------------------------------------------------------------------------------------------


def guess_model_type(cfg) -> str:
    if cfg.layer_type == "conformer":
        return "wav2vec2-conformer"
    if cfg.relative_position_embedding:
        return "wavlm"
    if cfg.pos_conv_depth > 1:
        return "data2vec-audio"
    return "hubert" if "hubert" in str(cfg.extra.get("name") or "").lower() else "wav2vec2"


def hf_config(cfg, model_type: str) -> dict:
    """Wav2Vec2Config -> HF config.json dict (raises where HF cannot express the configuration)."""
    def need(ok: bool, what: str):
        if not ok:
            raise ValueError(f"HuggingFace {model_type} cannot express {what}")

    need(model_type in SUPPORTED, f"model type (supported: {', '.join(SUPPORTED)})")
    need(cfg.crop_seq_to_multiple == 1, "crop_seq_to_multiple > 1")
    need(cfg.relative_position_embedding == (model_type == "wavlm"), "this relative-position setting")
    need(cfg.relative_position_embedding <= cfg.gru_rel_pos, "an ungated relative position bias")
    need((cfg.layer_type == "conformer") == (model_type == "wav2vec2-conformer"), f"layer_type={cfg.layer_type!r}")
    need((cfg.pos_conv_depth > 1) == (model_type == "data2vec-audio"), f"pos_conv_depth={cfg.pos_conv_depth}")
    act = {"gelu": "gelu", "relu": "relu", "swish": "swish", "gelu_accurate": "gelu_pytorch_tanh"}[cfg.activation]
    out = {
        "model_type": model_type,
        "architectures": [SUPPORTED[model_type][1] + "Model"],
        "conv_dim": [c for c, _, _ in cfg.conv_layers],
        "conv_kernel": [k for _, k, _ in cfg.conv_layers],
        "conv_stride": [s for _, _, s in cfg.conv_layers],
        "num_feat_extract_layers": len(cfg.conv_layers),
        "conv_bias": cfg.conv_bias,
        "feat_extract_norm": "group" if cfg.extractor_mode == "default" else "layer",
        "feat_extract_activation": "gelu",
        "hidden_size": cfg.embed_dim,
        "intermediate_size": cfg.ffn_dim,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "hidden_act": act,
        "do_stable_layer_norm": cfg.layer_norm_first,
        "num_conv_pos_embeddings": cfg.conv_pos,
        "num_conv_pos_embedding_groups": cfg.conv_pos_groups,
        "layer_norm_eps": cfg.layer_norm_eps,
        "hidden_dropout": cfg.dropout,
        "attention_dropout": cfg.attention_dropout,
        "activation_dropout": cfg.activation_dropout,
    }
    if model_type == "wavlm":
        out.update(num_buckets=cfg.num_buckets, max_bucket_distance=cfg.max_distance)
    if model_type == "data2vec-audio":
        kernel = max(3, cfg.conv_pos // cfg.pos_conv_depth)
        need(cfg.extractor_mode == "layer_norm" and not cfg.layer_norm_first, "a group-norm or pre-LN data2vec")
        out.update(num_conv_pos_embeddings=cfg.pos_conv_depth, conv_pos_kernel_size=kernel)
        del out["feat_extract_norm"], out["do_stable_layer_norm"]
    if model_type == "wav2vec2-conformer":
        need(cfg.layer_norm_first, "a conformer without layer_norm_first")
        out.update(position_embeddings_type={"rel_pos": "relative", "rope": "rotary"}[cfg.pos_enc_type],
                   conv_depthwise_kernel_size=cfg.depthwise_conv_kernel_size, hidden_act="swish")
        del out["do_stable_layer_norm"]
    return out


def to_huggingface(model, model_type: str | None = None) -> tuple[dict, dict]:
    """Our ``Wav2Vec2`` model -> (HF config.json dict, HF base-model state dict)."""
    cfg = model.cfg
    model_type = model_type or guess_model_type(cfg)
    config = hf_config(cfg, model_type)
    conformer = cfg.layer_type == "conformer"
    table = OURS_TO_HF_CONFORMER + OURS_TO_HF if conformer else OURS_TO_HF
    state = {}
    for key, value in model.state_dict().items():
        value = value.detach().clone()
        qkv = re.fullmatch(_L + r"attention\.qkv\.(weight|bias)", key)
        rot = re.fullmatch(_L + r"attention\.inv_freq", key)
        if qkv:
            for part, name in zip(value.chunk(3), "qkv"):
                state[f"encoder.layers.{qkv.group(1)}.attention.{name}_proj.{qkv.group(2)}"] = part.clone()
        elif rot:  # HF keeps one rotary table for the whole encoder
            first = state.setdefault("encoder.embed_positions.inv_freq", value)
            if not torch.equal(first, value):
                raise ValueError("HuggingFace cannot express per-layer rotary tables (inv_freq differs by layer)")
        else:
            new = _rename(key, table)
            if new is None:
                raise ValueError(f"no HuggingFace name for our key {key!r}")
            state[new] = value
    if "feature_projection.projection.weight" not in state:  # our Identity: HF always has the projection
        dim = cfg.embed_dim
        state["feature_projection.projection.weight"] = torch.eye(dim)
        state["feature_projection.projection.bias"] = torch.zeros(dim)
    return config, state


def save_huggingface(model, folder: str | os.PathLike, model_type: str | None = None) -> None:
    """Write config.json, model.safetensors and preprocessor_config.json that ``from_pretrained`` reads.

    HF normalises with eps 1e-7 where fairseq used 1e-5: a fairseq model with ``normalize`` exported
    this way differs from ours by that epsilon only.
    """
    from safetensors.torch import save_file

    config, state = to_huggingface(model, model_type)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    pre = {"feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1, "sampling_rate": 16000,
           "padding_value": 0.0, "padding_side": "right", "return_attention_mask": True,
           "do_normalize": bool(model.cfg.normalize_waveform)}
    (folder / "preprocessor_config.json").write_text(json.dumps(pre, indent=2) + "\n", encoding="utf-8")
