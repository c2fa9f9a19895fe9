"""``s3prl wav2vec2 MODE``: fairseq's ``examples/wav2vec`` recipe tools, same flags, same files, no fairseq.

    manifest   <- examples/wav2vec/wav2vec_manifest.py
    labels     <- examples/wav2vec/libri_labels.py (+ dict.ltr.txt as fairseq-preprocess --only-source writes it)
    featurize  <- examples/wav2vec/wav2vec_featurize.py
    tokenize   <- examples/wav2vec/vq-wav2vec_featurize.py
    train, infer: not implemented yet (fairseq's train.py / examples/speech_recognition/infer.py)
"""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
fairseq's wav2vec / vq-wav2vec / wav2vec 2.0 recipes (examples/wav2vec/README.md) without fairseq: the seed's
command lines run with `python examples/wav2vec/SCRIPT.py` replaced by `s3prl wav2vec2 MODE`, same flags, and
read / write fairseq's own files (manifests, label files, dictionaries, .h5context features, token files)."""

EPILOG = """\
examples (the README's data preparation):
  s3prl wav2vec2 manifest /path/to/waves --dest /manifest/path --ext flac --valid-percent 0.01
  s3prl wav2vec2 labels /manifest/path/train.tsv --output-dir /manifest/path --output-name train
  s3prl wav2vec2 labels /manifest/path/valid.tsv --output-dir /manifest/path --output-name valid
  s3prl wav2vec2 featurize --input /path/to/task/data --output /path/to/output --model wav2vec.pt --split train valid
  s3prl wav2vec2 tokenize --data-dir /manifest/path --output-dir /path/to/output --checkpoint vq-wav2vec.pt \\
      --split train valid --extension tsv"""

MANIFEST_EPILOG = """\
Writes DEST/train.tsv and, when --valid-percent > 0, DEST/valid.tsv: the real path of DIR, then
"<relative path>\\t<samples>" per file, each file drawn into valid.tsv with probability P (random.Random(SEED)),
exactly as fairseq's script. Hidden files and folders are skipped.
--order: the walk order decides the random split. `filesystem` (default) walks in the order the disk lists
folders, as fairseq's glob does, so the same command writes fairseq's bytes on the same disk; `sorted` lists
every folder by name, so the manifest is the same on every disk. They agree wherever the file system lists
names sorted.
example:
  s3prl wav2vec2 manifest LibriSpeech/train-clean-100 --dest manifest --ext flac --valid-percent 0.01 --seed 42"""

LABELS_EPILOG = """\
For every line "<spk>/<chapter>/<spk>-<chapter>-<utt>.flac\\t<samples>" of TSV, the transcript comes from
<root>/<spk>/<chapter>/<spk>-<chapter>.trans.txt (LibriSpeech). Writes OUTPUT_DIR/NAME.wrd (words) and
OUTPUT_DIR/NAME.ltr (letters, "|" after every word), one line per manifest line. With --output-name train it
also writes OUTPUT_DIR/dict.ltr.txt, the letter dictionary fine-tuning needs, with the symbols and counts
`fairseq-preprocess --only-source --trainpref train.ltr --thresholdsrc 0` writes (--dict PATH elsewhere,
--no-dict to skip). A missing transcript is an error naming the manifest line; nothing is written then.
example:
  s3prl wav2vec2 labels manifest/train.tsv --output-dir manifest --output-name train"""

FEATURIZE_EPILOG = """\
For each split, INPUT/<split>/*.EXT (sorted) -> OUTPUT/<split>/<name>.h5context (HDF5, wav2letter layout:
"features" = (T, C) float32 flattened, "info" = [100, T, C]), context vectors c of a wav2vec model (z with
--use-feat), and the split's other files (labels) copied beside them. Needs h5py: pip install s3prl[hdf5].
MODEL: a wav2vec or vq-wav2vec checkpoint (fairseq's file or s3prl-converted; a path, a URL or a released name:
wav2vec_large, vq_wav2vec_gumbel, vq_wav2vec_kmeans). 16 kHz mono audio.
example:
  s3prl wav2vec2 featurize --input /data/w2l --output /data/w2l_feats --model wav2vec_large.pt --split train valid"""

TOKENIZE_EPILOG = """\
For each split, the files of DATA_DIR/<split>.tsv (--extension tsv) or DATA_DIR/<split>/**/*.EXT -> one line of
OUTPUT_DIR/<split>.src each: the vq-wav2vec code ids of every frame ("g1-g2" per frame, space-separated), the
input of vq-wav2vec BERT training. --labels FILE (one label per input file) or --labels EXT (first line of
<audio>.EXT) -> <split>.lbl. CHECKPOINT: a vq-wav2vec model (Gumbel or k-means; fairseq's or s3prl-converted; a
path, a URL or a released name: vq_wav2vec_gumbel, vq_wav2vec_kmeans).
example:
  s3prl wav2vec2 tokenize --data-dir manifest --output-dir tokens --checkpoint vq-wav2vec.pt --split train valid \\
      --extension tsv"""

