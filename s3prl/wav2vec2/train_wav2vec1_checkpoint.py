"""fairseq 0.12-format checkpoints of ``s3prl wav2vec2 train --arch wav2vec`` (wav2vec 1.0 / vq-wav2vec): the
``cfg`` with fairseq's ``wav2vec`` model fields, the weights in fairseq's names, and the exact-resume reader."""

from __future__ import annotations

from pathlib import Path

import torch

from .manifest import RecipeError
from .train_checkpoint import read_resumable


def fairseq_model_cfg(args) -> dict:
    """cfg.model of fairseq's ``wav2vec`` model (every field of its Wav2VecConfig, values as fairseq stores them:
    the conv lists and ``offset`` as the strings given)."""
    keys = ("prediction_steps", "sample_distance", "cross_sample_negatives", "num_negatives", "conv_feature_layers",
            "conv_aggregator_layers", "dropout", "dropout_features", "dropout_agg", "aggregator", "gru_dim",
            "no_conv_bias", "agg_zero_pad", "skip_connections_feat", "skip_connections_agg", "residual_scale",
            "log_compression", "balanced_classes", "project_features", "non_affine_group_norm", "offset",
            "activation", "vq_type", "vq_vars", "vq_groups", "vq_dim", "vq_depth", "combine_groups", "vq_temp",
            "vq_gamma", "infonce")
    return {"_name": "wav2vec", **{k: getattr(args, k) for k in keys}}


def fairseq_cfg(args, setup, model_cfg: dict) -> dict:
    """The checkpoint's ``cfg`` (a plain dict, as fairseq 0.12's trainer writes it)."""
    from .train_checkpoint import fairseq_cfg as pretraining_cfg

    sched = {"_name": args.lr_scheduler, "warmup_updates": args.warmup_updates, "lr": [setup.lr]}
    if args.lr_scheduler == "cosine":
        sched.update(warmup_init_lr=args.warmup_init_lr, min_lr=args.min_lr, t_mult=args.t_mult,
                     lr_period_updates=args.lr_period_updates, lr_shrink=args.lr_shrink, max_update=args.max_update)
    elif args.lr_scheduler == "polynomial_decay":
        sched.update(total_num_update=args.total_num_update or args.max_update, power=args.power,
                     end_learning_rate=args.end_learning_rate)
    cfg = pretraining_cfg(args, setup, model_cfg)  # wav2vec 2.0's, but for these sections
    cfg["optimization"]["stop_min_lr"] = args.stop_min_lr
    cfg["criterion"] = {"_name": "wav2vec", "infonce": bool(args.infonce), "loss_weights": setup.pretrain.loss_weights
                        and list(setup.pretrain.loss_weights), "log_keys": setup.log_keys}
    cfg["optimizer"]["adam_betas"] = list(setup.betas)
    cfg["lr_scheduler"] = sched
    return cfg


def fairseq_checkpoint(ckpt: dict, objective, cfg: dict, best) -> dict:
    """An :mod:`s3prl.train` checkpoint -> fairseq 0.12's layout (weights in fairseq's names; the resume state
    under ``extra_state["s3prl"]``)."""
    from .wav2vec1_pretraining import fairseq_state_dict

    resume = {k: v for k, v in ckpt.items() if k != "Objective"}
    return {"args": None, "cfg": cfg, "model": fairseq_state_dict(objective.model), "criterion": None,
            "optimizer_history": [{"criterion_name": "Wav2vecCriterion", "optimizer_name": "FairseqAdam",
                                   "lr_scheduler_state": {"best": best}, "num_updates": int(ckpt["Step"])}],
            "task_state": {}, "last_optimizer_state": None,
            "extra_state": {"train_iterator": {"version": 2, "epoch": int(ckpt["Epoch"]) + 1,
                                               "iterations_in_epoch": int(ckpt["Position"]), "shuffle": True},
                            "val_loss": best, "s3prl": resume}}


def load_resume(path: Path, objective) -> dict:
    from .wav2vec1_pretraining import from_fairseq

    obj, extra = read_resumable(path)
    try:
        loaded = from_fairseq(obj, str(path)).state_dict()
    except Exception as err:  # noqa: BLE001  (another architecture's checkpoint)
        raise RecipeError(f"{path} is not a wav2vec / vq-wav2vec checkpoint of this command ({err}); choose "
                          "another --save-dir") from None
    state = objective.state_dict()
    if {k: tuple(v.shape) for k, v in loaded.items()} != {k[6:]: tuple(v.shape) for k, v in state.items()
                                                          if k.startswith("model.")}:
        raise RecipeError(f"{path}: its model does not match this command's architecture flags (resume with the "
                          "flags of the run that wrote it, or choose another --save-dir)")
    state.update({f"model.{k}": v for k, v in loaded.items()})
    state["num_updates"] = torch.tensor(int(extra["s3prl"]["Step"]))
    return dict(extra["s3prl"], Objective=state)
