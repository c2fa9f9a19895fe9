"""DistilHuBERT pre-training: a small student predicts chosen layers of a frozen teacher (L1 + cosine).

The student is the original ``DistillerModel`` with ``expand-last`` heads, built from our DistilHuBERT upstream
modules (:class:`s3prl.upstream.distiller.Distiller`: wav2vec 2.0 CNN, projection, transformer layers, one
prediction head per teacher layer in ``pred_layer_id``). With ``init_teacher_conv_layers`` /
``init_teacher_encoder_layers`` (the defaults) its CNN, projection, positional convolution and first
``encoder_layers`` transformer layers start as copies of the teacher's (wav2vec 2.0 / HuBERT-style teachers).

The objective, as the original ``DistillerForPretrain.compute_loss``, per prediction head and frame:
``|pred - target|`` (or squared with ``loss_type: l2``) averaged over the feature channels, plus
``cosine_loss * -log(sigmoid(cos(pred, target)))``, plus ``feat_pen_loss`` times the mean square of the CNN
features; the CNN's gradient is scaled by ``feature_grad_mult``. Every term is averaged over the valid frames
of the batch (the original averages over the padded tensor as well; on a batch without padding both agree).

The teacher (any ``S3PRLUpstream`` name, with ``teacher.path`` a local file or URL) runs in eval mode, on each
whole file once: its target layers are cached on disk (``teacher.cache``), so later epochs and later runs skip
it. A crop of ``task.sequence_length`` samples then starts on a frame boundary (a multiple of the stride) so
that the student's frames on the crop are exactly the cached frames. For files longer than the crop the
teacher has seen the whole file, not only the crop (the original ran it on the crop); ``teacher.cache: false``
runs the teacher on each crop instead, as the original.

Checkpoints hold the original's ``Distiller`` (the ``DistillerModel`` state dict, its key names) and ``Config``
(the model configuration: ``distiller``, ``teacher``, ``task``, ``audio``), which the original's and our
``distiller_local`` read.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import re
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from ..audio import load_audio
from ..convert import fairseq as fairseq_convert
from ..upstream import distiller as up
from ..upstream.wav2vec2 import GradMultiply, conv_output_lengths, lengths_to_mask

SAMPLE_RATE = 16000
CACHE_DTYPES = {"float32": torch.float32, "float16": torch.float16}


# ------------------------------------------------------------------------------------------------
# the student and its original key names
# ------------------------------------------------------------------------------------------------

def student_config(model_cfg: dict, source: str = "model config (distiller)"):
    """(encoder config, n_tasks, head width, output width) of the ``distiller`` section (checked)."""
    conf = model_cfg["distiller"]
    if float(conf.get("extractor_dropout", 0.0)) != 0.0:
        raise ValueError("distiller.extractor_dropout: only 0.0 is supported (the original's default)")
    if float(conf.get("encoder_layerdrop", 0.0)) != 0.0:
        raise ValueError("distiller.encoder_layerdrop: only 0.0 is supported (the original's default)")
    if int(conf.get("n_tasks", 12)) < 2:
        raise ValueError("distiller.n_tasks must be >= 2 (one prediction head per entry of pred_layer_id)")
    if conf.get("loss_type", "l1") not in ("l1", "l2"):
        raise ValueError(f"distiller.loss_type = {conf.get('loss_type')!r}: l1 or l2")
    return up.config_from_checkpoint(conf, source)


def build_student(model_cfg: dict) -> up.Distiller:
    cfg, n_tasks, inter, final = student_config(model_cfg)
    student = up.Distiller(cfg, n_tasks, inter, final)
    initialise(student)
    return student


def initialise(student: up.Distiller) -> None:
    """The original's initialisation (distributions): kaiming-normal convolutions, the encoder's linear layers
    N(0, 0.02) with zero biases (``init_bert_params``), the weight-normed positional convolution with its norm
    as gain, the split heads uniform in +-1/sqrt(width)."""
    for layer in student.feature_extractor.conv_layers:
        nn.init.kaiming_normal_(layer.conv.weight)
    for module in student.encoder.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    conv = student.encoder.pos_conv.conv
    with torch.no_grad():
        conv.weight_g.copy_(conv.weight_v.norm(dim=(0, 1), keepdim=True))
    bound = student.head_out_weight.size(1) ** -0.5
    nn.init.uniform_(student.head_out_weight, -bound, bound)
    nn.init.uniform_(student.head_out_bias, -bound, bound)


# our key -> the original DistillerModel key (q/k/v are one fused matrix here)
ORIGINAL_KEYS = [
    (r"feature_extractor\.conv_layers\.(\d+)\.conv\.weight", r"feature_extractor.conv_layers.\1.0.weight"),
    (r"feature_extractor\.conv_layers\.(\d+)\.norm\.(weight|bias)", r"feature_extractor.conv_layers.\1.2.\2"),
    (r"feature_proj\.(weight|bias)", r"post_extract_proj.\1"),
    (r"encoder\.pos_conv\.conv\.(weight_g|weight_v|bias)", r"encoder.pos_conv.0.\1"),
    (r"encoder\.layers\.(\d+)\.attention\.out_proj\.(weight|bias)", r"encoder.layers.\1.self_attn.out_proj.\2"),
    (r"encoder\.layers\.(\d+)\.attention_norm\.(weight|bias)", r"encoder.layers.\1.self_attn_layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.fc([12])\.(weight|bias)", r"encoder.layers.\1.fc\2.\3"),
    (r"encoder\.layers\.(\d+)\.final_norm\.(weight|bias)", r"encoder.layers.\1.final_layer_norm.\2"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (r"head_in\.(weight|bias)", r"output_layer.0.\1"),
    (r"head_out_(weight|bias)", r"output_layer.2.\1"),
]
QKV = r"encoder\.layers\.(\d+)\.attention\.qkv\.(weight|bias)"


def original_name(name: str) -> str:
    """Our parameter name -> the original DistillerModel's (q/k/v: ``...self_attn.q_proj...`` is the first
    third of our fused matrix)."""
    match = re.fullmatch(QKV, name)
    if match:
        return f"encoder.layers.{match[1]}.self_attn.q_proj.{match[2]}"
    for pattern, repl in ORIGINAL_KEYS:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, repl, name)
    raise KeyError(f"no original name for {name}")


def to_original(state: dict) -> dict:
    """Our student state dict -> the original ``DistillerModel.state_dict()`` keys."""
    out = {}
    for name, value in state.items():
        match = re.fullmatch(QKV, name)
        if match:
            for which, part in zip("qkv", value.chunk(3, dim=0)):
                out[f"encoder.layers.{match[1]}.self_attn.{which}_proj.{match[2]}"] = part.clone()
        else:
            out[original_name(name)] = value
    return out


class OriginalLayout(nn.Module):
    """The student, saved and loaded under the original's ``Distiller`` keys."""

    def __init__(self, student: up.Distiller):
        super().__init__()
        self.student = student

    def state_dict(self, *args, **kwargs) -> dict:
        return to_original(self.student.state_dict())

    def load_state_dict(self, state: dict, strict: bool = True, assign: bool = False):
        fairseq_convert.load_state(self.student, up.map_state(state, self.student.cfg), "Distiller",
                                      mapped=True)


