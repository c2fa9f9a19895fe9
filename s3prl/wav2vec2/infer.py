"""Inference with fine-tuned wav2vec 2.0 CTC models: ``s3prl wav2vec2 infer`` (fairseq's
``examples/speech_recognition/infer.py``) and ``s3prl transcribe``.

``infer`` reads ``DATA/<subset>.tsv`` (manifest), ``DATA/<subset>.<labels>`` (references, one line per manifest
line) and the output symbols (the checkpoint's own dictionary: fairseq 0.12's ``task_state`` or a HuggingFace
``vocab.json``; else ``DATA/dict.<labels>.txt``), decodes every file and scores it as fairseq's script does:

* decoders: ``viterbi`` (fairseq's ``W2lViterbiDecoder`` with its zero transitions = the best path: per-frame
  argmax, repeats merged, blanks dropped) and ``kenlm`` (the lexicon + KenLM beam search of the ASR task,
  ``s3prl.decode.lexicon``, on fairseq's emissions: raw logits, not log-probabilities, with fairseq's knobs);
* hypothesis pieces = the symbols of the token path (fairseq ``Dictionary.string``: ``<s>``/``</s>`` hidden);
  words = the LM decoder's words, else ``post_process(pieces, --post-process)``; references the same way from
  the label line;
* ``--results-path R``: ``R/{hypo.word,hypo.units,ref.word,ref.units}-<basename of --path>-<subset>.txt``,
  lines ``TEXT (None-<manifest index>)`` (sclite's ``trn`` format, speaker ``None`` as fairseq writes it), in
  fairseq's order (longest file first);
* WER = summed word edit distances / reference words x 100, printed as ``WER: <value>``.

Every file is decoded with its batch-size-1 emissions (fairseq's padded batches are not: their first GroupNorm
sees the padding), so the results do not depend on ``--max-tokens`` / ``--batch-size``.
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from . import RecipeError
from .ctc_model import Vocabulary, Wav2Vec2Ctc, load_ctc
from .labels import check_labels
from .manifest import read_manifest

POST_PROCESS = ("letter", "none", "silence", "wordpiece", "sentencepiece", "_EOW", "subword_nmt", "@@ ", "@@")


@dataclass
class DecoderOptions:
    """fairseq's ``--w2l-decoder`` and its knobs, with infer.py's defaults."""

    w2l_decoder: str = "viterbi"  # viterbi | kenlm
    kenlm_model: str | None = None
    lexicon: str | None = None
    lm_weight: float = 0.2
    word_score: float = 1.0
    sil_weight: float = 0.0
    unk_weight: float = -math.inf
    beam: int = 5
    beam_threshold: float = 25.0
    beam_size_token: int | None = 100


@dataclass
class InferOptions:
    data: str
    path: str
    gen_subset: str = "test"
    labels: str = "ltr"
    results_path: str | None = None
    post_process: str | None = "letter"
    max_tokens: int | None = 4000000
    batch_size: int | None = None
    device: str = "cpu"
    quiet: bool = True


def post_process(sentence: str, symbol: str | None) -> str:
    """fairseq's ``post_process`` of a space-separated symbol string into words."""
    if symbol in (None, "none"):
        return sentence
    if symbol == "letter":
        return sentence.replace(" ", "").replace("|", " ").strip()
    if symbol == "sentencepiece":
        return sentence.replace(" ", "").replace("\u2581", " ").strip()
    if symbol == "wordpiece":
        return sentence.replace(" ", "").replace("_", " ").strip()
    if symbol == "_EOW":
        return sentence.replace(" ", "").replace("_EOW", " ").strip()
    if symbol == "silence":
        return re.sub(" +", " ", sentence.replace("<SIL>", "")).strip()
    if symbol in ("subword_nmt", "@@ ", "@@"):
        marker = "@@ " if symbol == "subword_nmt" else symbol
        return (sentence + " ").replace(marker, "").rstrip()
    raise RecipeError(f"--post-process {symbol!r} is not known; use one of: {', '.join(POST_PROCESS)}")


# ---------------------------------------------------------------------------------------------
# Decoders
# ---------------------------------------------------------------------------------------------

Decode = Callable[[torch.Tensor], tuple[list[int], "list[str] | None"]]


