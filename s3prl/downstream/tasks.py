"""The task table: each task is a small declarative object (corpus, head, objective, hyper-parameters).

A :class:`Task` owns no loop, no files and no logger: ``runner`` reads its fields. The SUPERB tasks keep
the original's defaults (``downstream/<task>/config.yaml``): optimizer, learning rate, steps, accumulation,
clipping, evaluation and save intervals. Batches are formed by padded duration instead of a count, the
budget being the original batch size times the typical (or cropped) utterance length of the corpus.

=====================  =======================================================  ==========================
name                   what                                                     metric (best on dev)
=====================  =======================================================  ==========================
``speech_commands``    KS: Speech Commands v0.01, 12 classes, balanced draws    accuracy (balanced acc.)
``fluent_commands``    IC: Fluent Speech Commands, action+object+location       accuracy (all three right)
``voxceleb1``          SID: VoxCeleb1 identification split, 1,251 speakers      accuracy
``emotion``            ER: IEMOCAP 4 classes, 5 folds by session (averaged)     accuracy
``sv_voxceleb1``       ASV: VoxCeleb1, x-vector + AM-softmax, official trials   EER (every checkpoint)
``fsdd_digits``        FSDD spoken digits (takes 0-4 test)                      accuracy
``fsdd_speakers``      FSDD speaker identification (6 speakers)                 accuracy
``librispeech_sid``    speaker identification on LibriSpeech-style folders      accuracy
``librispeech_asv``    speaker verification on held-out LibriSpeech speakers    EER
``demo_digits``        digits synthesized by ``s3prl demo`` (espeak-ng voices)  accuracy
=====================  =======================================================  ==========================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn as nn

from . import heads, metrics
from .corpora import fluent_commands, fsdd, iemocap, librispeech_speakers, speech_commands, voxceleb1
from .data import Example


class Downstream(nn.Module):
    """A task's trainable part (the checkpoint's ``Downstream``): ``head`` and, when it has weights, ``loss``."""

    def __init__(self, head: nn.Module, loss: nn.Module | None = None):
        super().__init__()
        self.head = head
        self.loss = loss


# ------------------------------------------------------------------------------------------------
# objectives: loss, per-utterance prediction, split score
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Objective:
    """How a task trains and is scored.

    ``loss(downstream, features, lengths, labels)`` -> scalar; ``predict(downstream, features, lengths)`` ->
    one prediction per utterance; ``score(predictions {uid: prediction}, examples, trials)`` -> metrics.
    """

    loss: Callable
    predict: Callable
    score: Callable


def classification_loss(ds: Downstream, x: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor):
    return ds.head.loss(ds.head(x, lengths), labels)


def classification_predict(ds: Downstream, x: torch.Tensor, lengths: torch.Tensor) -> list:
    ids = ds.head.predict(ds.head(x, lengths)).tolist()  # (B,) or (B, K)
    return [tuple(i) if isinstance(i, list) else i for i in ids]


def classification_score(predictions: dict, examples: Sequence[Example], trials=None) -> dict:
    """Accuracy (IC: all slots right) and, for one label, the mean per-class recall (balanced accuracy)."""
    truth = [ex.label for ex in examples]
    guess = [predictions[ex.uid] for ex in examples]
    scores = {"accuracy": metrics.accuracy(guess, truth)}
    if not isinstance(truth[0], tuple):
        recalls = []
        for c in sorted(set(truth)):
            hits = [g == t for g, t in zip(guess, truth) if t == c]
            recalls.append(sum(hits) / len(hits))
        scores["balanced_accuracy"] = sum(recalls) / len(recalls)
    return scores


def verification_loss(ds: Downstream, x: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor):
    return ds.loss(ds.head(x, lengths), labels)


def verification_predict(ds: Downstream, x: torch.Tensor, lengths: torch.Tensor) -> list:
    return list(ds.head.embed(x, lengths).float().cpu())  # the embedding scored by cosine


def verification_score(embeddings: dict, examples: Sequence[Example], trials) -> dict:
    labels, scores = metrics.cosine_scores(embeddings, trials)
    eer, _ = metrics.compute_eer(labels, scores)
    min_dcf, _ = metrics.compute_min_dcf(labels, scores)
    return {"EER": eer, "minDCF": min_dcf}


CLASSIFICATION = Objective(classification_loss, classification_predict, classification_score)
VERIFICATION = Objective(verification_loss, verification_predict, verification_score)


# ------------------------------------------------------------------------------------------------
# heads
# ------------------------------------------------------------------------------------------------


def utterance_head(input_size: int, classes) -> Downstream:
    """SUPERB: Linear(D -> 256), mean pooling, Linear(256 -> classes)."""
    return Downstream(heads.UtteranceHead(input_size, classes, projector_dim=256))


class XVectorClassifier(nn.Module):
    """x-vector trunk + a linear classifier: a head with temporal context for the small offline tasks.

    The SUPERB utterance head is linear in the mean frame, and the baselines' per-utterance CMVN makes that
    mean zero: with ``fbank`` or ``mfcc`` it can only guess. Narrower than the ASV x-vector (128-d TDNNs,
    384-d statistics) so that it trains in minutes on a CPU."""

    def __init__(self, input_size: int, classes: int, hidden_size: int = 128, aggregation_size: int = 384):
        super().__init__()
        self.xvector = heads.XVectorHead(input_size, hidden_size, aggregation_size, output_size=hidden_size)
        self.classifier = heads.UtteranceHead(self.xvector.output_size, classes, projector_dim=256)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        emb = self.xvector(x, lengths)[:, None]  # (B, 1, E): one "frame" per utterance
        return self.classifier(emb, torch.ones_like(lengths))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.classifier.loss(logits, labels)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return self.classifier.predict(logits)


def xvector_classifier(input_size: int, classes) -> Downstream:
    return Downstream(XVectorClassifier(input_size, classes))


def xvector_amsoftmax(input_size: int, classes) -> Downstream:
    """SUPERB ASV: x-vector (512-d TDNNs, 1500-d statistics) trained with AM-softmax (s 30, m 0.4)."""
    head = heads.XVectorHead(input_size)
    return Downstream(head, heads.AMSoftmaxLoss(head.output_size, classes, margin=0.4, scale=30.0))


# ------------------------------------------------------------------------------------------------
# the task object
# ------------------------------------------------------------------------------------------------


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


def _data(env: str) -> str | None:
    """A default root below ``$S3PRL_DATA`` / ``$S3PRL_TEST_DATA`` (the shared real-recordings folder)."""
    base = os.environ.get("S3PRL_DATA") or os.environ.get("S3PRL_TEST_DATA")
    return os.path.join(base, env) if base and os.path.isdir(os.path.join(base, env)) else None


def _voxceleb_trials(options: dict, splits: dict) -> list:
    return voxceleb1.read_trials(options.get("trials_file") or os.path.join(options["root"], "voxceleb1_test_v2.txt"))


def _librispeech_trials(options: dict, splits: dict) -> list:
    return librispeech_speakers.make_trials(splits["test"])


# the original's runner sections (config.yaml), as TrainConfig fields
_SUPERB_CLS = dict(total_steps=200000, optimizer="Adam", lr=1e-4, gradient_clipping=1.0,
                   gradient_accumulate_steps=1, log_step=100, eval_step=5000, save_step=1000, max_keep=1)

TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    TASKS[task.name] = task
    return task


KS = register(Task(
    name="speech_commands", description="KS: Speech Commands v0.01, 12 classes",
    corpus=speech_commands.load, options={"root": None, "test_root": None, "split_rule": "hash"},
    build=utterance_head, objective=CLASSIFICATION, metric="accuracy", select="balanced_accuracy",
    classes=len(speech_commands.CLASSES), train=_SUPERB_CLS,
    data={"batch_seconds": 32.0, "eval_batch_seconds": 128.0, "balanced": True},  # batch 32 of 1 s clips
))
IC = register(Task(
    name="fluent_commands", description="IC: Fluent Speech Commands, action/object/location",
    corpus=fluent_commands.load, options={"root": None},
    build=utterance_head, objective=CLASSIFICATION, metric="accuracy",
    train={**_SUPERB_CLS, "save_step": 250},
    data={"batch_seconds": 80.0, "eval_batch_seconds": 160.0},  # batch 32 of ~2.5 s
))
SID = register(Task(
    name="voxceleb1", description="SID: VoxCeleb1 identification, 1,251 speakers",
    corpus=voxceleb1.load_sid, options={"root": None, "split_file": None},
    build=utterance_head, objective=CLASSIFICATION, metric="accuracy", classes=voxceleb1.NUM_SPEAKERS,
    train={**_SUPERB_CLS, "gradient_accumulate_steps": 4, "log_step": 500},
    data={"batch_seconds": 64.0, "eval_batch_seconds": 120.0, "crop_seconds": 8.0},  # batch 8 of 128000-sample crops
))
ER = register(Task(
    name="emotion", description="ER: IEMOCAP, 4 classes, 5 folds",
    corpus=iemocap.load, options={"root": None, "fold": 1, "valid_ratio": 0.2, "meta_data": None},
    build=utterance_head, objective=CLASSIFICATION, metric="accuracy", classes=len(iemocap.CLASSES),
    train={**_SUPERB_CLS, "total_steps": 30000, "gradient_accumulate_steps": 8, "log_step": 500,
           "eval_step": 1000},
    data={"batch_seconds": 20.0, "eval_batch_seconds": 80.0}, folds=iemocap.NUM_FOLDS,  # batch 4 of ~4.5 s
))
ASV = register(Task(
    name="sv_voxceleb1", description="ASV: VoxCeleb1, x-vector + AM-softmax, EER on the official trials",
    corpus=voxceleb1.load_asv, options={"root": None, "trials_file": None, "min_seconds": 2.0},
    build=xvector_amsoftmax, objective=VERIFICATION, metric="EER", higher_better=False,
    train={**_SUPERB_CLS, "optimizer": "AdamW", "gradient_clipping": 1000.0, "gradient_accumulate_steps": 5,
           "log_step": 500, "eval_step": 10000, "save_step": 10000, "max_keep": 20},
    data={"batch_seconds": 80.0, "eval_batch_seconds": 120.0, "crop_seconds": 8.0},  # batch 10 of 8 s crops
    trials=_voxceleb_trials, eval_splits=(),
))

# small real-recording tasks (../shared/data): the runner must beat chance by far on them. FSDD is 8 kHz audio:
# dither keeps its empty 4-8 kHz band from exploding under the baselines' per-utterance CMVN.
_LSB = 1.0 / 32768
_SMALL = dict(optimizer="Adam", lr=1e-3, scheduler="linear", gradient_clipping=1.0, log_step=50, eval_step=250,
              save_step=250, max_keep=1)
register(Task(
    name="fsdd_digits", description="FSDD: spoken digits, 6 speakers, takes 0-4 test",
    corpus=fsdd.load, options={"root": _data("fsdd"), "task": "digit", "dev_takes": 5},
    build=xvector_classifier, objective=CLASSIFICATION, metric="accuracy",
    train={**_SMALL, "total_steps": 2000}, data={"batch_seconds": 16.0, "eval_batch_seconds": 60.0, "dither": _LSB},
))
register(Task(
    name="fsdd_speakers", description="FSDD: speaker identification, 6 speakers, takes 0-4 test",
    corpus=fsdd.load, options={"root": _data("fsdd"), "task": "speaker", "dev_takes": 5},
    build=xvector_classifier, objective=CLASSIFICATION, metric="accuracy",
    train={**_SMALL, "total_steps": 2000}, data={"batch_seconds": 16.0, "eval_batch_seconds": 60.0, "dither": _LSB},
))
register(Task(
    name="demo_digits", description="digits synthesized by `s3prl demo` (espeak-ng voices, FSDD layout)",
    corpus=fsdd.load, options={"root": None, "task": "digit", "dev_takes": 5},
    build=xvector_classifier, objective=CLASSIFICATION, metric="accuracy",
    train={**_SMALL, "total_steps": 1500},
    data={"batch_seconds": 16.0, "eval_batch_seconds": 60.0, "dither": _LSB},
))
register(Task(
    name="librispeech_sid", description="speaker identification on LibriSpeech-style folders",
    corpus=librispeech_speakers.load, options={"root": _data("librispeech_test_other_mini"), "dev_ratio": 0.1,
                                              "test_ratio": 0.2},
    build=xvector_classifier, objective=CLASSIFICATION, metric="accuracy",
    train={**_SMALL, "total_steps": 1500}, data={"batch_seconds": 24.0, "eval_batch_seconds": 120.0,
                                                  "crop_seconds": 3.0},
))
register(Task(
    name="librispeech_asv", description="speaker verification on held-out LibriSpeech speakers (SUPERB ASV head)",
    corpus=librispeech_speakers.load_asv, options={"root": _data("librispeech_test_other_mini"),
                                                  "test_speaker_ratio": 0.4, "min_test_speakers": 2},
    build=xvector_amsoftmax, objective=VERIFICATION, metric="EER", higher_better=False,
    train={**_SMALL, "optimizer": "AdamW", "lr": 1e-4, "total_steps": 400, "eval_step": 100000, "save_step": 50,
           "max_keep": 8},
    data={"batch_seconds": 16.0, "eval_batch_seconds": 120.0, "crop_seconds": 3.0},
    trials=_librispeech_trials, eval_splits=(),
))


def get(name: str) -> Task:
    """The task called ``name`` (a clear error lists the others)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}")
    return TASKS[name]
