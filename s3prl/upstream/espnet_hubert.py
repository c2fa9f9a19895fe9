"""ESPnet HuBERT (``espnet_hubert_*``, ``cvhubert``, ``wavlablm_*``) without ESPnet.

An ESPnet HuBERT release is a ``.pth`` state dict of ``TorchAudioHubertPretrainModel`` plus its
``config.yaml``. The model that matters is ``encoder.hubert_pretrain_model``, a torchaudio
``HuBERTPretrainModel``; the original expert calls its ``wav2vec2.extract_features(wavs, lengths)`` on the
raw waveform (ESPnet's frontend / normalisation are bypassed) and returns the output of every
transformer layer (L states; for pre-LN models without the final LayerNorm). torchaudio's HuBERT is the
fairseq/wav2vec 2.0 math, so the model here is our wav2vec 2.0 family with torchaudio's key names.

The architecture is ``encoder_conf`` of the yaml over the defaults of ESPnet's
``TorchAudioHuBERTPretrainEncoder`` (``encoder: torchaudio_hubert``; ESPnet's fairseq-based
``hubert_pretrain`` encoder has no ``hubert_pretrain_model`` and did not work with the original expert).
Where the yaml comes from: ``config=`` (a path or URL; the registry rows pass their ``config.yaml`` URL
this way, since ``S3PRLUpstream`` downloads only a row's first file), else ``config.yaml`` next to the
checkpoint, which is where ESPnet itself looks when it is given no config (and what the original
``espnet_hubert_custom`` ends up doing: it drops its ``config`` argument).
"""

from __future__ import annotations

import os
import re

import yaml

from .. import checkpoint as ckpt_io
from .. import download
from ..convert import config as config_io
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointConfigError, CheckpointFormatError
from .wav2vec2 import DEFAULT_CONV_LAYERS, Wav2Vec2, Wav2Vec2Config

