"""DeCoAR and DeCoAR 2.0 (deep contextualised acoustic representations) on 80-d Kaldi fbank + utterance CMVN.

* DeCoAR: ``Linear(80, 1024)``, then 4 forward LSTM layers and, on the time-reversed utterance, 4 backward LSTM
  layers (unidirectional, separate). A layer's state is its forward output and its re-reversed backward output,
  concatenated (2048). ``decoar`` exposes the last layer only, ``decoar_layers`` all 4 (both read the same file;
  the stacked ``forward_lstm.weight_ih_l<k>`` keys are split per layer, as the original ``decoar_layers`` did).
* DeCoAR 2.0: ``Linear(80, 768)`` and the wav2vec 2.0 transformer encoder (12 post-LN layers, reused from
  ``wav2vec2``) on a low-frame-rate fbank (every second frame, so stride 320). States: the input of every layer,
  then the encoder output (13).

The checkpoints are ``{'model': state_dict}`` with no configuration: sizes are read from the tensor shapes (the
head count as the released 768 / 12, i.e. 64 per head). The original loads them non-strictly, so keys outside
the model's own modules (pre-training heads) are skipped; every key of the model's modules must be present.

Exactness: every utterance is featurised alone; the LSTMs run packed on each utterance's true length (the
backward direction reverses each utterance within its own length) and the encoder masks padded frames, so a
padded batch gives each utterance its batch-size-1 result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint as ckpt_io
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointFormatError
from .apc import FbankConfig, KaldiFbank, describe_checkpoint, lengths_to_mask, load_mapped, run_rnn
from .wav2vec2 import Encoder, Wav2Vec2Config

INPUT_DIM = 80
HEAD_DIM = 64  # DeCoAR 2.0: 768 dims, 12 heads
DECOAR2_DROPOUT_INPUT = 0.1

DECOAR_KEYS = [
    (r"post_extract_proj\.(weight|bias)", r"\g<0>"),
    (r"(forward|backward)_lstm\.(weight|bias)_(ih|hh)_l(\d+)", r"\1_lstms.\4.\2_\3_l0"),  # stacked LSTM file
    (r"(forward|backward)_lstms\.(\d+)\.(weight|bias)_(ih|hh)_l0", r"\g<0>"),  # per-layer layout
]
LSTM_LAYER = re.compile(r"forward_lstm\.weight_ih_l(\d+)|forward_lstms\.(\d+)\.weight_ih_l0")
# The original loads non-strictly: keys outside its modules (e.g. pre-training heads) never reach the model.
DECOAR_DROP = [r"(?!post_extract_proj\.|forward_lstms?\.|backward_lstms?\.).*"]
DECOAR2_DROP = [r"(?!post_extract_proj\.|encoder\.).*"]


def reverse_in_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each utterance's first ``lengths[b]`` frames of (B, T, D); padded frames stay in place."""
    t = torch.arange(x.size(1), device=x.device)[None, :]  # (1, T)
    index = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # (B, T)
    return x.gather(1, index[:, :, None].expand_as(x))


# ---------------------------------------------------------------------------------------------
# DeCoAR
# ---------------------------------------------------------------------------------------------


@dataclass
class DeCoARConfig:
    """Architecture of DeCoAR."""

    dim: int = 1024
    num_layers: int = 4
    all_layers: bool = False  # decoar_layers: every layer's state; decoar: the last only
    fbank: FbankConfig = field(default_factory=FbankConfig)


