"""fairseq's initialisation of a fresh wav2vec 2.0 pre-training model (the same distributions, not the same draws).

Our modules start from PyTorch's defaults (uniform ``kaiming_uniform_(a=sqrt(5))`` weights, uniform biases,
weight-norm gain 1). fairseq 0.12.2's ``Wav2Vec2Model`` starts elsewhere, and the difference is not cosmetic: the
default conv init shrinks the features by ~sqrt(6) per conv layer, so a fresh model of ours produced CNN features
~1e6 times smaller in mean square than fairseq's (feature penalty 3.6e-6 vs 4.04) and its quantizer saw near-zero
inputs. What fairseq does, per part (parameter names: ours):

* conv feature extractor: ``kaiming_normal_`` weights (fan-in, gain sqrt(2)); conv biases (``conv_bias``) and the
  Group/LayerNorms keep PyTorch's defaults;
* positional conv (one weight-normed conv): weight ~ N(0, 4 / (kernel * dim)), bias 0, then weight norm over
  every dim but the kernel axis, so the gain ``g`` starts as the norm of each kernel slice of ``v`` (not 1);
* transformer encoder (``init_bert_params`` applied to the whole encoder): every Linear (q/k/v, out_proj, fc1,
  fc2) ~ N(0, 0.02) with zero bias, embeddings ~ N(0, 0.02); LayerNorms ones/zeros; data2vec's plain positional
  convs are Conv1d and keep PyTorch's defaults;
* ``feature_proj`` (fairseq's ``post_extract_proj``), ``project_q``, ``final_proj``, ``target_glu``, the feature
  LayerNorm: PyTorch's defaults (they live outside fairseq's encoder);
* ``mask_emb`` ~ U(0, 1); quantizer codebook ``vars`` ~ U(0, 1), one-layer ``weight_proj`` ~ N(0, 1) with zero
  bias (deeper projections: Linear defaults). Our constructors already draw these; they are drawn again here so
  the function alone defines the whole fresh state.

Call it on freshly built models only: loading weights (a fairseq checkpoint, a resume) replaces all of this.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..upstream.wav2vec2 import WeightNormConv

BERT_STD = 0.02  # init_bert_params


@torch.no_grad()
def init_bert_like(module: nn.Module) -> None:
    """N(0, 0.02) weights and zero biases for every Linear, N(0, 0.02) for every Embedding under ``module``."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            m.weight.normal_(0.0, BERT_STD)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.Embedding):
            m.weight.normal_(0.0, BERT_STD)
            if m.padding_idx is not None:
                m.weight[m.padding_idx].zero_()


@torch.no_grad()
def init_weight_norm_conv(conv: WeightNormConv) -> None:
    """v ~ N(0, 4 / (kernel * dim)) (fairseq's ``dropout = 0`` in that formula), bias 0, g = ||v|| per kernel
    slice: the effective weight g * v / ||v|| then equals the drawn v, as ``nn.utils.weight_norm`` leaves it."""
    dim, _, kernel = conv.weight_v.shape
    conv.weight_v.normal_(0.0, math.sqrt(4.0 / (kernel * dim)))
    conv.bias.zero_()
    conv.weight_g.copy_(conv.weight_v.norm(dim=(0, 1), keepdim=True))


@torch.no_grad()
def init_like_fairseq(model: nn.Module) -> nn.Module:
    """Re-draw every parameter of a fresh :class:`~s3prl.wav2vec2.pretraining.Wav2Vec2PreTraining` from the
    distribution fairseq 0.12.2's ``Wav2Vec2Model`` uses (see the module docstring); returns ``model``."""
    backbone = model.model
    for layer in backbone.feature_extractor.conv_layers:
        layer.conv.reset_parameters()  # the bias (conv_bias) keeps PyTorch's default
        nn.init.kaiming_normal_(layer.conv.weight)
    encoder = backbone.encoder
    for layer in encoder.layers:
        init_bert_like(layer)
    if encoder.pos_conv is not None and encoder.pos_conv.depth == 1:
        init_weight_norm_conv(encoder.pos_conv.conv)
    for norm in backbone.modules():  # Group/LayerNorms (feature extractor, feature_norm, encoder): ones / zeros
        if isinstance(norm, (nn.LayerNorm, nn.GroupNorm)) and norm.weight is not None:
            nn.init.ones_(norm.weight)
            nn.init.zeros_(norm.bias)
    heads = [backbone.feature_proj, model.project_q, model.final_proj]
    heads += [m for m in (model.target_glu or []) if isinstance(m, nn.Linear)]
    for m in heads:
        if isinstance(m, nn.Linear):  # feature_proj is an Identity when conv and encoder widths agree
            m.reset_parameters()
    model.mask_emb.uniform_()
    q = model.quantizer
    if q is not None:
        q.vars.uniform_()
        if isinstance(q.weight_proj, nn.Linear):
            q.weight_proj.weight.normal_(0.0, 1.0)
            q.weight_proj.bias.zero_()
        else:  # vq-wav2vec's deeper projection: Linear defaults throughout
            for m in q.weight_proj.modules():
                if isinstance(m, nn.Linear):
                    m.reset_parameters()
    return model
