"""``s3prl transcribe -k CKPT AUDIO...``: the text of audio files with a fine-tuned wav2vec 2.0 CTC model."""

from __future__ import annotations

import argparse
import math
import sys

EPILOG = """\
CKPT: a fine-tuned CTC model: fairseq's file (the released *_960h.pt, one trained with fairseq or with
`s3prl wav2vec2 train`) or a HuggingFace Wav2Vec2ForCTC folder. The output symbols come from the checkpoint
(fairseq 0.12 files, vocab.json), else --dict (default: dict.ltr.txt next to CKPT). Audio of any rate is
resampled to 16 kHz, channels averaged. Prints "<file><TAB><text>" per file. --lm-model + --lexicon decode with
a KenLM (pip install 's3prl[lm]'; `s3prl lm build` writes both).
examples:
  s3prl transcribe -k wav2vec_small_960h.pt --dict dict.ltr.txt a.flac b.wav
  s3prl transcribe -k facebook-wav2vec2-base-960h/ a.flac --lm-model 4-gram.arpa --lexicon lexicon.lst"""


def add_parsers(sub, common) -> None:
    p = sub.add_parser("transcribe", parents=[common], help="speech to text with a fine-tuned wav2vec 2.0 CTC model",
                       description="Transcribe audio files with a fine-tuned wav2vec 2.0 CTC model.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="AUDIO", help="audio files")
    p.add_argument("-k", "--ckpt", required=True, help="fine-tuned checkpoint file or HuggingFace folder")
    p.add_argument("--dict", dest="dict_path", help="dict.ltr.txt (when the checkpoint has no symbols)")
    p.add_argument("--lm-model", "--kenlm-model", dest="kenlm_model", help="KenLM model: decode with it")
    p.add_argument("--lexicon", help="lexicon ('WORD<TAB>W O R D |' lines), with --lm-model")
    p.add_argument("--lm-weight", type=float, default=2.0, help="LM weight (default 2, the seed's)")
    p.add_argument("--word-score", type=float, default=-1.0, help="score per word (default -1, the seed's)")
    p.add_argument("--sil-weight", type=float, default=0.0, help="score of the word boundary (default 0)")
    p.add_argument("--beam", type=int, default=50, help="beam size (default 50)")
    p.add_argument("--beam-threshold", type=float, default=25.0, help="beam pruning threshold (default 25)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.set_defaults(run=cmd_transcribe)


def cmd_transcribe(args) -> int:
    from ..wav2vec2.infer import DecoderOptions, transcribe

    if bool(args.kenlm_model) != bool(args.lexicon):
        raise ValueError("--lm-model and --lexicon go together (the KenLM decoder needs both)")
    decoder = DecoderOptions("kenlm" if args.kenlm_model else "viterbi", args.kenlm_model, args.lexicon,
                             args.lm_weight, args.word_score, args.sil_weight, -math.inf, args.beam,
                             args.beam_threshold, None)
    texts = transcribe(args.ckpt, args.files, decoder, args.dict_path, args.device)
    for file, text in zip(args.files, texts):
        print(f"{file}\t{text}")
    sys.stdout.flush()
    return 0
