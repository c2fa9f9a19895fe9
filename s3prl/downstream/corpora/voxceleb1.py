"""VoxCeleb1 for SUPERB speaker identification (SID) and automatic speaker verification (ASV).

Facts from the original ``downstream/voxceleb1`` (SID) and ``downstream/sv_voxceleb1`` (ASV):

- Layout: ``<root>/dev/wav/idXXXXX/<video>/<n>.wav`` and ``<root>/test/wav/...`` (the two official archives).
- SID: the identification split file (``iden_split.txt``, shipped by s3prl as ``veri_test_class.txt``) has
  lines ``<set> idXXXXX/<video>/<n>.wav`` with set 1 = train, 2 = dev, 3 = test; the path is looked up under
  ``<root>/*/wav/``. The label is ``int(speaker[2:]) - 10001`` (1251 classes), the id
  ``idXXXXX-<video>-<n>``. The original crops training utterances to at most 128000 samples (8 s) at random
  and evaluates whole utterances (left to the data pipeline).
- ASV training: every wav under ``<root>/dev/wav`` (1211 speakers), the label being the speaker's index in
  the sorted speaker folder names. The original keeps only utterances longer than 32000 samples (2 s)
  AFTER sox silence trimming; here the length test is on the raw file (``min_seconds``), there is no VAD.
  The original's ``dev_speaker_ids.txt`` option is read by nobody: all dev speakers are used.
- ASV test: trial list ``voxceleb1_test_v2.txt`` (lines ``<1|0> <path1> <path2>``, paths relative to
  ``<root>/test/wav``); scores are cosine similarities of embeddings, metric EER. The original has no dev
  set for ASV (every saved checkpoint is tested).
"""

from __future__ import annotations

from pathlib import Path

from ..data import Example
from ._common import CorpusLayoutError, first_existing, missing_files_error, require_dir, require_file, visible_dirs

NUM_SPEAKERS = 1251
SID_SETS = {1: "train", 2: "dev", 3: "test"}

LAYOUT = """  <root>/dev/wav/idXXXXX/<video>/<n>.wav    (vox1_dev_wav)
  <root>/test/wav/idXXXXX/<video>/<n>.wav   (vox1_test_wav)
  SID split file: lines '<1|2|3> idXXXXX/<video>/<n>.wav' (iden_split.txt / veri_test_class.txt)
  ASV trials: lines '<1|0> idXXXXX/<video>/<n>.wav idYYYYY/<video>/<n>.wav' (voxceleb1_test_v2.txt)"""


def utterance_uid(rel_path: str) -> str:
    """``idXXXXX/<video>/<n>.wav`` -> ``idXXXXX-<video>-<n>`` (the original's name for an utterance)."""
    parts = Path(rel_path).with_suffix("").parts[-3:]
    return "-".join(parts)


def speaker_label(speaker: str) -> int:
    """SID class of ``idXXXXX``: ``XXXXX - 10001`` as the original."""
    return int(speaker[2:]) - 10001


def _wav_bases(root: Path) -> list[Path]:
    """Every ``<root>/*/wav`` folder, in name order (``dev`` before ``test``)."""
    bases = [d / "wav" for d in visible_dirs(root) if (d / "wav").is_dir()]
    if not bases:
        raise CorpusLayoutError(f"voxceleb1: no '*/wav' folder under {str(root)!r}. Expected layout:\n{LAYOUT}")
    return bases


