"""BYOL-S (serab-byols, Elbanna et al. 2022): BYOL-A-style encoders on speech, HEAR timestamp embeddings.

Front-end of the original (``serab_byols.get_timestamp_embeddings``): the utterance is zero-padded by half a
window on the left and the rest of a window on the right, cut into windows of ``window_secs`` every
``hop_secs`` (``floor(len / hop) + 1`` windows, the i-th centred on sample ``i * hop``), each window becomes a
log-mel spectrogram (torchaudio ``MelSpectrogram``: n_fft 1024, Hann window 400, hop 160, 64 HTK mel bins
over 60-7800 Hz, ``log(mel + eps_float32)``), normalised by statistics of the utterance itself: the mean
and the (unbiased) standard deviation over all its windows, each divided by the number of windows (a quirk
of the original, kept). Each window gives one 2048-d embedding.

The original computes those statistics over the whole padded batch, so its outputs depend on what else is
in the batch; here they come from each utterance alone, which is the original's batch-size-1 result.

Encoders (``model_name``): ``default`` = BYOL-A's AudioNTT2020 (2048-d), ``resnetish34`` = a ResNet-34 with
a stride-1 stem, ``cvt`` = a 3-stage convolutional vision transformer. Checkpoints are plain state dicts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint as ckpt_io
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointFormatError
from . import windows
from .byol_a import MIN_WINDOW, SAMPLE_RATE, AudioNTT2020, MelConfig, describe_format, log_mel

MEL = MelConfig(win_length=400)
MODEL_NAMES = ("default", "cvt", "resnetish34")


# ---------------------------------------------------------------------------------- ResNet-ish
class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the (projected) input, then ReLU; torchvision names."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNetish(nn.Module):
    """7x7 stride-1 stem, 3x3 max-pool, four stages of basic blocks (64, 128, 256, 512 channels)."""

    def __init__(self, blocks: tuple[int, ...] = (3, 4, 6, 3)):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, 7, 1, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        c_in = 64
        for i, (n, c_out) in enumerate(zip(blocks, (64, 128, 256, 512))):
            stride = 1 if i == 0 else 2  # the first block of stages 2-4 halves both axes
            stage = [BasicBlock(c_in, c_out, stride)] + [BasicBlock(c_out, c_out, 1) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            c_in = c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)  # (W, 64, mel / 2, T / 2)
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
        return mean_plus_max(x)


def mean_plus_max(x: torch.Tensor) -> torch.Tensor:
    """(W, C, F, T) -> (W, F * C): per frame the (freq, channel) features, channel fastest; mean + max over time."""
    x = x.permute(0, 3, 2, 1).flatten(2)  # (W, T, F * C)
    return x.mean(1) + x.amax(1)


# ---------------------------------------------------------------------------------- CvT
class ChannelNorm(nn.Module):
    """Layer norm over the channel axis of (W, C, H, X): ``(x - mean) / (std + eps) * g + b``, biased std."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))
        self.b = nn.Parameter(torch.zeros(1, dim, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = torch.var(x, dim=1, unbiased=False, keepdim=True).sqrt()
        return (x - x.mean(dim=1, keepdim=True)) / (std + self.eps) * self.g + self.b


class SeparableProjection(nn.Module):
    """Depthwise conv (no bias) -> BatchNorm -> pointwise conv (no bias): the CvT q / kv projection."""

    def __init__(self, dim: int, out: int, kernel: int, stride: int):
        super().__init__()
        self.depthwise = nn.Conv2d(dim, dim, kernel, stride, kernel // 2, groups=dim, bias=False)
        self.norm = nn.BatchNorm2d(dim)
        self.pointwise = nn.Conv2d(dim, out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.norm(self.depthwise(x)))


class ConvAttention(nn.Module):
    """Multi-head attention over all positions; keys/values come from a strided projection."""

    def __init__(self, dim: int, heads: int, dim_head: int = 64, kernel: int = 3, kv_stride: int = 2):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        self.to_q = SeparableProjection(dim, heads * dim_head, kernel, 1)
        self.to_kv = SeparableProjection(dim, 2 * heads * dim_head, kernel, kv_stride)
        self.out = nn.Conv2d(heads * dim_head, dim, 1)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        w = t.size(0)  # (W, heads * dim_head, H, X) -> (W * heads, H * X, dim_head); channel = head * dim_head + d
        return t.reshape(w, self.heads, self.dim_head, -1).transpose(2, 3).reshape(w * self.heads, -1, self.dim_head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, _, h, y = x.shape
        k, v = self.to_kv(x).chunk(2, dim=1)
        q, k, v = self._split(self.to_q(x)), self._split(k), self._split(v)
        attn = (torch.einsum("bid,bjd->bij", q, k) * self.dim_head ** -0.5).softmax(dim=-1)
        out = torch.einsum("bij,bjd->bid", attn, v)  # (W * heads, H * X, dim_head)
        out = out.reshape(w, self.heads, h * y, self.dim_head).transpose(2, 3).reshape(w, -1, h, y)
        return self.out(out)


class CvTBlock(nn.Module):
    """Pre-norm transformer block with convolutional attention and a 1x1-conv GELU feed-forward."""

    def __init__(self, dim: int, heads: int, mlp_mult: int):
        super().__init__()
        self.attn_norm = ChannelNorm(dim)
        self.attn = ConvAttention(dim, heads)
        self.ff_norm = ChannelNorm(dim)
        self.ff_in = nn.Conv2d(dim, dim * mlp_mult, 1)
        self.ff_out = nn.Conv2d(dim * mlp_mult, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attn(self.attn_norm(x)) + x
        return self.ff_out(F.gelu(self.ff_in(self.ff_norm(x)))) + x


@dataclass(frozen=True)
class CvTStage:
    dim: int
    kernel: int
    stride: int
    heads: int
    depth: int
    mlp_mult: int


CVT_EMBED = ((7, 4), (3, 2), (3, 2))  # (kernel, stride) of the stage embeddings, the original's defaults
CVT_HEADS = (1, 3, 6)


class CvTStageModule(nn.Module):
    def __init__(self, c_in: int, s: CvTStage):
        super().__init__()
        self.embed = nn.Conv2d(c_in, s.dim, s.kernel, s.stride, s.kernel // 2)
        self.embed_norm = ChannelNorm(s.dim)
        self.blocks = nn.ModuleList(CvTBlock(s.dim, s.heads, s.mlp_mult) for _ in range(s.depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed_norm(self.embed(x))
        for block in self.blocks:
            x = block(x)
        return x


class CvT(nn.Module):
    """Three CvT stages, then mean + max over time of the (freq, channel) features."""

    def __init__(self, stages: tuple[CvTStage, ...]):
        super().__init__()
        self.stages = nn.ModuleList(CvTStageModule(c_in, s) for c_in, s in zip((1,) + tuple(s.dim for s in stages),
                                                                               stages))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return mean_plus_max(x)


CVT_KEYS = [  # checkpoint (original CvT module tree) -> ours
    (r"layers\.(\d)\.0\.(weight|bias)", r"stages.\1.embed.\2"),
    (r"layers\.(\d)\.1\.(g|b)", r"stages.\1.embed_norm.\2"),
    (r"layers\.(\d)\.2\.layers\.(\d+)\.0\.norm\.(g|b)", r"stages.\1.blocks.\2.attn_norm.\3"),
    (r"layers\.(\d)\.2\.layers\.(\d+)\.0\.fn\.(to_q|to_kv)\.net\.0\.(.+)", r"stages.\1.blocks.\2.attn.\3.depthwise.\4"),
    (r"layers\.(\d)\.2\.layers\.(\d+)\.0\.fn\.(to_q|to_kv)\.net\.1\.(.+)", r"stages.\1.blocks.\2.attn.\3.norm.\4"),
    (r"layers\.(\d)\.2\.layers\.(\d+)\.0\.fn\.(to_q|to_kv)\.net\.2\.(.+)", r"stages.\1.blocks.\2.attn.\3.pointwise.\4"),
    (r"layers\.(\d)\.2\.layers\.(\d+)\.0\.fn\.to_out\.0\.(weight|bias)", r"stages.\1.blocks.\2.attn.out.\3"),
    (r"layers\.(\d)\.2\.layers\.(\d+)\.1\.norm\.(g|b)", r"stages.\1.blocks.\2.ff_norm.\3"),
    (r"layers\.(\d)\.2\.layers\.(\d+)\.1\.fn\.net\.0\.(weight|bias)", r"stages.\1.blocks.\2.ff_in.\3"),
    (r"layers\.(\d)\.2\.layers\.(\d+)\.1\.fn\.net\.3\.(weight|bias)", r"stages.\1.blocks.\2.ff_out.\3"),
]


def map_cvt_state(state: dict, source: str) -> dict:
    out, unknown = {}, []
    for key, value in state.items():
        for pattern, repl in CVT_KEYS:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, repl, key)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointFormatError(f"{source} is {describe_format(state)}; keys that are not part of the BYOL-S "
                                    f"CvT: {unknown[:8]}")
    return out


def cvt_config(state: dict, source: str) -> tuple[CvTStage, ...]:
    """Stage widths, depths, heads and MLP ratios from the tensor shapes (strides are the original's)."""
    stages = []
    for i, (kernel, stride) in enumerate(CVT_EMBED):
        emb = state.get(f"stages.{i}.embed.weight")
        if emb is None:
            raise CheckpointFormatError(f"{source}: CvT stage {i} is missing (layers.{i}.0.weight)")
        depth = len({k.split(".")[3] for k in state if k.startswith(f"stages.{i}.blocks.")})
        q = state.get(f"stages.{i}.blocks.0.attn.to_q.pointwise.weight")
        ff = state.get(f"stages.{i}.blocks.0.ff_in.weight")
        heads = q.shape[0] // 64 if q is not None else CVT_HEADS[i]
        mult = ff.shape[0] // emb.shape[0] if ff is not None else 4
        stages.append(CvTStage(emb.shape[0], emb.shape[-1], stride, heads, depth, mult))
    return tuple(stages)


# ---------------------------------------------------------------------------------- upstream
class ByolS(nn.Module):
    """BYOL-S upstream: (B, N) 16 kHz waveforms -> one (B, floor(N / hop) + 1, 2048) hidden state."""

    def __init__(self, encoder: nn.Module, hidden_size: int, window_secs: float = 1, hop_secs: float = 0.05):
        super().__init__()
        # the original's arithmetic: frame_duration / hop_size in milliseconds, then samples
        self.window = int((window_secs * 1000) / 1000 * SAMPLE_RATE)
        self.hop = int((hop_secs * 1000) / 1000.0 * SAMPLE_RATE)
        if self.hop <= 0:
            raise ValueError(f"hop_secs must be at least one sample at 16 kHz, got {hop_secs}")
        # the centred STFT needs more than n_fft / 2 samples; AudioNTT2020 needs 8 frames for its 3 poolings
        minimum = MIN_WINDOW if isinstance(encoder, AudioNTT2020) else MEL.n_fft // 2 + 1
        if self.window < minimum:
            raise ValueError(f"window_secs gives {self.window} samples per window; this model needs at least "
                             f"{minimum} ({minimum / SAMPLE_RATE:.3f} s)")
        self.encoder = encoder
        self.hidden_size = hidden_size

    num_layers = 1

    @property
    def hidden_sizes(self) -> list[int]:
        return [self.hidden_size]

    @property
    def downsample_rates(self) -> list[int]:
        return [self.hop]

    def frames(self, wav: torch.Tensor) -> torch.Tensor:
        """(N,) -> (N // hop + 1, window): centred windows over the zero-padded utterance."""
        half = self.window // 2
        padded = F.pad(wav, (half, self.window - half))
        return padded.unfold(0, self.window, self.hop)

    def normalised_log_mel(self, wav: torch.Tensor) -> torch.Tensor:
        lms = log_mel(self.frames(wav), MEL)  # (F, 64, T)
        count = lms.size(0)
        mean, std = lms.mean() / count, lms.std() / count  # the original divides both by the window count
        return (lms - mean.item()) / std.item()

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        feats = [self.normalised_log_mel(w[: int(n)]) for w, n in zip(wavs, wavs_len)]
        counts = [f.size(0) for f in feats]
        emb = self.encoder(torch.cat(feats)[:, None])  # (sum F, 2048)
        states, lengths = windows.merge_windows(emb[:, None], counts, counts)  # (B, max count, D)
        return [states], [lengths]


def make_encoder(model_name: str, state: dict, source: str) -> tuple[nn.Module, dict, int]:
    """(encoder, state with our key names, embedding size) for a serab-byols state dict."""
    if model_name == "default":
        d = state["fc.3.weight"].shape[0] if "fc.3.weight" in state else 2048
        return AudioNTT2020(d), dict(state), d
    if model_name == "resnetish34":
        return ResNetish(), dict(state), 512 * (MEL.n_mels // 16)
    mapped = map_cvt_state(state, source)
    stages = cvt_config(mapped, source)
    mel = MEL.n_mels
    for s in stages:
        mel = (mel + 2 * (s.kernel // 2) - s.kernel) // s.stride + 1
    return CvT(stages), mapped, stages[-1].dim * mel


def build(ckpt: str | None, model_name: str = "default", window_secs: float = 1, hop_secs: float = 0.05,
          model_config: str | None = None, **options) -> ByolS:
    """BYOL-S from a serab-byols ``.pth``; ``model_name`` (fixed by the entry) selects the encoder."""
    if options:
        raise TypeError(f"unknown option(s) for BYOL-S: {', '.join(sorted(options))} "
                        "(allowed: window_secs, hop_secs, model_name)")
    if model_name not in MODEL_NAMES:
        raise ValueError(f"model_name must be one of {', '.join(MODEL_NAMES)}, got {model_name!r}")
    if model_config is not None:
        raise ValueError("model_config is not read by BYOL-S (the original stores it and ignores it); leave it unset")
    if ckpt is None:
        raise ValueError("BYOL-S needs a checkpoint: pass path_or_url")
    state = ckpt_io.load_checkpoint(ckpt)
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointFormatError(f"{ckpt} is {describe_format(state)}, not a BYOL-S state dict")
    encoder, mapped, hidden = make_encoder(model_name, state, ckpt)
    own = encoder.state_dict()
    missing, extra = [k for k in own if k not in mapped], [k for k in mapped if k not in own]
    if missing or extra:
        raise CheckpointFormatError(f"{ckpt} is {describe_format(state)}; it does not fit BYOL-S {model_name!r} "
                                    f"(missing {missing[:6]}, unexpected {extra[:6]})")
    model = ByolS(encoder, hidden, window_secs, hop_secs)
    fairseq_convert.load_state(encoder, mapped, ckpt, mapped=True)
    return model.eval()
