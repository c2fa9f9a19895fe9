"""QbE on real recordings: spoken-word queries searched in documents built from other recordings of the words.

From the Free Spoken Digit Dataset (``$S3PRL_TEST_DATA/fsdd``): dev queries are one take of each digit by one
speaker, eval queries the same by another; every document concatenates ``--digits`` recordings (distinct digits,
random takes) of the remaining speakers (or, ``--doc-speakers same``, of the two query speakers) with short
pauses, so the truth (which documents hold which digit) is exact. ``--source speech_commands`` does the same
with the 30 words of the Speech Commands mini set (16 kHz, many speakers): queries are a word's first two clips,
documents hold its other clips except those by the query speakers. The corpus is written in the QUESST14 layout
and scored by the real command (``s3prl downstream evaluate -d quesst14_dtw``, task options through
``--override``); a random scorer on the same truth is the floor.

    S3PRL_TEST_DATA=../shared/data python benchmarks/qbe_fsdd.py --upstreams fbank mfcc --out /tmp/qbe_fsdd

``fbank_no_delta`` as an upstream name is ``fbank`` without its deltas (a ``baseline_local`` yaml written here).
Results (numbers, commands) are recorded in docs/qbe.md. FSDD: CC BY-SA 4.0 (Z. Jackson et al.); Speech
Commands: CC BY 4.0 (Warden 2018).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from s3prl.downstream.corpora.quesst14 import ground_truth, read_stdlist, write_layout  # noqa: E402
from s3prl.metrics import twv  # noqa: E402


def build(fsdd: Path, out: Path, n_docs: int, digits: int, seed: int, librispeech: Path | None = None,
          doc_speakers: str = "other", trim_db: float = -30.0) -> Path:
    rng = np.random.default_rng(seed)
    files = sorted((fsdd / "recordings").glob("*.wav"))
    speakers = sorted({f.stem.split("_")[1] for f in files})
    q_dev, q_eval = speakers[0], speakers[1]
    # other: documents by the 4 remaining speakers (speaker-independent search); same: by the 2 query
    # speakers (other takes; half of the true documents are still by the other query speaker)
    doc_speakers = speakers[2:] if doc_speakers == "other" else speakers[:2]

    def read(path: Path):
        samples, rate = soundfile.read(path, dtype="float32")
        return samples, rate

    queries = {"dev": {}, "eval": {}}
    for split, speaker in (("dev", q_dev), ("eval", q_eval)):
        for digit in range(10):  # QUESST queries are cut tightly: leading / trailing silence trimmed
            samples, rate = read(fsdd / "recordings" / f"{digit}_{speaker}_0.wav")
            queries[split][f"quesst14_{split}_{digit:04d}"] = (trim(samples, rate, floor_db=trim_db), rate)
    docs, holds = {}, {}
    fillers = filler_pool(librispeech) if librispeech else []
    for k in range(n_docs):
        speaker = doc_speakers[k % len(doc_speakers)]
        if fillers:  # real speech around at most one digit: low prevalence, as QUESST
            chosen = [] if rng.random() < 0.5 else [int(rng.integers(10))]
        else:
            chosen = [int(d) for d in rng.choice(10, size=digits, replace=False)]
        parts, rate = [], 8000
        if fillers:
            parts.append(cut(fillers, rng))
        for digit in chosen:
            samples, rate = read(fsdd / "recordings" / f"{digit}_{speaker}_{rng.integers(1, 50)}.wav")
            parts += [samples, np.zeros(int(0.15 * rate), np.float32)]
        if fillers:
            parts.append(cut(fillers, rng))
        name = f"quesst14_{k:05d}"
        docs[name], holds[name] = (np.concatenate(parts), rate), set(chosen)
    truth = {split: {q: {d for d, h in holds.items() if h & {int(q[-4:])}} for q in items}
             for split, items in queries.items()}
    return write_layout(out / "quesst14Database", queries, docs, truth)


def build_commands(folder: Path, out: Path, words_per_doc: int, seed: int, trim_db: float = -30.0) -> Path:
    """Speech Commands: each word's first two clips (sorted names) are its dev / eval queries; the other clips,
    except those by either query speaker (so every true match is by another speaker), fill documents of
    ``words_per_doc`` distinct words in a random order. The clips keep their own silence and room noise."""
    rng = np.random.default_rng(seed)
    words = sorted(p.name for p in folder.iterdir() if p.is_dir())
    queries, pool = {"dev": {}, "eval": {}}, []
    for index, word in enumerate(words):
        clips = sorted((folder / word).glob("*.wav"))
        for split, clip in zip(("dev", "eval"), clips[:2]):
            samples, rate = soundfile.read(clip, dtype="float32")
            queries[split][f"quesst14_{split}_{index:04d}"] = (trim(samples, rate, floor_db=trim_db), rate)
        query_speakers = {clip.stem.split("_")[0] for clip in clips[:2]}
        pool += [(index, clip) for clip in clips[2:] if clip.stem.split("_")[0] not in query_speakers]
    left = [pool[i] for i in rng.permutation(len(pool))]
    docs, holds = {}, {}
    while left:  # greedy: the next clips of words not yet in this document
        chosen = []
        for item in list(left):
            if item[0] not in {w for w, _ in chosen}:
                chosen.append(item)
                left.remove(item)
            if len(chosen) == words_per_doc:
                break
        parts = [soundfile.read(clip, dtype="float32") for _, clip in chosen]
        name = f"quesst14_{len(docs):05d}"
        docs[name], holds[name] = (np.concatenate([p for p, _ in parts]), parts[0][1]), {w for w, _ in chosen}
    truth = {split: {q: {d for d, h in holds.items() if int(q[-4:]) in h} for q in items}
             for split, items in queries.items()}
    return write_layout(out / "quesst14Database", queries, docs, truth)


NO_DELTA = ("kaldi:\n  feat_type: fbank\n  fbank: {num_mel_bins: 80, frame_length: 25.0, frame_shift: 10.0, "
            "use_log_fbank: true}\ndelta: {order: 0, win_length: 5}\ncmvn: {use_cmvn: true}\n")


def filler_pool(folder: Path) -> list[np.ndarray]:
    """LibriSpeech utterances brought to 8 kHz (the FSDD rate), as filler speech of other speakers."""
    import torch

    from s3prl.audio import resample

    pool = []
    for path in sorted(folder.glob("*/*.flac")):
        samples, rate = soundfile.read(path, dtype="float32")
        pool.append(resample(torch.from_numpy(samples), rate, 8000).numpy())
    return pool


def cut(pool: list[np.ndarray], rng, seconds=(0.8, 1.5), rate: int = 8000) -> np.ndarray:
    """A random stretch of a random filler utterance."""
    source = pool[int(rng.integers(len(pool)))]
    n = int(rng.uniform(*seconds) * rate)
    start = int(rng.integers(0, max(1, len(source) - n)))
    return source[start:start + n]


def trim(samples: np.ndarray, rate: int, frame: float = 0.01, floor_db: float = -30.0) -> np.ndarray:
    """``samples`` without the leading / trailing 10 ms frames more than ``-floor_db`` dB below the loudest frame."""
    hop = int(frame * rate)
    energy = np.array([np.mean(samples[i:i + hop] ** 2) + 1e-12 for i in range(0, len(samples) - hop + 1, hop)])
    loud = np.flatnonzero(10 * np.log10(energy / energy.max()) > floor_db)
    return samples[loud[0] * hop:(loud[-1] + 1) * hop]


def run(upstream: str, root: Path, out: Path, split: str, layer: str, override: str = "") -> dict:
    """``s3prl downstream evaluate`` of ``upstream`` on ``split``; ``override``: more ``-o`` items (``a.b=c,,...``)."""
    name = f"qbe_fsdd_{upstream}_{split}"
    model = ["-u", upstream]
    if upstream == "fbank_no_delta":  # the same front-end as `fbank`, without deltas / delta-deltas
        (out / "fbank_no_delta.yaml").write_text(NO_DELTA)
        model = ["-u", "baseline_local", "-k", str(out / "fbank_no_delta.yaml")]
    options = f"task.root={root}" + (f",,{override}" if override else "")
    cmd = [sys.executable, "-m", "s3prl.cli", "downstream", "evaluate", *model, "-d", "quesst14_dtw",
           "-p", str(out / name), "-t", split, "-l", layer, "-o", options, "--cache-dir", str(out / "cache")]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return json.loads((out / name / f"results_{split}.json").read_text())


def random_floor(root: Path, split: str, seeds: int = 20) -> tuple[float, float]:
    """Mean and max MTWV of random scores (standard normal per pair) over ``seeds`` draws, same truth."""
    terms, documents, truth = ground_truth(root, split)
    values = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        scores = {(t, d): float(rng.normal()) for t in terms for d in documents}
        values.append(twv.mtwv(scores, truth, documents)[0])
    return float(np.mean(values)), float(np.max(values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = os.environ.get("S3PRL_TEST_DATA", "../shared/data")
    parser.add_argument("--source", choices=["fsdd", "speech_commands"], default="fsdd",
                        help="FSDD digits (8 kHz, 6 speakers; default) or Speech Commands mini (16 kHz, 30 words)")
    parser.add_argument("--fsdd", default=os.path.join(data, "fsdd"))
    parser.add_argument("--speech-commands", default=os.path.join(data, "speech_commands_v0.01_mini"))
    parser.add_argument("--out", default="/tmp/qbe_fsdd")
    parser.add_argument("--upstreams", nargs="+", default=["fbank", "mfcc"])
    parser.add_argument("--docs", type=int, default=60, help="documents (fsdd; speech_commands uses every clip)")
    parser.add_argument("--digits", type=int, default=3, help="digits (words) per document")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--doc-speakers", choices=["other", "same"], default="other",
                        help="documents by the speakers not in the queries (default) or by the query speakers")
    parser.add_argument("--filler", default="",
                        help="a LibriSpeech folder: filler speech around at most one digit per document (default: digits only)")
    parser.add_argument("--trim-db", type=float, default=-30.0,
                        help="trim queries: leading / trailing 10 ms frames this far below the loudest (-200: none)")
    parser.add_argument("--override", default="",
                        help="more -o items for every run, e.g. task.minmax_norm=false,,task.dist_method=cosine")
    args = parser.parse_args()
    out = Path(args.out)
    if args.source == "speech_commands":
        if args.doc_speakers != "other" or args.filler:
            parser.error("--source speech_commands takes neither --doc-speakers same nor --filler "
                         "(its documents are every clip not by the query speakers)")
        root = build_commands(Path(args.speech_commands), out, args.digits, args.seed, args.trim_db)
    else:
        root = build(Path(args.fsdd), out, args.docs, args.digits, args.seed,
                     Path(args.filler) if args.filler else None, args.doc_speakers, args.trim_db)
    rows = []
    for split in ("dev", "test"):
        mean, worst = random_floor(root, split)
        rows.append(f"| random scores (20 draws) | {split} | mean {mean:.4f}, max {worst:.4f} | - |")
        for upstream in args.upstreams:
            rec = run(upstream, root, out, split, "all", args.override)
            m = rec["metrics"]
            rows.append(f"| {upstream} | {split} | {m['MTWV']:.4f} ({rec['checkpoint']}) | {m['ATWV']:.4f} |")
    print("| system | split | MTWV | ATWV |\n| --- | --- | --- | --- |\n" + "\n".join(rows))
    scores, decisions = read_stdlist(out / f"qbe_fsdd_{args.upstreams[0]}_dev" / "benchmark.stdlist.xml")
    print(f"stdlist: {len(scores)} detections, {sum(decisions.values())} YES")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
