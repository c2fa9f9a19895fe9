"""Speaker diarization corpora: Kaldi-style data folders (the original SD recipe) or a folder of recordings
with RTTM (+ UEM) files. Both give, per split, recordings with their speaker turns; the task frames them.

Training examples are chunks of ``chunk_size`` label frames (the original's 2000), cut as the original
does (consecutive, the shorter last chunk kept); dev and test examples are whole recordings. Each example's
label is a :class:`Recording`: the frame labels of its span (``(frames, num_speakers)``, 1 = speaking), at
``frame_shift`` samples per frame (the upstream's downsample rate), and for scoring the recording's reference
turns, its UEM and the scoring options.

A frame ``f`` of a turn ``[st, et)`` is active when ``rint(st * 16000 / shift) <= f < rint(et * 16000 / shift)``,
as the original; unlike the original, a turn longer than a whole training chunk labels it too. Speakers take
the columns in sorted name order per recording (as the original); a recording with more speakers than
``num_speakers`` is an error naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...metrics.der import Turns, merge, read_rttm, read_uem
from ..data import SAMPLE_RATE, Example
from ._common import CorpusLayoutError, require_dir

LAYOUT = """\
  Kaldi-style (the original SD recipe):  <root>/{train,dev,test}/
      wav.scp   <recording> <audio file>          (paths relative to the folder or <root>; no pipes)
      segments  <utterance> <recording> <start> <end>
      utt2spk   <utterance> <speaker>
      reco2dur  <recording> <seconds>             (optional: else read from the audio header)
      rttm      reference turns for scoring       (optional: else made from segments + utt2spk)
      spk2utt   (optional, not needed)
  or a folder of recordings with RTTM:   <root>/<recording>.{wav,flac} (or <root>/wav/...) and per split
      <root>/[<prefix>.]<split>.rttm with <split> = train | dev (also: development, valid) | test (also: eval),
      optional <same name>.uem (scoring regions) and <same name>.lst (the recordings; else the UEM's or RTTM's)"""

SPLITS = {"train": ("train",), "dev": ("dev", "development", "valid"), "test": ("test", "eval")}
AUDIO = (".wav", ".flac", ".ogg")
MAX_SPEAKERS = 8


@dataclass(eq=False)
class Recording:
    """The label of a diarization example (see the module docstring)."""

    rec: str
    speakers: list[str]
    frames: np.ndarray  # (T, N) uint8 activity of the example's span
    turns: Turns  # reference turns of the whole recording, seconds
    uem: list | None  # scoring regions, or None (scored over the turns' extent)
    frame_shift: int  # samples per label frame
    scoring: dict = field(default_factory=dict)  # threshold, median, thresholds, medians, collar, skip_overlap,
    # and the head's hidden_size / rnn_layers (the original's modelrc)


@dataclass
class Source:
    """One recording of a split before framing."""

    rec: str
    path: str
    duration: float
    turns: Turns  # for the labels
    reference: Turns  # for scoring (the RTTM when there is one)
    uem: list | None = None


def load(root: str, num_speakers: int = 2, chunk_size: int = 2000, frame_shift: int | None = None,
         threshold: float = 0.5, median: int = 1, thresholds=(0.3, 0.4, 0.5, 0.6, 0.7), medians=(1, 11),
         collar: float = 0.0, skip_overlap: bool = False, hidden_size: int = 512,
         rnn_layers: int = 1) -> dict[str, list[Example]]:
    """``{"train": chunks, "dev": recordings, "test": recordings}`` of ``root`` (either layout)."""
    if not frame_shift or int(frame_shift) != frame_shift or frame_shift <= 0:
        raise ValueError(f"diarization: frame_shift must be a positive number of samples (the upstream's downsample "
                         f"rate, which the runner fills in), got {frame_shift!r}")
    if int(num_speakers) != num_speakers or num_speakers < 1 or int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"diarization: num_speakers and chunk_size must be positive integers, got {num_speakers}, "
                         f"{chunk_size}")
    if num_speakers > MAX_SPEAKERS:
        raise ValueError(f"diarization: num_speakers={num_speakers}: the PIT loss tries every speaker order "
                         f"(N! of them); at most {MAX_SPEAKERS} are supported")
    for m in [median, *medians]:
        if int(m) != m or m < 1 or m % 2 == 0:
            raise ValueError(f"diarization: median filters must be odd numbers of frames >= 1, got {m}")
    scoring = {"threshold": float(threshold), "median": int(median), "thresholds": [float(t) for t in thresholds],
               "medians": [int(m) for m in medians], "collar": float(collar), "skip_overlap": bool(skip_overlap),
               "hidden_size": int(hidden_size), "rnn_layers": int(rnn_layers)}
    base = require_dir(root, "diarization root", LAYOUT)
    sources = kaldi_splits(base) if (base / "train" / "wav.scp").is_file() else rttm_splits(base)
    out = {}
    for split, items in sources.items():
        if not items:
            raise CorpusLayoutError(f"diarization: the {split} split of {root} has no recordings")
        out[split] = []
        for src in items:
            speakers, frames = frame_labels(src, int(frame_shift), int(num_speakers))
            make = lambda f: Recording(src.rec, speakers, f, src.reference, src.uem, int(frame_shift), scoring)
            if split != "train":
                out[split].append(Example(src.rec, src.path, make(frames)))
                continue
            for st, ed in chunks(len(frames), int(chunk_size)):
                out[split].append(Example(f"{src.rec}_{st:07d}_{ed:07d}", src.path, make(frames[st:ed]),
                                          start=st * frame_shift / SAMPLE_RATE, end=ed * frame_shift / SAMPLE_RATE))
    return out


def chunks(num_frames: int, size: int) -> list[tuple[int, int]]:
    """``[start, end)`` frame ranges: consecutive chunks of ``size`` and the shorter rest (the original's cut)."""
    out = [(i * size, (i + 1) * size) for i in range(num_frames // size)]
    if num_frames % size:
        out.append((num_frames - num_frames % size, num_frames))
    return out


def frame_labels(src: Source, frame_shift: int, num_speakers: int) -> tuple[list[str], np.ndarray]:
    """Speakers (column order) and the ``(T, N)`` activity of a whole recording."""
    speakers = sorted(src.turns)
    if len(speakers) > num_speakers:
        raise ValueError(f"diarization: recording {src.rec} has {len(speakers)} speakers ({', '.join(speakers)}) but "
                         f"the task has num_speakers={num_speakers}: set -o task.num_speakers={len(speakers)}")
    total = int(src.duration * SAMPLE_RATE / frame_shift)
    frames = np.zeros((total, num_speakers), dtype=np.uint8)
    for col, spk in enumerate(speakers):
        for st, et in src.turns[spk]:
            a, b = (int(np.rint(t * SAMPLE_RATE / frame_shift)) for t in (st, et))
            frames[max(a, 0):max(min(b, total), 0), col] = 1
    return speakers, frames


def audio_seconds(path: str) -> float:
    import soundfile

    info = soundfile.info(path)
    return info.frames / info.samplerate


# ------------------------------------------------------------------------------------------------
# Kaldi-style folders
# ------------------------------------------------------------------------------------------------


def table(path: Path, columns: int, what: str) -> list[list[str]]:
    """Rows of a Kaldi table file with at least ``columns`` fields (the rest joined into the last)."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(None, columns - 1)
        if len(fields) < columns:
            raise CorpusLayoutError(f"{path}:{n}: {what} needs {columns} fields, got {line!r}")
        rows.append(fields)
    return rows


def kaldi_splits(root: Path) -> dict[str, list[Source]]:
    out = {}
    for split in SPLITS:
        folder = require_dir(root / split, f"diarization {split} split", LAYOUT)
        out[split] = kaldi_folder(folder, root)
    return out


def kaldi_folder(folder: Path, root: Path) -> list[Source]:
    for name in ("wav.scp", "segments", "utt2spk"):
        if not (folder / name).is_file():
            raise CorpusLayoutError(f"diarization: {folder / name} not found. Expected layout:\n{LAYOUT}")
    wavs = {}
    for rec, target in table(folder / "wav.scp", 2, "wav.scp (<recording> <file>)"):
        target = target.strip()
        if target.endswith("|") or target == "-":
            raise CorpusLayoutError(f"{folder / 'wav.scp'}: {rec} is read from a command or stdin ({target!r}); "
                                    "write the audio to files and list their paths instead")
        path = next((p for p in (folder / target, root / target, Path(target)) if p.is_file()), None)
        if path is None:
            raise CorpusLayoutError(f"{folder / 'wav.scp'}: the audio of {rec} ({target}) is not found (looked "
                                    f"relative to {folder} and {root})")
        wavs[rec] = str(path)
    utt2spk = {u: s.strip() for u, s in table(folder / "utt2spk", 2, "utt2spk (<utterance> <speaker>)")}
    turns: dict[str, Turns] = {rec: {} for rec in wavs}
    for utt, rec, st, et in table(folder / "segments", 4, "segments (<utterance> <recording> <start> <end>)"):
        if rec not in wavs:
            raise CorpusLayoutError(f"{folder / 'segments'}: {utt} is in recording {rec}, which wav.scp does not list")
        if utt not in utt2spk:
            raise CorpusLayoutError(f"{folder / 'utt2spk'}: no speaker for segment {utt}")
        turns[rec].setdefault(utt2spk[utt], []).append((float(st), float(et)))
    durations = {}
    if (folder / "reco2dur").is_file():
        durations = {r: float(d) for r, d in table(folder / "reco2dur", 2, "reco2dur (<recording> <seconds>)")}
    reference = read_rttm(folder / "rttm") if (folder / "rttm").is_file() else None
    return [Source(rec, path, durations.get(rec) or audio_seconds(path), {k: merge(v) for k, v in turns[rec].items()},
                   reference.get(rec, {}) if reference is not None else turns[rec]) for rec, path in wavs.items()]


# ------------------------------------------------------------------------------------------------
# a folder of recordings with RTTM files
# ------------------------------------------------------------------------------------------------


def split_file(root: Path, split: str, ext: str) -> Path | None:
    for alias in SPLITS[split]:
        for path in [root / f"{alias}.{ext}", *sorted(root.glob(f"*.{alias}.{ext}"))]:
            if path.is_file():
                return path
    return None


def find_audio(root: Path, rec: str) -> str:
    for folder in (root, root / "wav", root / "audio"):
        for ext in AUDIO:
            if (folder / f"{rec}{ext}").is_file():
                return str(folder / f"{rec}{ext}")
    raise CorpusLayoutError(f"diarization: no audio file for recording {rec} ({rec}.wav/.flac in {root} or "
                            f"{root / 'wav'}). Expected layout:\n{LAYOUT}")


def rttm_splits(root: Path) -> dict[str, list[Source]]:
    out = {}
    for split in SPLITS:
        rttm = split_file(root, split, "rttm")
        if rttm is None:
            raise CorpusLayoutError(f"diarization: {root} has neither {root / 'train' / 'wav.scp'} nor a {split} RTTM "
                                    f"({' / '.join(f'[prefix.]{a}.rttm' for a in SPLITS[split])}). "
                                    f"Expected layout:\n{LAYOUT}")
        turns = read_rttm(rttm)
        uem_path, lst = rttm.with_suffix(".uem"), rttm.with_suffix(".lst")
        uem = read_uem(uem_path) if uem_path.is_file() else None
        if lst.is_file():
            recs = [line.split()[0] for line in lst.read_text().splitlines() if line.strip()]
        else:
            recs = sorted(uem) if uem is not None else sorted(turns)
        items = []
        for rec in recs:
            if uem is not None and rec not in uem:
                raise CorpusLayoutError(f"{uem_path}: no scoring region for recording {rec}")
            path = find_audio(root, rec)
            t = {k: merge(v) for k, v in turns.get(rec, {}).items()}
            items.append(Source(rec, path, audio_seconds(path), t, turns.get(rec, {}), uem[rec] if uem else None))
        out[split] = items
    return out
