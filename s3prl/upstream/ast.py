"""AST and SSAST: spectrogram transformers over sliding windows (families ``ast`` and ``ssast``).

Both cut each utterance into windows (``windows.py``: starts ``range(0, n, stride)``, zero padding, trim to
ceil(n / rate) frames), compute a 128-bin Kaldi fbank per window (Hann window, HTK mel, no dither) normalised
with AST's AudioSet constants, ``(fbank + 4.2677393) / (4.5689974 * 2)``, zero-padded or cut to the window's
frame count, and run a DeiT-style transformer over its patches (``vit.py``).

* ``ast`` (AudioSet-finetuned AST, the original ``audioset_10_10_0.4593.pth``: a ``DataParallel`` state dict
  ``module.v.*`` + ``module.mlp_head.*``): 16x16 patches, stride 10x10. ``feature_selection='cls'`` gives one
  state per window: the AudioSet logits of the mean of the class and distillation tokens (527-d, rate
  ``stride_secs`` * 16000). ``'hidden_states'`` gives the output of every block, one frame per time patch, the
  12 frequency patches concatenated (12 * 768-d, rate 1600).
  The original's ``cls`` output is NOT reproducible: its loader puts the checkpoint's trained ``mlp_head`` into
  an inner model it then throws away, and classifies with a freshly, randomly initialised head. Ours uses the
  checkpoint's trained head (the AudioSet classifier the file name advertises).
* ``ssast`` (SSAST pretraining checkpoints ``SSAST-Base-{Frame,Patch}-400.pth``, ``module.v.*`` +
  ``module.p_input_{f,t}dim`` + pretraining heads): frame models (``*_f``: 128x2 patches, time stride 1,
  768-d frames at rate 160) and patch models (``*_p``: 16x16 patches, stride 10x10, 12 * 768-d at rate 1600);
  windows of ``window_secs`` with no overlap; the output of every block.

Positional embeddings are adapted to the window's patch grid when the checkpoint is loaded, with each
original's rule (``vit.ast_pos_grid``, ``vit.ssast_pos_grid``). ``import_huggingface`` / ``to_huggingface``
read and write HuggingFace ``ASTForAudioClassification`` weights (a folder can be given to ``ast``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from .. import checkpoint as ckpt_io
from ..audio import kaldi
from ..convert import config as config_io
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointConfigError, CheckpointFormatError
from .vit import PatchEmbed, Transformer, ViTConfig, ast_pos_grid, check_vit_state, grid_to_tokens
from .vit import rename_state, ssast_pos_grid, tokens_to_grid
from .windows import run_windowed

SAMPLE_RATE = 16000
FBANK_SHIFT = 160  # samples per fbank frame
FBANK_MEAN, FBANK_STD = -4.2677393, 4.5689974  # AST's AudioSet statistics
SELECTIONS = ("cls", "hidden_states")
MAX_WINDOWS_PER_CALL = 16  # a 10.24 s window is 1214 tokens: bound the memory of long batches


@dataclass
class ASTConfig:
    """A spectrogram transformer over fixed windows (shapes and window geometry only)."""

    vit: ViTConfig = field(default_factory=ViTConfig)
    kernel: tuple[int, int] = (16, 16)  # patch (frequency, time)
    stride: tuple[int, int] = (10, 10)
    num_mel_bins: int = 128
    target_length: int = 1024  # fbank frames per window (padded with zeros or cut)
    window: int = 163840  # samples per window
    hop: int = 163840  # samples between window starts
    feature_selection: str = "hidden_states"  # or "cls"
    num_classes: int = 0  # outputs of the classification head (0: no head)
    head_norm_eps: float = 1e-5

    @property
    def grid(self) -> tuple[int, int]:
        return PatchEmbed.grid((self.num_mel_bins, self.target_length), self.kernel, self.stride)


class SpectrogramTransformer(nn.Module):
    def __init__(self, cfg: ASTConfig):
        super().__init__()
        self.cfg = cfg
        dim = cfg.vit.embed_dim
        f, t = cfg.grid
        self.patch_embed = PatchEmbed(dim, cfg.kernel, cfg.stride)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 2 + f * t, dim))  # already adapted to this window
        self.transformer = Transformer(cfg.vit)
        if cfg.num_classes:
            self.head_norm = nn.LayerNorm(dim, eps=cfg.head_norm_eps)
            self.head = nn.Linear(dim, cfg.num_classes)

    @property
    def num_layers(self) -> int:
        return 1 if self.cfg.feature_selection == "cls" else self.cfg.vit.depth

    @property
    def hidden_sizes(self) -> list[int]:
        if self.cfg.feature_selection == "cls":
            return [self.cfg.num_classes]
        return [self.cfg.grid[0] * self.cfg.vit.embed_dim] * self.num_layers

    @property
    def downsample_rates(self) -> list[int]:
        if self.cfg.feature_selection == "cls":
            return [self.cfg.hop]
        return [FBANK_SHIFT * self.cfg.stride[1]] * self.num_layers

    def fbank(self, windows: torch.Tensor) -> torch.Tensor:
        """(N, window) -> (N, target_length, mel bins): normalised, zero-padded or cut per window."""
        feats = []
        for wav in windows:
            y = kaldi.fbank(wav[None], htk_compat=True, sample_frequency=SAMPLE_RATE, use_energy=False,
                            window_type="hanning", num_mel_bins=self.cfg.num_mel_bins, dither=0.0, frame_shift=10)
            y = (y + 4.2677393) / (4.5689974 * 2)  # the original's expression, same rounding
            y = torch.nn.functional.pad(y, (0, 0, 0, max(0, self.cfg.target_length - y.size(0))))
            feats.append(y[: self.cfg.target_length])
        return torch.stack(feats)

    def encode(self, spec: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(N, T, F) fbank -> (token states of every block, final LayerNorm), each (N, 2 + f * t, D)."""
        x = self.patch_embed(spec.transpose(1, 2)).flatten(2).transpose(1, 2)  # (N, f * t, D), frequency-major
        N = x.size(0)
        x = torch.cat([self.cls_token.expand(N, -1, -1), self.dist_token.expand(N, -1, -1), x], dim=1)
        return self.transformer(x + self.pos_embed)

    def window_states(self, windows: torch.Tensor) -> list[torch.Tensor]:
        """(N, window) samples -> the selected states per window, each (N, frames per window, D_l)."""
        states, final = self.encode(self.fbank(windows))
        if self.cfg.feature_selection == "cls":
            pooled = (final[:, 0] + final[:, 1]) / 2
            return [self.head(self.head_norm(pooled))[:, None]]  # (N, 1, classes)
        f, t = self.cfg.grid
        # patch tokens are frequency-major: (N, f, t, D) -> one frame per time patch, frequency patches concatenated
        return [h[:, 2:].reshape(h.size(0), f, t, -1).transpose(1, 2).flatten(2) for h in states]

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        return run_windowed(wavs, wavs_len.cpu(), self.cfg.window, self.cfg.hop, self.window_states,
                            self.downsample_rates, max_batch=MAX_WINDOWS_PER_CALL)


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------

