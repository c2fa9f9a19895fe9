"""Symbol tables of the CTC tasks, in the original toolkit's two layouts.

- :class:`CharDictionary` (ASR): a fairseq-style dictionary. Indices 0-3 are ``<s>`` (the CTC blank),
  ``<pad>``, ``</s>`` (end of sentence, appended to every target) and ``<unk>``; then one symbol per line of a
  ``SYMBOL COUNT`` file. A transcript is spelled as upper-case characters with ``|`` ending every word
  (``"HI YOU"`` -> ``H I | Y O U |``), as the original ``downstream/asr``.
- :class:`TokenVocabulary` (PR, SF, out-of-domain ASR): ``<pad>`` (0, the CTC blank), ``<eos>`` (1, appended to
  every target), ``<unk>`` (2), then the symbols of a one-per-line vocabulary file, as the original
  ``downstream/ctc`` encoders. Tokens are characters (``mode="character"``) or space-separated words
  (``mode="word"``: phonemes).
- :class:`CharSlotVocabulary` (SF): a character vocabulary followed by ``B-<slot>`` / ``E-<slot>`` markers.

Unknown symbols raise :class:`UnknownSymbolError` naming them (the original silently mapped them to
``<unk>`` or, for ASR, grew the dictionary after the model was built).
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

# the order of the original downstream/asr/char.dict (most frequent first): output row i of a trained head
LIBRISPEECH_CHARS = ("|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L", "U", "M", "C", "W", "F", "G", "Y",
                     "P", "B", "V", "K", "'", "X", "J", "Q", "Z")
# the original downstream/ctc/vocab/character.txt: space, A-Z, apostrophe
CTC_CHARS = (" ", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "'")


class UnknownSymbolError(ValueError):
    """A transcript holds symbols the vocabulary does not have (the message names them)."""


def _unknown(symbols: Iterable[str], known, where: str) -> None:
    missing = sorted({s for s in symbols if s not in known})
    if missing:
        shown = ", ".join(repr(s) for s in missing[:20]) + (" ..." if len(missing) > 20 else "")
        raise UnknownSymbolError(f"{where}: symbol(s) {shown} not in the vocabulary ({len(known)} symbols)")


class CharDictionary:
    """fairseq-style dictionary: ``<s> <pad> </s> <unk>`` then the file's symbols (see module docstring)."""

    SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")

    def __init__(self, symbols: Sequence[str]):
        self.symbols = list(self.SPECIALS) + [s for s in symbols]
        self.indices = {s: i for i, s in enumerate(self.symbols)}
        if len(self.indices) != len(self.symbols):
            raise ValueError("the dictionary lists a symbol twice")

    bos, pad, eos, unk = 0, 1, 2, 3
    blank = 0  # the original ASR's CTC blank is the dictionary's bos

    @classmethod
    def default(cls) -> "CharDictionary":
        """The LibriSpeech character dictionary of the original ASR task (32 symbols)."""
        return cls(LIBRISPEECH_CHARS)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CharDictionary":
        """Read a ``SYMBOL COUNT`` file (fairseq ``dict.txt``); the counts are ignored."""
        symbols = []
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                symbol, _, count = line.rstrip("\n").rpartition(" ")
                if not symbol or not count.lstrip("-").isdigit():
                    raise ValueError(f"{path}:{number}: expected 'SYMBOL COUNT', got {line.strip()!r}")
                symbols.append(symbol)
        return cls(symbols)

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(f"{s} 1\n" for s in self.symbols[len(self.SPECIALS):])

    def __len__(self) -> int:
        return len(self.symbols)

    @staticmethod
    def spell(text: str) -> list[str]:
        """``"hi you"`` -> ``["H", "I", "|", "Y", "O", "U", "|"]`` (upper case, ``|`` after every word)."""
        return [c for word in text.upper().split() for c in (*word, "|")]

    def encode(self, text: str, where: str = "transcript") -> list[int]:
        """Token ids of ``text`` followed by ``</s>``; unknown characters raise."""
        tokens = self.spell(text)
        _unknown(tokens, self.indices, where)
        return [self.indices[t] for t in tokens] + [self.eos]

    def string(self, ids: Iterable[int]) -> str:
        """Space-separated symbols, ``<s>`` and ``</s>`` left out (fairseq ``Dictionary.string``)."""
        return " ".join(self.symbols[i] if i < len(self.symbols) else "<unk>" for i in map(int, ids)
                        if i not in (self.bos, self.eos))

    @staticmethod
    def to_words(tokens: str) -> str:
        """``"H I | Y O U |"`` -> ``"HI YOU"``."""
        return tokens.replace(" ", "").replace("|", " ").strip()

    def decode(self, ids: Iterable[int]) -> str:
        """The words of ``ids`` (``<s>`` and ``</s>`` dropped; a ``<pad>`` shows, as in the original's output)."""
        return self.to_words(self.string(ids))