def build_decoder(options: DecoderOptions, vocab: Vocabulary) -> Decode:
    """``decode(emissions (T, V)) -> (token ids, words or None)`` for ``--w2l-decoder``."""
    if options.w2l_decoder == "viterbi":
        from ..decode import greedy_ids

        def viterbi(emissions: torch.Tensor):
            return greedy_ids(emissions[None], torch.tensor([emissions.size(0)]), vocab.blank)[0], None

        return viterbi
    if options.w2l_decoder != "kenlm":
        raise RecipeError(f"--w2l-decoder {options.w2l_decoder!r} is not supported: use viterbi or kenlm "
                          "(fairseqlm needs a fairseq language model)")
    for flag, value in (("--lm-model / --kenlm-model", options.kenlm_model), ("--lexicon", options.lexicon)):
        if not value:
            raise RecipeError(f"--w2l-decoder kenlm needs {flag} (lexicon-free decoding with a unit LM is not "
                              "supported); build both with `s3prl lm build TEXT -o lm.arpa --lexicon lexicon.lst`")
        if not os.path.isfile(value):
            raise RecipeError(f"{flag.split(' ')[0]} {value!r}: no such file")
    if vocab.boundary not in vocab.symbols:
        raise RecipeError(f"KenLM + lexicon decoding needs the word boundary {vocab.boundary!r} among the output "
                          "symbols")
    from ..decode.lexicon import LexiconDecoder, LexiconDecoderConfig

    config = LexiconDecoderConfig(kenlm_model=options.kenlm_model, lexicon=options.lexicon, beam=options.beam,
                                  beam_threshold=options.beam_threshold, lm_weight=options.lm_weight,
                                  word_score=options.word_score, unk_weight=options.unk_weight,
                                  sil_weight=options.sil_weight, beam_size_token=options.beam_size_token)
    decoder = LexiconDecoder(config, vocab.symbols, vocab.blank, vocab.unk)

    def kenlm(emissions: torch.Tensor):
        best = decoder.search(emissions) if emissions.size(0) else None
        return ([], []) if best is None else (best[1], best[0])

    return kenlm


# ---------------------------------------------------------------------------------------------
# Model and vocabulary
# ---------------------------------------------------------------------------------------------


def resolve_vocabulary(model: Wav2Vec2Ctc, dict_path: str | None, note=print) -> Vocabulary:
    """The checkpoint's own symbols when it has them (fairseq restores its ``task_state`` dictionary over the data
    folder's), else ``dict_path``; the count must equal the model's outputs."""
    vocab = model.vocabulary
    if vocab is None:
        if dict_path is None:
            raise RecipeError("the checkpoint holds no output symbols: pass the dictionary it was trained with "
                              "(dict.ltr.txt)")
        vocab = Vocabulary.load_fairseq(dict_path)
    elif dict_path and os.path.isfile(dict_path):
        own = Vocabulary.load_fairseq(dict_path)
        if own.symbols != vocab.symbols:
            note(f"note: {dict_path} differs from the dictionary stored in the checkpoint; the checkpoint's is "
                 "used (as fairseq does)")
    outputs = model.proj.out_features
    if len(vocab.symbols) != outputs:
        raise RecipeError(f"the dictionary has {len(vocab.symbols)} symbols (with fairseq's 4 specials) but the "
                          f"model has {outputs} outputs: use the dict.ltr.txt the model was fine-tuned with")
    return vocab


def emissions(model: Wav2Vec2Ctc, wavs: Sequence[torch.Tensor], device: str = "cpu") -> list[torch.Tensor]:
    """Per-utterance emissions (T_i, V) of a list of 1-D waveforms, run as one padded batch. A file shorter than
    the model's receptive field (25 ms) has no frame: (0, V), an empty hypothesis."""
    from ..upstream.wav2vec2 import conv_output_lengths

    lengths = torch.tensor([w.numel() for w in wavs])
    out = [torch.zeros(0, model.proj.out_features)] * len(wavs)
    keep = (conv_output_lengths(lengths, model.encoder.cfg.conv_layers) > 0).nonzero().squeeze(1).tolist()
    if not keep:
        return out
    batch = torch.zeros(len(keep), int(lengths[keep].max()))
    for row, i in enumerate(keep):
        batch[row, : wavs[i].numel()] = wavs[i]
    with torch.no_grad():
        logits, frames = model(batch.to(device), lengths[keep].to(device))
    for row, (i, n) in enumerate(zip(keep, frames.tolist())):
        out[i] = logits[row, : int(n)].float().cpu()
    return out


def batches(order: list[int], sizes: list[int], max_tokens: int | None, batch_size: int | None) -> list[list[int]]:
    """Consecutive groups of ``order`` with (count x longest) <= max_tokens and count <= batch_size."""
    out, current, longest = [], [], 0
    for i in order:
        grow = max(longest, sizes[i])
        too_many = (max_tokens and grow * (len(current) + 1) > max_tokens) or (
            batch_size and len(current) >= batch_size)
        if current and too_many:
            out.append(current)
            current, grow = [], sizes[i]
        current.append(i)
        longest = grow
    return out + ([current] if current else [])


# ---------------------------------------------------------------------------------------------
# infer
# ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    uid: int
    hyp_units: str
    hyp_words: str
    ref_units: str
    ref_words: str


