"""The wav2vec 2.0 pre-training model: our wav2vec 2.0 backbone + mask embedding, quantizer and projections.

``Wav2Vec2PreTraining.forward`` computes what fairseq's ``Wav2Vec2Model.forward`` computes in training
(features with ``feature_grad_mult``, feature penalty, input/feature dropouts, span + channel masks, the
transformer with layer drop, quantized targets, negatives, cosine logits / ``logit_temp`` with negatives equal to
the positive set to -inf); :mod:`s3prl.wav2vec2.criterion` turns that into fairseq's loss terms. Every random
decision (masks, negatives, Gumbel noise, layer drop) comes from one ``torch.Generator`` or is given (replay).

Padding follows fairseq: the conv extractor runs on the zero-padded batch (its GroupNorm sees the padding, and
the feature penalty averages over padded frames), so a padded batch gives fairseq's loss. ``exact_padding=True``
runs each utterance on its own samples instead (every utterance then gets what it would get alone). fairseq's
training crops every batch to its shortest utterance, where both are the same.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field, fields, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint as ckpt_io
from ..convert import config as config_io
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointConfigError, CheckpointFormatError
from ..upstream.wav2vec2 import (GradMultiply, Packing, Wav2Vec2, Wav2Vec2Config, conv_output_lengths,
                               lengths_to_mask)
from .masking import MASK_TYPES, compute_span_mask, sample_negatives
from .quantizer import GumbelVectorQuantizer, QuantizerOutput


@dataclass
class Wav2Vec2PretrainConfig:
    """The pre-training parts of fairseq's ``wav2vec2`` model config (field names and defaults are fairseq's) and
    the criterion's ``loss_weights``. Architecture of the backbone: :class:`Wav2Vec2Config`."""

    final_dim: int = 0  # 0: encoder_embed_dim
    latent_vars: int = 320
    latent_groups: int = 2
    latent_dim: int = 0  # 0: final_dim
    latent_temp: tuple[float, float, float] = (2.0, 0.5, 0.999995)
    quantizer_depth: int = 1
    quantizer_factor: int = 3
    quantize_targets: bool = False
    target_glu: bool = False
    logit_temp: float = 0.1
    num_negatives: int = 100
    cross_sample_negatives: int = 0
    feature_grad_mult: float = 1.0
    dropout_input: float = 0.0
    dropout_features: float = 0.0
    encoder_layerdrop: float = 0.0
    mask_prob: float = 0.65
    mask_length: int = 10
    mask_selection: str = "static"
    mask_other: float = 0.0
    require_same_masks: bool = True
    mask_dropout: float = 0.0
    mask_channel_prob: float = 0.0
    mask_channel_length: int = 10
    mask_channel_selection: str = "static"
    mask_channel_other: float = 0.0
    mask_channel_before: bool = False
    loss_weights: tuple[float, ...] = ()  # criterion: (diversity, feature penalty); () = no extra losses
    exact_padding: bool = False  # ours: per-utterance conv extractor (see the module docstring)
    extra: dict = field(default_factory=dict)


# fairseq switches we do not implement: the value that we do support
UNSUPPORTED = {"quantize_input": False, "negatives_from_everywhere": False, "codebook_negatives": 0,
               "no_mask_overlap": False, "no_mask_channel_overlap": False, "layer_type": "transformer",
               "relative_position_embedding": False}
PRESETS = {  # seed 004's recipes: the values that differ from fairseq's defaults (architecture: Wav2Vec2Config)
    "base": {"quantize_targets": True, "final_dim": 256, "encoder_layerdrop": 0.05, "dropout_input": 0.1,
             "dropout_features": 0.1, "feature_grad_mult": 0.1, "loss_weights": (0.1, 10.0)},  # base_librispeech
    "large": {"quantize_targets": True, "final_dim": 768, "latent_temp": (2.0, 0.1, 0.999995),
              "encoder_layerdrop": 0.0, "dropout_input": 0.0, "dropout_features": 0.0, "feature_grad_mult": 1.0,
              "loss_weights": (0.1, 0.0)},  # wav2vec2_large_librivox
}


def preset(name: str, **changes) -> Wav2Vec2PretrainConfig:
    """The pre-training settings of the seed's ``base`` or ``large`` recipe, with ``changes`` on top."""
    if name not in PRESETS:
        raise ValueError(f"unknown wav2vec 2.0 pre-training preset {name!r} (known: {', '.join(PRESETS)})")
    return replace(Wav2Vec2PretrainConfig(**PRESETS[name]), **changes)


