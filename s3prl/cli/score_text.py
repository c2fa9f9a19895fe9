"""``s3prl score wer|cer|per REF HYP [--json]``: error rates of transcript files (the CTC tasks' ``*-ref.ark`` /
``*-hyp.ark``, Kaldi ``text`` files)."""

from __future__ import annotations

import argparse
import json

EPILOG = """\
REF and HYP hold one `<utt-id> <text>` line per utterance (an utterance with no text is an empty line after
its id). Utterances are matched by id, whatever their order; an id missing from HYP or absent from REF is an
error that names them. Words (and phonemes) are whitespace-separated; CER counts every character, spaces
included. The rate is the sum of the edit distances over the number of reference tokens.
examples:
  s3prl score wer result/downstream/asr_hubert/test-noLM-ref.ark result/downstream/asr_hubert/test-noLM-hyp.ark
  s3prl score per test-ref.ark test-hyp.ark --json"""

UNITS = {"wer": ("word", "words"), "cer": ("char", "characters"), "per": ("phoneme", "phonemes")}


def add_parsers(modes, common) -> None:
    for kind, (_, plural) in UNITS.items():
        p = modes.add_parser(kind, parents=[common],
                             help=f"{kind.upper()}: error rate over {plural} of transcript files",
                             description=f"{kind.upper()} of HYP against REF: substitutions, deletions and insertions "
                                         f"of {plural}, summed over utterances.",
                             epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("reference", help="reference transcripts: `<utt-id> <text>` lines")
        p.add_argument("hypothesis", help="hypothesis transcripts: `<utt-id> <text>` lines")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.set_defaults(run=cmd_score, kind=kind)


def read_transcripts(path: str) -> dict[str, str]:
    """``{utt-id: text}`` of a ``<utt-id> <text>`` file; a repeated id is an error naming the line."""
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            uid, _, text = line.strip().partition(" ")
            if uid in out:
                raise ValueError(f"{path}:{number}: utterance {uid!r} appears twice")
            out[uid] = text.strip()
    if not out:
        raise ValueError(f"{path}: no `<utt-id> <text>` lines")
    return out


def _names(ids: list[str]) -> str:
    return ", ".join(ids[:10]) + (f" ... ({len(ids)} in all)" if len(ids) > 10 else "")


def score(reference: dict[str, str], hypothesis: dict[str, str], kind: str) -> dict:
    """Counts and rate of ``kind`` (wer / cer / per) over the utterances of ``reference``."""
    from ..metrics import error_rate

    missing = sorted(set(reference) - set(hypothesis))
    extra = sorted(set(hypothesis) - set(reference))
    problems = ([f"{len(missing)} reference utterance(s) have no hypothesis: {_names(missing)}"] if missing else []) + \
               ([f"{len(extra)} hypothesis utterance(s) are not in the reference: {_names(extra)}"] if extra else [])
    if problems:
        raise ValueError("; ".join(problems))
    ids = sorted(reference)
    counts = error_rate.error_counts([hypothesis[i] for i in ids], [reference[i] for i in ids], UNITS[kind][0])
    return {"metric": kind, "utterances": len(ids), **counts.as_dict()}


def cmd_score(args) -> int:
    result = score(read_transcripts(args.reference), read_transcripts(args.hypothesis), args.kind)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        unit = UNITS[args.kind][1]
        print(f"{args.kind.upper()} {100 * result['rate']:.2f}% [ {result['errors']} / {result['reference_length']} "
              f"{unit}, {result['utterances']} utterances; substitutions {result['substitutions']}, "
              f"deletions {result['deletions']}, insertions {result['insertions']} ]")
    return 0
