"""fairseq's ``wav2vec`` criterion (``infonce: true``) on the output of :class:`Wav2Vec2PreTraining`.

loss = InfoNCE (cross-entropy of the positive against its negatives, summed over the masked frames)
       + sum_i loss_weights[i] * extra_i * sample_size,
extra = [(num_vars - prob_perplexity) / num_vars (diversity), features_pen], sample_size = number of masked
frames. The logged values are fairseq's: ``loss``, ``loss_0`` (contrastive), ``loss_1``.. (weighted extras),
``code_perplexity``, ``prob_perplexity``, ``temp``, ``correct``/``count`` (accuracy: the positive is the strict
arg-max), ``sample_size``, ``ntokens``, ``nsentences``. fairseq's trainer divides the gradients by
``sample_size`` before the optimizer step (:func:`train_step` does the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .pretraining import PretrainOutput, Wav2Vec2PreTraining


@dataclass
class LossOutput:
    loss: torch.Tensor  # () the summed loss (what backward() is called on)
    sample_size: int
    terms: dict[str, torch.Tensor]  # contrastive, then each weighted extra term by name
    extra_losses: dict[str, torch.Tensor]  # unweighted extras
    logits: torch.Tensor  # (M*B, 1 + K) in fairseq's get_logits order (frame-major)
    log: dict = field(default_factory=dict)  # fairseq's logging_output


def flat_logits(logits: torch.Tensor) -> torch.Tensor:
    """(1 + K, B, M) -> (M * B, 1 + K), the row order of fairseq's ``get_logits`` (masked frame, then utterance)."""
    return logits.transpose(0, 2).reshape(-1, logits.size(0))


def extra_losses(out: PretrainOutput) -> dict[str, torch.Tensor]:
    extras = {}
    if out.quantizer is not None:
        n = out.quantizer.num_vars
        extras["prob_perplexity_loss"] = (n - out.quantizer.prob_perplexity) / n
    extras["features_pen"] = out.features_pen
    return extras


def accuracy(logits: torch.Tensor) -> tuple[int, int]:
    """(correct, count): the positive (column 0) is the arg-max and not also the arg-min (all-equal rows)."""
    with torch.no_grad():
        if logits.numel() == 0:
            return 0, 0
        top = logits.argmax(-1) == 0
        bottom = logits.argmin(-1) == 0
        return int(top.sum()) - int((top & bottom).sum()), top.numel()


def wav2vec2_loss(out: PretrainOutput, loss_weights=(0.1, 10.0)) -> LossOutput:
    """fairseq's Wav2vecCriterion (infonce) with ``loss_weights`` (one weight is used for every extra term)."""
    logits = flat_logits(out.logits).float()
    target = torch.zeros(logits.size(0), dtype=torch.long, device=logits.device)
    contrastive = F.cross_entropy(logits, target, reduction="sum")
    sample_size = target.numel()
    extras = extra_losses(out)
    terms = {"contrastive": contrastive}
    loss = contrastive.clone()
    if loss_weights:
        weights = list(loss_weights)
        if len(weights) == 1 and len(extras) != 1:
            weights = weights * len(extras)
        if len(weights) != len(extras):
            raise ValueError(f"loss_weights has {len(weights)} values for {len(extras)} extra losses "
                             f"({', '.join(extras)})")
        for (name, value), coef in zip(extras.items(), weights):
            if coef != 0:
                term = coef * value.float() * sample_size
                loss = loss + term
                terms[name] = term
    correct, count = accuracy(logits)
    log = {"loss": float(loss.detach()), "ntokens": sample_size, "nsentences": int(out.logits.size(1)),
           "sample_size": sample_size, "correct": correct, "count": float(count)}
    if out.quantizer is not None:
        log.update(prob_perplexity=float(out.quantizer.prob_perplexity.detach()), temp=float(out.quantizer.temp),
                   code_perplexity=float(out.quantizer.code_perplexity.detach()))
    if len(terms) > 1:
        for i, value in enumerate(terms.values()):
            log[f"loss_{i}"] = float(value.detach())
    return LossOutput(loss, sample_size, terms, extras, logits, log)