# ------------------------------------------------------------------------------------------------
# the teacher
# ------------------------------------------------------------------------------------------------

def build_teacher(model_cfg: dict, device: torch.device) -> nn.Module:
    """The frozen teacher (``S3PRLUpstream``), in eval mode, checked against ``pred_layer_id``."""
    from ..nn import S3PRLUpstream  # the pre-training floor builds an upstream by name, as a user would

    tcfg = model_cfg["teacher"]
    try:
        teacher = S3PRLUpstream(str(tcfg["model"]), path_or_url=tcfg.get("path"))
    except (ValueError, OSError, KeyError) as err:
        hint = " (a checkpoint file goes to teacher.path, teacher.model naming its entry, e.g. hubert_local)" \
            if os.path.isfile(str(tcfg["model"])) else ""
        raise ValueError(f"teacher.model = {tcfg['model']!r} (path {tcfg.get('path')!r}) cannot be loaded{hint}: "
                         f"{err}") from None
    teacher = teacher.to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    layers = list(model_cfg["distiller"].get("pred_layer_id") or [])
    if max(layers, default=0) >= teacher.num_layers or min(layers, default=1) < 0:
        raise ValueError(f"distiller.pred_layer_id {layers}: the teacher {tcfg['model']} has hidden states "
                         f"0..{teacher.num_layers - 1}")
    stride = student_config(model_cfg)[0].downsample_rate
    rates = {teacher.downsample_rates[i] for i in layers}
    if rates != {stride}:
        raise ValueError(f"the teacher {tcfg['model']} gives a frame every {sorted(rates)} samples, the student "
                         f"(distiller.extractor_conv_feature_layers) every {stride}: they must agree")
    return teacher


