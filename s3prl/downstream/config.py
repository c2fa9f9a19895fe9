"""Run configuration: the task's defaults, a ``-c`` YAML file, ``-o`` overrides; and how the upstream is read.

A configuration is a dict with sections ``train`` (``s3prl.train.TrainConfig`` fields), ``task`` (the corpus
options) and ``data`` (batching, crops, cache); it is saved as ``config.yaml`` and in every checkpoint.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass

import yaml

from .. import train as trainer
from ..overrides import numeric, override_items
from . import tasks

DATA_DEFAULTS = {"batch_seconds": 32.0, "eval_batch_seconds": 128.0, "crop_seconds": None, "balanced": False,
                 "min_seconds": None, "dither": 0.0, "num_workers": 2, "cache": True, "cache_fp16": False, "cache_dir": None}
# the original's `-o config.<section>.<key>` names for the values that have a home here
ORIGINAL_KEYS = {"runner.total_steps": "train.total_steps", "runner.gradient_clipping": "train.gradient_clipping",
                 "runner.gradient_accumulate_steps": "train.gradient_accumulate_steps",
                 "runner.log_step": "train.log_step", "runner.eval_step": "train.eval_step",
                 "runner.save_step": "train.save_step", "runner.max_keep": "train.max_keep",
                 "optimizer.lr": "train.lr", "optimizer.torch_optim_name": "train.optimizer"}


def default_config(task: tasks.Task) -> dict:
    return {"task_name": task.name,
            "train": {**asdict(trainer.TrainConfig()), **task.train},
            "task": dict(task.options),
            "data": {**DATA_DEFAULTS, **task.data}}


def merge(config: dict, update: dict, where: str) -> dict:
    """``config`` with ``update``'s values; unknown keys raise naming ``where``."""
    out = copy.deepcopy(config)
    for section, values in update.items():
        if section == "task_name":
            continue
        if section not in out or not isinstance(values, dict):
            raise ValueError(f"{where}: unknown section {section!r}; sections: train, task, data")
        unknown = sorted(set(values) - set(out[section]))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown} in {section!r}; known: {sorted(out[section])}")
        out[section].update({k: numeric(v) for k, v in values.items()})
    return out


def parse_overrides(text: str | None) -> dict:
    """``"train.lr=1e-3,,task.root=/data/x"`` -> ``{"train": {"lr": 0.001}, "task": {"root": "/data/x"}}``.

    Values are read as YAML scalars (numbers, booleans, null, lists); nothing is evaluated. The original's
    ``config.runner.total_steps=...`` style is accepted for the keys in ``ORIGINAL_KEYS``.
    """
    out: dict = {}
    for key, raw in override_items(text):
        key = key.removeprefix("config.").removeprefix("downstream_expert.datarc.")
        key = ORIGINAL_KEYS.get(key, key)
        section, dot, name = key.partition(".")
        if not dot:
            raise ValueError(f"-o: key {key!r} must be SECTION.NAME, e.g. train.lr or task.root")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as err:
            raise ValueError(f"-o: the value of {key!r} is not a YAML scalar ({raw!r}): {err}") from None
        out.setdefault(section, {})[name] = value
    return out


def read_config_file(path: str) -> dict:
    """A ``-c`` YAML file as a dict of sections; YAML errors and non-mappings name the file."""
    try:
        with open(path) as f:
            loaded = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise ValueError(f"-c {path}: not valid YAML: {err}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(f"-c {path}: expected a mapping with sections train / task / data, got a "
                         f"{type(loaded).__name__}")
    return loaded


def original_sections(loaded: dict, path: str) -> tuple[str | None, dict]:
    """A ``-c`` file as ``(task name or None, sections)``: an original ``run_downstream.py -d ctc -c X.yaml`` file
    (``runner`` / ``optimizer`` / ``downstream_expert``) is translated into our sections and names its task."""
    if "downstream_expert" not in loaded:
        return None, loaded
    return tasks.ctc.from_original_config(loaded, f"-c {path}")


