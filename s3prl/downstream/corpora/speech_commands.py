"""Speech Commands v0.01 for SUPERB keyword spotting (KS): 12 classes.

Facts from the original ``downstream/speech_commands`` (what this reader reproduces):

- Classes, in this order (the label is the index): the 10 words ``yes no up down left right on off stop go``,
  then ``_unknown_`` (every other word folder of the corpus) and ``_silence_``.
- train / dev come from the training corpus folder alone, by the corpus' own speaker-hash rule: the part of the
  file name before ``_nohash_`` is hashed with SHA-1, ``(int(hex) % 2**27) * 100 / (2**27 - 1)`` gives a
  percentage; below 10 is dev, below 20 is the corpus' test partition (the original discards it), the rest
  is train. This is the rule that wrote the corpus' ``validation_list.txt`` / ``testing_list.txt``, so
  ``split_rule="lists"`` gives the same split (files those lists name but that are not on disk are simply
  never seen: the reader walks the folders and looks names up in the lists).
- test is the separate official test set (``speech_commands_test_set_v0.01``), one folder per class
  including ``_unknown_`` and ``_silence_``; the folder name is the label.
- ``_silence_`` for train and for dev both come from the same ``_background_noise_/*.wav`` files (the
  original adds every noise file to both and takes a random 1 s crop at each read). Here the crops are
  fixed: every 1 s window at ``silence_hop`` steps becomes an :class:`Example` with ``start``/``end``, so
  the data are deterministic; the noise audio is still shared by train and dev, as in the original.
- Training draws are class-balanced: weight ``len(data) / count(class)`` per item (:func:`class_weights`);
  the original's dev loader used the same weighted sampling.
- Audio: 16 kHz mono; the original also applied sox ``gain -3`` dB (left to the audio pipeline).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from ..data import Example
from ._common import CorpusLayoutError, require_dir, stable_key, visible_dirs

CLASSES = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_")
UNKNOWN, SILENCE = "_unknown_", "_silence_"
NOISE_DIR = "_background_noise_"
_MAX_PER_CLASS = 2**27 - 1  # the corpus README's MAX_NUM_WAVS_PER_CLASS

LAYOUT = """  <root>/<word>/<speakerhash>_nohash_<n>.wav   (30 word folders in v0.01)
  <root>/_background_noise_/*.wav               (source of the _silence_ class)
  <root>/validation_list.txt, testing_list.txt  (only for split_rule="lists")
  <test_root>/<class>/*.wav                     (official test set: the 10 words, _unknown_, _silence_)"""


def hash_partition(file_name: str, dev_percent: float = 10.0, test_percent: float = 10.0) -> str:
    """``"dev"``, ``"test"`` or ``"train"`` for a corpus file name, by the corpus' speaker-hash rule."""
    speaker = re.sub(r"_nohash_.*$", "", file_name)
    digest = int(stable_key(speaker), 16)
    percent = (digest % (_MAX_PER_CLASS + 1)) * (100.0 / _MAX_PER_CLASS)
    if percent < dev_percent:
        return "dev"
    if percent < dev_percent + test_percent:
        return "test"
    return "train"


def _list_partition(root: Path):
    """A function file name -> partition reading the corpus' own list files (``word/file.wav`` lines)."""
    sets = {}
    for part, name in (("dev", "validation_list.txt"), ("test", "testing_list.txt")):
        path = root / name
        if not path.is_file():
            raise CorpusLayoutError(
                f"speech_commands: split_rule='lists' needs {str(path)!r}. Expected layout:\n{LAYOUT}")
        sets[part] = set(path.read_text().split())
    return lambda rel: "dev" if rel in sets["dev"] else "test" if rel in sets["test"] else "train"


def word_label(word: str) -> int:
    """Class index of a training-corpus word folder: the 10 command words keep theirs, others are ``_unknown_``."""
    return CLASSES.index(word) if word in CLASSES[:10] else CLASSES.index(UNKNOWN)


def silence_crops(noise_dir: Path, crop: float = 1.0, hop: float = 1.0) -> list[Example]:
    """Fixed ``crop``-second windows every ``hop`` seconds over each noise file, labelled ``_silence_``."""
    import soundfile

    examples = []
    label = CLASSES.index(SILENCE)
    for path in sorted(noise_dir.glob("*.wav")):
        info = soundfile.info(str(path))
        duration = info.frames / info.samplerate
        k = 0
        while k * hop + crop <= duration + 1e-9:
            start = round(k * hop, 6)
            uid = f"{SILENCE}-{path.stem}-{k:04d}"
            examples.append(Example(uid, str(path), label, start, round(start + crop, 6)))
            k += 1
    return examples


def load(root: str, test_root: str | None = None, split_rule: str = "hash",
         silence_hop: float = 1.0) -> dict[str, list[Example]]:
    """train / dev / test examples of SUPERB KS. Labels are indices into :data:`CLASSES`.

    Args:
        root: the training corpus folder (``speech_commands_v0.01`` unpacked).
        test_root: the official test set folder. ``None``: test is the corpus' own test partition
            (hash 10-20 %, i.e. ``testing_list.txt``) with word labels and no ``_silence_``; handy for
            small copies of the corpus, but not the SUPERB test set.
        split_rule: ``"hash"`` (the original's rule) or ``"lists"`` (the corpus' list files; same result).
        silence_hop: step between the fixed 1 s ``_silence_`` crops, in seconds.

    A missing ``_background_noise_`` folder gives no ``_silence_`` examples (as the original, whose glob of
    it is then empty).
    """
    root_dir = require_dir(root, "speech_commands root", LAYOUT)
    if split_rule == "hash":
        partition = lambda rel: hash_partition(rel.split("/")[-1])  # noqa: E731
    elif split_rule == "lists":
        partition = _list_partition(root_dir)
    else:
        raise ValueError(f"split_rule must be 'hash' or 'lists', got {split_rule!r}")
    splits: dict[str, list[Example]] = {"train": [], "dev": [], "test": []}
    word_dirs = [d for d in visible_dirs(root_dir) if d.name != NOISE_DIR]
    if not word_dirs:
        raise CorpusLayoutError(f"speech_commands: no word folders in {str(root_dir)!r}. Expected layout:\n{LAYOUT}")
    for word_dir in word_dirs:
        for path in sorted(word_dir.glob("*.wav")):
            rel = f"{word_dir.name}/{path.name}"
            uid = f"{word_dir.name}-{path.name}"  # the original's file id, used in its prediction files
            splits[partition(rel)].append(Example(uid, str(path), word_label(word_dir.name)))
    noise_dir = root_dir / NOISE_DIR
    if noise_dir.is_dir():
        crops = silence_crops(noise_dir, hop=silence_hop)
        splits["train"] += crops
        splits["dev"] += crops
    if test_root is not None:
        splits["test"] = load_test_set(test_root)
    return splits


def load_test_set(test_root: str) -> list[Example]:
    """The official test set: ``<test_root>/<class>/*.wav`` with the folder name as the class."""
    test_dir = require_dir(test_root, "speech_commands test set", LAYOUT)
    examples = []
    for class_dir in visible_dirs(test_dir):
        if class_dir.name not in CLASSES:
            raise CorpusLayoutError(
                f"speech_commands test set: folder {str(class_dir)!r} is not one of the 12 classes {list(CLASSES)}; "
                f"is {test_root!r} the official test set (speech_commands_test_set_v0.01)?")
        label = CLASSES.index(class_dir.name)
        for path in sorted(class_dir.glob("*.wav")):
            examples.append(Example(f"{class_dir.name}-{path.name}", str(path), label))
    if not examples:
        raise CorpusLayoutError(
            f"speech_commands test set: no wav files under {test_root!r}. Expected layout:\n{LAYOUT}")
    return examples


def class_weights(examples: Sequence[Example]) -> list[float]:
    """Balanced-sampling weight per example, ``len(examples) / count(its class)`` as the original."""
    counts: dict[object, int] = {}
    for ex in examples:
        counts[ex.label] = counts.get(ex.label, 0) + 1
    return [len(examples) / counts[ex.label] for ex in examples]
