"""Utterance-level tasks: classification (KS, IC, SID, ER and the small checks) and verification (ASV).

The SUPERB tasks keep the original's defaults (``downstream/<task>/config.yaml``): optimizer, learning rate,
steps, accumulation, clipping, evaluation and save intervals. Batches are formed by padded duration instead
of a count, the budget being the original batch size times the typical (or cropped) utterance length of the
corpus.
"""

from __future__ import annotations

import os
from typing import Sequence

import torch
import torch.nn as nn

from .. import heads, metrics
from ..corpora import fluent_commands, fsdd, iemocap, librispeech_speakers, speech_commands, voxceleb1
from ..data import Example
from .base import Downstream, Objective, Task, data_root, register


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


def _voxceleb_trials(options: dict, splits: dict) -> list:
    return voxceleb1.read_trials(options.get("trials_file") or os.path.join(options["root"], "voxceleb1_test_v2.txt"))


def _librispeech_trials(options: dict, splits: dict) -> list:
    return librispeech_speakers.make_trials(splits["test"])


# the original's runner sections (config.yaml), as TrainConfig fields
_SUPERB_CLS = dict(total_steps=200000, optimizer="Adam", lr=1e-4, gradient_clipping=1.0,
                   gradient_accumulate_steps=1, log_step=100, eval_step=5000, save_step=1000, max_keep=1)

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
    corpus=fsdd.load, options={"root": data_root("fsdd"), "task": "digit", "dev_takes": 5},
    build=xvector_classifier, objective=CLASSIFICATION, metric="accuracy",
    train={**_SMALL, "total_steps": 2000}, data={"batch_seconds": 16.0, "eval_batch_seconds": 60.0, "dither": _LSB},
))
register(Task(
    name="fsdd_speakers", description="FSDD: speaker identification, 6 speakers, takes 0-4 test",
    corpus=fsdd.load, options={"root": data_root("fsdd"), "task": "speaker", "dev_takes": 5},
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
    corpus=librispeech_speakers.load, options={"root": data_root("librispeech_test_other_mini"), "dev_ratio": 0.1,
                                              "test_ratio": 0.2},
    build=xvector_classifier, objective=CLASSIFICATION, metric="accuracy",
    train={**_SMALL, "total_steps": 1500}, data={"batch_seconds": 24.0, "eval_batch_seconds": 120.0,
                                                  "crop_seconds": 3.0},
))
register(Task(
    name="librispeech_asv", description="speaker verification on held-out LibriSpeech speakers (SUPERB ASV head)",
    corpus=librispeech_speakers.load_asv, options={"root": data_root("librispeech_test_other_mini"),
                                                  "test_speaker_ratio": 0.4, "min_test_speakers": 2},
    build=xvector_amsoftmax, objective=VERIFICATION, metric="EER", higher_better=False,
    train={**_SMALL, "optimizer": "AdamW", "lr": 1e-4, "total_steps": 400, "eval_step": 100000, "save_step": 50,
           "max_keep": 8},
    data={"batch_seconds": 16.0, "eval_batch_seconds": 120.0, "crop_seconds": 3.0},
    trials=_librispeech_trials, eval_splits=(),
))