def read_references(path: str, vocab: Vocabulary, post: str | None) -> list[tuple[str, str]]:
    """(units, words) of every label line (symbols through the dictionary, as fairseq encodes them)."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    refs = []
    for line in lines:
        units = vocab.string(vocab.index(s) for s in line.split())
        refs.append((units, post_process(units, post)))
    return refs


def infer(opts: InferOptions, decoder: DecoderOptions, log=print) -> dict:
    """Decode ``DATA/<subset>.tsv`` and score it (module docstring); returns {"wer", "errors", "words", "files",
    "results"} and writes the sclite files when ``results_path`` is set."""
    from ..metrics.error_rate import distance
    from .featurize import read_audio

    tsv = os.path.join(opts.data, f"{opts.gen_subset}.tsv")
    manifest = read_manifest(tsv)
    if not manifest.entries:
        raise RecipeError(f"{tsv} lists no audio file")
    label_path = os.path.join(opts.data, f"{opts.gen_subset}.{opts.labels}")
    check_labels(tsv, label_path)
    model = load_ctc(opts.path).to(opts.device)
    vocab = resolve_vocabulary(model, _dict_path(opts, model), note=lambda m: print(m, file=sys.stderr))
    if opts.post_process == "letter" and vocab.boundary not in vocab.symbols:
        raise RecipeError(f"the dictionary has no word boundary symbol {vocab.boundary!r}: --post-process letter "
                          "turns it into spaces (label files spell words as 'H I | Y O U |'); rebuild "
                          "dict.ltr.txt with `s3prl wav2vec2 labels`")
    post_process("", opts.post_process)  # an unknown --post-process fails before decoding
    refs = read_references(label_path, vocab, opts.post_process)
    decode = build_decoder(decoder, vocab)
    sizes = [n for _, n in manifest.entries]
    order = sorted(range(len(sizes)), key=lambda i: (sizes[i], i), reverse=True)  # fairseq: longest first
    results = []
    for group in batches(order, sizes, opts.max_tokens, opts.batch_size):
        wavs = [read_audio(os.path.join(manifest.root, manifest.entries[i][0])) for i in group]
        for i, em in zip(group, emissions(model, wavs, opts.device)):
            tokens, words = decode(em)
            units = vocab.string(tokens)
            hyp_words = " ".join(words) if words is not None else post_process(units, opts.post_process)
            results.append(Result(i, units, hyp_words, *refs[i]))
            if not opts.quiet:
                log(f"HYPO: {hyp_words}\nTARGET: {refs[i][1]}")
    errors = sum(distance(r.ref_words.split(), r.hyp_words.split()) for r in results)
    words = sum(len(r.ref_words.split()) for r in results)
    if opts.results_path:
        write_results(opts.results_path, os.path.basename(os.path.normpath(opts.path)), opts.gen_subset, results)
    wer = errors * 100.0 / words if words else None
    return {"wer": wer, "errors": errors, "words": words, "files": len(results), "results": results}


def _dict_path(opts: InferOptions, model: Wav2Vec2Ctc) -> str | None:
    path = os.path.join(opts.data, f"dict.{opts.labels}.txt")
    if model.vocabulary is None and not os.path.isfile(path):
        Vocabulary.load_fairseq(path)  # raises: names the file and how to write it
    return path


def write_results(folder: str, model_name: str, subset: str, results: list[Result]) -> list[str]:
    """fairseq's four result files (module docstring); returns their paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for prefix, field in (("hypo.word", "hyp_words"), ("hypo.units", "hyp_units"), ("ref.word", "ref_words"),
                          ("ref.units", "ref_units")):
        path = os.path.join(folder, f"{prefix}-{model_name}-{subset}.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(f"{getattr(r, field)} (None-{r.uid})\n" for r in results)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# transcribe
# ---------------------------------------------------------------------------------------------


def transcribe(path: str, files: Sequence[str], decoder: DecoderOptions, dict_path: str | None = None,
               device: str = "cpu", post: str | None = "letter") -> list[str]:
    """The words of each audio file (any rate: resampled to 16 kHz; channels averaged)."""
    from ..audio import load_audio

    model = load_ctc(path).to(device)
    if model.vocabulary is None and dict_path is None:
        beside = os.path.join(os.path.dirname(os.path.abspath(path)), "dict.ltr.txt")
        if not os.path.isfile(beside):
            raise RecipeError(f"{path} holds no output symbols and there is no {beside}: pass --dict dict.ltr.txt "
                              "(the letter dictionary the model was fine-tuned with)")
        dict_path = beside
    vocab = resolve_vocabulary(model, dict_path, note=lambda m: print(m, file=sys.stderr))
    if model.vocabulary is not None and not any(s == vocab.boundary for s in vocab.symbols):
        post = "none"
    decode = build_decoder(decoder, vocab)
    texts = []
    for file in files:
        (em,) = emissions(model, [load_audio(file)], device)
        tokens, words = decode(em)
        texts.append(" ".join(words) if words is not None else post_process(vocab.string(tokens), post))
    return texts
