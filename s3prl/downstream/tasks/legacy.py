"""The original's legacy downstreams ``mosei`` and ``voxceleb2_ge2e``.

``mosei``           CMU-MOSEI sentiment / emotion (``num_class`` 2, 3, 6 or 7): ``Linear(D -> 256)`` (the
                    original's ``connector``), the mean over time, ``Linear(256 -> classes)`` (its ``Model``);
                    cross-entropy; accuracy and macro F1 (what its ``log_records`` writes).
``voxceleb2_ge2e``  speaker verification trained with the GE2E loss: ``Linear(D -> 256)``, the original's
                    default ``Identity`` encoder, self-attention pooling (``SAP``: tanh, one logit a frame,
                    softmax over the valid frames) or ``Mean`` (tanh, ``Linear(256 -> 256)``, mean), the
                    embedding scaled to unit length; GE2E softmax loss with learnable ``w`` (10), ``b`` (-5),
                    summed over the N x M utterances of a batch of N speakers x M utterances; EER of cosine
                    scores on trial lists (dev and test).

Differences from the original, each documented in ``docs/probes.md``:

* ``mosei``: the original averages over the zero-padded batch, so padded frames (which the connector turns into
  its bias) change an utterance's logits; here only its frames count. ``MoseiHead(count_padding=True)``
  reproduces the original (parity tests). The issue describing this probe speaks of a one-layer RNN: the
  original code (s3prl 0.4.18) has none, and this follows the code.
* ``voxceleb2_ge2e``: ``Mean`` averages the valid frames (the original also takes in the first padded frame);
  training audio is not peak-normalised by sox (the original normalises training audio, not dev / test audio);
  there is no loading in 4000-utterance chunks (the original only ever draws batches inside a chunk, drops the
  speakers after the last full chunk and cannot run with fewer than 4000 / M speakers); a dev utterance longer
  than the cap is cut (the original replaces the second one of such a pair by the first one's cut).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import heads, metrics
from ..corpora import mosei as mosei_corpus
from ..corpora import voxceleb_ge2e
from ..data import Example
from ..heads import mean_pool, valid_mask
from .base import Downstream, Objective, Task, register
from .utterance import classification_loss, classification_predict

# ------------------------------------------------------------------------------------------------
# mosei
# ------------------------------------------------------------------------------------------------


class MoseiHead(heads.UtteranceHead):
    """``Linear(D -> 256)``, mean over time, ``Linear(256 -> classes)``; parameters ``projector`` (the original's
    ``connector``) and ``classifier`` (its ``model.linear``). ``count_padding=True`` averages over the whole
    zero-padded batch as the original."""

    def __init__(self, input_size: int, classes: int, projector_dim: int = 256, count_padding: bool = False):
        super().__init__(input_size, int(classes), projector_dim)
        self.count_padding = count_padding

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.count_padding:
            return super().forward(x, lengths)
        x = torch.where(valid_mask(lengths, x.size(1)).unsqueeze(-1), x, torch.zeros((), dtype=x.dtype,
                                                                                     device=x.device))
        return self.classifier(self.projector(x).mean(dim=1))


def mosei_head(input_size: int, classes) -> Downstream:
    return Downstream(MoseiHead(input_size, classes))


def macro_f1(truth: Sequence[int], guess: Sequence[int]) -> float:
    """Unweighted mean over the classes seen in ``truth`` or ``guess`` of ``2TP / (2TP + FP + FN)``
    (``sklearn.metrics.f1_score(average="macro")``, a class without true or predicted items scoring 0)."""
    scores = []
    for c in sorted(set(truth) | set(guess)):
        tp = sum(t == c and g == c for t, g in zip(truth, guess))
        wrong = sum((t == c) != (g == c) for t, g in zip(truth, guess))
        scores.append(2 * tp / (2 * tp + wrong) if tp else 0.0)
    return sum(scores) / max(len(scores), 1)


def mosei_score(predictions: dict, examples: Sequence[Example], trials=None) -> dict:
    truth = [ex.label for ex in examples]
    guess = [predictions[ex.uid] for ex in examples]
    return {"accuracy": metrics.accuracy(guess, truth), "macro_f1": macro_f1(truth, guess)}


MOSEI_CLASSIFICATION = Objective(classification_loss, classification_predict, mosei_score)


@dataclass(frozen=True)
class MoseiTask(Task):
    """The head has ``num_class`` outputs whatever the training labels hold."""

    _counts: dict = field(default_factory=dict, compare=False, repr=False)

    def load(self, options: dict) -> dict[str, list[Example]]:
        splits = super().load(options)
        self._counts["classes"] = int({**self.options, **options}["num_class"])
        return splits

    def count_classes(self, train: Sequence[Example]):
        return self._counts.get("classes") or super().count_classes(train)


# the original's config.yaml: AdamW 2e-4, linear warm-up 1400 steps, 20k steps, batch 3 (segments ~7 s),
# accumulation 5, clipping 1, eval/save every 250 steps; the best dev accuracy picks the checkpoint
register(MoseiTask(
    name="mosei", description="CMU-MOSEI sentiment / emotion (num_class 2, 3, 6, 7): linear, mean, linear",
    corpus=mosei_corpus.load, options={"root": None, "label_path": None, "num_class": 2},
    build=mosei_head, objective=MOSEI_CLASSIFICATION, metric="accuracy",
    train=dict(total_steps=20000, optimizer="AdamW", lr=2e-4, scheduler="linear", warmup_steps=1400,
               gradient_clipping=1.0, gradient_accumulate_steps=5, log_step=10, eval_step=250, save_step=250,
               max_keep=1),
    data={"batch_seconds": 3 * 7.5, "eval_batch_seconds": 60.0},
))

# ------------------------------------------------------------------------------------------------
# voxceleb2_ge2e
# ------------------------------------------------------------------------------------------------

MASK_LOGIT = -100000.0  # what the original adds to the attention logit of a padded frame


class GE2EHead(nn.Module):
    """Utterance embeddings of unit length: ``projector`` (the original's ``connector``), then ``SAP`` (tanh,
    ``attention`` logit a frame, softmax over the valid frames, weighted sum) or ``Mean`` (tanh, ``linear``,
    mean of the valid frames)."""

    def __init__(self, input_size: int, hidden_size: int = 256, aggregation: str = "SAP"):
        super().__init__()
        if aggregation not in ("SAP", "Mean"):
            raise ValueError(f"aggregation must be 'SAP' or 'Mean', got {aggregation!r}")
        self.aggregation = aggregation
        self.projector = nn.Linear(input_size, hidden_size)
        if aggregation == "SAP":
            self.attention = nn.Linear(hidden_size, 1)
        else:
            self.linear = nn.Linear(hidden_size, hidden_size)

    def pooled(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.projector(x))  # (B, T, H)
        if self.aggregation == "Mean":
            return mean_pool(self.linear(h), lengths)
        padded = ~valid_mask(lengths, x.size(1))
        logits = self.attention(h).squeeze(-1) + padded.to(h.dtype) * MASK_LOGIT  # (B, T)
        return (h * torch.softmax(logits, dim=-1).unsqueeze(-1)).sum(dim=1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        pooled = self.pooled(x, lengths)
        return pooled / pooled.norm(dim=-1, keepdim=True)


class GE2ELoss(nn.Module):
    """Generalized end-to-end loss (softmax form), summed over utterances, of ``(N, M, D)`` embeddings.

    The similarity of utterance ``(j, i)`` to speaker ``k``'s centroid is ``w * cos + b``; its own speaker's
    centroid leaves the utterance out (mean of the other ``M - 1``). ``w`` is not clamped: the original's
    ``torch.clamp(self.w, 1e-9)`` discards its result.
    """

    def __init__(self, init_w: float = 10.0, init_b: float = -5.0, utter_number: int = 10):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(float(init_w)))
        self.b = nn.Parameter(torch.tensor(float(init_b)))
        self.utter_number = utter_number  # M, set from the task options

    def similarity(self, emb: torch.Tensor) -> torch.Tensor:
        """``(N, M, N)`` cosine similarities to the centroids."""
        n, m, _ = emb.shape
        if m < 2:
            raise ValueError(f"GE2E needs at least 2 utterances per speaker, got {m}")
        total = emb.sum(dim=1)  # (N, D)
        centroids = total / m
        own = (total.unsqueeze(1) - emb) / (m - 1)  # (N, M, D): the centroid without the utterance itself
        cos = F.cosine_similarity(emb.unsqueeze(2), centroids[None, None], dim=-1, eps=1e-9)  # (N, M, N)
        cos_own = F.cosine_similarity(emb, own, dim=-1, eps=1e-9)  # (N, M)
        same = torch.eye(n, dtype=torch.bool, device=emb.device).unsqueeze(1)  # (N, 1, N)
        return torch.where(same, cos_own.unsqueeze(-1), cos)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        logits = self.similarity(emb) * self.w + self.b  # (N, M, N)
        n = emb.size(0)
        target = torch.arange(n, device=emb.device)[:, None].expand(n, emb.size(1))
        return -logits.log_softmax(dim=-1).gather(-1, target.unsqueeze(-1)).sum()


def ge2e_head(input_size: int, classes=None) -> Downstream:
    return Downstream(GE2EHead(input_size), GE2ELoss())


def ge2e_loss(ds: Downstream, x: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    m = int(ds.loss.utter_number)
    groups = labels.reshape(-1, m) if labels.numel() % m == 0 else None
    if groups is None or not bool((groups == groups[:, :1]).all()):
        raise ValueError(f"GE2E batches hold M={m} consecutive utterances of each speaker; got speakers "
                         f"{labels.tolist()} (use the task's own batch sampler)")
    emb = ds.head(x, lengths)
    return ds.loss(emb.reshape(-1, m, emb.size(-1)))


def ge2e_predict(ds: Downstream, x: torch.Tensor, lengths: torch.Tensor) -> list:
    return list(ds.head(x, lengths).float().cpu())


def ge2e_score(embeddings: dict, examples: Sequence[Example], trials) -> dict:
    """EER of the cosine scores of the trials whose two utterances were embedded (dev or test ones)."""
    mine = [t for t in trials or () if t[0] in embeddings and t[1] in embeddings]
    if not mine:
        raise ValueError("voxceleb2_ge2e: no trial pairs two embedded utterances of this split")
    labels, scores = metrics.cosine_scores(embeddings, mine)
    return {"EER": metrics.compute_eer(labels, scores)[0]}


GE2E_VERIFICATION = Objective(ge2e_loss, ge2e_predict, ge2e_score)


class SpeakerBatchSampler:
    """The original's GE2E batches: each epoch the training speakers are shuffled and ``utter_number`` (M) of
    each one's utterances drawn; batch ``k`` holds the M utterances of speakers ``k .. k + N - 1`` of that order
    (cut at the end), for every ``k`` but the last, in random order. Every draw is a function of
    ``(seed, epoch)``. Under DDP each rank takes every ``num_replicas``-th batch (the tail that does not divide
    evenly is dropped)."""

    def __init__(self, labels: Sequence[int], speakers_per_batch: int, utter_number: int, seed: int = 0,
                 num_replicas: int = 1, rank: int = 0):
        if speakers_per_batch < 1 or utter_number < 2:
            raise ValueError(f"need speakers_per_batch >= 1 and utter_number >= 2, got {speakers_per_batch}, "
                             f"{utter_number}")
        self.by_speaker: dict[int, list[int]] = {}
        for i, y in enumerate(labels):
            self.by_speaker.setdefault(int(y), []).append(i)
        few = sorted(s for s, idx in self.by_speaker.items() if len(idx) < utter_number)
        if few or len(self.by_speaker) < 2:
            raise ValueError(f"GE2E needs >= 2 speakers with >= {utter_number} utterances each; short: {few}")
        self.n, self.m, self.seed = speakers_per_batch, utter_number, seed
        self.num_replicas, self.rank, self.epoch, self.start = num_replicas, rank, 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        speakers = sorted(self.by_speaker)
        order = [speakers[i] for i in torch.randperm(len(speakers), generator=gen).tolist()]
        drawn = []
        for s in order:
            idx = self.by_speaker[s]
            drawn.append([idx[j] for j in torch.randperm(len(idx), generator=gen)[:self.m].tolist()])
        starts = torch.randperm(len(order) - 1, generator=gen).tolist()
        batches = [[i for group in drawn[k:k + self.n] for i in group] for k in starts]
        if self.num_replicas > 1:
            batches = batches[: len(batches) // self.num_replicas * self.num_replicas]
        return batches[self.rank::self.num_replicas]

    def __iter__(self):
        yield from self.epoch_batches(self.epoch)[self.start:]

    def __len__(self) -> int:
        return max(0, (len(self.by_speaker) - 1) // self.num_replicas - self.start)


@dataclass(frozen=True)
class GE2ETask(Task):
    def load(self, options: dict) -> dict[str, list[Example]]:
        merged = {**self.options, **options}
        for key in ("test_root", "test_trials", "dev_trials"):
            if merged.get(key) is None:
                raise ValueError(f"task {self.name} needs {key}: pass -o task.{key}=/path (layout:\n"
                                 f"{voxceleb_ge2e.LAYOUT})")
        return super().load(options)

    def configure(self, downstream: Downstream, options: dict) -> None:
        downstream.loss.utter_number = int(options["utter_number"])
        head = downstream.head
        if options["agg_module"] != head.aggregation:  # the original's modelrc.agg_module: SAP (default) or Mean
            if options["agg_module"] not in ("SAP", "Mean"):
                raise ValueError(f"task.agg_module must be SAP or Mean, got {options['agg_module']!r}")
            downstream.head = GE2EHead(head.projector.in_features, head.projector.out_features,
                                       options["agg_module"]).to(head.projector.weight.device)

    def batch_sampler(self, dataset, options: dict, seed: int, rank: int = 0, world: int = 1):
        return SpeakerBatchSampler([ex.label for ex in dataset.examples], int(options["speakers_per_batch"]),
                                   int(options["utter_number"]), seed, world, rank)


def _ge2e_trials(options: dict, splits: dict) -> list:
    pairs = []
    for prefix in ("dev", "test"):
        lines = voxceleb_ge2e.read_trial_lines(options[f"{prefix}_trials"], f"{prefix} trial list")
        pairs += [(f"{prefix}:{a}", f"{prefix}:{b}", t) for t, a, b in lines]
    return pairs


# the original's config.yaml: AdamW 4e-4, linear warm-up 1000 steps, 100k steps, N=10 speakers x M=10
# utterances of at most 128000 samples, clipping 1, eval/save every 2000 steps; dev cut at 131200 samples
register(GE2ETask(
    name="voxceleb2_ge2e", description="VoxCeleb1+2 speaker verification, GE2E loss (N x M batches), EER on trials",
    corpus=voxceleb_ge2e.load, options={"root": None, "vox2_root": None, "dev_speakers": None, "dev_trials": None,
                                  "test_root": None, "test_trials": None, "utter_number": 10,
                                  "speakers_per_batch": 10, "max_timestep": 128000, "dev_max_timestep": 131200,
                                  "agg_module": "SAP"},
    build=ge2e_head, objective=GE2E_VERIFICATION, metric="EER", higher_better=False,
    train=dict(total_steps=100000, optimizer="AdamW", lr=4e-4, scheduler="linear", warmup_steps=1000,
               gradient_clipping=1.0, gradient_accumulate_steps=1, log_step=100, eval_step=2000, save_step=2000,
               max_keep=1),
    data={"eval_batch_seconds": 120.0}, trials=_ge2e_trials,
))
