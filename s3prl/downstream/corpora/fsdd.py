"""Free Spoken Digit Dataset (FSDD): spoken digits 0-9, a small offline stand-in for KS and SID.

Layout ``<root>/recordings/{digit}_{speaker}_{take}.wav`` (or the recordings folder itself), 8 kHz mono:
the audio pipeline resamples to 16 kHz. The corpus' official split is by take: takes 0-4 test, 5-49 train.
This reader carves dev out of train deterministically: takes 5..5+dev_takes-1 (default 5-9) are dev, so
every speaker and digit is in every split (train 40 takes, dev 5, test 5 per speaker and digit).

Tasks: ``"digit"`` (label = the digit, 10 classes) and ``"speaker"`` (label = index of the speaker name in
sorted order, see :func:`speakers`).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..data import Example
from ._common import CorpusLayoutError, require_dir

TEST_TAKES = range(0, 5)
_NAME = re.compile(r"^(\d)_([A-Za-z0-9]+)_(\d+)\.wav$")
LAYOUT = "  <root>/recordings/{digit}_{speaker}_{take}.wav   (e.g. 0_jackson_12.wav)"


def _recordings(root: str) -> list[tuple[Path, int, str, int]]:
    """``(path, digit, speaker, take)`` of every recording, in name order."""
    root_dir = require_dir(root, "fsdd root", LAYOUT)
    folder = root_dir / "recordings" if (root_dir / "recordings").is_dir() else root_dir
    items = []
    for path in sorted(folder.glob("*.wav")):
        match = _NAME.match(path.name)
        if match:
            items.append((path, int(match.group(1)), match.group(2), int(match.group(3))))
    if not items:
        raise CorpusLayoutError(f"fsdd: no '{{digit}}_{{speaker}}_{{take}}.wav' files in {str(folder)!r}. "
                                f"Expected layout:\n{LAYOUT}")
    return items


def speakers(root: str) -> list[str]:
    """Speaker names in sorted order (the ``"speaker"`` task's class list)."""
    return sorted({speaker for _, _, speaker, _ in _recordings(root)})


def split_of_take(take: int, dev_takes: int = 5) -> str:
    """``"test"`` for takes 0-4, ``"dev"`` for the next ``dev_takes`` takes, ``"train"`` after."""
    if take in TEST_TAKES:
        return "test"
    return "dev" if take < TEST_TAKES.stop + dev_takes else "train"


def load(root: str, task: str = "digit", dev_takes: int = 5) -> dict[str, list[Example]]:
    """train / dev / test examples for the ``"digit"`` or ``"speaker"`` task (uid = file stem)."""
    if task not in ("digit", "speaker"):
        raise ValueError(f"fsdd task must be 'digit' or 'speaker', got {task!r}")
    if dev_takes < 0:
        raise ValueError(f"dev_takes must be >= 0, got {dev_takes}")
    items = _recordings(root)
    names = sorted({speaker for _, _, speaker, _ in items})
    splits: dict[str, list[Example]] = {"train": [], "dev": [], "test": []}
    for path, digit, speaker, take in items:
        label = digit if task == "digit" else names.index(speaker)
        splits[split_of_take(take, dev_takes)].append(Example(path.stem, str(path), label))
    return splits
