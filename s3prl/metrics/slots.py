"""Slot-filling metrics of SUPERB SF, on decoded character + slot text, with the original's semantics
(``downstream/ctc/metric.py``).

A text marks a slot value as ``B-<slot> VALUE E-<slot>`` (the first matching ``E-`` of the same slot ends it).
Runs of spaces are collapsed first. Markers of other slots left inside a hypothesis value are removed from it.

- :func:`slot_type_f1` (fraction): per utterance, the F1 of the *set* of slot types (1 when neither side has a
  slot, 0 when only one side has), averaged over utterances. SUPERB's primary SF metric.
- :func:`slot_value_cer` / :func:`slot_value_wer` (fractions): every reference value is paired with the
  hypothesis value of the same slot type with the lowest CER / WER (the first on ties; the empty string when the
  hypothesis lacks the slot type), and the corpus CER / WER of those pairs is reported. No reference slot at
  all gives 0.
- :func:`slot_edit_f1` (percent): exact-value matches per reference value (TP, else FN and, when the hypothesis
  has the slot type, FP too); ``full`` also counts hypothesis-only slot types as FPs. 100 when nothing counts.
"""

from __future__ import annotations

import re
from typing import Sequence

from .error_rate import cer as _cer
from .error_rate import wer as _wer

_SLOT = re.compile(r"B\-(\S+) (.+?) E\-\1")
_OPEN = re.compile(r"B\-(\S+) ")
_CLOSE = re.compile(r" E\-(\S+)")


def strip_markers(text: str) -> str:
    """``text`` without ``B-<slot> `` and `` E-<slot>`` markers."""
    return _CLOSE.sub("", _OPEN.sub("", text))


def slot_values(text: str, clean: bool = False) -> dict[str, list[str]]:
    """Slot type -> its values, in order of appearance (``clean``: markers removed from the values)."""
    out: dict[str, list[str]] = {}
    for slot, value in _SLOT.findall(re.sub(r" +", " ", text)):
        out.setdefault(slot, []).append(strip_markers(value) if clean else value)
    return out


def _pairs(hypotheses: Sequence[str], references: Sequence[str]):
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    for hyp, ref in zip(hypotheses, references):
        yield slot_values(hyp, clean=True), slot_values(ref)


def slot_type_f1(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    scores = []
    for hyp, ref in _pairs(hypotheses, references):
        if not hyp or not ref:
            scores.append(float(not hyp and not ref))
            continue
        recall = sum(slot in hyp for slot in ref) / len(ref)
        precision = sum(slot in ref for slot in hyp) / len(hyp)
        scores.append(2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0)
    if not scores:
        raise ValueError("slot_type_f1 of no utterances is undefined")
    return sum(scores) / len(scores)


def _best_values(hypotheses, references, rate) -> tuple[list[str], list[str]]:
    best_hyps, refs = [], []
    for hyp, ref in _pairs(hypotheses, references):
        for slot, values in ref.items():
            for value in values:
                best, lowest = "", 100.0
                for candidate in hyp.get(slot, ()):
                    score = rate([candidate], [value])
                    if score < lowest:
                        best, lowest = candidate, score
                best_hyps.append(best)
                refs.append(value)
    return best_hyps, refs


def slot_value_cer(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    hyps, refs = _best_values(hypotheses, references, _cer)
    return _cer(hyps, refs) if refs else 0.0


def slot_value_wer(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    wer = lambda h, r: _wer(h, r, sep=" ")  # noqa: E731 - the original splits values on single spaces
    hyps, refs = _best_values(hypotheses, references, wer)
    return wer(hyps, refs) if refs else 0.0


def slot_edit_f1(hypotheses: Sequence[str], references: Sequence[str], full: bool = True) -> float:
    tp = fn = fp = 0
    for hyp, ref in _pairs(hypotheses, references):
        for slot, values in ref.items():
            for value in values:
                if slot not in hyp:
                    fn += 1
                elif value in hyp[slot]:
                    tp += 1
                else:
                    fn += 1
                    fp += 1
        if full:
            fp += sum(len(v) for slot, v in hyp.items() if slot not in ref)
    denominator = 2 * tp + fp + fn
    return 100.0 * 2 * tp / denominator if denominator else 100.0


def slot_edit_f1_full(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    return slot_edit_f1(hypotheses, references, full=True)


def slot_edit_f1_part(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    return slot_edit_f1(hypotheses, references, full=False)


__all__ = ["slot_edit_f1", "slot_edit_f1_full", "slot_edit_f1_part", "slot_type_f1", "slot_value_cer",
           "slot_value_wer", "slot_values", "strip_markers"]