def _temp(value, source: str) -> tuple[float, float, float]:
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise CheckpointConfigError(source, "latent_temp", value, "(start, end, decay)") from None
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise CheckpointConfigError(source, "latent_temp", value, "(start, end, decay)")
    start, end, decay = (config_io.as_float(v, "latent_temp", source, 0.0, 1e6) for v in value)
    if not 0.0 < decay <= 1.0 or end <= 0.0:
        raise CheckpointConfigError(source, "latent_temp", value, "temperatures > 0 and a decay in (0, 1]")
    return start, end, decay


def pretrain_config_from_fairseq(model_cfg: dict, criterion_cfg: dict | None, source: str) -> Wav2Vec2PretrainConfig:
    """fairseq ``cfg.model`` (+ ``cfg.criterion``) -> Wav2Vec2PretrainConfig, every value type- and range-checked."""
    defaults = {f.name: f.default for f in fields(Wav2Vec2PretrainConfig) if f.name not in ("extra", "loss_weights")}
    conf = config_io.Settings(model_cfg, defaults, source)
    for key, ok in UNSUPPORTED.items():
        if model_cfg.get(key, ok) not in (ok, None):
            raise CheckpointFormatError(f"{source}: model option {key}={model_cfg[key]!r} is not supported for "
                                        f"pre-training here (supported: {ok!r})")
    out = Wav2Vec2PretrainConfig(
        final_dim=conf.int("final_dim", 0), latent_vars=conf.int("latent_vars"),
        latent_groups=conf.int("latent_groups"), latent_dim=conf.int("latent_dim", 0),
        latent_temp=_temp(conf.raw("latent_temp"), source), quantizer_depth=conf.int("quantizer_depth", 1, 16),
        quantizer_factor=conf.int("quantizer_factor"), quantize_targets=conf.bool("quantize_targets"),
        target_glu=conf.bool("target_glu"), logit_temp=conf.float("logit_temp", 1e-6, 1e6),
        num_negatives=conf.int("num_negatives", 0), cross_sample_negatives=conf.int("cross_sample_negatives", 0),
        feature_grad_mult=conf.float("feature_grad_mult", 0.0, 1e6), dropout_input=conf.float("dropout_input"),
        dropout_features=conf.float("dropout_features"), encoder_layerdrop=conf.float("encoder_layerdrop"),
        mask_prob=conf.float("mask_prob"), mask_length=conf.int("mask_length"),
        mask_selection=conf.str("mask_selection", MASK_TYPES), mask_other=conf.float("mask_other", 0.0, 1e6),
        require_same_masks=conf.bool("require_same_masks"), mask_dropout=conf.float("mask_dropout"),
        mask_channel_prob=conf.float("mask_channel_prob"), mask_channel_length=conf.int("mask_channel_length"),
        mask_channel_selection=conf.str("mask_channel_selection", MASK_TYPES),
        mask_channel_other=conf.float("mask_channel_other", 0.0, 1e6),
        mask_channel_before=conf.bool("mask_channel_before"),
    )
    if out.num_negatives + out.cross_sample_negatives == 0:
        raise CheckpointConfigError(source, "num_negatives", 0, "num_negatives + cross_sample_negatives > 0")
    weights = (criterion_cfg or {}).get("loss_weights") or ()
    if not isinstance(weights, (list, tuple)):
        raise CheckpointConfigError(source, "criterion.loss_weights", weights, "a list of numbers")
    out.loss_weights = tuple(config_io.as_float(w, "criterion.loss_weights", source, 0.0, 1e6) for w in weights)
    return out


@dataclass
class PretrainOutput:
    logits: torch.Tensor  # (1 + K, B, M): cosine / logit_temp, row 0 the positive; -inf where a negative == positive
    features_pen: torch.Tensor  # () mean square of the conv features (padded batch, fp32)
    quantizer: QuantizerOutput | None
    mask_indices: torch.Tensor  # (B, T) bool
    mask_channel_indices: torch.Tensor | None  # (B, C) bool
    neg_idxs: torch.Tensor  # (K, B, M) into the (B*M) targets
    frame_lengths: torch.Tensor  # (B,)


def feature_lengths(model: Wav2Vec2, wavs_len: torch.Tensor) -> torch.Tensor:
    return conv_output_lengths(wavs_len, model.cfg.conv_layers)


