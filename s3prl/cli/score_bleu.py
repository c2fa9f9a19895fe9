"""``s3prl score bleu REF HYP [--lines] [--tokenize 13a|zh] [--json]``: corpus BLEU of translation files with the
``speech_translation`` task's metric (sacrebleu, detokenized, case-sensitive)."""

from __future__ import annotations

import argparse
import json

EPILOG = """\
By default REF and HYP hold one `<utt-id> <text>` line per utterance (as `s3prl score wer` reads them);
utterances are matched by id, whatever their order, and an id missing from either side is an error that names
them. With --lines they are plain text files, one sentence per line, matched by line number (an empty line is
an empty sentence; both files must have the same number of lines).
Text is scored as written (detokenized, case-sensitive) with sacrebleu's 13a tokenizer, as the original
speech_translation task does; use --tokenize zh for a Chinese target, as it does.
Needs the `st` extra: pip install 's3prl[st]'.
examples:
  s3prl score bleu ref.txt hyp.txt
  s3prl score bleu --lines references.de hypotheses.de --json"""


def add_parsers(modes, common) -> None:
    from ..metrics.bleu import TOKENIZERS

    p = modes.add_parser("bleu", parents=[common], help="BLEU (sacrebleu) of translation files",
                         description="Corpus BLEU of HYP against REF (one reference per sentence), computed by "
                                     "sacrebleu as the speech_translation task computes it.",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", help="reference translations: `<utt-id> <text>` lines (or plain lines, --lines)")
    p.add_argument("hypothesis", help="hypothesis translations: `<utt-id> <text>` lines (or plain lines, --lines)")
    p.add_argument("--lines", action="store_true", help="plain line-aligned text files (no utterance ids)")
    p.add_argument("--tokenize", default="13a", choices=TOKENIZERS,
                   help="sacrebleu tokenizer (default 13a; the original uses zh for a Chinese target)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=cmd_score)


def read_lines(path: str) -> list[str]:
    """The lines of a plain text file (trailing newline and surrounding spaces removed)."""
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\r\n").strip() for line in f]
    if not lines:
        raise ValueError(f"{path}: empty file (no sentences)")
    return lines


def pair_sentences(reference: str, hypothesis: str, lines: bool) -> tuple[list[str], list[str], list[str] | None]:
    """(references, hypotheses, ids or None) in one order."""
    if lines:
        refs, hyps = read_lines(reference), read_lines(hypothesis)
        if len(refs) != len(hyps):
            raise ValueError(f"{reference} has {len(refs)} lines but {hypothesis} has {len(hyps)}: with --lines "
                             "the files must be line-aligned (one hypothesis per reference line)")
        return refs, hyps, None
    from .score_text import _names, read_transcripts

    ref, hyp = read_transcripts(reference), read_transcripts(hypothesis)
    missing, extra = sorted(set(ref) - set(hyp)), sorted(set(hyp) - set(ref))
    problems = ([f"{len(missing)} reference utterance(s) have no hypothesis: {_names(missing)}"] if missing else []) + \
               ([f"{len(extra)} hypothesis utterance(s) are not in the reference: {_names(extra)}"] if extra else [])
    if problems:
        raise ValueError("; ".join(problems) + " (for plain line-aligned files without ids, add --lines)")
    ids = sorted(ref)
    return [ref[i] for i in ids], [hyp[i] for i in ids], ids


def cmd_score(args) -> int:
    from ..metrics.bleu import corpus_bleu

    refs, hyps, _ = pair_sentences(args.reference, args.hypothesis, args.lines)
    result = {"metric": "bleu", **corpus_bleu(hyps, refs, tokenize=args.tokenize)}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        p = "/".join(f"{x:.1f}" for x in result["precisions"])
        print(f"BLEU {result['bleu']:.2f} [ {p} (BP {result['brevity_penalty']:.3f}, ratio "
              f"{result['hyp_len'] / max(result['ref_len'], 1):.3f}, hyp_len {result['hyp_len']}, ref_len "
              f"{result['ref_len']}), {result['sentences']} sentences; {result['signature']} ]")
    return 0
