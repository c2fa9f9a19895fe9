"""``s3prl demo``: a SUPERB-style benchmark on spoken digits synthesized here (offline, ~2 minutes)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path


def add_parsers(sub, common) -> None:
    p = sub.add_parser("demo", parents=[common], help="benchmark fbank and mfcc on spoken digits synthesized here (offline)",
                       description="A complete SUPERB-style benchmark that needs no download: synthesizes spoken "
                                   "digits with espeak-ng, trains the same runner on several upstreams and prints "
                                   "the results table and the layer-weight plot.",
                       epilog="example: s3prl demo -u fbank,mfcc,mel --steps 300")
    p.add_argument("-o", "--outdir", default="demo_output", help="output folder (default: demo_output)")
    p.add_argument("-u", "--upstreams", default="fbank,mfcc", help="comma-separated upstreams (default: fbank,mfcc)")
    p.add_argument("--steps", type=int, default=None, help="training steps per upstream (default: the task's)")
    p.set_defaults(run=cmd_demo)


def cmd_demo(args) -> int:
    """Synthesize the corpus, benchmark every upstream, print and save the table and the plot."""
    from . import build_parser
    from ..downstream import demo, runner
    from ..downstream.report import plot_layer_weights, results_table

    upstreams = [u for u in args.upstreams.split(",") if u]
    if not upstreams:
        raise ValueError("-u names no upstream: give e.g. -u fbank,mfcc")
    outdir = Path(args.outdir)
    started = time.perf_counter()
    corpus = demo.synthesize(outdir / "audio")
    n_files = len(list((corpus / "recordings").glob("*.wav")))
    print(f"synthesized {n_files} spoken digits with espeak-ng in {corpus} ({time.perf_counter() - started:.0f} s)")
    records = []
    for name in upstreams:
        expdir = outdir / "runs" / name
        shutil.rmtree(expdir, ignore_errors=True)  # a fresh run each time; the feature cache is kept
        override = f"task.root={corpus},,data.cache_dir={outdir / 'feature_cache'}"
        if args.steps is not None:
            override += f",,train.total_steps={args.steps}"
        argv = ["downstream", "train", "-u", name, "-d", "demo_digits", "-p", str(expdir), "-o", override]
        print(f"\n=== {name}: s3prl {' '.join(argv)}")
        runner.cmd_train(build_parser().parse_args(argv))
        records.append(json.loads((expdir / "results.json").read_text()))
    table = results_table(records)
    (outdir / "results.md").write_text(table + "\n")
    plot = plot_layer_weights({r["upstream"]: (r["layers"], r["layer_weights"]) for r in records},
                              outdir / "layer_weights.png", title="demo_digits: learned layer weights")
    print(f"\nSUPERB-style benchmark on synthesized spoken digits (test split, best dev checkpoint):\n\n{table}\n")
    print(f"results: {outdir / 'results.md'}, layer weights: {plot}, runs: {outdir / 'runs'} "
          f"({time.perf_counter() - started:.0f} s in all)")
    return 0
