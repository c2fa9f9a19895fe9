"""Decoding of CTC outputs: greedy (best path) here; lexicon + KenLM beam search in ``s3prl.decode.lexicon``
(``pip install 's3prl[lm]'``)."""

from .ctc import greedy_ids

__all__ = ["greedy_ids"]
