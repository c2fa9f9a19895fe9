"""MAE-AST: a masked-autoencoding spectrogram transformer encoder (family ``mae_ast``).

Checkpoint: the original release ``{"cfg": {"model": MAE_AST_Config, "task": ...}, "model": state_dict}``.
Front-end per utterance: a Kaldi fbank of ``feature_dim`` bins (Povey window, no dither), normalised by the
stored BatchNorm statistics and halved, cut into patches (``ast_kernel_size_{time,chan}``, strides
``ast_kernel_stride_*``; "frame" models use patches spanning every bin), projected to the encoder width,
plus sinusoidal and/or convolutional positions. The encoder is a fairseq-style transformer (the wav2vec 2.0
layers of ``wav2vec2.py``); hidden states are the output of every layer, one frame per time patch with the
frequency patches concatenated (rate ``ast_kernel_stride_time`` * 160 samples). The decoder and the
pretraining heads are never used for features.

Exactness: every utterance gets its own fbank and patches (the original pads the fbanks of a batch and lets
patches that straddle an utterance's end see the padding); a padded batch runs packed with masked attention.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint as ckpt_io
from ..audio import kaldi
from ..convert import config as config_io
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointConfigError, CheckpointFormatError
from .vit import rename_state
from .wav2vec2 import Packing, TransformerLayer, Wav2Vec2Config, WeightNormConv
from .windows import frame_count

FBANK_SHIFT = 160
MODEL_DEFAULTS = {  # MAE_AST_Config defaults of the original, for keys a checkpoint may lack
    "ast_kernel_size_chan": 16, "ast_kernel_size_time": 16, "ast_kernel_stride_chan": 16,
    "ast_kernel_stride_time": 16, "encoder_layers": 12, "encoder_embed_dim": 768, "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12, "activation_fn": "gelu", "layer_norm_first": False, "conv_pos": 128,
    "conv_pos_groups": 16, "max_token_length": 48000, "enc_sine_pos": False, "enc_conv_pos": False,
}


@dataclass
class MAEASTConfig:
    """Architecture of the encoder side (shapes and switches only)."""

    kernel: tuple[int, int] = (16, 16)  # patch (time, channel)
    stride: tuple[int, int] = (16, 16)
    feature_dim: int = 128
    sample_rate: int = 16000
    encoder: Wav2Vec2Config = None
    sine_pos: bool = False
    conv_pos: bool = False
    max_tokens: int = 48000

    @property
    def vertical_patches(self) -> int:
        return (self.feature_dim - self.kernel[1]) // self.stride[1] + 1


class MAEAST(nn.Module):
    def __init__(self, cfg: MAEASTConfig):
        super().__init__()
        self.cfg = cfg
        enc = cfg.encoder
        self.register_buffer("batch_norm_mean", torch.zeros(1))
        self.register_buffer("batch_norm_var", torch.ones(1))
        self.post_extract_proj = nn.Linear(cfg.kernel[0] * cfg.kernel[1], enc.embed_dim)
        if cfg.sine_pos:
            self.register_buffer("sine_pe", torch.zeros(1, cfg.max_tokens, enc.embed_dim))
        if cfg.conv_pos:
            self.conv_pos = WeightNormConv(enc.embed_dim, enc.conv_pos, enc.conv_pos_groups)
        self.layers = nn.ModuleList(TransformerLayer(enc) for _ in range(enc.num_layers))
        self.encoder_norm = nn.LayerNorm(enc.embed_dim, eps=enc.layer_norm_eps)

    @property
    def num_layers(self) -> int:
        return self.cfg.encoder.num_layers

    @property
    def hidden_sizes(self) -> list[int]:
        return [self.cfg.vertical_patches * self.cfg.encoder.embed_dim] * self.num_layers

    @property
    def downsample_rates(self) -> list[int]:
        return [self.cfg.stride[0] * FBANK_SHIFT] * self.num_layers

    def min_samples(self) -> int:
        return 400 + (self.cfg.kernel[0] - 1) * FBANK_SHIFT  # fbank frames for one time patch

    def patches(self, wav: torch.Tensor) -> torch.Tensor:
        """(n,) one utterance -> (L, kt * kc) normalised fbank patches, time-major."""
        cfg = self.cfg
        if wav.numel() < self.min_samples():
            raise ValueError(f"MAE-AST needs at least {self.min_samples()} samples ({cfg.kernel[0]} fbank frames) "
                             f"per utterance, got {wav.numel()}")
        feats = kaldi.fbank(wav[None], sample_frequency=cfg.sample_rate, use_energy=False,
                            num_mel_bins=cfg.feature_dim)  # (T, F)
        x = F.batch_norm(feats[None, None], self.batch_norm_mean, self.batch_norm_var, training=False) * 0.5
        return F.unfold(x, kernel_size=cfg.kernel, stride=cfg.stride)[0].transpose(0, 1)

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        cfg = self.cfg
        patches = [self.patches(wavs[b, :n]) for b, n in enumerate(wavs_len.tolist())]
        lengths = torch.tensor([p.size(0) for p in patches], device=wavs.device)
        if int(lengths.max()) > cfg.max_tokens and cfg.sine_pos:
            raise ValueError(f"an utterance gives {int(lengths.max())} patches, more than the model's sinusoidal "
                             f"table ({cfg.max_tokens}, max_token_length): cut the audio into shorter pieces")
        pack = Packing(lengths, int(lengths.max()))
        x = self.post_extract_proj(torch.nn.utils.rnn.pad_sequence(patches, batch_first=True))  # (B, L, D)
        x = x * pack.mask[:, :, None].to(x.dtype)  # padded tokens are zeros, as past an utterance's end
        if cfg.conv_pos:
            x = x + self.conv_pos(x.transpose(1, 2)).transpose(1, 2)
        if cfg.sine_pos:
            x = x + self.sine_pe[:, : x.size(1)]
        if not cfg.encoder.layer_norm_first:
            x = self.encoder_norm(x)
        x, states = pack.pack(x), []
        for layer in self.layers:
            x, _ = layer(x, pack, None)
            states.append(pack.unpack(x))
        n_vert = cfg.vertical_patches
        keep = [min(n // n_vert, frame_count(length, self.downsample_rates[0]))
                for n, length in zip(lengths.tolist(), wavs_len.tolist())]
        frames = torch.tensor(keep, device=wavs.device)
        hs = [h.reshape(h.size(0), -1, n_vert * h.size(-1))[:, : int(frames.max())] for h in states]  # (B, T, V * D)
        return hs, [frames] * len(hs)


KEYS = [
    (r"post_extract_proj\.(weight|bias)", r"post_extract_proj.\1"),
    (r"batch_norm\.running_mean", "batch_norm_mean"),
    (r"batch_norm\.running_var", "batch_norm_var"),
    (r"enc_sine_pos_embed\.pe", "sine_pe"),
    (r"enc_conv_pos_embed\.pos_conv\.0\.(weight_g|weight_v|bias)", r"conv_pos.\1"),
    (r"encoder\.layers\.(\d+)\.self_attn\.out_proj\.(weight|bias)", r"layers.\1.attention.out_proj.\2"),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"layers.\1.attention_norm.\2"),
    (r"encoder\.layers\.(\d+)\.(fc1|fc2)\.(weight|bias)", r"layers.\1.\2.\3"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"layers.\1.final_norm.\2"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder_norm.\1"),
]
DROP = [  # the decoder side and pretraining-only tensors: never part of a hidden state
    r"batch_norm\.num_batches_tracked", r"layer_norm\.(weight|bias)", r"(encoder|decoder)_mask_emb",
    r"decoder\..+", r"final_proj_(reconstruction|classification)\..+", r"post_enc_proj\..+",
    r"dec_sine_pos_embed\..+", r"dec_conv_pos_embed\..+",
]
QKV = re.compile(r"encoder\.layers\.(\d+)\.self_attn\.(q|k|v)_proj\.(weight|bias)")


def config_from_checkpoint(model_cfg: dict, task_cfg: dict, source: str) -> MAEASTConfig:
    """The checkpoint's model/task config -> MAEASTConfig; every value is type- and range-checked before
    anything is built (``CheckpointConfigError`` names the key and the file)."""
    get = config_io.Settings(model_cfg, MODEL_DEFAULTS, source)
    task = config_io.Settings(task_cfg, {"feature_type": "fbank", "feature_dim": 100, "sample_rate": 16000}, source)
    if task.raw("feature_type") == "wav":
        raise CheckpointFormatError(f"{source}: feature_type 'wav' is not an MAE-AST spectrogram model")
    embed, heads = get.int("encoder_embed_dim"), get.int("encoder_attention_heads", 1, 1024)
    if embed % heads:
        raise CheckpointConfigError(source, "encoder_attention_heads", heads, f"a divisor of encoder_embed_dim={embed}")
    enc = Wav2Vec2Config(embed_dim=embed, ffn_dim=get.int("encoder_ffn_embed_dim"),
                         num_layers=get.int("encoder_layers", 1, config_io.MAX_LAYERS), num_heads=heads,
                         activation=get.str("activation_fn", fairseq_convert.ACTIVATIONS),
                         layer_norm_first=get.bool("layer_norm_first"),
                         conv_pos=get.int("conv_pos"), conv_pos_groups=get.int("conv_pos_groups"),
                         dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, extra={"source": source})
    return MAEASTConfig(
        kernel=(get.int("ast_kernel_size_time"), get.int("ast_kernel_size_chan")),
        stride=(get.int("ast_kernel_stride_time"), get.int("ast_kernel_stride_chan")),
        feature_dim=task.int("feature_dim", 1, 4096), sample_rate=task.int("sample_rate", 1000, 192000),
        encoder=enc, sine_pos=get.bool("enc_sine_pos"), conv_pos=get.bool("enc_conv_pos"),
        max_tokens=get.int("max_token_length", 1, 2**17))


def estimated_parameters(cfg: MAEASTConfig) -> int:
    """A lower bound of the weights of ``MAEAST(cfg)``: its transformer layers."""
    return cfg.encoder.num_layers * fairseq_convert.layer_parameters(cfg.encoder)


def map_state(state: dict, cfg: MAEASTConfig, source: str) -> dict:
    qkv, rest = {}, {}
    for key, value in state.items():
        m = QKV.fullmatch(key)
        if m:
            qkv.setdefault((m.group(1), m.group(3)), {})[m.group(2)] = value
        else:
            rest[key] = value
    out = rename_state(rest, KEYS, DROP, source)
    for (layer, kind), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise CheckpointFormatError(f"{source}: layer {layer}: incomplete q/k/v {kind} ({sorted(parts)})")
        out[f"layers.{layer}.attention.qkv.{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    if cfg.sine_pos and "sine_pe" not in out:  # older files may not store the table: the original's formula
        out["sine_pe"] = sinusoid_table(cfg.max_tokens, cfg.encoder.embed_dim)
    return out


def sinusoid_table(length: int, dim: int) -> torch.Tensor:
    """(1, length, dim): sin on even, cos on odd features, the original's float32 arithmetic."""
    position = torch.arange(length).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
    pe = torch.zeros(1, length, dim)
    pe[0, :, 0::2] = torch.sin(position * div_term)
    pe[0, :, 1::2] = torch.cos(position * div_term)
    return pe


