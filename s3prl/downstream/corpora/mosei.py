"""CMU-MOSEI segmented audio with the original's label table (legacy ``mosei`` downstream).

Facts from the original ``downstream/mosei`` (expert, dataset, config, README, ``utility/``):

- Audio: ``<root>/Segmented_Audio/{train,dev,test}/<file>_<index>.wav``, the output of the original's
  ``segment_audio.sh`` (one wav per labelled segment of a ``Full/WAV_16000`` recording).
- Labels: the shipped ``CMU_MOSEI_Labels.csv`` (latin-1), columns ``file, index, start, end, label2a, label2b,
  label6, label7, split`` after an unnamed row-number column. ``split`` 0 / 1 / 2 = train / dev / test; any
  other value (3 in the shipped table: segments of the videos outside the standard folds) is used by no split.
- ``num_class`` picks the label column: 2 -> ``label2a`` (0 negative, 1 non-negative), 3 -> ``label2b + 1``
  (negative, neutral, positive), 6 -> ``label6`` (six emotions), 7 -> ``label7 + 3`` (sentiment -3..3).
  The original's config names the table ``label_dir`` while its expert reads ``label_path``; here it is
  ``label_path`` (default ``<root>/CMU_MOSEI_Labels.csv``).
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..data import Example
from ._common import CorpusLayoutError, missing_files_error, require_dir, require_file

SPLITS = {"0": "train", "1": "dev", "2": "test"}
# num_class -> (label column, offset that makes the label a class index)
LABEL_MODES = {2: ("label2a", 0), 3: ("label2b", 1), 6: ("label6", 0), 7: ("label7", 3)}
COLUMNS = ("file", "index", "split")

LAYOUT = """  <root>/Segmented_Audio/train/<file>_<index>.wav   (and dev/, test/: the original's segment_audio.sh)
  label table (task.label_path, default <root>/CMU_MOSEI_Labels.csv): the original's csv with columns
    file,index,label2a,label2b,label6,label7,split  (split 0/1/2 = train/dev/test)"""


def _number(text: str, what: str, where: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"mosei: {what} {text!r} is not a number ({where})") from None
    if not value.is_integer():
        raise ValueError(f"mosei: {what} {text!r} is not an integer ({where})")
    return int(value)


def read_labels(label_path: str, num_class: int = 2) -> dict[str, list[tuple[str, int]]]:
    """``{"train"|"dev"|"test": [(wav name, class), ...]}`` in table order, as the original expert builds them."""
    if num_class not in LABEL_MODES:
        raise ValueError(f"mosei: num_class must be one of {sorted(LABEL_MODES)} (2/3-class sentiment, 6 "
                         f"emotions, 7-class sentiment), got {num_class!r}")
    column, offset = LABEL_MODES[num_class]
    path = require_file(label_path, "mosei label table", LAYOUT)
    with open(path, newline="", encoding="latin-1") as f:
        rows = list(csv.reader(f))
    header = rows[0] if rows else []
    missing = [c for c in (*COLUMNS, column) if c not in header]
    if missing:
        raise CorpusLayoutError(f"mosei: label table {str(path)!r} lacks column(s) {missing}; its header is "
                                f"{header}. Expected layout:\n{LAYOUT}")
    at = {name: header.index(name) for name in (*COLUMNS, column)}
    splits: dict[str, list[tuple[str, int]]] = {name: [] for name in SPLITS.values()}
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) < len(header):
            raise ValueError(f"mosei: line {line} of {str(path)!r} has {len(row)} fields, the header {len(header)}")
        where = f"{path.name} line {line}"
        split = SPLITS.get(str(_number(row[at["split"]], "split", where)))
        if split is None:  # outside the standard folds: the original uses it nowhere
            continue
        name = f"{row[at['file']]}_{_number(row[at['index']], 'index', where)}.wav"
        label = _number(row[at[column]], column, where) + offset
        if not 0 <= label < num_class:
            raise ValueError(f"mosei: {column} gives class {label}, outside 0..{num_class - 1} ({where})")
        splits[split].append((name, label))
    return splits


def load(root: str, label_path: str | None = None, num_class: int = 2) -> dict[str, list[Example]]:
    """train / dev / test examples (label: class index); every listed segment must exist."""
    root_dir = require_dir(root, "mosei root", LAYOUT)
    table = read_labels(label_path or str(root_dir / "CMU_MOSEI_Labels.csv"), int(num_class))
    out, missing, total = {}, [], 0
    for split, rows in table.items():
        folder = root_dir / "Segmented_Audio" / split
        out[split] = []
        for name, label in rows:
            total += 1
            path = folder / name
            if not path.is_file():
                missing.append(f"Segmented_Audio/{split}/{name}")
                continue
            out[split].append(Example(f"{split}/{Path(name).stem}", str(path), label))
    if missing:
        raise missing_files_error("mosei (label table)", missing, total,
                                  f"segments are read from {str(root_dir / 'Segmented_Audio')!r}; run the "
                                  "original's segment_audio.sh first. Expected layout:\n" + LAYOUT)
    return out
