"""Error rates of recognized text: WER, CER, PER (and UER), with substitution / deletion / insertion counts.

The rate is the sum of the Levenshtein distances over the sum of the reference lengths (a corpus-level rate, as
the original ``downstream/ctc/metric.py`` and ``downstream/asr``), as a fraction. Distances and alignments come
from ``rapidfuzz`` (the library ``jiwer`` is built on; ``pip install 's3prl[text]'``).

Tokens: words are ``text.split()`` (any whitespace); ``sep=" "`` splits on single spaces instead, as the original
``ctc`` metrics (an empty text is then one empty word, and a double space makes an empty word between).
Characters are every character of the text, spaces included. PER is WER over space-separated phonemes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

from ..extras import MissingExtraError


def _levenshtein():
    try:
        from rapidfuzz.distance import Levenshtein
    except ImportError:
        raise MissingExtraError("error rates need rapidfuzz: pip install 's3prl[text]'") from None
    return Levenshtein


@dataclass
class ErrorCounts:
    """Counts of an alignment (or a sum of them)."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    reference_length: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def hits(self) -> int:
        return self.reference_length - self.substitutions - self.deletions

    @property
    def rate(self) -> float:
        """errors / reference length; NaN-free: an empty reference gives 0 (no errors) or inf (insertions)."""
        if self.reference_length == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.reference_length

    def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
        return ErrorCounts(self.substitutions + other.substitutions, self.deletions + other.deletions,
                           self.insertions + other.insertions, self.reference_length + other.reference_length)

    def as_dict(self) -> dict:
        return {**asdict(self), "errors": self.errors, "hits": self.hits, "rate": self.rate}


def tokenize(text: str, unit: str, sep: str | None = None) -> list[str]:
    """``unit`` ``"word"`` (or ``"phoneme"``): words split on ``sep`` (None: any whitespace); ``"char"``: characters."""
    if unit in ("word", "phoneme"):
        return text.split(sep)
    if unit == "char":
        return list(text)
    raise ValueError(f"unit must be 'word', 'phoneme' or 'char', got {unit!r}")


def align(reference: Sequence, hypothesis: Sequence) -> ErrorCounts:
    """Substitutions, deletions and insertions of a minimal alignment of two token sequences."""
    counts = ErrorCounts(reference_length=len(reference))
    for op in _levenshtein().editops(list(reference), list(hypothesis)):
        if op.tag == "replace":
            counts.substitutions += 1
        elif op.tag == "delete":
            counts.deletions += 1
        else:
            counts.insertions += 1
    return counts


def distance(reference: Sequence, hypothesis: Sequence) -> int:
    """Levenshtein distance of two token sequences (or strings)."""
    if isinstance(reference, str) and isinstance(hypothesis, str):
        return _levenshtein().distance(reference, hypothesis)
    return _levenshtein().distance(list(reference), list(hypothesis))


def error_counts(hypotheses: Sequence[str], references: Sequence[str], unit: str = "word",
                 sep: str | None = None) -> ErrorCounts:
    """Summed counts over utterances (pairs in order)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    total = ErrorCounts()
    for hyp, ref in zip(hypotheses, references):
        total = total + align(tokenize(ref, unit, sep), tokenize(hyp, unit, sep))
    return total


def _rate(hypotheses, references, unit: str, sep: str | None) -> float:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    errors = length = 0
    for hyp, ref in zip(hypotheses, references):
        r, h = tokenize(ref, unit, sep), tokenize(hyp, unit, sep)
        errors += distance(r, h)
        length += len(r)
    if length == 0:
        raise ValueError("the references hold no tokens: the error rate is undefined")
    return errors / length


def wer(hypotheses: Sequence[str], references: Sequence[str], sep: str | None = None) -> float:
    """Word error rate (fraction)."""
    return _rate(hypotheses, references, "word", sep)


def per(hypotheses: Sequence[str], references: Sequence[str], sep: str | None = None) -> float:
    """Phoneme error rate (fraction): WER over space-separated phonemes."""
    return _rate(hypotheses, references, "phoneme", sep)


def cer(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Character error rate (fraction), spaces counted as characters."""
    return _rate(hypotheses, references, "char", None)


__all__ = ["ErrorCounts", "align", "cer", "distance", "error_counts", "per", "tokenize", "wer"]