class DeCoAR(nn.Module):
    def __init__(self, cfg: DeCoARConfig):
        super().__init__()
        self.cfg = cfg
        self.frontend = KaldiFbank(cfg.fbank)
        self.post_extract_proj = nn.Linear(INPUT_DIM, cfg.dim)
        self.forward_lstms = nn.ModuleList(nn.LSTM(cfg.dim, cfg.dim, batch_first=True) for _ in range(cfg.num_layers))
        self.backward_lstms = nn.ModuleList(nn.LSTM(cfg.dim, cfg.dim, batch_first=True) for _ in range(cfg.num_layers))

    @property
    def num_layers(self) -> int:
        return self.cfg.num_layers if self.cfg.all_layers else 1

    @property
    def hidden_sizes(self) -> list[int]:
        return [2 * self.cfg.dim] * self.num_layers

    @property
    def downsample_rates(self) -> list[int]:
        return [self.cfg.fbank.stride] * self.num_layers

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        """wavs (B, N) zero-padded, wavs_len (B,) -> states (B, T, 2 * dim), frames (B,) each."""
        feats, lengths = self.frontend(wavs, wavs_len.to(wavs.device))  # (B, T, 80)
        x = self.post_extract_proj(feats)  # (B, T, D)
        fwd, bwd = x, reverse_in_length(x, lengths)
        states = []
        for i, (forward_lstm, backward_lstm) in enumerate(zip(self.forward_lstms, self.backward_lstms)):
            fwd, bwd = run_rnn(forward_lstm, fwd, lengths), run_rnn(backward_lstm, bwd, lengths)  # (B, T, D)
            if self.cfg.all_layers or i == self.cfg.num_layers - 1:
                states.append(torch.cat([fwd, reverse_in_length(bwd, lengths)], dim=-1))  # (B, T, 2D)
        return states, [lengths] * len(states)


def decoar_config(state: dict, all_layers: bool, source: str) -> DeCoARConfig:
    proj = state.get("post_extract_proj.weight")
    layers = set()
    for key in state:
        if match := LSTM_LAYER.fullmatch(str(key)):
            layers.add(int(match[1] or match[2]))
    if proj is None or not layers:
        raise CheckpointFormatError(f"{source} is {describe_checkpoint({'model': state})}, not a DeCoAR checkpoint")
    if proj.dim() != 2 or proj.shape[1] != INPUT_DIM:
        raise CheckpointFormatError(f"{source}: post_extract_proj.weight has shape {tuple(proj.shape)}, "
                                    f"expected (dim, {INPUT_DIM})")
    if layers != set(range(len(layers))):
        raise CheckpointFormatError(f"{source}: forward LSTM layers {sorted(layers)} are not 0..{len(layers) - 1}")
    return DeCoARConfig(dim=int(proj.shape[0]), num_layers=len(layers), all_layers=all_layers)


def read_model_state(ckpt: str) -> dict:
    obj = ckpt_io.load_checkpoint(ckpt)
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict) or "config" in obj:
        raise CheckpointFormatError(f"{ckpt} is {describe_checkpoint(obj)}, not a DeCoAR checkpoint "
                                    "({'model': state_dict})")
    return obj["model"]


def _build_decoar(ckpt: str | None, options: dict, all_layers: bool) -> DeCoAR:
    name = "decoar_layers" if all_layers else "decoar"
    if ckpt is None:
        raise ValueError(f"{name} needs a checkpoint: pass path_or_url / ckpt")
    if options:
        raise TypeError(f"unknown option(s) for {name}: {', '.join(sorted(options))} (it takes none)")
    state = read_model_state(ckpt)
    if any(str(k).startswith("encoder.layers.") for k in state):
        raise CheckpointFormatError(f"{ckpt} is a DeCoAR 2.0 checkpoint: use decoar2_local")
    model = DeCoAR(decoar_config(state, all_layers, ckpt))
    load_mapped(model, state, DECOAR_KEYS, DECOAR_DROP, ckpt)
    return model.eval()


def build_decoar(ckpt: str | None, **options) -> DeCoAR:
    """DeCoAR, last layer only (``decoar*``)."""
    return _build_decoar(ckpt, options, all_layers=False)


def build_decoar_layers(ckpt: str | None, **options) -> DeCoAR:
    """DeCoAR, every layer (``decoar_layers*``)."""
    return _build_decoar(ckpt, options, all_layers=True)