# TorchAudioHuBERTPretrainEncoder defaults for the architecture keys
ENCODER_DEFAULTS = {
    "extractor_mode": "group_norm", "extractor_conv_layer_config": None, "extractor_conv_bias": False,
    "encoder_embed_dim": 768, "encoder_pos_conv_kernel": 128, "encoder_pos_conv_groups": 16,
    "encoder_num_layers": 12, "encoder_num_heads": 12, "encoder_ff_interm_features": 3072,
    "encoder_layer_norm_first": False,
}
PREFIX = "encoder.hubert_pretrain_model.wav2vec2."
# torchaudio names -> fairseq names (then the wav2vec 2.0 importer's key map)
RENAMES = [
    (r"feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0."),
    (r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.", r"feature_extractor.conv_layers.\1.2."),
    (r"encoder\.feature_projection\.layer_norm\.", "layer_norm."),
    (r"encoder\.feature_projection\.projection\.", "post_extract_proj."),
    (r"encoder\.transformer\.pos_conv_embed\.conv\.", "encoder.pos_conv.0."),
    (r"encoder\.transformer\.layer_norm\.", "encoder.layer_norm."),
    (r"encoder\.transformer\.layers\.(\d+)\.attention\.", r"encoder.layers.\1.self_attn."),
    (r"encoder\.transformer\.layers\.(\d+)\.layer_norm\.", r"encoder.layers.\1.self_attn_layer_norm."),
    (r"encoder\.transformer\.layers\.(\d+)\.feed_forward\.intermediate_dense\.", r"encoder.layers.\1.fc1."),
    (r"encoder\.transformer\.layers\.(\d+)\.feed_forward\.output_dense\.", r"encoder.layers.\1.fc2."),
    (r"encoder\.transformer\.layers\.(\d+)\.final_layer_norm\.", r"encoder.layers.\1.final_layer_norm."),
]
# Parts of the ESPnet model the original expert never runs: pre-training heads, step counter, and
# ESPnet's own frontend / normalisation / augmentation / pre-encoder (bypassed by the expert).
DROP = [r"encoder\.hubert_pretrain_model\.(mask_generator|logit_generator)\..+", r"encoder\.global_step",
        r"(frontend|normalize|specaug|preencoder)\..+"]


def config_from_yaml(conf: dict, source: str) -> Wav2Vec2Config:
    """ESPnet HuBERT config.yaml -> Wav2Vec2Config of the torchaudio HuBERT it describes."""
    if not isinstance(conf, dict) or "encoder" not in conf:
        raise CheckpointFormatError(f"{source}: not an ESPnet HuBERT config.yaml (no 'encoder' entry)")
    if conf["encoder"] != "torchaudio_hubert":
        raise CheckpointFormatError(
            f"{source}: encoder {conf['encoder']!r} is not supported; only ESPnet's 'torchaudio_hubert' "
            "encoder (what every espnet_hubert entry uses, and all the original expert could load) is"
        )
    enc_conf = conf.get("encoder_conf") or {}
    if not isinstance(enc_conf, dict):
        raise CheckpointFormatError(f"{source}: encoder_conf is a {type(enc_conf).__name__}, expected a mapping")
    get = config_io.Settings(enc_conf, ENCODER_DEFAULTS, source)
    mode = {"group_norm": "default", "layer_norm": "layer_norm"}.get(get.str("extractor_mode"))
    if mode is None:
        raise CheckpointFormatError(f"{source}: extractor_mode {get.raw('extractor_mode')!r} "
                                    "(group_norm or layer_norm)")
    layers = enc_conf.get("extractor_conv_layer_config")
    embed, heads = get.int("encoder_embed_dim"), get.int("encoder_num_heads", 1, 1024)
    groups = get.int("encoder_pos_conv_groups")
    for key, value in (("encoder_num_heads", heads), ("encoder_pos_conv_groups", groups)):
        if embed % value:
            raise CheckpointConfigError(source, key, value, f"a divisor of encoder_embed_dim={embed}")
    return Wav2Vec2Config(
        conv_layers=config_io.parse_conv_layers(layers, source, "extractor_conv_layer_config")
        if layers else DEFAULT_CONV_LAYERS,
        extractor_mode=mode, conv_bias=get.bool("extractor_conv_bias"), embed_dim=embed,
        ffn_dim=get.int("encoder_ff_interm_features"),
        num_layers=get.int("encoder_num_layers", 1, config_io.MAX_LAYERS),
        num_heads=heads, layer_norm_first=get.bool("encoder_layer_norm_first"),
        conv_pos=get.int("encoder_pos_conv_kernel"), conv_pos_groups=groups,
        force_feature_proj=True,  # torchaudio always projects the CNN features
        feature_selection="fairseq_layers",  # the output of every layer, no final LayerNorm
        dropout=0.0, attention_dropout=0.0, extra={"source": source, "format": "espnet"},
    )


def to_fairseq_names(state: dict, source: str) -> dict:
    """ESPnet / torchaudio keys -> fairseq keys; every key is renamed, dropped, or an error."""
    if isinstance(state.get("model"), dict) and not any(k.startswith(PREFIX) for k in state):
        state = state["model"]  # a training checkpoint that wraps the model state
    if not any(isinstance(k, str) and k.startswith(PREFIX) for k in state):
        raise CheckpointFormatError(f"{source} is {fairseq_convert.describe_format(state)}, not an ESPnet "
                                    f"torchaudio HuBERT .pth (no '{PREFIX}*' weights)")
    out, unknown = {}, []
    for key, value in state.items():
        if any(re.fullmatch(p, key) for p in DROP):
            continue
        if not key.startswith(PREFIX):
            unknown.append(key)
            continue
        rest = key[len(PREFIX):]
        for pattern, repl in RENAMES:
            if re.match(pattern, rest):
                out[re.sub(pattern, repl, rest, count=1)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointFormatError(f"{source}: unexpected keys for an ESPnet torchaudio HuBERT: {unknown[:10]}")
    return out


def find_config(ckpt: str, config: str | None) -> str:
    if config is not None:
        return download.resolve_checkpoint(config)
    beside = os.path.join(os.path.dirname(os.path.abspath(ckpt)), "config.yaml")
    if os.path.isfile(beside):
        return beside
    raise ValueError(f"ESPnet HuBERT needs its config.yaml: pass extra_conf={{'config': path_or_url}} or put "
                     f"config.yaml next to {ckpt}")


def build(ckpt: str | None, config: str | None = None, **options) -> Wav2Vec2:
    """Build from an ESPnet ``.pth`` and its ``config.yaml`` (``config=`` path/URL, or beside the ``.pth``)."""
    if ckpt is None:
        raise ValueError("ESPnet HuBERT needs a checkpoint (.pth): pass path_or_url / ckpt")
    if options:
        raise TypeError(f"unknown option(s) for ESPnet HuBERT: {', '.join(sorted(options))} (it takes config)")
    config_path = find_config(ckpt, config)
    with open(config_path) as f:
        cfg = config_from_yaml(yaml.safe_load(f), config_path)
    state = ckpt_io.load_checkpoint(ckpt)
    if not isinstance(state, dict):
        raise CheckpointFormatError(f"{ckpt} is {fairseq_convert.describe_format(state)}, not an ESPnet .pth")
    state = to_fairseq_names(state, ckpt)
    fairseq_convert.check_weight_types(state, fairseq_convert.key_table(cfg)[0], ckpt)
    config_io.check_model_size(fairseq_convert.estimated_parameters(cfg), state, ckpt)
    model = Wav2Vec2(cfg)
    fairseq_convert.load_state(model, state, ckpt)
    return model.eval()
