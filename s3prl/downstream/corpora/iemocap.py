"""IEMOCAP for SUPERB emotion recognition (ER): 4 classes, 5 folds by session.

Facts from the original ``downstream/emotion`` and its ``IEMOCAP_preprocess.py``:

- Classes ``neu hap ang sad`` (labels 0-3); ``exc`` (excited) is merged into ``hap``; every other category
  (fru, sur, fea, dis, oth, xxx) is dropped.
- The utterance list of a session comes from ``SessionK/dialog/EmoEvaluation/*.txt``: the lines that start
  with ``[`` are ``[start - end] <TAB> <utterance> <TAB> <category> <TAB> [v, a, d]``; an utterance is kept
  if its category is one of the five and its wav exists under ``SessionK/sentences/wav/`` (searched
  recursively). ``speaker`` is the file-name prefix before the first ``_`` (``Ses01F``), the id is the stem.
- Fold K (``foldK``): test = SessionK, train = the other sessions in name order. dev = 20 % of that train
  list: ``torch.manual_seed(0)`` then ``random_split`` into ``int(0.8 * n)`` and the rest, i.e. a
  ``randperm(n)`` of a generator seeded 0 whose first ``int(0.8 * n)`` indices are train.
- The original ships the resulting lists as ``meta_data/SessionK/{train,test}_meta_data.json``
  (``{"labels": {...}, "meta_data": [{"path", "label", "speaker"}]}``, paths relative to the IEMOCAP root).
  Their order is the file system's directory order of the EmoEvaluation files on the authors' machine, so
  a list rebuilt from the raw corpus (here: files in name order) holds the same utterances (1085, 1023,
  1151, 1031, 1241 for sessions 1-5) but the dev draw picks different ones. Pass ``meta_data`` (a folder
  holding those JSON files, e.g. from an s3prl checkout) to get the original's exact train/dev split.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from ..data import Example
from ._common import CorpusLayoutError, require_dir, require_file

CLASSES = ("neu", "hap", "ang", "sad")
_KEEP = {"neu": "neu", "hap": "hap", "exc": "hap", "ang": "ang", "sad": "sad"}
NUM_FOLDS = 5

LAYOUT = """  <root>/Session1 .. Session5/dialog/EmoEvaluation/<dialog>.txt
  <root>/SessionK/sentences/wav/<dialog>/<utterance>.wav
  (or meta_data=<dir> holding SessionK/train_meta_data.json and test_meta_data.json)"""


def session_utterances(root: str, session: str) -> list[tuple[str, str, str]]:
    """``(path relative to root, category, speaker)`` of the kept utterances of one session folder."""
    root_dir = Path(root)
    label_dir = require_dir(root_dir / session / "dialog" / "EmoEvaluation", f"IEMOCAP {session} labels", LAYOUT)
    wav_dir = require_dir(root_dir / session / "sentences" / "wav", f"IEMOCAP {session} audio", LAYOUT)
    wavs = {p.stem: p for p in sorted(wav_dir.rglob("*.wav")) if not p.name.startswith(".")}
    kept = []
    for label_path in sorted(label_dir.glob("*.txt")):
        if label_path.name.startswith("."):  # AppleDouble '._x.txt' copies in some archives
            continue
        for line in label_path.read_text(errors="replace").splitlines():
            if not line.startswith("["):
                continue
            fields = [f for f in re.split(r"[\t\n]", line) if f]
            if len(fields) < 3 or fields[2] not in _KEEP or fields[1] not in wavs:
                continue
            rel = wavs[fields[1]].relative_to(root_dir).as_posix()
            kept.append((rel, _KEEP[fields[2]], fields[1].split("_")[0]))
    return kept


def _sessions(root: Path) -> list[str]:
    sessions = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("Session"))
    if not sessions:
        raise CorpusLayoutError(f"IEMOCAP: no Session* folder in {str(root)!r}. Expected layout:\n{LAYOUT}")
    return sessions


def _from_meta_data(meta_dir: Path, session: str, part: str) -> list[tuple[str, str, str]]:
    path = require_file(meta_dir / session / f"{part}_meta_data.json", "IEMOCAP meta data", LAYOUT)
    data = json.loads(path.read_text())
    return [(m["path"], m["label"], m["speaker"]) for m in data["meta_data"]]


def _examples(root: Path, items: list[tuple[str, str, str]]) -> list[Example]:
    return [Example(Path(rel).stem, str(root / rel), CLASSES.index(label)) for rel, label, _ in items]


def load(root: str, fold: int = 1, valid_ratio: float = 0.2, meta_data: str | None = None) -> dict[str, list[Example]]:
    """train / dev / test of one fold (test = Session``fold``); labels are indices into :data:`CLASSES`.

    Args:
        fold: 1..5.
        valid_ratio: share of the training sessions' utterances drawn for dev, as the original (0.2).
        meta_data: optional folder with the original's ``SessionK/{train,test}_meta_data.json``.
    """
    if not 1 <= int(fold) <= NUM_FOLDS:
        raise ValueError(f"IEMOCAP fold must be 1..{NUM_FOLDS}, got {fold}")
    root_dir = require_dir(root, "IEMOCAP root", LAYOUT)
    test_session = f"Session{int(fold)}"
    if meta_data is not None:
        meta_dir = require_dir(meta_data, "IEMOCAP meta data", LAYOUT)
        train_items = _from_meta_data(meta_dir, test_session, "train")
        test_items = _from_meta_data(meta_dir, test_session, "test")
    else:
        sessions = _sessions(root_dir)
        if test_session not in sessions:
            raise CorpusLayoutError(f"IEMOCAP: {test_session} not found in {str(root_dir)!r} (found {sessions})")
        train_items = [u for s in sessions if s != test_session for u in session_utterances(root, s)]
        test_items = session_utterances(root, test_session)
    train_len = int((1 - valid_ratio) * len(train_items))
    order = torch.randperm(len(train_items), generator=torch.Generator().manual_seed(0)).tolist()
    train = _examples(root_dir, [train_items[i] for i in order[:train_len]])
    dev = _examples(root_dir, [train_items[i] for i in order[train_len:]])
    return {"train": train, "dev": dev, "test": _examples(root_dir, test_items)}