# ---------------------------------------------------------------------------------------------
# DeCoAR 2.0
# ---------------------------------------------------------------------------------------------


class DeCoAR2(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config, fbank: FbankConfig | None = None):
        super().__init__()
        self.cfg = cfg
        self.frontend = KaldiFbank(fbank or FbankConfig(keep_every=2))
        self.feature_proj = nn.Linear(INPUT_DIM, cfg.embed_dim)
        self.encoder = Encoder(cfg)

    @property
    def num_layers(self) -> int:
        return self.cfg.num_layers + 1

    @property
    def hidden_sizes(self) -> list[int]:
        return [self.cfg.embed_dim] * self.num_layers

    @property
    def downsample_rates(self) -> list[int]:
        return [self.frontend.cfg.stride] * self.num_layers

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        """wavs (B, N) zero-padded, wavs_len (B,) -> L + 1 states (B, T, D), frames (B,) each."""
        feats, lengths = self.frontend(wavs, wavs_len.to(wavs.device))  # (B, T, 80), every 2nd frame
        x = F.dropout(self.feature_proj(feats), DECOAR2_DROPOUT_INPUT, self.training)  # (B, T, D)
        x = x * lengths_to_mask(lengths, x.size(1))[:, :, None].to(x.dtype)  # the encoder expects zero padding
        states = self.encoder(x, lengths)
        return states, [lengths] * len(states)


def decoar2_config(state: dict, source: str) -> Wav2Vec2Config:
    proj = state.get("post_extract_proj.weight")
    layers = {int(m[1]) for k in state if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
    pos = state.get("encoder.pos_conv.0.weight_v", state.get("encoder.pos_conv.0.parametrizations.weight.original1"))
    fc1 = state.get("encoder.layers.0.fc1.weight")
    if proj is None or not layers or pos is None or fc1 is None:
        raise CheckpointFormatError(f"{source} is {describe_checkpoint({'model': state})}, not a DeCoAR 2.0 "
                                    "checkpoint")
    dim = int(proj.shape[0])
    if proj.shape[1] != INPUT_DIM or dim % HEAD_DIM or layers != set(range(len(layers))):
        raise CheckpointFormatError(f"{source}: unexpected DeCoAR 2.0 shapes (post_extract_proj {tuple(proj.shape)}, "
                                    f"layers {sorted(layers)}); the model dimension must be a multiple of {HEAD_DIM}")
    return Wav2Vec2Config(
        embed_dim=dim, ffn_dim=int(fc1.shape[0]), num_layers=len(layers), num_heads=dim // HEAD_DIM,
        activation="gelu", layer_norm_first=False, conv_pos=int(pos.shape[2]), conv_pos_groups=dim // int(pos.shape[1]),
        dropout=0.1, attention_dropout=0.1, activation_dropout=0.0, extra={"family": "decoar2", "source": source})


def build_decoar2(ckpt: str | None, **options) -> DeCoAR2:
    """DeCoAR 2.0 (``decoar2*``)."""
    if ckpt is None:
        raise ValueError("decoar2 needs a checkpoint: pass path_or_url / ckpt")
    if options:
        raise TypeError(f"unknown option(s) for decoar2: {', '.join(sorted(options))} (it takes none)")
    state = read_model_state(ckpt)
    if any(str(k).startswith(("forward_lstm", "backward_lstm")) for k in state):
        raise CheckpointFormatError(f"{ckpt} is a DeCoAR checkpoint: use decoar_local or decoar_layers_local")
    cfg = decoar2_config(state, ckpt)
    model = DeCoAR2(cfg)
    kept = {k: v for k, v in state.items() if not any(re.fullmatch(p, k) for p in DECOAR2_DROP)}
    fairseq_convert.load_state(model, fairseq_convert.map_state(kept, cfg), ckpt, mapped=True)
    return model.eval()
