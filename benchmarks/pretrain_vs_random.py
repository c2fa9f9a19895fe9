"""Pre-trained vs random-weight upstream (same architecture) on FSDD tasks, several downstream seeds.

Each (upstream checkpoint, task, seed) is one `s3prl downstream train` run with the upstream frozen (SUPERB
protocol: weighted sum of its layers, the task's head), 1000 steps; the test accuracy of the dev-best checkpoint
is read from the run's own table. The two checkpoints come from `s3prl pretrain` (docs/pretrain.md, "Learning on
real recordings": the pre-trained APC after 600 steps, and the same seed's initial weights from a 1-step run at
lr 1e-30).

    S3PRL_TEST_DATA=../shared/data nice -n 10 .venv/bin/python benchmarks/pretrain_vs_random.py \
        --pretrained /tmp/pt_learn/result/pretrain/apc_libri_lj/states-600.ckpt \
        --random /tmp/pt_learn/result/pretrain/apc_random/states-1.ckpt --upstream apc_local \
        --tasks fsdd_digits --seeds 1 2 3 --out /tmp/pretrain_vs_random.json
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_run(upstream, ckpt, task, seed, steps, data, work):
    name = f"{Path(ckpt).parent.name}_{task}_s{seed}"
    cmd = [str(ROOT / ".venv/bin/s3prl"), "downstream", "train", "-u", upstream, "-k", ckpt, "-d", task,
           "-p", str(work / name),
           "-o", f"train.total_steps={steps},,train.seed={seed},,task.root={data / 'fsdd'}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - start
    (work / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    test = re.findall(r"test with .*?: accuracy ([0-9.]+)", proc.stdout + proc.stderr)
    dev = re.findall(r"best: ([0-9.]+)", proc.stdout + proc.stderr)
    return {"ckpt": ckpt, "task": task, "seed": seed, "test_accuracy": float(test[-1]),
            "dev_best": float(dev[-1]) if dev else None, "wall_s": round(wall, 1)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pretrained", required=True)
    p.add_argument("--random", required=True)
    p.add_argument("--upstream", default="apc_local")
    p.add_argument("--tasks", nargs="+", default=["fsdd_digits"])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--work", default="/tmp/pretrain_vs_random")
    p.add_argument("--out", default="/tmp/pretrain_vs_random.json")
    args = p.parse_args()
    data = Path(os.environ.get("S3PRL_TEST_DATA", ROOT.parent / "shared/data")).resolve()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for task in args.tasks:
        for seed in args.seeds:  # alternate the two upstreams, seed by seed
            for kind, ckpt in (("pre-trained", args.pretrained), ("random", args.random)):
                row = dict(one_run(args.upstream, ckpt, task, seed, args.steps, data, work), upstream=kind)
                print(json.dumps(row), flush=True)
                rows.append(row)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    print("\n| task | upstream | test accuracy per seed | mean | min-max |\n|---|---|---|---|---|")
    for task in args.tasks:
        for kind in ("pre-trained", "random"):
            acc = [100 * r["test_accuracy"] for r in rows if r["task"] == task and r["upstream"] == kind]
            print(f"| {task} | {kind} | {' / '.join(f'{a:.2f}' for a in acc)} | {statistics.mean(acc):.2f} | "
                  f"{min(acc):.2f}-{max(acc):.2f} |")


if __name__ == "__main__":
    main()
