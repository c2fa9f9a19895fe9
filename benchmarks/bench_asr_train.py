"""ASR training speed: ``s3prl downstream train -d asr`` with and without the feature cache, and the original
s3prl 0.4.18 runner (``run_downstream.py -m train -u fbank -d asr``), on the same recordings, the same head and
the same batch size.

Data: the LibriSpeech test-other utterances of ``$S3PRL_TEST_DATA/librispeech_test_other_mini`` linked into a
LibriSpeech layout in a temporary folder (``train-clean-100/<spk>/<chapter>/``: those of 4-7 s, so that every
batch costs about the same whichever utterances the two samplers draw; ``dev-clean`` and ``test-clean``: one
speaker each), plus the original's bucket files (``len_for_bucket/<split>.csv``: ``file_path,length`` as its
``preprocess/generate_len_for_bucket.py`` writes) and a fairseq character dictionary.

Head (both sides): the SUPERB ASR head shrunk for a CPU (``project_dim`` and BLSTM sizes ``--dim``, default 256),
SpecAugment on, Adam 1e-4. Batches: the original buckets ``train_batch_size`` utterances by length and halves
every bucket (all LibriSpeech files exceed its ``HALF_BATCHSIZE_TIME``), so ``--batch 4`` runs
``train_batch_size: 8`` (its last, incomplete bucket is kept whole); ours batches by padded seconds:
``data.batch_seconds`` is the smallest whose mean batch holds ``--batch`` utterances or more. Both means are
printed, and the rates are given in steps and in utterances per second. Upstream: ``fbank`` (Kaldi fbank 80 +
deltas, CMVN) on both.

Speed = training steps per second between the end of step ``--first`` and the end of step ``--steps`` - 1 of a
run of ``--steps`` steps (fresh process, cache and experiment folder each): start-up, cache building, the
first steps (data-loader workers starting), the final evaluation and checkpointing are left out. Ours: from
``history.jsonl`` (``train.log_step=1``: each record holds the time since the previous step); the original:
from the elapsed times of its ``overall`` progress bar (1 s resolution). The wall time of each run is printed too.

    export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 S3PRL_TEST_DATA=../shared/data
    .venv/bin/python benchmarks/bench_asr_train.py [--steps 40 --first 3 --dim 256 --batch 4]

(Threads: on a machine whose cores are busy with other jobs, use one thread per process. With two OpenMP
threads on two shared cores a BLSTM forward of 100 frames took 10 s instead of 1 s: each of the thousands of
small per-time-step parallel regions waits for a descheduled thread.)

The original runs with ``~/.cache/s3prl-oracle/venv`` (``--oracle-python``) and ``/tmp/oracle_extra`` on its
path (pandas, editdistance: see tests/oracle/make_ctc_fixtures.py; and tensorboardX, which its runner imports:
``pip install --target /tmp/oracle_extra --no-deps tensorboardX``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
ORACLE_DIR = ROOT.parent / "shared" / "tools" / "s3prl-oracle"
# the oracle's huggingface_hub no longer has two names the original runner imports (unused here): stand-ins
ORACLE_LAUNCH = """import sys; sys.path.insert(0, {oracle!r}); import oracle_env
import huggingface_hub as hub
for name in ("HfFolder", "Repository"):
    hasattr(hub, name) or setattr(hub, name, type(name, (), {{}}))
