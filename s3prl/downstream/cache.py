"""Feature cache: a frozen upstream's hidden states, computed once and reused across epochs and runs.

With a frozen upstream, SUPERB training spends most of its time recomputing the same hidden states every
epoch. The cache runs the upstream once per split and keeps the selected hidden states on disk:

* one folder per key, ``<cache_dir>/<upstream>/<key>/``; the key (sha256) covers the upstream name, its
  options, the checkpoint file's content hash, the selected layers, the storage dtype and every utterance
  (id, file, segment, file size and modification time), so anything that changes the features misses it;
* sharded ``shard-NNNNN.safetensors`` files (item index -> (T, L, D) tensor), each written to a temporary
  name and renamed into place: a crash mid-write leaves no partial shard under the final name, and an
  interrupted build resumes with the shards still missing;
* under DDP, the processes of a machine share the work (local rank ``r`` computes the shards
  ``i % local_world == r``) and each waits for all of them by polling the folder: no collective call, so no
  timeout however long the extraction takes; machines with a shared folder may write a shard twice, with
  identical contents, each write atomic;
* optional float16 storage (half the disk space).

Shards are read lazily through memory maps, so a split larger than memory works.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Sequence

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.nn.utils.rnn import pad_sequence

from .data import SAMPLE_RATE, DurationBatchSampler, Example, add_dither, crop_window, read_segment

FORMAT = 1
SHARD_BYTES = 256 * 2**20  # a shard holds about this much (estimated from durations)


def file_digest(path: str | os.PathLike, memo_dir: str | os.PathLike | None = None) -> str:
    """sha256 of a checkpoint file (or, for a folder, of its files). With ``memo_dir``, the digest is
    remembered there by path, size and mtime, so that a multi-GB checkpoint is hashed once."""
    path = Path(path).resolve()
    if path.is_dir():
        parts = [f"{p.relative_to(path)}:{file_digest(p, memo_dir)}" for p in sorted(path.rglob("*"))
                 if p.is_file() and not p.name.endswith((".sha256", ".lock"))]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()
    stat = path.stat()
    stamp = f"{stat.st_size} {stat.st_mtime_ns}"
    memo = Path(memo_dir) / (hashlib.sha256(str(path).encode()).hexdigest()[:32] + ".txt") if memo_dir else None
    if memo is not None and memo.is_file():
        digest, _, old_stamp = memo.read_text().strip().partition(" ")
        if old_stamp == stamp:
            return digest
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    if memo is not None:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(memo.name + f".tmp{os.getpid()}")
        tmp.write_text(f"{digest.hexdigest()} {stamp}\n")
        os.replace(tmp, memo)
    return digest.hexdigest()


def audio_fingerprint(examples: Sequence[Example]) -> str:
    """sha256 of every utterance's id, file, segment, file size and mtime (not the samples: a corpus is large)."""
    digest = hashlib.sha256()
    for ex in examples:
        stat = os.stat(ex.path)
        digest.update(f"{ex.uid}\t{os.path.abspath(ex.path)}\t{ex.start}\t{ex.end}\t{stat.st_size}\t"
                      f"{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_key(upstream_id: dict, layers: Sequence[int], fp16: bool, examples: Sequence[Example],
              dither: float = 0.0) -> str:
    """The folder name of a cache: sha256 over everything that determines its contents (``dither``: the
    noise added to the audio, see ``data.add_dither``)."""
    fields = {"format": FORMAT, "upstream": upstream_id, "layers": list(layers), "fp16": fp16,
              "sample_rate": SAMPLE_RATE, "audio": audio_fingerprint(examples), "dither": dither}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:24]


def plan_shards(durations: Sequence[float], bytes_per_second: float) -> list[tuple[int, int]]:
    """Consecutive ``[first, last)`` item ranges of about ``SHARD_BYTES`` each."""
    shards, first, size = [], 0, 0.0
    for i, d in enumerate(durations):
        size += d * bytes_per_second
        if size >= SHARD_BYTES:
            shards.append((first, i + 1))
            first, size = i + 1, 0.0
    if first < len(durations):
        shards.append((first, len(durations)))
    return shards


