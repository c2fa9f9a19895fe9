"""``s3prl score der REF.rttm HYP.rttm [--uem F] [--collar S] [--skip-overlap] [--json]``: diarization error rate."""

from __future__ import annotations

import argparse
import json

EPILOG = """\
The defaults are the original s3prl scoring's (dscore's defaults): collar 0, overlap scored, and without
--uem each recording is scored from the first to the last turn of reference or hypothesis.
--collar is removed on EACH side of every reference boundary (dscore / md-eval; pyannote.metrics' collar
is the total width: its collar=0.5 is --collar 0.25 here). A reference recording missing from HYP counts as
all missed; a HYP recording missing from REF (and from the UEM) is an error.
examples:
  s3prl score der ref.rttm hyp.rttm
  s3prl score der ref.rttm hyp.rttm --uem all.uem --collar 0.25 --skip-overlap --json"""


def add_parsers(modes, common) -> None:
    p = modes.add_parser("der", parents=[common], help="diarization error rate of RTTM files",
                         description="Diarization error rate (missed speech + false alarm + speaker confusion, "
                                     "over reference speech) per recording and in total, with an optimal "
                                     "one-to-one speaker mapping.",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", help="reference RTTM")
    p.add_argument("hypothesis", help="hypothesis RTTM")
    p.add_argument("--uem", help="scoring regions: lines `<recording> <channel> <start> <end>`")
    p.add_argument("--collar", type=float, default=0.0, help="seconds not scored on each side of every "
                                                              "reference boundary (default 0)")
    p.add_argument("--skip-overlap", dest="skip_overlap", action="store_true",
                   help="do not score regions where reference speakers overlap")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=cmd_der)


def cmd_der(args) -> int:
    from ..metrics import der

    result = der.score(der.read_rttm(args.reference), der.read_rttm(args.hypothesis),
                       der.read_uem(args.uem) if args.uem else None, collar=args.collar,
                       skip_overlap=args.skip_overlap)
    print(json.dumps(result, indent=1) if args.json else table(result))
    return 0


def table(result: dict) -> str:
    """A plain table: per recording and total, DER and its parts in percent of the reference speech."""
    from ..metrics.der import Policy

    p = result["policy"]
    lines = [f"policy: {Policy(**p).describe()}",
             f"{'recording':<24} {'DER%':>7} {'miss%':>7} {'FA%':>7} {'conf%':>7} {'ref speech s':>13}"]

    def row(name: str, d: dict) -> str:
        if d["DER"] is None:
            return f"{name:<24} {'n/a':>7} {'':>7} {'':>7} {'':>7} {0.0:>13.2f}  (no reference speech; " \
                   f"false alarm {d['false_alarm']:.2f} s)"
        return (f"{name:<24} {100 * d['DER']:>7.2f} {100 * d['missed_rate']:>7.2f} {100 * d['false_alarm_rate']:>7.2f} "
                f"{100 * d['confusion_rate']:>7.2f} {d['scored']:>13.2f}")

    lines += [row(rec, d) for rec, d in result["recordings"].items()]
    lines.append(row("TOTAL", result["total"]))
    return "\n".join(lines)
