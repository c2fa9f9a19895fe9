"""``s3prl wav2vec2 MODE``: fairseq's ``examples/wav2vec`` recipe tools, same flags, same files, no fairseq.

    manifest   <- examples/wav2vec/wav2vec_manifest.py
    labels     <- examples/wav2vec/libri_labels.py (+ dict.ltr.txt as fairseq-preprocess --only-source writes it)
    featurize  <- examples/wav2vec/wav2vec_featurize.py
    tokenize   <- examples/wav2vec/vq-wav2vec_featurize.py
    infer      <- examples/speech_recognition/infer.py (viterbi / KenLM + lexicon decoding, WER, sclite files)
    train      <- fairseq-train --task audio_pretraining --arch wav2vec2 (pre-training) or
                  --task audio_finetuning --arch wav2vec_ctc (CTC fine-tuning)
"""

from __future__ import annotations

import argparse
import math
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

def add_parsers(sub, common) -> None:
    p = sub.add_parser("wav2vec2", parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="fairseq's wav2vec recipe tools: manifest, labels, train, infer, featurize, tokenize",
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

    add_infer_parser(mode)

    add_train_parser(mode)


def add_train_parser(mode) -> None:
    from ..wav2vec2.train import TRAIN_EPILOG, add_arguments
    from ..wav2vec2.train_finetune import FINETUNE_EPILOG

    tr = mode("train", "wav2vec 2.0 pre-training (replaces fairseq-train --task audio_pretraining --arch wav2vec2 "
              "--criterion wav2vec) and CTC fine-tuning (--task audio_finetuning --arch wav2vec_ctc --criterion ctc); "
              "writes fairseq-format checkpoints", TRAIN_EPILOG + "\n\n" + FINETUNE_EPILOG)
    add_arguments(tr)
    tr.set_defaults(run=cmd_train)


def cmd_train(args) -> int:
    from ..wav2vec2.train import run

    return run(args)


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


# ---------------------------------------------------------------------------------------------
# infer (examples/speech_recognition/infer.py)
# ---------------------------------------------------------------------------------------------

INFER_EPILOG = """\
Decodes DATA/SUBSET.tsv with a fine-tuned CTC model and scores it against DATA/SUBSET.LABELS (one line per
manifest line, as `s3prl wav2vec2 labels` writes them). Output symbols: the checkpoint's own dictionary (fairseq
0.12 files, HuggingFace vocab.json), else DATA/dict.LABELS.txt. Prints `WER: <value>`; with --results-path R
writes R/hypo.word-, hypo.units-, ref.word-, ref.units-<model file>-<SUBSET>.txt ("TEXT (None-<index>)" lines,
sclite's trn format), as fairseq's script. --path: a fairseq fine-tuned checkpoint (the released *_960h.pt,
fairseq-trained or ours) or a HuggingFace Wav2Vec2ForCTC folder. KenLM decoding needs flashlight-text
(pip install 's3prl[lm]'); --lm-model takes an ARPA or KenLM binary file (`s3prl lm build` writes both the ARPA
and the lexicon). fairseq generation flags this command does not need are accepted and ignored with a notice.
example (the seed's command):
  s3prl wav2vec2 infer /path/to/manifest --task audio_finetuning --nbest 1 --path /path/to/model \\
      --gen-subset dev_other --results-path /path --w2l-decoder kenlm --lm-model /path/to/kenlm.bin \\
      --lm-weight 2 --word-score -1 --sil-weight 0 --criterion ctc --labels ltr --max-tokens 4000000 \\
      --post-process letter"""

# fairseq flags that do not change what this command computes: (flag, takes a value)
IGNORED_FLAGS = [("--nbest", True), ("--fp16", False), ("--num-workers", True), ("--seed", True),
                 ("--model-overrides", True), ("--skip-invalid-size-inputs-valid-test", False),
                 ("--required-batch-size-multiple", True), ("--log-format", True), ("--log-interval", True),
                 ("--checkpoint-suffix", True), ("--checkpoint-shard-count", True), ("--max-len-a", True),
                 ("--max-len-b", True), ("--min-len", True), ("--lenpen", True), ("--unkpen", True),
                 ("--remove-bpe", True), ("--user-dir", True), ("--dataset-impl", True), ("--no-progress-bar", False),
                 ("--rnnt_decoding_type", True), ("--rnnt_len_penalty", True), ("--data-buffer-size", True)]


def add_infer_parser(mode) -> None:
    i = mode("infer", "decode and score a manifest with a fine-tuned wav2vec 2.0 CTC model (replaces fairseq's "
             "examples/speech_recognition/infer.py)", INFER_EPILOG)
    i.add_argument("data", metavar="DATA", help="folder of SUBSET.tsv, SUBSET.LABELS (and dict.LABELS.txt)")
    i.add_argument("--path", required=True, help="fine-tuned checkpoint file or HuggingFace Wav2Vec2ForCTC folder")
    i.add_argument("--task", default="audio_finetuning", choices=("audio_finetuning", "audio_pretraining"),
                   help="fairseq task (audio_finetuning)")
    i.add_argument("--gen-subset", default="test", help="manifest name: DATA/SUBSET.tsv (default test)")
    i.add_argument("--labels", default="ltr", help="label extension (default ltr)")
    i.add_argument("--results-path", help="write the hypothesis / reference files here")
    i.add_argument("--criterion", default="ctc", help="ctc (the only one supported)")
    i.add_argument("--post-process", "--remove-bpe-symbol", dest="post_process", default="letter",
                   help="symbols -> words: letter (default), none, silence, wordpiece, sentencepiece, _EOW, "
                        "subword_nmt")
    i.add_argument("--w2l-decoder", default=None, choices=("viterbi", "kenlm", "fairseqlm"),
                   help="viterbi (best path) or kenlm (lexicon + KenLM beam search); default viterbi")
    i.add_argument("--lexicon", help="lexicon for kenlm: 'WORD<TAB>W O R D |' lines")
    i.add_argument("--kenlm-model", "--lm-model", dest="kenlm_model", help="KenLM model (ARPA or binary)")
    i.add_argument("--lm-weight", "--lm_weight", type=float, default=0.2, help="LM weight (default 0.2)")
    i.add_argument("--word-score", type=float, default=1.0, help="score added per word (default 1.0)")
    i.add_argument("--sil-weight", type=float, default=0.0, help="score of the word boundary (default 0)")
    i.add_argument("--unk-weight", type=float, default=-math.inf, help="score of an unknown word (default -inf)")
    i.add_argument("--beam", type=int, default=5, help="beam size (default 5)")
    i.add_argument("--beam-threshold", type=float, default=25.0, help="beam pruning threshold (default 25)")
    i.add_argument("--beam-size-token", type=float, default=100, help="tokens considered per frame (default 100)")
    i.add_argument("--unit-lm", action="store_true", help="not supported (lexicon-free unit LM decoding)")
    i.add_argument("--max-tokens", type=int, default=None, help="samples per batch (default 4000000)")
    i.add_argument("--batch-size", "--max-sentences", dest="batch_size", type=int, default=None,
                   help="files per batch")
    i.add_argument("--num-shards", type=int, default=1, help="only 1 is supported")
    i.add_argument("--shard-id", type=int, default=0, help="only 0 is supported")
    i.add_argument("--dump-emissions", help="save the log-probabilities (numpy object array, one (T, V) array per "
                   "manifest line) and exit")
    i.add_argument("--quiet", action="store_true", help="do not print each hypothesis and reference")
    i.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available, unless --cpu)")
    i.add_argument("--cpu", action="store_true", help="run on the CPU")
    for flag, takes_value in IGNORED_FLAGS:
        if takes_value:
            i.add_argument(flag, dest="ignored_" + flag.strip("-").replace("-", "_"), help=argparse.SUPPRESS)
        else:
            i.add_argument(flag, dest="ignored_" + flag.strip("-").replace("-", "_"), action="store_true",
                           help=argparse.SUPPRESS)
    i.set_defaults(run=cmd_infer)


