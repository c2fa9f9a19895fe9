"""BYOL-A (Niizumi et al. 2021): the AudioNTT2020 CNN on 64-bin log-mel, one embedding per window.

The original s3prl wrapper cuts every utterance into windows of ``window_secs`` starting every
``stride_secs`` (``range(0, len, stride)``), zero-pads the tail to ``last start + window``
(``windows.run_windowed``: the same rule, applied to each utterance's own samples), turns each
window into a log-mel spectrogram (torchaudio ``MelSpectrogram``: 16 kHz, n_fft 1024, Hann window 1024,
hop 160, centred with reflect padding, power 2, 64 HTK mel bins over 60-7800 Hz), takes
``log(mel + eps_float32)`` and normalises it with the fixed statistics (-5.4919195, 5.0389895), then the
encoder gives one ``feature_d`` vector per window (max + mean over time of the frame features).
Windows are independent, so every utterance gets its batch-size-1 result in any batch.

Checkpoint: the ``.pth`` of nttcslab/byol-a, a plain state dict (or ``{'state_dict': ...}``) whose keys
end in ``features.<i>.*`` / ``fc.<i>.*`` after an optional prefix, which the original strips.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint as ckpt_io
from ..audio.features import htk_mel_filters
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointFormatError
from . import windows

SAMPLE_RATE = 16000
LOG_EPS = torch.finfo(torch.float32).eps  # the original adds float32 eps before the log
NORM_MEAN, NORM_STD = -5.4919195, 5.0389895  # fixed statistics of the original wrapper
MIN_WINDOW = 7 * 160  # 8 STFT frames: one frame left after the encoder's three 2x poolings


@dataclass(frozen=True)
class MelConfig:
    """The log-mel front-end (torchaudio ``MelSpectrogram`` arguments)."""

    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 160
    n_mels: int = 64
    f_min: float = 60.0
    f_max: float = 7800.0


@dataclass(frozen=True)
class ByolAConfig:
    """Architecture only: the embedding size and the number of mel bins the encoder reads."""

    feature_d: int = 512
    n_mels: int = 64


# ---------------------------------------------------------------------------------- front-end
def log_mel(chunks: torch.Tensor, mel: MelConfig = MelConfig()) -> torch.Tensor:
    """(W, N) waveforms -> (W, n_mels, N // hop + 1) ``log(mel power + eps)``, torch.stft-style frames."""
    pad = mel.n_fft // 2
    if chunks.size(-1) <= pad:
        raise ValueError(f"windows of {chunks.size(-1)} samples are too short for the centred STFT "
                         f"(n_fft {mel.n_fft} needs more than {pad}); use a longer window")
    x = F.pad(chunks[:, None], (pad, pad), mode="reflect")[:, 0]  # (W, N + n_fft)
    hann = torch.hann_window(mel.win_length, dtype=x.dtype, device=x.device)
    left = (mel.n_fft - mel.win_length) // 2
    hann = F.pad(hann, (left, mel.n_fft - mel.win_length - left))  # centred in n_fft, as torch.stft
    frames = x.unfold(-1, mel.n_fft, mel.hop_length) * hann  # (W, T, n_fft)
    power = torch.fft.rfft(frames).abs().pow(2)  # (W, T, n_fft // 2 + 1)
    fb = htk_mel_filters(mel.n_fft // 2 + 1, mel.n_mels, SAMPLE_RATE, mel.f_min, mel.f_max).to(power)
    return (power @ fb + LOG_EPS).log().transpose(1, 2)  # (W, n_mels, T)


# ---------------------------------------------------------------------------------- encoder
class AudioNTT2020(nn.Module):
    """Three conv blocks (conv 3x3, BatchNorm, ReLU, max-pool 2) and a two-layer MLP per frame, then
    max + mean over time. Module names follow the checkpoint (``features.<i>``, ``fc.<i>``)."""

    def __init__(self, feature_d: int, n_mels: int = 64):
        super().__init__()
        blocks = []
        for c_in in (1, 64, 64):
            blocks += [nn.Conv2d(c_in, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2, 2)]
        self.features = nn.Sequential(*blocks)
        self.fc = nn.Sequential(nn.Linear(64 * (n_mels // 8), feature_d), nn.ReLU(), nn.Dropout(0.3),
                                nn.Linear(feature_d, feature_d), nn.ReLU())
        self.feature_d = feature_d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(W, 1, n_mels, T) normalised log-mel -> (W, feature_d)."""
        x = self.features(x)  # (W, 64, n_mels / 8, T / 8)
        x = x.permute(0, 3, 2, 1).flatten(2)  # (W, T', mel' * 64), channel fastest
        x = self.fc(x)  # (W, T', d)
        return x.max(dim=1).values + x.mean(dim=1)


class ByolA(nn.Module):
    """BYOL-A upstream: (B, N) 16 kHz waveforms -> one (B, windows, feature_d) hidden state."""

    def __init__(self, cfg: ByolAConfig, window_secs: float = 1.0, stride_secs: float = 1.0):
        super().__init__()
        self.cfg = cfg
        self.window = int(window_secs * SAMPLE_RATE)  # the original's int() truncation
        self.stride = int(stride_secs * SAMPLE_RATE)
        check_windows(self.window, self.stride, MIN_WINDOW, "window_secs", "stride_secs")
        self.encoder = AudioNTT2020(cfg.feature_d, cfg.n_mels)

    num_layers = 1

    @property
    def hidden_sizes(self) -> list[int]:
        return [self.cfg.feature_d]

    @property
    def downsample_rates(self) -> list[int]:
        return [self.stride]

    def embed(self, chunks: torch.Tensor) -> list[torch.Tensor]:
        """(W, window) waveforms -> [(W, 1, feature_d)]: one embedding per window."""
        feats = (log_mel(chunks) - NORM_MEAN) / NORM_STD  # (W, 64, T)
        return [self.encoder(feats[:, None])[:, None]]

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        # ceil(len / stride) windows per utterance, each cut from its own samples and zero-padded
        return windows.run_windowed(wavs, wavs_len, self.window, self.stride, self.embed, self.downsample_rates)


def check_windows(window: int, stride: int, minimum: int, window_name: str, stride_name: str) -> None:
    """Window options must give whole, long enough windows and a positive step."""
    if stride <= 0:
        raise ValueError(f"{stride_name} must be at least one sample at 16 kHz, got {stride} samples")
    if window < minimum:
        raise ValueError(f"{window_name} gives {window} samples per window; this model needs at least "
                         f"{minimum} ({minimum / SAMPLE_RATE:.3f} s)")


# ---------------------------------------------------------------------------------- checkpoint
PREFIX = re.compile(r"(^|\.)(fc|features)\.")  # the original keeps a key from its first fc./features.
DROP = re.compile(r"(^|.*\.)(projector|predictor|target)\..*")  # BYOL training parts (the original ignores them)


def describe_format(obj) -> str:
    """What a loaded file looks like, for error messages (shared by the audio-domain families)."""
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        keys = set(obj)
        if any(k.endswith("fc.3.weight") for k in keys) and any(k.endswith("features.8.weight") for k in keys):
            return "a BYOL-A / BYOL-S AudioNTT2020 state dict (use byol_a_* or byol_s_default)"
        if "layer4.0.conv1.weight" in keys:
            return "a BYOL-S ResNetish state dict (use byol_s_resnetish34)"
        if "layers.0.1.g" in keys:
            return "a BYOL-S CvT state dict (use byol_s_cvt)"
        if "embeddings.4.weight" in keys:
            return "a VGGish state dict (use vggish)"
        if {"pca_eigen_vectors", "pca_means"} <= keys:
            return "VGGish PCA parameters (use vggish; they are its second file)"
        return f"a state dict with keys {sorted(keys)[:8]}"
    return fairseq_convert.describe_format(obj)


def map_state(state: dict, source: str) -> dict:
    """Checkpoint keys -> encoder keys with the original's prefix rule; other keys must be training heads."""
    out, unknown = {}, []
    for key, value in state.items():
        match = PREFIX.search(key)
        if match is None or not isinstance(value, torch.Tensor):
            if not DROP.fullmatch(key):
                unknown.append(key)
            continue
        new = key[match.start(2):]
        if new in out:
            raise CheckpointFormatError(f"{source}: two checkpoint keys map to {new!r} (after stripping prefixes)")
        out[new] = value
    if unknown:
        raise CheckpointFormatError(f"{source}: keys that are not part of the AudioNTT2020 encoder: {unknown[:8]}")
    return out


def read_state(ckpt: str) -> dict:
    """The encoder state of a BYOL-A ``.pth`` (plain or under ``state_dict``), keys as the encoder names them."""
    obj = ckpt_io.load_checkpoint(ckpt)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or "fc.3.weight" not in map_state_keys(obj):
        raise CheckpointFormatError(f"{ckpt} is {describe_format(obj)}, not a BYOL-A AudioNTT2020 checkpoint")
    return map_state(obj, ckpt)


def map_state_keys(obj: dict) -> set[str]:
    return {k[m.start(2):] for k in obj if isinstance(k, str) and (m := PREFIX.search(k))}


def build(ckpt: str | None, feature_d: int | None = None, window_secs: float = 1.0, stride_secs: float = 1.0,
          **options) -> ByolA:
    """BYOL-A from its ``.pth``; ``feature_d`` (fixed by the entry) must match the file."""
    if options:
        raise TypeError(f"unknown option(s) for BYOL-A: {', '.join(sorted(options))} "
                        "(allowed: window_secs, stride_secs)")
    if ckpt is None:
        raise ValueError("BYOL-A needs a checkpoint: pass path_or_url")
    state = read_state(ckpt)
    d = state["fc.3.weight"].shape[0]
    if feature_d is not None and int(feature_d) != d:
        raise CheckpointFormatError(f"{ckpt} holds a {d}-d BYOL-A encoder, but this entry is the {feature_d}-d "
                                    f"model; use byol_a_{d}")
    model = ByolA(ByolAConfig(d), window_secs, stride_secs)
    fairseq_convert.load_state(model.encoder, state, ckpt, mapped=True)  # names missing keys / wrong shapes
    return model.eval()
