"""``s3prl score sisdr|pesq|stoi REF_DIR EST_DIR [--mixture MIX_DIR] [--json]``: signal metrics of enhanced or
separated audio against references, with the code of the ``enhancement_stft`` / ``separation_stft`` tasks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")

EPILOG = """\
Files are matched by their path relative to REF_DIR and EST_DIR (e.g. ref/p232_001.wav with est/p232_001.wav);
a reference without an estimate, or an estimate without a reference, is an error naming them. Each pair must
have the same sample rate (16 kHz for the SUPERB tasks; PESQ accepts 16 kHz (wide band) or 8 kHz (narrow band))
and the same number of samples; files are mono. With --mixture, the unprocessed mixture of each file (same
name in MIX_DIR) is scored too and the improvement reported (SI-SDRi for sisdr).
SI-SDR is the original's (no mean removal); a silent reference is an error (SI-SDR is undefined for it).
PESQ and STOI need the `enhance` extra: pip install 's3prl[enhance]'.
examples:
  s3prl score sisdr clean/ enhanced/ --mixture noisy/
  s3prl score pesq clean/ enhanced/ --json"""

KINDS = {"sisdr": "SI-SDR (dB)", "pesq": "PESQ", "stoi": "STOI"}


def add_parsers(modes, common) -> None:
    for kind, title in KINDS.items():
        p = modes.add_parser(kind, parents=[common], help=f"{title} of audio files against reference audio",
                             description=f"{title} of each estimated file against the reference file of the same "
                                         "name, and the mean.",
                             epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("reference", help="folder of reference audio (clean speech / true sources)")
        p.add_argument("estimate", help="folder of estimated audio (enhanced / separated), same file names")
        p.add_argument("--mixture", help="folder of the unprocessed mixtures (same names): also report the input "
                                         "score and the improvement")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.set_defaults(run=cmd_score, kind=kind)


def audio_files(folder: str) -> dict[str, Path]:
    """``{relative path: path}`` of the audio files below ``folder``."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder (give a folder of audio files)")
    files = {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.suffix.lower() in AUDIO_SUFFIXES}
    if not files:
        raise ValueError(f"{folder}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
    return files


def read_mono(path: Path):
    """Samples (float64, 1-D) and rate of a mono file; several channels are an error."""
    import soundfile

    data, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    if data.shape[1] != 1:
        raise ValueError(f"{path}: {data.shape[1]} channels; the metrics take mono files (one source per file)")
    return data[:, 0], rate


def _names(ids: list[str]) -> str:
    return ", ".join(ids[:10]) + (f" ... ({len(ids)} in all)" if len(ids) > 10 else "")


def match(reference: dict, estimate: dict, what: str = "estimate") -> list[str]:
    missing, extra = sorted(set(reference) - set(estimate)), sorted(set(estimate) - set(reference))
    problems = ([f"{len(missing)} reference file(s) have no {what}: {_names(missing)}"] if missing else []) + \
               ([f"{len(extra)} {what} file(s) have no reference: {_names(extra)}"] if extra else [])
    if problems:
        raise ValueError("; ".join(problems))
    return sorted(reference)


def metric_function(kind: str):
    from ..metrics import enhancement, separation

    if kind == "sisdr":
        return lambda ref, est, rate, name: separation.si_sdr(ref, est, name)
    if kind == "pesq":
        return lambda ref, est, rate, name: enhancement.pesq(ref, est, rate, name=name)
    return lambda ref, est, rate, name: enhancement.stoi(ref, est, rate, name=name)


def load_pair(ref_path: Path, est_path: Path, name: str):
    ref, rate = read_mono(ref_path)
    est, est_rate = read_mono(est_path)
    if rate != est_rate:
        raise ValueError(f"{name}: the reference is at {rate} Hz but {est_path} at {est_rate} Hz: use one rate")
    if len(ref) != len(est):
        raise ValueError(f"{name}: the reference has {len(ref)} samples but {est_path} has {len(est)}: the files "
                         "must be the same length")
    return ref, est, rate


def score(kind: str, reference: str, estimate: str, mixture: str | None = None) -> dict:
    """Per file and mean of ``kind``; with ``mixture`` also the input score and the improvement."""
    refs, ests = audio_files(reference), audio_files(estimate)
    names = match(refs, ests)
    mixes = audio_files(mixture) if mixture else None
    if mixes is not None:
        match(refs, mixes, "mixture")
    fn = metric_function(kind)
    files = {}
    for name in names:
        ref, est, rate = load_pair(refs[name], ests[name], name)
        row = {"score": fn(ref, est, rate, name)}
        if mixes is not None:
            _, mix, _ = load_pair(refs[name], mixes[name], name)
            row["input"] = fn(ref, mix, rate, name)
            row["improvement"] = row["score"] - row["input"]
        files[name] = row
    mean = {k: sum(r[k] for r in files.values()) / len(files) for k in next(iter(files.values()))}
    return {"metric": kind, "files": len(files), "mean": mean, "per_file": files}


def cmd_score(args) -> int:
    result = score(args.kind, args.reference, args.estimate, args.mixture)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    title = KINDS[args.kind]
    has_input = "input" in result["mean"]
    print(f"{'file':<32} {title:>12}" + (f" {'input':>9} {'improvement':>12}" if has_input else ""))
    for name, row in [*result["per_file"].items(), (f"MEAN ({result['files']} files)", result["mean"])]:
        print(f"{name:<32} {row['score']:>12.4f}" + (f" {row['input']:>9.4f} {row['improvement']:>12.4f}"
                                                       if has_input else ""))
    return 0
