"""S3PRLUpstream: any registered upstream by name, with the original's length contract."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import registry
from ..upstream import build as build_family
from ..upstream import check_buildable

MIN_SAMPLES = 800  # the original pads inputs shorter than 0.05 s at 16 kHz to this many samples
# Louder than any PCM full scale (int32: 2**31) is not audio: models that normalise the waveform or their first
# conv output give garbage past ~1e18 (float32 squares overflow) without a NaN to show it, the others give inf.
MAX_AMPLITUDE = 2.0**31


def resolve_source(name: str, entry: registry.Entry, path_or_url: str | None, refresh: bool) -> str | None:
    """The local file or folder the family builder reads (downloaded and cached when remote)."""
    from .. import download

    source = path_or_url
    sha = None
    if source is None:
        if entry.user_ckpt:
            raise ValueError(
                f"{name!r} loads a checkpoint you provide: on the command line -k /path/to/file (or a URL); "
                f"in Python S3PRLUpstream({name!r}, path_or_url='/path/to/file'), or s3prl.hub.{name}(ckpt=...)"
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


def model_dtype(module: nn.Module) -> torch.dtype:
    """The dtype waveforms are cast to: the model's first floating parameter's (float32 unless the user moved
    it with ``.double()`` / ``.half()``); float32 for models without parameters (feature front-ends)."""
    return next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)


def check_lengths(wavs_len: torch.Tensor, batch: int, total: int, device: torch.device) -> torch.Tensor:
    """(B,) integer sample counts in [0, total] -> long on ``device``; anything else is a clear error."""
    if wavs_len.dtype == torch.bool or wavs_len.is_floating_point() or wavs_len.is_complex():
        values = wavs_len.tolist() if wavs_len.numel() <= 8 else "..."
        raise ValueError(
            f"wavs_len must hold integer sample counts (torch.long), got {wavs_len.dtype} {values}; "
            "pass torch.tensor([len(wav) for wav in wavs])"
        )
    if wavs_len.dim() != 1 or wavs_len.numel() != batch:
        raise ValueError(f"wavs_len must be (B,) integer lengths for B={batch}, got shape {tuple(wavs_len.shape)} "
                         f"{wavs_len.dtype}")
    wavs_len = wavs_len.to(device=device, dtype=torch.long)
    if bool((wavs_len < 0).any()) or bool((wavs_len > total).any()):
        raise ValueError(f"wavs_len must lie in [0, {total}] (the padded length), got {wavs_len.tolist()}")
    return wavs_len


def zero_padding(wavs: torch.Tensor, wavs_len: torch.Tensor) -> torch.Tensor:
    """(B, T) with every sample past its utterance's length set to 0, whatever it held: where(), not a product
    with a mask, since NaN * 0 is NaN."""
    valid = torch.arange(wavs.size(1), device=wavs.device)[None, :] < wavs_len[:, None]  # (B, T)
    return torch.where(valid, wavs, torch.zeros((), dtype=wavs.dtype, device=wavs.device))


def utterances(flags: torch.Tensor) -> list[int]:
    """(B,) bool -> the indices that are set."""
    return flags.nonzero().flatten().tolist()


def amplitudes(wavs: torch.Tensor, index: list[int]) -> str:
    """'1e+30, 0.5': the max |amplitude| of the listed utterances of a zero-padded (B, T) batch."""
    return ", ".join(f"{float(wavs[b].abs().max()) if wavs.size(1) else 0.0:.3g}" for b in index)


def check_input(wavs: torch.Tensor, wavs_len: torch.Tensor,
                dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate (B, T) waveforms and (B,) lengths; return them in canonical form.

    Waveforms must be floating point (any float dtype; cast to ``dtype``, None keeps it): integer or bool audio is
    a TypeError (scale it to [-1, 1]). Lengths must be (B,) integers in [0, T]. Samples past each length are set
    to zero whatever they hold (NaN, inf). NaN/inf within an utterance, or an amplitude beyond any PCM full scale,
    is a ValueError naming the utterance.
    """
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
            f"wavs must be float waveforms scaled to [-1, 1], got {wavs.dtype}; for int16 PCM use wavs.float() / 32768"
        )
    wavs_len = check_lengths(wavs_len, wavs.size(0), wavs.size(1), wavs.device)
    if wavs.size(0) == 0:
        raise ValueError("empty batch: wavs has no utterance")
    wavs = zero_padding(wavs, wavs_len)  # what lies past each length is ignored, NaN included
    finite = torch.isfinite(wavs).all(1)  # (B,)
    if not bool(finite.all()):
        raise ValueError(f"wavs contain NaN or inf in utterance(s) {utterances(~finite)} (within their wavs_len "
                         "samples)")
    peak = wavs.abs().amax(1) if wavs.size(1) else torch.zeros(wavs.size(0), device=wavs.device)  # (B,)
    if bool((peak > MAX_AMPLITUDE).any()):
        bad = utterances(peak > MAX_AMPLITUDE)
        raise ValueError(f"wavs: utterance(s) {bad} have max |amplitude| {amplitudes(wavs, bad)}, beyond any PCM full "
                         "scale (2**31); audio must be float waveforms in [-1, 1] (for int16 PCM divide by 32768)")
    if dtype is not None and wavs.dtype != dtype:
        cast = wavs.to(dtype)
        finite = torch.isfinite(cast).all(1)
        if not bool(finite.all()):  # e.g. a model moved to float16
            bad = utterances(~finite)
            raise ValueError(f"wavs: utterance(s) {bad} exceed the {dtype} range (max |amplitude| "
                             f"{amplitudes(wavs, bad)}); audio must be float waveforms in [-1, 1]")
        wavs = cast
    return wavs, wavs_len


