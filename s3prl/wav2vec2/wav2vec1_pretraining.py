"""wav2vec (1.0) and vq-wav2vec pre-training: our upstream model + quantizer + step predictions, fairseq's losses.

The context network's output at frame t predicts, through ``project_to_steps`` (a transposed conv giving one
vector per future step), the features at t + offset + i for each step i; the true future frame is the positive,
``num_negatives`` frames of the same utterance (+ ``cross_sample_negatives`` of the batch) the negatives. Scores
are dot products; the loss is fairseq's ``wav2vec`` criterion: binary cross-entropy (``infonce: false``, the
seed's recipes) or cross-entropy over [positive, negatives] (``infonce: true``), summed, plus the weighted
quantizer term (Gumbel: ``num_vars - prob_perplexity``; k-means: its codebook + commitment loss) times
sample_size (BCE: the number of positives). As in fairseq, batches have equal lengths (crops): there is no
padding mask.
"""

from __future__ import annotations

import ast
import math
import os
from dataclasses import dataclass, field, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint as ckpt_io
from ..convert import config as config_io
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointConfigError, CheckpointFormatError
from ..upstream import wav2vec as w2v1
from .criterion import LossOutput, accuracy
from .masking import sample_negatives
from .pretraining import copy_heads
from .quantizer import GumbelVectorQuantizer, KmeansVectorQuantizer, QuantizerOutput


@dataclass
class Wav2VecPretrainConfig:
    """Training-only parts of fairseq's ``wav2vec`` model config, and the criterion's settings."""

    prediction_steps: int = 12
    offset: int = 0  # frames skipped before the first predicted step ("auto": ceil(receptive field / stride))
    num_negatives: int = 1
    cross_sample_negatives: int = 0
    dropout: float = 0.0
    dropout_features: float = 0.0
    dropout_agg: float = 0.0
    balanced_classes: bool = False
    infonce: bool = False
    vq_dim: int = 0
    vq_temp: tuple[float, float, float] = (2.0, 0.5, 0.999995)
    vq_gamma: float = 0.25
    loss_weights: tuple[float, ...] | None = None
    extra: dict = field(default_factory=dict)


def auto_offset(conv_layers) -> int:
    """ceil(receptive field / total stride) of the feature encoder: the first frame whose input window does not
    overlap frame 0's."""
    field_size, jump = 0, 1
    for i, (_, kernel, stride) in enumerate(conv_layers):
        field_size = kernel if i == 0 else field_size + (kernel - 1) * jump
        jump *= stride
    return math.ceil(field_size / jump)


def _temp(value, source: str) -> tuple[float, float, float]:
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise CheckpointConfigError(source, "vq_temp", value, "(start, end, decay)") from None
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise CheckpointConfigError(source, "vq_temp", value, "(start, end, decay)")
    return tuple(config_io.as_float(v, "vq_temp", source, 0.0, 1e6) for v in value)


TRAIN_DEFAULTS = {"prediction_steps": 12, "offset": "auto", "num_negatives": 10, "cross_sample_negatives": 0,
                  "dropout": 0.0, "dropout_features": 0.0, "dropout_agg": 0.0, "balanced_classes": False,
                  "infonce": False, "vq_dim": 0, "vq_temp": (2.0, 0.5, 0.999995), "vq_gamma": 0.25,
                  "project_features": "none", "sample_distance": None}


