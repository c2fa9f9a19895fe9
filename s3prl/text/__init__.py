"""Text of the sequence tasks: symbol tables (character dictionary, token vocabularies, character + slot
vocabulary), the phoneme inventory and word -> phoneme lexicons."""

from .dictionary import (CTC_CHARS, LIBRISPEECH_CHARS, CharDictionary, CharSlotVocabulary, TokenVocabulary,
                         UnknownSymbolError)
from .lexicon import PHONEMES, OutOfVocabularyError, cmudict_lexicon, load_lexicon, phonemize, read_lexicon

__all__ = ["CTC_CHARS", "LIBRISPEECH_CHARS", "CharDictionary", "CharSlotVocabulary", "TokenVocabulary",
           "UnknownSymbolError", "PHONEMES", "OutOfVocabularyError", "cmudict_lexicon", "load_lexicon", "phonemize",
           "read_lexicon"]
