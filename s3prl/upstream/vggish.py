"""VGGish (Hershey et al. 2017, PyTorch port torchvggish): one 128-d embedding per 0.96 s of audio.

Front-end, as the original (float64 numpy in the original, float64 torch here): frames of 25 ms (400
samples) every 10 ms (160), no padding, periodic Hann window, magnitude of a 512-point real FFT, 64 HTK
mel bands over 125-7500 Hz (triangles on the mel axis, DC bin excluded), ``log(mel + 0.01)``; then
non-overlapping examples of 96 frames (an incomplete tail is dropped), cast to float32.
Model: VGG conv stack (64, 128, 256, 256, 512, 512 channels, 4 max-pools) and three ReLU layers
(12288 -> 4096 -> 4096 -> 128). Post-processing (``postprocess=True``, the default): PCA whitening with the
released parameters, clipping to [-2, 2] and 8-bit quantisation, returned as floats in [0, 255].

The original runs each utterance on its own, so batches do not change results. It needs at least one
example: clips shorter than 15600 samples (0.975 s) raise a ValueError here (the original crashes).
The s3prl wrapper never resamples (its input is 16 kHz), so resampling plays no part.

Checkpoint: the torchvggish weights ``vggish-10086976.pth`` (a plain state dict: ``features.<i>``,
``embeddings.<i>``) and the PCA file ``vggish_pca_params-970ea276.pth`` (``pca_eigen_vectors`` (128, 128),
``pca_means`` (128,), numpy arrays or tensors). The PCA file is the entry's second URL; ``pca=`` overrides
it. A single file ``{'vggish': weights, 'pca': pca}`` (what the original wrapper builds in memory) also loads.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint as ckpt_io
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointFormatError
from . import windows
from .byol_a import describe_format

SAMPLE_RATE = 16000
WINDOW, HOP, N_FFT = 400, 160, 512  # 25 ms, 10 ms, next power of two
N_MELS, MEL_LOW, MEL_HIGH, LOG_OFFSET = 64, 125.0, 7500.0, 0.01
EXAMPLE_FRAMES = 96  # 0.96 s per example, examples do not overlap
MIN_SAMPLES = WINDOW + (EXAMPLE_FRAMES - 1) * HOP  # 15600: one complete example
QUANT_MIN, QUANT_MAX = -2.0, 2.0
EMBEDDING = 128
CONV_CHANNELS = (64, 128, 256, 256, 512, 512)
POOL_AFTER = (0, 1, 3, 5)  # conv indices followed by a 2x2 max-pool


@functools.lru_cache(maxsize=1)
def mel_matrix() -> np.ndarray:
    """(257, 64) float64 weights: HTK-mel triangles (1127 ln(1 + f / 700)) over the FFT bins, DC bin zeroed."""
    to_mel = lambda f: 1127.0 * np.log(1.0 + f / 700.0)  # noqa: E731
    bins_mel = to_mel(np.linspace(0.0, SAMPLE_RATE / 2.0, N_FFT // 2 + 1))
    edges = np.linspace(to_mel(MEL_LOW), to_mel(MEL_HIGH), N_MELS + 2)
    weights = np.empty((N_FFT // 2 + 1, N_MELS))
    for i in range(N_MELS):
        low, center, high = edges[i : i + 3]
        rising = (bins_mel - low) / (center - low)
        falling = (high - bins_mel) / (high - center)
        weights[:, i] = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights


def examples(wav: torch.Tensor) -> torch.Tensor:
    """(N,) float32 16 kHz -> (E, 1, 96, 64) float32 log-mel examples, E = (frames - 96) // 96 + 1."""
    x = wav.double()  # the original computes the front-end in float64
    frames = x.unfold(0, WINDOW, HOP)  # (T, 400)
    n = torch.arange(WINDOW, dtype=torch.float64, device=x.device)
    hann = 0.5 - 0.5 * torch.cos(2 * np.pi / WINDOW * n)  # periodic Hann
    spec = torch.fft.rfft(frames * hann, n=N_FFT).abs()  # (T, 257) magnitudes
    log_mel = torch.log(spec @ torch.from_numpy(mel_matrix()).to(x.device) + LOG_OFFSET)  # (T, 64)
    count = (log_mel.size(0) - EXAMPLE_FRAMES) // EXAMPLE_FRAMES + 1
    return log_mel[: count * EXAMPLE_FRAMES].reshape(count, 1, EXAMPLE_FRAMES, N_MELS).float()


