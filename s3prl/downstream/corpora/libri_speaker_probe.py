"""The TERA paper's LibriSpeech speaker probes (``speaker_linear_utter_libri`` / ``speaker_linear_frame_libri``):
the original's split lists over LibriSpeech train-clean-100.

Layout (the original's ``libri_root`` and ``split_file`` options; its length table ``bucket_file`` is not needed):

    <root>/**/<speaker>-<chapter>-<utterance>.flac      e.g. train-clean-100/103/1240/103-1240-0000.flac
    <split_dir>/train_split.txt                         one utterance id per line (103-1240-0000)
    <split_dir>/test_split.txt

As the original: the classes are every speaker found under ``root`` with at least two utterances, in sorted
(string) order; ``train_split.txt`` is shuffled with ``random.seed(train_dev_seed)`` (1337) and its first 90 %
(``int(0.9 * n)``) is train, the rest dev; ``test_split.txt`` is test. Each utterance's label is its speaker's class.
"""

from __future__ import annotations

import random
from pathlib import Path

from ..data import Example
from ._common import CorpusLayoutError, require_dir, require_file
from .librispeech_speakers import speaker_utterances

LAYOUT = ("  <root>/**/<speaker>-<chapter>-<utterance>.flac   (LibriSpeech train-clean-100)\n"
          "  <split_dir>/train_split.txt, <split_dir>/test_split.txt   (one utterance id per line)")
TRAIN_SHARE = 0.9
MIN_UTTERANCES = 2  # the original keeps a speaker seen more than once


def speaker_classes(by_speaker: dict[str, list]) -> dict[str, int]:
    """Speaker id -> class: speakers with at least two utterances, in sorted string order."""
    kept = [s for s in sorted(by_speaker) if len(by_speaker[s]) >= MIN_UTTERANCES]
    return {s: i for i, s in enumerate(kept)}


def _read_list(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return f.readlines()  # kept whole (blank lines too): the shuffle depends on the count


def split_ids(split_dir: str, train_dev_seed: int = 1337, what: str = "speaker probe",
              layout: str = LAYOUT) -> dict[str, list[str]]:
    """Utterance ids of train / dev / test from the split lists, drawn as the original draws them."""
    folder = require_dir(split_dir, f"{what} split folder", layout)
    train_lines = _read_list(require_file(folder / "train_split.txt", f"{what} train list", layout))
    test_lines = _read_list(require_file(folder / "test_split.txt", f"{what} test list", layout))
    random.Random(train_dev_seed).shuffle(train_lines)  # the same draw as random.seed(seed); random.shuffle(...)
    cut = int(len(train_lines) * TRAIN_SHARE)
    parts = {"train": train_lines[:cut], "dev": train_lines[cut:], "test": test_lines}
    return {k: list(dict.fromkeys(x.strip() for x in v if x.strip())) for k, v in parts.items()}


def load(root: str, split_dir: str, train_dev_seed: int = 1337) -> dict[str, list[Example]]:
    """Train / dev / test examples (label = speaker class) of the speaker probes."""
    if not split_dir:
        raise ValueError("the speaker probes need the original's split lists: pass -o task.split_dir=FOLDER (the "
                         "folder holding train_split.txt and test_split.txt, the original's "
                         "downstream/speaker_linear_utter_libri/data)")
    by_speaker = speaker_utterances(root)
    classes = speaker_classes(by_speaker)
    files = {p.stem: p for paths in by_speaker.values() for p in paths}
    splits = {}
    for split, ids in split_ids(split_dir, train_dev_seed).items():
        missing = [u for u in ids if u not in files]
        if missing:
            raise CorpusLayoutError(f"speaker probe {split} list: {len(missing)} utterance(s) not found under "
                                    f"{root!r}: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}. "
                                    f"Expected layout:\n{LAYOUT}")
        unknown = sorted({u.split('-')[0] for u in ids} - set(classes))
        if unknown:
            raise ValueError(f"speaker probe {split} list: speaker(s) {', '.join(unknown[:5])} have fewer than "
                             f"{MIN_UTTERANCES} utterances under {root!r}, so they are not classes (as the original)")
        splits[split] = sorted((Example(u, str(files[u]), classes[u.split('-')[0]]) for u in ids),
                               key=lambda e: e.uid)
    if not splits["train"]:
        raise ValueError(f"speaker probe: {split_dir}/train_split.txt gives no training utterances")
    return splits