VIT_KEYS = [  # timm names (after the "module.v." prefix) -> ours
    (r"cls_token", "cls_token"),
    (r"dist_token", "dist_token"),
    (r"pos_embed", "pos_embed"),
    (r"patch_embed\.proj\.(weight|bias)", r"patch_embed.proj.\1"),
    (r"blocks\.(\d+)\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)",
     r"transformer.blocks.\1.\2.\3"),
    (r"norm\.(weight|bias)", r"transformer.norm.\1"),
]
AST_KEYS = [(r"v\." + p, r) for p, r in VIT_KEYS] + [
    (r"mlp_head\.0\.(weight|bias)", r"head_norm.\1"),
    (r"mlp_head\.1\.(weight|bias)", r"head.\1"),
]
AST_DROP = [r"v\.head\..+", r"v\.head_dist\..+"]  # timm's ImageNet heads: the AST forward never uses them
SSAST_KEYS = [(r"v\." + p, r) for p, r in VIT_KEYS]
SSAST_DROP = AST_DROP + [r"(cpredlayer|gpredlayer)\..+", r"mask_embed", r"p_input_fdim", r"p_input_tdim"]


def window_geometry(window_secs: float, stride_secs: float) -> tuple[int, int, int, int]:
    """(window samples, hop samples, fbank frames per window, model input frames), the originals' arithmetic."""
    if not window_secs > 0 or not stride_secs > 0:
        raise ValueError(f"window_secs and stride_secs must be positive, got {window_secs} and {stride_secs}")
    window, hop = int(window_secs * SAMPLE_RATE), int(stride_secs * SAMPLE_RATE)
    target = int(window_secs * SAMPLE_RATE / FBANK_SHIFT)
    return window, hop, target, int(window_secs * 100)


