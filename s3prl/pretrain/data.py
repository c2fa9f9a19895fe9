"""Pre-training data: which files, their lengths, the original's filters and buckets, cached features.

Sources (``pretrain_expert.datarc``), the first one set wins:

* ``manifest``: a file list: one audio path per line (relative paths from the list's folder), optionally
  ``<TAB>`` or ``,`` and its length in samples; or a wav2vec 2.0 ``.tsv`` (first line the root folder);
* ``audio_dir``: every .wav / .flac / .ogg file under a folder (recursively);
* ``libri_root`` + ``sets``: LibriSpeech layout; lengths from ``file_path/<set>.csv`` (the original's
  ``len_for_bucket`` tables) when there, else the files under ``libri_root/<set>``.

The original's rules: ``max_timestep`` > 0 drops files at least that long, < 0 drops files not longer than
``-max_timestep`` (lengths in samples); files sorted by length, longest first, are grouped into buckets of
``train_batch_size`` (halved when longer than 99999 and no crop is taken); a last bucket of one file is
dropped; every epoch visits the buckets in a random order, each utterance randomly cropped to
``sequence_length`` frames.

Features are computed once per file and kept in a cache folder (one ``.pt`` per file, keyed by the path,
size, modification time and front-end options), so later epochs and later runs only read them. Files that
cannot be read, or that give too few frames, are skipped and counted.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from ..audio import load_audio

SAMPLE_RATE = 16000
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
HALF_BATCHSIZE_TIME = 99999


@dataclass
class Item:
    path: str
    length: int  # samples at 16 kHz (from the header or the list)


def audio_length(path: str) -> int:
    """Length in 16 kHz samples from the file's header (raises for an unreadable file)."""
    import soundfile

    info = soundfile.info(path)
    return int(round(info.frames * SAMPLE_RATE / info.samplerate))


def list_files(datarc: dict) -> tuple[list[Item], list[str]]:
    """(items, problems): the files of the configured source with their lengths; unreadable ones named."""
    if datarc.get("manifest"):
        listed = read_manifest(datarc["manifest"])
        where = f"manifest {datarc['manifest']}"
    elif datarc.get("audio_dir"):
        root = Path(datarc["audio_dir"])
        if not root.is_dir():
            raise ValueError(f"pretrain_expert.datarc.audio_dir = {str(root)!r} is not a folder")
        listed = [(str(p), None) for p in sorted(root.rglob("*")) if p.suffix.lower() in AUDIO_SUFFIXES]
        where = f"audio_dir {root}"
    elif datarc.get("libri_root"):
        listed, where = libri_files(datarc), f"libri_root {datarc['libri_root']} (sets {datarc['sets']})"
    else:
        raise ValueError("no training data: set pretrain_expert.datarc.libri_root (with sets), audio_dir or "
                         "manifest (e.g. -o config.pretrain_expert.datarc.audio_dir=/data/wavs)")
    items, problems = [], []
    for path, length in listed:
        try:
            items.append(Item(path, int(length) if length is not None else audio_length(path)))
        except Exception as err:  # noqa: BLE001 - libsndfile raises its own types
            problems.append(f"{path}: {str(err).splitlines()[0] if str(err) else type(err).__name__}")
    if not items:
        raise ValueError(f"no readable audio file in {where}" + (f" ({len(problems)} unreadable)" if problems else ""))
    return items, problems


def read_manifest(path: str) -> list[tuple[str, int | None]]:
    if not os.path.isfile(path):
        raise ValueError(f"pretrain_expert.datarc.manifest = {path!r}: no such file")
    lines = [line.rstrip("\n") for line in open(path) if line.strip()]
    base = Path(path).parent
    if lines and "\t" not in lines[0] and Path(lines[0]).is_dir() and all("\t" in x for x in lines[1:]):
        base, lines = Path(lines[0]), lines[1:]  # a wav2vec 2.0 manifest
    out = []
    for line in lines:
        name, _, length = line.replace(",", "\t").partition("\t")
        out.append((str(base / name), int(length) if length.strip() else None))
    return out


def libri_files(datarc: dict) -> list[tuple[str, int | None]]:
    root, sets = Path(datarc["libri_root"]), datarc.get("sets") or []
    if isinstance(sets, str):
        sets = [sets]
    out = []
    for name in sets:
        table = Path(datarc.get("file_path") or "") / f"{name}.csv"
        if datarc.get("file_path") and table.is_file():
            with open(table) as f:
                out += [(str(root / row["file_path"]), int(float(row["length"]))) for row in csv.DictReader(f)]
            continue
        folder = root / name
        if not folder.is_dir():
            raise ValueError(f"LibriSpeech set {name!r}: neither {table} nor the folder {folder} exists "
                             f"(expected {root}/<set>/<speaker>/<chapter>/*.flac)")
        out += [(str(p), None) for p in sorted(folder.rglob("*")) if p.suffix.lower() in AUDIO_SUFFIXES]
    return out


