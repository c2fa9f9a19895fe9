"""Pre-training configurations: the original's two files per method, as named presets, plus ``-o`` overrides.

A run has two configurations, exactly the original's files:

* the *model* configuration (``-g``, the original ``config_model.yaml``): sections ``model`` (``paras``),
  ``task`` and ``data`` (``audio``, the front-end); it is what the upstream readers find in the checkpoint;
* the *runner* configuration (``-c``, the original ``config_runner.yaml``): sections ``runner``,
  ``optimizer`` and ``pretrain_expert.datarc`` (the data: ``libri_root`` + ``sets``, ``audio_dir`` or
  ``manifest``, ``train_batch_size``, ``max_timestep``).

A given file replaces the method's preset section by section after checking every key against the preset:
an unknown key is named, with the known ones.
"""

from __future__ import annotations

import copy

import yaml

from ..overrides import numeric, override_items

# -------------------------------------------------------------------------------------------------
# presets: the original's pretrain/<method>/config_model.yaml and config_runner.yaml
# -------------------------------------------------------------------------------------------------

FBANK_AUDIO = {"feat_type": "fbank", "feat_dim": 80, "frame_length": 25, "frame_shift": 10, "decode_wav": False,
               "cmvn": True}
APC_MODEL = {
    "model": {"paras": {"num_layers": 3, "hidden_size": 512, "dropout": 0.1, "residual": True}},
    "task": {"sequence_length": 1500, "n_future": 5},
    "data": {"audio": dict(FBANK_AUDIO)},
}
VQ_APC_MODEL = copy.deepcopy(APC_MODEL)
VQ_APC_MODEL["model"]["paras"]["vq"] = {"codebook_size": [512], "code_dim": [512], "gumbel_temperature": 0.5}

DATARC = {"num_workers": 8, "train_batch_size": 8, "max_timestep": -200, "libri_root": None,
          "file_path": "data/len_for_bucket", "sets": ["train-clean-100", "train-clean-360", "train-other-500"],
          "audio_dir": None, "manifest": None}  # audio_dir / manifest: our additions (any folder, a file list)
APC_RUNNER = {
    "runner": {"n_epochs": 100, "total_steps": -1, "gradient_clipping": 5.0, "gradient_accumulate_steps": 4,
               "log_step": 10000, "save_step": 10000, "max_keep": 5, "fp16": False},
    "optimizer": {"name": "Adam", "lr": 0.0001},
    "pretrain_expert": {"datarc": dict(DATARC)},
}

TRANSFORMER = {"input_dim": -1, "hidden_size": 768, "num_hidden_layers": 3, "num_attention_heads": 12,
               "intermediate_size": 3072, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
               "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02, "layer_norm_eps": 1e-12,
               "share_layer": False, "pre_layer_norm": False}
MAM_TASK = {"loss": "L1", "sequence_length": 1500, "position_encoding_size": 768, "mask_proportion": 0.15,
            "mask_consecutive_min": 7, "mask_consecutive_max": 7, "mask_allow_overlap": True,
            "mask_bucket_ratio": 1.5, "mask_frequency": 0.0, "noise_proportion": 0.0}
LOG_MEL = {"target_level": -25, "win_ms": 25, "hop_ms": 10, "n_freq": 201, "n_mels": 80, "n_mfcc": 13,
           "input": {"feat_type": "mel", "channel": 0, "log": True, "delta": 0, "cmvn": True},
           "target": {"feat_type": "mel", "channel": 1, "log": True, "delta": 0, "cmvn": True}}
KALDI_FBANK = {"kaldi": {"feat_type": "fbank", "spectrogram": {"frame_length": 25.0, "frame_shift": 10.0},
                         "fbank": {"num_mel_bins": 80, "frame_length": 25.0, "frame_shift": 10.0,
                                   "use_log_fbank": True},
                         "mfcc": {"num_ceps": 13, "frame_length": 25.0, "frame_shift": 10.0}},
               "delta": {"order": 2, "win_length": 5}, "cmvn": {"use_cmvn": True}}
MOCKINGJAY_MODEL = {  # pretrain/mockingjay/config_model.yaml: fbank 80 + deltas (240-d), time masking
    "transformer": dict(TRANSFORMER, hidden_dropout_prob=0.3, attention_probs_dropout_prob=0.3),
    "task": dict(MAM_TASK), "audio": copy.deepcopy(KALDI_FBANK)}
TERA_MODEL = {  # pretrain/tera/exp_model_config/logMelBase-T-F-M.yaml (the released `tera`)
    "transformer": dict(TRANSFORMER, hidden_dropout_prob=0.3, attention_probs_dropout_prob=0.3),
    "task": dict(MAM_TASK, mask_frequency=0.2, noise_proportion=0.15), "audio": copy.deepcopy(LOG_MEL)}
