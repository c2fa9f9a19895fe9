"""Checkpoints of wav2vec 2.0 CTC fine-tuning (see :mod:`s3prl.wav2vec2.finetune`): the start from a pre-trained
model (``w2v_path``), fairseq fine-tuned files in and out (``w2v_encoder.w2v_model.*`` + ``w2v_encoder.proj.*``,
``cfg.model.w2v_args`` = the pre-training cfg, as fairseq 0.12's ``wav2vec_ctc`` writes them)."""

from __future__ import annotations

import os
from dataclasses import asdict

import torch

from .. import checkpoint as ckpt_io
from ..convert import config as config_io
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointFormatError
from ..upstream.wav2vec2 import Wav2Vec2Config
from .ctc_model import ENCODER_PREFIX, Vocabulary, _checkpoint_vocabulary, _pretraining_cfg, _split_state
from .finetune import FineTuneConfig, Wav2Vec2CtcTraining, finetune_config
from .pretraining import HEADS, fairseq_state_dict


def _arch_model_cfg(arch: Wav2Vec2Config) -> dict:
    """A fairseq ``wav2vec2`` cfg.model for an architecture (pre-trained models without a fairseq cfg)."""
    conv = "[" + ", ".join(f"({c}, {k}, {s})" for c, k, s in arch.conv_layers) + "]"
    return {"_name": "wav2vec2", "extractor_mode": arch.extractor_mode, "encoder_layers": arch.num_layers,
            "encoder_embed_dim": arch.embed_dim, "encoder_ffn_embed_dim": arch.ffn_dim,
            "encoder_attention_heads": arch.num_heads, "activation_fn": arch.activation,
            "layer_norm_first": arch.layer_norm_first, "conv_feature_layers": conv, "conv_bias": arch.conv_bias,
            "conv_pos": arch.conv_pos, "conv_pos_groups": arch.conv_pos_groups}


def from_pretrained(w2v_path: str, vocabulary: Vocabulary, ftcfg: FineTuneConfig) -> Wav2Vec2CtcTraining:
    """fairseq's start of fine-tuning: the pre-trained wav2vec 2.0 at ``w2v_path`` (a fairseq pre-training
    checkpoint, an s3prl-converted file or a HuggingFace folder) + a new ``proj`` onto ``vocabulary``; the
    pre-training heads (quantizer, ``project_q``, ``final_proj``) are dropped, ``mask_emb`` is kept."""
    path = os.path.expanduser(str(w2v_path))
    if not os.path.exists(path):
        raise FileNotFoundError(f"pre-trained model {path!r} not found (w2v_path: a fairseq wav2vec 2.0 checkpoint, "
                                "an s3prl-converted file or a HuggingFace folder)")
    obj = path if os.path.isdir(path) else ckpt_io.load_checkpoint(path)
    arch, state = fairseq_convert.load_any(obj, path)
    if any(k.startswith("w2v_encoder.") for k in state):
        raise CheckpointFormatError(f"{path} is already fine-tuned: pass the pre-trained checkpoint as w2v_path")
    mask_emb = state.get("mask_emb")
    model = Wav2Vec2CtcTraining(arch, ftcfg, len(vocabulary.symbols), vocabulary)
    fairseq_convert.load_state(model.model, {k: v for k, v in state.items() if not k.startswith(HEADS)}, path)
    if isinstance(mask_emb, torch.Tensor) and mask_emb.shape == model.mask_emb.shape:
        model.mask_emb.data.copy_(mask_emb.float())
    w2v_args = None
    if isinstance(obj, dict) and obj.get("cfg") is not None:
        cfg = config_io.as_mapping(obj["cfg"], "cfg", path)
        if isinstance(cfg.get("model"), dict):
            w2v_args = {k: cfg.get(k) for k in ("model", "task")}
    model.fairseq_w2v_args = w2v_args or {
        "model": _arch_model_cfg(arch), "task": {"_name": "audio_pretraining", "normalize": arch.normalize_waveform}}
    model.w2v_path = os.path.abspath(path)
    return model


