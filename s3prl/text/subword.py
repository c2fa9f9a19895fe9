"""Sentencepiece sub-word vocabularies as the original ``speech_translation`` task uses them (optional extra ``st``).

The original prepares one sentencepiece model per text column (``prepare_gen_fairseq_vocab.py``: model type
``char``, vocabulary size 1000, character coverage 1.0, ids ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3) and a
fairseq dictionary file of its pieces (``spm-tgt_text.txt``: ``<piece> 1`` lines, the four specials left out).
A text is encoded into pieces by the model, the pieces into dictionary ids (``<unk>`` for a piece the dictionary
lacks), then ``</s>``; ids are decoded by joining the pieces and turning ``▁`` back into spaces (fairseq's
``sentencepiece`` post-processing). The model's bytes travel in the checkpoint, so a run never depends on the
data folder's copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from ..extras import MissingExtraError

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
BOS, PAD, EOS, UNK = 0, 1, 2, 3
EXTRA_HINT = "install the speech-translation extra: pip install 's3prl[st]' (sacrebleu, sentencepiece)"


def _spm():
    try:
        import sentencepiece
    except ImportError as err:
        raise MissingExtraError(f"sentencepiece is needed for the sub-word vocabulary but is not installed: "
                          f"{EXTRA_HINT}") from err
    return sentencepiece


def train_sentencepiece(texts: Iterable[str], model_type: str = "char", vocab_size: int = 1000) -> bytes:
    """A sentencepiece model (serialized) trained on ``texts`` with the original's settings."""
    import io

    spm, sink = _spm(), io.BytesIO()
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ValueError("cannot train a sentencepiece model: no non-empty text")
    # a char model takes every character seen whatever vocab_size; bpe / unigram need that many pieces
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=sink, model_type=model_type,
                                   vocab_size=vocab_size, character_coverage=1.0, bos_id=BOS, pad_id=PAD,
                                   eos_id=EOS, unk_id=UNK, minloglevel=2)
    return sink.getvalue()


def read_sentencepiece(path: str | Path, what: str = "sentencepiece model") -> bytes:
    """The bytes of a ``.model`` file (a clear error when it is missing or not a sentencepiece model)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} not found: give an existing .model file, or leave the "
                                "option unset to let the task train one on the training targets")
    data = path.read_bytes()
    try:
        _spm().SentencePieceProcessor(model_proto=data)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{what} {str(path)!r} is not a sentencepiece model ({err})") from None
    return data


def read_dictionary(path: str | Path) -> list[str]:
    """The pieces of a fairseq dictionary file (``<piece> <count>`` lines)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dictionary file {str(path)!r} not found (fairseq `<piece> <count>` lines, "
                                "e.g. the original's spm-tgt_text.txt)")
    pieces = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            pieces.append(line.rsplit(" ", 1)[0] if " " in line.strip() else line.strip())
    if not pieces:
        raise ValueError(f"{path}: empty dictionary")
    return pieces


class SubwordVocabulary:
    """A sentencepiece model and the dictionary over its pieces (``symbols``; default: the model's own pieces)."""

    pad, eos, unk = PAD, EOS, UNK

    def __init__(self, model: bytes, pieces: Sequence[str] | None = None):
        self.model = model
        self.processor = _spm().SentencePieceProcessor(model_proto=model)
        if pieces is None:
            pieces = [self.processor.IdToPiece(i) for i in range(self.processor.GetPieceSize())]
            pieces = [p for p in pieces if p not in SPECIALS]
        self.symbols = list(SPECIALS) + list(pieces)
        self.indices = {s: i for i, s in enumerate(self.symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, text: str) -> list[int]:
        """Dictionary ids of ``text``'s pieces, then ``</s>``."""
        pieces = self.processor.EncodeAsPieces(text)
        return [self.indices.get(p, UNK) for p in pieces] + [EOS]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` (``<pad>``, ``<s>`` and ``</s>`` skipped, as fairseq's ``Dictionary.string``)."""
        pieces = [self.symbols[i] for i in ids if i not in (BOS, PAD, EOS)]
        return " ".join(pieces).replace(" ", "").replace("\u2581", " ").strip()