class Wav2Vec2PreTraining(nn.Module):
    """Backbone (``self.model``, a :class:`Wav2Vec2` usable on its own afterwards) + pre-training heads whose
    parameter names are fairseq's: ``mask_emb``, ``quantizer.*``, ``project_q``, ``final_proj``, ``target_glu``."""

    def __init__(self, cfg: Wav2Vec2Config, pcfg: Wav2Vec2PretrainConfig):
        super().__init__()
        if cfg.layer_type != "transformer" or cfg.relative_position_embedding:
            raise ValueError("wav2vec 2.0 pre-training supports the transformer encoder with convolutional "
                             "positions only (layer_type=transformer, no relative position embedding)")
        self.cfg, self.pcfg = cfg, pcfg
        self.model = Wav2Vec2(cfg)
        conv_dim = cfg.conv_layers[-1][0]
        final_dim = pcfg.final_dim or cfg.embed_dim
        self.mask_emb = nn.Parameter(torch.empty(cfg.embed_dim).uniform_())
        self.quantizer = None
        if pcfg.quantize_targets:
            vq_dim = pcfg.latent_dim or final_dim
            self.quantizer = GumbelVectorQuantizer(conv_dim, pcfg.latent_vars, pcfg.latent_temp, pcfg.latent_groups,
                                                   vq_dim, weight_proj_depth=pcfg.quantizer_depth,
                                                   weight_proj_factor=pcfg.quantizer_factor)
            self.project_q = nn.Linear(vq_dim, final_dim)
        else:
            self.project_q = nn.Linear(conv_dim, final_dim)
        self.target_glu = nn.Sequential(nn.Linear(final_dim, final_dim * 2), nn.GLU()) if pcfg.target_glu else None
        self.final_proj = nn.Linear(cfg.embed_dim, final_dim)
        self.num_updates = 0

    def set_num_updates(self, num_updates: int) -> None:
        """The Gumbel temperature follows the update count (fairseq calls this before every update)."""
        self.num_updates = num_updates
        if self.quantizer is not None:
            self.quantizer.set_num_updates(num_updates)

    # --- pieces -----------------------------------------------------------------------------------------

    def features(self, wavs: torch.Tensor, wavs_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Conv features (B, T, C) with ``feature_grad_mult`` applied to their gradient, and frame lengths."""
        extractor = self.model.feature_extractor
        mult = self.pcfg.feature_grad_mult
        with torch.set_grad_enabled(torch.is_grad_enabled() and mult > 0):
            if self.pcfg.exact_padding:
                feats, lengths = extractor(wavs, wavs_len)
            else:  # fairseq: one conv over the zero-padded batch
                feats, lengths = extractor.run(wavs), feature_lengths(self.model, wavs_len)
        if mult > 0 and mult != 1.0 and feats.requires_grad:
            feats = GradMultiply.apply(feats, mult)
        return feats, lengths.clamp(max=feats.size(1))

    def encode(self, x: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The transformer (x (B, T, D), zeros past each length) -> (B, T, D), with fairseq's layer drop."""
        enc, cfg = self.model.encoder, self.cfg
        pack = Packing(lengths, x.size(1))
        x = enc.pos_conv(x, pack.mask)
        if not cfg.layer_norm_first:
            x = enc.layer_norm(x)
        x = pack.pack(F.dropout(x, cfg.dropout, self.training))  # (N, D)
        for layer in enc.layers:
            if self.training and self.pcfg.encoder_layerdrop > 0:
                if float(torch.rand((), generator=generator)) <= self.pcfg.encoder_layerdrop:
                    continue
            x, _ = layer(x, pack, None)
        if cfg.layer_norm_first:
            x = enc.layer_norm(x)
        return pack.unpack(x)

    def masks(self, B: int, T: int, C: int, lengths: torch.Tensor,
              generator) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        p = self.pcfg
        time = compute_span_mask((B, T), lengths, p.mask_prob, p.mask_length, p.mask_selection, p.mask_other,
                                 min_masks=2, require_same_masks=p.require_same_masks, mask_dropout=p.mask_dropout,
                                 generator=generator) if p.mask_prob > 0 else None
        channel = compute_span_mask((B, C), None, p.mask_channel_prob, p.mask_channel_length,
                                    p.mask_channel_selection, p.mask_channel_other,
                                    generator=generator) if p.mask_channel_prob > 0 else None
        return time, channel

    def compute_logits(self, x: torch.Tensor, y: torch.Tensor, negs: torch.Tensor) -> torch.Tensor:
        """x, y (B, M, F), negs (K, B, M, F) -> (1 + K, B, M) cosine / logit_temp; a negative equal to its
        positive (same code) gets -inf, i.e. it is left out of the softmax."""
        neg_is_pos = (y == negs).all(-1)  # (K, B, M)
        targets = torch.cat([y[None], negs], dim=0)
        logits = (torch.cosine_similarity(x.float(), targets.float(), dim=-1) / self.pcfg.logit_temp).type_as(x)
        if neg_is_pos.any():
            logits = torch.cat([logits[:1], logits[1:].masked_fill(neg_is_pos, float("-inf"))])
        return logits

    # --- forward --------------------------------------------------------------------------------------

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor, mask_indices: torch.Tensor | None = None,
                mask_channel_indices: torch.Tensor | None = None, neg_idxs: torch.Tensor | None = None,
                gumbel_noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> PretrainOutput:
        """wavs (B, L) zero-padded, wavs_len (B,). Masks (B, T) / (B, C), negatives (K, B, M) and Gumbel noise
        (B*M*G, V) are drawn from ``generator`` unless given."""
        p = self.pcfg
        wavs_len = wavs_len.to(wavs.device)
        if self.cfg.normalize_waveform:
            wavs = self.model.normalize(wavs, wavs_len)
        feats, lengths = self.features(wavs, wavs_len)  # (B, T, C)
        features_pen = feats.float().pow(2).mean()
        feats = self.model.feature_norm(feats)
        if self.cfg.crop_seq_to_multiple > 1:
            keep = feats.size(1) - feats.size(1) % self.cfg.crop_seq_to_multiple
            feats, lengths = feats[:, :keep], lengths.clamp(max=keep)
        B, T, C = feats.shape
        x = F.dropout(self.model.feature_proj(feats), p.dropout_input, self.training)  # (B, T, D)
        unmasked = F.dropout(feats, p.dropout_features, self.training)
        drawn_time, drawn_channel = self.masks(B, T, x.size(-1), lengths, generator) \
            if mask_indices is None or (p.mask_channel_prob > 0 and mask_channel_indices is None) else (None, None)
        mask_indices = drawn_time if mask_indices is None else mask_indices
        mask_channel_indices = drawn_channel if mask_channel_indices is None else mask_channel_indices
        if mask_indices is None:
            raise ValueError("mask_prob is 0: wav2vec 2.0 pre-training needs masked frames")
        mask_indices = mask_indices.to(x.device).bool()
        channel = None if p.mask_channel_prob <= 0 else mask_channel_indices.to(x.device).bool()[:, None, :]
        if channel is not None and p.mask_channel_before:
            x = x.masked_fill(channel, 0.0)
        x = torch.where(mask_indices[..., None], self.mask_emb.to(x.dtype), x)
        if channel is not None and not p.mask_channel_before:
            x = x.masked_fill(channel, 0.0)
        counts = mask_indices.sum(1)
        if bool((counts != counts[0]).any()):
            raise ValueError(f"masked frames per utterance differ ({counts.tolist()}): the contrastive targets "
                             "need the same count in every row (require_same_masks=true)")
        M = int(counts[0])
        y = unmasked[mask_indices].view(B, M, C)
        x = x.masked_fill(~lengths_to_mask(lengths, T)[..., None], 0.0)
        x = self.encode(x, lengths, generator)[mask_indices].view(B, M, -1)  # (B, M, D)

        q = None
        if self.quantizer is not None:
            q = self.quantizer(y, noise=gumbel_noise, generator=generator)
            y = q.x
        y = self.project_q(y)  # (B, M, F)
        K = p.num_negatives + p.cross_sample_negatives
        if neg_idxs is None:
            neg_idxs = sample_negatives(B, M, p.num_negatives, p.cross_sample_negatives, generator, y.device)
        elif tuple(neg_idxs.shape) != (K, B, M):
            raise ValueError(f"negative indices have shape {tuple(neg_idxs.shape)}, expected {(K, B, M)}")
        neg_idxs = neg_idxs.to(y.device)
        negs = y.reshape(B * M, -1)[neg_idxs.reshape(-1)].view(K, B, M, -1)
        if self.target_glu is not None:
            y, negs = self.target_glu(y), self.target_glu(negs)
        logits = self.compute_logits(self.final_proj(x), y, negs)
        return PretrainOutput(logits, features_pen, q, mask_indices, mask_channel_indices, neg_idxs, lengths)


# ---------------------------------------------------------------------------------------------
# fairseq checkpoints
# ---------------------------------------------------------------------------------------------

HEADS = ("mask_emb", "quantizer.", "project_q.", "final_proj.", "target_glu.")


def from_fairseq(obj, source: str = "checkpoint") -> Wav2Vec2PreTraining:
    """A fairseq wav2vec 2.0 pre-training checkpoint (a file path, or its loaded dict with ``cfg``/``args`` and
    ``model``) -> our model with every weight loaded, heads included (the update count is not restored: call
    ``set_num_updates``)."""
    if isinstance(obj, (str, os.PathLike)):
        obj, source = ckpt_io.load_checkpoint(obj), str(obj)
    cfg, state = fairseq_convert.load_any(obj, source)
    conf = obj.get("cfg") if obj.get("cfg") is not None else obj.get("args")
    conf = config_io.as_mapping(conf, "cfg", source)
    model_cfg = config_io.as_mapping(conf.get("model", conf), "cfg.model", source)
    criterion_cfg = conf.get("criterion") if isinstance(conf.get("criterion"), dict) else conf
    pcfg = pretrain_config_from_fairseq(model_cfg, criterion_cfg, source)
    model = Wav2Vec2PreTraining(cfg, pcfg)
    heads = {k: v for k, v in state.items() if k.startswith(HEADS)}
    fairseq_convert.load_state(model.model, {k: v for k, v in state.items() if k not in heads}, source)
    return copy_heads(model, heads, source, "pre-training heads")


def copy_heads(model: nn.Module, heads: dict, source: str, what: str) -> nn.Module:
    """Load the training-only weights (everything of ``model`` outside its ``model.`` backbone) from ``heads``:
    the same names and shapes, or an error naming what is missing, unexpected or of another shape."""
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("model.")}
    missing, extra = sorted(set(own) - set(heads)), sorted(set(heads) - set(own))
    if missing or extra:
        raise CheckpointFormatError(f"{source}: {what} do not fit the configuration; missing {missing[:8]}, "
                                    f"unexpected {extra[:8]}")
    for key, value in heads.items():
        if value.shape != own[key].shape:
            raise CheckpointFormatError(f"{source}: {key} has shape {tuple(value.shape)} in the checkpoint, "
                                        f"{tuple(own[key].shape)} in the model")
        own[key].copy_(value)
    return model