def _state_dict(obj, source: str, what: str) -> dict:
    """The tensors of a (DataParallel) state dict, without the ``module.`` prefix."""
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointFormatError(f"{source} is {fairseq_convert.describe_format(obj)}, not {what}")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def _check_window(cfg: ASTConfig, window_secs: float) -> None:
    if cfg.target_length < cfg.kernel[1]:
        raise ValueError(f"window_secs={window_secs} gives {cfg.target_length} fbank frames, fewer than the "
                         f"{cfg.kernel[1]}-frame patch: use a longer window")


def _finish(model: SpectrogramTransformer, state: dict, old_grid: tuple[int, int], rule, source: str):
    pos = state["pos_embed"]
    f_old, t_old = old_grid
    if pos.size(1) != 2 + f_old * t_old:
        raise CheckpointFormatError(f"{source}: pos_embed has {pos.size(1)} tokens, expected 2 + {f_old} x {t_old}")
    grid = rule(tokens_to_grid(pos[:, 2:].float(), f_old, t_old), *model.cfg.grid)
    state["pos_embed"] = torch.cat([pos[:, :2].float(), grid_to_tokens(grid)], dim=1)
    fairseq_convert.load_state(model, state, source, mapped=True)
    return model.eval()


def import_ast(obj, source: str, window_secs: float, stride_secs: float, feature_selection: str):
    """An original AST checkpoint (AudioSet-finetuned ``ASTModel`` state dict) -> SpectrogramTransformer."""
    state = _state_dict(obj, source, "an AST checkpoint (module.v.* / module.mlp_head.*)")
    if "v.cls_token" not in state or "mlp_head.1.weight" not in state:
        raise CheckpointFormatError(f"{source}: no v.cls_token / mlp_head: not an AudioSet-finetuned AST state dict"
                                    + (" (it looks like an SSAST pretraining checkpoint: use ssast_*)"
                                       if "p_input_tdim" in state else ""))
    if "v.dist_token" not in state:
        raise CheckpointFormatError(f"{source}: no v.dist_token; AST models carry class and distillation tokens")
    window, hop, target, tdim = window_geometry(window_secs, stride_secs)
    cfg = ASTConfig(vit=check_vit_state(state, "v.", source), target_length=target, window=window, hop=hop,
                    feature_selection=feature_selection, num_classes=state["mlp_head.1.weight"].shape[0])
    _check_window(cfg, window_secs)
    if cfg.grid != PatchEmbed.grid((128, tdim), cfg.kernel, cfg.stride):
        raise ValueError(f"window_secs={window_secs}: fbank frames ({target}) and model frames ({tdim}) disagree")
    f_old = cfg.grid[0]  # the AudioSet model's frequency grid (12 rows), as the original assumes
    n_old = state["v.pos_embed"].size(1) - 2
    if n_old % f_old:
        raise CheckpointFormatError(f"{source}: {n_old} patch position embeddings do not form {f_old} rows")
    model = SpectrogramTransformer(cfg)
    return _finish(model, rename_state(state, AST_KEYS, AST_DROP, source), (f_old, n_old // f_old),
                   ast_pos_grid, source)


def import_ssast(obj, source: str, model_size: str, window_secs: float):
    """An original SSAST pretraining checkpoint -> SpectrogramTransformer for ``model_size`` ``<size>_<f|p>``."""
    state = _state_dict(obj, source, "an SSAST checkpoint (module.v.* / module.p_input_tdim)")
    if "p_input_fdim" not in state or "p_input_tdim" not in state or "v.patch_embed.proj.weight" not in state:
        raise CheckpointFormatError(f"{source}: no module.p_input_fdim / p_input_tdim: not an SSAST pretraining "
                                    "checkpoint" + (" (it looks like an AST model: use ast)"
                                                    if "mlp_head.1.weight" in state else ""))
    size, _, kind = str(model_size).partition("_")
    if kind not in ("f", "p") or not size:
        raise ValueError(f"model_size must be '<size>_f' (frame) or '<size>_p' (patch), got {model_size!r}")
    kernel, stride = ((128, 2), (128, 1)) if kind == "f" else ((16, 16), (10, 10))
    p_kernel = tuple(state["v.patch_embed.proj.weight"].shape[2:])
    if p_kernel != kernel:
        raise CheckpointFormatError(f"{source}: pretrained with {p_kernel} patches, model_size {model_size!r} "
                                    f"expects {kernel} ({'frame' if kind == 'f' else 'patch'} model)")
    if "v.dist_token" not in state:
        raise CheckpointFormatError(f"{source}: no v.dist_token (base_nokd models are not supported by s3prl)")
    p_size = (int(state["p_input_fdim"]), int(state["p_input_tdim"]))
    window, hop, target, _ = window_geometry(window_secs, window_secs)
    cfg = ASTConfig(vit=check_vit_state(state, "v.", source), kernel=kernel, stride=stride, target_length=target,
                    window=window, hop=hop, feature_selection="hidden_states")
    _check_window(cfg, window_secs)
    model = SpectrogramTransformer(cfg)
    old_grid = PatchEmbed.grid(p_size, p_kernel, p_kernel)  # no overlap during pretraining
    return _finish(model, rename_state(state, SSAST_KEYS, SSAST_DROP, source), old_grid, ssast_pos_grid, source)


# ---------------------------------------------------------------------------------------------
# HuggingFace ASTModel / ASTForAudioClassification
# ---------------------------------------------------------------------------------------------

_HF_LAYER = r"(?:layers|encoder\.layer)\.(\d+)\."
HF_KEYS = [
    (r"embeddings\.cls_token", "cls_token"),
    (r"embeddings\.distillation_token", "dist_token"),
    (r"embeddings\.position_embeddings", "pos_embed"),
    (r"embeddings\.patch_embeddings\.projection\.(weight|bias)", r"patch_embed.proj.\1"),
    (_HF_LAYER + r"layernorm_before\.(weight|bias)", r"transformer.blocks.\1.norm1.\2"),
    (_HF_LAYER + r"layernorm_after\.(weight|bias)", r"transformer.blocks.\1.norm2.\2"),
    (_HF_LAYER + r"(?:attention\.o_proj|attention\.output\.dense)\.(weight|bias)",
     r"transformer.blocks.\1.attn.proj.\2"),
    (_HF_LAYER + r"(?:mlp\.fc1|intermediate\.dense)\.(weight|bias)", r"transformer.blocks.\1.mlp.fc1.\2"),
    (_HF_LAYER + r"(?:mlp\.fc2|output\.dense)\.(weight|bias)", r"transformer.blocks.\1.mlp.fc2.\2"),
    (r"layernorm\.(weight|bias)", r"transformer.norm.\1"),
    (r"classifier\.layernorm\.(weight|bias)", r"head_norm.\1"),
    (r"classifier\.dense\.(weight|bias)", r"head.\1"),
]
_HF_QKV = re.compile(_HF_LAYER + r"attention\.(?:(q|k|v)_proj|attention\.(query|key|value))\.(weight|bias)")


HF_AST_DEFAULTS = {"layer_norm_eps": 1e-12, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                   "intermediate_size": 3072, "qkv_bias": True, "patch_size": 16, "frequency_stride": 10,
                   "time_stride": 10, "num_mel_bins": 128, "max_length": 1024}


def import_huggingface(folder: str, window_secs: float, stride_secs: float, feature_selection: str):
    """A HuggingFace AST folder (config.json + weights; current or legacy key names) -> SpectrogramTransformer."""
    from ..convert.huggingface import read_weights

    config_path = os.path.join(folder, "config.json")
    try:
        with open(config_path, encoding="utf-8") as f:
            hf = json.load(f)
    except (OSError, ValueError, RecursionError) as e:
        raise CheckpointFormatError(f"{folder}: no readable config.json ({e})") from None
    if not isinstance(hf, dict):
        raise CheckpointFormatError(f"{config_path}: expected a JSON object ({{...}}), found a JSON "
                                    f"{type(hf).__name__}")
    if hf.get("model_type") != "audio-spectrogram-transformer":
        raise CheckpointFormatError(f"{folder}: model_type {hf.get('model_type')!r} is not an AST model")
    if hf.get("hidden_act", "gelu") != "gelu":
        raise CheckpointFormatError(f"{folder}: hidden_act {hf['hidden_act']!r} is not supported (gelu only)")
    raw = {k[len("audio_spectrogram_transformer."):] if k.startswith("audio_spectrogram_transformer.") else k: v
           for k, v in read_weights(folder).items()}
    state, qkv = {}, {}
    for key, value in raw.items():
        m = _HF_QKV.fullmatch(key)
        if m:
            layer, which, kind = m.group(1), (m.group(2) or m.group(3))[0], m.group(4)
            qkv.setdefault((layer, kind), {})[which] = value
        else:
            state[key] = value
    state = rename_state(state, HF_KEYS, [], folder)
    for (layer, kind), parts in qkv.items():
        state[f"transformer.blocks.{layer}.attn.qkv.{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    get = config_io.Settings(hf, HF_AST_DEFAULTS, config_path)
    eps, dim = get.float("layer_norm_eps", 0.0, 1.0), get.int("hidden_size")
    heads = get.int("num_attention_heads", 1, 1024)
    if dim % heads:
        raise CheckpointConfigError(config_path, "num_attention_heads", heads, f"a divisor of hidden_size={dim}")
    vit = ViTConfig(embed_dim=dim, depth=get.int("num_hidden_layers", 1, config_io.MAX_LAYERS), num_heads=heads,
                    mlp_dim=get.int("intermediate_size"), layer_norm_eps=eps, qkv_bias=get.bool("qkv_bias"))
    patch = get.int("patch_size", 1, 1024)
    strides = (get.int("frequency_stride", 1, 1024), get.int("time_stride", 1, 1024))
    bins, max_length = get.int("num_mel_bins", 1, 4096), get.int("max_length", 1, 2**17)
    config_io.check_model_size(vit.depth * (4 * dim * dim + 2 * dim * vit.mlp_dim), state, folder)
    window, hop, target, _ = window_geometry(window_secs, stride_secs)
    cfg = ASTConfig(vit=vit, kernel=(patch, patch), stride=strides, num_mel_bins=bins, target_length=target,
                    window=window, hop=hop, feature_selection=feature_selection,
                    num_classes=state["head.weight"].shape[0] if "head.weight" in state else 0, head_norm_eps=eps)
    if feature_selection == "cls" and not cfg.num_classes:
        raise CheckpointFormatError(f"{folder}: feature_selection='cls' needs ASTForAudioClassification weights")
    _check_window(cfg, window_secs)
    old_grid = PatchEmbed.grid((bins, max_length), cfg.kernel, cfg.stride)
    return _finish(SpectrogramTransformer(cfg), state, old_grid, ast_pos_grid, folder)


def to_huggingface(model: SpectrogramTransformer) -> tuple[dict, dict]:
    """(config.json dict, state dict) of ``ASTForAudioClassification`` (``ASTModel`` without a head) holding
    ``model``'s weights for its window (HF ``max_length`` = the window's fbank frames).

    HF has one LayerNorm eps: the classifier's LayerNorm gets the blocks' (1e-6 where the original AST head
    uses 1e-5; the logits move by ~1e-7)."""
    cfg, prefix = model.cfg, "audio_spectrogram_transformer." if model.cfg.num_classes else ""
    if cfg.kernel[0] != cfg.kernel[1]:
        raise ValueError(f"HuggingFace AST needs square patches, this model has {cfg.kernel}")
    config = {"model_type": "audio-spectrogram-transformer", "hidden_size": cfg.vit.embed_dim,
              "num_hidden_layers": cfg.vit.depth, "num_attention_heads": cfg.vit.num_heads,
              "intermediate_size": cfg.vit.mlp_dim, "hidden_act": "gelu", "layer_norm_eps": cfg.vit.layer_norm_eps,
              "patch_size": cfg.kernel[0], "frequency_stride": cfg.stride[0], "time_stride": cfg.stride[1],
              "max_length": cfg.target_length, "num_mel_bins": cfg.num_mel_bins, "qkv_bias": cfg.vit.qkv_bias,
              "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    if cfg.num_classes:
        config["num_labels"] = cfg.num_classes
    ours = model.state_dict()
    out = {prefix + "embeddings.cls_token": ours["cls_token"],
           prefix + "embeddings.distillation_token": ours["dist_token"],
           prefix + "embeddings.position_embeddings": ours["pos_embed"]}
    for kind in ("weight", "bias"):
        out[f"{prefix}embeddings.patch_embeddings.projection.{kind}"] = ours[f"patch_embed.proj.{kind}"]
        out[f"{prefix}layernorm.{kind}"] = ours[f"transformer.norm.{kind}"]
        for i in range(cfg.vit.depth):
            ours_i, hf_i = f"transformer.blocks.{i}.", f"{prefix}layers.{i}."
            for name, value in zip(("q_proj", "k_proj", "v_proj"), ours[ours_i + f"attn.qkv.{kind}"].chunk(3)):
                out[hf_i + f"attention.{name}.{kind}"] = value
            for a, b in (("attn.proj", "attention.o_proj"), ("norm1", "layernorm_before"), ("norm2", "layernorm_after"),
                         ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2")):
                out[hf_i + f"{b}.{kind}"] = ours[ours_i + f"{a}.{kind}"]
        if cfg.num_classes:
            out[f"classifier.layernorm.{kind}"] = ours[f"head_norm.{kind}"]
            out[f"classifier.dense.{kind}"] = ours[f"head.{kind}"]
    return config, {k: v.detach().clone().contiguous() for k, v in out.items()}


# ---------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------


def build(ckpt: str | None, window_secs: float = 10.24, stride_secs: float = 10.24, feature_selection: str = "cls",
          **options) -> SpectrogramTransformer:
    """``ast``: the original AST ``.pth`` (or a HuggingFace AST folder)."""
    if options:
        raise TypeError(f"unknown option(s) for AST: {', '.join(sorted(options))} "
                        "(accepted: window_secs, stride_secs, feature_selection)")
    if feature_selection not in SELECTIONS:
        raise ValueError(f"feature_selection={feature_selection!r} is not supported; use 'cls' or 'hidden_states'")
    if ckpt is None:
        raise ValueError("AST needs a checkpoint: pass path_or_url")
    if os.path.isdir(ckpt):
        return import_huggingface(ckpt, window_secs, stride_secs, feature_selection)
    return import_ast(ckpt_io.load_checkpoint(ckpt), ckpt, window_secs, stride_secs, feature_selection)


def build_ssast(ckpt: str | None, model_size: str = "base_f", window_secs: float = 1.0,
                **options) -> SpectrogramTransformer:
    """``ssast_frame_base`` / ``ssast_patch_base``: an SSAST pretraining ``.pth``; windows never overlap."""
    if options:
        raise TypeError(f"unknown option(s) for SSAST: {', '.join(sorted(options))} "
                        "(accepted: window_secs, model_size)")
    if ckpt is None:
        raise ValueError("SSAST needs a checkpoint: pass path_or_url")
    return import_ssast(ckpt_io.load_checkpoint(ckpt), ckpt, model_size, window_secs)
