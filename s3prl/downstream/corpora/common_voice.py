"""Common Voice (out-of-domain ASR) from tab-separated transcript lists.

Each split is one or more ``.tsv`` files whose first line is a header. With ``path`` and ``sentence`` columns
(Common Voice's own ``train.tsv``/``dev.tsv``/``test.tsv``) those are read; otherwise the first two columns
(the original recipe's prepared lists: ``path<TAB>text``). Paths are relative to ``root`` (the ``clips``
folder; the original recipe converts the mp3 clips to 16 kHz wav first, and lists those). Labels are the texts
as written: they must already be in the task's character vocabulary (an unknown character raises, named).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from ..data import Example
from ._common import missing_files_error, require_dir, require_file

LAYOUT = """\
  <root>/<clip>.wav (or .mp3)      the audio (root: Common Voice's `clips` folder)
  <train.tsv> <dev.tsv> <test.tsv>  header line, then `path<TAB>text` lines (or Common Voice's columns
                                    `path` and `sentence`); task options train / dev / test name them"""


def read_list(path: str | Path, root: Path) -> list[Example]:
    tsv = require_file(path, "common voice list", LAYOUT)
    with open(tsv, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows:
        raise ValueError(f"{tsv}: empty list (expected a header line, then `path<TAB>text` lines)")
    header = rows[0]
    path_col, text_col = (header.index("path"), header.index("sentence")) if {"path", "sentence"} <= set(header) \
        else (0, 1)
    examples, missing = [], []
    for number, row in enumerate(rows[1:], 2):
        if len(row) <= max(path_col, text_col):
            raise ValueError(f"{tsv}:{number}: expected at least {max(path_col, text_col) + 1} tab-separated columns")
        audio = root / row[path_col]
        if not audio.is_file():
            missing.append(str(audio))
            continue
        examples.append(Example(Path(row[path_col]).stem, str(audio), row[text_col].strip()))
    if missing:
        raise missing_files_error(f"common voice {tsv}", missing, len(rows) - 1, f"Expected layout:\n{LAYOUT}")
    return examples


def load(root: str, train: Sequence[str] | str, dev: Sequence[str] | str,
         test: Sequence[str] | str) -> dict[str, list[Example]]:
    clips = require_dir(root, "common voice clips folder", LAYOUT)
    out = {}
    for split, lists in (("train", train), ("dev", dev), ("test", test)):
        lists = [lists] if isinstance(lists, str) else list(lists or [])
        if not lists:
            raise ValueError(f"common voice: no {split} list: pass -o task.{split}=/path/{split}.tsv")
        out[split] = [ex for tsv in lists for ex in read_list(tsv, clips)]
    return out


def load_task(root: str, train=None, dev=None, test=None, **task_options):
    """:func:`load` called with a task's options (those that are not the corpus' configure the task itself)."""
    return load(root, train, dev, test)
