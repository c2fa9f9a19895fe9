"""Speaker tasks on a LibriSpeech-style folder: speaker identification and verification trials.

Any folder holding ``<spk>-<chapter>-<utt>.flac`` (or ``.wav``) files at any depth works: the full corpus
layout ``<spk>/<chapter>/...`` and the flat ``<spk>/...`` of small copies. The speaker comes from the name.

Everything is deterministic and independent of the file system's order: utterances and speakers are
ordered by the SHA-1 of their id before being dealt out.

- SID (:func:`load`): per speaker, ``round(n * test_ratio)`` utterances are test, ``round(n * dev_ratio)``
  dev, the rest train (at least one each once a speaker has 3 utterances); label = index of the speaker in
  sorted order (:func:`speakers`).
- ASV (:func:`load_asv` + :func:`make_trials`): a share of the speakers is held out entirely; train holds
  the others (label = index among them), test the held-out speakers' utterances (label = speaker id), and
  the trials pair test utterances: as many target (same speaker) as non-target pairs, drawn with a fixed seed.
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path
from typing import Sequence

from ..data import Example
from ._common import CorpusLayoutError, require_dir, stable_key

_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)\.(flac|wav)$")
LAYOUT = "  <root>/**/<speaker>-<chapter>-<utterance>.flac   (e.g. 1688/142285/1688-142285-0000.flac)"


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def speaker_utterances(root: str) -> dict[str, list[Path]]:
    """Speaker id -> files, each list in name order."""
    root_dir = require_dir(root, "librispeech root", LAYOUT)
    found: dict[str, list[Path]] = {}
    for path in sorted(root_dir.rglob("*")):
        match = _NAME.match(path.name)
        if match and path.is_file():
            found.setdefault(match.group(1), []).append(path)
    if not found:
        raise CorpusLayoutError(f"librispeech: no '<spk>-<chapter>-<utt>.flac' files under {str(root_dir)!r}. "
                                f"Expected layout:\n{LAYOUT}")
    return found


def speakers(root: str) -> list[str]:
    """Speaker ids in sorted (string) order: the SID class list."""
    return sorted(speaker_utterances(root))


def _hash_order(paths: list[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: stable_key(p.stem))


def load(root: str, dev_ratio: float = 0.1, test_ratio: float = 0.2) -> dict[str, list[Example]]:
    """Speaker identification: train / dev / test share the speakers, split per speaker by utterance."""
    if dev_ratio < 0 or test_ratio < 0 or dev_ratio + test_ratio >= 1:
        raise ValueError(
            f"need 0 <= dev_ratio, test_ratio and dev_ratio + test_ratio < 1, got {dev_ratio}, {test_ratio}")
    by_speaker = speaker_utterances(root)
    names = sorted(by_speaker)
    splits: dict[str, list[Example]] = {"train": [], "dev": [], "test": []}
    for label, speaker in enumerate(names):
        paths = _hash_order(by_speaker[speaker])
        n = len(paths)
        n_test, n_dev = _round(n * test_ratio), _round(n * dev_ratio)
        if n >= 3:  # a speaker with 3+ utterances appears in every split the ratios ask for
            n_test = max(n_test, int(test_ratio > 0))
            n_dev = max(n_dev, int(dev_ratio > 0))
        n_test = min(n_test, n - 1)
        n_dev = min(n_dev, n - 1 - n_test)
        parts = {"test": paths[:n_test], "dev": paths[n_test:n_test + n_dev], "train": paths[n_test + n_dev:]}
        for split, chosen in parts.items():
            splits[split] += [Example(p.stem, str(p), label) for p in chosen]
    for split in splits:
        splits[split].sort(key=lambda e: e.uid)
    return splits


def load_asv(root: str, test_speaker_ratio: float = 0.2, min_test_speakers: int = 2) -> dict[str, list[Example]]:
    """Speaker verification: ``train`` (label = index among the training speakers, sorted) and ``test``
    (the held-out speakers' utterances, label = speaker id string). Make trials with :func:`make_trials`."""
    by_speaker = speaker_utterances(root)
    names = sorted(by_speaker, key=stable_key)
    n_test = max(min_test_speakers, _round(len(names) * test_speaker_ratio))
    if n_test >= len(names):
        raise ValueError(f"librispeech ASV: {len(names)} speakers cannot give {n_test} held-out test speakers "
                         "and at least one training speaker")
    held_out = set(names[:n_test])
    train_names = sorted(s for s in by_speaker if s not in held_out)
    train = [Example(p.stem, str(p), label) for label, s in enumerate(train_names) for p in by_speaker[s]]
    test = [Example(p.stem, str(p), s) for s in sorted(held_out) for p in by_speaker[s]]
    return {"train": train, "test": test}


def make_trials(examples: Sequence[Example], max_per_class: int | None = None,
                seed: int = 0) -> list[tuple[str, str, int]]:
    """Balanced verification trials ``(uid1, uid2, target)`` among ``examples`` (label = speaker).

    All same-speaker pairs are candidates for targets and all cross-speaker pairs for non-targets; as many
    of each are drawn (the smaller pool's size, capped by ``max_per_class``) with ``random.Random(seed)``.
    Trials come sorted by ``(uid1, uid2)``.
    """
    by_speaker: dict[object, list[str]] = {}
    for ex in sorted(examples, key=lambda e: e.uid):
        by_speaker.setdefault(ex.label, []).append(ex.uid)
    targets = [(a, b) for uids in by_speaker.values() for i, a in enumerate(uids) for b in uids[i + 1:]]
    speaker_of = {uid: spk for spk, uids in by_speaker.items() for uid in uids}
    uids = sorted(speaker_of)
    n_pairs = len(uids) * (len(uids) - 1) // 2
    n_nontarget = n_pairs - len(targets)
    k = min(len(targets), n_nontarget, max_per_class if max_per_class is not None else n_pairs)
    if k == 0:
        raise ValueError("make_trials needs at least two speakers, one of them with two utterances")
    rng = random.Random(seed)
    chosen_targets = rng.sample(targets, k)
    if n_nontarget <= 4 * k:  # small pool: enumerate it
        pool = [(a, b) for i, a in enumerate(uids) for b in uids[i + 1:] if speaker_of[a] != speaker_of[b]]
        chosen_non = rng.sample(pool, k)
    else:  # large pool: draw pairs until k distinct cross-speaker ones
        seen: set[tuple[str, str]] = set()
        while len(seen) < k:
            a, b = sorted(rng.sample(uids, 2))
            if speaker_of[a] != speaker_of[b]:
                seen.add((a, b))
        chosen_non = sorted(seen)
    trials = [(a, b, 1) for a, b in chosen_targets] + [(a, b, 0) for a, b in chosen_non]
    return sorted(trials)
