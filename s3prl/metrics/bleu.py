"""Corpus BLEU through the maintained ``sacrebleu`` package, called as the original ``speech_translation`` task
scores its decoded translations: ``sacrebleu.corpus_bleu(hyps, [refs], tokenize=...)`` on detokenized,
case-sensitive text, with the ``13a`` tokenizer (``zh`` when the target language is Chinese). Optional:
``pip install s3prl[st]``."""

from __future__ import annotations

from collections.abc import Sequence

from ..extras import MissingExtraError

EXTRA_HINT = "install the speech-translation extra: pip install 's3prl[st]' (sacrebleu, sentencepiece)"
TOKENIZERS = ("13a", "zh", "intl", "char", "none")


def _sacrebleu():
    try:
        import sacrebleu
    except ImportError as err:
        raise MissingExtraError(f"sacrebleu is needed for BLEU but is not installed: {EXTRA_HINT}") from err
    return sacrebleu


def tokenizer_for(target_language: str | None) -> str:
    """The tokenizer the original task uses for a target language: ``zh`` for Chinese, ``13a`` otherwise."""
    return "zh" if target_language == "zh" else "13a"


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str], tokenize: str = "13a") -> dict:
    """Corpus BLEU of ``hypotheses`` against one reference each (same order, same count).

    Returns ``{"bleu", "precisions" (1- to 4-gram, %), "brevity_penalty", "hyp_len", "ref_len", "sentences",
    "tokenize", "signature"}``; ``bleu`` is on the 0-100 scale, as sacrebleu and the original report it."""
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(f"BLEU: {len(hypotheses)} hypotheses but {len(references)} references: give one "
                         "hypothesis per reference")
    if not references:
        raise ValueError("BLEU: no sentences to score")
    for what, texts in (("hypothesis", hypotheses), ("reference", references)):
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise TypeError(f"BLEU: {what} {bad[0]} is a {type(texts[bad[0]]).__name__}, not a string")
    if tokenize not in TOKENIZERS:
        raise ValueError(f"BLEU: unknown tokenizer {tokenize!r}; choose one of {', '.join(TOKENIZERS)}")
    sacrebleu = _sacrebleu()
    metric = sacrebleu.metrics.BLEU(tokenize=tokenize)
    result = metric.corpus_score(hypotheses, [references])
    return {"bleu": float(result.score), "precisions": [float(p) for p in result.precisions],
            "brevity_penalty": float(result.bp), "hyp_len": int(result.sys_len), "ref_len": int(result.ref_len),
            "sentences": len(references), "tokenize": tokenize, "signature": str(metric.get_signature())}
