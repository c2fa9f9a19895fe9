"""``s3prl score KIND ...``: score hypotheses against references outside a run, with the tasks' own code.

Each scorer module of this package adds its modes with ``add_parsers(modes, common)``.
"""

from __future__ import annotations

import argparse

from . import score_audio, score_bleu, score_der, score_mcd, score_text

SCORERS: tuple = (score_der, score_text, score_audio, score_bleu, score_mcd)  # modules with add_parsers(modes, common)


def add_parsers(sub, common) -> None:
    if not SCORERS:
        return
    p = sub.add_parser("score", parents=[common], help="score hypotheses against references (error rates, DER, ...)",
                       description="Score hypothesis files against reference files with the same code as the tasks.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])
    modes = p.add_subparsers(dest="mode", metavar="KIND")
    for module in SCORERS:
        module.add_parsers(modes, common)