def build(ckpt: str | None, **options) -> MAEAST:
    """Build MAE-AST from the original ``{cfg: {model, task}, model}`` checkpoint."""
    if options:
        raise TypeError(f"unknown option(s) for MAE-AST: {', '.join(sorted(options))} (it takes none)")
    if ckpt is None:
        raise ValueError("MAE-AST needs a checkpoint: pass path_or_url")
    obj = ckpt_io.load_checkpoint(ckpt)
    cfg_obj = obj.get("cfg") if isinstance(obj, dict) else None
    weights = obj.get("model") if isinstance(obj, dict) else None
    if not isinstance(cfg_obj, dict) or not isinstance(cfg_obj.get("model"), dict) or not isinstance(weights, dict):
        raise CheckpointFormatError(f"{ckpt} is {fairseq_convert.describe_format(obj)}, not an MAE-AST checkpoint "
                                    "({'cfg': {'model', 'task'}, 'model'})")
    if "post_extract_proj.weight" not in obj["model"] or "batch_norm.running_mean" not in obj["model"]:
        raise CheckpointFormatError(f"{ckpt}: a {{cfg, model}} checkpoint without MAE-AST's patch projection and "
                                    "batch_norm (a WavLM / LightHuBERT file? use its own entry)")
    task_cfg = config_io.as_mapping(cfg_obj.get("task") or {}, "cfg.task", ckpt)
    cfg = config_from_checkpoint(cfg_obj["model"], task_cfg, ckpt)
    config_io.require_tensors(obj["model"], ckpt)
    config_io.check_model_size(estimated_parameters(cfg), obj["model"], ckpt)
    model = MAEAST(cfg)
    fairseq_convert.load_state(model, map_state(obj["model"], cfg, ckpt), ckpt, mapped=True)
    return model.eval()
