"""S3PRLUpstream: any registered upstream by name, with the original's length contract."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import registry
from ..upstream import build as build_family
from ..upstream import check_buildable

MIN_SAMPLES = 800  # the original pads inputs shorter than 0.05 s at 16 kHz to this many samples


def resolve_source(name: str, entry: registry.Entry, path_or_url: str | None, refresh: bool) -> str | None:
    """The local file or folder the family builder reads (downloaded and cached when remote)."""
    from .. import download

    source = path_or_url
    sha = None
    if source is None:
        if entry.user_ckpt:
            raise ValueError(
                f"{name!r} loads a checkpoint you provide: pass path_or_url='/path/to/file' (or a URL)"
            )
        if not entry.urls:
            return None
        source, sha = entry.urls[0], (entry.sha256[0] if entry.sha256 else None)
    if entry.family in ("hf_wav2vec2", "hf_hubert"):
        return download.resolve_hf_model(source, refresh=refresh)
    return download.resolve_checkpoint(source, sha256=sha, refresh=refresh)


def build_upstream(name: str, path_or_url: str | None = None, refresh: bool = False,
                   extra_conf: dict | None = None) -> nn.Module:
    """The family model (no length contract) for a registry name; used by S3PRLUpstream and the hub."""
    canonical, entry = registry.resolve(name)
    options = {**entry.extra_conf, **(extra_conf or {})}
    check_buildable(entry.family, canonical)  # before downloading anything
    local = resolve_source(canonical, entry, path_or_url, refresh)
    return build_family(entry.family, canonical, local, options)


def check_input(wavs: torch.Tensor, wavs_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate (B, T) float waveforms and (B,) lengths; returns them in canonical form."""
    if not isinstance(wavs, torch.Tensor) or not isinstance(wavs_len, torch.Tensor):
        raise TypeError("S3PRLUpstream expects wavs (B, T) and wavs_len (B,) as torch tensors")
    if wavs.dim() == 3 and wavs.size(-1) == 1:
        wavs = wavs.squeeze(-1)
    if wavs.dim() != 2:
        raise ValueError(
            f"wavs must be (batch, samples) mono 16 kHz audio, got shape {tuple(wavs.shape)}; "
            "mix stereo down (wav.mean(channel_dim)) and stack utterances along dim 0"
        )
    if not wavs.is_floating_point():
        raise TypeError(
            f"wavs must be floating point in [-1, 1], got {wavs.dtype}; for int16 PCM use wavs.float() / 32768"
        )
    if wavs_len.dim() != 1 or wavs_len.numel() != wavs.size(0) or wavs_len.is_floating_point():
        raise ValueError(f"wavs_len must be (B,) integer lengths for B={wavs.size(0)}, got {tuple(wavs_len.shape)} "
                         f"{wavs_len.dtype}")
    if wavs.size(0) == 0:
        raise ValueError("empty batch: wavs has no utterance")
    wavs_len = wavs_len.to(device=wavs.device, dtype=torch.long)
    if bool((wavs_len < 0).any()) or bool((wavs_len > wavs.size(1)).any()):
        raise ValueError(f"wavs_len must lie in [0, {wavs.size(1)}] (the padded length), got {wavs_len.tolist()}")
    valid = torch.arange(wavs.size(1), device=wavs.device)[None, :] < wavs_len[:, None]
    if not bool(torch.isfinite(wavs[valid]).all()):
        bad = [b for b in range(wavs.size(0)) if not bool(torch.isfinite(wavs[b, : wavs_len[b]]).all())]
        raise ValueError(f"wavs contain NaN or inf in utterance(s) {bad}")
    return wavs, wavs_len


def pad_short(wavs: torch.Tensor, wavs_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per utterance, extend inputs shorter than 800 samples with zeros to 800 (the original's rule, which it
    applies to the whole batch; per utterance keeps each utterance's result independent of the batch)."""
    if wavs.size(1) < MIN_SAMPLES:
        wavs = F.pad(wavs, (0, MIN_SAMPLES - wavs.size(1)))
    valid = torch.arange(wavs.size(1), device=wavs.device)[None, :] < wavs_len[:, None]
    wavs = wavs * valid.to(wavs.dtype)  # padding must be zeros, whatever the caller put there
    return wavs, wavs_len.clamp(min=MIN_SAMPLES)


def match_length(h: torch.Tensor, produced: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
    """(B, T, D) with ``produced`` frames per utterance -> (B, max(wanted), D) with ``wanted`` frames: extra frames
    repeat the utterance's last produced frame (as the original at batch size 1), frames past ``wanted`` are 0."""
    out_len = int(wanted.max()) if wanted.numel() else 0
    t = torch.arange(out_len, device=h.device)[None, :]  # (1, T_out)
    index = torch.minimum(t, (produced - 1).clamp(min=0)[:, None])  # (B, T_out)
    out = h.gather(1, index[:, :, None].expand(-1, -1, h.size(-1)))
    keep = (t < wanted[:, None]) & (produced[:, None] > 0)
    return out * keep[:, :, None].to(out.dtype)


class S3PRLUpstream(nn.Module):
    """An upstream by registry name: ``(wavs (B, T), wavs_len (B,)) -> (hidden states, lengths)``.

    Args:
        name: a registry name (``S3PRLUpstream.available_names()``).
        path_or_url: checkpoint file, folder or URL; overrides the entry's default checkpoint.
        refresh: download the checkpoint again.
        normalize: layer-normalise every hidden state over its feature dimension (no affine).
        extra_conf: options of the entry (e.g. ``{"feature_selection": "fairseq_layers"}``).
        randomize: re-initialise every weight randomly (a random-weights baseline).
    """

    def __init__(self, name: str, path_or_url: str | None = None, refresh: bool = False, normalize: bool = False,
                 extra_conf: dict | None = None, randomize: bool = False):
        super().__init__()
        self.name = name
        self.upstream = build_upstream(name, path_or_url, refresh, extra_conf)
        self.normalize = normalize
        if randomize:
            randomize_weights(self.upstream)

    @staticmethod
    def available_names(only_registered_ckpt: bool = False) -> list[str]:
        return registry.available_names(only_registered_ckpt)

    @property
    def num_layers(self) -> int:
        return self.upstream.num_layers

    @property
    def hidden_sizes(self) -> list[int]:
        return list(self.upstream.hidden_sizes)

    @property
    def downsample_rates(self) -> list[int]:
        return list(self.upstream.downsample_rates)

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        wavs, wavs_len = check_input(wavs, wavs_len)
        padded, model_len = pad_short(wavs, wavs_len)
        states, produced = self.upstream(padded, model_len)
        if len(states) != self.num_layers:
            raise RuntimeError(f"{self.name}: model returned {len(states)} hidden states, expected {self.num_layers}")
        all_hs, all_lens = [], []
        for h, n_frames, stride in zip(states, produced, self.downsample_rates):
            wanted = torch.div(wavs_len - 1, stride, rounding_mode="floor") + 1  # ceil(len / stride)
            h = match_length(h, n_frames.to(h.device), wanted)
            if self.normalize:
                h = F.layer_norm(h, h.shape[-1:])
            all_hs.append(h)
            all_lens.append(wanted)
        return all_hs, all_lens


def randomize_weights(module: nn.Module) -> None:
    """Re-initialise like the original ``randomize``: xavier-normal matrices, vectors redrawn around their stats."""
    for param in module.parameters():
        with torch.no_grad():
            if param.dim() >= 2:
                nn.init.xavier_normal_(param)
            elif param.numel() > 1:
                param.normal_(float(param.mean()), float(param.std()))