def teacher_digest(teacher: nn.Module) -> str:
    """A hash of the teacher's weights: cached targets of another teacher are never reused."""
    h = hashlib.sha256()
    for name, value in sorted(teacher.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def init_from_teacher(student: up.Distiller, teacher: nn.Module, conf: dict) -> None:
    """The original's initialisation from the teacher: CNN (+ projection), positional convolution and the
    first ``encoder_layers`` transformer layers."""
    model = getattr(teacher, "upstream", teacher)
    needed = ("feature_extractor", "feature_proj", "encoder")
    if not all(hasattr(model, n) for n in needed) or not hasattr(model.encoder, "pos_conv"):
        raise ValueError(f"teacher {conf.get('teacher', {}).get('model')!r} is not a wav2vec 2.0 / HuBERT-style "
                         "model: set distiller.init_teacher_conv_layers and init_teacher_encoder_layers to false")
    dconf = conf["distiller"]
    try:
        if dconf.get("init_teacher_conv_layers", False):
            student.feature_extractor.load_state_dict(model.feature_extractor.state_dict())
            if isinstance(student.feature_proj, nn.Linear):
                student.feature_proj.load_state_dict(model.feature_proj.state_dict())
        if dconf.get("init_teacher_encoder_layers", False):
            if len(student.encoder.layers) > len(model.encoder.layers):
                raise ValueError(f"the student has {len(student.encoder.layers)} layers, the teacher "
                                 f"{len(model.encoder.layers)}")
            student.encoder.pos_conv.load_state_dict(model.encoder.pos_conv.state_dict())
            for mine, theirs in zip(student.encoder.layers, model.encoder.layers):
                mine.load_state_dict(theirs.state_dict())
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"the student cannot be initialised from the teacher (init_teacher_*): its shapes must "
                         f"match the teacher's ({str(err).splitlines()[0]})") from None


@torch.no_grad()
def teacher_targets(teacher: nn.Module, layers: list[int], wavs: torch.Tensor, lengths: torch.Tensor,
                    conv_layers) -> tuple[torch.Tensor, torch.Tensor]:
    """wavs (B, L), lengths (B,) -> targets (B, N, T, D) on the student's frames (conv arithmetic), frames (B,)."""
    device = next(teacher.parameters()).device
    hs, _ = teacher(wavs.to(device), lengths.to(device))
    frames = conv_output_lengths(lengths, conv_layers)
    T = int(frames.max())
    stacked = torch.stack([hs[i][:, :T].float() for i in layers], dim=1)  # (B, N, T', D)
    if stacked.size(2) < T:
        raise ValueError(f"the teacher gives {stacked.size(2)} frames where the student has {T}: the teacher's "
                         "frame rate must be the student's")
    return stacked, frames


