"""The feature cache: same numbers as the upstream, keyed on what matters, resumable, crash-safe."""

import os
import time

import pytest
import torch

from minicorpus import tone, write
from s3prl.downstream.cache import CachedDataset, FeatureCache, cache_key, file_digest, plan_shards
from s3prl.downstream.data import Example, audio_duration, read_segment
from s3prl.nn import S3PRLUpstream


@pytest.fixture(scope="module")
def upstream():
    return S3PRLUpstream("mfcc").eval()


def corpus(folder, n=5):
    examples = []
    for i in range(n):
        path = folder / f"{i}.wav"
        write(path, tone(i % 3, 0.3 + 0.1 * i, i))
        examples.append(Example(f"u{i}", str(path), i % 3))
    return examples


def make_cache(folder, examples, fp16=False):
    return FeatureCache(folder, examples, [audio_duration(e) for e in examples], [0], 39, 160, fp16=fp16)


def test_cached_features_equal_the_upstream(tmp_path, upstream):
    examples = corpus(tmp_path / "audio")
    cache = make_cache(tmp_path / "cache", examples)
    cache.build(upstream, progress=False)
    assert not cache.missing()
    for i, ex in enumerate(examples):
        wav = read_segment(ex.path, 0.0, None)
        with torch.no_grad():
            hs, lens = upstream(wav[None], torch.tensor([len(wav)]))
        cached = cache[i]  # (T, L, D)
        assert cached.shape == (int(lens[0][0]), 1, 39)
        torch.testing.assert_close(cached[:, 0], hs[0][0, : int(lens[0][0])], rtol=0, atol=1e-5)
    data = CachedDataset(cache)
    feats, label, uid = data[2]
    assert feats.dtype == torch.float32 and label == examples[2].label and uid == "u2"


def test_fp16_storage(tmp_path, upstream):
    examples = corpus(tmp_path / "audio", 2)
    cache = make_cache(tmp_path / "cache", examples, fp16=True)
    cache.build(upstream, progress=False)
    assert cache[0].dtype == torch.float16


def test_the_key_covers_upstream_layers_dtype_and_audio(tmp_path):
    examples = corpus(tmp_path / "audio", 3)
    ident = {"name": "mfcc", "ckpt_sha256": None}
    key = cache_key(ident, [0], False, examples)
    assert key == cache_key(dict(ident), [0], False, list(examples))
    assert key != cache_key({**ident, "name": "fbank"}, [0], False, examples)
    assert key != cache_key({**ident, "ckpt_sha256": "ab"}, [0], False, examples)
    assert key != cache_key(ident, [1], False, examples)
    assert key != cache_key(ident, [0], True, examples)
    assert key != cache_key(ident, [0], False, examples[:2])
    later = time.time() + 10
    os.utime(examples[0].path, (later, later))  # the audio file changed
    assert key != cache_key(ident, [0], False, examples)


def test_checkpoint_digest_is_the_content_hash(tmp_path):
    import hashlib

    path = tmp_path / "model.pt"
    path.write_bytes(b"weights" * 100)
    expected = hashlib.sha256(b"weights" * 100).hexdigest()
    assert file_digest(path, tmp_path / "memo") == expected
    assert file_digest(path, tmp_path / "memo") == expected  # from the memo
    assert len(list((tmp_path / "memo").iterdir())) == 1 and not list(tmp_path.glob("*.sha256"))
    path.write_bytes(b"other weights")
    assert file_digest(path, tmp_path / "memo") == hashlib.sha256(b"other weights").hexdigest()


def test_an_interrupted_build_resumes_with_the_missing_shards_only(tmp_path, upstream, monkeypatch):
    import s3prl.downstream.cache as cache_module

    monkeypatch.setattr(cache_module, "SHARD_BYTES", 2000)  # several shards for a few clips
    examples = corpus(tmp_path / "audio", 6)
    cache = make_cache(tmp_path / "cache", examples)
    assert len(cache.shards) > 2
    calls = []
    original = FeatureCache.write_shard

    def crash_on_second(self, s, *args):
        calls.append(s)
        if len(calls) == 2:
            tmp = self.shard_path(s).with_name(self.shard_path(s).name + ".tmp99999")
            tmp.write_bytes(b"half a file")  # what a crash mid-write leaves
            raise KeyboardInterrupt
        return original(self, s, *args)

    monkeypatch.setattr(FeatureCache, "write_shard", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        cache.build(upstream, progress=False)
    assert len(cache.missing()) == len(cache.shards) - 1  # nothing half-written under a final name
    monkeypatch.setattr(FeatureCache, "write_shard", original)
    done_before = set(range(len(cache.shards))) - set(cache.missing())
    rebuilt = []
    monkeypatch.setattr(FeatureCache, "write_shard",
                        lambda self, s, *a: rebuilt.append(s) or original(self, s, *a))
    cache.build(upstream, progress=False)
    assert not cache.missing() and not set(rebuilt) & done_before
    assert cache[5].shape[1:] == (1, 39)


def test_shard_plan_is_contiguous():
    shards = plan_shards([1.0] * 10, bytes_per_second=3 * 2**20 * 256 / 10)
    assert shards[0][0] == 0 and shards[-1][1] == 10
    assert all(a[1] == b[0] for a, b in zip(shards, shards[1:]))