class TokenVocabulary:
    """``<pad> <eos> <unk>`` then ``symbols``; ``mode`` ``"character"`` or ``"word"`` (see module docstring)."""

    SPECIALS = ("<pad>", "<eos>", "<unk>")
    pad, eos, unk = 0, 1, 2
    blank = 0

    def __init__(self, symbols: Sequence[str], mode: str = "character"):
        if mode not in ("character", "word"):
            raise ValueError(f"mode must be 'character' or 'word', got {mode!r}")
        self.mode = mode
        self.symbols = list(self.SPECIALS) + list(symbols)
        self.indices = {s: i for i, s in enumerate(self.symbols)}
        if len(self.indices) != len(self.symbols):
            raise ValueError("the vocabulary lists a symbol twice")

    @classmethod
    def load(cls, path: str | os.PathLike, mode: str = "character") -> "TokenVocabulary":
        """One symbol per line (a line holding a space is the space symbol)."""
        with open(path, encoding="utf-8") as f:
            return cls([line.rstrip("\r\n") for line in f if line.rstrip("\r\n")], mode)

    def __len__(self) -> int:
        return len(self.symbols)

    def tokens(self, text: str) -> list[str]:
        text = text.strip("\r\n ")
        return list(text) if self.mode == "character" else text.split()

    def encode(self, text: str, where: str = "transcript") -> list[int]:
        """Token ids of ``text`` followed by ``<eos>``; unknown symbols raise."""
        tokens = self.tokens(text)
        _unknown(tokens, self.indices, where)
        return [self.indices[t] for t in tokens] + [self.eos]

    def symbol(self, i: int) -> str:
        return self.symbols[i]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` up to the first ``<eos>``, padding skipped (joined by spaces in ``"word"`` mode)."""
        out = []
        for i in map(int, ids):
            if i == self.eos:
                break
            if i != self.pad:
                out.append(self.symbol(i))
        return ("" if self.mode == "character" else " ").join(out)


class CharSlotVocabulary(TokenVocabulary):
    """Characters then slot markers ``B-<slot>``, ``E-<slot>`` per slot (SF). Decoded markers read
    ``"B-<slot> "`` and ``" E-<slot>"``, so that ``"B-city PARIS E-city"`` is what the slot metrics parse."""

    def __init__(self, chars: Sequence[str], slots: Sequence[str]):
        super().__init__([*chars, *(f"{p}-{s}" for s in slots for p in "BE")], "character")
        self.slots = list(slots)
        self.num_chars = len(self.SPECIALS) + len(chars)

    @staticmethod
    def read_slots(path: str | os.PathLike) -> list[str]:
        """Slot names of a ``slots.txt``: every line after the first (the first names the outside tag)."""
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        return [s for s in lines[1:] if s]

    def symbol(self, i: int) -> str:
        s = self.symbols[i]
        if i < self.num_chars:
            return s
        return s + " " if s.startswith("B-") else " " + s

    def encode(self, text: str, where: str = "transcript") -> list[int]:
        """``"BOS w1 w2 EOS<TAB>O tag1 tag2 intent"`` (an Audio SNIPS ``all.iob.snips.txt`` line without its id)
        -> characters of the words with ``B-``/``E-`` markers around each run of one slot tag, ``<eos>`` last.
        Punctuation words are dropped and ``&`` is read as ``AND``, as the original."""
        sentence, sep, tags = text.strip("\r\n ").partition("\t")
        if not sep:
            raise ValueError(f"{where}: expected 'BOS words EOS<TAB>O tags intent', got {text!r}")
        words, tags = sentence.split(" ")[1:-1], tags.split(" ")[1:-1]
        if len(words) != len(tags) or not words:
            raise ValueError(f"{where}: {len(words)} words but {len(tags)} tags in {text!r}")
        # punctuation words are dropped (and "", as the original's substring test does)
        kept = [(i, "AND" if w == "&" else w) for i, w in enumerate(words) if w not in "?!.,;-"]
        _unknown([c for _, w in kept for c in w], self.indices, where)
        _unknown([f"B-{t}" for t in tags if t != "O"], self.indices, where)
        ids = []
        for i, word in kept:
            tag = tags[i]
            if tag != "O" and (i == 0 or tags[i - 1] != tag):
                ids.append(self.indices[f"B-{tag}"])
            ids += [self.indices[c] for c in word]
            if tag != "O" and (i == len(words) - 1 or tags[i + 1] != tag):
                ids.append(self.indices[f"E-{tag}"])
            # the original ends the sequence only after the last word: a final punctuation word leaves it open
            ids.append(self.eos if i == len(words) - 1 else self.indices[" "])
        return ids