def cache_extractor(teacher: nn.Module, model_cfg: dict, student_conv):
    """The feature-cache function: waveform (L,) -> the teacher's target layers (T, N * D) of the whole file
    (``teacher.cache: false``: (T, 0), only the frame count is kept)."""
    layers = list(model_cfg["distiller"]["pred_layer_id"])
    tcfg = model_cfg["teacher"]
    dtype = CACHE_DTYPES[tcfg.get("cache_dtype", "float32")]

    def extract(wav: torch.Tensor) -> torch.Tensor:
        length = torch.tensor([wav.numel()])
        if not tcfg.get("cache", True):
            return torch.zeros(int(conv_output_lengths(length, student_conv)[0]), 0)
        targets, frames = teacher_targets(teacher, layers, wav[None], length, student_conv)
        return targets[0].transpose(0, 1).reshape(int(frames[0]), -1).to(dtype).cpu()  # (T, N * D)

    return extract


def cache_options(model_cfg: dict, teacher: nn.Module) -> dict:
    return {"teacher": model_cfg["teacher"], "pred_layer_id": list(model_cfg["distiller"]["pred_layer_id"]),
            "conv": model_cfg["distiller"].get("extractor_conv_feature_layers"), "weights": teacher_digest(teacher)}


# ------------------------------------------------------------------------------------------------
# batches
# ------------------------------------------------------------------------------------------------

@dataclass
class DistillBatch:
    """Padded waveforms (B, L), their lengths (B,), cached targets (B, N, T, D) or None (the teacher runs on
    the crops), utterance ids."""

    wavs: torch.Tensor
    lengths: torch.Tensor
    targets: torch.Tensor | None
    uids: list


