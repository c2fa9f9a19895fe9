"""Speech translation end to end on real recordings, with STAND-IN "translations" (no En->De speech corpus is
available offline): the data are written in the original's fairseq S2T tsv layout, then ``s3prl downstream train
-d speech_translation`` runs (sentencepiece char model trained by the task, S2T transformer, beam search, BLEU).

    S3PRL_TEST_DATA=../shared/data python benchmarks/st_standin.py librispeech [--work DIR] [--steps N] [-o ...]
    S3PRL_TEST_DATA=../shared/data python benchmarks/st_standin.py fsdd [--work DIR] [--steps N] [-o ...]

* ``librispeech``: the 100 LibriSpeech test-other utterances of ``librispeech_test_other_mini`` "translated"
  English -> English (target = the official transcript in sentence case, src_text = its lower-case words for the
  ASR multitask). Per speaker utterances 0-7 train, 8 dev, 9 test (80 / 10 / 10). Far too small to generalize:
  it proves the pipeline on real speech; the training-set BLEU (``evaluate -t train``) shows the fit.
* ``fsdd``: sequences of 4 real FSDD digit recordings (resampled to 16 kHz, 0.1 s of silence between them)
  "translated" into German number words ("drei sieben null eins."). Train from takes 5-49, dev and test from
  takes 0-4 (the official FSDD test takes: unseen recordings), 6 speakers in every split.

Extra ``-o`` overrides go to ``s3prl downstream train``. Results: WORKDIR/exp/results.json (BLEU), the
hypotheses in WORKDIR/exp/output-st-test.tsv.
"""

from __future__ import annotations

import csv
import json
import os
import random
from pathlib import Path

import numpy as np
import soundfile as sf

from s3prl.cli import main as s3prl

DATA = Path(os.environ["S3PRL_TEST_DATA"])
GERMAN = ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"]


def write_tsv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, ["id", "audio", "n_frames", "src_text", "tgt_text"], delimiter="\t",
                           quoting=csv.QUOTE_NONE, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def librispeech(work: Path) -> None:
    src = DATA / "librispeech_test_other_mini"
    splits = {"train": [], "dev": [], "test": []}
    for trans in sorted(src.rglob("*.trans.txt")):
        lines = sorted(trans.read_text().splitlines())
        for k, line in enumerate(lines):
            uid, text = line.split(" ", 1)
            audio = next(trans.parent.glob(f"{uid}.flac"))
            split = "train" if k < 8 else "dev" if k == 8 else "test"
            sentence = text.capitalize() + "."
            splits[split].append({"id": uid, "audio": str(audio.resolve()), "n_frames": sf.info(audio).frames,
                                  "src_text": text.lower(), "tgt_text": sentence})
    for split, rows in splits.items():
        write_tsv(work / f"{split}.tsv", rows)


def fsdd(work: Path, counts=(600, 60, 120)) -> None:
    from s3prl.downstream.data import read_segment

    rec = DATA / "fsdd" / "recordings"
    files = sorted(rec.glob("*.wav"))
    by_take = {"train": [f for f in files if int(f.stem.split("_")[2]) >= 5],
               "test": [f for f in files if int(f.stem.split("_")[2]) < 5]}
    rng = random.Random(0)
    cache: dict[Path, np.ndarray] = {}

    def load(path: Path) -> np.ndarray:
        if path not in cache:
            cache[path] = read_segment(str(path), 0.0, None).numpy()  # 8 kHz -> 16 kHz (band-limited)
        return cache[path]

    (work / "clips").mkdir(parents=True, exist_ok=True)
    for split, count in zip(("train", "dev", "test"), counts):
        pool, rows = by_take["train" if split == "train" else "test"], []
        for n in range(count):
            picks = [rng.choice(pool) for _ in range(4)]
            digits = [int(p.stem.split("_")[0]) for p in picks]
            gap = np.zeros(1600, dtype=np.float32)
            wav = np.concatenate([x for p in picks for x in (load(p), gap)][:-1])
            name = f"{split}{n:04d}"
            sf.write(work / "clips" / f"{name}.wav", wav, 16000, subtype="PCM_16")
            english = " ".join(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"][d]
                               for d in digits)
            rows.append({"id": name, "audio": f"clips/{name}.wav", "n_frames": len(wav), "src_text": english,
                         "tgt_text": " ".join(GERMAN[d] for d in digits) + "."})
        write_tsv(work / f"{split}.tsv", rows)


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description="speech translation on real recordings with stand-in targets")
    p.add_argument("kind", choices=["librispeech", "fsdd"])
    p.add_argument("--work", help="working folder (default result/st_<kind>)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("-o", "--override", action="append", default=[], help="more `s3prl downstream train -o` items")
    args = p.parse_args()
    work = Path(args.work or f"result/st_{args.kind}")
    data = work / "data"
    if not (data / "test.tsv").is_file():
        data.mkdir(parents=True, exist_ok=True)
        (librispeech if args.kind == "librispeech" else fsdd)(data)
    every = max(args.steps // 4, 1)
    lang = "en" if args.kind == "librispeech" else "de"
    options = (f"task.root={data},,task.tgt_lang={lang},,train.total_steps={args.steps},,train.eval_step={every},,"
               f"train.save_step={every},,train.log_step=20,,data.num_workers=0,,data.cache_dir={work / 'cache'}")
    exp = work / "exp"
    argv = ["downstream", "train", "-u", "fbank", "-d", "speech_translation", "-p", str(exp), "-o",
            ",,".join([options, *args.override])]
    print("s3prl " + " ".join(argv), flush=True)
    assert s3prl(argv) == 0
    print(json.dumps(json.loads((exp / "results.json").read_text())["metrics"], indent=1))


if __name__ == "__main__":
    main()