def pretrain_config_from_fairseq(model_cfg: dict, criterion_cfg: dict | None, conv_layers,
                                 source: str) -> Wav2VecPretrainConfig:
    get = config_io.Settings(model_cfg, TRAIN_DEFAULTS, source)
    if get.raw("project_features") != "none":
        raise CheckpointFormatError(f"{source}: project_features={get.raw('project_features')!r} is not supported "
                                    "(only 'none', the recipes' value)")
    if model_cfg.get("sample_distance") is not None:
        raise CheckpointFormatError(f"{source}: sample_distance is not supported (leave it unset)")
    offset = get.raw("offset")
    offset = auto_offset(conv_layers) if offset == "auto" else config_io.as_int(offset, "offset", source, 0)
    criterion_cfg = criterion_cfg or {}
    infonce = get.bool("infonce")
    if "infonce" in criterion_cfg and config_io.as_bool(criterion_cfg["infonce"], "criterion.infonce", source) \
            != infonce:
        raise CheckpointConfigError(source, "criterion.infonce", criterion_cfg["infonce"],
                                    f"the model's infonce ({infonce})")
    weights = criterion_cfg.get("loss_weights")
    if weights is not None and not isinstance(weights, (list, tuple)):
        raise CheckpointConfigError(source, "criterion.loss_weights", weights, "a list of numbers")
    return Wav2VecPretrainConfig(
        prediction_steps=get.int("prediction_steps"), offset=offset, num_negatives=get.int("num_negatives", 0),
        cross_sample_negatives=get.int("cross_sample_negatives", 0), dropout=get.float("dropout"),
        dropout_features=get.float("dropout_features"), dropout_agg=get.float("dropout_agg"),
        balanced_classes=get.bool("balanced_classes"), infonce=infonce, vq_dim=get.int("vq_dim", 0),
        vq_temp=_temp(get.raw("vq_temp"), source), vq_gamma=get.float("vq_gamma", 0.0, 1e6),
        loss_weights=None if weights is None else tuple(
            config_io.as_float(w, "criterion.loss_weights", source, 0.0, 1e6) for w in weights),
    )


class _Predictions(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, steps: int):
        super().__init__()
        self.project_to_steps = nn.ConvTranspose2d(in_dim, out_dim, (1, steps))


@dataclass
class Wav2VecPretrainOutput:
    logits: torch.Tensor  # BCE: (N,) ; InfoNCE: (N / (1 + K), 1 + K)
    targets: torch.Tensor  # BCE: (N,) float 1 = positive ; InfoNCE: zeros (long)
    weights: torch.Tensor | None  # BCE with balanced_classes: 1 for positives, 1 / K for negatives
    neg_idxs: torch.Tensor  # (K, B, T) into the (B*T) frames
    quantizer: object | None  # QuantizerOutput / KmeansOutput / None


