"""Speech translation (ST), the original ``speech_translation`` task, without fairseq.

Data: fairseq speech-to-text ``.tsv`` splits (``s3prl.downstream.corpora.s2t_tsv``: CoVoST 2 as the original's
``prepare_covo.sh`` prepares it). Targets: sentencepiece pieces (``s3prl.text.subword``): the model named by
``task.spm_model`` or by the data's ``config.yaml`` (``bpe_tokenizer.sentencepiece_model``), else one trained
here on the training targets with the original's settings (``char``; ``task.spm_type`` / ``task.spm_vocab_size``);
the model travels in the checkpoint and is written beside the results. Head: the S2T transformer
(``s3prl.downstream.s2t_transformer``: 2 strided convolutions, 3 encoder + 3 decoder layers of 512, 8 heads;
``-o task.model={embed_dim: 256, ...}`` changes it). Loss: label-smoothed cross-entropy (0.1) summed over target
tokens, plus with ``task.use_asr`` a CTC loss of a linear layer over the encoder against the ``src_text`` pieces
(weights 0.7 / 0.3), divided by the number of utterances, as the original. Evaluation: beam search (beam 20, at
most 400 tokens), hypotheses decoded to text and scored by corpus BLEU (sacrebleu 13a; ``zh`` when ``task.tgt_lang``
is zh), detokenized and case-sensitive; with ``use_asr`` also the original's CER / WER of greedy CTC transcripts.
Written to the experiment folder: ``output-st-<split>.tsv`` (utt_id, hyp, ref; the original's file),
``<split>-hyp.ark`` / ``<split>-ref.ark`` (``s3prl score bleu REF HYP`` reads them) and the sentencepiece model(s).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...decode.seq2seq import beam_search
from ...metrics import error_rate
from ...metrics.bleu import corpus_bleu, tokenizer_for
from ...text.subword import EXTRA_HINT, SubwordVocabulary, read_dictionary, read_sentencepiece, train_sentencepiece
from ..corpora import s2t_tsv
from ..data import Example
from ..s2t_transformer import EOS, PAD, S2TConfig, S2TTransformer, label_smoothed_nll
from .base import Downstream, Objective, Task, register


@dataclass(frozen=True)
class Translation:
    """A label: the reference as scored (the target ids decoded, as the original scores it) and the ids (ending
    with ``</s>``); ``src_ids``: the transcript's pieces for the ASR multitask (None without it)."""

    text: str
    ids: tuple[int, ...]
    src_text: str | None = None
    src_ids: tuple[int, ...] | None = None
    vocabulary: dict = field(default=None, compare=False, repr=False)  # shared by all labels of a run

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Hypothesis:
    text: str
    asr: str | None = None  # the greedy CTC transcript (use_asr)

    def __str__(self) -> str:
        return self.text


# ------------------------------------------------------------------------------------------------
# the trainable part
# ------------------------------------------------------------------------------------------------


