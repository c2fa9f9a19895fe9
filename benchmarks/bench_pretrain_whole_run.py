"""Whole-run pre-training speed: ours (`s3prl pretrain`) vs the original s3prl 0.4.18 `run_pretrain.py`.

Both programs run end to end (start-up, data set, feature extraction, model steps, checkpoint) on the same
configuration files, the same LibriSpeech-layout data (the original's `len_for_bucket` length table, written here
in the format of its `preprocess/generate_len_for_bucket.py`: `,file_path,length` with lengths in samples), the
same batch size, crop, `max_timestep` and number of steps, on CPU with 2 threads. Runs alternate (original, ours
with an empty feature cache, ours with the cache already filled) and repeat; the load average is recorded beside
each run because the machine is shared.

The original needs pandas, tensorboardX and a matplotlib older than 3.10 (its spectrogram logging calls
`canvas.tostring_rgb`), which its environment lacks: they go into a side folder (not into the oracle venv), put on
PYTHONPATH for its runs only; the side folder's own numpy is removed so that the venv's numpy is used:

    PY=~/.cache/s3prl-oracle/venv/bin/python
    $PY -m pip install --target /tmp/oracle_extra_pd pandas
    $PY -m pip install --no-deps --target /tmp/oracle_extra_pd tensorboardX "matplotlib<3.10"
    $PY -m pip install --target /tmp/oracle_extra_pd "matplotlib<3.10"   # its dependencies (then remove numpy)
    rm -rf /tmp/oracle_extra_pd/numpy /tmp/oracle_extra_pd/numpy-* /tmp/oracle_extra_pd/numpy.libs
    S3PRL_TEST_DATA=../shared/data nice -n 10 .venv/bin/python benchmarks/bench_pretrain_whole_run.py \
        --steps 3 --repeat 1 --methods tera apc --work /tmp/whole_run_rep1 --out /tmp/whole_run_rep1.json

Options changed from the original's default files, the same for both programs: `total_steps` (small),
`n_epochs -1`, `gradient_accumulate_steps 1` (each step = one batch), `log_step` / `save_step` below
`total_steps` (the original asserts it), `task.sequence_length` (the crop, in frames; --crop), and the data
source (`libri_root`, `file_path`, `sets`), and `num_workers` (--workers, default 2 = the cores here; the
original's file says 8; ours has no DataLoader workers). Batch size (8), `max_timestep` (-200) and every model
setting are the original's defaults.
"""

import argparse
import copy
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ORACLE_PY = Path.home() / ".cache/s3prl-oracle/venv/bin/python"
ORACLE_PKG = Path.home() / ".cache/s3prl-oracle/venv/lib/python3.11/site-packages/s3prl"
SIDE = "/tmp/oracle_extra_pd"