def task_of(args) -> tasks.Task:
    """The task of ``-d``; ``-d ctc`` (the original's expert name) takes it from the original config of ``-c``."""
    if args.downstream != "ctc":
        return tasks.get(args.downstream)
    if not args.config:
        raise ValueError("-d ctc is the original's CTC expert: give its config with -c (e.g. snips.yaml, "
                         "sbcsae.yaml, cv_config/cv_es.yaml, libriphone.yaml), or name the task: "
                         "-d ctc_libriphone / ctc_snips / ctc_commonvoice / ctc_sbcsae")
    name, _ = original_sections(read_config_file(args.config), args.config)
    if name is None:
        raise ValueError(f"-d ctc: -c {args.config} is not an original ctc config (no downstream_expert section)")
    return tasks.get(name)


def build_config(task: tasks.Task, args) -> dict:
    config = default_config(task)
    if args.config:
        name, sections = original_sections(read_config_file(args.config), args.config)
        if name is not None and name != task.name:
            raise ValueError(f"-c {args.config} is an original config of task {name}, not {task.name}: "
                             f"use -d {name} (or -d ctc)")
        config = merge(config, sections, args.config)
    config = merge(config, parse_overrides(args.override), "-o")
    flags = {name: getattr(args, name) for name in config["train"] if getattr(args, name, None) is not None}
    config["train"].update(flags)
    return validate(config)


def validate(config: dict) -> dict:
    """Check every ``train`` and ``data`` value by type and range (the error names the key); returns ``config``
    with whole floats of integer fields made integers."""
    import math

    config["train"] = asdict(trainer.TrainConfig(**config["train"]))  # TrainConfig checks its own values
    data = config["data"]

    def fail(key: str, rule: str) -> None:
        raise ValueError(f"data.{key} = {data[key]!r}: {rule} (set it with -o data.{key}=VALUE or in the config file)")

    def number(key: str, minimum: float, inclusive: bool, optional: bool) -> None:
        value = data[key]
        if value is None and optional:
            return
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value < minimum or (value == minimum and not inclusive):
            fail(key, f"must be a finite number {'>=' if inclusive else '>'} {minimum:g}" + (" or null" if optional else ""))

    number("batch_seconds", 0.0, False, False)
    number("eval_batch_seconds", 0.0, False, False)
    number("crop_seconds", 0.0, False, True)
    number("min_seconds", 0.0, True, True)
    number("dither", 0.0, True, False)
    if isinstance(data["num_workers"], bool) or not isinstance(data["num_workers"], int) or data["num_workers"] < 0:
        fail("num_workers", "must be an integer >= 0")
    for key in ("balanced", "cache", "cache_fp16"):
        if not isinstance(data[key], bool):
            fail(key, "must be true or false")
    if data["cache_dir"] is not None and not isinstance(data["cache_dir"], str):
        fail("cache_dir", "must be a folder path")
    return config


@dataclass
class UpstreamSpec:
    """How the upstream is built and read (stored in every checkpoint as ``Config["upstream"]``)."""

    name: str
    ckpt: str | None = None
    extra_conf: dict | None = None
    feature_selection: str = "hidden_states"
    layer: int | None = None
    trainable: bool = False
    normalize: bool = False  # layer norm of each hidden state before the weighted sum


def layer_selection(spec: UpstreamSpec, num_layers: int) -> list[int] | None:
    """The Featurizer's layers: ``-l`` picks one; ``-s last_hidden_state`` / ``hidden_state_N`` too."""
    if spec.layer is not None:
        return [spec.layer]
    if spec.feature_selection == "last_hidden_state":
        return [num_layers - 1]
    if spec.feature_selection.startswith("hidden_state_"):
        return [int(spec.feature_selection.rsplit("_", 1)[1])]
    return None


def spec_from_args(args) -> UpstreamSpec:
    try:
        extra = json.loads(args.extra_conf) if args.extra_conf else None
    except json.JSONDecodeError as err:
        raise ValueError(f"--extra-conf is not valid JSON ({err}): {args.extra_conf!r}") from None
    if extra is not None and not isinstance(extra, dict):
        raise ValueError(f"--extra-conf must be a JSON object such as '{{\"key\": value}}', got {args.extra_conf!r}")
    return UpstreamSpec(name=args.upstream, ckpt=args.upstream_ckpt, extra_conf=extra,
                        feature_selection=args.upstream_feature_selection, layer=args.upstream_layer_selection,
                        trainable=args.upstream_trainable, normalize=args.upstream_feature_normalize)
