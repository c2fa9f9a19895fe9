"""LibriSpeech with transcripts (ASR, PR): any folder in the LibriSpeech layout.

Each split is one or more subset folders under ``root`` (``train-clean-100``, ``dev-clean``, ...; ``"."`` is
``root`` itself). Below a subset, every ``<spk>-<chapter>.trans.txt`` (at any depth: the corpus' own
``<spk>/<chapter>/`` folders or a flat ``<spk>/`` copy) lists ``<utt-id> TRANSCRIPT`` lines, and the audio
``<utt-id>.flac`` (or ``.wav``) lies beside it. Example labels are the transcripts as written (upper case).
A transcript line whose audio is missing, or an empty transcript, raises naming the file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..data import Example
from ._common import CorpusLayoutError, missing_files_error, require_dir

LAYOUT = """\
  <root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt   ('<utt-id> TRANSCRIPT' lines)
  <root>/<subset>/<speaker>/<chapter>/<utt-id>.flac                   (e.g. 1272/128104/1272-128104-0000.flac)
  subsets: train-clean-100, dev-clean, test-clean, ... (task options train / dev / test; '.' = root itself)"""


def read_subset(folder: Path) -> list[Example]:
    """Examples (uid, audio, transcript) of every ``*.trans.txt`` under ``folder``, sorted by uid."""
    examples, missing, listed = [], [], 0
    for trans in sorted(folder.rglob("*.trans.txt")):
        for number, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            uid, _, text = line.strip().partition(" ")
            if not text.strip():
                raise ValueError(f"{trans}:{number}: utterance {uid} has an empty transcript")
            listed += 1
            audio = next((trans.parent / f"{uid}{ext}" for ext in (".flac", ".wav")
                          if (trans.parent / f"{uid}{ext}").is_file()), None)
            if audio is None:
                missing.append(str(trans.parent / f"{uid}.flac"))
                continue
            examples.append(Example(uid, str(audio), " ".join(text.split())))
    if missing:
        raise missing_files_error(f"librispeech {folder}", missing, listed,
                                  f"each transcript line needs its audio beside the .trans.txt. Layout:\n{LAYOUT}")
    return sorted(examples, key=lambda e: e.uid)


def load(root: str, train: Sequence[str] | str = ("train-clean-100",), dev: Sequence[str] | str = ("dev-clean",),
         test: Sequence[str] | str = ("test-clean",)) -> dict[str, list[Example]]:
    """``{"train", "dev", "test"}`` examples, each split the union of its subsets."""
    root_dir = require_dir(root, "librispeech root", LAYOUT)
    splits = {}
    for split, subsets in (("train", train), ("dev", dev), ("test", test)):
        # YAML reads a speaker folder name such as 1688 as a number: subsets are folder names, so strings
        subsets = [str(s) for s in ([subsets] if isinstance(subsets, (str, int)) else subsets)]
        examples = []
        for subset in subsets:
            folder = require_dir(root_dir / subset, f"librispeech {split} subset {subset!r}", LAYOUT)
            found = read_subset(folder)
            if not found:
                raise CorpusLayoutError(f"librispeech: no '<spk>-<chapter>.trans.txt' under {str(folder)!r}. "
                                        f"Expected layout:\n{LAYOUT}")
            examples += found
        splits[split] = examples
    return splits


def load_task(root: str, train=("train-clean-100",), dev=("dev-clean",), test=("test-clean",), **task_options):
    """:func:`load` called with a task's options (those that are not the corpus' configure the task itself)."""
    return load(root, train, dev, test)