class TranslationDownstream(Downstream):
    """The S2T transformer (``head``), the optional ASR layer and what is not a weight: the vocabularies and the
    decoding settings (from the vocabulary record, the checkpoint's ``Classes``)."""

    def __init__(self, feature_size: int, record: dict):
        tgt = SubwordVocabulary(record["tgt_model"], record["tgt_pieces"])
        # the original's upstream_rate: keep every r-th frame (or concatenate / average r frames) of the features
        ratio = max(1, record["upstream_rate"] // record["feature_rate"]) if record["upstream_rate"] > 0 else 1
        concat = record["downsample_method"] == "concat"
        cfg = S2TConfig(input_dim=feature_size * (ratio if concat else 1), vocab_size=len(tgt), **record["model"])
        super().__init__(S2TTransformer(cfg))
        self.record, self.tgt, self.ratio = record, tgt, ratio
        self.src = SubwordVocabulary(record["src_model"], record["src_pieces"]) if record["use_asr"] else None
        # the original's ASR dictionary: the source pieces then <blank> (the CTC blank, last)
        self.asr_head = nn.Linear(cfg.embed_dim, len(self.src) + 1) if self.src is not None else None

    def inputs(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features zeroed past each length, downsampled (``upstream_rate``) and cut at ``max_source_positions``."""
        lengths = lengths.to(x.device)
        x = x.masked_fill(torch.arange(x.size(1), device=x.device)[None, :, None] >= lengths[:, None, None], 0.0)
        r = self.ratio
        if r > 1:
            lengths = torch.div(lengths + r - 1, r, rounding_mode="floor")
            method = self.record["downsample_method"]
            if method == "drop":
                x = x[:, ::r]
            else:  # concat / average over groups of r frames (the last group zero-padded)
                x = F.pad(x, (0, 0, 0, (-x.size(1)) % r)).reshape(x.size(0), -1, r, x.size(-1))
                x = x.flatten(2) if method == "concat" else x.mean(dim=2)
        limit = self.head.cfg.max_source_positions
        return x[:, :limit], lengths.clamp(max=limit)

    def asr_log_probs(self, memory: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.asr_head(memory).float(), dim=-1)  # (T', B, V+1)


def _padded(seqs: Sequence[Sequence[int]], device) -> torch.Tensor:
    return nn.utils.rnn.pad_sequence([torch.tensor(s, dtype=torch.long) for s in seqs], batch_first=True,
                                     padding_value=PAD).to(device)


def translation_loss(ds: TranslationDownstream, x: torch.Tensor, lengths: torch.Tensor,
                     labels: list[Translation]) -> torch.Tensor:
    """((1 - w) * label-smoothed CE summed over tokens + w * CTC summed) / utterances, as the original."""
    x, lengths = ds.inputs(x, lengths)
    target = _padded([label.ids for label in labels], x.device)
    prev = _padded([(EOS,) + label.ids[:-1] for label in labels], x.device)  # eos moved to the front
    logits, memory, memory_padding = ds.head(x, lengths, prev)
    loss, _ = label_smoothed_nll(logits, target, ds.record["label_smoothing"])
    if ds.asr_head is not None:
        out_lengths = (~memory_padding).sum(dim=1)
        src = [label.src_ids for label in labels]
        asr = F.ctc_loss(ds.asr_log_probs(memory), _padded(src, x.device), out_lengths,
                         torch.tensor([len(s) for s in src], device=x.device), blank=len(ds.src),
                         reduction="sum", zero_infinity=True)
        weight = ds.record["asr_weight"]
        loss = (1 - weight) * loss + weight * asr
    return loss / len(labels)


@torch.no_grad()
def translation_predict(ds: TranslationDownstream, x: torch.Tensor, lengths: torch.Tensor) -> list[Hypothesis]:
    """Beam search (fairseq's decisions, ``s3prl.decode.seq2seq``); with ASR also greedy CTC transcripts."""
    rec = ds.record
    x, lengths = ds.inputs(x, lengths)
    memory, memory_padding = ds.head.encoder(x, lengths)
    batch, beam = x.size(0), rec["beam"]
    max_len = min(int(rec["max_len_a"] * x.size(1) + rec["max_len_b"]), ds.head.cfg.max_target_positions - 1)
    rows = torch.arange(batch, device=x.device).repeat_interleave(beam)
    state = {"memory": memory.index_select(1, rows), "padding": memory_padding.index_select(0, rows)}
    cache = [{} for _ in ds.head.decoder.layers]

    def step(tokens: torch.Tensor) -> torch.Tensor:
        logits = ds.head.decoder(tokens.to(x.device), state["memory"], state["padding"], cache)
        return F.log_softmax(logits[:, -1].float(), dim=-1)

    def reorder(index: torch.Tensor) -> None:
        index = index.to(x.device)
        for layer in cache:
            for part in layer.values():
                part["k"], part["v"] = part["k"].index_select(0, index), part["v"].index_select(0, index)
        state["memory"], state["padding"] = state["memory"].index_select(1, index), state["padding"].index_select(0,
                                                                                                                 index)

    best = [hyps[0][1] for hyps in beam_search(step, reorder, batch, beam, max_len, EOS, PAD, ds.tgt.unk)]
    texts = [ds.tgt.decode(ids) or "<unk>" for ids in best]  # the original writes <unk> for an empty hypothesis
    if ds.asr_head is None:
        return [Hypothesis(t) for t in texts]
    frames = ds.asr_log_probs(memory).argmax(-1).transpose(0, 1)  # (B, T')
    asr = []
    for b, n in enumerate((~memory_padding).sum(dim=1).tolist()):  # valid frames only (the original: all)
        ids = [i for i in torch.unique_consecutive(frames[b, :n]).tolist() if i != len(ds.src)]
        asr.append(ds.src.decode(ids) or "<unk>")
    return [Hypothesis(t, a) for t, a in zip(texts, asr)]


def _normalize(text: str) -> str:
    """The original's ASR scoring text: lower case, punctuation other than ' and - removed."""
    return text.translate(str.maketrans("", "", "".join(set(string.punctuation) - set("'-")))).lower()


def translation_score(predictions: dict, examples: Sequence[Example], trials=None) -> dict:
    hyps, refs = [predictions[ex.uid].text for ex in examples], [ex.label.text for ex in examples]
    lang = examples[0].label.vocabulary["tgt_lang"] if examples else None
    result = corpus_bleu(hyps, refs, tokenize=tokenizer_for(lang))
    scores = {"bleu": result["bleu"], **{f"bleu{n}": p for n, p in enumerate(result["precisions"], 1)},
              "brevity_penalty": result["brevity_penalty"]}
    if examples and predictions[examples[0].uid].asr is not None:
        asr_hyps = [_normalize(predictions[ex.uid].asr) for ex in examples]
        asr_refs = [_normalize(ex.label.src_text) for ex in examples]
        scores.update(asr_cer=error_rate.cer(asr_hyps, asr_refs), asr_wer=error_rate.wer(asr_hyps, asr_refs))
    return scores


def translation_write(folder: Path, split: str, predictions: dict, examples: Sequence[Example]) -> None:
    folder = Path(folder)
    rows = ["utt_id\thyp\tref\n"] + [f"{ex.uid}\t{predictions[ex.uid].text}\t{ex.label.text}\n" for ex in examples]
    (folder / f"output-st-{split}.tsv").write_text("".join(rows), encoding="utf-8")
    (folder / f"{split}-hyp.ark").write_text("".join(f"{ex.uid} {predictions[ex.uid].text}\n" for ex in examples),
                                             encoding="utf-8")
    (folder / f"{split}-ref.ark").write_text("".join(f"{ex.uid} {ex.label.text}\n" for ex in examples),
                                             encoding="utf-8")
    if examples and predictions[examples[0].uid].asr is not None:
        rows = ["utt_id\thyp\tref\n"] + [f"{ex.uid}\t{predictions[ex.uid].asr}\t{ex.label.src_text}\n"
                                         for ex in examples]
        (folder / f"output-asr-{split}.tsv").write_text("".join(rows), encoding="utf-8")
    record = examples[0].label.vocabulary if examples else None
    if record is not None:  # the sentencepiece model(s) the run used (trained here or read)
        (folder / "spm-tgt_text.model").write_bytes(record["tgt_model"])
        if record.get("src_model"):
            (folder / "spm-src_text.model").write_bytes(record["src_model"])


# ------------------------------------------------------------------------------------------------
# the task: vocabularies, labels, the head
# ------------------------------------------------------------------------------------------------

DECODING = ("beam", "max_len_a", "max_len_b", "tgt_lang")
_MODEL_KEYS = {f.name for f in fields(S2TConfig)} - {"input_dim", "vocab_size"}


def _vocabulary(options: dict, config: dict, train: list[Example], column: str, model_key: str,
                dict_key: str) -> tuple[bytes, list[str]]:
    """(sentencepiece model bytes, dictionary pieces) of one text column: the configured files, else trained."""
    root = Path(options["root"])
    bpe = config.get("bpe_tokenizer") or {}
    path = options.get(model_key) or (bpe.get("sentencepiece_model") if column == "tgt_text" else None)
    if path:
        what = f"sentencepiece model (task.{model_key}" + ("" if options.get(model_key) else
                                                          f", from {root / options['config_yaml']}") + ")"
        model = read_sentencepiece(path if Path(path).is_absolute() else root / path, what)
    else:
        texts = [ex.label[column] for ex in train]
        if any(t is None for t in texts):
            raise ValueError(f"speech_translation: the training split has no {column} column to train a "
                             f"sentencepiece model on")
        model = train_sentencepiece(texts, options["spm_type"], options["spm_vocab_size"])
    vocab = options.get(dict_key) or (config.get("vocab_filename") if column == "tgt_text" else None)
    pieces = read_dictionary(vocab if Path(vocab).is_absolute() else root / vocab) if vocab else None
    return model, pieces if pieces is not None else SubwordVocabulary(model).symbols[4:]


def check_options(options: dict) -> dict:
    """The head overrides (``task.model``), after checking them and the downsampling method."""
    overrides = options.get("model") or {}
    unknown = sorted(set(overrides) - _MODEL_KEYS) if isinstance(overrides, dict) else None
    if unknown is None or unknown:
        raise ValueError(f"task.model must be a mapping of S2T transformer options ({', '.join(sorted(_MODEL_KEYS))}"
                         f"), got {overrides!r}")
    try:
        S2TConfig(input_dim=1, vocab_size=5, **overrides)
    except (TypeError, ValueError) as err:
        raise ValueError(f"task.model: {err}") from None
    if options["downsample_method"] not in ("drop", "concat", "average"):
        raise ValueError(f"task.downsample_method must be drop, concat or average, got "
                         f"{options['downsample_method']!r}")
    return dict(overrides)


@dataclass(frozen=True)
class TranslationTask(Task):
    def load(self, options: dict) -> dict[str, list[Example]]:
        import importlib.util

        missing = [m for m in ("sentencepiece", "sacrebleu") if importlib.util.find_spec(m) is None]
        if missing:  # a RuntimeError: the command line shows it as a message, not as a crash
            raise RuntimeError(f"task {self.name} needs {' and '.join(missing)}: {EXTRA_HINT}")
        splits = super().load(options)
        merged = {**self.options, **options}
        overrides = check_options(merged)
        config = s2t_tsv.read_config(Path(merged["root"]), merged["config_yaml"])
        use_asr = bool(merged["use_asr"])
        tgt_model, tgt_pieces = _vocabulary(merged, config, splits["train"], "tgt_text", "spm_model", "vocab_file")
        src_model = src_pieces = None
        if use_asr:
            missing = [s for s, exs in splits.items() if any(ex.label["src_text"] is None for ex in exs)]
            if missing:
                raise ValueError(f"task.use_asr needs a src_text column (the transcripts) in every split; "
                                 f"{', '.join(missing)} has none")
            src_model, src_pieces = _vocabulary(merged, config, splits["train"], "src_text", "asr_spm_model",
                                                "asr_vocab_file")
        record = {"tgt_model": tgt_model, "tgt_pieces": tgt_pieces, "src_model": src_model, "src_pieces": src_pieces,
                  "use_asr": use_asr, "model": overrides, "tgt_lang": merged["tgt_lang"],
                  **{k: merged[k] for k in ("asr_weight", "label_smoothing", "beam", "max_len_a", "max_len_b",
                                            "upstream_rate", "downsample_method")},
                  "feature_rate": merged.get("feature_rate") or 320}
        tgt = SubwordVocabulary(tgt_model, tgt_pieces)
        src = SubwordVocabulary(src_model, src_pieces) if use_asr else None
        out = {}
        for split, examples in splits.items():
            out[split] = []
            for ex in examples:
                ids = tgt.encode(ex.label["tgt_text"])
                src_text = ex.label["src_text"]
                label = Translation(tgt.decode(ids), tuple(ids), src_text,
                                    tuple(src.encode(src_text)) if src else None, record)
                out[split].append(Example(ex.uid, ex.path, label, ex.start, ex.end))
        return out

    def count_classes(self, train: Sequence[Example]):
        """The vocabulary record (stored as the checkpoint's ``Classes``)."""
        if not train:
            raise ValueError(f"task {self.name}: the training split is empty")
        return train[0].label.vocabulary

    def bind(self, options: dict, downsample_rate: int) -> dict:
        return {**options, "feature_rate": int(downsample_rate)}

    def configure(self, downstream: TranslationDownstream, options: dict) -> None:
        """The decoding settings of the current options (``evaluate -o task.beam=5``), not the checkpoint's."""
        merged = {**self.options, **options}
        downstream.record = {**downstream.record, **{k: merged[k] for k in DECODING}}


def build_translation(feature_size: int, record: dict) -> TranslationDownstream:
    return TranslationDownstream(feature_size, record)


def from_original_state_dict(state_dict: dict) -> dict:
    """An original ``speech_translation`` expert's weights (``model.*``, ``asr_head.*``) as a
    :class:`TranslationDownstream` state; its ``best_score`` and the generator's copies of the model are dropped."""
    from ..s2t_transformer import from_fairseq_state_dict

    out = {f"head.{k}": v for k, v in from_fairseq_state_dict(state_dict, "model.").items()}
    for key, value in state_dict.items():
        if key.startswith("asr_head."):
            out[key] = value
        elif key != "best_score" and not key.startswith(("model.", "generator.")):
            raise KeyError(f"unexpected key {key!r} in an original speech_translation downstream state")
    return out


ST = register(TranslationTask(
    name="speech_translation", description="ST: speech -> sub-word text (fairseq S2T tsv), S2T transformer, BLEU",
    corpus=s2t_tsv.load_task,
    options={"root": None, "train": "train", "dev": "dev", "test": "test", "config_yaml": "config.yaml",
             "audio_root": None, "spm_model": None, "vocab_file": None, "spm_type": "char", "spm_vocab_size": 1000,
             "use_asr": False, "asr_weight": 0.3, "asr_spm_model": None, "asr_vocab_file": None, "tgt_lang": "de",
             "label_smoothing": 0.1, "beam": 20, "max_len_a": 0, "max_len_b": 400, "model": None,
             "upstream_rate": -1, "downsample_method": "drop", "feature_rate": None},
    build=build_translation, objective=Objective(translation_loss, translation_predict, translation_score,
                                                 translation_write),
    metric="bleu",
    # the original config: Adam 2e-3, sqrt decay after 10k warm-up steps, 32k steps, accumulation 8, clipping 10
    train=dict(optimizer="Adam", lr=2e-3, scheduler="sqrt_decay", warmup_steps=10000, total_steps=32000,
               gradient_accumulate_steps=8, gradient_clipping=10.0, log_step=100, eval_step=2000, save_step=250,
               max_keep=1),
    data={"batch_seconds": 200.0, "eval_batch_seconds": 200.0},  # max_tokens 10000 frames of 20 ms
))
