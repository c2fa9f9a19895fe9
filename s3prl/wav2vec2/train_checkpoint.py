"""fairseq 0.12-format checkpoints written (and resumed) by ``s3prl wav2vec2 train``."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .manifest import RecipeError


def fairseq_model_cfg(args, setup) -> dict:
    """cfg.model in fairseq's field names (only fields of fairseq's wav2vec2 model config)."""
    a, p = setup.arch, setup.pretrain
    conv = "[" + ", ".join(f"({c}, {k}, {s})" for c, k, s in a.conv_layers) + "]"
    return {"_name": "wav2vec2", "extractor_mode": a.extractor_mode, "encoder_layers": a.num_layers,
            "encoder_embed_dim": a.embed_dim, "encoder_ffn_embed_dim": a.ffn_dim,
            "encoder_attention_heads": a.num_heads, "activation_fn": a.activation, "layer_type": "transformer",
            "dropout": a.dropout, "attention_dropout": a.attention_dropout,
            "activation_dropout": a.activation_dropout, "encoder_layerdrop": p.encoder_layerdrop,
            "dropout_input": p.dropout_input, "dropout_features": p.dropout_features, "final_dim": p.final_dim,
            "layer_norm_first": a.layer_norm_first, "conv_feature_layers": conv, "conv_bias": a.conv_bias,
            "logit_temp": p.logit_temp, "quantize_targets": p.quantize_targets, "quantize_input": False,
            "same_quantizer": False, "target_glu": p.target_glu, "feature_grad_mult": p.feature_grad_mult,
            "quantizer_depth": p.quantizer_depth, "quantizer_factor": p.quantizer_factor,
            "latent_vars": p.latent_vars, "latent_groups": p.latent_groups, "latent_dim": p.latent_dim,
            "mask_length": p.mask_length, "mask_prob": p.mask_prob, "mask_selection": p.mask_selection,
            "mask_other": p.mask_other, "no_mask_overlap": False, "mask_min_space": 1,
            "require_same_masks": p.require_same_masks, "mask_dropout": p.mask_dropout,
            "mask_channel_length": p.mask_channel_length, "mask_channel_prob": p.mask_channel_prob,
            "mask_channel_before": p.mask_channel_before, "mask_channel_selection": p.mask_channel_selection,
            "mask_channel_other": p.mask_channel_other, "no_mask_channel_overlap": False,
            "mask_channel_min_space": 1, "num_negatives": p.num_negatives, "negatives_from_everywhere": False,
            "cross_sample_negatives": p.cross_sample_negatives, "codebook_negatives": 0, "conv_pos": a.conv_pos,
            "conv_pos_groups": a.conv_pos_groups, "latent_temp": list(p.latent_temp)}


def fairseq_cfg(args, setup, model_cfg: dict | None = None) -> dict:
    """The checkpoint's ``cfg`` (a plain dict, as fairseq 0.12's trainer writes it; its loader fills the fields
    not given from its own defaults). ``model_cfg``: another model's section (wav2vec 1.0)."""
    return {
        "_name": None,
        "common": {"seed": args.seed, "fp16": bool(args.fp16), "log_interval": args.log_interval},
        "distributed_training": {"distributed_world_size": int(os.environ.get("WORLD_SIZE", "1"))},
        "dataset": {"max_tokens": args.max_tokens, "batch_size": args.batch_size,
                    "skip_invalid_size_inputs_valid_test": bool(args.skip_invalid_size_inputs_valid_test),
                    "required_batch_size_multiple": args.required_batch_size_multiple,
                    "train_subset": args.train_subset, "valid_subset": args.valid_subset},
        "optimization": {"max_update": args.max_update, "max_epoch": args.max_epoch, "lr": [setup.lr],
                         "update_freq": [args.update_freq], "clip_norm": args.clip_norm},
        "checkpoint": {"save_dir": args.save_dir, "save_interval_updates": args.save_interval_updates,
                       "no_epoch_checkpoints": bool(args.no_epoch_checkpoints)},
        "model": fairseq_model_cfg(args, setup) if model_cfg is None else model_cfg,
        "task": {"_name": "audio_pretraining", "data": os.path.abspath(args.data), "normalize": bool(args.normalize),
                 "sample_rate": 16000, "enable_padding": False, "max_sample_size": args.max_sample_size,
                 "min_sample_size": args.min_sample_size},
        "criterion": {"_name": "wav2vec", "infonce": True, "loss_weights": list(setup.pretrain.loss_weights or ()),
                      "log_keys": ["prob_perplexity", "code_perplexity", "temp"]},
        "optimizer": {"_name": "adam", "adam_betas": str(tuple(setup.betas)), "adam_eps": setup.eps,
                      "weight_decay": setup.weight_decay, "lr": [setup.lr]},
        "lr_scheduler": {"_name": args.lr_scheduler, "warmup_updates": args.warmup_updates,
                         "total_num_update": args.total_num_update or args.max_update,
                         "end_learning_rate": args.end_learning_rate,
                         "power": args.power, "lr": [setup.lr]},
    }


def fairseq_checkpoint(ckpt: dict, objective, cfg: dict, best) -> dict:
    """An :mod:`s3prl.train` checkpoint -> fairseq's layout; the weights in fairseq's names under ``model``,
    the resume state (everything but the weights) under ``extra_state["s3prl"]``."""
    from .pretraining import fairseq_state_dict

    resume = {k: v for k, v in ckpt.items() if k != "Objective"}
    return {"args": None, "cfg": cfg, "model": fairseq_state_dict(objective.model), "criterion": None,
            "optimizer_history": [{"criterion_name": "Wav2vecCriterion", "optimizer_name": "FairseqAdam",
                                   "lr_scheduler_state": {"best": best}, "num_updates": int(ckpt["Step"])}],
            "task_state": {}, "last_optimizer_state": None,
            "extra_state": {"train_iterator": {"version": 2, "epoch": int(ckpt["Epoch"]) + 1,
                                               "iterations_in_epoch": int(ckpt["Position"]), "shuffle": True},
                            "val_loss": best, "s3prl": resume}}


def atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def read_resumable(path: Path) -> tuple[dict, dict]:
    """``checkpoint_last.pt`` of this command (pre-training or fine-tuning) -> (checkpoint, its extra_state),
    or an error saying why it cannot be resumed."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001
        raise RecipeError(f"{path} cannot be read as a checkpoint written by `s3prl wav2vec2 train` (delete it, or "
                          "choose another --save-dir, to start a new run)") from None
    extra = obj.get("extra_state") if isinstance(obj, dict) else None
    if not isinstance(extra, dict) or "s3prl" not in extra:
        raise RecipeError(f"{path} was not written by `s3prl wav2vec2 train` (no resume state): fairseq's own "
                          "checkpoints cannot be resumed here; choose another --save-dir")
    return obj, extra


def load_resume(path: Path, objective) -> dict:
    """``checkpoint_last.pt`` written by this command -> the :mod:`s3prl.train` resume checkpoint."""
    from .pretraining import from_fairseq

    obj, extra = read_resumable(path)
    loaded = from_fairseq(obj, str(path))
    state = objective.state_dict()
    mine = loaded.state_dict()
    if set(mine) != {k[len("model."):] for k in state if k.startswith("model.")}:
        raise RecipeError(f"{path}: its model does not match this command's architecture flags (resume with the "
                          "flags of the run that wrote it, or choose another --save-dir)")
    state.update({f"model.{k}": v for k, v in mine.items()})
    state["num_updates"] = torch.tensor(int(extra["s3prl"]["Step"]))
    return dict(extra["s3prl"], Objective=state)