def prepare(work: Path, data: Path, crop: int, steps: int, workers: int) -> dict:
    """LibriSpeech layout + length table + the two configuration files per method."""
    sys.path.insert(0, str(ROOT))
    import soundfile

    from s3prl.pretrain import config

    libri = work / "libri"
    libri.mkdir(parents=True, exist_ok=True)
    link = libri / "mini"
    if not link.exists():
        link.symlink_to(data / "librispeech_test_other_mini")
    table = work / "len_for_bucket"
    table.mkdir(exist_ok=True)
    rows = sorted((str(p.relative_to(libri)), soundfile.info(str(p)).frames) for p in link.glob("*/*.flac"))
    with open(table / "mini.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["", "file_path", "length"])
        for i, (path, n) in enumerate(rows):
            w.writerow([i, path, n])
    files = {}
    for method in ("tera", "apc"):
        model, runner = copy.deepcopy(config.PRESETS[method][0]), copy.deepcopy(config.PRESETS[method][1])
        model["task"]["sequence_length"] = crop
        runner["runner"].update(n_epochs=-1, total_steps=steps, gradient_accumulate_steps=1,
                                log_step=max(1, steps // 2), save_step=steps - 1)
        datarc = runner["pretrain_expert"]["datarc"]
        datarc.update(libri_root=str(libri), file_path=str(table), sets=["mini"], num_workers=workers)
        datarc.pop("audio_dir"), datarc.pop("manifest")  # ours only; the original's files do not have them
        for name, conf in (("model", model), ("runner", runner)):
            path = work / f"{method}_{name}.yaml"
            path.write_text(yaml.safe_dump(conf, sort_keys=False))
            files[(method, name)] = str(path)
    return {"files": files, "n_files": len(rows), "hours": sum(n for _, n in rows) / 16000 / 3600}


# The original's spectrogram logging (every log_step, and always at the last step) calls the binary mode of
# np.fromstring, removed in numpy 2 (the oracle venv has numpy 2): this launcher maps that one call onto
# np.frombuffer (same bytes, same array) and runs the unchanged run_pretrain.py.
LAUNCHER = """import runpy, sys
import numpy as np
_fromstring = np.fromstring
def fromstring(data, dtype=float, count=-1, sep=''):
    if sep == '':
        return np.frombuffer(data, dtype=dtype, count=count).copy()
    return _fromstring(data, dtype=dtype, count=count, sep=sep)
np.fromstring = fromstring
sys.path.insert(0, '.')
sys.argv = ['run_pretrain.py'] + sys.argv[1:]
runpy.run_path('run_pretrain.py', run_name='__main__')
"""


def load_average() -> float:
    return os.getloadavg()[0]


def loop_seconds(log: Path) -> float | None:
    """Seconds spent in the training loop, from the program's own log: ours prints `stopped at step N after X s`,
    the original's tqdm `overall` bar ends with `[MM:SS<` (its elapsed time since the bar was made)."""
    text = log.read_text(errors="replace").replace("\r", "\n")
    found = re.findall(r"stopped at step \d+ after ([0-9.]+) s", text)
    if found:
        return float(found[-1])
    found = re.findall(r"overall: 100%.*?\[(?:(\d+):)?(\d+):(\d+)<", text)
    if found:
        h, m, sec = found[-1]
        return int(h or 0) * 3600 + int(m) * 60 + int(sec)
    return None


def run(cmd, cwd, env, log):
    load = load_average()
    start = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}; see {log}")
    return wall, load, load_average()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--crop", type=int, default=300, help="task.sequence_length in frames (default file: 1500)")
    p.add_argument("--workers", type=int, default=2, help="the original's DataLoader workers (default file: 8)")
    p.add_argument("--methods", nargs="+", default=["tera", "apc"])
    p.add_argument("--work", default="/tmp/whole_run")
    p.add_argument("--out", default="/tmp/whole_run.json")
    args = p.parse_args()
    data = Path(os.environ.get("S3PRL_TEST_DATA", ROOT.parent / "shared/data")).resolve()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    info = prepare(work, data, args.crop, args.steps, args.workers)
    (work / "orig_launch.py").write_text(LAUNCHER)
    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    env.pop("PYTHONPATH", None)
    oracle_env = dict(env, PYTHONPATH=SIDE)
    results = []
    for rep in range(args.repeat):
        for method in args.methods:
            g, c = info["files"][(method, "model")], info["files"][(method, "runner")]
            cache = work / f"cache_{method}_{rep}"
            runs = [
                ("original", [str(ORACLE_PY), str(work / "orig_launch.py"), "-u", method, "-n", f"orig_{method}",
                              "-g", g, "-c", c, "-p", str(work / f"orig_{method}_{rep}"), "--device", "cpu"],
                 str(ORACLE_PKG), oracle_env),
                ("ours, empty cache", [str(ROOT / ".venv/bin/s3prl"), "pretrain", "-u", method, "-g", g, "-c", c,
                                       "-p", str(work / f"ours_{method}_{rep}a"), "--device", "cpu",
                                       "--cache-dir", str(cache), "--quiet"], str(work), env),
                ("ours, cache filled", [str(ROOT / ".venv/bin/s3prl"), "pretrain", "-u", method, "-g", g, "-c", c,
                                        "-p", str(work / f"ours_{method}_{rep}b"), "--device", "cpu",
                                        "--cache-dir", str(cache), "--quiet"], str(work), env),
            ]
            for label, cmd, cwd, e in runs:
                log = work / f"{method}_{rep}_{label.split(',')[0]}{'_warm' if 'filled' in label else ''}.log"
                wall, load0, load1 = run(cmd, cwd, e, log)
                loop = loop_seconds(log)
                row = {"method": method, "rep": rep, "run": label, "steps": args.steps, "wall_s": round(wall, 2),
                       "steps_per_s": round(args.steps / wall, 4),
                       "loop_s": loop, "loop_steps_per_s": round(args.steps / loop, 4) if loop else None,
                       "load_before": round(load0, 2), "load_after": round(load1, 2)}
                print(json.dumps(row), flush=True)
                results.append(row)
    out = {"steps": args.steps, "crop_frames": args.crop, "num_workers": args.workers, "threads": 2,
           "files": info["n_files"], "audio_hours": round(info["hours"], 4), "runs": results}
    Path(args.out).write_text(json.dumps(out, indent=1))
    print("\nmethod  run                  whole-run s / ratio vs original    training-loop s / ratio")
    for method in args.methods:
        rows = {label: [r for r in results if r["method"] == method and r["run"] == label]
                for label in ("original", "ours, empty cache", "ours, cache filled")}
        for label, runs in rows.items():
            walls = [r["wall_s"] for r in runs]
            loops = [r["loop_s"] for r in runs]
            wr = [round(o["wall_s"] / r["wall_s"], 2) for o, r in zip(rows["original"], runs)]
            lr = [round(o["loop_s"] / r["loop_s"], 2) if o["loop_s"] and r["loop_s"] else None
                  for o, r in zip(rows["original"], runs)]
            print(f"{method:6s}  {label:19s}  {walls} / {wr}    {loops} / {lr}")


if __name__ == "__main__":
    main()
