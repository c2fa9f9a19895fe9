"""PaSST: Patchout audio spectrogram transformer, HEAR-2021 timestamp embeddings (family ``passt``).

What the original ``passt_*`` entries run (s3prl's copy of ``hear21passt`` 0.0.18), per utterance:

* the 16 kHz waveform is upsampled to 32 kHz (``torchaudio.transforms.Resample(16000, 32000)``: windowed
  sinc, kernel computed in float64 and kept in float32);
* HEAR timestamps: the 32 kHz signal is reflect-padded by half a window and cut into windows of
  ``window_secs`` every ``stride_secs`` (``windows.centered_windows``); one embedding per window;
* each window: pre-emphasis (-0.97, 1), |STFT|^2 (n_fft 1024, Hann window of 800, hop 320 / 100 / 160 for
  the ``base`` / ``hop100*`` / ``hop160*`` models, centred), 128 Kaldi mel filters from 0 Hz to 15 kHz,
  ``(log(mel + 1e-5) + 4.5) / 5``; no augmentation (the original's eval mode);
* the PaSST transformer: 16x16 patches with stride 10x10, separate frequency and time positional embeddings
  (the time table cut to the window's patches), class and distillation tokens with their own positions, 12
  pre-norm blocks (patchout only acts in training, so never here); the embedding is
  ``[logits (527), (cls + dist) / 2 (768)]`` = 1295 values;
* ``*2level`` / ``*2lvl`` models concatenate a second embedding from a window 5x longer (``base2levelmel``: 4x),
  ``*mel`` models also the 128 x 6 mel frames of a window of 6 STFT hops: 2590 / 3358 values per frame.

One hidden state, rate ``stride_secs`` * 16000 samples (800). Checkpoint: the released PaSST state dict
(``cls_token``, ``new_pos_embed``, ``freq_new_pos_embed``, ``time_new_pos_embed``, ``blocks.N.*``, ``head.*``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint as ckpt_io
from ..audio import _sinc_kernel, mel_banks
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointFormatError
from .vit import PatchEmbed, Transformer, ViTConfig, check_vit_state, rename_state
from .windows import centered_windows

SAMPLE_RATE, MODEL_RATE = 16000, 32000
ARCHS = {  # hear21passt module -> (STFT hop at 32 kHz, window-length factors, mel-summary window or None)
    "base": (320, (1,), None),
    "base2level": (320, (1, 5), None),
    "base2levelmel": (320, (1, 4), 6 * 320),
    "base20sec": (320, (1,), None),
    "base30sec": (320, (1,), None),
    "hop100base": (100, (1,), None),
    "hop100base2lvl": (100, (1, 5), None),
    "hop100base2lvlmel": (100, (1, 5), 6 * 100),
    "hop160base": (160, (1,), None),
    "hop160base2lvl": (160, (1, 5), None),
    "hop160base2lvlmel": (160, (1, 5), 6 * 160),
}
N_MELS, N_FFT, WIN_LENGTH = 128, 1024, 800
MAX_WINDOWS_PER_CALL = 256  # bounds memory on long clips; windows are independent


@dataclass
class PaSSTConfig:
    vit: ViTConfig = field(default_factory=ViTConfig)
    num_classes: int = 527
    grid: tuple[int, int] = (12, 99)  # stored (frequency, time) positional tables
    stft_hop: int = 320
    window: int = 5120  # samples at 32 kHz
    hop: int = 1600
    factors: tuple[int, ...] = (1,)
    mel_window: int | None = None
    downsample_rate: int = 800  # 16 kHz samples per frame
    head_norm_eps: float = 1e-5

    @property
    def embed_size(self) -> int:
        return self.num_classes + self.vit.embed_dim


class PaSST(nn.Module):
    def __init__(self, cfg: PaSSTConfig):
        super().__init__()
        self.cfg = cfg
        dim, (f, t) = cfg.vit.embed_dim, cfg.grid
        self.patch_embed = PatchEmbed(dim, (16, 16), (10, 10))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.new_pos_embed = nn.Parameter(torch.zeros(1, 2, dim))  # positions of the class / distillation tokens
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, dim, f, 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, dim, 1, t))
        self.transformer = Transformer(cfg.vit)
        self.head_norm = nn.LayerNorm(dim, eps=cfg.head_norm_eps)
        self.head = nn.Linear(dim, cfg.num_classes)
        self.register_buffer("stft_window", torch.hann_window(WIN_LENGTH, periodic=False), persistent=False)
        self.register_buffer("preemphasis", torch.tensor([[[-0.97, 1.0]]]), persistent=False)
        self.register_buffer("mel_basis", mel_banks(N_MELS, N_FFT, MODEL_RATE, 0.0, MODEL_RATE // 2 - 1000,
                                                    100.0, -500.0, 1.0), persistent=False)  # fmax 15 kHz
        kernel, self.resample_width = _sinc_kernel(1, 2, 6, 0.99, torch.float64)  # as the Resample transform
        self.register_buffer("resample_kernel", kernel.float(), persistent=False)

    @property
    def num_layers(self) -> int:
        return 1

    @property
    def hidden_sizes(self) -> list[int]:
        return [len(self.cfg.factors) * self.cfg.embed_size + (N_MELS * 6 if self.cfg.mel_window else 0)]

    @property
    def downsample_rates(self) -> list[int]:
        return [self.cfg.downsample_rate]

    def min_samples(self) -> int:
        """Shortest utterance (16 kHz) whose longest window can be reflect-padded."""
        longest = max([self.cfg.window * f for f in self.cfg.factors] + [self.cfg.mel_window or 0])
        return longest // 2 // 2 + 1

    def upsample(self, wav: torch.Tensor) -> torch.Tensor:
        """(n,) 16 kHz -> (2n,) 32 kHz."""
        x = F.pad(wav[None, None], (self.resample_width, self.resample_width + 1))
        y = F.conv1d(x, self.resample_kernel.to(wav.dtype), stride=1)  # (1, 2, n + ...)
        return y.transpose(1, 2).reshape(-1)[: 2 * wav.numel()]

    def mel(self, x: torch.Tensor) -> torch.Tensor:
        """(N, samples) at 32 kHz -> (N, 128, frames) normalised log mel."""
        x = F.conv1d(x[:, None], self.preemphasis)[:, 0]
        spec = torch.stft(x, N_FFT, hop_length=self.cfg.stft_hop, win_length=WIN_LENGTH, window=self.stft_window,
                          center=True, normalized=False, return_complex=True)
        power = torch.view_as_real(spec).pow(2).sum(-1)  # (N, 513, frames)
        mel = torch.matmul(self.mel_basis, power)
        return ((mel + 0.00001).log() + 4.5) / 5.0

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, samples) windows at 32 kHz -> (N, classes + D): logits, then the pooled features."""
        x = self.patch_embed(self.mel(x))  # (N, D, F, T)
        N, _, f, t = x.shape
        if t > self.time_new_pos_embed.size(-1) or f != self.freq_new_pos_embed.size(2):
            raise ValueError(f"a window gives a {f} x {t} patch grid; the checkpoint's positional tables cover "
                             f"{self.freq_new_pos_embed.size(2)} x {self.time_new_pos_embed.size(-1)}")
        x = x + self.time_new_pos_embed[..., :t]
        x = (x + self.freq_new_pos_embed).flatten(2).transpose(1, 2)  # (N, F * T, D)
        tokens = [self.cls_token.expand(N, -1, -1) + self.new_pos_embed[:, :1],
                  self.dist_token.expand(N, -1, -1) + self.new_pos_embed[:, 1:]]
        _, x = self.transformer(torch.cat(tokens + [x], dim=1))
        features = (x[:, 0] + x[:, 1]) / 2
        return torch.cat([self.head(self.head_norm(features)), features], dim=1)

    def level(self, signals: list[torch.Tensor], window: int, fn) -> list[torch.Tensor]:
        """Embeddings of every centred window of every utterance -> per utterance (W_b, D)."""
        windows = [centered_windows(s, window, self.cfg.hop) for s in signals]
        flat = torch.cat(windows)
        out = torch.cat([fn(chunk) for chunk in flat.split(MAX_WINDOWS_PER_CALL)])
        return list(out.split([w.size(0) for w in windows]))

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        short = [n for n in wavs_len.tolist() if n < self.min_samples()]
        if short:
            n = self.min_samples()
            raise ValueError(f"PaSST needs at least {n} samples ({n / SAMPLE_RATE:.3f} s) per utterance: its windows "
                             f"are reflect-padded by half their length; got {short}")
        signals = [self.upsample(wavs[b, :n]) for b, n in enumerate(wavs_len.tolist())]
        parts = [self.level(signals, self.cfg.window * f, self.embed) for f in self.cfg.factors]
        if self.cfg.mel_window:
            parts.append(self.level(signals, self.cfg.mel_window, lambda x: self.mel(x).flatten(1)))
        if any(p[b].size(0) != parts[0][b].size(0) for p in parts for b in range(len(signals))):
            raise ValueError("the windows of this PaSST model give different timestamps per level: use an even "
                             "window length in samples at 32 kHz")
        per_utt = [torch.cat([p[b] for p in parts], dim=1) for b in range(len(signals))]  # (W_b, hidden)
        lengths = torch.tensor([h.size(0) for h in per_utt], device=wavs.device)
        return [nn.utils.rnn.pad_sequence(per_utt, batch_first=True)], [lengths]