_TO_FAIRSEQ = [
    (r"model\.feature_extractor\.conv_layers\.(\d+)\.conv\.(weight|bias)", r"feature_extractor.conv_layers.\1.0.\2"),
    (r"model\.feature_norm\.(weight|bias)", r"layer_norm.\1"),
    (r"model\.feature_proj\.(weight|bias)", r"post_extract_proj.\1"),
    (r"model\.encoder\.pos_conv\.conv\.(weight_g|weight_v|bias)", r"encoder.pos_conv.0.\1"),
    (r"model\.encoder\.layers\.(\d+)\.attention\.out_proj\.(weight|bias)", r"encoder.layers.\1.self_attn.out_proj.\2"),
    (r"model\.encoder\.layers\.(\d+)\.attention_norm\.(weight|bias)", r"encoder.layers.\1.self_attn_layer_norm.\2"),
    (r"model\.encoder\.layers\.(\d+)\.fc([12])\.(weight|bias)", r"encoder.layers.\1.fc\2.\3"),
    (r"model\.encoder\.layers\.(\d+)\.final_norm\.(weight|bias)", r"encoder.layers.\1.final_layer_norm.\2"),
    (r"model\.encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
]


def fairseq_state_dict(model: Wav2Vec2PreTraining, tensors: dict[str, torch.Tensor] | None = None) -> dict:
    """Our parameter names -> fairseq's (``tensors`` defaults to the state dict; pass e.g. the gradients by name).
    The fused q/k/v projection is split back into ``q_proj``/``k_proj``/``v_proj``."""
    import re

    tensors = model.state_dict() if tensors is None else tensors
    norm_slot = "2.1" if model.cfg.extractor_mode == "layer_norm" else "2"
    out = {}
    for key, value in tensors.items():
        m = re.fullmatch(r"model\.feature_extractor\.conv_layers\.(\d+)\.norm\.(weight|bias)", key)
        if m:
            out[f"feature_extractor.conv_layers.{m[1]}.{norm_slot}.{m[2]}"] = value
            continue
        m = re.fullmatch(r"model\.encoder\.layers\.(\d+)\.attention\.qkv\.(weight|bias)", key)
        if m:
            for name, part in zip("qkv", value.chunk(3, dim=0)):
                out[f"encoder.layers.{m[1]}.self_attn.{name}_proj.{m[2]}"] = part
            continue
        for pattern, repl in _TO_FAIRSEQ:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, repl, key)] = value
                break
        else:
            if not key.startswith(HEADS):
                raise KeyError(f"no fairseq name for {key}")
            out[key] = value
    return out
