"""The task object, its parts and the table every task kind registers into.

A :class:`Task` owns no loop, no files and no logger: ``runner`` reads its fields. Each task kind lives in
its own module of this package (``utterance``: classification and verification) and registers its tasks
with :func:`register`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch.nn as nn

from ..data import Example


class Downstream(nn.Module):
    """A task's trainable part (the checkpoint's ``Downstream``): ``head`` and, when it has weights, ``loss``."""

    def __init__(self, head: nn.Module, loss: nn.Module | None = None):
        super().__init__()
        self.head = head
        self.loss = loss



@dataclass(frozen=True)
class Objective:
    """How a task trains and is scored.

    ``loss(downstream, features, lengths, labels)`` -> scalar; ``predict(downstream, features, lengths)`` ->
    one prediction per utterance; ``score(predictions {uid: prediction}, examples, trials)`` -> metrics.
    """

    loss: Callable
    predict: Callable
    score: Callable
    write: Callable | None = None  # write(folder, split, predictions, examples): the task's own output files





@dataclass(frozen=True)
class Task:
    """One downstream task, declared.

    Attributes:
        corpus: ``corpus(**options) -> {"train": [...], "dev": [...], "test": [...]}`` of examples.
        options: the corpus options with their defaults (``None`` marks a required path).
        build: ``build(feature_size, classes) -> Downstream``.
        objective: loss, prediction and score.
        metric / higher_better: the number reported; ``select`` is the one that picks the best checkpoint.
        train: the original's ``runner``/``optimizer`` values (``TrainConfig`` fields).
        data: ``batch_seconds`` (padded audio per training batch), ``eval_batch_seconds``, ``crop_seconds``
            (random training crops), ``balanced`` (class-balanced draws), ``min_seconds`` (drop shorter
            training utterances), ``dither`` (white noise added to the audio: 3e-5, one 16-bit step, for the
            band-limited or synthesized recordings of the small tasks; the SUPERB tasks add none).
        classes: the number of classes when fixed by the task (else counted from the training labels).
        trials: ``trials(options, splits) -> [(uid1, uid2, target)]`` for verification tasks.
        eval_splits: evaluated during training (the first one picks the best checkpoint); empty for ASV,
            where every saved checkpoint is tested instead, as the original.
        folds: > 0 when results are averaged over folds selected by the ``fold`` option (ER).
    """

    name: str
    description: str
    corpus: Callable[..., dict]
    options: dict
    build: Callable[[int, object], Downstream]
    objective: Objective
    metric: str
    higher_better: bool = True
    select: str | None = None
    train: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    classes: int | None = None
    trials: Callable[[dict, dict], list] | None = None
    eval_splits: tuple[str, ...] = ("dev",)
    folds: int = 0

    @property
    def select_metric(self) -> str:
        return self.select or self.metric

    def bind(self, options: dict, downsample_rate: int) -> dict:
        """The task options completed with what depends on the upstream (SD: the label frame shift)."""
        return options

    def configure(self, downstream: Downstream, options: dict) -> None:
        """Attach what the current options add to a built head and is not a weight (ASR: an LM decoder)."""

    def batch_sampler(self, dataset, options: dict, seed: int, rank: int = 0, world: int = 1):
        """The training batches when the task forms its own (GE2E: N speakers x M utterances), else ``None``
        (duration-bucketed). A sampler has ``set_epoch(epoch, start)`` and ``__len__``."""
        return None

    def load(self, options: dict) -> dict[str, list[Example]]:
        """The splits, after checking the options (a required path left unset gets a clear error)."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(f"task {self.name}: unknown option(s) {unknown}; allowed: {sorted(self.options)}")
        merged = {**self.options, **options}
        missing = [k for k, v in merged.items() if v is None and k in REQUIRED]
        if missing:
            flags = " ".join(f"-o task.{k}=/path" for k in missing)
            raise ValueError(f"task {self.name} needs {', '.join(missing)}: pass {flags} (or set them in -c config)")
        return self.corpus(**merged)

    def count_classes(self, train: Sequence[Example]):
        """The head's output size: fixed, or counted from the training labels (per slot for tuples)."""
        if self.classes is not None:
            return self.classes
        labels = [ex.label for ex in train]
        if not labels:
            raise ValueError(f"task {self.name}: the training split is empty")
        if isinstance(labels[0], tuple):
            return tuple(max(y[k] for y in labels) + 1 for k in range(len(labels[0])))
        return max(labels) + 1


REQUIRED = {"root"}  # options that must be set by the user


def data_root(env: str) -> str | None:
    """A default root below ``$S3PRL_DATA`` / ``$S3PRL_TEST_DATA`` (the shared real-recordings folder)."""
    base = os.environ.get("S3PRL_DATA") or os.environ.get("S3PRL_TEST_DATA")
    return os.path.join(base, env) if base and os.path.isdir(os.path.join(base, env)) else None


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    TASKS[task.name] = task
    return task


def get(name: str) -> Task:
    """The task called ``name`` (a clear error lists the others)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}")
    return TASKS[name]