def collate(model_cfg: dict, conv_layers) -> Callable:
    """(cached (T, N*D) targets, file paths, rng, gen) -> DistillBatch: each file read, cropped to
    ``task.sequence_length`` samples from a random frame boundary, its targets sliced alike."""
    length = int(model_cfg["task"]["sequence_length"])
    stride = math.prod(s for _, _, s in conv_layers)
    n_tasks = len(model_cfg["distiller"]["pred_layer_id"])
    cached = bool(model_cfg["teacher"].get("cache", True))

    def make(feats, uids, rng: random.Random, gen):
        wavs, targets = [], []
        for feat, path in zip(feats, uids):
            wav = load_audio(path, SAMPLE_RATE)
            start = 0
            if 0 < length < wav.numel():
                start = stride * rng.randint(0, (wav.numel() - length) // stride)
                wav = wav[start: start + length]
            wavs.append(wav)
            if cached:
                targets.append(feat[start // stride:].float())  # (T', N*D), trimmed to the crop below
        lengths = torch.tensor([w.numel() for w in wavs])
        if not cached:
            return DistillBatch(pad_sequence(wavs, batch_first=True), lengths, None, list(uids))
        frames = conv_output_lengths(lengths, conv_layers)
        sliced = [t[:n].reshape(int(n), n_tasks, -1).transpose(0, 1) for t, n in zip(targets, frames.tolist())]
        padded = pad_sequence([s.transpose(0, 1) for s in sliced], batch_first=True).transpose(1, 2)  # (B,N,T,D)
        return DistillBatch(pad_sequence(wavs, batch_first=True), lengths, padded, list(uids))

    return make


# ------------------------------------------------------------------------------------------------
# the objective
# ------------------------------------------------------------------------------------------------


def distill_loss(pred: torch.Tensor, target: torch.Tensor, feat: torch.Tensor, valid: torch.Tensor,
                 loss_type: str, cosine: float, feat_pen: float) -> dict:
    """pred / target (B, N, T, D), feat (B, T, C) CNN features, valid (B, T) bool -> the loss terms, each
    averaged over the valid frames (and heads and channels)."""
    weight = valid.to(pred.dtype)  # (B, T)
    count = weight.sum().clamp(min=1)
    n_heads, dim = pred.size(1), pred.size(-1)
    diff = (pred - target).abs() if loss_type == "l1" else (pred - target) ** 2
    rec = (diff.sum(-1) * weight[:, None]).sum() / (count * n_heads * dim)
    out = {"rec_loss": rec, "sim_loss": pred.new_zeros(()), "feat_pen": pred.new_zeros(())}
    total = rec
    if cosine > 0:
        sim = -F.logsigmoid(F.cosine_similarity(pred, target, dim=-1))  # (B, N, T)
        out["sim_loss"] = (sim * weight[:, None]).sum() / (count * n_heads)
        total = total + cosine * out["sim_loss"]
    out["feat_pen"] = (feat.float().pow(2).mean(-1) * weight).sum() / count
    out["loss"] = total + feat_pen * out["feat_pen"]
    return out


class DistillerObjective(nn.Module):
    """``objective(batch) -> loss``: the original ``DistillerForPretrain`` (student forward, teacher targets,
    ``compute_loss``)."""

    def __init__(self, model_cfg: dict, teacher: nn.Module | None):
        super().__init__()
        conf = model_cfg["distiller"]
        self.student = build_student(model_cfg)
        if teacher is not None and (conf.get("init_teacher_conv_layers") or conf.get("init_teacher_encoder_layers")):
            init_from_teacher(self.student, teacher, model_cfg)
        self.layers = list(conf["pred_layer_id"])
        self.loss_type, self.cosine = conf.get("loss_type", "l1"), float(conf.get("cosine_loss", 0.0))
        self.feat_pen, self.grad_mult = float(conf.get("feat_pen_loss", 0.0)), float(conf.get("feature_grad_mult", 1.0))
        online = not model_cfg["teacher"].get("cache", True)
        self.teacher = teacher if online else None  # a frozen submodule only when it runs in the loop

    def train(self, mode: bool = True):
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()  # deterministic targets, the same as the cached ones
        return self

    def parts(self) -> dict[str, nn.Module]:
        return {"Distiller": OriginalLayout(self.student)}

    def predict(self, wavs: torch.Tensor, lengths: torch.Tensor):
        """-> CNN features (B, T, C), predictions (B, N, T, D), frames (B,)."""
        s = self.student
        if self.grad_mult > 0:
            feats, frames = s.feature_extractor(wavs, lengths)  # (B, T, C), zeros past each length
            if self.grad_mult != 1.0:
                feats = GradMultiply.apply(feats, self.grad_mult)
        else:
            with torch.no_grad():
                feats, frames = s.feature_extractor(wavs, lengths)
        T = int(frames.max())
        feats = feats[:, :T]
        x = s.feature_proj(feats) * lengths_to_mask(frames, T)[:, :, None].to(feats.dtype)  # (B, T, D)
        top = s.encoder(x, frames)[-1]
        if s.cfg.layer_norm_first:
            top = s.encoder.layer_norm(top)
        h = F.gelu(s.head_in(top))  # (B, T, N * inter)
        h = h.view(h.size(0), T, s.n_tasks, -1)
        pred = torch.einsum("btki,kio->btko", h, s.head_out_weight) + s.head_out_bias  # (B, T, N, D)
        return feats, pred.permute(0, 2, 1, 3), frames

    def terms(self, batch: DistillBatch) -> dict:
        device = self.student.head_in.weight.device
        wavs, lengths = batch.wavs.to(device), batch.lengths.to(device)
        feats, pred, frames = self.predict(wavs, lengths)
        if batch.targets is not None:
            target = batch.targets.to(device)
        else:
            target, _ = teacher_targets(self.teacher, self.layers, wavs, lengths, self.student.cfg.conv_layers)
        if target.shape != pred.shape:
            raise ValueError(f"targets {tuple(target.shape)} do not fit the predictions {tuple(pred.shape)}: the "
                             "teacher's layers must have the student's final_dim and frame rate")
        valid = lengths_to_mask(frames, pred.size(2))
        # in fp32 also under fp16 autocast (the original's fp32 targets promote the loss alike)
        return distill_loss(pred.float(), target.float(), feats, valid, self.loss_type, self.cosine, self.feat_pen)

    def forward(self, batch: DistillBatch) -> torch.Tensor:
        return self.terms(batch)["loss"]


def no_decay_ids(objective: DistillerObjective) -> set[int]:
    """The original groups parameters by name: those whose name contains ``bias`` get no weight decay (its
    layer norms are not named ``LayerNorm``, so they are decayed)."""
    return {id(p) for name, p in objective.student.named_parameters() if "bias" in original_name(name)}
