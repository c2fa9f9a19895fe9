"""wav2vec 2.0 CTC fine-tuning: fairseq's ``wav2vec_ctc`` model (``Wav2VecEncoder`` in training) and ``ctc`` criterion.

* :class:`Wav2Vec2CtcTraining`: the pre-trained backbone (:class:`~s3prl.upstream.wav2vec2.Wav2Vec2` + its
  ``mask_emb``) and ``proj`` (encoder dim -> output symbols). In training it does what fairseq's encoder does:
  conv features with ``feature_grad_mult`` (0: the CNN is frozen), ``dropout_input``, span masks
  (``apply_mask``, ``mask_prob``/``mask_length``, channel masks ``mask_channel_prob``/``mask_channel_length``) drawn
  from a ``torch.Generator`` or given (replay), the transformer with ``layerdrop``, ``final_dropout``, ``proj``;
  for the first ``freeze_finetune_updates`` updates the encoder runs without gradient (only ``proj`` trains).
* :func:`ctc_loss`: fairseq's criterion: log-softmax of the logits (padded frames forced to blank, as
  ``get_logits``), ``F.ctc_loss`` with ``blank`` = the dictionary's ``<s>`` (index 0), targets without ``<pad>`` /
  ``</s>``, ``reduction="sum"``, ``zero_infinity``; ``sample_size`` = sentences (``sentence_avg``) or target
  tokens; in eval mode the logged ``c_errors``/``c_total`` (UER) and ``w_errors``/``wv_errors``/``w_total`` (WER) of
  the greedy path post-processed with ``letter``.
* :class:`Wav2Vec2CtcObjective`: the loss in the form :func:`s3prl.train.train` takes (loss / sample_size, so the
  gradients are the ones fairseq's trainer steps with), with the update count as a buffer.
* :func:`from_pretrained` (``w2v_path``), :func:`from_fairseq_finetuned`, :func:`fairseq_finetuned_state_dict` /
  :func:`fairseq_finetuned_checkpoint` (fairseq's layout: ``w2v_encoder.w2v_model.*`` + ``w2v_encoder.proj.*``,
  readable by :mod:`s3prl.wav2vec2.ctc_model` and fairseq): in :mod:`s3prl.wav2vec2.finetune_io`, re-exported here.

Recipes (``base_10m`` .. ``base_960h``) and the ``tri_stage`` schedule: :mod:`s3prl.wav2vec2.finetune_recipes`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, fields, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..upstream.wav2vec2 import Wav2Vec2, Wav2Vec2Config, lengths_to_mask
from .criterion import UpdateCounting
from .ctc_model import Vocabulary
from .masking import MASK_TYPES
from .pretraining import Wav2Vec2PretrainConfig, Wav2Vec2PreTraining


@dataclass
class FineTuneConfig:
    """fairseq's ``wav2vec_ctc`` model options (``Wav2Vec2AsrConfig``: names and defaults are fairseq's) and its
    ``ctc`` criterion options (``zero_infinity``, ``sentence_avg``, ``post_process``)."""

    apply_mask: bool = False
    mask_prob: float = 0.5
    mask_length: int = 10
    mask_selection: str = "static"
    mask_other: float = 0.0
    require_same_masks: bool = True
    mask_dropout: float = 0.0
    mask_channel_prob: float = 0.0
    mask_channel_length: int = 10
    mask_channel_selection: str = "static"
    mask_channel_other: float = 0.0
    mask_channel_before: bool = False
    layerdrop: float = 0.0
    dropout: float = 0.0
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    dropout_input: float = 0.0
    final_dropout: float = 0.0
    feature_grad_mult: float = 0.0
    freeze_finetune_updates: int = 0
    blank_weight: float = 0.0
    blank_mode: str = "add"
    zero_infinity: bool = False
    sentence_avg: bool = False
    post_process: str = "letter"

    def check(self, source: str = "fine-tuning config") -> "FineTuneConfig":
        for name in ("mask_prob", "mask_channel_prob", "layerdrop", "dropout", "attention_dropout",
                     "activation_dropout", "dropout_input", "final_dropout", "mask_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{source}: {name}={value} must be in [0, 1]")
        for name in ("mask_length", "mask_channel_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{source}: {name}={getattr(self, name)} must be at least 1")
        for name in ("mask_selection", "mask_channel_selection"):
            if getattr(self, name) not in MASK_TYPES:
                raise ValueError(f"{source}: {name}={getattr(self, name)!r} (allowed: {', '.join(MASK_TYPES)})")
        if self.freeze_finetune_updates < 0 or self.feature_grad_mult < 0:
            raise ValueError(f"{source}: freeze_finetune_updates and feature_grad_mult must be >= 0")
        if self.blank_mode not in ("add", "set"):
            raise ValueError(f"{source}: blank_mode must be 'add' or 'set', got {self.blank_mode!r}")
        if self.post_process != "letter":
            raise ValueError(f"{source}: post_process={self.post_process!r}: only 'letter' is supported")
        return self


def finetune_config(recipe: dict | None = None, **changes) -> FineTuneConfig:
    """A recipe of :mod:`finetune_recipes` (its ``model`` and ``criterion`` options, ``optimization.sentence_avg``)
    or a fairseq ``cfg.model`` dict -> FineTuneConfig, with ``changes`` on top; unknown keys are ignored."""
    names = {f.name for f in fields(FineTuneConfig)}
    values = {}
    if recipe:
        model = recipe.get("model", recipe)
        values.update({k: v for k, v in dict(model).items() if k in names})
        values.update({k: v for k, v in dict(recipe.get("criterion") or {}).items() if k in names})
        if "sentence_avg" in (recipe.get("optimization") or {}):
            values["sentence_avg"] = recipe["optimization"]["sentence_avg"]
    values.update(changes)
    return FineTuneConfig(**values).check()


@dataclass
class CtcOutput:
    logits: torch.Tensor  # (B, T, V) raw ``proj`` output (fairseq's encoder_out, batch first)
    lengths: torch.Tensor  # (B,) valid frames
    mask_indices: torch.Tensor | None  # (B, T) bool
    mask_channel_indices: torch.Tensor | None  # (B, C) bool
    frozen: bool  # the encoder ran without gradient (freeze_finetune_updates)


class Wav2Vec2CtcTraining(nn.Module):
    """``model`` (the pre-trained :class:`Wav2Vec2`), ``mask_emb``, ``proj``; see the module docstring."""

    # fairseq's wav2vec 2.0 training pieces (feature_grad_mult, layer drop, mask drawing) work on
    # ``self.model`` / ``self.cfg`` / ``self.pcfg``, which this class has too
    features = Wav2Vec2PreTraining.features
    encode = Wav2Vec2PreTraining.encode
    masks = Wav2Vec2PreTraining.masks

    def __init__(self, arch: Wav2Vec2Config, ftcfg: FineTuneConfig, num_outputs: int,
                 vocabulary: Vocabulary | None = None):
        super().__init__()
        ftcfg.check()
        self.ftcfg, self.vocabulary = ftcfg, vocabulary
        self.cfg = replace(arch, dropout=ftcfg.dropout, attention_dropout=ftcfg.attention_dropout,
                           activation_dropout=ftcfg.activation_dropout)
        self.pcfg = Wav2Vec2PretrainConfig(
            feature_grad_mult=ftcfg.feature_grad_mult, dropout_input=ftcfg.dropout_input,
            encoder_layerdrop=ftcfg.layerdrop, mask_prob=ftcfg.mask_prob, mask_length=ftcfg.mask_length,
            mask_selection=ftcfg.mask_selection, mask_other=ftcfg.mask_other,
            require_same_masks=ftcfg.require_same_masks, mask_dropout=ftcfg.mask_dropout,
            mask_channel_prob=ftcfg.mask_channel_prob, mask_channel_length=ftcfg.mask_channel_length,
            mask_channel_selection=ftcfg.mask_channel_selection, mask_channel_other=ftcfg.mask_channel_other,
            mask_channel_before=ftcfg.mask_channel_before)
        self.model = Wav2Vec2(self.cfg)
        self.mask_emb = nn.Parameter(torch.empty(self.cfg.embed_dim).uniform_())
        self.proj = nn.Linear(self.cfg.embed_dim, num_outputs)
        nn.init.xavier_uniform_(self.proj.weight)  # fairseq's Linear of the ASR models
        nn.init.zeros_(self.proj.bias)
        self.num_updates = 0
        self.fairseq_w2v_args: dict | None = None  # the pre-training cfg, written back into fine-tuned files

    def set_num_updates(self, num_updates: int) -> None:
        self.num_updates = int(num_updates)

    @property
    def frozen(self) -> bool:
        """fairseq runs the encoder under ``no_grad`` while ``num_updates < freeze_finetune_updates``."""
        return self.num_updates < self.ftcfg.freeze_finetune_updates

    def encoder_parameters(self):
        return [p for n, p in self.named_parameters() if not n.startswith("proj.")]

    def _extract(self, wavs, wavs_len, mask_indices, mask_channel_indices, generator):
        p = self.pcfg
        if self.cfg.normalize_waveform:
            wavs = self.model.normalize(wavs, wavs_len)
        feats, lengths = self.features(wavs, wavs_len)  # (B, T, C), grads scaled by feature_grad_mult
        feats = self.model.feature_norm(feats)
        if self.cfg.crop_seq_to_multiple > 1:
            keep = feats.size(1) - feats.size(1) % self.cfg.crop_seq_to_multiple
            feats, lengths = feats[:, :keep], lengths.clamp(max=keep)
        x = F.dropout(self.model.feature_proj(feats), p.dropout_input, self.training)  # (B, T, D)
        B, T, D = x.shape
        time = channel = None
        if self.ftcfg.apply_mask and self.training:
            need_time = p.mask_prob > 0 and mask_indices is None
            need_chan = p.mask_channel_prob > 0 and mask_channel_indices is None
            drawn = self.masks(B, T, D, lengths, generator) if need_time or need_chan else (None, None)
            time = (drawn[0] if mask_indices is None else mask_indices) if p.mask_prob > 0 else None
            channel = (drawn[1] if mask_channel_indices is None else mask_channel_indices) \
                if p.mask_channel_prob > 0 else None
            chan = None if channel is None else channel.to(x.device).bool()[:, None, :]
            if chan is not None and p.mask_channel_before:
                x = x.masked_fill(chan, 0.0)
            if time is not None:
                x = torch.where(time.to(x.device).bool()[..., None], self.mask_emb.to(x.dtype), x)
            if chan is not None and not p.mask_channel_before:
                x = x.masked_fill(chan, 0.0)
        x = x.masked_fill(~lengths_to_mask(lengths, T)[..., None], 0.0)
        return self.encode(x, lengths, generator), lengths, time, channel

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor, mask_indices: torch.Tensor | None = None,
                mask_channel_indices: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> CtcOutput:
        """wavs (B, L) zero-padded (fairseq's padded batch: the CNN sees the padding), wavs_len (B,)."""
        wavs_len = wavs_len.to(wavs.device)
        frozen = self.frozen
        with torch.no_grad() if frozen else contextlib.nullcontext():
            x, lengths, time, channel = self._extract(wavs, wavs_len, mask_indices, mask_channel_indices, generator)
        x = F.dropout(x, self.ftcfg.final_dropout, self.training)
        return CtcOutput(self.proj(x), lengths, time, channel, frozen)

    @torch.no_grad()
    def emissions(self, wavs: torch.Tensor, wavs_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """fairseq's ``get_logits`` in eval mode: (B, T, V) with blank weight and padded frames forced to blank."""
        out = self(wavs, wavs_len)
        return emission_logits(out.logits, out.lengths, self.ftcfg), out.lengths


def emission_logits(logits: torch.Tensor, lengths: torch.Tensor, ftcfg: FineTuneConfig) -> torch.Tensor:
    """fairseq ``Wav2VecCtc.get_logits``: blank weight (index 0), frames past each length -> certain blank."""
    if ftcfg.blank_weight != 0:
        blank = logits[..., :1] + ftcfg.blank_weight if ftcfg.blank_mode == "add" \
            else torch.full_like(logits[..., :1], ftcfg.blank_weight)
        logits = torch.cat([blank, logits[..., 1:]], dim=-1)
    pad = ~lengths_to_mask(lengths, logits.size(1))  # (B, T)
    if bool(pad.any()):
        forced = torch.full_like(logits[0, 0], float("-inf"))
        forced[0] = 0.0
        logits = torch.where(pad[..., None], forced, logits)
    return logits


# ---------------------------------------------------------------------------------------------
# the ctc criterion
# ---------------------------------------------------------------------------------------------


@dataclass
class CtcLossOutput:
    loss: torch.Tensor  # () summed over the batch
    sample_size: int
    lprobs: torch.Tensor  # (T, B, V) as fairseq's criterion sees them
    log: dict = field(default_factory=dict)


def greedy_units(lprobs_bt: torch.Tensor, blank: int = 0) -> list[int]:
    """(T, V) -> the arg-max path, repeats merged, blanks dropped (fairseq's criterion / viterbi decoder)."""
    toks = lprobs_bt.argmax(-1).unique_consecutive()
    return toks[toks != blank].tolist()


def ctc_loss(logits: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, ftcfg: FineTuneConfig,
             vocabulary: Vocabulary | None = None, training: bool = True, blank: int = 0, pad: int = 1,
             eos: int = 2) -> CtcLossOutput:
    """fairseq's ``ctc`` criterion on (B, T, V) logits, valid frame ``lengths`` and (B, S) ``targets`` padded with
    ``pad`` (fairseq's ``<pad>`` = 1; ``</s>`` = 2 is dropped as well). ``training=False`` adds the error counts
    (needs ``vocabulary`` for the word error rate)."""
    lprobs = F.log_softmax(emission_logits(logits, lengths, ftcfg).float(), dim=-1).transpose(0, 1).contiguous()
    keep = (targets != pad) & (targets != eos)
    flat, target_lengths = targets.masked_select(keep), keep.sum(-1)
    with torch.backends.cudnn.flags(enabled=False):
        loss = F.ctc_loss(lprobs, flat, lengths.to(lprobs.device), target_lengths, blank=blank, reduction="sum",
                          zero_infinity=ftcfg.zero_infinity)
    ntokens = int(target_lengths.sum())
    sample_size = targets.size(0) if ftcfg.sentence_avg else ntokens
    log = {"loss": float(loss.detach()), "ntokens": ntokens, "nsentences": targets.size(0), "sample_size": sample_size}
    if not training:
        log.update(error_counts(lprobs, lengths, targets, keep, vocabulary, blank))
    return CtcLossOutput(loss, sample_size, lprobs, log)


def error_counts(lprobs: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, keep: torch.Tensor,
                 vocabulary: Vocabulary | None, blank: int = 0) -> dict:
    """fairseq's valid-time counts: unit edit distance of the greedy path against the target ids (UER), and word
    edit distance of both turned into words (``Dictionary.string`` + ``letter`` post-processing)."""
    from ..metrics.error_rate import distance

    c_err = c_len = w_err = w_len = 0
    lp = lprobs.detach().transpose(0, 1).float().cpu()
    for row, t, k, n in zip(lp, targets.cpu(), keep.cpu(), lengths.cpu().tolist()):
        ref = t[k].tolist()
        hyp = greedy_units(row[:n], blank)
        c_err += distance(ref, hyp)
        c_len += len(ref)
        if vocabulary is not None:
            ref_words = vocabulary.words(vocabulary.string(ref)).split()
            hyp_words = vocabulary.words(vocabulary.string(hyp)).split()
            w_err += distance(ref_words, hyp_words)
            w_len += len(ref_words)
    out = {"c_errors": c_err, "c_total": c_len}
    if vocabulary is not None:
        out.update(w_errors=w_err, wv_errors=w_err, w_total=w_len)
    return out


def collate_targets(sequences: list, pad: int = 1) -> torch.Tensor:
    """Target id sequences -> (B, S) padded with fairseq's ``<pad>`` index."""
    seqs = [torch.as_tensor(s, dtype=torch.long) for s in sequences]
    out = torch.full((len(seqs), max((len(s) for s in seqs), default=0)), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out


@dataclass
class CtcBatch:
    wavs: torch.Tensor  # (B, L) zero-padded
    wavs_len: torch.Tensor  # (B,)
    targets: torch.Tensor  # (B, S) letter ids, padded with <pad> (1)
    uids: list = field(default_factory=list)


def train_step(model: Wav2Vec2CtcTraining, batch: CtcBatch, num_updates: int | None = None,
               generator: torch.Generator | None = None, **replay) -> CtcLossOutput:
    """Forward + backward as fairseq's trainer does one update's batch; gradients divided by ``sample_size``."""
    if num_updates is not None:
        model.set_num_updates(num_updates)
    out = model(batch.wavs, batch.wavs_len, generator=generator, **replay)
    res = ctc_loss(out.logits, out.lengths, batch.targets.to(out.logits.device), model.ftcfg, model.vocabulary,
                   model.training)
    res.loss.backward()
    if res.sample_size > 0:
        for p in model.parameters():
            if p.grad is not None:
                p.grad.div_(res.sample_size)
    return res


class Wav2Vec2CtcObjective(UpdateCounting):
    """Fine-tuning objective for :func:`s3prl.train.train`: ``objective(CtcBatch) -> loss / sample_size``.

    The update count is a buffer (saved with the weights); :meth:`attach` makes each optimizer step advance it,
    so the encoder stays frozen for the first ``freeze_finetune_updates`` steps (its parameters then get no
    gradient and the optimizer leaves them unchanged). In eval mode ``last_log`` also holds the error counts."""

    def forward(self, batch: CtcBatch) -> torch.Tensor:
        device = self.num_updates.device
        self.model.set_num_updates(int(self.num_updates))
        out = self.model(batch.wavs.to(device), batch.wavs_len.to(device))
        res = ctc_loss(out.logits, out.lengths, batch.targets.to(device), self.model.ftcfg, self.model.vocabulary,
                       self.training)
        self.last_log = res.log
        return res.loss / max(res.sample_size, 1)


def letter_targets(transcript: str, vocabulary: Vocabulary) -> list[int]:
    """A transcript (words) -> letter ids as fairseq's ``.ltr`` labels give them: its letters separated by
    spaces, ``|`` after every word (``libri_labels.py``), each looked up in ``vocabulary`` (unknown: ``<unk>``)."""
    from .labels import letters

    return [vocabulary.index(s) for s in letters(transcript).split()]


# the checkpoint side (kept apart for size), part of this module's interface
from .finetune_io import (from_fairseq_finetuned, fairseq_finetuned_checkpoint,  # noqa: E402,F401
                          fairseq_finetuned_state_dict, from_pretrained)
