"""A word n-gram language model in ARPA format, from text: what the ASR task's KenLM decoder reads.

Model: absolute-discounting back-off. Sentences are padded as ``<s> w1 .. wm </s>``. Unigrams are add-one
estimates over the words, ``</s>`` and ``<unk>``: ``p(w) = (c(w) + 1) / (N + |V|)``. For an order k >= 2 n-gram
``h w`` seen in the text, ``p(w | h) = (c(h w) - D) / c(h *)`` with discount ``0 < D < 1``; an unseen ``w`` backs
off: ``P(w | h) = alpha(h) P(w | h[1:])``, where ``alpha(h)`` gives the unseen words exactly the mass the
discount freed, so every ``P(. | h)`` sums to 1 over the vocabulary. Log-probabilities are base 10, as ARPA.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Iterable, Sequence

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


class NgramModel:
    """Counts and probabilities of an absolute-discounting back-off model (see module docstring)."""

    def __init__(self, sentences: Iterable[Sequence[str]], order: int = 3, discount: float = 0.5):
        if order < 2:
            raise ValueError(f"order must be >= 2 (KenLM needs a bigram section), got {order}")
        if not 0.0 < discount < 1.0:
            raise ValueError(f"discount must be in (0, 1), got {discount}")
        self.order, self.discount = order, discount
        self.counts = [Counter() for _ in range(order + 1)]  # counts[k][ngram tuple]
        for words in sentences:
            padded = (BOS, *words, EOS)
            for k in range(1, order + 1):
                for i in range(len(padded) - k + 1):
                    self.counts[k][padded[i:i + k]] += 1
        if not self.counts[1]:
            raise ValueError("no text to build a language model from")
        del self.counts[1][(BOS,)]
        self.vocab = sorted({g[0] for g in self.counts[1]} | {UNK})
        self.total = sum(self.counts[1].values())
        self.followers = [defaultdict(dict) for _ in range(order + 1)]  # followers[k][history] = {word: count}
        for k in range(2, order + 1):
            for gram, c in self.counts[k].items():
                self.followers[k][gram[:-1]][gram[-1]] = c
        self.alphas: dict[tuple, float] = {}
        for k in range(2, order + 1):
            for history, seen in self.followers[k].items():
                left = 1.0 - sum(self._discounted(k, history, w) for w in seen)
                lower = 1.0 - sum(self.prob(w, history[1:]) for w in seen)
                self.alphas[history] = left / max(lower, 1e-12)

    def _discounted(self, k: int, history: tuple, word: str) -> float:
        seen = self.followers[k][history]
        return (seen[word] - self.discount) / sum(seen.values())

    def prob(self, word: str, history: Sequence[str] = ()) -> float:
        """``P(word | history)`` (only the last ``order - 1`` words of ``history`` count)."""
        history = tuple(history)[len(history) - (self.order - 1):] if len(history) >= self.order else tuple(history)
        word = word if (word,) in self.counts[1] else UNK
        factor = 1.0
        while history:
            seen = self.followers[len(history) + 1].get(history)
            if seen is not None:
                if word in seen:
                    return factor * self._discounted(len(history) + 1, history, word)
                factor *= self.alphas[history]
            history = history[1:]
        return factor * (self.counts[1].get((word,), 0) + 1) / (self.total + len(self.vocab))

    def arpa(self) -> str:
        """The model as ARPA text."""
        sections, sizes = [], []
        unigrams = [(BOS,)] + sorted(self.counts[1])
        for k in range(1, self.order + 1):
            grams = unigrams if k == 1 else sorted(self.counts[k])
            lines = []
            for gram in grams:
                if gram == (BOS,):
                    logp = -99.0
                else:
                    logp = math.log10(self.prob(gram[-1], gram[:-1]) if k == 1 else
                                      self._discounted(k, gram[:-1], gram[-1]))
                line = f"{logp:.6f}\t{' '.join(gram)}"
                if k < self.order and gram in self.alphas:
                    line += f"\t{math.log10(max(self.alphas[gram], 1e-99)):.6f}"
                lines.append(line)
            if k == 1 and (UNK,) not in self.counts[1]:
                lines.insert(1, f"{math.log10(self.prob(UNK)):.6f}\t{UNK}")
            sizes.append(len(lines))
            sections.append(f"\\{k}-grams:\n" + "\n".join(lines) + "\n")
        header = "\\data\\\n" + "".join(f"ngram {k}={n}\n" for k, n in enumerate(sizes, 1))
        return header + "\n" + "\n".join(sections) + "\n\\end\\\n"


def build_arpa(sentences: Iterable[Sequence[str]], order: int = 3, discount: float = 0.5) -> str:
    """ARPA text of the model of ``sentences`` (lists of words)."""
    return NgramModel(sentences, order, discount).arpa()


def spelling_lexicon(words: Iterable[str]) -> str:
    """fairseq-style lexicon lines ``WORD<TAB>W O R D |`` for the ASR decoder, one per word."""
    return "".join(f"{w}\t{' '.join(w)} |\n" for w in sorted(set(words)) if w not in (BOS, EOS, UNK))