class FeatureCache:
    """The cached hidden states of ``examples`` under ``folder``; ``cache[i]`` is item ``i``'s (T, L, D) tensor.

    Build it with :meth:`build` (a no-op when complete). ``frames_per_second`` converts durations to frames.
    """

    def __init__(self, folder: str | os.PathLike, examples: Sequence[Example], durations: Sequence[float],
                 layers: Sequence[int], hidden_size: int, downsample_rate: int, fp16: bool = False,
                 dither: float = 0.0):
        self.folder = Path(folder)
        self.dither = dither
        self.examples = list(examples)
        self.durations = list(durations)
        self.layers = list(layers)
        self.fp16 = fp16
        self.downsample_rate = downsample_rate
        bytes_per_second = SAMPLE_RATE / downsample_rate * len(self.layers) * hidden_size * (2 if fp16 else 4)
        self.bytes_per_second = bytes_per_second
        self.shards = plan_shards(self.durations, bytes_per_second)
        self.shard_of = [s for s, (a, b) in enumerate(self.shards) for _ in range(a, b)]
        self._handles: dict[int, object] = {}

    def shard_path(self, s: int) -> Path:
        return self.folder / f"shard-{s:05d}.safetensors"

    def missing(self) -> list[int]:
        return [s for s in range(len(self.shards)) if not self.shard_path(s).is_file()]

    def estimated_bytes(self) -> float:
        return sum(self.durations) * self.bytes_per_second

    def build(self, upstream: torch.nn.Module, device: str | torch.device = "cpu", batch_seconds: float = 120.0,
              rank: int = 0, world_size: int = 1, progress: bool = True) -> None:
        """Compute the missing shards (this rank's share), then wait until every shard exists."""
        from tqdm import tqdm

        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob("*.tmp*"):  # left by a crash mid-write; rewritten below
            if stale.name.endswith(f".tmp{os.getpid()}") or time.time() - stale.stat().st_mtime > 60:
                stale.unlink(missing_ok=True)
        todo = [s for s in self.missing() if s % world_size == rank]
        seconds = sum(self.durations[i] for s in todo for i in range(*self.shards[s]))
        with tqdm(total=round(seconds), unit="s audio", desc=f"caching features in {self.folder.name}",
                  disable=not progress or not todo) as bar:
            for s in todo:
                self.write_shard(s, upstream, device, batch_seconds)
                bar.update(round(sum(self.durations[i] for i in range(*self.shards[s]))))
        while self.missing():  # other ranks' shards
            time.sleep(2.0)
        self.write_meta()

    @torch.inference_mode()
    def write_shard(self, s: int, upstream: torch.nn.Module, device, batch_seconds: float) -> None:
        first, last = self.shards[s]
        sampler = DurationBatchSampler(self.durations[first:last], batch_seconds, shuffle=False)
        tensors = {}
        for batch in sampler:
            ids = [first + j for j in batch]
            wavs = [add_dither(read_segment(self.examples[i].path, self.examples[i].start, self.examples[i].end),
                               self.dither, self.examples[i].uid) for i in ids]
            lens = torch.tensor([len(w) for w in wavs], device=device)
            all_hs, all_lens = upstream(pad_sequence(wavs, batch_first=True).to(device), lens)
            for b, i in enumerate(ids):
                n = int(all_lens[self.layers[0]][b])
                h = torch.stack([all_hs[l][b, :n] for l in self.layers], dim=1)  # (T, L, D)
                tensors[str(i)] = (h.half() if self.fp16 else h.float()).cpu().contiguous()
        tmp = self.shard_path(s).with_name(self.shard_path(s).name + f".tmp{os.getpid()}")
        save_file(tensors, str(tmp))
        os.replace(tmp, self.shard_path(s))

    def write_meta(self) -> None:
        """A readable record of what the folder holds (not needed to read it: the key is the folder name)."""
        meta = {"format": FORMAT, "items": len(self.examples), "shards": len(self.shards), "layers": self.layers,
                "dtype": "float16" if self.fp16 else "float32", "downsample_rate": self.downsample_rate,
                "hours": round(sum(self.durations) / 3600, 3), "first_uid": self.examples[0].uid if self.examples else None}
        path = self.folder / "meta.json"
        if not path.is_file():
            tmp = path.with_name(f"meta.json.tmp{os.getpid()}")
            tmp.write_text(json.dumps(meta, indent=1))
            os.replace(tmp, path)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> torch.Tensor:
        s = self.shard_of[i]
        if s not in self._handles:  # opened lazily in each DataLoader worker
            self._handles[s] = safe_open(str(self.shard_path(s)), framework="pt")
        return self._handles[s].get_tensor(str(i))

    def __getstate__(self):  # safetensors handles do not pickle; workers reopen them
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state


class CachedDataset(torch.utils.data.Dataset):
    """The cached twin of ``AudioDataset``: item ``i`` is ``(features (T, L, D) float32, label, uid)``.

    Training crops (``crop_seconds``) are taken in frames from the whole utterance's features, with the
    same ``(seed, epoch, index)`` window an ``AudioDataset`` would draw.
    """

    def __init__(self, cache: FeatureCache, encode=lambda label: label, crop_seconds: float | None = None,
                 seed: int = 0):
        self.cache = cache
        self.examples = cache.examples
        self.encode = encode
        self.crop_seconds = crop_seconds
        self.seed = seed
        self.epoch = 0
        self.frames_per_second = SAMPLE_RATE / cache.downsample_rate

    def __len__(self) -> int:
        return len(self.cache)

    @property
    def durations(self) -> list[float]:
        if self.crop_seconds is None:
            return list(self.cache.durations)
        return [min(d, self.crop_seconds) for d in self.cache.durations]

    def __getitem__(self, index: int):
        h = self.cache[index].float()  # (T, L, D)
        if self.crop_seconds is not None:
            start = crop_window(self.cache.durations[index], self.crop_seconds, self.seed, self.epoch, index)
            first = int(start * self.frames_per_second)
            h = h[first:first + max(1, round(self.crop_seconds * self.frames_per_second))]
        ex = self.examples[index]
        return h, self.encode(ex.label), ex.uid
