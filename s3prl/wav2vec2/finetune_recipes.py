"""The seed's wav2vec 2.0 CTC fine-tuning recipes (fairseq ``examples/wav2vec/config/finetuning/base_*.yaml``) as
data, and fairseq's ``tri_stage`` learning-rate schedule.

Each preset holds the settings a recipe changes from fairseq's defaults, grouped as fairseq groups them
(``model`` = ``wav2vec_ctc`` fine-tuning options, ``optimization``, ``lr_scheduler``, ``criterion``, ...). The
model options map onto :class:`s3prl.wav2vec2.finetune.FineTuneConfig` through :func:`finetune_config`.
``base_10m`` / ``base_1h`` / ``base_10h`` / ``base_100h`` / ``base_960h`` are the paper's labelled splits (10 min,
1 h, 10 h, 100 h, 960 h of LibriSpeech / Libri-light) for the BASE model.
"""

from __future__ import annotations

import copy
import math

_COMMON = {
    "common": {"fp16": True, "log_format": "json", "log_interval": 200},
    "checkpoint": {"no_epoch_checkpoints": True, "best_checkpoint_metric": "wer"},
    "task": {"_name": "audio_finetuning", "normalize": False, "labels": "ltr"},
    "dataset": {"num_workers": 6, "max_tokens": 3200000, "skip_invalid_size_inputs_valid_test": True,
                "valid_subset": "dev_other"},
    "criterion": {"_name": "ctc", "zero_infinity": True},
    "optimizer": {"_name": "adam", "adam_betas": (0.9, 0.98), "adam_eps": 1e-08},
    "lr_scheduler": {"_name": "tri_stage", "phase_ratio": (0.1, 0.4, 0.5), "final_lr_scale": 0.05},
}
_MODEL = {"_name": "wav2vec_ctc", "apply_mask": True, "mask_prob": 0.65, "mask_channel_prob": 0.5,
          "mask_channel_length": 64, "layerdrop": 0.1, "activation_dropout": 0.1, "feature_grad_mult": 0.0,
          "freeze_finetune_updates": 0}


def _recipe(model: dict, optimization: dict, world_size: int = 2, **sections) -> dict:
    out = copy.deepcopy(_COMMON)
    out["model"] = {**_MODEL, **model}
    out["optimization"] = {"sentence_avg": True, "update_freq": (4,), **optimization}
    out["distributed_training"] = {"ddp_backend": "legacy_ddp", "distributed_world_size": world_size}
    for name, values in sections.items():
        out[name] = {**out.get(name, {}), **values}
    return out


_LOW = {"validate_after_updates": 10000}  # the low-resource splits: no validation before the encoder trains
_KEEP_ONE = {"keep_interval_updates": 1}
PRESETS: dict[str, dict] = {
    "base_10m": _recipe({"mask_channel_prob": 0.25, "freeze_finetune_updates": 10000},
                        {"max_update": 13000, "lr": (0.00005,)}, dataset={**_LOW, "validate_interval": 1000},
                        checkpoint={**_KEEP_ONE, "save_interval": 1000, "save_interval_updates": 50}),
    "base_1h": _recipe({"mask_channel_prob": 0.25, "freeze_finetune_updates": 10000},
                       {"max_update": 13000, "lr": (0.00005,)}, dataset={**_LOW, "validate_interval": 1000},
                       checkpoint={**_KEEP_ONE, "save_interval": 50, "save_interval_updates": 1000}),
    "base_10h": _recipe({"layerdrop": 0.05, "freeze_finetune_updates": 10000},
                        {"max_update": 20000, "lr": (0.00005,)}, dataset={**_LOW, "validate_interval": 50},
                        checkpoint={**_KEEP_ONE, "save_interval": 50, "save_interval_updates": 10000}),
    "base_100h": _recipe({}, {"max_update": 80000, "lr": (0.00003,)}),
    "base_960h": _recipe({"mask_prob": 0.5, "mask_channel_prob": 0.1}, {"max_update": 320000, "lr": (0.0001,)},
                         world_size=8),
}
del PRESETS["base_960h"]["optimization"]["update_freq"]  # base_960h.yaml keeps fairseq's default [1]
SEED_RECIPE = "base_100h"


def preset(name: str) -> dict:
    """A deep copy of one recipe (``KeyError`` with the known names otherwise)."""
    if name not in PRESETS:
        raise KeyError(f"unknown wav2vec 2.0 fine-tuning recipe {name!r} (known: {', '.join(PRESETS)})")
    return copy.deepcopy(PRESETS[name])


def tri_stage(lr: float, max_update: int | None = None, phase_ratio=(0.1, 0.4, 0.5), init_lr_scale: float = 0.01,
              final_lr_scale: float = 0.01, warmup_steps: int = 0, hold_steps: int = 0, decay_steps: int = 0):
    """fairseq's ``tri_stage`` learning rate of the update that follows ``updates`` finished ones.

    Stage lengths are ``int(max_update * ratio)`` for the three ratios (or the given step counts when
    ``phase_ratio`` is None). Warm-up: linear from ``init_lr_scale * lr`` (``updates`` = 0) towards ``lr``,
    reaching it at ``warmup_steps``; hold: ``lr``; decay (``updates - warmup - hold`` = k in 0..decay_steps
    inclusive): ``lr * exp(-k * ln(1 / final_lr_scale) / decay_steps)``; afterwards ``final_lr_scale * lr``."""
    if phase_ratio is not None:
        if max_update is None or max_update <= 0:
            raise ValueError("tri_stage with phase_ratio needs max_update > 0")
        if len(phase_ratio) != 3 or abs(sum(phase_ratio) - 1.0) > 1e-6:
            raise ValueError(f"phase_ratio must be three numbers that sum to 1, got {tuple(phase_ratio)}")
        warmup_steps, hold_steps, decay_steps = (int(max_update * r) for r in phase_ratio)
    if warmup_steps + hold_steps + decay_steps <= 0:
        raise ValueError("tri_stage needs warm-up, hold or decay steps (or phase_ratio and max_update)")
    if decay_steps <= 0 or not 0 < final_lr_scale:
        raise ValueError("tri_stage needs decay_steps > 0 and final_lr_scale > 0")
    init_lr, final_lr = init_lr_scale * lr, final_lr_scale * lr
    warmup_rate = (lr - init_lr) / warmup_steps if warmup_steps else 0.0
    decay_factor = -math.log(final_lr_scale) / decay_steps

    def rate(updates: int) -> float:
        if updates < warmup_steps:
            return init_lr + warmup_rate * updates
        k = updates - warmup_steps
        if k < hold_steps:
            return lr
        k -= hold_steps
        if k <= decay_steps:
            return lr * math.exp(-decay_factor * k)
        return final_lr

    rate.stages = (warmup_steps, hold_steps, decay_steps)
    return rate


def schedule(recipe: dict):
    """The ``tri_stage`` rate function of a recipe (``optimization.lr`` / ``max_update`` + ``lr_scheduler``)."""
    opt, sched = recipe["optimization"], recipe["lr_scheduler"]
    if sched.get("_name") != "tri_stage":
        raise ValueError(f"recipe lr_scheduler is {sched.get('_name')!r}, not tri_stage")
    return tri_stage(float(opt["lr"][0]), opt.get("max_update"), sched.get("phase_ratio"),
                     sched.get("init_lr_scale", 0.01), sched.get("final_lr_scale", 0.01),
                     sched.get("warmup_steps", 0), sched.get("hold_steps", 0), sched.get("decay_steps", 0))
