"""``s3prl score mcd REF_DIR CONV_DIR [--speaker TEF1 | --f0min HZ --f0max HZ] [--json]``: mel-cepstral
distortion of converted speech against the target speaker's recordings, with the code of the
``a2o-vc-vcc2020`` task (:mod:`s3prl.metrics.mcd`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .score_audio import _names, audio_files, read_mono

EPILOG = """\
Each converted file is paired with a reference by its path relative to the folders (REF/E30001.wav with
CONV/E30001.wav), else by the original evaluation's rule: the utterance number is the second field of a
name with underscores (CONV/SEF1_E30001.wav or SEF1_E30001_gen.wav -> REF/E30001.wav), so several source
speakers' conversions can share one reference. A converted file with no reference is an error naming it.
A reference at another sample rate than its converted file is resampled to the converted file's rate (as the
task does; VCC2020 is 24 kHz on both sides). Harvest's F0 search range is the
target speaker's in the original's table (--speaker TEF1, TEF2, TEM1, TEM2, ...) or --f0min/--f0max.
MCD needs the `vc` extra: pip install 's3prl[vc]'.
examples:
  s3prl score mcd vcc2020/TEF1 result/downstream/vc/test_wav --speaker TEF1
  s3prl score mcd refs/ converted/ --f0min 80 --f0max 400 --json"""


def add_parsers(modes, common) -> None:
    p = modes.add_parser("mcd", parents=[common], help="mel-cepstral distortion of converted speech (VC)",
                         description="MCD (dB) of each converted file against the target speaker's recording of "
                                     "the same utterance (WORLD mel-cepstra, power VAD, DTW), and the mean.",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", help="folder of the target speaker's recordings")
    p.add_argument("converted", help="folder of converted audio")
    p.add_argument("--speaker", help="target speaker whose F0 range to use (the original's VCC2020 table)")
    p.add_argument("--f0min", type=float, help="lowest F0 searched (Hz)")
    p.add_argument("--f0max", type=float, help="highest F0 searched (Hz)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=cmd_mcd)


def utterance_number(name: str) -> str:
    """The original evaluation's ``get_number``: ``SEF1_E30001_gen`` -> ``E30001``; ``E30001`` -> itself."""
    stem = Path(name).stem
    return stem.split("_")[1] if "_" in stem else stem


def pair_files(refs: dict, convs: dict) -> list[tuple[str, str]]:
    """``(converted name, reference name)`` pairs; unmatched converted files are an error."""
    by_number = {}
    for name in refs:
        by_number.setdefault(Path(name).stem, name)
    pairs, missing = [], []
    for name in sorted(convs):
        ref = name if name in refs else by_number.get(utterance_number(name))
        (pairs.append((name, ref)) if ref else missing.append(name))
    if missing:
        raise ValueError(f"{len(missing)} converted file(s) have no reference: {_names(missing)} (see "
                         "`s3prl score mcd -h` for how files are paired)")
    return pairs


def score(reference: str, converted: str, speaker: str | None = None, f0min: float | None = None,
          f0max: float | None = None) -> dict:
    from ..metrics import mcd

    low, high = mcd.f0_range(speaker, f0min, f0max)
    refs, convs = audio_files(reference), audio_files(converted)
    per_file = {}
    for name, ref_name in pair_files(refs, convs):
        conv, rate = read_mono(convs[name])
        ref, ref_rate = read_mono(refs[ref_name])
        if rate != ref_rate:  # as the task: the reference is brought to the output's rate
            import torch

            from ..audio import resample

            ref = resample(torch.from_numpy(ref).float(), ref_rate, rate).double().numpy()
        per_file[name] = {"reference": ref_name, "mcd": mcd.mcd(conv, ref, rate, low, high, name=name)}
    mean = sum(r["mcd"] for r in per_file.values()) / len(per_file)
    return {"metric": "mcd", "files": len(per_file), "f0_range": [low, high], "mean": mean, "per_file": per_file}


def cmd_mcd(args) -> int:
    result = score(args.reference, args.converted, args.speaker, args.f0min, args.f0max)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{'file':<32} {'reference':<24} {'MCD (dB)':>9}")
    for name, row in result["per_file"].items():
        print(f"{name:<32} {row['reference']:<24} {row['mcd']:>9.4f}")
    print(f"{'MEAN (' + str(result['files']) + ' files)':<57} {result['mean']:>9.4f}")
    return 0