def check_features(name: str, states: list[torch.Tensor], lengths: list[torch.Tensor], wavs: torch.Tensor) -> None:
    """Raise, naming the utterances and their amplitudes, when valid frames of ``states`` (list of (B, T_l, ...))
    hold NaN or inf; ``wavs`` is the zero-padded (B, T) input the model saw."""
    bad = torch.zeros(wavs.size(0), dtype=torch.bool, device=wavs.device)  # (B,)
    for h, n in zip(states, lengths):
        frame_ok = torch.isfinite(h)
        frame_ok = frame_ok.flatten(2).all(-1) if h.dim() > 2 else frame_ok  # (B, T_l)
        padding = torch.arange(h.size(1), device=h.device)[None, :] >= n.to(h.device)[:, None]
        bad |= ~(frame_ok | padding).all(1).to(bad.device)
    if not bool(bad.any()):
        return
    index = utterances(bad)
    if wavs.size(1) and float(wavs[bad].abs().max()) > 1:
        hint = "audio must be float waveforms in [-1, 1] (for int16 PCM divide by 32768)"
    else:
        hint = "the audio is in [-1, 1]: check the checkpoint's weights for NaN/inf, or run the model in float32"
    raise ValueError(f"{name}: the features of utterance(s) {index} are NaN or inf "
                     f"(max |amplitude| {amplitudes(wavs, index)}); {hint}")


def pad_short(wavs: torch.Tensor, wavs_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per utterance, extend inputs shorter than 800 samples with zeros to 800 (the original's rule, which it
    applies to the whole batch; per utterance keeps each utterance's result independent of the batch)."""
    if wavs.size(1) < MIN_SAMPLES:
        wavs = F.pad(wavs, (0, MIN_SAMPLES - wavs.size(1)))
    return zero_padding(wavs, wavs_len), wavs_len.clamp(min=MIN_SAMPLES)


def match_length(h: torch.Tensor, produced: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
    """(B, T, D) with ``produced`` frames per utterance -> (B, max(wanted), D) with ``wanted`` frames: extra frames
    repeat the utterance's last produced frame (as the original at batch size 1), frames past ``wanted`` are 0."""
    out_len = int(wanted.max()) if wanted.numel() else 0
    t = torch.arange(out_len, device=h.device)[None, :]  # (1, T_out)
    index = torch.minimum(t, (produced - 1).clamp(min=0)[:, None])  # (B, T_out)
    out = h.gather(1, index[:, :, None].expand(-1, -1, h.size(-1)))
    keep = (t < wanted[:, None]) & (produced[:, None] > 0)  # (B, T_out)
    return torch.where(keep[:, :, None], out, torch.zeros((), dtype=out.dtype, device=out.device))


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
        """(B, T) float waveforms in [-1, 1] (any float dtype: cast to the model's) and (B,) integer lengths ->
        hidden states. Samples past each length are ignored whatever they hold; NaN/inf within an utterance,
        an amplitude beyond any PCM full scale, or features that come out NaN/inf raise a ValueError naming
        the utterance (see ``check_input``)."""
        wavs, wavs_len = check_input(wavs, wavs_len, model_dtype(self.upstream))
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
        check_features(self.name, all_hs, all_lens, wavs)
        return all_hs, all_lens


def randomize_weights(module: nn.Module) -> None:
    """Re-initialise like the original ``randomize``: xavier-normal matrices, vectors redrawn around their stats."""
    for param in module.parameters():
        with torch.no_grad():
            if param.dim() >= 2:
                nn.init.xavier_normal_(param)
            elif param.numel() > 1:
                param.normal_(float(param.mean()), float(param.std()))
