"""``s3prl extract``: hidden states of audio files to disk (see ``s3prl.extract`` for the formats)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..extract import FORMATS, MANIFEST, SAMPLE_RATE
from ..tempfiles import remove_stale_temporaries

DESCRIPTION = f"""\
Run an upstream on audio files or folders (searched recursively) and write each file's hidden states to
OUTDIR, with {MANIFEST} (utt_id, source, output, frames, layers). An utterance's id is its path relative
to the inputs' common folder, without the suffix. Files already extracted are skipped, so an interrupted
run resumes where it stopped; unreadable files are skipped and listed at the end (exit status 1).
Without INPUT, a demo clip is generated and extracted with the default upstream (fbank).

formats (--format):
  pt     <id>.pt per file: {{'hidden_states': [(T, D) per layer], 'layers', 'upstream', ...}}  (torch.load)
  npy    <id>.npy per file: one (layers, T, D) array (layers of one size and frame rate)   (numpy.load)
  npz    features.npz: key '<id>/layer<l>' -> (T, D)                                      (numpy.load)
  hdf5   features.h5: dataset '/<id>/layer<l>' (T, D)                           (h5py; extra: hdf5)
  kaldi  layer<l>.ark + layer<l>.scp: one float32 matrix per file   (kaldiio.load_scp; extra: kaldi)
"""

EPILOG = """\
examples:
  s3prl extract -u hubert -k hubert_base_ls960.pt -o feats/ audio_dir/
  s3prl extract -u wavlm_base_plus -l 6,12 --format hdf5 --fp16 -o feats/ a.wav b.flac
  s3prl extract -u fbank --format kaldi -o feats/ corpus/     # then: kaldiio.load_scp('feats/layer0.scp')
