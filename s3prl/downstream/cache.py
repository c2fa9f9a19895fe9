"""Feature cache: a frozen upstream's hidden states, computed once and reused across epochs and runs.

With a frozen upstream, SUPERB training spends most of its time recomputing the same hidden states every
epoch. The cache runs the upstream once per split and keeps the selected hidden states on disk:

* one folder per key, ``<cache_dir>/<upstream>/<key>/``; the key (sha256) covers the upstream name, its
  options, the checkpoint file's content hash, the selected layers, the storage dtype and every utterance
  (id, file, segment, file size and modification time), so anything that changes the features misses it;
* sharded ``shard-NNNNN.safetensors`` files (item index -> (T, L, D) tensor), each written to a temporary
  name and renamed into place: a crash mid-write leaves no partial shard under the final name, and an
  interrupted build resumes with the shards still missing;
* every shard verifies itself: its safetensors metadata records the cache key, the shard number, its item
  range and the sha256 of the whole file (computed with that field blanked). Each build checks the header,
  the key, the items and the file size of every shard, and the sha256 of the shards it owns; a shard that
  fails (truncated, empty, garbage, another cache's, changed bits) is deleted and rebuilt with a one-line
  warning naming the file and the fault. A ``shard-NNNNN.verified`` note (size, mtime, inode) lets the
  processes that do not own a shard skip re-hashing a file already verified since it last changed;
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
import logging
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
POLL_SECONDS = 2.0  # how often a process waiting on another's shards looks at the folder
MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit on the JSON header
_PENDING = b"0" * 64  # the sha256 field while the file's own digest is computed

logger = logging.getLogger(__name__)


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


class ShardError(ValueError):
    """What is wrong with a cache shard (the message completes ``<file> ...``)."""


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """(size, mtime_ns, inode) of a file, None when absent: a replaced or rewritten file gets a new stamp."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def read_header(path: Path) -> tuple[int, dict]:
    """(header length, header dict) of a safetensors file; ``ShardError`` when it is not readable."""
    size = os.path.getsize(path)
    if size == 0:
        raise ShardError("is empty (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ShardError(f"is truncated ({size} bytes, less than a header)")
        n = int.from_bytes(head, "little")
        if n > MAX_HEADER_BYTES:
            raise ShardError("is not a safetensors file (its header length is nonsense)")
        if n > size - 8:
            raise ShardError(f"is truncated ({size} bytes, its header alone needs {8 + n})")
        try:
            header = json.loads(f.read(n))
        except ValueError:
            raise ShardError("is not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise ShardError("is not a safetensors file (its header is not a JSON object)")
    return n, header


def shard_digest(path: Path, header_len: int, recorded: str) -> str:
    """sha256 of a shard as it was when written: with the recorded digest blanked out of its header."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        head = f.read(8 + header_len)
        if head.count(recorded.encode()) != 1:
            raise ShardError("has a damaged header (its sha256 field is unreadable)")
        digest.update(head.replace(recorded.encode(), _PENDING))
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def check_shard(path: Path, key: str, shard: int, items: tuple[int, int], full: bool) -> None:
    """Raise ``ShardError`` unless ``path`` is shard ``shard`` of cache ``key`` holding ``items`` = [first, last),
    complete (size agrees with its header) and, with ``full``, bit for bit as written (sha256)."""
    n, header = read_header(path)
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str) or "key" not in meta:
        raise ShardError("has no verification record (written by an older s3prl or another program)")
    if meta["key"] != key:
        raise ShardError(f"belongs to another cache (key {meta['key']!r}, this folder's is {key!r})")
    first, last = items
    if meta.get("shard") != str(shard) or meta.get("items") != f"{first}-{last}":
        raise ShardError(f"is shard {meta.get('shard')} with items {meta.get('items')}, expected shard {shard} "
                         f"with items {first}-{last}")
    if set(header) != {str(i) for i in range(first, last)}:
        raise ShardError(f"does not hold exactly the items {first}-{last}")
    try:
        end = max((int(t["data_offsets"][1]) for t in header.values()), default=0)
    except (TypeError, KeyError, IndexError, ValueError):
        raise ShardError("has a malformed header (tensor offsets)") from None
    size, expected = os.path.getsize(path), 8 + n + end
    if size != expected:
        what = "truncated" if size < expected else "longer than written"
        raise ShardError(f"is {what} ({size} bytes, its header says {expected})")
    if full and shard_digest(path, n, meta["sha256"]) != meta["sha256"]:
        raise ShardError("fails its sha256 check (its bytes changed after it was written)")


def seal(path: Path) -> None:
    """Write a freshly saved shard's sha256 into its header (the field holds ``_PENDING`` until then)."""
    with open(path, "r+b") as f:
        n = int.from_bytes(f.read(8), "little")
        header = f.read(n)
        if header.count(_PENDING) != 1:
            raise RuntimeError(f"{path}: the sha256 placeholder is not where it was written")
        digest = shard_digest(path, n, _PENDING.decode())
        f.seek(8 + header.index(_PENDING))
        f.write(digest.encode())


class FeatureCache:
    """The cached hidden states of ``examples`` under ``folder``; ``cache[i]`` is item ``i``'s (T, L, D) tensor.

    Build it with :meth:`build` (a no-op when complete and intact). ``key`` is the cache key the shards must
    carry (default: the folder name, which is the key for the runner's folders).
    """

    def __init__(self, folder: str | os.PathLike, examples: Sequence[Example], durations: Sequence[float],
                 layers: Sequence[int], hidden_size: int, downsample_rate: int, fp16: bool = False,
                 dither: float = 0.0, key: str | None = None):
        self.folder = Path(folder)
        self.key = key if key is not None else self.folder.name
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
        self._good: dict[int, tuple] = {}  # shard -> stamp of the file this process verified (or wrote)
        self._bad: dict[int, tuple] = {}  # shard -> stamp of a file found wrong that another process owns

    def shard_path(self, s: int) -> Path:
        return self.folder / f"shard-{s:05d}.safetensors"

    def note_path(self, s: int) -> Path:
        return self.folder / f"shard-{s:05d}.verified"

    def missing(self) -> list[int]:
        return [s for s in range(len(self.shards)) if not self.shard_path(s).is_file()]

    def estimated_bytes(self) -> float:
        return sum(self.durations) * self.bytes_per_second

    def build(self, upstream: torch.nn.Module, device: str | torch.device = "cpu", batch_seconds: float = 120.0,
              rank: int = 0, world_size: int = 1, progress: bool = True) -> None:
        """Verify this rank's shards and compute the missing or wrong ones, then wait until every other shard
        exists and is intact (its owner rebuilds a wrong one)."""
        from ..progress import progress as progress_bar

        self.folder.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temporaries()
        mine = [s for s in range(len(self.shards)) if s % world_size == rank]
        todo = [s for s in mine if not self._verify_own(s)]
        seconds = sum(self.durations[i] for s in todo for i in range(*self.shards[s]))
        with progress_bar(total=round(seconds), unit="s audio", desc=f"caching features in {self.folder.name}",
                          enabled=progress and bool(todo)) as bar:
            for s in todo:
                self.write_shard(s, upstream, device, batch_seconds)
                bar.update(round(sum(self.durations[i] for i in range(*self.shards[s]))))
        others = [s for s in range(len(self.shards)) if s % world_size != rank]
        while others:  # other ranks' shards: only complete files under the final name are looked at
            others = [s for s in others if not self._foreign_ok(s)]
            if others:
                time.sleep(POLL_SECONDS)
        self.write_meta()

    def _remove_stale_temporaries(self) -> None:
        for stale in self.folder.glob("*.tmp*"):  # left by a crash mid-write; rewritten below
            try:
                if stale.name.endswith(f".tmp{os.getpid()}") or time.time() - stale.stat().st_mtime > 60:
                    stale.unlink(missing_ok=True)
            except FileNotFoundError:  # another rank just renamed or removed it
                pass

    def _check(self, s: int, full: bool) -> str | None:
        """What is wrong with shard ``s``'s file (None: nothing)."""
        try:
            check_shard(self.shard_path(s), self.key, s, self.shards[s], full)
        except ShardError as e:
            return str(e)
        except OSError as e:
            return f"cannot be read ({e.strerror or e})"
        return None

    def _verify_own(self, s: int) -> bool:
        """Shard ``s`` of this rank: True when present and intact; a wrong one is reported and deleted."""
        path = self.shard_path(s)
        stamp = _stamp(path)
        if stamp is None:
            return False
        if self._good.get(s) == stamp:
            return True
        problem = self._check(s, full=True)
        if problem is None:
            self._mark_good(s, stamp)
            return True
        logger.warning("feature cache: %s %s; deleting it and computing it again", path, problem)
        if _stamp(path) == stamp:  # not replaced meanwhile by a process of another machine
            path.unlink(missing_ok=True)
        self.note_path(s).unlink(missing_ok=True)
        return False

    def _foreign_ok(self, s: int) -> bool:
        """Shard ``s`` of another rank: True once its file exists and is intact. A wrong file is left to its
        owner (which deletes and rebuilds it); a file is hashed here only when no note vouches for it."""
        stamp = _stamp(self.shard_path(s))
        if stamp is None or self._bad.get(s) == stamp:
            return False
        if self._good.get(s) == stamp:
            return True
        problem = self._check(s, full=False)
        if problem is None and not self._note_vouches(s, stamp):
            problem = self._check(s, full=True)
        if problem is not None:
            self._bad[s] = stamp
            logger.debug("feature cache: %s %s; waiting for its owner to rebuild it", self.shard_path(s), problem)
            return False
        self._mark_good(s, stamp)
        return True

    def _note_vouches(self, s: int, stamp: tuple) -> bool:
        try:
            note = json.loads(self.note_path(s).read_text())
            return tuple(note["stamp"]) == stamp
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def _mark_good(self, s: int, stamp: tuple) -> None:
        """Remember (here and in the note beside the shard) that this exact file passed the full check."""
        self._good[s] = stamp
        if self._note_vouches(s, stamp):
            return
        note = self.note_path(s)
        tmp = note.with_name(note.name + f".tmp{os.getpid()}")
        try:
            tmp.write_text(json.dumps({"stamp": list(stamp)}))
            os.replace(tmp, note)
        except OSError:  # only an optimisation for the other ranks
            tmp.unlink(missing_ok=True)

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
        path = self.shard_path(s)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        meta = {"format": str(FORMAT), "key": self.key, "shard": str(s), "items": f"{first}-{last}",
                "sha256": _PENDING.decode()}
        save_file(tensors, str(tmp), metadata=meta)
        seal(tmp)
        os.replace(tmp, path)
        self._mark_good(s, _stamp(path))

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
        if s not in self._handles:  # opened lazily in each DataLoader worker (verified by ``build``)
            try:
                self._handles[s] = safe_open(str(self.shard_path(s)), framework="pt")
            except Exception as e:  # safetensors raises its own types
                raise RuntimeError(f"feature cache: {self.shard_path(s)} cannot be read ({e}); run again: the "
                                   "next build checks the shards and computes the wrong ones again") from None
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