class Wav2VecPreTraining(nn.Module):
    """``self.model`` is the upstream :class:`~s3prl.upstream.wav2vec.Wav2Vec` (feature extractor + context
    network, without quantizer); ``vector_quantizer`` and ``wav2vec_predictions`` carry fairseq's names."""

    def __init__(self, cfg: w2v1.Wav2VecConfig, pcfg: Wav2VecPretrainConfig, activation: str = "relu"):
        super().__init__()
        self.cfg, self.pcfg = cfg, pcfg
        self.model = w2v1.Wav2Vec(replace(cfg, vq_type="none"))
        embed = cfg.embed_dim
        vq_dim = pcfg.vq_dim or embed
        act = nn.GELU() if activation == "gelu" else nn.ReLU()
        self.vector_quantizer = None
        if cfg.vq_type == "gumbel":
            self.vector_quantizer = GumbelVectorQuantizer(embed, cfg.vq_vars, pcfg.vq_temp, cfg.vq_groups, vq_dim,
                                                          cfg.combine_groups, cfg.vq_depth, 2, act)
        elif cfg.vq_type == "kmeans":
            self.vector_quantizer = KmeansVectorQuantizer(embed, cfg.vq_vars, cfg.vq_groups, vq_dim,
                                                          cfg.combine_groups, pcfg.vq_gamma)
        agg_dim = cfg.agg_layers[-1][0]
        self.wav2vec_predictions = _Predictions(agg_dim, embed, pcfg.prediction_steps)

    def set_num_updates(self, num_updates: int) -> None:
        if isinstance(self.vector_quantizer, GumbelVectorQuantizer):
            self.vector_quantizer.set_num_updates(num_updates)

    def aggregate(self, x: torch.Tensor) -> torch.Tensor:
        """The causal context network on (B, C, T), with fairseq's dropout after each conv."""
        for layer in self.model.aggregator.layers:
            h = F.pad(x, (layer.pad, 0), mode="constant" if layer.zero_pad else "replicate")
            h = F.dropout(layer.block.conv(h), self.pcfg.dropout, self.training)
            h = layer.block.act(w2v1.group_norm(layer.block.norm, h))
            if layer.skip:
                h = (h + (x if layer.residual_proj is None else layer.residual_proj(x))) * layer.scale
            x = h
        return x

    def forward(self, wavs: torch.Tensor, neg_idxs: torch.Tensor | None = None,
                gumbel_noise: torch.Tensor | None = None, generator: torch.Generator | None = None
                ) -> Wav2VecPretrainOutput:
        """wavs (B, L), all of the same length (fairseq crops each batch to its shortest utterance)."""
        p = self.pcfg
        features = self.model.feature_extractor(wavs)  # (B, C, T)
        q = None
        if isinstance(self.vector_quantizer, GumbelVectorQuantizer):
            q = self.vector_quantizer(features.transpose(1, 2), noise=gumbel_noise, generator=generator)
            features = q.x.transpose(1, 2)
        elif self.vector_quantizer is not None:
            q = self.vector_quantizer(features)
            features = q.x
        x = self.aggregate(F.dropout(features, p.dropout_features, self.training))
        x = F.dropout(x, p.dropout_agg, self.training)
        x = F.dropout(self.wav2vec_predictions.project_to_steps(x.unsqueeze(-1)), p.dropout, self.training)
        B, C, T = features.shape
        K = p.num_negatives + p.cross_sample_negatives
        if neg_idxs is None:
            neg_idxs = sample_negatives(B, T, p.num_negatives, p.cross_sample_negatives, generator, wavs.device)
        elif tuple(neg_idxs.shape) != (K, B, T):
            raise ValueError(f"negative indices have shape {tuple(neg_idxs.shape)}, expected {(K, B, T)}")
        neg_idxs = neg_idxs.to(features.device)
        negs = features.transpose(1, 2).reshape(B * T, C)[neg_idxs.reshape(-1)].view(K, B, T, C).permute(0, 1, 3, 2)
        targets = torch.cat([features[None], negs])  # (1 + K, B, C, T)
        logits, labels, weights = self.score(x, targets)
        return Wav2VecPretrainOutput(logits, labels, weights, neg_idxs, q)

    def score(self, x: torch.Tensor, targets: torch.Tensor):
        """x (B, C, T, S) step predictions, targets (1 + K, B, C, T) -> fairseq's flat logits and labels: step by
        step; BCE order (copy, utterance, frame) with the positives first, InfoNCE order (frame, utterance, copy)."""
        p = self.pcfg
        copies, T = targets.size(0), targets.size(-1)
        steps = min(x.size(-1), T - p.offset)
        pieces, labels = [], []
        for i in range(max(steps, 0)):
            shift = i + p.offset
            pred, future = x[..., : T - shift, i], targets[..., shift:]  # (B, C, T'), (1+K, B, C, T')
            if p.infonce:
                pieces.append(torch.einsum("bct,nbct->tbn", pred, future).reshape(-1))
            else:
                pieces.append(torch.einsum("bct,nbct->nbt", pred, future).reshape(-1))
                label = torch.zeros(pieces[-1].numel(), device=x.device, dtype=x.dtype)
                label[: label.numel() // copies] = 1.0  # the positives come first (copy 0)
                labels.append(label)
        logits = torch.cat(pieces) if pieces else x.new_zeros(0)
        if p.infonce:
            logits = logits.view(-1, copies)
            return logits, torch.zeros(logits.size(0), dtype=torch.long, device=x.device), None
        labels = torch.cat(labels) if labels else x.new_zeros(0)
        weights = None
        if p.balanced_classes:
            weights = torch.where(labels > 0, 1.0, 1.0 / p.num_negatives).to(logits.dtype)
        return logits, labels, weights


def wav2vec_loss(out: Wav2VecPretrainOutput, pcfg: Wav2VecPretrainConfig) -> LossOutput:
    """fairseq's ``wav2vec`` criterion for wav2vec 1.0 / vq-wav2vec outputs."""
    logits = out.logits.float()
    if pcfg.infonce:
        main = F.cross_entropy(logits, out.targets, reduction="sum")
        sample_size, name = out.targets.numel(), "contrastive"
    else:
        weights = None if out.weights is None else out.weights.float()
        main = F.binary_cross_entropy_with_logits(logits, out.targets.float(), weights, reduction="sum")
        sample_size, name = int(out.targets.long().sum()), "bce"
    extras = {}
    q = out.quantizer
    if isinstance(q, QuantizerOutput):
        extras["prob_perplexity_loss"] = q.num_vars - q.prob_perplexity
    elif q is not None:
        extras["kmeans_loss"] = q.kmeans_loss
    terms, loss = {name: main}, main.clone()
    if pcfg.loss_weights is not None:
        weights = list(pcfg.loss_weights)
        if len(weights) == 1 and len(extras) != 1:
            weights = weights * max(len(extras), 1)
        if extras and len(weights) != len(extras):
            raise ValueError(f"loss_weights has {len(weights)} values for {len(extras)} extra losses")
        for (key, value), coef in zip(extras.items(), weights):
            if coef != 0:
                terms[key] = coef * value.float() * sample_size
                loss = loss + terms[key]
    log = {"loss": float(loss.detach()), "ntokens": sample_size, "nsentences": int(out.neg_idxs.size(1)),
           "sample_size": sample_size}
    if q is not None:
        log["code_perplexity"] = float(q.code_perplexity)
        if hasattr(q, "prob_perplexity"):
            log.update(prob_perplexity=float(q.prob_perplexity.detach()), temp=float(q.temp))
    if len(terms) > 1:
        for i, value in enumerate(terms.values()):
            log[f"loss_{i}"] = float(value.detach())
    if pcfg.infonce:
        log["correct"], count = accuracy(logits)
        log["count"] = float(count)
    return LossOutput(loss, sample_size, terms, extras, logits, log)


def from_fairseq(obj, source: str = "checkpoint") -> Wav2VecPreTraining:
    """A fairseq wav2vec / vq-wav2vec checkpoint (path, or its loaded dict) -> our pre-training model with every
    weight loaded."""
    if isinstance(obj, (str, os.PathLike)):
        obj, source = ckpt_io.load_checkpoint(obj), str(obj)
    cfg, state = w2v1.read_checkpoint(obj, source)
    conf = config_io.as_mapping(obj["cfg"] if obj.get("cfg") is not None else obj.get("args"), "cfg", source)
    model_cfg = config_io.as_mapping(conf.get("model", conf), "cfg.model", source)
    criterion_cfg = conf.get("criterion") if isinstance(conf.get("criterion"), dict) else conf
    pcfg = pretrain_config_from_fairseq(model_cfg, criterion_cfg, cfg.conv_layers, source)
    model = Wav2VecPreTraining(cfg, pcfg, cfg.activation)
    backbone = {k: v for k, v in state.items() if not k.startswith(("vector_quantizer.", "wav2vec_predictions."))}
    fairseq_convert.load_state(model.model, w2v1.map_state(backbone), source, mapped=True)
    heads = {k: v for k, v in state.items() if k not in backbone}
    return copy_heads(model, heads, source, "quantizer / prediction weights")


_TO_FAIRSEQ = [
    (r"model\.feature_extractor\.layers\.(\d+)\.conv\.weight", r"feature_extractor.conv_layers.\1.0.weight"),
    (r"model\.feature_extractor\.layers\.(\d+)\.norm\.(weight|bias)", r"feature_extractor.conv_layers.\1.2.\2"),
    (r"model\.aggregator\.layers\.(\d+)\.block\.conv\.(weight|bias)", r"feature_aggregator.conv_layers.\1.1.\2"),
    (r"model\.aggregator\.layers\.(\d+)\.block\.norm\.(weight|bias)", r"feature_aggregator.conv_layers.\1.3.\2"),
    (r"model\.aggregator\.layers\.(\d+)\.residual_proj\.weight", r"feature_aggregator.residual_proj.\1.weight"),
]


def fairseq_state_dict(model: Wav2VecPreTraining, tensors: dict | None = None) -> dict:
    """Our parameter names -> fairseq's (weights or, e.g., gradients by name)."""
    import re

    tensors = model.state_dict() if tensors is None else tensors
    out = {}
    for key, value in tensors.items():
        for pattern, repl in _TO_FAIRSEQ:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, repl, key)] = value
                break
        else:
            if not key.startswith(("vector_quantizer.", "wav2vec_predictions.")):
                raise KeyError(f"no fairseq name for {key}")
            out[key] = value
    return out