"""


def add_parsers(sub, common) -> None:
    p = sub.add_parser("extract", parents=[common], help="extract hidden states of audio files to disk",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="audio files or folders (searched recursively)")
    p.add_argument("-u", "--upstream", default="fbank", help="registry name (s3prl list; default: fbank)")
    p.add_argument("-k", "--ckpt", help="checkpoint file, folder or URL (overrides the entry's default)")
    p.add_argument("--extra-conf", default="{}",
                   help='JSON options of the entry (s3prl info NAME lists them), e.g. \'{"feature_selection": "fairseq_layers"}\'')
    p.add_argument("-o", "--outdir", default="extracted", help="output folder (default: ./extracted)")
    p.add_argument("-f", "--format", default="pt", choices=FORMATS, help="output format (default: pt)")
    p.add_argument("-l", "--layers", help="comma-separated hidden-state indices to keep, negative from the end (default: all)")
    p.add_argument("--normalize", action="store_true", help="layer-normalise each hidden state")
    p.add_argument("--fp16", action="store_true", help="store half-precision values (half the disk space; not for kaldi)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--batch-seconds", type=float, default=60.0,
                   help="audio seconds per batch; files are sorted by length and batched by duration (default: 60)")
    p.add_argument("--overwrite", action="store_true", help="extract again files whose output exists")
    p.add_argument("--strict", action="store_true", help="stop at the first file that fails (default: skip and list it)")
    p.set_defaults(run=cmd_extract)


def parse_layers(spec: str | None, num_layers: int) -> list[int]:
    if spec is None:
        return list(range(num_layers))
    try:
        layers = [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--layers must be comma-separated integers, got {spec!r}") from None
    if not layers:
        raise ValueError(f"--layers {spec!r} names no layer")
    bad = [l for l in layers if not -num_layers <= l < num_layers]
    if bad:
        raise ValueError(f"--layers {bad} out of range: this upstream has {num_layers} hidden states (0..{num_layers - 1})")
    return list(dict.fromkeys(l % num_layers for l in layers))


def check_options(args) -> dict:
    import math

    if not math.isfinite(args.batch_seconds) or args.batch_seconds <= 0:
        raise ValueError(f"--batch-seconds must be a number of seconds > 0, got {args.batch_seconds}")
    try:
        extra_conf = json.loads(args.extra_conf)
    except json.JSONDecodeError as err:
        raise ValueError(f"--extra-conf is not valid JSON ({err}): {args.extra_conf!r}") from None
    if not isinstance(extra_conf, dict):
        raise ValueError(f"--extra-conf must be a JSON object such as '{{\"key\": value}}', got {args.extra_conf!r}")
    if args.format == "kaldi" and args.fp16:
        raise ValueError("--format kaldi stores float32 matrices (Kaldi has no float16): drop --fp16")
    return extra_conf


def cmd_extract(args) -> int:
    from .. import extract as ex
    from ..progress import progress

    extra_conf = check_options(args)
    outdir = Path(args.outdir)
    inputs = args.inputs
    if not inputs:
        clip = make_demo_clip(outdir / "demo_input" / "demo.wav")
        print(f"no INPUT given: generated a 3 s demo clip at {clip}")
        inputs = [str(clip.parent)]
    items = ex.find_audio(inputs)
    for stale in remove_stale_temporaries(outdir):
        print(f"removed {stale} (left by a killed run)")

    from ..nn import S3PRLUpstream

    upstream = S3PRLUpstream(args.upstream, path_or_url=args.ckpt, extra_conf=extra_conf,
                             normalize=args.normalize).to(args.device).eval()
    layers = parse_layers(args.layers, upstream.num_layers)
    if args.format == "npy" and len({(upstream.hidden_sizes[l], upstream.downsample_rates[l]) for l in layers}) > 1:
        raise ValueError("--format npy stacks the layers into one array, but the selected layers differ in size or "
                         "frame rate: use --format npz, hdf5 or pt, or select layers of one size with -l")
    if args.overwrite:
        ex.start_over(args.format, outdir)
    writer = ex.make_writer(args.format, outdir, args.fp16, layers)
    try:
        return run(args, items, upstream, writer, layers, outdir, progress)
    finally:
        writer.close()


def run(args, items, upstream, writer, layers, outdir, progress) -> int:
    from .. import extract as ex

    manifest = ex.Manifest(outdir / ex.MANIFEST)
    manifest.load()
    done = set() if args.overwrite else writer.done()
    todo = [item for item in items if item.uid not in done]
    print(f"{len(items)} audio files, {len(items) - len(todo)} already extracted, {len(todo)} to do "
          f"({args.format} in {outdir})")
    ex.read_headers(todo)
    notice = ex.conversion_notice(todo)
    if notice:
        print(notice)
    unreadable = {i.uid: f"{i.path}: {i.error}" for i in todo if i.error}
    if unreadable and args.strict:
        raise RuntimeError(next(iter(unreadable.values())))
    todo = [i for i in todo if not i.error]
    print(f"upstream {args.upstream}: {upstream.num_layers} hidden states of sizes {sorted(set(upstream.hidden_sizes))}, "
          f"keeping {len(layers)}")
    meta = {"upstream": args.upstream, "downsample_rates": [upstream.downsample_rates[l] for l in layers],
            "sample_rate": SAMPLE_RATE}
    with progress(total=len(todo), desc="extracting", unit="file") as bar:
        outcome = ex.extract_items(todo, upstream, writer, manifest, layers, meta, args.batch_seconds,
                                   args.device, args.strict, bar)
    writer.close()
    manifest.finish()
    outcome.failed = {**unreadable, **outcome.failed}
    rate = outcome.seconds / max(outcome.elapsed, 1e-9)
    first = f", first output after {outcome.first_output_after:.1f} s" if outcome.first_output_after is not None else ""
    print(f"wrote {outcome.written} files to {outdir} ({outcome.seconds:.1f} s of audio in {outcome.elapsed:.1f} s, "
          f"{rate:.1f}x real time{first}); manifest: {outdir / ex.MANIFEST}")
    if outcome.failed:
        failed_list = outdir / "failed.tsv"
        failed_list.write_text("".join(f"{uid}\t{why}\n" for uid, why in sorted(outcome.failed.items())))
        print(f"{len(outcome.failed)} file(s) failed and were skipped (listed in {failed_list}):", file=sys.stderr)
        for why in list(outcome.failed.values())[:20]:
            print(f"  {why}", file=sys.stderr)
        return 1
    return 0


def make_demo_clip(path: Path, seconds: float = 3.0) -> Path:
    """Write a speech-like test signal (gliding harmonics with syllable envelopes), made here, not fetched."""
    import numpy as np
    import soundfile as sf

    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)  # a slowly gliding pitch
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 2  # three syllables a second
    noise = np.random.default_rng(0).normal(0, 0.01, t.shape)
    wav = (0.3 * voice * envelope / np.abs(voice).max() + noise).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav, SAMPLE_RATE)
    return path