ALBERT_MODEL = {  # pretrain/audio_albert/config_model.yaml: one shared layer
    "transformer": dict(TRANSFORMER, share_layer=True), "task": dict(MAM_TASK), "audio": copy.deepcopy(LOG_MEL)}
SPEC_AUGMENT_MODEL = {  # pretrain/spec_augment/config_model.yaml
    "transformer": dict(TRANSFORMER),
    "task": {"loss": "L1", "sequence_length": 1500, "position_encoding_size": 768, "mask_T": 100, "mask_F": 9,
             "num_T": 2, "num_F": 2, "p": 1.0},
    "audio": copy.deepcopy(LOG_MEL)}
MAM_RUNNER = {
    "runner": {"n_epochs": -1, "total_steps": 1000000, "gradient_clipping": 5.0, "gradient_accumulate_steps": 4,
               "log_step": 50000, "save_step": 50000, "max_keep": 5, "fp16": False},
    "optimizer": {"name": "AdamW_with_schedule", "lr": 2e-4, "warmup_proportion": 0.07},
    "pretrain_expert": {"datarc": dict(DATARC)},
}
ALBERT_RUNNER = copy.deepcopy(MAM_RUNNER)
ALBERT_RUNNER["runner"].update(gradient_accumulate_steps=1, fp16=True)
ALBERT_RUNNER["pretrain_expert"]["datarc"].update(train_batch_size=32, max_timestep=0)
SPEC_AUGMENT_RUNNER = copy.deepcopy(MAM_RUNNER)  # pretrain/spec_augment/config_runner.yaml
SPEC_AUGMENT_RUNNER["runner"]["gradient_accumulate_steps"] = 1
SPEC_AUGMENT_RUNNER["pretrain_expert"]["datarc"]["train_batch_size"] = 32

VQ_APC_RUNNER = copy.deepcopy(APC_RUNNER)  # pretrain/vq_apc/config_runner.yaml
VQ_APC_RUNNER["runner"].update(gradient_accumulate_steps=1, log_step=2500, save_step=2500)
VQ_APC_RUNNER["pretrain_expert"]["datarc"].update(train_batch_size=32, max_timestep=0)
NPC_MODEL = {  # pretrain/npc/config_model.yaml
    "model": {"paras": {"kernel_size": 15, "mask_size": 5, "n_blocks": 4, "hidden_size": 512, "dropout": 0.1,
                        "residual": True, "batch_norm": True, "activate": "relu", "disable_cross_layer": False,
                        "vq": {"codebook_size": [64, 64, 64, 64], "code_dim": [128, 128, 128, 128],
                               "gumbel_temperature": 1.0}}},
    "task": {"sequence_length": 1500, "n_future": 5},
    "data": {"audio": dict(FBANK_AUDIO)},
}
NPC_RUNNER = copy.deepcopy(VQ_APC_RUNNER)  # pretrain/npc/config_runner.yaml
NPC_RUNNER["optimizer"]["lr"] = 0.001

DISTILLER_MODEL = {  # pretrain/distiller/config_model.yaml, with the released DistilHuBERT's heads (layers 4, 8, 12)
    "distiller": {
        "extractor_mode": "default",
        "extractor_conv_feature_layers": "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2",
        "extractor_dropout": 0.0, "feature_grad_mult": 0.1, "conv_pos": 128, "conv_pos_groups": 16,
        "encoder_layers": 2, "encoder_embed_dim": 768, "encoder_ffn_embed_dim": 3072, "encoder_attention_heads": 12,
        "activation_fn": "gelu", "layer_norm_first": False, "attention_type": "original",
        "dropout": 0.1, "attention_dropout": 0.1, "activation_dropout": 0.1, "encoder_layerdrop": 0.0,
        "final_dim": 768, "out_layer_type": "expand-last", "n_tasks": 3, "task_emb_type": "expand-last",
        "loss_type": "l1", "feat_pen_loss": 0.0, "cosine_loss": 1.0, "pred_layer_id": [4, 8, 12],
        "init_teacher_conv_layers": True, "init_teacher_encoder_layers": True},
    # path, cache, cache_dtype: ours (a local teacher file; the teacher's targets cached on disk)
    "teacher": {"model": "hubert_base", "n_layers": 12, "path": None, "cache": True, "cache_dtype": "float32"},
    "task": {"sequence_length": 250000},  # samples (15.6 s)
    "audio": {"target_level": None},  # read and ignored by the original
}
DISTILLER_RUNNER = {  # pretrain/distiller/config_runner.yaml
    "runner": {"n_epochs": -1, "total_steps": 200000, "gradient_clipping": 5.0, "gradient_accumulate_steps": 1,
               "log_step": 50, "save_step": 10000, "max_keep": 10, "fp16": True},
    "optimizer": {"name": "AdamW_with_schedule", "lr": 2e-4, "warmup_proportion": 0.07, "betas": [0.9, 0.98],
                  "eps": 1e-6, "weight_decay": 1e-6},
    "pretrain_expert": {"datarc": dict(DATARC, num_workers=24, train_batch_size=24, max_timestep=0)},
}

