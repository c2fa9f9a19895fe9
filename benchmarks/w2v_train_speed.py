"""Updates per second of ``s3prl wav2vec2 train`` vs fairseq 0.12.2's own trainer (issue 13 "Speed").

Not a test: a benchmark.  Both trainers run the SAME configuration on the SAME manifest, on the CPU with the
same number of threads, alternately (fairseq, ours, fairseq, ours, ...):

* recipe ``wav2vec2_base_librispeech`` (fairseq-hydra-train ``--config-name`` form, for both) at the fairseq
  oracle's "tiny" sizes (``train.sh --preset tiny``): conv extractor [(48,10,5)] + [(48,3,2)]*4 + [(48,2,2)]*2,
  2 layers of 32, FFN 64, 4 heads, conv_pos 16 / groups 4, final_dim 16, latent_vars 8 (2 groups), 10 negatives;
  everything else is the recipe's (Adam (0.9, 0.98) eps 1e-6, wd 0.01, lr 5e-4 polynomial decay with 32 000
  warm-up updates, max_sample_size 250 000, min_sample_size 32 000, mask 0.65 x 10, layerdrop 0.05,
  feature_grad_mult 0.1, loss weights [0.1, 10]), ``dataset.max_tokens`` (default the recipe's 1 400 000),
  seed 1, log every update, validation off, one checkpoint at the end;
* fairseq through the oracle's ``train.sh`` (/work/shared/tools/fairseq-oracle, which writes exactly the overrides
  above), ours through ``s3prl wav2vec2 train --config-name wav2vec2_base_librispeech`` with the same overrides;
* manifest: ``s3prl wav2vec2 manifest`` of ``$S3PRL_TEST_DATA/librispeech_test_other_mini`` (100 files, no valid
  split), the same ``train.tsv`` for both.

Measured per run: the wall-clock time at which each update's log line appears in the log file (polled every
10 ms; fairseq logs an update after its optimizer step, ours at the end of its forward, so the interval between
the lines of update S and update N spans N - S updates on both sides); steady-state updates/s = (N - S) / that
interval; and the whole process time (start-up, data loading, checkpoint writing included), reported separately.

    S3PRL_TEST_DATA=../shared/data nice -n 10 .venv/bin/python benchmarks/w2v_train_speed.py \
        --updates 40 --repeats 2 --threads 2 [--json docs/w2v_train_speed.json]

Needs the fairseq oracle venv (``bash ../shared/tools/fairseq-oracle/setup.sh`` prints its python;
``FAIRSEQ_ORACLE_PYTHON`` overrides).  GPU paths (``--fp16`` autocast, CUDA) are not measured here.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORACLE = ROOT.parent / "shared" / "tools" / "fairseq-oracle"
TINY = ["+model.encoder_layers=2", "model.encoder_embed_dim=32", "+model.encoder_ffn_embed_dim=64",
        "+model.encoder_attention_heads=4",
        "+model.conv_feature_layers='[(48, 10, 5)] + [(48, 3, 2)] * 4 + [(48, 2, 2)] * 2'",
        "+model.conv_pos=16", "+model.conv_pos_groups=4", "model.final_dim=16", "+model.latent_vars=8",
        "+model.num_negatives=10"]
FS_LINE = re.compile(r'^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]\[train_inner\].*"num_updates": "(\d+)"')
OUR_LINE = re.compile(r"^update (\d+): ")


def watch(proc: subprocess.Popen, log: Path, pattern: re.Pattern, fairseq: bool) -> dict:
    """Poll ``log`` while ``proc`` runs: {update: (monotonic arrival time, own timestamp or None)}."""
    seen, pos, buf = {}, 0, ""
    while True:
        done = proc.poll() is not None
        if log.exists():
            with open(log, errors="replace") as f:
                f.seek(pos)
                buf += f.read()
                pos = f.tell()
            now = time.monotonic()
            *lines, buf = buf.split("\n")
            for line in lines:
                m = pattern.search(line)
                if not m:
                    continue
                if fairseq:
                    stamp = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                    seen.setdefault(int(m.group(2)), (now, stamp))
                else:
                    seen.setdefault(int(m.group(1)), (now, None))
        if done:
            return seen
        time.sleep(0.01)


def run_one(kind: str, cmd: list[str], env: dict, out: Path, args) -> dict:
    log = out / ("train.log" if kind == "fairseq" else "log.txt")
    t0 = time.monotonic()
    with open(out.parent / f"{out.name}.stdout", "w") as sink:
        proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
        box = {}
        th = threading.Thread(target=lambda: box.update(seen=watch(proc, log, FS_LINE if kind == "fairseq"
                                                                   else OUR_LINE, kind == "fairseq")))
        th.start()
        rc = proc.wait()
        th.join()
    wall = time.monotonic() - t0
    seen = box["seen"]
    if rc != 0 or args.updates not in seen or args.start not in seen:
        tail = (out.parent / f"{out.name}.stdout").read_text(errors="replace")[-3000:]
        sys.exit(f"{kind} run failed (rc {rc}, updates logged {sorted(seen)}):\n{tail}")
    n = args.updates - args.start
    span = seen[args.updates][0] - seen[args.start][0]
    res = {"trainer": kind, "rc": rc, "process_wall_s": wall, "updates_per_s_steady": n / span,
           "steady_span_s": span, "first_update_after_s": seen[1][0] - t0 if 1 in seen else None,
           "process_updates_per_s": args.updates / wall}
    if kind == "fairseq":  # fairseq's own log timestamps (ms) as a cross-check of the polled times
        res["updates_per_s_steady_fairseq_stamps"] = n / (seen[args.updates][1] - seen[args.start][1])
        summ = json.loads((out / "summary.json").read_text())
        rows = [r for r in summ["train_inner"] if args.start < int(r["num_updates"]) <= args.updates]
        res["mean_bsz"] = statistics.mean(float(r["bsz"]) for r in rows)
        per_epoch = sum(1 for r in summ["train_inner"] if int(r["epoch"]) == 1)
        if not any(int(r["epoch"]) > 1 for r in summ["train_inner"]):
            return res  # shorter than one epoch: no per-epoch numbers
    else:
        res["mean_bsz"] = ours_batch_size(out, args)
        per_epoch = ours_epoch(args, out.parent / "manifest")[0]
    # whole epochs (every file once, cropped): from the last update of epoch 1 to the last of the last full one
    full = args.updates // per_epoch
    res["updates_per_epoch"] = per_epoch
    if full >= 2:
        res["epoch_window"] = [per_epoch, full * per_epoch]
        res["seconds_per_epoch"] = (seen[full * per_epoch][0] - seen[per_epoch][0]) / (full - 1)
    return res


def ours_epoch(args, man: Path):
    """Our trainer's batches of the manifest (same settings as the run): (batches per epoch, audio s per epoch)."""
    from s3prl.wav2vec2.train_data import AudioData

    d = AudioData(str(man / "train.tsv"), args.max_tokens, None, 8, 250000, 32000, False, args.seed, False)
    audio = sum(len(b) * min(min(d.files[i][1] for i in b), 250000) for b in d.batches) / 16000
    return len(d.batches), audio