class VGGish(nn.Module):
    """VGG-ish conv stack + embedding MLP, with the PCA / quantisation post-processing."""

    def __init__(self, postprocess: bool = True):
        super().__init__()
        c_in = 1
        self.convs = nn.ModuleList()
        for c_out in CONV_CHANNELS:
            self.convs.append(nn.Conv2d(c_in, c_out, 3, padding=1))
            c_in = c_out
        self.fc = nn.ModuleList([nn.Linear(512 * 6 * 4, 4096), nn.Linear(4096, 4096), nn.Linear(4096, EMBEDDING)])
        self.postprocess = postprocess
        if postprocess:  # without post-processing the original does not read the PCA file either
            self.register_buffer("pca_vectors", torch.zeros(EMBEDDING, EMBEDDING))
            self.register_buffer("pca_means", torch.zeros(EMBEDDING, 1))

    num_layers = 1
    hidden_sizes = [EMBEDDING]
    downsample_rates = [SAMPLE_RATE]  # the original's value (examples are 15360 samples apart)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(E, 1, 96, 64) -> (E, 128) embeddings (post-processed unless ``postprocess`` is off)."""
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if i in POOL_AFTER:
                x = F.max_pool2d(x, 2, 2)
        x = x.permute(0, 2, 3, 1).reshape(x.size(0), -1)  # (E, 6 * 4 * 512): time, freq, channel
        for fc in self.fc:
            x = F.relu(fc(x))
        if not self.postprocess:
            return x
        pca = torch.mm(self.pca_vectors, x.t() - self.pca_means).t()  # (E, 128), as the original orders it
        clipped = torch.clamp(pca, QUANT_MIN, QUANT_MAX)
        return torch.round((clipped - QUANT_MIN) * (255.0 / (QUANT_MAX - QUANT_MIN)))

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        short = [b for b, n in enumerate(wavs_len.tolist()) if n < MIN_SAMPLES]
        if short:
            raise ValueError(f"VGGish needs at least {MIN_SAMPLES} samples (0.975 s at 16 kHz) per utterance, one "
                             f"0.96 s example; utterance(s) {short} have {[int(wavs_len[b]) for b in short]}")
        embs = [self.embed(examples(w[: int(n)])) for w, n in zip(wavs, wavs_len)]  # each utterance alone
        counts = [e.size(0) for e in embs]
        states, lengths = windows.merge_windows(torch.cat(embs)[:, None], counts, counts)  # (B, max E, 128)
        return [states], [lengths]


# ---------------------------------------------------------------------------------- checkpoint
def map_weights(state: dict, source: str) -> dict:
    """torchvggish keys (``features.<i>``, ``embeddings.<i>``) -> ours; every key must be mapped."""
    conv_index = {}
    i = 0
    for j, _ in enumerate(CONV_CHANNELS):  # features: conv, relu[, pool] ...
        conv_index[i] = j
        i += 3 if j in POOL_AFTER else 2
    out, unknown = {}, []
    for key, value in state.items():
        parts = key.split(".")
        index = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else -1
        if parts[0] == "features" and index in conv_index and parts[2] in ("weight", "bias"):
            out[f"convs.{conv_index[index]}.{parts[2]}"] = value
        elif parts[0] == "embeddings" and index in (0, 2, 4) and parts[2] in ("weight", "bias"):
            out[f"fc.{index // 2}.{parts[2]}"] = value
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointFormatError(f"{source}: keys that are not part of VGGish: {unknown[:8]}")
    return out


def map_pca(pca, source: str) -> dict:
    """The PCA file -> our buffers, cast to float32 (means as a column), as the original does."""
    if not isinstance(pca, dict) or not {"pca_eigen_vectors", "pca_means"} <= set(pca):
        raise CheckpointFormatError(f"{source} is {describe_format(pca)}, not the VGGish PCA parameters "
                                    "(pca_eigen_vectors, pca_means)")
    extra = set(pca) - {"pca_eigen_vectors", "pca_means"}
    if extra:
        raise CheckpointFormatError(f"{source}: unexpected entries in the VGGish PCA parameters: {sorted(extra)}")
    vectors = torch.as_tensor(pca["pca_eigen_vectors"]).float()
    means = torch.as_tensor(pca["pca_means"]).reshape(-1, 1).float()
    return {"pca_vectors": vectors, "pca_means": means}


def resolve_pca(pca: str | None) -> str:
    """A local PCA file: ``pca`` (a path or URL) or the entry's second URL, downloaded and cached."""
    from .. import download, registry

    if pca is not None:
        return download.resolve_checkpoint(pca)
    entry = registry.REGISTRY["vggish"]
    return download.resolve_checkpoint(entry.urls[1], sha256=entry.sha256[1] if len(entry.sha256) > 1 else None)


def build(ckpt: str | None, pca: str | None = None, postprocess: bool = True, **options) -> VGGish:
    """VGGish from the torchvggish weights (+ PCA parameters from ``pca`` or the entry's second URL)."""
    if options:
        raise TypeError(f"unknown option(s) for VGGish: {', '.join(sorted(options))} (allowed: pca, postprocess)")
    if ckpt is None:
        raise ValueError("VGGish needs a checkpoint: pass path_or_url")
    obj = ckpt_io.load_checkpoint(ckpt)
    if isinstance(obj, dict) and set(obj) == {"vggish", "pca"}:  # the original wrapper's in-memory layout
        weights, pca_obj, pca_source = obj["vggish"], obj["pca"], ckpt
    else:
        weights, pca_obj, pca_source = obj, None, None
    if not isinstance(weights, dict) or "embeddings.4.weight" not in weights:
        raise CheckpointFormatError(f"{ckpt} is {describe_format(weights)}, not the torchvggish weights")
    model = VGGish(bool(postprocess))
    state = map_weights(weights, ckpt)
    if postprocess:
        if pca_obj is None:
            pca_source = resolve_pca(pca)
            pca_obj = ckpt_io.load_checkpoint(pca_source)
        state.update(map_pca(pca_obj, pca_source))
    fairseq_convert.load_state(model, state, ckpt, mapped=True)
    return model.eval()