PRESETS = {  # method -> (model configuration, runner configuration)
    "apc": (APC_MODEL, APC_RUNNER),
    "vq_apc": (VQ_APC_MODEL, VQ_APC_RUNNER),
    "npc": (NPC_MODEL, NPC_RUNNER),
    "mockingjay": (MOCKINGJAY_MODEL, MAM_RUNNER),
    "tera": (TERA_MODEL, MAM_RUNNER),
    "audio_albert": (ALBERT_MODEL, ALBERT_RUNNER),
    "spec_augment": (SPEC_AUGMENT_MODEL, SPEC_AUGMENT_RUNNER),
    "distiller": (DISTILLER_MODEL, DISTILLER_RUNNER),
}
ATOMIC = {"audio", "vq"}  # sections a file gives whole (checked when the front-end / quantiser is built)
# keys a file may have that the preset leaves out (optional in the original)
OPTIONAL = {"model.paras": {"vq", "dim_bottleneck"}, "optimizer": {"warmup_proportion", "betas", "eps", "weight_decay"},
            "distiller": {"out_layer_inter_dim", "task_emb_size", "layer_emb_size"}}
OPTIMIZERS = ("Adam", "AdamW", "AdamW_with_schedule")


def presets(method: str) -> tuple[dict, dict]:
    if method not in PRESETS:
        raise ValueError(f"unknown pre-training method {method!r}; available: {', '.join(PRESETS)}")
    model, runner = PRESETS[method]
    return copy.deepcopy(model), copy.deepcopy(runner)


def read_yaml(path: str, what: str) -> dict:
    try:
        with open(path) as f:
            loaded = yaml.safe_load(f)
    except OSError as err:
        raise ValueError(f"{what} {path}: cannot be read ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{what} {path} is not valid YAML: {err}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{what} {path} must be a mapping of sections (e.g. model:, task:, data:)")
    return loaded


def check_keys(given: dict, preset: dict, where: str, prefix: str = "") -> None:
    """Every key of ``given`` must exist in ``preset`` (recursively, dicts only); else name it."""
    for key, value in given.items():
        path = f"{prefix}{key}"
        allowed = OPTIONAL.get(prefix.rstrip("."), set())
        if key not in preset and key not in allowed:
            raise ValueError(f"{where}: unknown config key {path!r}; known here: {sorted(set(preset) | allowed)}")
        if isinstance(preset.get(key), dict) and preset[key] and key not in ATOMIC:
            if not isinstance(value, dict):
                raise ValueError(f"{where}: {path!r} must be a mapping")
            check_keys(value, preset[key], where, path + ".")


def fill(given: dict, preset: dict) -> dict:
    """``given`` with the preset's values where it has none (the original read absent keys as absent:
    we give them the preset's value, which is the original default)."""
    out = copy.deepcopy(preset)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ATOMIC:
            out[key] = fill(value, out[key])
        else:
            out[key] = copy.deepcopy(value)
    return out


def load(method: str, model_file: str | None, runner_file: str | None) -> tuple[dict, dict]:
    """The method's (model, runner) configurations, each replaced by its file when given (checked)."""
    model, runner = presets(method)
    if model_file:
        given = read_yaml(model_file, "model config (-g)")
        check_keys(given, model, f"-g {model_file}")
        if "paras" in given.get("model", {}) and "vq" not in given["model"]["paras"]:
            model["model"]["paras"].pop("vq", None)  # a file without vq trains plain APC, as the original
        model = fill(given, model)
    if runner_file:
        given = read_yaml(runner_file, "runner config (-c)")
        check_keys(given, runner, f"-c {runner_file}")
        runner = fill(given, runner)
    return model, runner


def parse_value(text: str):
    """A value of ``-o``: YAML (numbers, booleans, lists, quoted strings); nothing is evaluated."""
    text = text.strip()
    try:
        value = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return text
    return numeric(value)  # YAML 1.1 reads 1e-4 as a string


