"""Feature-cache shards verify themselves: a damaged, foreign or changed shard is rebuilt with a message."""

import logging
import shutil
import threading
import time

import pytest
import torch

import s3prl.downstream.cache as cache_module
from minicorpus import tone, write
from s3prl.downstream.cache import FeatureCache
from s3prl.downstream.data import Example, audio_duration
from s3prl.nn import S3PRLUpstream


@pytest.fixture(scope="module")
def upstream():
    return S3PRLUpstream("mfcc").eval()


@pytest.fixture(autouse=True)
def small_shards(monkeypatch):
    monkeypatch.setattr(cache_module, "SHARD_BYTES", 2000)  # a few shards for a few clips
    monkeypatch.setattr(cache_module, "POLL_SECONDS", 0.05, raising=False)


@pytest.fixture
def examples(tmp_path):
    out = []
    for i in range(6):
        path = tmp_path / "audio" / f"{i}.wav"
        write(path, tone(i % 3, 0.3 + 0.1 * i, i))
        out.append(Example(f"u{i}", str(path), i % 3))
    return out


def make_cache(folder, examples, fp16=False):
    return FeatureCache(folder, examples, [audio_duration(e) for e in examples], [0], 39, 160, fp16=fp16)


def features(cache):
    return [cache[i] for i in range(len(cache))]


def truncate(path, ctx):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 3 // 5])


def empty(path, ctx):
    path.write_bytes(b"")


def garbage(path, ctx):
    gen = torch.Generator().manual_seed(3)
    path.write_bytes(bytes(torch.randint(0, 256, (path.stat().st_size,), generator=gen, dtype=torch.uint8).tolist()))


def foreign(path, ctx):
    """The same shard of another cache (another key: here the same audio stored in float16)."""
    tmp_path, examples, upstream = ctx
    other = make_cache(tmp_path / "other-key", examples, fp16=True)
    other.build(upstream, progress=False)
    shutil.copyfile(other.shard_path(1), path)


def flip_one_byte(path, ctx=None):
    data = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")  # the tensor data follows the header
    data[(start + len(data)) // 2] ^= 0x10
    path.write_bytes(bytes(data))


DAMAGE = {
    truncate: "truncated",
    empty: "empty",
    garbage: "not a safetensors file",
    foreign: "another cache",
    flip_one_byte: "sha256",
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=[f.__name__ for f in DAMAGE])
def test_a_wrong_shard_is_rebuilt_with_a_message(damage, tmp_path, examples, upstream, caplog):
    fresh = make_cache(tmp_path / "fresh", examples)
    fresh.build(upstream, progress=False)
    expected = features(fresh)

    cache = make_cache(tmp_path / "cache", examples)
    cache.build(upstream, progress=False)
    assert len(cache.shards) >= 3
    damage(cache.shard_path(1), (tmp_path, examples, upstream))

    again = make_cache(tmp_path / "cache", examples)  # a later run
    rebuilt = []
    original = FeatureCache.write_shard
    with caplog.at_level(logging.WARNING, logger="s3prl.downstream.cache"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(FeatureCache, "write_shard", lambda self, s, *a: rebuilt.append(s) or original(self, s, *a))
            again.build(upstream, progress=False)
    assert rebuilt == [1]  # only the wrong one
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(messages) == 1 and "\n" not in messages[0], messages
    assert str(cache.shard_path(1)) in messages[0] and DAMAGE[damage] in messages[0], messages[0]
    got = features(again)
    assert all(g.dtype == e.dtype and torch.equal(g, e) for g, e in zip(got, expected))
    cache_module.check_shard(again.shard_path(1), "cache", 1, again.shards[1], full=True)  # intact now


def test_an_intact_cache_is_not_rewritten_and_says_nothing(tmp_path, examples, upstream, caplog, monkeypatch):
    make_cache(tmp_path / "cache", examples).build(upstream, progress=False)
    monkeypatch.setattr(FeatureCache, "write_shard", lambda *a: pytest.fail("rewrote an intact shard"))
    with caplog.at_level(logging.WARNING, logger="s3prl.downstream.cache"):
        make_cache(tmp_path / "cache", examples).build(upstream, progress=False)
    assert not caplog.records


def test_the_shard_records_key_items_and_digest(tmp_path, examples, upstream):
    from safetensors import safe_open

    cache = make_cache(tmp_path / "cache", examples)
    cache.build(upstream, progress=False)
    first, last = cache.shards[0]
    with safe_open(str(cache.shard_path(0)), framework="pt") as f:
        meta = f.metadata()
    assert meta["key"] == "cache" and meta["items"] == f"{first}-{last}" and len(meta["sha256"]) == 64
    with pytest.raises(cache_module.ShardError, match="another cache"):
        cache_module.check_shard(cache.shard_path(0), "other", 0, cache.shards[0], full=False)
    with pytest.raises(cache_module.ShardError, match="expected shard 1"):
        cache_module.check_shard(cache.shard_path(0), "cache", 1, cache.shards[1], full=False)


def test_a_waiting_rank_leaves_wrong_and_in_progress_shards_to_their_owner(tmp_path, examples, upstream, caplog):
    """Rank 0 of 2 waits on shard 1 (rank 1's): a temporary file and a damaged final file are neither used
    nor deleted by rank 0; once rank 1 has rebuilt it, both ranks read the right features."""
    fresh = make_cache(tmp_path / "fresh", examples)
    fresh.build(upstream, progress=False)
    expected = features(fresh)
    folder = tmp_path / "cache"
    make_cache(folder, examples).build(upstream, progress=False)
    flip_one_byte(make_cache(folder, examples).shard_path(1))
    damaged = (folder / "shard-00001.safetensors").read_bytes()
    (folder / "shard-00001.safetensors.tmp424242").write_bytes(b"half")  # another rank mid-write

    rank0 = make_cache(folder, examples)
    errors = []

    def run_rank0():
        try:
            rank0.build(upstream, rank=0, world_size=2, progress=False)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    thread = threading.Thread(target=run_rank0)
    thread.start()
    time.sleep(1.0)
    assert thread.is_alive(), "rank 0 went on with a damaged shard it does not own"
    assert (folder / "shard-00001.safetensors").read_bytes() == damaged  # not touched by rank 0
    rank1 = make_cache(folder, examples)
    with caplog.at_level(logging.WARNING, logger="s3prl.downstream.cache"):
        rank1.build(upstream, rank=1, world_size=2, progress=False)
    thread.join(30)
    assert not thread.is_alive() and not errors
    assert [r for r in caplog.records if r.levelno >= logging.WARNING and "shard-00001" in r.getMessage()]
    for cache in (rank0, rank1):
        assert all(torch.equal(g, e) for g, e in zip(features(cache), expected))
