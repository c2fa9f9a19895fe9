"""Audio SNIPS (SF): synthesized SNIPS utterances with slot annotations.

Layout: ``<root>/{train,valid,test}/**/<Speaker>-<...>.wav``, ``<root>/all.iob.snips.txt`` (one
``<uid> BOS w1 .. wn EOS<TAB>O t1 .. tn <intent>`` line per utterance, the tags being slot names or ``O``) and
``<root>/slots.txt`` (an outside tag on the first line, then one slot name per line). A split keeps the files
of its speakers (the uid begins with the speaker's name); the defaults are the original's: 8 training voices,
4 dev, 4 test. Example labels are the annotation lines without their uid. Audio without an annotation line is
left out and counted in the log, as the original.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from ..data import Example
from ._common import CorpusLayoutError, require_dir, require_file

logger = logging.getLogger(__name__)

LAYOUT = """\
  <root>/all.iob.snips.txt   ('<uid> BOS words EOS<TAB>O tags intent' lines)
  <root>/slots.txt           (first line: the outside tag; then one slot name per line)
  <root>/train/**/<uid>.wav  <root>/valid/**/<uid>.wav  <root>/test/**/<uid>.wav   (uid starts with the speaker)"""

TRAIN_SPEAKERS = ("Ivy", "Joanna", "Joey", "Justin", "Kendra", "Kimberly", "Matthew", "Salli")
DEV_SPEAKERS = ("Aditi", "Amy", "Geraint", "Nicole")
TEST_SPEAKERS = ("Brian", "Emma", "Raveena", "Russell")


def read_annotations(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        uid, _, rest = line.strip().partition(" ")
        if uid:
            out[uid] = rest
    return out


def load(root: str, train_speakers: Sequence[str] = TRAIN_SPEAKERS, dev_speakers: Sequence[str] = DEV_SPEAKERS,
         test_speakers: Sequence[str] = TEST_SPEAKERS) -> dict[str, list[Example]]:
    root_dir = require_dir(root, "snips root", LAYOUT)
    annotations = read_annotations(require_file(root_dir / "all.iob.snips.txt", "snips annotations", LAYOUT))
    require_file(root_dir / "slots.txt", "snips slot list", LAYOUT)
    splits = {}
    for split, folder, speakers in (("train", "train", train_speakers), ("dev", "valid", dev_speakers),
                                    ("test", "test", test_speakers)):
        examples, unlabelled = [], 0
        for wav in sorted(require_dir(root_dir / folder, f"snips {split}", LAYOUT).rglob("*.wav")):
            uid = wav.name.split(".wav", 1)[0]
            if uid not in annotations:
                unlabelled += 1
            elif any(uid.startswith(s) for s in speakers):
                examples.append(Example(uid, str(wav), annotations[uid]))
        if unlabelled:
            logger.warning("snips %s: %d audio files have no line in all.iob.snips.txt (left out)", split, unlabelled)
        if not examples:
            raise CorpusLayoutError(f"snips {split}: no annotated .wav of speakers {list(speakers)} under "
                                    f"{str(root_dir / folder)!r}. Expected layout:\n{LAYOUT}")
        splits[split] = examples
    return splits


def slots_file(root: str) -> str:
    return str(Path(root) / "slots.txt")


def load_task(root: str, train_speakers=TRAIN_SPEAKERS, dev_speakers=DEV_SPEAKERS, test_speakers=TEST_SPEAKERS,
              **task_options):
    """:func:`load` called with a task's options (those that are not the corpus' configure the task itself)."""
    return load(root, train_speakers, dev_speakers, test_speakers)