def _infer_checks(args) -> None:
    if args.criterion != "ctc":
        raise ValueError(f"--criterion {args.criterion}: only ctc models are supported (asg_loss is not, as in "
                         "fairseq's infer.py)")
    if args.unit_lm:
        raise ValueError("--unit-lm (lexicon-free decoding with a unit LM) is not supported: pass --lexicon")
    if args.num_shards != 1 or args.shard_id != 0:
        raise ValueError("--num-shards/--shard-id: sharded decoding is not supported (decode the whole subset, or "
                         "split the manifest)")
    ignored = [flag for flag, _ in IGNORED_FLAGS
               if getattr(args, "ignored_" + flag.strip("-").replace("-", "_")) not in (None, False)
               and not (flag == "--nbest" and args.ignored_nbest == "1")]  # only the best hypothesis is written
    if ignored:
        print(f"note: ignored (no effect here): {' '.join(ignored)}", file=sys.stderr)


def cmd_infer(args) -> int:
    from ..wav2vec2.infer import DecoderOptions, InferOptions, emissions, infer

    _infer_checks(args)
    if args.w2l_decoder is None:
        print("note: no --w2l-decoder given: decoding with viterbi", file=sys.stderr)
    device = args.device or ("cpu" if args.cpu else _device(argparse.Namespace(device=None, gpu=None)))
    decoder = DecoderOptions(args.w2l_decoder or "viterbi", args.kenlm_model, args.lexicon, args.lm_weight,
                             args.word_score, args.sil_weight, args.unk_weight, args.beam, args.beam_threshold,
                             int(args.beam_size_token))
    opts = InferOptions(args.data, args.path, args.gen_subset, args.labels, args.results_path, args.post_process,
                        args.max_tokens if args.max_tokens or args.batch_size else 4000000, args.batch_size,
                        device, args.quiet)
    if args.dump_emissions:
        return _dump_emissions(opts, args.dump_emissions, emissions)
    out = infer(opts, decoder)
    if out["wer"] is not None:
        print(f"WER: {out['wer']}")
    print(f"decoded {out['files']} files of {args.data}/{args.gen_subset}.tsv ({args.w2l_decoder or 'viterbi'}): "
          f"{out['errors']} word errors / {out['words']} reference words"
          + (f"; wrote {args.results_path}" if args.results_path else ""), file=sys.stderr)
    return 0


def _dump_emissions(opts, out_path: str, emissions) -> int:
    """fairseq's --dump-emissions: log-softmax of the emissions, per manifest line, as a numpy object array."""
    import os

    import numpy as np
    import torch

    from ..wav2vec2.ctc_model import load_ctc
    from ..wav2vec2.featurize import read_audio
    from ..wav2vec2.manifest import read_manifest

    manifest = read_manifest(os.path.join(opts.data, f"{opts.gen_subset}.tsv"))
    model = load_ctc(opts.path).to(opts.device)
    arrays = np.empty(len(manifest.entries), dtype=object)
    for i, (rel, _) in enumerate(manifest.entries):
        (em,) = emissions(model, [read_audio(os.path.join(manifest.root, rel))], opts.device)
        arrays[i] = torch.log_softmax(em, dim=-1).numpy()
    np.save(out_path, arrays)
    print(f"saved {len(arrays)} emissions to {out_path}")
    return 0
