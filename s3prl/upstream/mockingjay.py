"""Mockingjay, TERA, Audio ALBERT and the SpecAugment Transformer: s3prl's own BERT-style speech encoders.

The four share one checkpoint format (the s3prl pre-training runner's ``.ckpt``: ``Transformer`` weights,
the upstream configuration under ``Upstream_Config``, or under ``Config`` in early files) and one model:

* front-end, per the checkpoint's ``audio`` section: with a ``kaldi`` section, Kaldi features + deltas +
  CMVN; otherwise the waveform is scaled to ``target_level`` dB RMS and the centred-STFT "preprocessor"
  feature (``mel`` / ``linear`` / ``mfcc``, optional log, deltas, utterance CMVN) is computed;
* ``spec_transform`` (Linear) + a sinusoidal position table, LayerNorm, then ``num_hidden_layers`` BERT
  layers (post-LN, or pre-LN with one extra LayerNorm per exposed state); Audio ALBERT applies one shared
  layer that many times;
* utterances longer than ``task.sequence_length`` frames are cut into ``ceil(T / sequence_length)`` equal
  chunks (``torch.chunk`` sizes) that are encoded separately, positions restarting at 0, and concatenated.

Hidden states: the input representation, then every layer's output (L + 1). Attention follows the
original's mask: in each chunk only the first ``n`` frames are attended to, ``n`` being the number of
frames whose feature vector does not sum to zero (in practice all of them, except for digital silence).

Batch independence: the original chunks and masks relative to the padded batch; here every utterance is
featurised and chunked on its own samples, which is what the original computes at batch size 1. Chunks
of the whole batch then run together, padded, with padded keys excluded from attention.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from dataclasses import dataclass

import torch
import torch.nn as nn
import yaml
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from .. import checkpoint as ckpt_io
from ..audio import features
from ..convert import config as config_io
from ..convert.errors import CheckpointConfigError, CheckpointFormatError
from ..convert.fairseq import describe_format
from . import baseline

SAMPLE_RATE = 16000
MASK_VALUE = -10000.0  # the original's additive attention mask for frames past a chunk's non-zero frames
ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "swish": F.silu}

# options_config keys (the original's strings 'True'/'False'); the last three the original overwrites or ignores
OPTION_DEFAULTS = {"load_pretrain": True, "no_grad": False, "dropout": "default", "spec_aug": False,
                   "spec_aug_prev": True, "output_hidden_states": True, "permute_input": False}
IGNORED_OPTIONS = ("weighted_sum", "select_layer", "ckpt_file")
FLAGS = {**dict.fromkeys(("y", "yes", "t", "true", "on", "1"), True),
         **dict.fromkeys(("n", "no", "f", "false", "off", "0"), False)}
STFT_KEYS = ("sample_rate", "win_ms", "hop_ms", "n_freq", "n_mels", "n_mfcc", "eps", "input")


@dataclass
class TransformerConfig:
    """Architecture of the Mockingjay-family encoder (from the checkpoint's ``transformer`` and ``task``)."""

    input_dim: int
    hidden_size: int = 768
    num_layers: int = 3
    num_heads: int = 12
    intermediate_size: int = 3072
    activation: str = "gelu"
    layer_norm_eps: float = 1e-12
    share_layer: bool = False  # Audio ALBERT: one layer applied num_layers times
    pre_layer_norm: bool = False
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    initializer_range: float = 0.02
    sequence_length: int = 1500  # chunk length in frames; 0 = never chunk


def sinusoid_table(length: int, hidden: int, device=None) -> torch.Tensor:
    """(length, hidden) float32 position table: sin/cos of pos / 10000^(2*(i//2)/hidden), made in float64."""
    pos = torch.arange(length, dtype=torch.float64, device=device)[:, None]
    exponent = torch.tensor([2 * (i // 2) / hidden for i in range(hidden)], dtype=torch.float64, device=device)
    angle = pos / torch.pow(torch.tensor(10000.0, dtype=torch.float64, device=device), exponent)
    angle[:, 0::2] = angle[:, 0::2].sin()
    angle[:, 1::2] = angle[:, 1::2].cos()
    return angle.float()


class FrontEnd:
    """The checkpoint's feature extractor, applied to one utterance: (N,) samples -> (T, D)."""

    def __init__(self, audio: dict, source: str):
        if not isinstance(audio, dict):
            raise CheckpointFormatError(f"{source}: the upstream config has no 'audio' section (on-the-fly features)")
        try:
            if "kaldi" in audio:  # no level normalisation on this path, as the original
                self.plan = baseline.parse_config({k: audio[k] for k in ("kaldi", "delta", "cmvn") if k in audio},
                                                  source)
                self.target_level = None
            else:
                if "target_level" not in audio:
                    raise ValueError("the 'audio' section needs 'target_level' (dB) for the STFT front-end")
                self.plan = baseline.parse_config({k: audio[k] for k in STFT_KEYS if k in audio}, source)
                self.target_level = float(audio["target_level"])
        except ValueError as error:
            raise CheckpointFormatError(f"{source}: unsupported 'audio' config: {error}") from error
        self.dim, self.stride = int(self.plan["dim"]), int(self.plan["stride"])

    def __call__(self, wav: torch.Tensor) -> torch.Tensor:
        p = self.plan
        if p["kind"] == "kaldi":
            feats = p["fn"](wav, sample_frequency=SAMPLE_RATE, **p["kwargs"])  # (T, D0)
            feats = features.add_deltas(feats, p["order"], p["win_length"], p["mode"])
            return features.cmvn(feats, p["eps"]) if p["use_cmvn"] else feats
        rms = wav.pow(2).mean().pow(0.5)
        wav = wav * ((10 ** (self.target_level / 20)) / (rms + 1e-10))  # to target_level dB, same float ops
        o = p["options"]
        feats = features.stft_feature(
            wav, p["feat_type"], sample_rate=o["sample_rate"], win_ms=o["win_ms"], hop_ms=o["hop_ms"],
            n_freq=o["n_freq"], n_mels=o["n_mels"], n_mfcc=o["n_mfcc"], log=p["log"], delta=p["delta"],
            eps=o["eps"])  # (T, D)
        if not p["use_cmvn"] or feats.size(0) == 0:
            return feats
        # statistics over every frame, in the (D, T) layout of the original (summation order shows at 1e-6)
        return features.cmvn(feats.T.contiguous(), o["eps"], dim=1).T


class Layer(nn.Module):
    """One BERT layer: self-attention and feed-forward blocks, each residual, post- or pre-LayerNorm."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        H, eps = cfg.hidden_size, cfg.layer_norm_eps
        if H % cfg.num_heads:
            raise CheckpointFormatError(f"hidden_size {H} is not a multiple of num_attention_heads {cfg.num_heads}")
        self.cfg = cfg
        self.query, self.key, self.value, self.attn_out = (nn.Linear(H, H) for _ in range(4))
        self.attn_norm = nn.LayerNorm(H, eps=eps)
        self.ffn_in = nn.Linear(H, cfg.intermediate_size)
        self.ffn_out = nn.Linear(cfg.intermediate_size, H)
        self.ffn_norm = nn.LayerNorm(H, eps=eps)
        self.act = ACTIVATIONS[cfg.activation]

    def attention(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        N, C, H = x.shape
        split = lambda t: t.view(N, C, self.cfg.num_heads, -1).transpose(1, 2)  # noqa: E731  (N, heads, C, Dh)
        drop = self.cfg.attention_dropout if self.training else 0.0
        ctx = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)),
                                             attn_mask=mask, dropout_p=drop)  # (N, heads, C, Dh)
        return ctx.transpose(1, 2).reshape(N, C, H)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        drop = lambda t: F.dropout(t, self.cfg.hidden_dropout, self.training)  # noqa: E731
        if self.cfg.pre_layer_norm:
            x = x + drop(self.attn_out(self.attention(self.attn_norm(x), mask)))
            return x + drop(self.ffn_out(self.act(self.ffn_in(self.ffn_norm(x)))))
        x = self.attn_norm(x + drop(self.attn_out(self.attention(x, mask))))
        return self.ffn_norm(x + drop(self.ffn_out(self.act(self.ffn_in(x)))))


def chunk_mask(feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(N, C, D) padded chunks, (N,) valid frames -> (N, 1, 1, C) additive attention mask.

    The original attends, in each chunk, to the first ``n`` frames, ``n`` = the number of frames whose
    features do not sum to 0, and adds -10000 to the rest; padding (absent in the original) gets -inf.
    """
    C = feats.size(1)
    t = torch.arange(C, device=feats.device)[None, :]  # (1, C)
    nonzero = (feats.sum(dim=-1) != 0) & (t < lengths[:, None])  # (N, C)
    mask = torch.zeros(feats.shape[:2], dtype=feats.dtype, device=feats.device)
    mask = mask.masked_fill(t >= nonzero.sum(dim=1, keepdim=True), MASK_VALUE)
    mask = mask.masked_fill(t >= lengths[:, None], float("-inf"))
    return mask[:, None, None, :]


class Encoder(nn.Module):
    """Input representation + layers: (N, C, D) feature chunks -> L + 1 states, each (N, C, H)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        H = cfg.hidden_size
        self.spec_transform = nn.Linear(cfg.input_dim, H)
        self.input_norm = nn.LayerNorm(H, eps=cfg.layer_norm_eps)
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(1 if cfg.share_layer else cfg.num_layers))
        n_out = cfg.num_layers + 1 if cfg.pre_layer_norm else 0  # pre-LN: one norm per exposed state
        self.output_norms = nn.ModuleList(nn.LayerNorm(H, eps=cfg.layer_norm_eps) for _ in range(n_out))

    def reset_parameters(self) -> None:
        """The original's initialisation (``load_pretrain: False``): N(0, initializer_range) matrices."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, self.cfg.initializer_range)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """feats (N, C, D) padded chunks, mask (N, 1, 1, C) from ``chunk_mask`` -> L + 1 states (N, C, H)."""
        cfg = self.cfg
        pos = sinusoid_table(feats.size(1), cfg.hidden_size, feats.device).to(feats.dtype)  # (C, H)
        x = self.input_norm(self.spec_transform(feats) + pos)  # (N, C, H)
        x = F.dropout(x, cfg.hidden_dropout, self.training)
        states = []
        for i in range(cfg.num_layers):
            states.append(self.output_norms[i](x) if cfg.pre_layer_norm else x)
            x = self.layers[0 if cfg.share_layer else i](x, mask)
        states.append(self.output_norms[-1](x) if cfg.pre_layer_norm else x)
        return states


def chunk_sizes(num_frames: int, seq_len: int) -> list[int]:
    """The original's ``torch.chunk(x, ceil(T / seq_len))`` sizes for one utterance (no chunking at <= seq_len)."""
    if num_frames == 0:
        return []
    if seq_len <= 0 or num_frames <= seq_len:
        return [num_frames]
    size = math.ceil(num_frames / math.ceil(num_frames / seq_len))
    return [min(size, num_frames - start) for start in range(0, num_frames, size)]


def spec_augment_(x: torch.Tensor, mask_T: int, mask_F: int, num_T: int = 2, num_F: int = 2) -> None:
    """In place, training only: ``num_T`` random time masks (width <= mask_T, skipped when mask_T is not
    shorter than the sequence) and ``num_F`` frequency masks (width <= mask_F) on a (T, D) tensor."""
    T, D = x.shape
    if 0 < mask_T < T:
        for _ in range(num_T):
            width = int(torch.randint(0, mask_T + 1, ()))
            start = int(torch.randint(0, T - width, ()))
            x[start:start + width] = 0
    for _ in range(num_F if mask_F > 0 else 0):
        width = int(torch.randint(0, min(mask_F, D) + 1, ()))
        start = int(torch.randint(0, D - width + 1, ()))
        x[:, start:start + width] = 0


class MockingjayUpstream(nn.Module):
    """Waveforms -> L + 1 hidden states of a Mockingjay / TERA / Audio ALBERT / SpecAugment Transformer."""

    def __init__(self, cfg: TransformerConfig, front_end: FrontEnd, options: dict | None = None):
        super().__init__()
        self.cfg, self.front_end = cfg, front_end
        self.options = {**OPTION_DEFAULTS, **(options or {})}
        self.encoder = Encoder(cfg)

    @property
    def num_layers(self) -> int:
        return self.cfg.num_layers + 1

    @property
    def hidden_sizes(self) -> list[int]:
        return [self.cfg.hidden_size] * self.num_layers

    @property
    def downsample_rates(self) -> list[int]:
        return [self.front_end.stride] * self.num_layers

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        """wavs (B, T) zero-padded, wavs_len (B,) -> (L + 1 states (B, T', H), L + 1 frame counts (B,))."""
        grad = contextlib.nullcontext() if not self.options["no_grad"] else torch.no_grad()
        with grad:
            return self._forward(wavs, wavs_len)

    def _forward(self, wavs, wavs_len):
        dtype = self.encoder.spec_transform.weight.dtype
        work = wavs if wavs.dtype in (torch.float32, torch.float64) else wavs.float()
        feats = [self.front_end(work[b, :n]).to(dtype) for b, n in enumerate(wavs_len.tolist())]  # (T_b, D)
        frames = torch.tensor([f.size(0) for f in feats], dtype=torch.long, device=wavs.device)
        seq_len = 1 if self.options["permute_input"] else self.cfg.sequence_length  # permute: each frame alone
        pieces = [f.split(chunk_sizes(f.size(0), seq_len)) if f.size(0) else () for f in feats]
        chunks = [c for p in pieces for c in p]  # every utterance's chunks, in order
        if not chunks:
            empty = wavs.new_zeros(wavs.size(0), 0, self.cfg.hidden_size, dtype=dtype)
            return [empty] * self.num_layers, [frames] * self.num_layers
        sizes = [c.size(0) for c in chunks]
        batch = pad_sequence(chunks, batch_first=True)  # (N, C, D)
        mask = chunk_mask(batch, torch.tensor(sizes, device=wavs.device))  # (N, 1, 1, C), before augmentation
        if self.training and self.options["spec_aug"] and self.options["spec_aug_prev"]:
            for n, c in enumerate(sizes):
                spec_augment_(batch[n, :c], mask_T=70, mask_F=9)
        states = self.encoder(batch, mask)  # L + 1 x (N, C, H)
        outputs = [unchunk(s, [len(p) for p in pieces], sizes) for s in states]  # L + 1 x (B, T', H)
        if self.training and self.options["spec_aug"] and not self.options["spec_aug_prev"]:
            for b, n in enumerate(frames.tolist()):
                spec_augment_(outputs[-1][b, :n], mask_T=70, mask_F=86)
        return outputs, [frames] * self.num_layers


def unchunk(states: torch.Tensor, counts: list[int], sizes: list[int]) -> torch.Tensor:
    """(N, C, H) chunk states -> (B, T', H): each utterance's ``counts[b]`` chunks concatenated, then padded."""
    out, row = [], 0
    for count in counts:
        parts = [states[i, : sizes[i]] for i in range(row, row + count)]
        out.append(torch.cat(parts) if parts else states.new_zeros(0, states.size(-1)))
        row += count
    return pad_sequence(out, batch_first=True)


# ---------------------------------------------------------------------------------------------- checkpoints
KEY_MAP = (  # (checkpoint pattern, our name, alias): alias keys exist only in pre-LN checkpoints
    (r"input_representations\.spec_transform\.(weight|bias)", r"spec_transform.\1", False),
    (r"input_representations\.LayerNorm\.(weight|bias)", r"input_norm.\1", False),
    (r"encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.(weight|bias)", r"layers.\1.\2.\3", False),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)", r"layers.\1.attn_out.\2", False),
    (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(weight|bias)", r"layers.\1.attn_norm.\2", False),
    (r"encoder\.layer\.(\d+)\.attention\.LayerNorm\.(weight|bias)", r"layers.\1.attn_norm.\2", True),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)", r"layers.\1.ffn_in.\2", False),
    (r"encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)", r"layers.\1.ffn_out.\2", False),
    (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.(weight|bias)", r"layers.\1.ffn_norm.\2", False),
    (r"encoder\.layer\.(\d+)\.LayerNorm\.(weight|bias)", r"layers.\1.ffn_norm.\2", True),
    (r"encoder\.LayerNorm\.(\d+)\.(weight|bias)", r"output_norms.\1.\2", True),
)


def rename_legacy(state: dict) -> dict:
    """TensorFlow-style ``gamma`` / ``beta`` names -> ``weight`` / ``bias`` (renamed keys win, as the original)."""
    plain = {k: v for k, v in state.items() if "gamma" not in k and "beta" not in k}
    for key, value in state.items():
        if "beta" in key:
            plain[key.replace("beta", "bias")] = value
        elif "gamma" in key:
            plain[key.replace("gamma", "weight")] = value
    return plain


def map_state(state: dict, cfg: TransformerConfig, source: str) -> dict:
    """Checkpoint ``Transformer`` dict -> our state dict. Where two keys hold one tensor (pre-LN aliases,
    ALBERT's shared layer) the one the original loads last wins: the alias, then the highest layer."""
    mapped, rank = {}, {}
    for key, value in rename_legacy(state).items():
        for pattern, target, alias in KEY_MAP:
            match = re.fullmatch(pattern, key)
            if match and (cfg.pre_layer_norm or not alias):
                break
        else:
            raise CheckpointFormatError(f"{source}: unexpected key {key!r} in 'Transformer' for this configuration")
        name, layer = match.expand(target), int(match.group(1)) if target.startswith("layers") else 0
        if target.startswith("layers"):
            if layer >= cfg.num_layers:
                raise CheckpointFormatError(f"{source}: {key!r} but num_hidden_layers is {cfg.num_layers}")
            name = re.sub(r"^layers\.\d+", f"layers.{0 if cfg.share_layer else layer}", name)
        if name not in rank or (layer, alias) > rank[name]:
            mapped[name], rank[name] = value, (layer, alias)
    return mapped


def load_state(encoder: Encoder, state: dict, source: str) -> None:
    """Strict load of a ``map_state`` dict; names what is missing, left over or of the wrong shape."""
    own = encoder.state_dict()
    missing, extra = [k for k in own if k not in state], [k for k in state if k not in own]
    if missing or extra:
        raise CheckpointFormatError(f"{source}: 'Transformer' does not fit its config: missing {missing[:8]}, "
                                    f"left over {extra[:8]}")
    for key, value in state.items():
        if own[key].shape != value.shape:
            raise CheckpointFormatError(f"{source}: {key} is {tuple(value.shape)} in the checkpoint, "
                                        f"{tuple(own[key].shape)} in its config")
    encoder.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)


def upstream_config(obj: dict, source: str) -> dict:
    """The ``{transformer, task, audio}`` config: ``Config`` in early files, ``Upstream_Config`` since."""
    for key in ("Config", "Upstream_Config"):
        conf = obj.get(key)
        if isinstance(conf, dict) and "transformer" in conf:
            return conf
    raise CheckpointFormatError(f"{source}: neither 'Config' nor 'Upstream_Config' holds a 'transformer' section")


TRANSFORMER_DEFAULTS = {"hidden_act": "gelu", "layer_norm_eps": 1e-12, "share_layer": False, "pre_layer_norm": False,
                        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02}


def config_from_checkpoint(conf: dict, input_dim: int, source: str) -> TransformerConfig:
    """The ``transformer`` and ``task`` sections -> TransformerConfig; every value is type- and range-checked
    before anything is built (``CheckpointConfigError`` names the key and the file)."""
    t, task = conf["transformer"], conf.get("task") or {}
    if not isinstance(t, dict) or not isinstance(task, dict):
        raise CheckpointFormatError(f"{source}: the upstream config's 'transformer' and 'task' must be mappings")
    get = config_io.Settings(t, TRANSFORMER_DEFAULTS, source)
    try:
        hidden, heads = get.int("hidden_size"), get.int("num_attention_heads", 1, 1024)
        cfg = TransformerConfig(
            input_dim=input_dim, hidden_size=hidden, num_layers=get.int("num_hidden_layers", 1, config_io.MAX_LAYERS),
            num_heads=heads, intermediate_size=get.int("intermediate_size"),
            activation=get.str("hidden_act"), layer_norm_eps=get.float("layer_norm_eps", 0.0, 1.0),
            share_layer=get.bool("share_layer"), pre_layer_norm=get.bool("pre_layer_norm"),
            hidden_dropout=get.float("hidden_dropout_prob"),
            attention_dropout=get.float("attention_probs_dropout_prob"),
            initializer_range=get.float("initializer_range", 0.0, 1e3),
            sequence_length=config_io.as_int(task["sequence_length"], "sequence_length", source, -2**31, 2**31))
    except KeyError as error:
        raise CheckpointFormatError(f"{source}: the upstream config lacks {error.args[0]!r}") from None
    if hidden % heads:
        raise CheckpointConfigError(source, "num_attention_heads", heads, f"a divisor of hidden_size={hidden}")
    if cfg.activation not in ACTIVATIONS:
        raise CheckpointFormatError(f"{source}: hidden_act {cfg.activation!r} is not one of {sorted(ACTIVATIONS)}")
    if cfg.sequence_length < 0:
        raise CheckpointFormatError(f"{source}: task.sequence_length must be >= 0, got {cfg.sequence_length}")
    return cfg


def _flag(name: str, value) -> bool:
    """The original's ``strtobool`` on the yaml strings ('True', 'False', 'yes', '0', ...); booleans pass."""
    text = str(value).strip().lower()
    if text not in FLAGS:
        raise ValueError(f"options_config: {name} must be 'True' or 'False', got {value!r}")
    return FLAGS[text]


def parse_options(options_config) -> dict:
    """The ``options_config`` yaml (path or dict) -> validated options; the original's defaults fill gaps."""
    if options_config is None:
        return dict(OPTION_DEFAULTS)
    raw = options_config
    if not isinstance(raw, dict):
        if not os.path.isfile(os.fspath(raw)):
            raise FileNotFoundError(f"options_config file not found: {raw}")
        with open(raw) as f:
            raw = yaml.safe_load(f) or {}
    unknown = sorted(set(raw) - set(OPTION_DEFAULTS) - set(IGNORED_OPTIONS))
    if unknown:
        raise ValueError(f"options_config: unknown key(s) {unknown}; allowed: {sorted(OPTION_DEFAULTS)} "
                         f"(and {list(IGNORED_OPTIONS)}, which the original ignores)")
    opts = {k: raw.get(k, v) if k == "dropout" else _flag(k, raw.get(k, v)) for k, v in OPTION_DEFAULTS.items()}
    opts["dropout"] = "default" if str(opts["dropout"]) == "default" else float(opts["dropout"])
    if not opts["no_grad"] and not opts["spec_aug_prev"]:
        raise ValueError("options_config: no_grad and spec_aug_prev cannot both be False (as in the original)")
    if not opts["output_hidden_states"]:
        raise ValueError("options_config: output_hidden_states must be True: the upstream returns every hidden "
                         "state (the original expert fails with False); select a layer downstream instead")
    return opts


def build(ckpt: str | None, options_config=None, **options) -> MockingjayUpstream:
    """Build a Mockingjay / TERA / Audio ALBERT / SpecAugment upstream from an s3prl pre-training ``.ckpt``.

    ``options_config``: the original's options yaml (path or dict): ``load_pretrain``, ``no_grad``,
    ``dropout``, ``spec_aug``, ``spec_aug_prev``, ``output_hidden_states``, ``permute_input``.
    """
    if options:
        raise TypeError(f"unknown option(s) for a Mockingjay-family upstream: {', '.join(sorted(options))}; "
                        "accepted: options_config")
    if ckpt is None:
        raise ValueError("a Mockingjay-family upstream needs a checkpoint: pass path_or_url / ckpt")
    opts = parse_options(options_config)
    obj = ckpt_io.load_checkpoint(ckpt)
    if not isinstance(obj, dict) or not isinstance(obj.get("Transformer"), dict):
        raise CheckpointFormatError(f"{ckpt} is {describe_format(obj)}, not a Mockingjay/TERA/Audio ALBERT "
                                    "checkpoint (needs 'Transformer' and 'Config' or 'Upstream_Config')")
    conf = upstream_config(obj, ckpt)
    front_end = FrontEnd(conf.get("audio"), ckpt)
    cfg = config_from_checkpoint(conf, front_end.dim, ckpt)
    h, layers = cfg.hidden_size, 1 if cfg.share_layer else cfg.num_layers
    config_io.check_model_size(layers * (4 * h * h + 2 * h * cfg.intermediate_size), obj["Transformer"], ckpt)
    if opts["dropout"] != "default":
        cfg.hidden_dropout = cfg.attention_dropout = opts["dropout"]
    model = MockingjayUpstream(cfg, front_end, opts)
    state = map_state(obj["Transformer"], cfg, ckpt)
    if opts["load_pretrain"]:
        load_state(model.encoder, state, ckpt)
    else:  # the original builds the model but keeps its random initialisation
        model.encoder.reset_parameters()
    return model.eval()
