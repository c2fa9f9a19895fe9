"""Data of ``s3prl wav2vec2 train``: a manifest split, fairseq's ``--max-tokens`` batches, cropped batches."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from .manifest import RecipeError, read_manifest


def make_batches(sizes: list[int], max_tokens: int | None, max_sentences: int | None, multiple: int,
                 rng: np.random.Generator) -> list[list[int]]:
    """fairseq's ordering and ``batch_by_size``: indices sorted by size, largest first (ties in random order),
    filled while ``longest * count <= max_tokens`` (and ``count <= max_sentences``); a full batch keeps the
    largest multiple of ``multiple`` of its files (or all, when fewer), the rest starts the next one."""
    ties = rng.permutation(len(sizes))
    order = np.lexsort((ties, np.asarray(sizes)))[::-1].tolist()
    batches, batch, longest = [], [], 0
    for idx in order:
        size = sizes[idx]
        new_longest = max(longest, size)
        full = batch and ((max_tokens is not None and new_longest * (len(batch) + 1) > max_tokens)
                          or (max_sentences is not None and len(batch) >= max_sentences))
        if full:
            keep = max(multiple * (len(batch) // multiple), len(batch) % multiple)
            batches.append(batch[:keep])
            batch = batch[keep:]
            longest = max((sizes[i] for i in batch), default=0)
            new_longest = max(longest, size)
        batch.append(idx)
        longest = new_longest
    if batch:
        batches.append(batch)
    return batches


class AudioData:
    """One manifest split: usable files, their batches, and the epoch's cropped batches."""

    def __init__(self, tsv: str, max_tokens, max_sentences, multiple: int, max_sample: int | None,
                 min_sample: int | None, normalize: bool, seed: int, skip_invalid: bool, rank: int = 0,
                 world: int = 1):
        manifest = read_manifest(tsv)
        self.root, self.normalize, self.seed, self.rank, self.world = manifest.root, normalize, seed, rank, world
        self.max_sample = max_sample
        self.files = [(rel, n) for rel, n in manifest.entries if min_sample is None or n >= min_sample]
        self.dropped = len(manifest.entries) - len(self.files)
        sizes = [min(n, max_sample) if max_sample else n for _, n in self.files]
        if max_tokens is not None:
            too_long = [i for i, s in enumerate(sizes) if s > max_tokens]
            if too_long and not skip_invalid:
                rel, n = self.files[too_long[0]]
                raise RecipeError(f"{tsv}: {len(too_long)} file(s) longer than --max-tokens {max_tokens} (e.g. "
                                  f"{rel}, {n} samples): raise --max-tokens, set --max-sample-size, or pass "
                                  "--skip-invalid-size-inputs-valid-test")
            keep = [i for i in range(len(sizes)) if sizes[i] <= max_tokens]
            self.dropped += len(sizes) - len(keep)
            self.files, sizes = [self.files[i] for i in keep], [sizes[i] for i in keep]
        if not self.files:
            raise RecipeError(f"{tsv}: no usable file (all shorter than --min-sample-size {min_sample} or "
                              "longer than --max-tokens)")
        self.batches = make_batches(sizes, max_tokens, max_sentences, multiple, np.random.default_rng(seed))
        self.tsv = tsv

    def epoch_order(self, epoch: int) -> list[int]:
        """This rank's batch indices of ``epoch`` (shuffled per epoch; every rank gets as many)."""
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.batches)).tolist()
        per_rank = len(order) // self.world
        return order[self.rank * per_rank: (self.rank + 1) * per_rank]

    def read(self, i: int) -> torch.Tensor:
        from .featurize import read_audio

        wav = read_audio(os.path.join(self.root, self.files[i][0]))
        if self.normalize:
            wav = F.layer_norm(wav, wav.shape)
        return wav

    def batch(self, b: int, epoch: int):
        """Batch ``b``: every file cropped to the shortest (and ``max_sample``), at a random offset."""
        from .criterion import Wav2Vec2Batch

        wavs = [self.read(i) for i in self.batches[b]]
        target = min(w.numel() for w in wavs)
        if self.max_sample:
            target = min(target, self.max_sample)
        rng = np.random.default_rng([self.seed, epoch, b, 1])
        crops = []
        for w in wavs:
            start = int(rng.integers(0, w.numel() - target + 1))
            crops.append(w[start:start + target])
        return Wav2Vec2Batch(torch.stack(crops), torch.full((len(crops),), target, dtype=torch.long),
                             [self.files[i][0] for i in self.batches[b]])

    def iterate(self, epoch: int, start: int = 0):
        order = self.epoch_order(epoch)
        for b in order[start:]:
            yield self.batch(b, epoch)
