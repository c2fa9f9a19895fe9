"""The original's legacy probes: linear classifiers that measure what a representation holds (TERA paper).

``speaker_linear_utter_libri``  LibriSpeech train-clean-100 speakers, linear on the utterance's mean frame
``speaker_linear_frame_libri``  the same speakers and splits, linear on every frame (label = the utterance's speaker)
``phone_linear``                LibriSpeech forced-aligned phones (41 classes, 10 ms frames), linear on each frame
``phone_1hidden``               the same, one hidden layer (768, ReLU)
``phone_linear_concat``         the same, linear on 9 concatenated frames (t-4 .. t+4)

Data: the original's split lists (:mod:`..corpora.libri_speaker_probe`). The heads are one ``nn.Linear`` as the
original ``Model``; the loss is cross-entropy (mean over utterances, or over frames). Reported: accuracy (per
utterance, or per frame as the original's ``acc``). One difference, documented: the original frame probe also
scores the zero-padded frames of a batch against the speaker label (their logits are the bias); here only real
frames count (``LinearProbe(count_padding=True)`` reproduces the original for comparison).

Phone probes: the loss brings the padded batch of features to the alignments' frames as the original
(``match_length``: repeated ``round(L / T)`` times, then cut or padded with the last frame; padded labels
ignored). Predictions are made at the alignment rate (features repeated ``round(upstream rate / 160)`` times)
and fitted to each utterance's frames when scored (cut, or padded with the last class).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..corpora import libri_phone_probe, libri_speaker_probe
from ..data import Example
from ..heads import mean_pool, valid_mask
from .base import Downstream, Objective, Task, register
from .diarization import match_length
from .utterance import CLASSIFICATION


class LinearProbe(nn.Module):
    """One linear layer: on the mean frame (``pooling="mean"``: logits (B, C)) or on each frame (``None``:
    logits (B, T, C))."""

    def __init__(self, input_size: int, classes: int, pooling: str | None = "mean", count_padding: bool = False):
        super().__init__()
        if pooling not in ("mean", None):
            raise ValueError(f"pooling must be 'mean' or None, got {pooling!r}")
        self.pooling, self.count_padding = pooling, count_padding
        self.linear = nn.Linear(input_size, int(classes))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:  # every frame is real
            lengths = torch.full((x.size(0),), x.size(1), dtype=torch.long, device=x.device)
        if self.pooling == "mean":
            return self.linear(mean_pool(x, lengths))
        if self.count_padding:  # the original pads with zeros before its linear layer
            x = torch.where(valid_mask(lengths, x.size(1)).unsqueeze(-1), x, torch.zeros((), dtype=x.dtype,
                                                                                         device=x.device))
        return self.linear(x)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        labels = labels.reshape(-1).to(logits.device)
        if logits.dim() == 2:
            return F.cross_entropy(logits, labels)
        frame_labels = labels[:, None].expand(logits.shape[:2])  # (B, T): each frame carries its utterance's label
        if self.count_padding or lengths is None:
            return F.cross_entropy(logits.reshape(-1, logits.size(-1)), frame_labels.reshape(-1))
        mask = valid_mask(lengths.to(logits.device), logits.size(1))
        return F.cross_entropy(logits[mask], frame_labels[mask])

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.argmax(dim=-1)


def linear_utterance_probe(input_size: int, classes) -> Downstream:
    return Downstream(LinearProbe(input_size, classes, pooling="mean"))


def linear_frame_probe(input_size: int, classes) -> Downstream:
    return Downstream(LinearProbe(input_size, classes, pooling=None))


def frame_loss(ds: Downstream, x: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor):
    return ds.head.loss(ds.head(x, lengths), labels, lengths)


def frame_predict(ds: Downstream, x: torch.Tensor, lengths: torch.Tensor) -> list:
    ids = ds.head.predict(ds.head(x, lengths)).cpu()  # (B, T)
    return [ids[b, :int(n)] for b, n in enumerate(lengths.tolist())]  # one tensor of frame classes per utterance


def frame_score(predictions: dict, examples: Sequence[Example], trials=None) -> dict:
    """Frame accuracy over all frames (the original's ``acc``), and the accuracy of each utterance's most
    frequent frame class."""
    hits = frames = votes = 0
    for ex in examples:
        ids = predictions[ex.uid]
        hits += int((ids == ex.label).sum())
        frames += len(ids)
        votes += int(len(ids) > 0 and int(torch.mode(ids).values) == ex.label)
    return {"frame_accuracy": hits / max(frames, 1), "utterance_accuracy": votes / max(len(examples), 1)}


FRAME_CLASSIFICATION = Objective(frame_loss, frame_predict, frame_score)


@dataclass(frozen=True)
class SpeakerProbeTask(Task):
    """The classes are every speaker of the corpus (not only those of the training list), as the original."""

    _counts: dict = field(default_factory=dict, compare=False, repr=False)

    def load(self, options: dict) -> dict[str, list[Example]]:
        splits = super().load(options)
        merged = {**self.options, **options}
        self._counts["classes"] = len(libri_speaker_probe.speaker_classes(
            libri_speaker_probe.speaker_utterances(merged["root"])))
        return splits

    def count_classes(self, train: Sequence[Example]):
        return self._counts.get("classes") or super().count_classes(train)


# the original's configs (downstream/speaker_linear_{utter,frame}_libri/config.yaml): AdamW, lr 2e-4, batch 32
# utterances (train-clean-100 averages ~12.7 s), 300k (utterance) / 500k (frame) steps
_PROBE_TRAIN = dict(optimizer="AdamW", lr=2e-4, gradient_clipping=1.0, gradient_accumulate_steps=1, log_step=5000,
                    eval_step=10000, save_step=10000, max_keep=1)
_PROBE_DATA = {"batch_seconds": 32 * 12.5, "eval_batch_seconds": 32 * 12.5}
_PROBE_OPTIONS = {"root": None, "split_dir": None, "train_dev_seed": 1337}

register(SpeakerProbeTask(
    name="speaker_linear_utter_libri", description="TERA probe: LibriSpeech train-clean-100 speakers, linear on the "
                                                   "mean frame",
    corpus=libri_speaker_probe.load, options=dict(_PROBE_OPTIONS),
    build=linear_utterance_probe, objective=CLASSIFICATION, metric="accuracy",
    train={**_PROBE_TRAIN, "total_steps": 300000}, data=dict(_PROBE_DATA),
))
register(SpeakerProbeTask(
    name="speaker_linear_frame_libri", description="TERA probe: LibriSpeech train-clean-100 speakers, linear on "
                                                   "each frame",
    corpus=libri_speaker_probe.load, options=dict(_PROBE_OPTIONS),
    build=linear_frame_probe, objective=FRAME_CLASSIFICATION, metric="frame_accuracy",
    train={**_PROBE_TRAIN, "total_steps": 500000}, data=dict(_PROBE_DATA),
))


# ------------------------------------------------------------------------------------------------
# phone probes
# ------------------------------------------------------------------------------------------------


class OneHiddenProbe(nn.Module):
    """Linear -> dropout -> ReLU -> linear on each frame (the original ``phone_1hidden`` model)."""

    def __init__(self, input_size: int, classes: int, hidden_size: int = 768, dropout: float = 0.0):
        super().__init__()
        self.in_linear = nn.Linear(input_size, hidden_size)
        self.out_linear = nn.Linear(hidden_size, int(classes))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.out_linear(F.relu(self.drop(self.in_linear(x))))


class ConcatProbe(nn.Module):
    """Linear on ``n`` concatenated frames (odd ``n``; the original ``phone_linear_concat``). Block ``k`` of frame
    ``t`` is frame ``t - (k - n // 2)`` of the (padded) batch, clamped to its first and last frame."""

    def __init__(self, input_size: int, classes: int, concat_n_frames: int = 9):
        super().__init__()
        if concat_n_frames < 3 or concat_n_frames % 2 != 1:
            raise ValueError(f"concat_n_frames must be an odd number > 1, got {concat_n_frames}")
        self.concat_n_frames = concat_n_frames
        self.linear = nn.Linear(input_size * concat_n_frames, int(classes))

    def concat(self, x: torch.Tensor) -> torch.Tensor:
        mid, t = self.concat_n_frames // 2, torch.arange(x.size(1), device=x.device)
        blocks = [x[:, (t - (k - mid)).clamp(0, x.size(1) - 1)] for k in range(self.concat_n_frames)]
        return torch.cat(blocks, dim=-1)  # (B, T, n * D)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(self.concat(x))


def _phone_head(module: nn.Module) -> Downstream:
    module.label_factor = 1  # features per alignment frame, set from the upstream's rate (PhoneProbeTask.configure)
    return Downstream(module)


def phone_linear(input_size: int, classes) -> Downstream:
    return _phone_head(LinearProbe(input_size, classes, pooling=None))


def phone_1hidden(input_size: int, classes) -> Downstream:
    return _phone_head(OneHiddenProbe(input_size, classes))


def phone_linear_concat(input_size: int, classes) -> Downstream:
    return _phone_head(ConcatProbe(input_size, classes))


def phone_loss(ds: Downstream, x: torch.Tensor, lengths: torch.Tensor, labels: list) -> torch.Tensor:
    target = nn.utils.rnn.pad_sequence([torch.tensor(y.ids, dtype=torch.long) for y in labels], batch_first=True,
                                       padding_value=-100).to(x.device)  # (B, L)
    logits = ds.head(match_length(x, target.size(1)))  # (B, L, C)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100)


def phone_predict(ds: Downstream, x: torch.Tensor, lengths: torch.Tensor) -> list:
    factor = int(getattr(ds.head, "label_factor", 1))
    if factor > 1:
        x, lengths = x.repeat_interleave(factor, dim=1), lengths * factor
    ids = ds.head(x).argmax(dim=-1).cpu()
    return [ids[b, :int(n)] for b, n in enumerate(lengths.tolist())]


def fit_ids(ids: torch.Tensor, frames: int) -> torch.Tensor:
    """Predicted classes cut to ``frames``, or padded with the last one."""
    if len(ids) >= frames:
        return ids[:frames]
    last = ids[-1:] if len(ids) else torch.zeros(1, dtype=torch.long)
    return torch.cat([ids, last.expand(frames - len(ids))])


def phone_score(predictions: dict, examples: Sequence[Example], trials=None) -> dict:
    """Frame accuracy over all frames (the original's ``acc``) and its mean over utterances (the original's
    ``sample_wise_metric``)."""
    hits = frames = 0
    per_utterance = []
    for ex in examples:
        truth = torch.tensor(ex.label.ids)
        same = fit_ids(predictions[ex.uid], len(truth)) == truth
        hits, frames = hits + int(same.sum()), frames + len(truth)
        per_utterance.append(float(same.float().mean()))
    return {"frame_accuracy": hits / max(frames, 1),
            "utterance_mean_accuracy": sum(per_utterance) / max(len(per_utterance), 1)}


PHONE_CLASSIFICATION = Objective(phone_loss, phone_predict, phone_score)


@dataclass(frozen=True)
class PhoneProbeTask(Task):
    """Labels at 10 ms: the head learns how many upstream frames make one alignment frame."""

    def bind(self, options: dict, downsample_rate: int) -> dict:
        return {**options, "upstream_rate": int(downsample_rate)}

    def configure(self, downstream: Downstream, options: dict) -> None:
        rate = options.get("upstream_rate") or libri_phone_probe.FRAME_SHIFT
        downstream.head.label_factor = max(1, int(round(rate / libri_phone_probe.FRAME_SHIFT)))


_PHONE_OPTIONS = {"root": None, "phone_dir": None, "train_dev_seed": 1337, "upstream_rate": None}
# the original's configs (downstream/phone_*/config.yaml): AdamW, lr 2e-4, batch 32 (1hidden: 16, linear warm-up
# over 100k steps), 500k (linear) / 1M (1hidden, concat) steps
for _name, _build, _what, _train, _batch in (
        ("phone_linear", phone_linear, "linear on each frame", {"total_steps": 500000}, 32),
        ("phone_1hidden", phone_1hidden, "one hidden layer (768, ReLU) on each frame",
         {"total_steps": 1000000, "eval_step": 20000, "save_step": 20000, "scheduler": "linear",
          "warmup_steps": 100000}, 16),
        ("phone_linear_concat", phone_linear_concat, "linear on 9 concatenated frames",
         {"total_steps": 1000000, "eval_step": 20000, "save_step": 20000}, 32)):
    register(PhoneProbeTask(
        name=_name, description=f"TERA probe: LibriSpeech aligned phones (41 classes), {_what}",
        corpus=libri_phone_probe.load, options=dict(_PHONE_OPTIONS), build=_build, objective=PHONE_CLASSIFICATION,
        metric="frame_accuracy", classes=libri_phone_probe.NUM_CLASSES, train={**_PROBE_TRAIN, **_train},
        data={"batch_seconds": _batch * 12.5, "eval_batch_seconds": _batch * 12.5},
    ))