def train_step(model: Wav2Vec2PreTraining, wavs: torch.Tensor, wavs_len: torch.Tensor,
               generator: torch.Generator | None = None, num_updates: int | None = None, **replay) -> LossOutput:
    """One forward + backward as fairseq's trainer does it: set the update count (Gumbel temperature), compute
    the loss, backpropagate, and scale the gradients by 1 / sample_size. The optimizer step is the caller's.
    ``replay`` passes ``mask_indices`` / ``neg_idxs`` / ``gumbel_noise`` through to the model."""
    if num_updates is not None:
        model.set_num_updates(num_updates)
    out = model(wavs, wavs_len, generator=generator, **replay)
    result = wav2vec2_loss(out, model.pcfg.loss_weights)
    result.loss.backward()
    if result.sample_size > 0:
        for p in model.parameters():
            if p.grad is not None:
                p.grad.div_(result.sample_size)
    return result


@dataclass
class Wav2Vec2Batch:
    wavs: torch.Tensor  # (B, L) zero-padded (or cropped to the shortest, as fairseq trains)
    wavs_len: torch.Tensor  # (B,)
    uids: list = field(default_factory=list)


class UpdateCounting(torch.nn.Module):
    """An objective around ``model`` that counts optimizer updates in a buffer (saved and restored with the
    weights): fairseq's ``num_updates``, which schedules the Gumbel temperature and the fine-tuning freeze."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self.last_log: dict = {}

    def attach(self, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        """Make every step of ``optimizer`` advance the count."""
        def advance(*_):
            self.num_updates += 1

        optimizer.register_step_post_hook(advance)
        return optimizer


class Wav2Vec2Objective(UpdateCounting):
    """The pre-training objective in the form :func:`s3prl.train.train` takes: ``objective(batch) -> loss``, for
    a :class:`Wav2Vec2PreTraining` or a wav2vec 1.0 / vq-wav2vec ``Wav2VecPreTraining`` model.

    The loss returned is fairseq's summed loss divided by its ``sample_size``, so the gradients are the ones
    fairseq's trainer steps with. The update count (Gumbel temperature) is a buffer, saved and restored with the
    weights; :meth:`attach` makes every optimizer step advance it. Random draws use torch's global generator,
    whose state :mod:`s3prl.train` checkpoints, so a resumed run draws what an uninterrupted one would.
    ``last_log`` holds fairseq's logging values of the latest batch."""

    def forward(self, batch: Wav2Vec2Batch) -> torch.Tensor:
        from .wav2vec1_pretraining import Wav2VecPreTraining, wav2vec_loss

        device = self.num_updates.device
        self.model.set_num_updates(int(self.num_updates))
        if isinstance(self.model, Wav2VecPreTraining):  # wav2vec 1.0 / vq-wav2vec: equal-length crops
            res = wav2vec_loss(self.model(batch.wavs.to(device)), self.model.pcfg)
        else:
            res = wav2vec2_loss(self.model(batch.wavs.to(device), batch.wavs_len.to(device)),
                                self.model.pcfg.loss_weights)
        self.last_log = res.log
        return res.loss / max(res.sample_size, 1)


def collapse_warning(log: dict, groups: int) -> str | None:
    """A warning when a step's logged values look like a collapse (None otherwise): the code perplexity near its
    floor (one codeword per group: ``groups``), or the contrastive accuracy at 1, which is what a collapse gives
    (all targets quantized alike: every negative equals its positive and is dropped as -inf)."""
    problems = []
    ppl = log.get("code_perplexity")
    if ppl is not None and ppl <= 1.5 * groups:
        problems.append(f"code perplexity {ppl:.2f} is near its floor {groups} (one codeword per group)")
    count = log.get("count") or 0
    if count >= 50 and log.get("correct", 0) >= 0.99 * count:
        problems.append(f"contrastive accuracy {log['correct'] / count:.3f} (of {int(count)} frames)")
    if not problems:
        return None
    return ("possible codebook collapse: " + "; ".join(problems) + ". Usual remedies: a larger diversity weight "
            "(criterion loss_weights[0]), a lower learning rate or longer warm-up, a higher Gumbel end temperature")