def ours_batch_size(out: Path, args):
    """Mean utterances per update of our run, from its 'step k: ... utt/s' vs 'steps/s' log lines."""
    vals = []
    for line in (out / "log.txt").read_text().splitlines():
        m = re.match(r"step (\d+): .* ([\d.]+) steps/s, ([\d.]+) utt/s", line)
        if m and args.start < int(m.group(1)) <= args.updates and float(m.group(2)) > 0:
            vals.append(float(m.group(3)) / float(m.group(2)))
    return statistics.mean(vals) if vals else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--updates", type=int, default=40, help="updates per run (default 40)")
    p.add_argument("--start", type=int, default=5, help="steady state measured from this update's log line")
    p.add_argument("--repeats", type=int, default=2, help="runs per trainer, alternating (default 2)")
    p.add_argument("--threads", type=int, default=2, help="OMP/MKL threads for both (default 2)")
    p.add_argument("--max-tokens", type=int, default=1400000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--keep", default=None, help="keep the run folders here (default: a temporary folder)")
    args = p.parse_args()

    data = Path(os.environ.get("S3PRL_TEST_DATA", ROOT.parent / "shared" / "data")) / "librispeech_test_other_mini"
    if not data.is_dir():
        sys.exit(f"{data} not found: set S3PRL_TEST_DATA to the shared data folder")
    fs_py = os.environ.get("FAIRSEQ_ORACLE_PYTHON") or subprocess.run(
        ["bash", str(ORACLE / "setup.sh")], capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    work = Path(args.keep or tempfile.mkdtemp(prefix="w2v_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    s3prl = str(Path(sys.executable).parent / "s3prl")
    man = work / "manifest"
    subprocess.run([s3prl, "wav2vec2", "manifest", str(data), "--valid-percent", "0", "--dest", str(man)],
                   check=True, capture_output=True)

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               FAIRSEQ_ORACLE_THREADS=str(args.threads), FAIRSEQ_ORACLE_PYTHON=fs_py, PYTHONUNBUFFERED="1")
    common = [f"common.seed={args.seed}", "common.log_interval=1", f"optimization.max_update={args.updates}",
              f"dataset.max_tokens={args.max_tokens}", "dataset.disable_validation=true",
              f"checkpoint.save_interval_updates={args.updates}", "checkpoint.no_epoch_checkpoints=true"]
    results = []
    for r in range(args.repeats):
        for kind in ("fairseq", "ours"):
            out = work / f"{kind}{r}"
            shutil.rmtree(out, ignore_errors=True)
            if kind == "fairseq":
                cmd = ["bash", str(ORACLE / "train.sh"), str(man), str(out), "--updates", str(args.updates),
                       "--max-tokens", str(args.max_tokens), "--seed", str(args.seed)]
            else:
                cmd = [s3prl, "wav2vec2", "train", "--config-name", "wav2vec2_base_librispeech", f"task.data={man}",
                       "distributed_training.distributed_world_size=1", "dataset.num_workers=0",
                       f"checkpoint.save_dir={out}", *common, *TINY]
            res = run_one(kind, cmd, env, out, args)
            res["run"] = r
            results.append(res)
            print(f"{kind:8s} run {r}: steady {res['updates_per_s_steady']:.3f} upd/s "
                  f"({res.get('updates_per_epoch')} updates/epoch, {res.get('seconds_per_epoch', float('nan')):.2f} s/epoch) "
                  f"(updates {args.start}->{args.updates} in {res['steady_span_s']:.1f} s), "
                  f"process {res['process_wall_s']:.1f} s, mean batch {res['mean_bsz']}", flush=True)

    def mean(kind, key):
        return statistics.mean(x[key] for x in results if x["trainer"] == kind)

    summary = {"updates": args.updates, "steady_from_update": args.start, "threads": args.threads,
               "max_tokens": args.max_tokens, "seed": args.seed, "manifest_files": len((man / "train.tsv").read_text().splitlines()) - 1, "runs": results,
               "fairseq_steady_ups": mean("fairseq", "updates_per_s_steady"),
               "ours_steady_ups": mean("ours", "updates_per_s_steady"),
               "fairseq_process_s": mean("fairseq", "process_wall_s"),
               "ours_process_s": mean("ours", "process_wall_s")}
    if all("seconds_per_epoch" in x for x in results):
        summary["fairseq_s_per_epoch"] = mean("fairseq", "seconds_per_epoch")
        summary["ours_s_per_epoch"] = mean("ours", "seconds_per_epoch")
        summary["ratio_epoch"] = summary["fairseq_s_per_epoch"] / summary["ours_s_per_epoch"]
    summary["ours_batches_per_epoch"], summary["ours_cropped_audio_s_per_epoch"] = ours_epoch(args, man)
    summary["ratio_steady"] = summary["ours_steady_ups"] / summary["fairseq_steady_ups"]
    summary["ratio_process"] = summary["fairseq_process_s"] / summary["ours_process_s"]
    print()
    print(f"| trainer | steady updates/s ({args.start}->{args.updates}), mean | process wall s, mean |")
    print("|---|---|---|")
    print(f"| fairseq 0.12.2 | {summary['fairseq_steady_ups']:.3f} | {summary['fairseq_process_s']:.1f} |")
    print(f"| s3prl | {summary['ours_steady_ups']:.3f} | {summary['ours_process_s']:.1f} |")
    print(f"| ratio ours/fairseq | {summary['ratio_steady']:.2f}x | {summary['ratio_process']:.2f}x |")
    if "ratio_epoch" in summary:
        print(f"seconds per whole epoch: fairseq {summary['fairseq_s_per_epoch']:.2f}, ours "
              f"{summary['ours_s_per_epoch']:.2f} -> {summary['ratio_epoch']:.2f}x")
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
