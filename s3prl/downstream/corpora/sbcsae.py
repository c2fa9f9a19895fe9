"""SBCSAE (out-of-domain ASR on spontaneous speech): the Santa Barbara Corpus of Spoken American English as the
original's ``ctc/sbcsae.yaml`` reads it, i.e. after the ``vectominist/SBCSAE-preprocess`` recipe.

That recipe cuts each recording ``NN.mp3`` into 16 kHz clips ``SBC<NNN>_<start x 100>-<end x 100>.wav`` (one per
transcript turn of 0.1-15 s without overlap) in one folder, and writes ``train.tsv`` / ``dev.tsv`` / ``test.tsv``
(header ``path<TAB>sentence``, then ``<clip>.wav<TAB>TRANSCRIPT``) split by recording: 1-46 train, 47-53 dev,
54-60 test. Transcripts are normalised (:func:`normalize`): upper case ``A-Z``, apostrophes and single spaces,
the characters of the original's ``cv_vocab/en_char.txt``.

The lists are read as written; a line whose text is not normalised raises naming the file and line, unless the
task option ``normalize`` is set (then the recipe's rule is applied and the lines it rejects are left out,
counted in the log). A clip of a recording outside its split's range is logged (a custom split is allowed).
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path
from typing import Sequence

from ..data import Example
from ._common import CorpusLayoutError, first_existing, missing_files_error, require_dir, require_file

logger = logging.getLogger(__name__)

LAYOUT = """\
  <root>/SBC<NNN>_<start>-<end>.wav   the clips cut by SBCSAE-preprocess (16 kHz; root: its `wav` folder)
  <lists>/train.tsv dev.tsv test.tsv  header `path<TAB>sentence`, then `<clip>.wav<TAB>UPPER CASE TEXT` lines
                                      (lists: task option `lists`; default <root>, <root>/.. or <root>/../tsv;
                                      or name each file with task options train / dev / test)"""

RECORDINGS = {"train": range(1, 47), "dev": range(47, 54), "test": range(54, 61)}
CHARS = (" ", "'", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ")  # the order of the original's cv_vocab/en_char.txt
CLIP = re.compile(r"SBC(\d{3})_\d+-\d+$")
_DROPPED = ".,-%?!@+~_*#&\""  # punctuation the recipe turns into spaces (and the typographic apostrophe into ')
_TRANSLATE = str.maketrans(_DROPPED + "\u2019", " " * len(_DROPPED) + "'")
_NORMALISED = re.compile(r"[A-Z']+( [A-Z']+)*$")


def normalize(sentence: str) -> str:
    """The recipe's transcript rule: ``""`` (unusable) for overlapping (``[ ]``) or uncertain (``< >``) speech,
    unbalanced parentheses or unknown words (``X``, ``XX..``); else parenthesised notes removed, ``=`` removed,
    punctuation made spaces, spaces collapsed, upper case."""
    if any(c in sentence for c in "[]<>"):
        return ""
    sentence = re.sub(r"\([^)]*\)", "", sentence)
    if "(" in sentence or ")" in sentence:
        return ""
    sentence = re.sub(" +", " ", sentence.replace("=", "").translate(_TRANSLATE)).strip().upper()
    if "XX" in sentence or " X " in f"{sentence} ":
        return ""
    return sentence if not set(sentence) - set(CHARS) else ""


def recording(uid: str) -> int | None:
    """The recording number of a clip name (``SBC012_...`` -> 12), None for another name."""
    match = CLIP.match(uid)
    return int(match.group(1)) if match else None


def read_list(path: str | Path, root: Path, split: str, normalise: bool = False) -> list[Example]:
    """The clips of one ``.tsv`` list (see the module docstring)."""
    tsv = require_file(path, f"sbcsae {split} list", LAYOUT)
    with open(tsv, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or [c.strip() for c in rows[0][:2]] != ["path", "sentence"]:
        raise CorpusLayoutError(f"{tsv}: the first line must be the header `path<TAB>sentence`. "
                                f"Expected layout:\n{LAYOUT}")
    examples, missing, rejected, elsewhere = [], [], 0, 0
    for number, row in enumerate(rows[1:], 2):
        if len(row) < 2:
            raise ValueError(f"{tsv}:{number}: expected `<clip>.wav<TAB>text`, got {row!r}")
        text = row[1].strip()
        if normalise:
            text = normalize(text)
            if len(text) <= 1:  # the recipe drops these
                rejected += 1
                continue
        elif not _NORMALISED.match(text):
            raise ValueError(f"{tsv}:{number}: transcript {row[1]!r} is not normalised (upper case A-Z, ' and "
                             "single spaces, as SBCSAE-preprocess writes it); fix the list or pass "
                             "-o task.normalize=true to apply the recipe's rule")
        audio = root / row[0]
        if not audio.is_file():
            missing.append(str(audio))
            continue
        uid = Path(row[0]).stem
        elsewhere += recording(uid) not in RECORDINGS[split]
        examples.append(Example(uid, str(audio), text))
    if missing:
        raise missing_files_error(f"sbcsae {tsv}", missing, len(rows) - 1, f"Expected layout:\n{LAYOUT}")
    if rejected:
        logger.warning("sbcsae %s: %d of %d lines left out by the normalisation rule", tsv, rejected, len(rows) - 1)
    if elsewhere:
        logger.warning("sbcsae %s: %d clips are not from the %s recordings (SBC%03d-SBC%03d) of the original split",
                       tsv, elsewhere, split, RECORDINGS[split].start, RECORDINGS[split].stop - 1)
    return examples


def list_paths(root: Path, split: str, given, lists: str | None) -> list[Path]:
    if given:
        return [Path(p) for p in ([given] if isinstance(given, str) else given)]
    folders = [Path(lists)] if lists else [root, root.parent, root.parent / "tsv"]
    return [first_existing([folder / f"{split}.tsv" for folder in folders], f"sbcsae {split} list", LAYOUT)]


def load(root: str, train: Sequence[str] | str | None = None, dev: Sequence[str] | str | None = None,
         test: Sequence[str] | str | None = None, lists: str | None = None,
         normalise: bool = False) -> dict[str, list[Example]]:
    """``{"train", "dev", "test"}`` examples (uid: the clip name, label: its transcript)."""
    clips = require_dir(root, "sbcsae clips folder", LAYOUT)
    out = {}
    for split, given in (("train", train), ("dev", dev), ("test", test)):
        out[split] = [ex for tsv in list_paths(clips, split, given, lists)
                      for ex in read_list(tsv, clips, split, normalise)]
        if not out[split]:
            raise CorpusLayoutError(f"sbcsae {split}: the list holds no clip. Expected layout:\n{LAYOUT}")
    return out


def load_task(root: str, train=None, dev=None, test=None, lists=None, normalize=False, **task_options):
    """:func:`load` called with a task's options (those that are not the corpus' configure the task itself)."""
    return load(root, train, dev, test, lists, bool(normalize))