def apply_overrides(text: str | None, model: dict, runner: dict) -> None:
    """The original's ``-o "config.optimizer.lr=1e-3,,config.runner.total_steps=10"``: ``config.`` keys go to
    the runner configuration, ``upstream.`` (ours) to the model one. Unknown keys are named."""
    for key, raw in override_items(text):
        first, *path = key.split(".")
        if first not in ("config", "upstream") or not path:
            raise ValueError(f"-o: key {key!r} must start with config. (runner: runner, optimizer, "
                             "pretrain_expert) or upstream. (model: model, task, data)")
        target = runner if first == "config" else model
        for i, name in enumerate(path[:-1]):
            if not isinstance(target.get(name), dict):
                raise ValueError(f"-o: unknown config key {key!r} ({'.'.join(path[:i + 1])} is not a section)")
            target = target[name]
        allowed = OPTIONAL.get(".".join(path[:-1]), set())
        if path[-1] not in target and path[-1] not in allowed:
            raise ValueError(f"-o: unknown config key {key!r}; known here: {sorted(set(target) | allowed)}")
        target[path[-1]] = parse_value(raw)


def validate(method: str, model: dict, runner: dict) -> None:
    """Values by type and range, so that a typo fails now with its name."""
    run, opt, data = runner["runner"], runner["optimizer"], runner["pretrain_expert"]["datarc"]

    def integer(section: dict, key: str, where: str, minimum: int) -> None:
        value = section[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{where}.{key} = {value!r}: must be an integer >= {minimum}")

    for key, low in (("n_epochs", -(2**31)), ("total_steps", -(2**31)), ("gradient_accumulate_steps", 1),
                     ("log_step", 1),
                     ("save_step", 1), ("max_keep", 0)):
        integer(run, key, "runner", low)
    if run["n_epochs"] <= 0 and run["total_steps"] <= 0:
        raise ValueError("runner: set n_epochs > 0 or total_steps > 0")
    integer(data, "train_batch_size", "pretrain_expert.datarc", 1)
    integer(data, "max_timestep", "pretrain_expert.datarc", -(2**62))
    if opt["name"] not in OPTIMIZERS:
        raise ValueError(f"optimizer.name = {opt['name']!r}: this method trains with one of {OPTIMIZERS}")
    task = model["task"]
    integer(task, "sequence_length", "task", 0)
    if "distiller" in model:
        validate_distiller(model)
        return
    if "n_future" in task:  # APC series
        integer(task, "n_future", "task", 1)
        if model["data"]["audio"].get("feat_type") != "fbank":
            raise ValueError(f"data.audio.feat_type = {model['data']['audio'].get('feat_type')!r}: {method} uses "
                             "'fbank' (Kaldi fbank, as the original)")
        return
    if "mask_T" in task:  # SpecAugment pre-training
        for key in ("mask_T", "mask_F", "num_T", "num_F"):
            integer(task, key, "task", 0)
        check_position_size(model)
        return
    for key in ("mask_proportion", "mask_frequency", "noise_proportion"):
        value = task[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"task.{key} = {value!r}: must be a number in [0, 1]")
    integer(task, "mask_consecutive_min", "task", 1)
    integer(task, "mask_consecutive_max", "task", task["mask_consecutive_min"])
    check_position_size(model)


def check_position_size(model: dict) -> None:
    if model["task"]["position_encoding_size"] != model["transformer"]["hidden_size"]:
        raise ValueError(f"task.position_encoding_size = {model['task']['position_encoding_size']!r} must equal "
                         f"transformer.hidden_size = {model['transformer']['hidden_size']!r}")


def validate_distiller(model: dict) -> None:
    from .distiller import CACHE_DTYPES, student_config

    conf, teacher = model["distiller"], model["teacher"]
    if model["task"]["sequence_length"] and model["task"]["sequence_length"] < 400:
        raise ValueError(f"task.sequence_length = {model['task']['sequence_length']}: samples per crop, at least 400 "
                         "(one frame) or 0 (no crop)")
    for key in ("cosine_loss", "feat_pen_loss", "feature_grad_mult"):
        value = conf.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"distiller.{key} = {value!r}: must be a number >= 0")
    if not isinstance(teacher.get("model"), str) or not teacher["model"]:
        raise ValueError(f"teacher.model = {teacher.get('model')!r}: an S3PRLUpstream name (e.g. hubert_base, or "
                         "hubert_local with teacher.path=FILE)")
    n_layers, n_tasks = teacher.get("n_layers"), conf.get("n_tasks")
    if isinstance(n_layers, int) and isinstance(n_tasks, int) and n_tasks > n_layers:  # the original asserts it
        raise ValueError(f"distiller.n_tasks = {n_tasks} exceeds teacher.n_layers = {n_layers}")
    if teacher.get("cache_dtype", "float32") not in CACHE_DTYPES:
        raise ValueError(f"teacher.cache_dtype = {teacher.get('cache_dtype')!r}: one of {sorted(CACHE_DTYPES)}")
    student_config(model)  # every architecture key, by type and range
