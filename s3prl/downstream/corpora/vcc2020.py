"""VCC2020 task 1 (any-to-one voice conversion, the original's ``a2o-vc-vcc2020``): the target speaker's listed
utterances for training and validation, every source speaker's evaluation utterances for the test set, each
with the target speaker's recording of the same number as its MCD reference where there is one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data import Example
from ._common import CorpusLayoutError, require_dir

SOURCE_SPEAKERS = ["SEF1", "SEF2", "SEM1", "SEM2"]
LAYOUT = """\
  <root>/<SPEAKER>/<number>.wav      e.g. vcc2020/TEF1/E10001.wav, vcc2020/SEF1/E30001.wav (any rate; 24 kHz)
  <lists>/<L>_train_list.txt         numbers of the target speaker's training utterances, one a line
  <lists>/<L>_dev_list.txt           ... its validation utterances (L: the speaker's 2nd letter, E for TEF1)
  <lists>/eval_list.txt              numbers every source speaker says in the test set (E30001 ...)
  (-o task.root=... task.lists=... task.trgspk=TEF1 task.srcspks=[SEF1,SEF2,SEM1,SEM2]; lists default: <root>/lists)"""


@dataclass(frozen=True)
class VCLabel:
    """``target``: the recording whose mel the head learns (training / dev); ``reference``: the target
    speaker's recording the output is scored against (None: no score, the audio is still written)."""

    target: str | None
    reference: str | None
    setup: dict


def read_list(path: Path) -> list[str]:
    if not path.is_file():
        raise CorpusLayoutError(f"VCC2020: list {str(path)!r} not found. Expected layout:\n{LAYOUT}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def audio_file(folder: Path, number: str) -> Path | None:
    for suffix in (".wav", ".flac"):
        if (folder / f"{number}{suffix}").is_file():
            return folder / f"{number}{suffix}"
    return None


def load_vcc2020(root: str, lists: str | None, trgspk: str, srcspks: list[str], setup: dict) -> dict:
    """``{"train", "dev", "test"}``: the target's listed utterances (missing files skipped, as the original)
    and each source speaker's evaluation utterances with the target's recording as reference when present."""
    base = require_dir(root, "VCC2020", LAYOUT)
    lists_dir = Path(lists) if lists else base / "lists"
    target_dir = require_dir(base / trgspk, f"VCC2020 target speaker {trgspk}", LAYOUT)
    lang = trgspk[1] if len(trgspk) > 1 else trgspk
    splits = {}
    for split in ("train", "dev"):
        numbers = read_list(lists_dir / f"{lang}_{split}_list.txt")
        found = [(n, audio_file(target_dir, n)) for n in numbers]
        splits[split] = [Example(f"{trgspk}_{n}", str(p), VCLabel(str(p), str(p), setup)) for n, p in found if p]
        if not splits[split]:
            raise CorpusLayoutError(f"VCC2020: none of the {len(numbers)} utterances of {lists_dir}/{lang}_{split}"
                                    f"_list.txt is in {target_dir}. Expected layout:\n{LAYOUT}")
    numbers = read_list(lists_dir / "eval_list.txt")
    test = []
    for spk in srcspks:
        folder = require_dir(base / spk, f"VCC2020 source speaker {spk}", LAYOUT)
        for n in numbers:
            path, ref = audio_file(folder, n), audio_file(target_dir, n)
            if path is None:
                raise CorpusLayoutError(f"VCC2020: {folder}/{n}.wav (in eval_list.txt) not found. "
                                        f"Expected layout:\n{LAYOUT}")
            test.append(Example(f"{spk}_{n}", str(path), VCLabel(None, str(ref) if ref else None, setup)))
    splits["test"] = test
    return splits
