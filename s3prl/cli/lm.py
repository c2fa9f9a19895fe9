"""``s3prl lm build TEXT... -o LM.arpa [--order 3] [--lexicon LEXICON]``: a word n-gram for the ASR LM decoder."""

from __future__ import annotations

import argparse

EPILOG = """\
TEXT files hold one sentence per line; --with-ids drops each line's first field (LibriSpeech `*.trans.txt`,
Kaldi `text`, the tasks' `*-ref.ark`). Words are upper-cased unless --keep-case. The model is an
absolute-discounting back-off n-gram (every conditional distribution sums to 1 over the words, </s> and <unk>);
--lexicon also writes the spelling lexicon (`WORD<TAB>W O R D |`) the ASR decoder needs.
examples:
  s3prl lm build librispeech-lm-norm.txt -o 3-gram.arpa --order 3 --lexicon lexicon.lst
  s3prl downstream evaluate -e result/downstream/asr_hubert -t test \\
      -o "task.decoder={kenlm_model: 3-gram.arpa, lexicon: lexicon.lst}" """


def add_parsers(sub, common) -> None:
    p = sub.add_parser("lm", parents=[common], help="build word n-gram language models (ARPA) for ASR decoding",
                       description="Language models for the ASR task's lexicon + KenLM decoder.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])
    modes = p.add_subparsers(dest="mode", metavar="MODE")
    b = modes.add_parser("build", parents=[common], help="count n-grams of text files and write an ARPA model",
                         description="Write an ARPA word n-gram model of TEXT files.", epilog=EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("text", nargs="+", help="text files, one sentence per line")
    b.add_argument("-o", "--output", required=True, help="the ARPA file to write")
    b.add_argument("--order", type=int, default=3, help="n-gram order (>= 2, default 3)")
    b.add_argument("--discount", type=float, default=0.5, help="absolute discount in (0, 1) (default 0.5)")
    b.add_argument("--with-ids", dest="with_ids", action="store_true", help="drop the first field of every line")
    b.add_argument("--keep-case", dest="keep_case", action="store_true", help="do not upper-case the words")
    b.add_argument("--lexicon", help="also write the spelling lexicon of the words here")
    b.set_defaults(run=cmd_build)


def read_sentences(paths: list[str], with_ids: bool, keep_case: bool) -> list[list[str]]:
    sentences = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                words = line.split()[1:] if with_ids else line.split()
                if words:
                    sentences.append(words if keep_case else [w.upper() for w in words])
    return sentences


def cmd_build(args) -> int:
    from ..decode.arpa import NgramModel, spelling_lexicon

    sentences = read_sentences(args.text, args.with_ids, args.keep_case)
    if not sentences:
        raise ValueError(f"no words in {', '.join(args.text)}")
    model = NgramModel(sentences, args.order, args.discount)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(model.arpa())
    if args.lexicon:
        with open(args.lexicon, "w", encoding="utf-8") as f:
            f.write(spelling_lexicon(model.vocab))
    sizes = ", ".join(f"{k}-grams {len(model.counts[k]) + (k == 1)}" for k in range(1, args.order + 1))
    print(f"wrote {args.output}: {len(sentences)} sentences, {len(model.vocab) - 2} words; {sizes}"
          + (f"; lexicon {args.lexicon}" if args.lexicon else ""))
    return 0
