"""Examples, the audio dataset, the duration-bucketed batch sampler (DDP sharding, resume) and collate."""

import dataclasses

import pytest
import torch

from minicorpus import SR, tone, write
from s3prl.downstream.data import (AudioDataset, DurationBatchSampler, Example, class_balanced_weights, collate,
                                   crop_window, read_segment)


def test_example_is_frozen_with_the_agreed_fields():
    ex = Example("u1", "/a.wav", 3)
    assert (ex.start, ex.end) == (0.0, None)
    assert [f.name for f in dataclasses.fields(Example)] == ["uid", "path", "label", "start", "end"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ex.label = 4


def durations(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (0.2 + 3 * torch.rand(n, generator=g)).tolist()


def test_batches_respect_the_padded_duration_budget_and_cover_every_item():
    d = durations()
    for shuffle in (False, True):
        sampler = DurationBatchSampler(d, max_seconds=6.0, shuffle=shuffle, seed=1)
        batches = list(sampler)
        for b in batches:
            assert len(b) == 1 or max(d[i] for i in b) * len(b) <= 6.0 + 1e-9
        flat = sorted(i for b in batches for i in b)
        assert flat == list(range(len(d)))  # each item exactly once
        assert len(sampler) == len(batches)


def test_max_items_caps_a_batch():
    batches = list(DurationBatchSampler([0.1] * 50, max_seconds=100.0, max_items=8, shuffle=False))
    assert max(len(b) for b in batches) == 8


def test_epochs_are_reproducible_and_differ():
    a = DurationBatchSampler(durations(), 6.0, seed=3)
    b = DurationBatchSampler(durations(), 6.0, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)


def test_set_epoch_start_skips_exactly_the_consumed_batches():
    sampler = DurationBatchSampler(durations(), 6.0, seed=5)
    sampler.set_epoch(1)
    full = list(sampler)
    sampler.set_epoch(1, start=4)
    assert list(sampler) == full[4:]
    assert len(sampler) == len(full) - 4


def test_ddp_shards_are_disjoint_and_equal_in_count():
    d = durations(61)
    shards = []
    for rank in range(2):
        sampler = DurationBatchSampler(d, 6.0, seed=7, num_replicas=2, rank=rank)
        sampler.set_epoch(0)
        shards.append(list(sampler))
    assert len(shards[0]) == len(shards[1])
    seen0 = {i for b in shards[0] for i in b}
    seen1 = {i for b in shards[1] for i in b}
    assert not seen0 & seen1


def test_balanced_weights_draw_classes_evenly():
    labels = [0] * 90 + [1] * 10
    weights = class_balanced_weights(labels)
    sampler = DurationBatchSampler([1.0] * 100, 10.0, seed=0, weights=weights)
    drawn = [labels[i] for e in range(5) for b in (sampler.set_epoch(e) or list(sampler)) for i in b]
    share = sum(drawn) / len(drawn)
    assert 0.4 < share < 0.6


def test_read_segment_resamples_and_reads_only_the_segment(tmp_path):
    path = tmp_path / "a.wav"
    write(path, tone(0, 1.0, 0, sr=8000), sr=8000)
    full = read_segment(str(path), 0.0, None)
    assert full.shape == (SR,)
    part = read_segment(str(path), 0.25, 0.75)
    assert part.shape == (SR // 2,)


def test_audio_dataset_crops_depend_on_seed_epoch_index_only(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.wav")
        write(paths[-1], tone(i, 2.0, i))
    examples = [Example(f"u{i}", str(p), i) for i, p in enumerate(paths)]
    ds = AudioDataset(examples, crop_seconds=0.5, seed=1)
    assert ds.durations == [0.5] * 3
    first = ds[1][0]
    assert first.shape == (SR // 2,)
    assert torch.equal(first, AudioDataset(examples, crop_seconds=0.5, seed=1)[1][0])
    ds.epoch = 1
    assert not torch.equal(first, ds[1][0])
    assert crop_window(0.4, 0.5, 0, 0, 0) == 0.0  # shorter than the crop: whole utterance


def test_collate_pads_and_stacks_labels():
    items = [(torch.ones(5), 1, "a"), (torch.ones(3), 0, "b")]
    batch = collate(items)
    assert batch.inputs.shape == (2, 5) and batch.lengths.tolist() == [5, 3]
    assert batch.inputs[1, 3:].abs().sum() == 0
    assert batch.labels.tolist() == [1, 0] and batch.uids == ["a", "b"]
    wavs, wavs_len, labels = batch[:3]  # the (wavs, wavs_len, labels) contract
    slots = collate([(torch.ones(2, 4, 8), (1, 2, 3), "a")])
    assert slots.inputs.shape == (1, 2, 4, 8) and slots.labels.shape == (1, 3)
    strings = collate([(torch.ones(2), "spk1", "a")])
    assert strings.labels == ["spk1"]
