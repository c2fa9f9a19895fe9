"""The ``log_stft`` family (``stft_mag``): STFT magnitude (optionally its log) as a one-layer upstream.

Configured by a yaml in the original format (``model_config=``)::

    feat_type: spectrogram
    spectrogram: {n_fft: 512, hop_length: 320, win_length: 512, window: hann, center: True, log: False}

The original requires ``model_config``; without one this family uses the values of the original's
``stft_mag.yaml`` (above). Output: (B, T, n_fft // 2 + 1) with ``T = N // hop_length + 1`` when centred
(``(N - n_fft) // hop_length + 1`` otherwise), downsample rate ``hop_length``. Each utterance is
transformed on its own samples with the same ``torch.stft`` call as the original (reflect padding,
periodic Hann window), so results are exact and independent of the batch; ``log`` takes
``log(max(|X|, 1e-8))``.
"""

from __future__ import annotations

import os

import torch
import torch.nn as nn
import yaml

from ..convert import config as config_io

STFT_MAG = {"n_fft": 512, "hop_length": 320, "win_length": 512, "window": "hann", "center": True, "log": False}
EPS = 1e-8


def parse_config(cfg, source: str) -> dict:
    """Validate the original yaml layout; returns the ``spectrogram`` section with every key."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("spectrogram"), dict):
        raise ValueError(f"{source}: expected a mapping with a 'spectrogram' section (see stft_mag.yaml)")
    unknown = sorted(set(cfg) - {"feat_type", "spectrogram"})
    if unknown:
        raise ValueError(f"{source}: unknown top-level key(s) {unknown}; allowed: feat_type, spectrogram")
    if cfg.get("feat_type", "spectrogram") != "spectrogram":
        raise ValueError(f"{source}: feat_type must be 'spectrogram', got {cfg['feat_type']!r}")
    spec = cfg["spectrogram"]
    missing = sorted(set(STFT_MAG) - set(spec))
    extra = sorted(set(spec) - set(STFT_MAG))
    if missing or extra:
        raise ValueError(f"{source}: 'spectrogram' needs exactly {sorted(STFT_MAG)}; "
                         f"missing {missing}, unknown {extra}")
    if spec["window"] != "hann":
        raise ValueError(f"{source}: window {spec['window']!r} is not supported (the original only knows 'hann')")
    out = dict(spec, n_fft=config_io.as_int(spec["n_fft"], "spectrogram.n_fft", source, 1, config_io.MAX_SIZE))
    out["hop_length"] = config_io.as_int(spec["hop_length"], "spectrogram.hop_length", source, 1, config_io.MAX_SIZE)
    out["win_length"] = config_io.as_int(spec["win_length"], "spectrogram.win_length", source, 1, out["n_fft"])
    for key in ("center", "log"):
        out[key] = config_io.as_bool(spec[key], f"spectrogram.{key}", source)
    return out


class StftMagnitude(nn.Module):
    """wav (B, T) -> [|STFT| (B, T', n_fft // 2 + 1)]."""

    def __init__(self, spec: dict):
        super().__init__()
        self.n_fft, self.hop = int(spec["n_fft"]), int(spec["hop_length"])
        self.win_length, self.center, self.log = int(spec["win_length"]), bool(spec["center"]), bool(spec["log"])
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)

    num_layers = 1

    @property
    def hidden_sizes(self) -> list[int]:
        return [self.n_fft // 2 + 1]

    @property
    def downsample_rates(self) -> list[int]:
        return [self.hop]

    def transform(self, wav: torch.Tensor) -> torch.Tensor:
        """(N,) -> (T', F) for one utterance."""
        spec = torch.stft(wav, n_fft=self.n_fft, hop_length=self.hop, win_length=self.win_length,
                          window=self.window.to(wav), center=self.center, pad_mode="reflect",
                          normalized=False, return_complex=True).abs().transpose(0, 1)  # (T', F)
        return torch.log(spec.clamp(min=EPS)) if self.log else spec

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        feats = [self.transform(wav[:n]) for wav, n in zip(wavs, wavs_len.tolist())]
        lengths = torch.tensor([f.size(0) for f in feats], device=wavs.device)
        return [nn.utils.rnn.pad_sequence(feats, batch_first=True)], [lengths]


def build(ckpt: str | None = None, model_config: str | None = None, **options) -> StftMagnitude:
    """``model_config``: path to the yaml (default: the original's stft_mag.yaml values); a ``.yaml`` passed as
    the checkpoint (``path_or_url``) is taken as the model_config (the original ignored ``ckpt`` here)."""
    if options:
        raise TypeError(f"unknown option(s) for stft_mag: {', '.join(sorted(options))} (it takes model_config)")
    if ckpt is not None:
        if model_config is not None or not ckpt.endswith((".yaml", ".yml")):
            raise ValueError("stft_mag has no weights: pass its yaml as extra_conf={'model_config': path}")
        model_config = ckpt  # the yaml given where a checkpoint would go
    if model_config is None:
        spec = dict(STFT_MAG)
    else:
        if not os.path.isfile(model_config):
            raise FileNotFoundError(f"stft_mag model_config not found: {model_config}")
        with open(model_config) as f:
            spec = parse_config(yaml.safe_load(f), model_config)
    return StftMagnitude(spec).eval()