def length_filter(items: list[Item], max_timestep: int) -> list[Item]:
    if max_timestep > 0:
        return [x for x in items if x.length < max_timestep]
    if max_timestep < 0:
        return [x for x in items if x.length > -max_timestep]
    return items


def make_buckets(items: list[Item], batch_size: int, sample_length: int) -> list[list[Item]]:
    """The original's bucketing: longest first, groups of ``batch_size``; a last group of one is dropped."""
    ordered = sorted(items, key=lambda x: -x.length)  # stable: equal lengths keep the listing order
    buckets, current = [], []
    for item in ordered:
        current.append(item)
        if len(current) == batch_size:
            if batch_size >= 2 and max(x.length for x in current) > HALF_BATCHSIZE_TIME and sample_length == 0:
                buckets += [current[: batch_size // 2], current[batch_size // 2:]]
            else:
                buckets.append(current)
            current = []
    if len(current) > 1:
        buckets.append(current)
    return buckets


class FeatureCache:
    """Fbank features of each file, computed once (``prepare``) and read from ``folder`` afterwards."""

    def __init__(self, extract, audio_config: dict, folder: Path):
        self.extract = extract  # (N,) samples -> (T, D) features
        self.options = json.dumps(audio_config, sort_keys=True)
        self.folder = folder

    def key(self, path: str) -> Path:
        stat = os.stat(path)
        text = f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}|{self.options}"
        return self.folder / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.pt"

    def prepare(self, items: list[Item], min_frames: int) -> tuple[list[Item], list[str], int]:
        """Compute the missing features; returns (usable items, problems, number computed now)."""
        from ..progress import progress

        self.folder.mkdir(parents=True, exist_ok=True)
        kept, problems, computed = [], [], 0
        bar = progress(total=len(items), desc="features", unit="file")
        for item in items:
            bar.update(1)
            try:
                target = self.key(item.path)
                if target.is_file():
                    frames = torch.load(target, weights_only=True).size(0)
                else:
                    feats = self.extract(load_audio(item.path, SAMPLE_RATE))  # (T, D)
                    tmp = target.with_suffix(f".tmp{os.getpid()}")
                    torch.save(feats.contiguous(), tmp)
                    os.replace(tmp, target)
                    frames, computed = feats.size(0), computed + 1
            except Exception as err:  # noqa: BLE001 - unreadable or undecodable audio
                problems.append(f"{item.path}: {str(err).splitlines()[0] if str(err) else type(err).__name__}")
                continue
            if frames < min_frames:
                problems.append(f"{item.path}: too short ({frames} frames; at least {min_frames} needed)")
                continue
            kept.append(item)
        bar.close()
        return kept, problems, computed

    def read(self, path: str) -> torch.Tensor:
        return torch.load(self.key(path), weights_only=True)


class PretrainData:
    """``batches(epoch, start)`` for :func:`s3prl.train.train`: a deterministic function of (seed, epoch), so a
    resumed run sees the same batches as an uninterrupted one. ``collate(feats, uids, rng, gen)`` turns the
    cropped features of a bucket into the method's batch, drawing its random decisions from ``rng``
    (``random.Random``) and ``gen`` (``torch.Generator``), both seeded by (seed, epoch, bucket)."""

    def __init__(self, buckets: list[list[Item]], cache: FeatureCache, sample_length: int, seed: int, collate,
                 rank: int = 0, world: int = 1):
        self.buckets, self.cache, self.sample_length, self.seed = buckets, cache, sample_length, seed
        self.collate, self.rank, self.world = collate, rank, world

    def __len__(self) -> int:
        """Batches per epoch of this process (under torchrun: each takes every world-th bucket of the epoch's
        order, the same number on every process)."""
        return len(self.buckets) // self.world

    def crop(self, feats: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if self.sample_length <= 0 or feats.size(0) < self.sample_length:
            return feats
        start = rng.randint(0, feats.size(0) - self.sample_length)
        return feats[start: start + self.sample_length]

    def batch(self, epoch: int, index: int):
        name = f"{self.seed}/{epoch}/{index}"
        rng = random.Random(name)
        gen = torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(name.encode()).digest()[:7], "little"))
        items = self.buckets[index]
        feats = [self.crop(self.cache.read(x.path), rng) for x in items]
        return self.collate(feats, [x.path for x in items], rng, gen)

    def batches(self, epoch: int, start: int):
        order = torch.randperm(len(self.buckets), generator=torch.Generator().manual_seed(self.seed + epoch))
        mine = order[self.rank: len(self) * self.world: self.world]
        for index in mine[start:].tolist():
            yield self.batch(epoch, index)