def from_fairseq_finetuned(obj, source: str = "checkpoint", vocabulary: Vocabulary | None = None,
                           **changes) -> Wav2Vec2CtcTraining:
    """A fairseq fine-tuned (``wav2vec_ctc``) checkpoint -> the training model with its fine-tuning options
    (``changes`` override them, e.g. ``apply_mask=False``). ``vocabulary``: the output symbols when the file
    does not carry fairseq's pickled dictionary (files we write: read ``dict.ltr.txt``)."""
    if isinstance(obj, (str, os.PathLike)):
        obj, source = ckpt_io.load_checkpoint(obj), str(obj)
    if not isinstance(obj, dict) or "model" not in obj or obj.get("cfg") is None:
        raise CheckpointFormatError(f"{source} is {fairseq_convert.describe_format(obj)}, not a fairseq 0.12 "
                                    "fine-tuned wav2vec 2.0 checkpoint")
    cfg = config_io.as_mapping(obj["cfg"], "cfg", source)
    model_cfg = config_io.as_mapping(cfg.get("model") or {}, "cfg.model", source)
    if model_cfg.get("_name") not in (None, "wav2vec_ctc"):
        raise CheckpointFormatError(f"{source}: cfg.model._name is {model_cfg.get('_name')!r}, not wav2vec_ctc")
    pre_model, pre_task = _pretraining_cfg(model_cfg, source, source)
    task_cfg = config_io.as_mapping(cfg.get("task") or {}, "cfg.task", source)
    arch = fairseq_convert.config_from_fairseq(pre_model, task_cfg.get("normalize", pre_task.get("normalize", False)),
                                               source)
    encoder_state, head = _split_state(fairseq_convert._state_dict(obj["model"], "model", source), source)
    recipe = {"model": model_cfg, "criterion": cfg.get("criterion") or {},
              "optimization": {"sentence_avg": (cfg.get("criterion") or {}).get(
                  "sentence_avg", (cfg.get("optimization") or {}).get("sentence_avg", False))}}
    model = Wav2Vec2CtcTraining(arch, finetune_config(recipe, **changes), head["weight"].size(0),
                                vocabulary or _checkpoint_vocabulary(obj))
    mask_emb = encoder_state.pop("mask_emb", None)
    fairseq_convert.load_state(model.model, encoder_state, source)
    if mask_emb is not None:
        model.mask_emb.data.copy_(mask_emb.float())
    model.proj.load_state_dict({k: v.float() for k, v in head.items()})
    model.fairseq_w2v_args = {"model": pre_model, "task": pre_task}
    model.w2v_path = str(model_cfg.get("w2v_path") or "")
    return model


def fairseq_finetuned_state_dict(model: Wav2Vec2CtcTraining, tensors: dict | None = None) -> dict:
    """Our weights in fairseq's ``Wav2VecCtc`` names (``w2v_encoder.w2v_model.*``, ``w2v_encoder.proj.*``);
    ``tensors`` (default: the state dict) may be any tensors by our parameter names, e.g. the gradients."""
    state = model.state_dict() if tensors is None else tensors
    encoder = {k: v for k, v in state.items() if k.startswith("model.") or k == "mask_emb"}
    out = {ENCODER_PREFIX + k: v.detach().clone() for k, v in fairseq_state_dict(model, encoder).items()}
    for part in ("weight", "bias"):
        if f"proj.{part}" in state:
            out[f"w2v_encoder.proj.{part}"] = state[f"proj.{part}"].detach().clone()
    return out


def fairseq_finetuned_checkpoint(model: Wav2Vec2CtcTraining, data: str, num_updates: int | None = None,
                                 extra_state: dict | None = None) -> dict:
    """A checkpoint dict in fairseq 0.12's layout for ``torch.save``: ``cfg`` (``wav2vec_ctc`` model with the
    pre-training cfg in ``w2v_args``, ``audio_finetuning`` task on ``data`` = the folder holding ``dict.ltr.txt``,
    ``ctc`` criterion) and ``model`` (:func:`fairseq_finetuned_state_dict`); fairseq's loader fills the other
    fields from its defaults and reads the dictionary from ``data``."""
    f = model.ftcfg
    model_keys = {k: v for k, v in asdict(f).items() if k not in ("zero_infinity", "sentence_avg", "post_process")}
    w2v_args = model.fairseq_w2v_args or {"model": _arch_model_cfg(model.cfg), "task": {"_name": "audio_pretraining"}}
    # fairseq's loader sets w2v_args.task.data (the key must exist) and fills the other fields from its defaults
    w2v_args = {**w2v_args, "task": {"data": os.path.abspath(data), **dict(w2v_args.get("task") or {})},
                "criterion": None, "lr_scheduler": None}
    normalize = bool(model.cfg.normalize_waveform)
    updates = model.num_updates if num_updates is None else int(num_updates)
    return {
        "args": None,
        "cfg": {"_name": None, "common": {}, "model": {"_name": "wav2vec_ctc", "w2v_path": getattr(model, "w2v_path", ""),
                                                      "w2v_args": w2v_args, "normalize": normalize, **model_keys},
                "task": {"_name": "audio_finetuning", "data": os.path.abspath(data), "labels": "ltr",
                         "normalize": normalize},
                "criterion": {"_name": "ctc", "zero_infinity": f.zero_infinity, "sentence_avg": f.sentence_avg,
                              "post_process": f.post_process},
                "optimization": {"sentence_avg": f.sentence_avg}},
        "model": fairseq_finetuned_state_dict(model), "criterion": None,
        "optimizer_history": [{"criterion_name": "CtcCriterion", "optimizer_name": "FairseqAdam",
                               "lr_scheduler_state": {"best": None}, "num_updates": updates}],
        "task_state": {}, "last_optimizer_state": None, "extra_state": dict(extra_state or {}),
    }