KEYS = [
    (r"(cls_token|dist_token|new_pos_embed|freq_new_pos_embed|time_new_pos_embed)", r"\1"),
    (r"patch_embed\.proj\.(weight|bias)", r"patch_embed.proj.\1"),
    (r"blocks\.(\d+)\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)",
     r"transformer.blocks.\1.\2.\3"),
    (r"norm\.(weight|bias)", r"transformer.norm.\1"),
    (r"head\.0\.(weight|bias)", r"head_norm.\1"),
    (r"head\.1\.(weight|bias)", r"head.\1"),
]
DROP = [r"head_dist\.(weight|bias)"]  # the distillation head: the embedding averages the tokens before any head


def window_samples(secs: float) -> int:
    """The wrapper's arithmetic: milliseconds, then samples at 32 kHz."""
    return int(secs * 1000 * MODEL_RATE / 1000)


def build(ckpt: str | None, arch: str | None = None, window_secs: float = 0.16, stride_secs: float = 0.05,
          **options) -> PaSST:
    """``passt_*``: a released PaSST checkpoint; ``arch`` names the hear21passt module of the entry."""
    if options:
        raise TypeError(f"unknown option(s) for PaSST: {', '.join(sorted(options))} "
                        "(accepted: arch, window_secs, stride_secs)")
    if arch not in ARCHS:
        raise ValueError(f"arch={arch!r} is not a PaSST model; choose one of {', '.join(ARCHS)}")
    if ckpt is None:
        raise ValueError("PaSST needs a checkpoint: pass path_or_url")
    if not window_secs > 0 or not stride_secs > 0 or int(stride_secs * SAMPLE_RATE) < 1:
        raise ValueError(f"window_secs and stride_secs must be positive, got {window_secs} and {stride_secs}")
    obj = ckpt_io.load_checkpoint(ckpt)
    state = obj["model"] if isinstance(obj, dict) and isinstance(obj.get("model"), dict) else obj
    if not isinstance(state, dict) or "time_new_pos_embed" not in state or "freq_new_pos_embed" not in state:
        imagenet = isinstance(state, dict) and "pos_embed" in state
        hint = " (an ImageNet ViT/DeiT: no PaSST positional tables)" if imagenet else ""
        raise CheckpointFormatError(f"{ckpt} is {fairseq_convert.describe_format(state)}, not a PaSST checkpoint{hint}")
    state = dict(state)
    weight = state.get("patch_embed.proj.weight")
    if weight is not None and weight.dim() < 4:  # models trained before conv patchification: flat patches
        state["patch_embed.proj.weight"] = weight.reshape(weight.size(0), -1, 16, 16)
    stft_hop, factors, mel_window = ARCHS[arch]
    cfg = PaSSTConfig(vit=check_vit_state(state, "", ckpt), num_classes=state["head.1.weight"].shape[0],
                      grid=(state["freq_new_pos_embed"].shape[2], state["time_new_pos_embed"].shape[3]),
                      stft_hop=stft_hop, window=window_samples(window_secs), hop=window_samples(stride_secs),
                      factors=factors, mel_window=mel_window, downsample_rate=int(stride_secs * SAMPLE_RATE))
    frames = 1 + (cfg.window - 1) // stft_hop  # STFT frames of the pre-emphasised window
    if frames < 16 or cfg.hop < 1:
        raise ValueError(f"window_secs={window_secs} gives {frames} STFT frames, fewer than one 16-frame patch")
    model = PaSST(cfg)
    fairseq_convert.load_state(model, rename_state(state, KEYS, DROP, ckpt), ckpt, mapped=True)
    return model.eval()
