"""The original's LibriSpeech phone probes (``phone_linear``, ``phone_1hidden``, ``phone_linear_concat``, TERA
paper): frame-level phone classes from forced alignments, over LibriSpeech train-clean-100.

Layout (the original's ``libri_root`` and ``phone_path`` options; its length table ``bucket_file`` is not needed):

    <root>/**/<speaker>-<chapter>-<utterance>.flac      e.g. train-clean-100/103/1240/103-1240-0000.flac
    <phone_dir>/converted_aligned_phones.txt            `<utt-id> <class> <class> ...`: one class per 10 ms frame
    <phone_dir>/train_split.txt                         one utterance id per line
    <phone_dir>/test_split.txt

41 classes (the original's fixed ``class_num``; every id must be in 0..40). Train / dev come from
``train_split.txt`` shuffled with ``random.seed(train_dev_seed)`` (1337), first 90 % train, as the original.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data import Example
from ._common import CorpusLayoutError, require_dir, require_file
from .libri_speaker_probe import split_ids
from .librispeech_speakers import speaker_utterances

LAYOUT = ("  <root>/**/<speaker>-<chapter>-<utterance>.flac   (LibriSpeech train-clean-100)\n"
          "  <phone_dir>/converted_aligned_phones.txt   (`<utt-id> <class> ...`, one class per 10 ms frame)\n"
          "  <phone_dir>/train_split.txt, <phone_dir>/test_split.txt   (one utterance id per line)")
NUM_CLASSES = 41
FRAME_SHIFT = 160  # samples (10 ms at 16 kHz): the alignments' frame rate


@dataclass(frozen=True)
class FramePhones:
    """The label of a phone-probe example: one class per 10 ms frame."""

    ids: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.ids)


def read_alignments(path: str | Path) -> dict[str, FramePhones]:
    """``{utt-id: FramePhones}`` of a ``converted_aligned_phones.txt``; bad lines are errors naming them."""
    out: dict[str, FramePhones] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                ids = tuple(int(v) for v in fields[1:])
            except ValueError:
                raise ValueError(f"{path}:{number}: classes must be integers: {line.strip()[:80]!r}") from None
            bad = [v for v in ids if not 0 <= v < NUM_CLASSES]
            if bad or not ids:
                raise ValueError(f"{path}:{number}: utterance {fields[0]!r} " + (
                    f"has class {bad[0]} outside 0..{NUM_CLASSES - 1}" if bad else "has no frames"))
            out[fields[0]] = FramePhones(ids)
    if not out:
        raise ValueError(f"{path}: no `<utt-id> <class> ...` lines")
    return out


def load(root: str, phone_dir: str, train_dev_seed: int = 1337, upstream_rate: int | None = None
         ) -> dict[str, list[Example]]:
    """Train / dev / test examples; the label is the utterance's :class:`FramePhones` (``upstream_rate``: set by
    the run for the head, unused here)."""
    if not phone_dir:
        raise ValueError("the phone probes need the original's alignment folder: pass -o task.phone_dir=FOLDER "
                         "(converted_aligned_phones.txt, train_split.txt, test_split.txt: the original's "
                         "downstream/phone_linear/data)")
    folder = require_dir(phone_dir, "phone probe phone_dir", LAYOUT)
    phones = read_alignments(require_file(folder / "converted_aligned_phones.txt", "phone alignments", LAYOUT))
    files = {p.stem: p for paths in speaker_utterances(root).values() for p in paths}
    splits = {}
    for split, ids in split_ids(phone_dir, train_dev_seed, "phone probe", LAYOUT).items():
        missing = [u for u in ids if u not in files]
        unaligned = [u for u in ids if u not in phones]
        for what, bad in ((f"not found under {root!r}", missing), ("without alignment", unaligned)):
            if bad:
                raise CorpusLayoutError(f"phone probe {split} list: {len(bad)} utterance(s) {what}: "
                                        f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}. "
                                        f"Expected layout:\n{LAYOUT}")
        splits[split] = sorted((Example(u, str(files[u]), phones[u]) for u in ids), key=lambda e: e.uid)
    if not splits["train"]:
        raise ValueError(f"phone probe: {phone_dir}/train_split.txt gives no training utterances")
    return splits
