"""Examples, the audio dataset, the duration-bucketed batch sampler and the collate function.

An :class:`Example` names one utterance (a file, or a segment of one) and its label. Corpus readers
(``s3prl.downstream.corpora``) return ``{"train": [...], "dev": [...], "test": [...]}`` of them.

Batches are formed by total padded duration, not by utterance count: utterances are bucketed by length,
so a batch of short clips holds many and a batch of long ones few, and little compute goes to padding.
Everything random here (the order of batches, balanced draws, crops) is a function of ``(seed, epoch)``
only, so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple, Sequence

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset, Sampler

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Example:
    """One utterance: ``path`` read from ``start`` to ``end`` seconds (``end=None``: to the end of the file)."""

    uid: str
    path: str
    label: object
    start: float = 0.0
    end: float | None = None


class Batch(NamedTuple):
    """What the collate function returns. ``inputs`` are waveforms (B, T) or cached features (B, T, L, D)."""

    inputs: torch.Tensor
    lengths: torch.Tensor  # (B,) samples (waveforms) or frames (features)
    labels: object  # (B,) or (B, K) long tensor for integer labels, else a list
    uids: list[str]


def read_headers(examples: Sequence[Example]) -> dict[str, tuple[int, int, int]]:
    """``path -> (frames, sample rate, channels)`` of every file the examples use, each header read once
    (nothing decoded)."""
    import soundfile

    headers = {}
    for path in dict.fromkeys(ex.path for ex in examples):
        info = soundfile.info(path)
        headers[path] = (info.frames, info.samplerate, info.channels)
    return headers


def audio_duration(example: Example, headers: dict[str, tuple[int, int, int]] | None = None) -> float:
    """Seconds of audio ``example`` covers, from the file header (``headers`` of :func:`read_headers`, else
    read here; the file is not decoded)."""
    if example.end is not None:
        return max(0.0, example.end - example.start)
    frames, rate, _ = headers[example.path] if headers is not None else read_headers([example])[example.path]
    return max(0.0, frames / rate - example.start)


def conversion_notice(headers: dict[str, tuple[int, int, int]]) -> str | None:
    """What reading these files converts (channels averaged, rates resampled); ``headers`` of :func:`read_headers`."""
    from ..audio import describe_conversions

    return describe_conversions([(rate, channels) for _, rate, channels in headers.values()], SAMPLE_RATE)


def read_segment(path: str, start: float, end: float | None, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Samples of ``path`` between ``start`` and ``end`` seconds as a 1-D float tensor at ``sample_rate``.

    Only the segment is read from disk; files at another rate are resampled (band-limited), multi-channel
    files are averaged to mono.
    """
    import soundfile

    from ..audio import resample

    info = soundfile.info(path)
    first = int(round(start * info.samplerate))
    last = info.frames if end is None else min(info.frames, int(round(end * info.samplerate)))
    data, rate = soundfile.read(path, start=first, stop=max(first, last), dtype="float32", always_2d=True)
    wav = torch.from_numpy(data).mean(dim=1)  # (N,)
    if rate != sample_rate:
        wav = resample(wav, rate, sample_rate)
    return wav.contiguous()


def add_dither(wav: torch.Tensor, dither: float, uid: str) -> torch.Tensor:
    """``wav`` plus white noise of standard deviation ``dither``, the same for an utterance every time.

    Kaldi's remedy for empty frequency bands: 8 kHz audio resampled to 16 kHz has no energy above 4 kHz, and
    log filterbanks with per-utterance CMVN blow those constant bands up to values in the thousands.
    """
    if dither <= 0:
        return wav
    seed = int(hashlib.sha1(uid.encode()).hexdigest()[:15], 16)
    noise = torch.randn(wav.shape, generator=torch.Generator().manual_seed(seed))
    return wav + dither * noise


def crop_window(duration: float, crop: float, seed: int, epoch: int, index: int) -> float:
    """Start (seconds) of a random ``crop``-second window in ``duration`` seconds, fixed by (seed, epoch, index)."""
    if duration <= crop:
        return 0.0
    rng = random.Random(f"{seed}/{epoch}/{index}")  # string seeds hash deterministically (sha512)
    return rng.uniform(0.0, duration - crop)


class AudioDataset(Dataset):
    """Waveforms of ``examples``: item ``i`` is ``(wav (T,), label, uid)``.

    Args:
        examples: the utterances.
        encode: turns an example's label into what the loss wants (e.g. a class index).
        crop_seconds: if set, a random window of at most this length (a new one each epoch), as the
            original's training crops for speaker tasks; ``None`` reads whole utterances.
        seed: seed of the crops; the window depends on ``(seed, epoch, index)`` only.
        durations: seconds per example if already known (else read from the file headers).
        dither: standard deviation of the white noise added to every utterance (see :func:`add_dither`).
    """

    def __init__(self, examples: Sequence[Example], encode: Callable[[object], object] = lambda label: label,
                 crop_seconds: float | None = None, seed: int = 0, durations: Sequence[float] | None = None,
                 sample_rate: int = SAMPLE_RATE, dither: float = 0.0):
        self.examples = list(examples)
        self.dither = dither
        self.encode = encode
        self.crop_seconds = crop_seconds
        self.seed = seed
        self.epoch = 0  # set before each epoch; DataLoader workers get a fresh copy at every iter()
        self.sample_rate = sample_rate
        self.full_durations = list(durations) if durations is not None else [audio_duration(e) for e in self.examples]

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def durations(self) -> list[float]:
        """Seconds each item will hold (after cropping): what the batch sampler budgets."""
        if self.crop_seconds is None:
            return list(self.full_durations)
        return [min(d, self.crop_seconds) for d in self.full_durations]

    def __getitem__(self, index: int):
        ex = self.examples[index]
        start, end = ex.start, ex.end
        if self.crop_seconds is not None:
            offset = crop_window(self.full_durations[index], self.crop_seconds, self.seed, self.epoch, index)
            start = ex.start + offset
            end = start + self.crop_seconds if self.full_durations[index] > self.crop_seconds else ex.end
        wav = add_dither(read_segment(ex.path, start, end, self.sample_rate), self.dither, ex.uid)
        return wav, self.encode(ex.label), ex.uid


