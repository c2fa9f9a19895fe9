"""Sequence tasks trained with CTC: phoneme recognition (PR), ASR, slot filling (SF), out-of-domain ASR.

Each task turns its corpus' transcripts into :class:`Transcript` labels (the reference text as scored and the
CTC target ids) with the original's symbol tables (``s3prl.text``), trains ``projector + model`` heads
(``s3prl.downstream.sequence_heads``) with ``CTCLoss(blank, zero_infinity=True)`` (mean over the batch of
per-utterance losses divided by their target lengths), decodes greedily and scores as the original:

================  ==========================================================  ====================================
task              head / targets                                              metrics (first: picks the best)
================  ==========================================================  ====================================
``ctc_libriphone``  Linear(D->256) + frame linear; 71 phonemes + 3 specials     ``per`` (fraction)
``asr``           Linear(D->1024) + 2 BLSTM 1024 + linear; fairseq char dict  ``wer``, ``uer`` (percent)
``ctc_snips``     as ASR over characters + B-/E- slot markers                 ``slot_type_f1`` (fraction), ...
``ctc_commonvoice``  BLSTM with tanh projections, 320-sample hop; characters    ``wer``, ``cer`` (fractions)
``ctc_sbcsae``    as ``ctc_commonvoice``; SBCSAE clips, en_char.txt characters  ``wer``, ``cer`` (fractions)
================  ==========================================================  ====================================

Every head may instead be the original's ``Wav2Letter`` convolution stack: ``-o task.model={select: Wav2Letter}``
(its option: ``total_rate``, default 320). Head overrides take the original's layout too (``{select: X, X:
{...}}``); a ``select`` other than the task's starts from that model's defaults, not the task's RNN options.

Targets end with the end-of-sentence symbol as the original's (``</s>`` for ASR, ``<eos>`` otherwise); the
decoder drops it. The vocabulary is stored in every checkpoint (``Classes``). ASR and SF apply SpecAugment to
the features while training. An utterance whose frames cannot hold its target (CTC needs one frame per label
plus one per repeated pair) contributes 0 to the loss (``zero_infinity``); such utterances are counted and
reported in the log, never a NaN.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...decode import greedy_ids
from ...metrics import error_rate, slots
from ...text import (CTC_CHARS, PHONEMES, CharDictionary, CharSlotVocabulary, OutOfVocabularyError, TokenVocabulary,
                     load_lexicon, phonemize)
from ..corpora import common_voice, librispeech_text, sbcsae, snips
from ..data import Example
from ..sequence_heads import MODELS, CTCHead
from ..specaug import SpecAug, SpecAugConfig
from .base import Downstream, Objective, Task, register

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transcript:
    """A sequence label: ``text`` is the reference as scored, ``ids`` the CTC target."""

    text: str
    ids: tuple[int, ...]
    vocabulary: dict = field(default=None, compare=False, repr=False)  # shared by all labels of a run

    def __str__(self) -> str:  # what a `<split>_predict.txt` line shows
        return self.text


def make_tokenizer(vocabulary: dict):
    """The symbol table a vocabulary record (a checkpoint's ``Classes``) describes."""
    kind = vocabulary["kind"]
    if kind == "dictionary":
        return CharDictionary(vocabulary["symbols"])
    if kind == "tokens":
        return TokenVocabulary(vocabulary["symbols"], vocabulary["mode"])
    if kind == "slots":
        return CharSlotVocabulary(vocabulary["chars"], vocabulary["slots"])
    raise ValueError(f"unknown vocabulary kind {kind!r}")


# ------------------------------------------------------------------------------------------------
# the trainable part, loss and prediction
# ------------------------------------------------------------------------------------------------


class CTCDownstream(Downstream):
    """The head plus what is not a weight: the symbol table and SpecAugment (training only)."""

    def __init__(self, head: CTCHead, vocabulary: dict, specaug: dict | None):
        super().__init__(head)
        self.vocabulary = vocabulary
        self.tokenizer = make_tokenizer(vocabulary)
        self.specaug = SpecAug(**specaug) if specaug else None
        self.decoder = None  # ASR: a LexiconDecoder (task.decoder), used outside training
        self.seen = self.infeasible = 0

    def log_probs(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and self.specaug is not None:
            x = self.specaug(x, lengths)
        logits, out_lengths = self.head(x, lengths)
        return F.log_softmax(logits.float(), dim=-1), out_lengths.to(logits.device)  # (B, T', V), (B,)


def required_frames(ids: Sequence[int]) -> int:
    """The fewest frames CTC needs for ``ids``: one per label plus a blank between equal neighbours."""
    return len(ids) + sum(a == b for a, b in zip(ids, ids[1:]))


def ctc_loss(ds: CTCDownstream, x: torch.Tensor, lengths: torch.Tensor, labels: list[Transcript]) -> torch.Tensor:
    log_probs, out_lengths = ds.log_probs(x, lengths)
    targets = [torch.tensor(label.ids, dtype=torch.long) for label in labels]
    target_lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    padded = nn.utils.rnn.pad_sequence(targets, batch_first=True, padding_value=ds.tokenizer.blank)
    count_infeasible(ds, [label.ids for label in labels], out_lengths.tolist())
    return F.ctc_loss(log_probs.transpose(0, 1), padded.to(log_probs.device), out_lengths, target_lengths.to(
        log_probs.device), blank=ds.tokenizer.blank, reduction="mean", zero_infinity=True)


def count_infeasible(ds: CTCDownstream, targets: list, frames: list[int]) -> None:
    """Count utterances too short for their targets; log the running count when it reaches a power of two."""
    bad = sum(n < required_frames(ids) for ids, n in zip(targets, frames))
    ds.seen += len(targets)
    if bad:
        before, ds.infeasible = ds.infeasible, ds.infeasible + bad
        if (ds.infeasible & (ds.infeasible - 1)) == 0 or before.bit_length() != ds.infeasible.bit_length():
            logger.warning("CTC: %d of %d training utterances so far have fewer frames than their label sequence "
                           "needs (loss 0 for them, zero_infinity)", ds.infeasible, ds.seen)


@dataclass(frozen=True)
class AsrHypothesis:
    """An ASR hypothesis: the greedy token string (``H I | Y O U |``, scored as UER) and the words (scored as
    WER): the LM decoder's when one is set (``lm``), else the greedy tokens' words, as the original."""

    tokens: str
    words: str
    lm: bool = False

    def __str__(self) -> str:
        return self.words


def ctc_predict(ds: CTCDownstream, x: torch.Tensor, lengths: torch.Tensor) -> list:
    """Hypotheses: ASR gives :class:`AsrHypothesis` es, the others their decoded text (greedy)."""
    log_probs, out_lengths = ds.log_probs(x, lengths)
    tok = ds.tokenizer
    if not isinstance(tok, CharDictionary):
        return [tok.decode(ids) for ids in greedy_ids(log_probs, out_lengths, tok.blank, drop=(tok.eos,))]
    out = []
    for b, ids in enumerate(greedy_ids(log_probs, out_lengths, tok.blank)):
        tokens = tok.string(ids)
        words = ds.decoder.decode(log_probs[b, : int(out_lengths[b])]) if ds.decoder is not None else None
        out.append(AsrHypothesis(tokens, CharDictionary.to_words(tokens) if words is None else " ".join(words),
                                 ds.decoder is not None))
    return out


def _pairs(predictions: dict, examples: Sequence[Example]) -> tuple[list[str], list[str]]:
    return [predictions[ex.uid] for ex in examples], [ex.label.text for ex in examples]


def phoneme_score(predictions: dict, examples: Sequence[Example], trials=None) -> dict:
    hyps, refs = _pairs(predictions, examples)
    return {"per": error_rate.per(hyps, refs, sep=" ")}


def asr_score(predictions: dict, examples: Sequence[Example], trials=None) -> dict:
    """WER and UER (unit = character incl. ``|``) in percent, as the original ASR."""
    hyps, refs = _pairs(predictions, examples)
    ref_words = [CharDictionary.to_words(t) for t in refs]
    wer = error_rate.error_counts([h.words for h in hyps], ref_words, "word")
    uer = error_rate.error_counts([h.tokens for h in hyps], refs, "word")  # token strings: space-separated units
    return {"wer": 100.0 * wer.rate, "uer": 100.0 * uer.rate}


def slot_score(predictions: dict, examples: Sequence[Example], trials=None) -> dict:
    hyps, refs = _pairs(predictions, examples)
    names = ("slot_type_f1", "slot_value_cer", "slot_value_wer", "slot_edit_f1_full", "slot_edit_f1_part")
    scores = {name: getattr(slots, name)(hyps, refs) for name in names}
    return {**scores, "wer": error_rate.wer(hyps, refs, sep=" "), "cer": error_rate.cer(hyps, refs)}


def transcript_writer(asr: bool = False):
    """``write(folder, split, predictions, examples)``: ``<split>-hyp.ark`` and ``<split>-ref.ark`` with
    ``<uid> <text>`` lines, the original's file names (ASR: words in ``<split>-noLM-hyp.ark``, or ``-LM-``)."""

    def write(folder: Path, split: str, predictions: dict, examples: Sequence[Example]) -> None:
        stem = ""
        if asr:
            stem = "-LM" if any(predictions[ex.uid].lm for ex in examples) else "-noLM"
        hyp = [f"{ex.uid} {predictions[ex.uid]}\n" for ex in examples]
        ref = [f"{ex.uid} {CharDictionary.to_words(ex.label.text) if asr else ex.label.text}\n" for ex in examples]
        (Path(folder) / f"{split}{stem}-hyp.ark").write_text("".join(hyp))
        (Path(folder) / f"{split}{stem}-ref.ark").write_text("".join(ref))

    return write


def char_score(predictions: dict, examples: Sequence[Example], trials=None) -> dict:
    hyps, refs = _pairs(predictions, examples)
    return {"wer": error_rate.wer(hyps, refs, sep=" "), "cer": error_rate.cer(hyps, refs)}


def from_original_state_dict(state_dict: dict) -> dict:
    """An original ``asr`` / ``ctc`` expert's ``Downstream`` weights (``projector.*``, ``model.*``) as a
    :class:`CTCDownstream` state; the bookkeeping ``best_score`` is dropped, any other key raises."""
    out = {}
    for key, value in state_dict.items():
        if key == "best_score":
            continue
        if not key.startswith(("projector.", "model.")):
            raise KeyError(f"unexpected key {key!r} in an original CTC downstream state")
        out[f"head.{key}"] = value
    return out


def head_options(defaults: dict, overrides: dict) -> dict:
    """The head options: the task's, updated by ``task.model`` (flat keys, or the original's ``{select: X, X:
    {...}}``). A ``select`` other than the task's starts from ``project_dim`` alone (the original reads only the
    selected model's section). ``zero_infinity`` is accepted when true (always on here)."""
    overrides = dict(overrides)
    if overrides.pop("zero_infinity", True) is not True:
        raise ValueError("task.model.zero_infinity: CTC here always uses zero_infinity=True (utterances too short "
                         "for their label count 0 and are reported); remove the option")
    select = overrides.get("select", defaults.get("select"))
    base = dict(defaults) if select == defaults.get("select") else {"project_dim": defaults["project_dim"]}
    nested = overrides.get(select)
    if nested is not None and not isinstance(nested, dict):
        raise ValueError(f"task.model.{select} must be a mapping of {select} options, got {nested!r}")
    flat = {k: v for k, v in overrides.items() if k not in MODELS}
    return {**base, **flat, **(nested or {})}


ORIGINAL_CORPORA = {"common_voice": "ctc_commonvoice", "sbcsae": "ctc_sbcsae", "snips": "ctc_snips",
                    "libriphone": "ctc_libriphone"}
_RUNNER_KEYS = ("total_steps", "gradient_clipping", "gradient_accumulate_steps", "log_step", "eval_step",
                "save_step", "max_keep")


def from_original_config(loaded: dict, where: str = "config") -> tuple[str, dict]:
    """An original ``run_downstream.py -d ctc -c X.yaml`` configuration (``runner``, ``optimizer``,
    ``downstream_expert.corpus / text / model``) as ``(task name, {"train": ..., "task": ...})``, the sections
    of a ``-c`` file here. For the corpora of ``ORIGINAL_CORPORA``; the ``specaug`` block becomes ``task.specaug``
    (none: off); ``metric`` and the batching keys are the task's own (batches: ``data.batch_seconds``)."""
    expert = loaded.get("downstream_expert")
    corpus = (expert or {}).get("corpus") if isinstance(expert, dict) else None
    if not isinstance(corpus, dict) or "name" not in corpus:
        raise ValueError(f"{where}: not an original ctc config (no downstream_expert.corpus.name)")
    name = str(corpus["name"]).lower()
    if name not in ORIGINAL_CORPORA:
        raise ValueError(f"{where}: corpus {name!r} has no original-config reading here (known: "
                         f"{sorted(ORIGINAL_CORPORA)}); use -d <task> with -o task.root=... instead")
    runner, optimizer = loaded.get("runner") or {}, loaded.get("optimizer") or {}
    train = {k: runner[k] for k in _RUNNER_KEYS if k in runner}
    train.update({k: optimizer[o] for k, o in (("lr", "lr"), ("optimizer", "torch_optim_name")) if o in optimizer})
    task = {"root": corpus.get("path")}
    # the file's specaug block replaces the task's (no block: no SpecAugment, as the original)
    specaug = loaded.get("specaug")
    defaults = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(SpecAugConfig()).items()}
    task["specaug"] = {**defaults, **specaug} if isinstance(specaug, dict) else False
    text, model = expert.get("text") or {}, expert.get("model")
    if name == "snips":
        speakers = {"train_speakers": "train_speakers", "dev_speakers": "valid_speakers",
                    "test_speakers": "test_speakers"}
        task.update({k: corpus[o] for k, o in speakers.items() if corpus.get(o)})
        if text.get("slots_file"):
            task["slots_file"] = text["slots_file"]
    else:
        task.update({split: corpus[split] for split in ("train", "dev", "test") if corpus.get(split)})
        vocab = text.get("vocab_file")
        # the original's relative cv_vocab/en_char.txt is the SBCSAE task's built-in vocabulary; libriphone's
        # phoneme.txt is the PR task's built-in phoneme set
        builtin = name == "sbcsae" and Path(vocab or "").name == "en_char.txt" and not Path(vocab).is_file()
        if vocab and not builtin and name != "libriphone":
            task["vocab_file"] = vocab
        # libriphone: the original's repository-relative g2p lexicons stand for the built-in default (CMU dictionary)
        lexicons = [p for p in corpus.get("lexicon") or [] if Path(p).is_file() or not p.startswith("downstream/")]
        if name == "libriphone" and lexicons:
            task["lexicon"] = lexicons
    if model:
        task["model"] = model
    return ORIGINAL_CORPORA[name], {"train": train, "task": task}


# ------------------------------------------------------------------------------------------------
# the task kind: labels from transcripts, vocabulary in the checkpoint, hypothesis / reference files
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CTCTask(Task):
    """A :class:`Task` whose labels are :class:`Transcript` s.

    ``vocabulary(options) -> record`` (see :func:`make_tokenizer`); ``target(raw, options, where) -> text`` turns a
    corpus label into what the tokenizer encodes (PR: phonemes of the words); ``head``: the ``CTCHead``
    options; ``specaug``: SpecAugment options applied to the features in training (None: none).
    """

    vocabulary: Callable[[dict], dict] | None = None
    target: Callable[[str, dict, str], str] = lambda raw, options, where: raw
    head: dict = field(default_factory=dict)
    specaug: dict | None = None

    def load(self, options: dict) -> dict[str, list[Example]]:
        splits = super().load(options)
        merged = {**self.options, **options}
        overrides = merged.get("model") or {}
        if not isinstance(overrides, dict):
            raise ValueError(f"task.model must be a mapping of head options, e.g. '{{dim: [256, 256]}}', "
                             f"got {overrides!r}")
        # the vocabulary record is the checkpoint's `Classes`: with the head's options it rebuilds the head
        vocabulary = {**self.vocabulary(merged), "head": head_options(self.head, overrides),
                      "upstream_rate": merged.get("upstream_rate"), "specaug": self.specaug_options(merged)}
        tokenizer = make_tokenizer(vocabulary)
        out, oov = {}, {}
        for split, examples in splits.items():
            out[split] = []
            for ex in examples:
                try:
                    out[split].append(self.label(ex, tokenizer, vocabulary, merged))
                except OutOfVocabularyError as err:
                    oov[ex.uid] = err.words
        if oov:
            self.report_oov(oov, merged, out)
        return out

    def specaug_options(self, options: dict) -> dict | None:
        """The task's SpecAugment with ``task.specaug`` applied: a mapping changes its values (e.g. narrower
        frequency masks for 39-d MFCCs, which the original's 4 masks up to 49 bins wipe out), false turns it off."""
        change = options.get("specaug")
        if change is None:
            return self.specaug
        if change is False:
            return None
        if not isinstance(change, dict):
            raise ValueError(f"task.specaug must be a mapping of SpecAugment options or false, got {change!r}")
        merged = {**(self.specaug or {}), **change}
        try:
            SpecAug(**merged)
        except (TypeError, ValueError) as err:
            raise ValueError(f"task.specaug: {err}; keys: {', '.join(SpecAugConfig.__dataclass_fields__)}") from None
        return merged

    def report_oov(self, oov: dict, options: dict, splits: dict) -> None:
        """Utterances with words missing from the lexicon: one error naming them all, or (``skip_oov``) a log
        line and the utterances left out."""
        words = sorted({w for ws in oov.values() for w in ws})
        shown = ", ".join(words[:30]) + (" ..." if len(words) > 30 else "")
        message = f"{self.name}: {len(oov)} utterance(s) hold {len(words)} word(s) missing from the lexicon: {shown}"
        if not options.get("skip_oov"):
            raise OutOfVocabularyError(message + " (add them to a lexicon file 'WORD PH PH ...' given with "
                                       "-o task.lexicon=FILE, or leave those utterances out with "
                                       "-o task.skip_oov=true)", words)
        logger.warning("%s; left out (task.skip_oov): %s", message, ", ".join(sorted(oov)[:20]))
        for split, examples in splits.items():
            if not examples:
                raise ValueError(f"{self.name}: no {split} utterance left after leaving out those with unknown words")

    def label(self, ex: Example, tokenizer, vocabulary: dict, options: dict) -> Example:
        where = f"{self.name}: utterance {ex.uid} ({ex.path})"
        if not str(ex.label).strip():
            raise ValueError(f"{where}: empty transcript")
        ids = tokenizer.encode(self.target(ex.label, options, where), where=where)
        text = tokenizer.string(ids) if isinstance(tokenizer, CharDictionary) else tokenizer.decode(ids)
        return Example(ex.uid, ex.path, Transcript(text, tuple(ids), vocabulary), ex.start, ex.end)

    def count_classes(self, train: Sequence[Example]):
        """The vocabulary record (stored as the checkpoint's ``Classes``)."""
        if not train:
            raise ValueError(f"task {self.name}: the training split is empty")
        return train[0].label.vocabulary

    def bind(self, options: dict, downsample_rate: int) -> dict:
        """The upstream's frame hop (samples) decides the RNN head's input downsampling (``total_rate``)."""
        return {**options, "upstream_rate": int(downsample_rate)}

    def configure(self, downstream: CTCDownstream, options: dict) -> None:
        """``task.decoder`` (ASR): beam search with a lexicon and a KenLM model at evaluation."""
        conf = options.get("decoder")
        if not conf:
            downstream.decoder = None
            return
        from ...decode.lexicon import LexiconDecoder, LexiconDecoderConfig

        tok = downstream.tokenizer
        if not isinstance(tok, CharDictionary) or not isinstance(conf, dict):
            raise ValueError(f"task {self.name}: task.decoder is a mapping of LM decoding options, for ASR only")
        conf = {k: float(v.replace("math.", "")) if k.endswith(("_weight", "_score")) and isinstance(v, str) else v
                for k, v in conf.items()}
        try:
            config = LexiconDecoderConfig(**conf)
        except TypeError as err:
            raise ValueError(f"task.decoder: {err}; keys: kenlm_model, lexicon, beam, beam_threshold, lm_weight, "
                             "word_score, unk_weight, sil_weight, nbest") from None
        downstream.decoder = LexiconDecoder(config, tok.symbols, tok.blank, tok.unk)

    def build_head(self, feature_size: int, vocabulary: dict) -> CTCDownstream:
        tokenizer = make_tokenizer(vocabulary)
        options = vocabulary.get("head", self.head)
        try:
            head = CTCHead(feature_size, len(tokenizer.symbols), vocabulary.get("upstream_rate") or 320, **options)
        except TypeError as err:
            raise ValueError(f"task {self.name}: bad head option in {options} ({err}); set them with "
                             "-o task.model={...}") from None
        return CTCDownstream(head, vocabulary, vocabulary.get("specaug", self.specaug))


# ------------------------------------------------------------------------------------------------
# the tasks
# ------------------------------------------------------------------------------------------------


def phoneme_vocabulary(options: dict) -> dict:
    return {"kind": "tokens", "symbols": list(PHONEMES), "mode": "word"}


@functools.lru_cache(maxsize=4)
def _lexicon(paths: tuple):
    return load_lexicon(list(paths) or None)


def to_phonemes(raw: str, options: dict, where: str = "transcript") -> str:
    lexicon = options.get("lexicon")
    paths = tuple([lexicon] if isinstance(lexicon, str) else lexicon or ())
    return phonemize(raw, _lexicon(paths), where)


def char_dictionary(options: dict) -> dict:
    path = options.get("dict_path")
    dictionary = CharDictionary.load(path) if path else CharDictionary.default()
    return {"kind": "dictionary", "symbols": dictionary.symbols[len(CharDictionary.SPECIALS):]}


def char_vocabulary(options: dict) -> dict:
    """One character per line of ``task.vocab_file`` (a line holding a space is the word separator)."""
    if not options.get("vocab_file"):
        raise ValueError("the character vocabulary is not set: pass -o task.vocab_file=FILE (one character per "
                         "line, e.g. the original's cv_vocab/es_char.txt)")
    vocab = TokenVocabulary.load(options["vocab_file"], "character")
    return {"kind": "tokens", "symbols": vocab.symbols[len(TokenVocabulary.SPECIALS):], "mode": "character"}


def english_vocabulary(options: dict) -> dict:
    """SBCSAE: ``task.vocab_file`` when given, else the original's ``cv_vocab/en_char.txt`` (space, ', A-Z)."""
    if options.get("vocab_file"):
        return char_vocabulary(options)
    return {"kind": "tokens", "symbols": list(sbcsae.CHARS), "mode": "character"}


def slot_vocabulary(options: dict) -> dict:
    slot_names = CharSlotVocabulary.read_slots(options.get("slots_file") or snips.slots_file(options["root"]))
    return {"kind": "slots", "chars": list(CTC_CHARS), "slots": slot_names}


def _builder(task_name: str):
    def build(feature_size: int, vocabulary: dict) -> CTCDownstream:
        from . import base

        return base.get(task_name).build_head(feature_size, vocabulary)
    return build


# head overrides (-o task.model={...}), SpecAugment changes (-o task.specaug={...} or false); upstream_rate: by bind
_HEAD_OPTIONS = {"model": None, "specaug": None, "upstream_rate": None}
_LIBRI = {"root": None, "train": ["train-clean-100"], "dev": ["dev-clean"], "test": ["test-clean"], **_HEAD_OPTIONS}
_RNNS = dict(project_dim=1024, select="RNNs", module="LSTM", bidirection=True, dim=[1024, 1024], dropout=[0.2, 0.2],
             layer_norm=[False, False], proj=[False, False], sample_rate=[1, 1], sample_style="concat", total_rate=-1)
# the original's ASR / SF specaug sections (SF: adaptive time masks)
SPECAUG = dict(apply_time_warp=True, time_warp_window=5, apply_freq_mask=True, freq_mask_width_range=(0, 50),
               num_freq_mask=4, apply_time_mask=True, time_mask_width_range=(0, 40), num_time_mask=2, adaptive=False)
_SUPERB_SEQ = dict(optimizer="Adam", lr=1e-4, total_steps=200000, gradient_clipping=1.0, gradient_accumulate_steps=1,
                   log_step=100, eval_step=2000, save_step=500, max_keep=1)

PR = register(CTCTask(
    name="ctc_libriphone", description="PR: LibriSpeech phoneme recognition (words -> phonemes by lexicon)",
    corpus=librispeech_text.load_task, options={**_LIBRI, "lexicon": None, "skip_oov": False},
    build=_builder("ctc_libriphone"), objective=Objective(ctc_loss, ctc_predict, phoneme_score, transcript_writer()),
    metric="per", higher_better=False,
    train={**_SUPERB_SEQ, "lr": 1e-2, "total_steps": 100000, "gradient_accumulate_steps": 2, "eval_step": 1000,
           "save_step": 100},
    data={"batch_seconds": 200.0, "eval_batch_seconds": 400.0},  # batch 16 of ~12.5 s (bucketed by length)
    vocabulary=phoneme_vocabulary, target=to_phonemes, head=dict(project_dim=256, select="FrameLevel"),
))
ASR = register(CTCTask(
    name="asr", description="ASR: LibriSpeech characters, BLSTM head, greedy CTC decoding",
    corpus=librispeech_text.load_task, options={**_LIBRI, "dict_path": None, "decoder": None},
    build=_builder("asr"), objective=Objective(ctc_loss, ctc_predict, asr_score, transcript_writer(asr=True)),
    metric="wer", higher_better=False, train=_SUPERB_SEQ,
    data={"batch_seconds": 200.0, "eval_batch_seconds": 400.0},  # batch 32 halved for long utterances: 16
    vocabulary=char_dictionary, head=_RNNS, specaug=SPECAUG,
))
SF = register(CTCTask(
    name="ctc_snips", description="SF: Audio SNIPS characters + slot markers, BLSTM head",
    corpus=snips.load_task, options={"root": None, "train_speakers": list(snips.TRAIN_SPEAKERS),
                                "dev_speakers": list(snips.DEV_SPEAKERS), "test_speakers": list(snips.TEST_SPEAKERS),
                                "slots_file": None, **_HEAD_OPTIONS},
    build=_builder("ctc_snips"), objective=Objective(ctc_loss, ctc_predict, slot_score, transcript_writer()),
    metric="slot_type_f1", train=_SUPERB_SEQ,
    data={"batch_seconds": 100.0, "eval_batch_seconds": 400.0},  # batch 32 of ~3 s
    vocabulary=slot_vocabulary, head=_RNNS,
    specaug={**SPECAUG, "adaptive": True, "adaptive_number_ratio": 0.04, "adaptive_size_ratio": 0.04,
             "max_n_time_masks": 20},
))
OOD_ASR = register(CTCTask(
    name="ctc_commonvoice", description="OOD-ASR: Common Voice characters (es, zh-CN, ar, ...), BLSTM head",
    corpus=common_voice.load_task, options={"root": None, "train": None, "dev": None, "test": None,
                                            "vocab_file": None, **_HEAD_OPTIONS},
    build=_builder("ctc_commonvoice"), objective=Objective(ctc_loss, ctc_predict, char_score, transcript_writer()),
    metric="wer", higher_better=False,  # zh-CN: read "cer" (reported too)
    train={**_SUPERB_SEQ, "total_steps": 500000, "log_step": 200, "save_step": 200},
    data={"batch_seconds": 80.0, "eval_batch_seconds": 400.0},  # batch 16 of ~5 s clips
    vocabulary=char_vocabulary, specaug=SPECAUG,
    head={**_RNNS, "proj": [True, True], "sample_style": "drop", "total_rate": 320},
))
SBCSAE = register(CTCTask(
    name="ctc_sbcsae", description="OOD-ASR: SBCSAE spontaneous English (SBCSAE-preprocess clips), BLSTM head",
    corpus=sbcsae.load_task, options={"root": None, "train": None, "dev": None, "test": None, "lists": None,
                                      "normalize": False, "vocab_file": None, **_HEAD_OPTIONS},
    build=_builder("ctc_sbcsae"), objective=Objective(ctc_loss, ctc_predict, char_score, transcript_writer()),
    metric="wer", higher_better=False,
    train={**_SUPERB_SEQ, "total_steps": 500000, "log_step": 200, "save_step": 200},
    data={"batch_seconds": 80.0, "eval_batch_seconds": 400.0},  # the original's batch 16 (clips of 0.1-15 s)
    vocabulary=english_vocabulary, specaug=SPECAUG,
    head={**_RNNS, "proj": [True, True], "sample_style": "drop", "total_rate": 320},
))
