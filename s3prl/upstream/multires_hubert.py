"""MR-HuBERT (multi-resolution HuBERT): a U-Net of wav2vec 2.0 transformer stacks at several frame rates.

``label_rate_ratios = [u1, d1, u2, d2, ...]`` defines ``R = 1 + len / 2`` resolutions. The CNN features
(stride 320) go through encoder stacks ``encoders[i]``, each followed by a conv adapter that resamples by
``u / d`` (transposed conv up by ``u``, strided conv down by ``d``, with residual, skip and highway paths,
GroupNorm(1, C) over the whole utterance), then the ``middle_encoder`` at the coarsest rate (its output
is added to its input), then for each resolution back an up-adapter, a ``decoders[i]`` stack and the sum
with the matching encoder output. Only ``encoders[0]`` has the positional conv.

Hidden states, as the original: for every stack in execution order (encoders, middle, decoders), the
input of each of its layers and the stack's output; each is repeated (``repeat_interleave``) by the
original's factor and all are cut to the shortest. The original's factors are
``reversed([lcm(rates) // rate for rate in rates])`` for the encoder/middle stacks (and the reverse
for the decoders), which is "up to the finest rate" when the rates are powers of one ratio (every
released model) and something else otherwise; kept as is.

Each utterance runs on its own (GroupNorm over time and the adapters' lengths depend on the utterance
only), so a padded batch gives every utterance its batch-size-1 result.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint as ckpt_io
from ..convert import config as config_io
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointFormatError
from .lighthubert import utterance_norm
from .wav2vec2 import Encoder, FeatureExtractor, Wav2Vec2Config

RESIDUAL_SCALE = math.sqrt(0.4)
DROP = [r"mask_emb", r"final_projs?\..+", r"label_embs_concat(\.\d+)?", r"target_glus?\..+"]


@dataclass
class MultiresConfig:
    stack: Wav2Vec2Config  # one transformer stack (num_layers is per stack, see layers_*)
    ratios: list[tuple[int, int]]  # (up, down) per resolution step
    layers_enc: list[int]
    layers_mid: int
    layers_dec: list[int]
    adapter_kernel: int = 7
    plain_updownsample: bool = False

    @property
    def base_rate(self) -> int:
        return math.prod(s for _, _, s in self.stack.conv_layers)

    def stack_cfg(self, num_layers: int) -> Wav2Vec2Config:
        return dataclasses.replace(self.stack, num_layers=num_layers)

    def factors(self) -> list[int]:
        """Repeat factor of every hidden state, in order (the original's formula)."""
        rates = [self.base_rate]
        for up, down in self.ratios:
            rates.append(rates[-1] * down // up)
        lcm = int(np.lcm.reduce(rates))
        up_factor = [lcm // r for r in rates][::-1]
        reverse = up_factor[::-1][1:]
        out = []
        for i, n in enumerate(self.layers_enc):
            out += [up_factor[i]] * (n + 1)
        out += [up_factor[len(self.ratios)]] * (self.layers_mid + 1)
        for i, n in enumerate(self.layers_dec):
            out += [reverse[i]] * (n + 1)
        return out


class Stack(Encoder):
    """A wav2vec 2.0 transformer stack; only the first encoder stack has the positional conv."""

    def __init__(self, cfg: Wav2Vec2Config, pos_conv: bool):
        super().__init__(cfg)
        if not pos_conv:
            self.pos_conv = None


class Adapter(nn.Module):
    """Resample (B, T, C) by up / down: the original's ConvAdapter, or its plain down- / up-sampler."""

    def __init__(self, channels: int, kernel: int, up: int, down: int, kind: str):
        super().__init__()
        self.up, self.down, self.kind = up, down, kind
        if kind in ("adapter", "up"):
            self.up_conv = nn.ConvTranspose1d(channels, channels, kernel, stride=up, bias=False,
                                              output_padding=up - 1)
            self.up_norm = nn.GroupNorm(1, channels)
        if kind in ("adapter", "down"):
            self.down_conv = nn.Conv1d(channels, channels, kernel, stride=down, bias=False, padding=(kernel - 1) // 2)
            self.down_norm = nn.GroupNorm(1, channels)

    @staticmethod
    def merge(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        n = min(x.size(2), skip.size(2))
        return (x[..., :n] + skip[..., :n]) * RESIDUAL_SCALE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (1, T, C) of one utterance: the GroupNorms normalise over its whole length."""
        x = x.transpose(1, 2)  # (1, C, T)
        if self.kind != "down":
            repeated = x.repeat_interleave(self.up, dim=2)
            x = self.merge(F.gelu(self.up_norm(self.up_conv(x))), repeated)
        if self.kind != "up":
            x = self.merge(F.gelu(self.down_norm(self.down_conv(x))), x[..., :: self.down])
        if self.kind == "adapter":  # highway from the upsampled input
            x = self.merge(x, repeated[..., :: self.down])
        return x.transpose(1, 2)


class MultiresHubert(nn.Module):
    def __init__(self, cfg: MultiresConfig):
        super().__init__()
        self.cfg = cfg
        D, conv_dim = cfg.stack.embed_dim, cfg.stack.conv_layers[-1][0]
        self.feature_extractor = FeatureExtractor(cfg.stack)
        self.feature_norm = nn.LayerNorm(conv_dim)
        self.feature_proj = nn.Linear(conv_dim, D) if conv_dim != D else nn.Identity()
        self.encoders = nn.ModuleList(Stack(cfg.stack_cfg(n), i == 0) for i, n in enumerate(cfg.layers_enc))
        self.middle_encoder = Stack(cfg.stack_cfg(cfg.layers_mid), not cfg.ratios)
        self.decoders = nn.ModuleList(Stack(cfg.stack_cfg(n), False) for n in cfg.layers_dec)
        down_kind, up_kind = ("down", "up") if cfg.plain_updownsample else ("adapter", "adapter")
        self.downsample_modules = nn.ModuleList(Adapter(D, cfg.adapter_kernel, u, d, down_kind) for u, d in cfg.ratios)
        self.upsample_modules = nn.ModuleList(Adapter(D, cfg.adapter_kernel, d, u, up_kind) for u, d in cfg.ratios)
        self.factors = cfg.factors()

    @property
    def num_layers(self) -> int:
        return len(self.factors)

    @property
    def hidden_sizes(self) -> list[int]:
        return [self.cfg.stack.embed_dim] * self.num_layers

    @property
    def downsample_rates(self) -> list[int]:
        return [320] * self.num_layers  # what the original declares

    def run_stack(self, stack: Stack, x: torch.Tensor, states: list) -> torch.Tensor:
        out = stack(x, torch.tensor([x.size(1)], device=x.device))  # layer inputs + stack output
        states += out
        return out[-1]

    def utterance(self, wav: torch.Tensor) -> list[torch.Tensor]:
        """One utterance (1, N) -> its hidden states, each (1, L, D), already repeated and cut."""
        with torch.no_grad():  # the original freezes the CNN (feature_grad_mult = 0)
            feats, _ = self.feature_extractor(wav, torch.tensor([wav.size(1)], device=wav.device))
        x = self.feature_proj(self.feature_norm(feats))  # (1, T, D)
        states, skips = [], []
        for stack, adapter in zip(self.encoders, self.downsample_modules):
            x = self.run_stack(stack, x, states)
            skips.append(x)
            x = adapter(x)
        x = x + self.run_stack(self.middle_encoder, x, states)
        for stack, adapter, skip in zip(self.decoders, self.upsample_modules, reversed(skips)):
            x = self.run_stack(stack, adapter(x), states)
            n = min(x.size(1), skip.size(1))
            x = x[:, :n] + skip[:, :n]
        states = [h.repeat_interleave(f, dim=1) for h, f in zip(states, self.factors)]
        shortest = min(h.size(1) for h in states)
        return [h[:, :shortest] for h in states]

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        wavs_len = wavs_len.to(wavs.device)
        if self.cfg.stack.normalize_waveform:
            wavs = utterance_norm(wavs, wavs_len)
        per_utt = [self.utterance(wavs[b : b + 1, :n]) for b, n in enumerate(wavs_len.tolist())]
        lengths = torch.tensor([u[0].size(1) for u in per_utt], device=wavs.device)
        states = [nn.utils.rnn.pad_sequence([u[i][0] for u in per_utt], batch_first=True)
                  for i in range(self.num_layers)]
        return states, [lengths] * self.num_layers


# ---------------------------------------------------------------------------------------------
# Checkpoint import
# ---------------------------------------------------------------------------------------------


MAX_RESOLUTIONS = 16


def config_from_checkpoint(model_cfg: dict, task_cfg: dict, source: str) -> MultiresConfig:
    """The checkpoint's model/task config -> MultiresConfig; every value is type- and range-checked before
    anything is built (``CheckpointConfigError`` names the key and the file)."""
    raw = model_cfg.get("label_rate_ratios", [1, 2])
    if raw in (None, "None"):
        raise CheckpointFormatError(f"{source}: label_rate_ratios must be pairs (up, down), got {raw!r}")
    raw = config_io.parse_int_list(raw, source, "label_rate_ratios", 2 * MAX_RESOLUTIONS)
    if len(raw) % 2 or not raw:
        raise CheckpointFormatError(f"{source}: label_rate_ratios must be pairs (up, down), got {raw!r}")
    ratios = [(raw[i], raw[i + 1]) for i in range(0, len(raw), 2)]
    if model_cfg.get("layer_type", "transformer") != "transformer":
        raise CheckpointFormatError(f"{source}: MR-HuBERT with layer_type={model_cfg['layer_type']!r} is not supported")
    n = config_io.as_int(model_cfg.get("encoder_layers", 2), "encoder_layers", source, 1, config_io.MAX_LAYERS)
    override = model_cfg.get("override_encoder_layers") or ""
    if override:
        per = config_io.parse_int_list(override, source, "override_encoder_layers", 2 * MAX_RESOLUTIONS + 1, 0,
                                       config_io.MAX_LAYERS)
        if len(per) != 2 * len(ratios) + 1:
            raise CheckpointFormatError(f"{source}: override_encoder_layers {per} needs {2 * len(ratios) + 1} entries")
        enc, mid, dec = per[: len(ratios)], per[len(ratios)], per[::-1][: len(ratios)]
    else:
        enc, mid, dec = [n] * len(ratios), n, [n] * len(ratios)
    plain = config_io.as_bool(model_cfg.get("use_plain_updownsample", False), "use_plain_updownsample", source)
    if plain and any(u != 1 for u, _ in ratios):
        raise CheckpointFormatError(f"{source}: plain up/down-sampling needs ratios (1, d), got {ratios}")
    stack = fairseq_convert.config_from_fairseq(model_cfg, task_cfg.get("normalize", False), source)
    stack.feature_selection = None
    kernel = config_io.as_int(model_cfg.get("conv_adapator_kernal", 7), "conv_adapator_kernal", source)
    return MultiresConfig(stack=stack, ratios=ratios, layers_enc=enc, layers_mid=mid, layers_dec=dec,
                          adapter_kernel=kernel, plain_updownsample=plain)


def estimated_parameters(cfg: MultiresConfig) -> int:
    """A lower bound of the weights of ``MultiresHubert(cfg)``: conv extractor and every stack's layers."""
    layers = sum(cfg.layers_enc) + cfg.layers_mid + sum(cfg.layers_dec)
    return config_io.conv_parameters(cfg.stack.conv_layers) + layers * fairseq_convert.layer_parameters(cfg.stack)


ADAPTER = re.compile(r"(downsample|upsample)_modules\.(\d+)\.(upsample|downsample)_conv\.([02])\.(weight|bias)")
STACK = re.compile(r"(encoders\.\d+|middle_encoder|decoders\.\d+)\.(.+)")


def map_state(state: dict, cfg: MultiresConfig, source: str) -> dict:
    """Checkpoint keys -> ours: each stack through the wav2vec 2.0 key map, adapters renamed."""
    out, stacks, unknown = {}, {}, []
    for key, value in state.items():
        if any(re.fullmatch(p, key) for p in DROP):
            continue
        m_adapt, m_stack = ADAPTER.fullmatch(key), STACK.fullmatch(key)
        if m_adapt:
            side, i, conv, part, kind = m_adapt.groups()
            name = ("up" if conv == "upsample" else "down") + ("_conv" if part == "0" else "_norm")
            out[f"{side}_modules.{i}.{name}.{kind}"] = value
        elif m_stack:
            stacks.setdefault(m_stack.group(1), {})["encoder." + m_stack.group(2)] = value
        else:
            new = fairseq_convert._rename(key, fairseq_convert.KEY_MAP[:5])  # CNN, feature norm, projection
            if new is None:
                unknown.append(key)
            else:
                out[new] = value
    if unknown:
        raise CheckpointFormatError(f"{source}: unexpected MR-HuBERT checkpoint keys: {unknown[:10]}")
    for prefix, sub in stacks.items():
        for key, value in fairseq_convert.map_state(sub, cfg.stack).items():
            out[prefix + key[len("encoder"):]] = value
    return out


def load_any(obj, source: str) -> tuple[MultiresConfig, dict]:
    """s3prl-converted ``{task_cfg, model_cfg, model_weight, dictionaries_symbols}`` or raw fairseq."""
    if isinstance(obj, dict) and {"task_cfg", "model_cfg", "model_weight"} <= set(obj):
        model_cfg, task_cfg, state = obj["model_cfg"], obj["task_cfg"] or {}, obj["model_weight"]
    elif isinstance(obj, dict) and isinstance(obj.get("cfg"), dict) and isinstance(obj["cfg"].get("model"), dict) \
            and isinstance(obj.get("model"), dict):
        model_cfg, task_cfg, state = obj["cfg"]["model"], obj["cfg"].get("task") or {}, obj["model"]
    else:
        model_cfg = None
    if isinstance(model_cfg, dict):
        if not isinstance(state, dict):
            raise CheckpointFormatError(f"{source}: the weights are a {type(state).__name__}, expected a dict")
        if not isinstance(task_cfg, dict):
            raise CheckpointFormatError(f"{source}: task_cfg is a {type(task_cfg).__name__}, expected a mapping")
        if not any(str(k).startswith(("encoders.", "middle_encoder.")) for k in state):
            raise CheckpointFormatError(
                f"{source} is a single-resolution wav2vec 2.0 / HuBERT-style checkpoint (model "
                f"{model_cfg.get('_name')!r}), not MR-HuBERT: load it with wav2vec2_local / hubert_local")
        cfg = config_from_checkpoint(model_cfg, task_cfg, source)
        config_io.require_tensors(state, source, skip=("_ema",))
        config_io.check_model_size(estimated_parameters(cfg), state, source)
        return cfg, state
    raise CheckpointFormatError(f"{source} is {fairseq_convert.describe_format(obj)}, not an MR-HuBERT checkpoint "
                                "(s3prl-converted task_cfg/model_cfg/model_weight, or raw fairseq cfg/model)")


def build(ckpt: str | None, fairseq: bool = False, legacy: bool = False, **options) -> MultiresHubert:
    """Build MR-HuBERT from an s3prl-converted or raw fairseq checkpoint (the format is detected)."""
    if ckpt is None:
        raise ValueError("MR-HuBERT needs a checkpoint: pass path_or_url / ckpt")
    if options:
        raise TypeError(f"unknown option(s) for MR-HuBERT: {', '.join(sorted(options))} (it takes fairseq, legacy)")
    if legacy:
        raise ValueError("legacy=True loaded checkpoints through fairseq in the original; this toolkit reads fairseq "
                         "files without fairseq: pass fairseq=True instead (or nothing, the format is detected)")
    cfg, state = load_any(ckpt_io.load_checkpoint(ckpt), ckpt)
    model = MultiresHubert(cfg)
    fairseq_convert.load_state(model, map_state(dict(state), cfg, ckpt), ckpt, mapped=True)
    return model.eval()