def load_sid(root: str, split_file: str | None = None) -> dict[str, list[Example]]:
    """train / dev / test examples of SUPERB SID; labels are :func:`speaker_label` ints.

    ``split_file`` defaults to ``<root>/iden_split.txt`` or ``<root>/veri_test_class.txt``.
    Every listed file must exist (the error names the missing ones).
    """
    root_dir = require_dir(root, "voxceleb1 root", LAYOUT)
    if split_file is None:
        split_path = first_existing([root_dir / "iden_split.txt", root_dir / "veri_test_class.txt"],
                                    "voxceleb1 SID split file", LAYOUT)
    else:
        split_path = require_file(split_file, "voxceleb1 SID split file", LAYOUT)
    bases = _wav_bases(root_dir)
    speaker_base: dict[str, Path | None] = {}
    splits: dict[str, list[Example]] = {name: [] for name in SID_SETS.values()}
    missing, total = [], 0
    for line in split_path.read_text().splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[0] not in ("1", "2", "3"):
            raise ValueError(f"voxceleb1: bad line in {str(split_path)!r}: {line!r} (want '<1|2|3> <relative path>')")
        rel = fields[1]
        speaker = rel.split("/")[0]
        if speaker not in speaker_base:  # one folder lookup per speaker: dev and test speakers are disjoint
            speaker_base[speaker] = next((b for b in bases if (b / speaker).is_dir()), None)
        base = speaker_base[speaker]
        total += 1
        if base is None or not (base / rel).is_file():
            missing.append(rel)
            continue
        splits[SID_SETS[int(fields[0])]].append(Example(utterance_uid(rel), str(base / rel), speaker_label(speaker)))
    if missing:
        raise missing_files_error(f"voxceleb1 SID ({split_path.name})", missing, total,
                                  f"looked under {[str(b) for b in bases]}")
    return splits


def read_trials(trials_file: str) -> list[tuple[str, str, int]]:
    """``(uid1, uid2, target)`` for each line ``<target> <path1> <path2>`` of a trial list."""
    path = require_file(trials_file, "voxceleb1 trial list", LAYOUT)
    trials = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3 or fields[0] not in ("0", "1"):
            raise ValueError(f"voxceleb1: bad trial line in {str(path)!r}: {line!r} (want '<1|0> <path1> <path2>')")
        trials.append((utterance_uid(fields[1]), utterance_uid(fields[2]), int(fields[0])))
    return trials


def _trial_examples(trials_path: Path, wav_root: Path) -> list[Example]:
    """One example per distinct utterance of a trial list (label: the speaker id string), sorted by uid."""
    rels = set()
    for line in trials_path.read_text().splitlines():
        fields = line.split()
        rels.update(fields[1:3])
    missing = sorted(r for r in rels if not (wav_root / r).is_file())
    if missing:
        raise missing_files_error(f"voxceleb1 trials ({trials_path.name})", missing, len(rels),
                                  f"paths are relative to {str(wav_root)!r}")
    examples = [Example(utterance_uid(r), str(wav_root / r), r.split("/")[0]) for r in rels]
    return sorted(examples, key=lambda e: e.uid)


def load_asv(root: str, trials_file: str | None = None, min_seconds: float | None = 2.0) -> dict[str, list[Example]]:
    """SUPERB ASV: ``train`` (all dev speakers, label = index in sorted speaker ids) and ``test`` (every
    utterance the trials name, label = speaker id string). Pair them with :func:`read_trials`.

    Args:
        trials_file: defaults to ``<root>/voxceleb1_test_v2.txt``.
        min_seconds: drop training files not longer than this (raw length; the original measured after
            silence trimming). ``None`` keeps all and reads no file headers.
    """
    root_dir = require_dir(root, "voxceleb1 root", LAYOUT)
    train_root = require_dir(root_dir / "dev" / "wav", "voxceleb1 ASV training audio", LAYOUT)
    test_root = require_dir(root_dir / "test" / "wav", "voxceleb1 ASV test audio", LAYOUT)
    trials_path = require_file(trials_file or root_dir / "voxceleb1_test_v2.txt", "voxceleb1 trial list", LAYOUT)
    speakers = [d.name for d in visible_dirs(train_root)]
    train = []
    for label, speaker in enumerate(speakers):
        for path in sorted((train_root / speaker).rglob("*.wav")):
            if min_seconds is not None and _seconds(path) <= min_seconds:
                continue
            train.append(Example(utterance_uid(str(path.relative_to(train_root))), str(path), label))
    return {"train": train, "test": _trial_examples(trials_path, test_root)}


def _seconds(path: Path) -> float:
    import soundfile

    info = soundfile.info(str(path))
    return info.frames / info.samplerate
