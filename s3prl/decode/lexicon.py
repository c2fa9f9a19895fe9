"""Lexicon-constrained CTC beam search with a KenLM word n-gram (flashlight-text), as the original ASR's
``decoder_type: kenlm`` (fairseq's ``W2lKenLMDecoder``): ``pip install 's3prl[lm]'``.

The lexicon file has ``WORD<TAB>T O K E N S |`` lines (fairseq's ``librispeech_lexicon.lst``): every spelling is
a path in a token trie whose leaf holds the word and its unigram LM score (smeared with the maximum along the
path). The search keeps ``beam`` hypotheses, prunes those ``beam_threshold`` below the best, scores a finished
word with ``lm_weight * LM + word_score`` and words outside the lexicon with ``unk_weight``. The CTC blank is the
dictionary's ``<s>`` and the word separator its ``|``, as the original.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..extras import MissingExtraError


@dataclass
class LexiconDecoderConfig:
    """The original's ``decoder_args`` (``downstream/asr/config.yaml``)."""

    kenlm_model: str
    lexicon: str
    beam: int = 5
    beam_threshold: float = 25.0
    lm_weight: float = 2.0
    word_score: float = -1.0
    unk_weight: float = float("-inf")
    sil_weight: float = 0.0
    nbest: int = 1
    beam_size_token: int | None = None  # tokens considered per frame (None: all)


def _flashlight():
    try:
        from flashlight.lib.text import decoder, dictionary
        from flashlight.lib.text.decoder.kenlm import KenLM
    except ImportError:
        raise MissingExtraError("LM decoding needs flashlight-text: pip install 's3prl[lm]'") from None
    return decoder, dictionary, KenLM


class LexiconDecoder:
    """``decode(log_probs (T, V)) -> list of words`` for a :class:`~s3prl.text.CharDictionary`'s outputs."""

    def __init__(self, config: LexiconDecoderConfig, symbols: list[str], blank: int, unk: int):
        fl, fl_dict, KenLM = _flashlight()
        self.config = config
        indices = {s: i for i, s in enumerate(symbols)}
        if "|" not in indices:
            raise ValueError("lexicon decoding needs the word separator '|' in the dictionary")
        silence = indices["|"]
        for path in (config.kenlm_model, config.lexicon):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"task.decoder: no such file {path!r}")
        self.lexicon = fl_dict.load_words(config.lexicon)
        self.word_dict = fl_dict.create_word_dict(self.lexicon)
        self.lm = KenLM(config.kenlm_model, self.word_dict)
        self.trie = fl.Trie(len(symbols), silence)
        start = self.lm.start(False)
        for word, spellings in self.lexicon.items():
            word_id = self.word_dict.get_index(word)
            _, score = self.lm.score(start, word_id)
            for spelling in spellings:
                missing = [t for t in spelling if t not in indices]
                if missing:
                    raise ValueError(f"{config.lexicon}: the spelling of {word!r} uses {missing}, "
                                     "not in the dictionary")
                self.trie.insert([indices[t] for t in spelling], word_id, score)
        self.trie.smear(fl.SmearingMode.MAX)
        options = fl.LexiconDecoderOptions(
            beam_size=config.beam, beam_size_token=int(config.beam_size_token or len(symbols)),
            beam_threshold=config.beam_threshold,
            lm_weight=config.lm_weight, word_score=config.word_score, unk_score=config.unk_weight,
            sil_score=config.sil_weight, log_add=False, criterion_type=fl.CriterionType.CTC)
        self.blank = blank
        self.decoder = fl.LexiconDecoder(options, self.trie, self.lm, silence, blank,
                                         self.word_dict.get_index("<unk>"), [], False)

    def decode(self, log_probs: torch.Tensor) -> list[str] | None:
        """The best word sequence of one utterance's log-probabilities (T, V); None when the search finds none
        (the original then keeps the greedy words)."""
        best = self.search(log_probs)
        return None if best is None else best[0]

    def search(self, emissions: torch.Tensor) -> tuple[list[str], list[int]] | None:
        """(words, token path) of the best hypothesis for one utterance's scores (T, V), or None. The token path
        is flashlight's per-frame path with repeats merged and blanks removed (fairseq's ``get_tokens``)."""
        emissions = emissions.detach().float().cpu().contiguous()  # (T, V)
        results = self.decoder.decode(emissions.data_ptr(), emissions.size(0), emissions.size(1))
        if not results:
            return None
        path = torch.unique_consecutive(torch.tensor(list(results[0].tokens), dtype=torch.long)).tolist()
        tokens = [t for t in path if t != self.blank]
        return [self.word_dict.get_entry(w) for w in results[0].words if w >= 0], tokens