from s3prl import run_downstream; sys.argv = ["run_downstream.py"] + {argv!r}; run_downstream.main()"""


def libri_layout(source: Path, tmp: Path, band: tuple[float, float]) -> tuple[Path, dict[str, list[tuple[str, int]]]]:
    """Links the mini corpus into ``tmp/libri`` (training: the utterances whose duration lies in ``band``
    seconds); returns it and, per subset, ``(relative path, samples)``."""
    root = tmp / "libri"
    speakers = sorted(p for p in source.iterdir() if p.is_dir())
    subsets = {"train-clean-100": speakers, "dev-clean": speakers[:1], "test-clean": speakers[1:2]}
    files: dict[str, list[tuple[str, int]]] = {}
    for subset, chosen in subsets.items():
        files[subset] = []
        for spk in chosen:
            for trans in sorted(spk.glob("*.trans.txt")):
                chapter = trans.name.split("-")[1].split(".")[0]
                folder = root / subset / spk.name / chapter
                folder.mkdir(parents=True, exist_ok=True)
                kept = set()
                for flac in sorted(spk.glob(f"{spk.name}-{chapter}-*.flac")):
                    samples = sf.info(str(flac)).frames
                    if subset == "train-clean-100" and not band[0] <= samples / 16000 <= band[1]:
                        continue
                    (folder / flac.name).symlink_to(flac)
                    kept.add(flac.stem)
                    files[subset].append((f"{subset}/{spk.name}/{chapter}/{flac.name}", samples))
                lines = [line for line in trans.read_text().splitlines() if line.split(" ", 1)[0] in kept]
                (folder / trans.name).write_text("\n".join(lines) + "\n")
    return root, files


def original_inputs(tmp: Path, files: dict, dim: int, batch: int, steps: int, libri: Path) -> Path:
    """Bucket files, dictionary and the run's config (the original asr config's keys, the head shrunk)."""
    import yaml

    from s3prl.text import CharDictionary

    buckets = tmp / "len_for_bucket"
    buckets.mkdir(exist_ok=True)
    for subset, items in files.items():
        rows = ["file_path,length"] + [f"{path},{n}" for path, n in items]
        (buckets / f"{subset}.csv").write_text("\n".join(rows) + "\n")
    CharDictionary.default().save(tmp / "char.dict")
    rnn = {"total_rate": -1, "module": "LSTM", "bidirection": True, "dim": [dim, dim], "dropout": [0.2, 0.2],
           "layer_norm": [False, False], "proj": [False, False], "sample_rate": [1, 1], "sample_style": "concat"}
    config = {
        "runner": {"total_steps": steps, "gradient_clipping": 1, "gradient_accumulate_steps": 1, "log_step": steps,
                   "eval_step": steps, "save_step": steps, "max_keep": 1, "eval_dataloaders": ["dev-clean"]},
        "optimizer": {"name": "TorchOptim", "torch_optim_name": "Adam", "lr": 1.0e-4},
        "specaug": {"adaptive": False, "adaptive_number_ratio": 0.04, "adaptive_size_ratio": 0.04,
                    "max_n_time_masks": 20, "apply_time_warp": True, "apply_time_mask": True, "apply_freq_mask": True,
                    "time_warp_window": 5, "time_mask_width_range": [0, 40], "freq_mask_width_range": [0, 50],
                    "num_freq_mask": 4, "num_time_mask": 2},
        "downstream_expert": {
            "datarc": {"train": ["train-clean-100"], "dev-clean": ["dev-clean"], "test-clean": ["test-clean"],
                       "num_workers": 2, "train_batch_size": 2 * batch, "batch_size": 2 * batch, "eval_batch_size": 1,
                       "libri_root": str(libri), "bucket_file": str(buckets), "dict_path": str(tmp / "char.dict"),
                       "zero_infinity": True, "decoder_args": {"decoder_type": "None"}},
            "modelrc": {"project_dim": dim, "select": "RNNs", "RNNs": rnn}}}
    path = tmp / f"original_{steps}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def timed(cmd: list[str], env: dict, log: Path) -> float:
    start = time.perf_counter()
    with open(log, "w") as f:
        done = subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, cwd=log.parent)
    elapsed = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n--- {log}:\n{log.read_text()[-3000:]}")
    return elapsed


def ours_cmd(tmp: Path, libri: Path, steps: int, dim: int, batch_seconds: float, cache: bool, tag: str) -> list[str]:
    head = f"task.model={{project_dim: {dim}, dim: [{dim}, {dim}]}}"
    options = (f"task.root={libri},,data.cache={str(cache).lower()},,data.cache_dir={tmp}/cache_{tag},,"
               f"data.num_workers=2,,data.batch_seconds={batch_seconds},,train.total_steps={steps},,"
               f"train.log_step=1,,train.eval_step={steps},,train.save_step={steps},,{head}")
    return [sys.executable, "-m", "s3prl.cli", "downstream", "train", "-u", "fbank", "-d", "asr",
            "-p", str(tmp / f"exp_{tag}"), "-o", options]


def ours_rate(expdir: Path, first: int, last: int) -> float:
    """Steps per second from step ``first`` to ``last`` in a run's ``history.jsonl`` (one record per step)."""
    records = [json.loads(line) for line in (expdir / "history.jsonl").read_text().splitlines()]
    seconds = {r["step"]: 1.0 / r["steps_per_second"] for r in records if r.get("split") == "train"}
    return (last - first) / sum(seconds[s] for s in range(first + 1, last + 1))


def original_rate(log: Path, first: int, last: int) -> float:
    """Steps per second from step ``first`` to ``last`` read off the original's ``overall`` tqdm bar."""
    elapsed = {}
    for n, clock in re.findall(r"overall:[^|]*\|[^|]*\|\s*(\d+)/\d+ \[([\d:]+)<", log.read_text()):
        parts = [int(p) for p in clock.split(":")]
        elapsed.setdefault(int(n), sum(p * 60 ** i for i, p in enumerate(reversed(parts))))
    a = min(k for k in elapsed if k >= first)
    b = max(k for k in elapsed if k <= last)
    return (b - a) / (elapsed[b] - elapsed[a])


def original_mean_batch(items: int, batch: int) -> float:
    """Utterances per step of the original's asr dataset: buckets of ``2 * batch`` (sorted by length) each cut in
    two, the last incomplete bucket kept whole when it holds more than one utterance."""
    full, rest = divmod(items, 2 * batch)
    kept = rest if rest > 1 else 0
    return (2 * batch * full + kept) / (2 * full + (1 if kept else 0))


