"""Fluent Speech Commands for SUPERB intent classification (IC).

Facts from the original ``downstream/fluent_commands``:

- Splits are the corpus' own ``data/train_data.csv``, ``data/valid_data.csv`` (dev), ``data/test_data.csv``;
  the ``path`` column is relative to the corpus root (``wavs/speakers/<speakerId>/<name>.wav``).
- The label is three slots, ``(action, object, location)``. Each slot's vocabulary comes from the TRAIN csv
  only, values numbered in order of first appearance there (the original iterates a ``Counter``, which keeps
  insertion order). The head has one output block per slot, ``sum(len(vocab))`` logits in all, and an
  utterance counts as correct only when all three slots are.
- The utterance id is the file stem.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..data import Example
from ._common import CorpusLayoutError, require_dir, require_file

SLOTS = ("action", "object", "location")
SPLIT_FILES = {"train": "train_data.csv", "dev": "valid_data.csv", "test": "test_data.csv"}

LAYOUT = """  <root>/data/train_data.csv, valid_data.csv, test_data.csv
      (columns include path, speakerId, transcription, action, object, location)
  <root>/wavs/speakers/<speakerId>/<name>.wav   (the csv path column, relative to <root>)"""


def _read_rows(root: Path, split: str) -> list[dict[str, str]]:
    path = require_file(root / "data" / SPLIT_FILES[split], f"fluent_commands {split} list", LAYOUT)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("path", *SLOTS) if c not in (reader.fieldnames or [])]
        if missing:
            raise CorpusLayoutError(
                f"fluent_commands: {str(path)!r} lacks columns {missing}; header is {reader.fieldnames}")
        return list(reader)


def slot_vocabularies(root: str) -> dict[str, list[str]]:
    """Per slot, its values in order of first appearance in ``train_data.csv`` (index = class id)."""
    rows = _read_rows(require_dir(root, "fluent_commands root", LAYOUT), "train")
    vocab: dict[str, list[str]] = {slot: [] for slot in SLOTS}
    for row in rows:
        for slot in SLOTS:
            if row[slot] not in vocab[slot]:
                vocab[slot].append(row[slot])
    return vocab


def load(root: str) -> dict[str, list[Example]]:
    """train / dev / test examples; the label is ``(action_id, object_id, location_id)`` (ints).

    Slot values are numbered by :func:`slot_vocabularies`; a dev/test value never seen in train raises
    (the original would fail the same way, later).
    """
    root_dir = require_dir(root, "fluent_commands root", LAYOUT)
    vocab = slot_vocabularies(root)
    index = {slot: {value: i for i, value in enumerate(values)} for slot, values in vocab.items()}
    splits = {}
    for split in SPLIT_FILES:
        examples = []
        for row in _read_rows(root_dir, split):
            label = []
            for slot in SLOTS:
                if row[slot] not in index[slot]:
                    raise ValueError(f"fluent_commands {split}: {slot} value {row[slot]!r} ({row['path']}) "
                                     f"does not occur in train_data.csv; known: {vocab[slot]}")
                label.append(index[slot][row[slot]])
            path = root_dir / row["path"]
            examples.append(Example(Path(row["path"]).stem, str(path), tuple(label)))
        splits[split] = examples
    return splits


def slot_sizes(root: str) -> tuple[int, int, int]:
    """Number of classes of each slot, the head's output blocks (action, object, location)."""
    vocab = slot_vocabularies(root)
    return tuple(len(vocab[slot]) for slot in SLOTS)
