"""The ``s3prl`` command. One module per subcommand, one error handler (``errors.run_command``).

    s3prl list | info NAME          the upstream registry
    s3prl extract ...               hidden states of audio files to disk
    s3prl downstream train|evaluate|tasks ...   the SUPERB runner
    s3prl score KIND ...            score hypotheses against references outside a run
    s3prl lm build TEXT -o LM.arpa  a word n-gram (ARPA) for the ASR task's LM decoder
    s3prl pretrain -u METHOD ...    pre-train an upstream with an s3prl method (APC, NPC, TERA, ...)
    s3prl demo                      an offline benchmark on synthesized spoken digits
    s3prl wav2vec2 MODE ...         fairseq's wav2vec recipe tools (manifest, labels, featurize, tokenize, infer)
    s3prl transcribe -k CKPT AUDIO  text of audio files with a fine-tuned wav2vec 2.0 CTC model

``python -m s3prl.cli ...`` is the same command (for ``torchrun``).
"""

from __future__ import annotations

import argparse
import sys

from . import demo, downstream, extract, listing, lm, pretrain, score, transcribe, wav2vec2
from .errors import EXIT_USAGE, run_command

SUBCOMMANDS = (listing, extract, downstream, score, lm, pretrain, demo, wav2vec2, transcribe)


def common_options() -> argparse.ArgumentParser:
    """Options every subcommand takes (``s3prl --debug list`` and ``s3prl list --debug`` both work)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of an error (also: S3PRL_DEBUG=1)")
    return parent


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = argparse.ArgumentParser(
        prog="s3prl", parents=[common],
        description="Self-supervised speech representations: list upstreams, show their cards, extract "
                    "features, benchmark upstreams on downstream tasks.",
        epilog="Run `s3prl COMMAND --help` for a command's options and examples.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parsers(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return run_command(args.run, args)