def collate(items: list[tuple[torch.Tensor, object, str]]) -> Batch:
    """Pad ``(input, label, uid)`` items into one :class:`Batch`; inputs are padded with zeros along dim 0."""
    inputs = [item[0] for item in items]
    lengths = torch.tensor([x.size(0) for x in inputs], dtype=torch.long)
    padded = pad_sequence(inputs, batch_first=True)  # (B, T, ...)
    labels = [item[1] for item in items]
    if all(isinstance(y, int) for y in labels):
        labels = torch.tensor(labels, dtype=torch.long)  # (B,)
    elif all(isinstance(y, tuple) and all(isinstance(v, int) for v in y) for y in labels):
        labels = torch.tensor(labels, dtype=torch.long)  # (B, K)
    return Batch(padded, lengths, labels, [item[2] for item in items])


class DurationBatchSampler(Sampler):
    """Batches of indices whose padded duration (longest item x count) stays within ``max_seconds``.

    Training (``shuffle=True``): each epoch the items are shuffled (or, with ``weights``, drawn with
    replacement in proportion to them: the original's balanced sampling), cut into buckets of
    ``bucket_batches`` batches' worth, sorted by duration inside a bucket, packed, and the batches shuffled.
    Evaluation (``shuffle=False``): sorted by duration and packed, every item exactly once.

    Under DDP, every rank computes the same batch list and takes every ``num_replicas``-th batch; training
    drops the few last batches that do not divide evenly so that all ranks take the same number of steps.
    ``set_epoch(epoch, start)`` selects the epoch and skips its first ``start`` batches (of this rank):
    that is how a resumed run continues from its exact data position.
    """

    def __init__(self, durations: Sequence[float], max_seconds: float, max_items: int | None = None,
                 shuffle: bool = True, seed: int = 0, weights: Sequence[float] | None = None,
                 num_replicas: int = 1, rank: int = 0, bucket_batches: int = 50):
        if max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} out of range for {num_replicas} replicas")
        if weights is not None and len(weights) != len(durations):
            raise ValueError(f"{len(weights)} weights for {len(durations)} items")
        self.durations = [float(d) for d in durations]
        self.max_seconds = float(max_seconds)
        self.max_items = max_items
        self.shuffle = shuffle
        self.seed = seed
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        self.num_replicas = num_replicas
        self.rank = rank
        self.bucket_batches = bucket_batches
        self.epoch = 0
        self.start = 0
        self._memo: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch = epoch
        self.start = start

    def pack(self, order: list[int]) -> list[list[int]]:
        """Greedy packing of ``order`` (already sorted by duration) into batches within the budget."""
        batches, current, longest = [], [], 0.0
        for i in order:
            longest_if_added = max(longest, self.durations[i])
            full = self.max_items is not None and len(current) >= self.max_items
            if current and (full or longest_if_added * (len(current) + 1) > self.max_seconds):
                batches.append(current)
                current, longest_if_added = [], self.durations[i]
            current.append(i)
            longest = longest_if_added
        if current:
            batches.append(current)
        return batches

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """All batches of ``epoch`` before sharding by rank."""
        n = len(self.durations)
        if not self.shuffle:
            return self.pack(sorted(range(n), key=lambda i: (self.durations[i], i)))
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        if self.weights is not None:
            order = torch.multinomial(self.weights, n, replacement=True, generator=gen).tolist()
        else:
            order = torch.randperm(n, generator=gen).tolist()
        mean = sum(self.durations) / max(n, 1)
        per_batch = max(1, int(self.max_seconds // max(mean, 1e-3)))
        if self.max_items is not None:
            per_batch = min(per_batch, self.max_items)
        bucket = max(1, per_batch * self.bucket_batches)
        batches = []
        for first in range(0, n, bucket):
            chunk = sorted(order[first:first + bucket], key=lambda i: self.durations[i])
            batches.extend(self.pack(chunk))
        shuffled = torch.randperm(len(batches), generator=gen).tolist()
        return [batches[j] for j in shuffled]

    def rank_batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches of ``epoch`` (remembered for the last epoch asked)."""
        if self._memo is None or self._memo[0] != epoch:
            batches = self.epoch_batches(epoch)
            if self.shuffle and self.num_replicas > 1:
                batches = batches[: len(batches) // self.num_replicas * self.num_replicas]
            self._memo = (epoch, batches[self.rank::self.num_replicas])
        return self._memo[1]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.rank_batches(self.epoch)[self.start:]

    def __len__(self) -> int:
        return max(0, len(self.rank_batches(self.epoch)) - self.start)


def class_balanced_weights(labels: Sequence[object]) -> list[float]:
    """Per-item weights so that every class is drawn equally often (weight = 1 / class count)."""
    counts: dict[object, int] = {}
    for y in labels:
        counts[y] = counts.get(y, 0) + 1
    return [1.0 / counts[y] for y in labels]


def total_hours(durations: Sequence[float]) -> float:
    return math.fsum(durations) / 3600.0