def ours_batch_seconds(files: dict, batch: int) -> tuple[float, float]:
    """The ``batch_seconds`` whose batches hold ``batch`` utterances on average, and that mean."""
    sys.path.insert(0, str(ROOT))
    from s3prl.downstream.data import DurationBatchSampler

    durations = [n / 16000 for _, n in files["train-clean-100"]]
    for seconds in [x / 2 for x in range(10, 400)]:
        batches = list(DurationBatchSampler(durations, seconds, shuffle=False))
        mean = len(durations) / len(batches)
        if mean >= batch:
            return seconds, mean
    raise SystemExit("no batch_seconds gives that batch size")


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--first", type=int, default=3)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--min-seconds", type=float, default=4.0, help="training utterances: shortest kept")
    parser.add_argument("--max-seconds", type=float, default=7.0, help="training utterances: longest kept")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--oracle-python", default=str(Path.home() / ".cache/s3prl-oracle/venv/bin/python"))
    parser.add_argument("--skip-original", action="store_true")
    parser.add_argument("--workdir", help="keep the corpus links, logs and runs here (default: a temporary folder)")
    args = parser.parse_args()
    data = Path(os.environ.get("S3PRL_TEST_DATA", ROOT.parent / "shared" / "data")) / "librispeech_test_other_mini"
    if not data.is_dir():
        raise SystemExit(f"{data} not found: set S3PRL_TEST_DATA to the shared data folder")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # the oracle sets its own torch thread count (S3PRL_ORACLE_THREADS, else up to 4): the same as ours
    threads = os.environ.get("OMP_NUM_THREADS") or str(torch_threads())
    oracle_env = {**os.environ, "PYTHONPATH": "/tmp/oracle_extra", "S3PRL_ORACLE_THREADS": threads}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(args.workdir or folder)
        tmp.mkdir(parents=True, exist_ok=True)
        libri, files = libri_layout(data, tmp, (args.min_seconds, args.max_seconds))
        batch_seconds, mean_batch = ours_batch_seconds(files, args.batch)
        original_batch = original_mean_batch(len(files["train-clean-100"]), args.batch)
        print(f"train: {len(files['train-clean-100'])} utterances, "
              f"{sum(n for _, n in files['train-clean-100']) / 16000 / 60:.1f} min; ours: data.batch_seconds="
              f"{batch_seconds} -> {mean_batch:.2f} utterances per batch; original: train_batch_size "
              f"{2 * args.batch} -> {original_batch:.2f} per batch")
        results = {}
        runs = {"ours, feature cache": lambda n, tag: ours_cmd(tmp, libri, n, args.dim, batch_seconds, True, tag),
                "ours, no cache": lambda n, tag: ours_cmd(tmp, libri, n, args.dim, batch_seconds, False, tag)}
        if not args.skip_original:
            def original(n, tag):
                config = original_inputs(tmp, files, args.dim, args.batch, n, libri)
                argv = ["-m", "train", "-u", "fbank", "-d", "asr", "-c", str(config), "-p", str(tmp / f"exp_{tag}"),
                        "--device", "cpu"]
                return [args.oracle_python, "-c", ORACLE_LAUNCH.format(oracle=str(ORACLE_DIR), argv=argv)]
            runs["original runner"] = original
        first, last = args.first, args.steps - 1
        for name, make in runs.items():
            tag = f"{name.split(',')[0].split()[0]}_{'cache' if 'feature' in name else 'x'}"
            log = tmp / f"{tag}.log"
            wall = timed(make(args.steps, tag), oracle_env if name.startswith("original") else env, log)
            try:
                rate = (original_rate(log, first, last) if name.startswith("original")
                        else ours_rate(tmp / f"exp_{tag}", first, last))
            except (ValueError, KeyError, OSError) as err:  # keep the other configurations' numbers
                print(f"{name}: no rate ({err!r}); see {log}", flush=True)
                continue
            per_batch = original_batch if name.startswith("original") else mean_batch
            results[name] = {"steps_per_second": rate, "utterances_per_second": rate * per_batch, "wall_seconds": wall}
            print(f"{name}: {rate:.3f} steps/s, {rate * per_batch:.2f} utterances/s over steps {first}-{last} "
                  f"(run wall time {wall:.1f} s)", flush=True)
    base = results.get("original runner")
    if "ours, feature cache" not in results or "ours, no cache" not in results:
        raise SystemExit(json.dumps(results))
    for name, r in results.items():
        if base and name != "original runner":
            print(f"{name} / original runner: {r['steps_per_second'] / base['steps_per_second']:.2f}x steps/s, "
                  f"{r['utterances_per_second'] / base['utterances_per_second']:.2f}x utterances/s")
    cached, plain = results["ours, feature cache"], results["ours, no cache"]
    print(f"feature cache / no cache: {cached['steps_per_second'] / plain['steps_per_second']:.2f}x")
    print(json.dumps({"args": vars(args), "threads": threads, "results": results}))


if __name__ == "__main__":
    main()
