"""Separation corpora in the original's Kaldi-style lists (LibriMix prepared by the original's data scripts):
one folder per split, one sub-folder per signal condition, each with a ``wav.scp``.

Every example is a mixture (``Example.path``) with its label :class:`Mixture`: the paths of its sources in
the order of ``tgt`` and the number of samples. Mixture and sources must have the same sample rate and the same
number of samples (checked from the file headers, nothing decoded): a mismatch is an error naming the files.
Recordings are sorted by name (the original's order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..data import Example
from ._common import CorpusLayoutError, missing_files_error, require_dir, require_file

LAYOUT = """\
  <root>/{train,dev,test}/<condition>/wav.scp    lines `<recording> <audio file>` (path absolute, or relative to
                                                  that wav.scp's folder, its split folder or <root>; no pipes)
  conditions (the original's): mix_clean, mix_both, mix_single (mixtures) and s1, s2, noise (sources); the task
  options `src` (one mixture condition) and `tgt` (the sources) name them. The same recording names appear in
  every condition's wav.scp. Mixture and sources: same sample rate (16 kHz), same length. Other split folder
  names (the original's Libri2Mix: train-100, dev, test): -o "task.split_dirs={train: train-100}"."""

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Mixture:
    """The label of a separation / enhancement example."""

    rec: str
    mixture: str  # the mixture's path (also the example's path)
    sources: tuple[str, ...]  # reference signals, in the order of the task's `tgt`
    samples: int  # samples of the mixture (and of each source)
    rate: int
    setup: dict = field(default_factory=dict, compare=False)  # the task's STFT, head and scoring options


def read_scp(path: Path, root: Path) -> dict[str, str]:
    """``{recording: audio path}`` of a ``wav.scp``; a relative path is looked up from its folder, its split's
    folder, then ``root``."""
    out: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or parts[1].rstrip().endswith("|"):
            raise CorpusLayoutError(f"{path}:{number}: expected `<recording> <audio file>` (no pipes), got {line!r}")
        rec, file = parts[0], Path(parts[1].strip())
        if rec in out:
            raise CorpusLayoutError(f"{path}:{number}: recording {rec!r} is listed twice")
        if not file.is_absolute():
            bases = (path.parent, path.parent.parent, root)
            file = next((b / file for b in bases if (b / file).exists()), path.parent / file)
        out[rec] = str(file)
    return out


def check_pairs(examples: list[Example], what: str) -> None:
    """Every source has the mixture's sample rate and length (headers only)."""
    import soundfile

    problems = []
    for ex in examples:
        for src in ex.label.sources:
            info = soundfile.info(src)
            if info.samplerate != ex.label.rate or info.frames != ex.label.samples:
                problems.append(f"  {ex.label.rec}: mixture {ex.path} has {ex.label.samples} samples at "
                                f"{ex.label.rate} Hz but source {src} has {info.frames} at {info.samplerate} Hz")
    if problems:
        more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise ValueError(f"{what}: mixtures and sources must have the same sample rate and length:\n"
                         + "\n".join(problems[:5]) + more)


def make_examples(recs: dict[str, str], sources: list[dict[str, str]], what: str, hint: str) -> list[Example]:
    """Examples from a mixture list and source lists keyed by recording; headers are checked."""
    import soundfile

    lacking = sorted(r for r in recs if any(r not in s for s in sources))
    if lacking:
        raise CorpusLayoutError(f"{what}: {len(lacking)} mixture(s) have no entry in every source list, e.g. "
                                f"{', '.join(lacking[:5])}\n{hint}")
    missing = [p for r in recs for p in [recs[r], *(s[r] for s in sources)] if not Path(p).is_file()]
    if missing:
        raise missing_files_error(what, missing, len(recs) * (1 + len(sources)), hint)
    examples = []
    for rec in sorted(recs):
        info = soundfile.info(recs[rec])
        if info.channels != 1:
            raise ValueError(f"{what}: {recs[rec]} has {info.channels} channels; mixtures must be mono")
        label = Mixture(rec, recs[rec], tuple(s[rec] for s in sources), int(info.frames), int(info.samplerate))
        examples.append(Example(rec, recs[rec], label))
    check_pairs(examples, what)
    return examples


def load(root: str, src: list | tuple = ("mix_clean",), tgt: list | tuple = ("s1", "s2"),
         split_dirs: dict | None = None, **_) -> dict:
    """``{"train", "dev", "test"}`` of :class:`Mixture` examples from ``<root>/<split>/<condition>/wav.scp``
    (``split_dirs``: other folder names per split, e.g. ``{train: train-100, dev: dev_1000}``)."""
    base = require_dir(root, "separation corpus", LAYOUT)
    if len(src) != 1:
        raise ValueError(f"task option src must name one mixture condition, got {list(src)}")
    if not tgt:
        raise ValueError("task option tgt must name at least one source condition (e.g. [s1, s2])")
    names = {**{s: s for s in SPLITS}, **(split_dirs or {})}
    unknown = sorted(set(names) - set(SPLITS))
    if unknown:
        raise ValueError(f"task option split_dirs: unknown split(s) {unknown}; the splits are {list(SPLITS)}")
    splits = {}
    for split in SPLITS:
        folder = require_dir(base / names[split], f"separation corpus split {split}", LAYOUT)
        lists = [read_scp(require_file(folder / cond / "wav.scp", f"condition {cond} of {split}", LAYOUT), base)
                 for cond in [src[0], *tgt]]
        splits[split] = make_examples(lists[0], lists[1:], f"{folder}", LAYOUT)
        if not splits[split]:
            raise CorpusLayoutError(f"{folder}/{src[0]}/wav.scp lists no recordings")
    return splits