NOT_YET = """\
Not implemented yet: `s3prl wav2vec2 {mode}` will take the flags of fairseq's {script} (issue 13). Nothing is run."""


def add_parsers(sub, common) -> None:
    p = sub.add_parser("wav2vec2", parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="fairseq's wav2vec recipe tools: manifest, labels, featurize, tokenize",
                       description=DESCRIPTION, epilog=EPILOG)
    p.set_defaults(run=lambda args: (p.print_help(sys.stderr), 2)[1])
    modes = p.add_subparsers(dest="mode", metavar="MODE")

    def mode(name: str, help: str, epilog: str) -> argparse.ArgumentParser:
        return modes.add_parser(name, parents=[common], help=help, description=help + ".", epilog=epilog,
                                formatter_class=argparse.RawDescriptionHelpFormatter)

    m = mode("manifest", "audio manifests train.tsv / valid.tsv (replaces examples/wav2vec/wav2vec_manifest.py)",
             MANIFEST_EPILOG)
    m.add_argument("root", metavar="DIR", help="folder holding the audio files (searched recursively)")
    m.add_argument("--valid-percent", type=float, default=0.01, metavar="D",
                   help="fraction of the files for valid.tsv, between 0 and 1 (default 0.01)")
    m.add_argument("--dest", default=".", metavar="DIR", help="output folder (default: .)")
    m.add_argument("--ext", default="flac", metavar="EXT", help="audio extension to look for (default flac)")
    m.add_argument("--seed", type=int, default=42, metavar="N", help="random seed of the split (default 42)")
    m.add_argument("--path-must-contain", default=None, metavar="FRAG",
                   help="keep only files whose (resolved) path contains this substring")
    m.add_argument("--order", choices=("sorted", "filesystem"), default="filesystem",
                   help="folder walk order (see below; default filesystem, as fairseq)")
    m.set_defaults(run=cmd_manifest)

    lab = mode("labels", ".ltr / .wrd label files and dict.ltr.txt from LibriSpeech transcripts "
               "(replaces examples/wav2vec/libri_labels.py)", LABELS_EPILOG)
    lab.add_argument("tsv", help="a manifest written by `s3prl wav2vec2 manifest` (or fairseq)")
    lab.add_argument("--output-dir", required=True, help="folder of the label files")
    lab.add_argument("--output-name", required=True, help="NAME of NAME.ltr / NAME.wrd (the split: train, valid)")
    lab.add_argument("--dict", dest="dict_path", metavar="PATH",
                     help="write the letter dictionary of NAME.ltr here (default: OUTPUT_DIR/dict.ltr.txt for train)")
    lab.add_argument("--no-dict", action="store_true", help="do not write a letter dictionary")
    lab.set_defaults(run=cmd_labels)

    f = mode("featurize", "wav2vec features as .h5context files (replaces examples/wav2vec/wav2vec_featurize.py)",
             FEATURIZE_EPILOG)
    f.add_argument("--input", "-i", required=True, help="input folder (INPUT/<split>/*.EXT)")
    f.add_argument("--output", "-o", required=True, help="output folder")
    f.add_argument("--model", required=True, help="wav2vec / vq-wav2vec checkpoint (file, URL or released name)")
    f.add_argument("--split", required=True, nargs="+", help="split folders to featurize")
    f.add_argument("--ext", default="wav", help="audio extension (default wav)")
    f.add_argument("--no-copy-labels", action="store_true", help="do not copy the split's other (label) files")
    f.add_argument("--use-feat", action="store_true", help="write the feature encoder output z instead of c")
    f.add_argument("--gpu", type=int, default=None, help="GPU index (default: GPU 0 if there is one, else the CPU)")
    f.add_argument("--device", help="cpu, cuda, cuda:1 (overrides --gpu)")
    f.add_argument("--quiet", action="store_true", help="no progress output")
    f.set_defaults(run=cmd_featurize)

    t = mode("tokenize", "vq-wav2vec token strings (replaces examples/wav2vec/vq-wav2vec_featurize.py)",
             TOKENIZE_EPILOG)
    t.add_argument("--checkpoint", required=True, help="vq-wav2vec checkpoint (file, URL or released name)")
    t.add_argument("--data-parallel", action="store_true", help="accepted for compatibility (one device is used)")
    t.add_argument("--output-dir", required=True, help="output folder")
    t.add_argument("--data-dir", required=True, help="manifest folder (--extension tsv) or audio folder")
    t.add_argument("--splits", "--split", dest="splits", required=True, nargs="+", help="splits to tokenize")
    t.add_argument("--extension", required=True, help="tsv (read <split>.tsv manifests) or an audio extension")
    t.add_argument("--labels", help="labels file (one line per input file) or label extension")
    t.add_argument("--shard", type=int, default=None, help="this shard's index (with --num-shards)")
    t.add_argument("--num-shards", type=int, default=None, help="number of shards")
    t.add_argument("--max-size", type=int, default=1300000, help="longest piece quantized at once, in samples")
    t.add_argument("--log-format", choices=["none", "simple", "tqdm"], help="progress output (none: quiet)")
    t.add_argument("--gpu", type=int, default=None, help="GPU index (default: GPU 0 if there is one, else the CPU)")
    t.add_argument("--device", help="cpu, cuda, cuda:1 (overrides --gpu)")
    t.set_defaults(run=cmd_tokenize)

    modes._parser_class = PassThroughParser  # fairseq's flags reach the "not implemented" message unparsed
    for name, script in [("train", "train.py / fairseq-hydra-train (pre-training and CTC fine-tuning)"),
                         ("infer", "examples/speech_recognition/infer.py (viterbi / KenLM decoding)")]:
        n = mode(name, f"NOT IMPLEMENTED YET: will replace fairseq's {script}",
                 NOT_YET.format(mode=name, script=script))
        n.set_defaults(run=lambda args, name=name, script=script: not_implemented(name, script))
    modes._parser_class = argparse.ArgumentParser


class PassThroughParser(argparse.ArgumentParser):
    """Reads only --help / --debug and keeps every other word in ``fairseq_args`` (for modes not built yet)."""

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        namespace, _ = super().parse_known_args([a for a in args if a in ("-h", "--help", "--debug")], namespace)
        namespace.fairseq_args = [a for a in args if a not in ("--debug",)]
        return namespace, []


def not_implemented(name: str, script: str) -> int:
    raise NotImplementedError(NOT_YET.format(mode=name, script=script))


def _device(args) -> str:
    if args.device:
        return args.device
    import torch

    if torch.cuda.is_available():
        return f"cuda:{args.gpu or 0}"
    if args.gpu is not None:
        print(f"note: --gpu {args.gpu} ignored: no GPU is available, running on the CPU", file=sys.stderr)
    return "cpu"


def cmd_manifest(args) -> int:
    from ..wav2vec2.manifest import write_manifest

    splits = write_manifest(args.root, args.dest, args.ext, args.valid_percent, args.seed, args.path_must_contain,
                            args.order)
    parts = [f"{name}.tsv ({len(rows)} files, {_duration(sum(n for _, n in rows) / 16000)} at 16 kHz)"
             for name, rows in splits.items()]
    print(f"wrote {args.dest}: " + ", ".join(parts))
    return 0


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 360 else f"{seconds:.1f} s"


def cmd_labels(args) -> int:
    import os

    from ..wav2vec2.labels import write_dictionary, write_labels

    texts = write_labels(args.tsv, args.output_dir, args.output_name)
    base = os.path.join(args.output_dir, args.output_name)
    print(f"wrote {base}.ltr and {base}.wrd ({len(texts)} lines)")
    dict_path = args.dict_path or (os.path.join(args.output_dir, "dict.ltr.txt") if args.output_name == "train"
                                   else None)
    if dict_path and not args.no_dict:
        rows = write_dictionary([base + ".ltr"], dict_path)
        print(f"wrote {dict_path} ({sum(1 for s, n in rows if n)} symbols)")
    return 0


def _progress(quiet: bool):
    if quiet:
        return None
    return lambda path: print(path, file=sys.stderr)


def cmd_featurize(args) -> int:
    from ..wav2vec2.featurize import featurize

    done = featurize(args.input, args.output, args.model, args.split, args.ext, args.use_feat,
                     not args.no_copy_labels, _device(args), _progress(args.quiet))
    print(f"wrote {args.output}: " + ", ".join(f"{s}/ ({n} .h5context files)" for s, n in done.items()))
    return 0


def cmd_tokenize(args) -> int:
    from ..wav2vec2.featurize import tokenize

    if args.data_parallel:
        print("note: --data-parallel ignored: one device is used", file=sys.stderr)
    done = tokenize(args.data_dir, args.output_dir, args.checkpoint, args.splits, args.extension, args.labels,
                    args.shard, args.num_shards, args.max_size, _device(args), _progress(args.log_format == "none"))
    print(f"wrote {args.output_dir}: " + ", ".join(f"{s}.src ({n} lines)" for s, n in done.items()))
    return 0
