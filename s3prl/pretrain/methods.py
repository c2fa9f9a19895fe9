"""The pre-training methods: for each, its features, batch, objective, checkpoint parts and upstream entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pad_sequence

from ..upstream.apc import KaldiFbank, fbank_config
from . import distiller, mam
from .apc import APCObjective, Batch
from .npc import NPCObjective


@dataclass(frozen=True)
class Method:
    family: str  # "apc" | "npc" | "mam" | "distiller"
    entry: str  # the S3PRLUpstream name that loads its checkpoints

    @property
    def fbank(self) -> bool:
        """The APC series: Kaldi fbank features, checkpoint {config, model, Upstream_Config}."""
        return self.family in ("apc", "npc")


METHODS = {
    "apc": Method("apc", "apc_local"),
    "vq_apc": Method("apc", "apc_local"),  # the original has no vq_apc_local: apc_local reads VQ-APC files
    "npc": Method("npc", "npc_local"),
    "mockingjay": Method("mam", "mockingjay_local"),
    "tera": Method("mam", "tera_local"),
    "audio_albert": Method("mam", "audio_albert_local"),
    "spec_augment": Method("mam", "spec_augment_local"),  # SpecAugment masks instead of the MAM alterations
    "distiller": Method("distiller", "distiller_local"),  # DistilHuBERT: a student of a frozen teacher
}


def teacher(method: str, model_cfg: dict, device: torch.device) -> nn.Module | None:
    """The frozen teacher of a distillation method (None for the others)."""
    return distiller.build_teacher(model_cfg, device) if METHODS[method].family == "distiller" else None


def crop_frames(method: str, model_cfg: dict) -> int:
    """Frames per crop of the cached features (DistilHuBERT crops the waveform itself, in samples)."""
    return 0 if METHODS[method].family == "distiller" else int(model_cfg["task"]["sequence_length"])


def audio_section(method: str, model_cfg: dict, teacher_model: nn.Module | None = None) -> dict:
    """What the cached features depend on (part of each cache file's key)."""
    if METHODS[method].family == "distiller":
        return distiller.cache_options(model_cfg, teacher_model)
    return model_cfg["data"]["audio"] if METHODS[method].fbank else model_cfg["audio"]


def extractor(method: str, model_cfg: dict, teacher_model: nn.Module | None = None
              ) -> tuple[Callable[[torch.Tensor], torch.Tensor], int]:
    """(waveform -> cached features (T, D), minimum number of frames a file must give)."""
    if METHODS[method].family == "distiller":  # the teacher's target layers
        conv = distiller.student_config(model_cfg)[0].conv_layers
        return distiller.cache_extractor(teacher_model, model_cfg, conv), 1
    if METHODS[method].fbank:
        front = KaldiFbank(fbank_config(model_cfg["data"]["audio"], "data.audio"))
        return front.extract, int(model_cfg["task"]["n_future"]) + 1  # one input frame at least after the shift
    front, back = mam.frontends(model_cfg["audio"])
    if back is None:
        return front, 1
    return (lambda wav: torch.cat([front(wav), back(wav)], dim=-1)), 1  # input and target side by side


def collate(method: str, model_cfg: dict) -> Callable:
    """The batch maker: (cropped features, uids, rng, gen) -> the objective's batch."""
    if METHODS[method].family == "distiller":
        return distiller.collate(model_cfg, distiller.student_config(model_cfg)[0].conv_layers)
    if METHODS[method].fbank:
        return lambda feats, uids, rng, gen: Batch(pad_sequence(feats, batch_first=True),
                                                   torch.tensor([f.size(0) for f in feats]), uids)
    front, back = mam.frontends(model_cfg["audio"])
    task = model_cfg["task"]

    def make(feats, uids, rng, gen):
        padded = pad_sequence(feats, batch_first=True)  # (B, T, Din [+ Dout])
        inputs = padded[..., : front.dim]
        target = padded[..., front.dim:] if back is not None else inputs
        alter = mam.spec_augment_batch if method == "spec_augment" else mam.mask_batch
        masked, label, attn, target, keep = alter(inputs, target, task, rng, gen)
        return mam.MAMBatch(masked, label, attn, target, [uids[i] for i in keep.tolist()])

    return make


def objective(method: str, model_cfg: dict, teacher_model: nn.Module | None = None) -> nn.Module:
    family = METHODS[method].family
    if family == "distiller":
        return distiller.DistillerObjective(model_cfg, teacher_model)
    return {"apc": APCObjective, "npc": NPCObjective, "mam": mam.MAMObjective}[family](model_cfg)


def parts(method: str, obj: nn.Module) -> dict[str, nn.Module]:
    """Checkpoint keys -> modules, the original's layout (APC: ``model``; MAM: ``Transformer``, ``SpecHead``)."""
    return {"model": obj.model} if METHODS[method].fbank else obj.parts()


def extra_states(method: str, model_cfg: dict, runner_cfg: dict) -> dict:
    """Checkpoint entries besides the weights. DistilHuBERT: ``Config`` is the model configuration (what the
    original's and our ``distiller_local`` read); the runner configuration goes to ``Runner_Config``."""
    if METHODS[method].family == "distiller":
        return {"Config": model_cfg, "Upstream_Config": model_cfg, "Runner_Config": runner_cfg}
    if METHODS[method].fbank:
        return {"config": model_cfg, "Upstream_Config": model_cfg}
    return {"Upstream_Config": model_cfg}


def optimizer_factory(method: str, obj: nn.Module, runner_cfg: dict, total_steps: int):
    """The original's ``AdamW_with_schedule`` (None: a plain optimizer of :mod:`s3prl.train`)."""
    opt = runner_cfg["optimizer"]
    if opt["name"] != "AdamW_with_schedule":
        return None
    plain = distiller.no_decay_ids(obj) if METHODS[method].family == "distiller" else None
    betas = tuple(float(b) for b in opt.get("betas", (0.9, 0.999)))
    return lambda params: mam.AdamWWithSchedule(obj, params, float(opt["lr"]), total_steps,
                                                float(opt.get("warmup_proportion", 0.07)), betas=betas,
                                                eps=float(opt.get("eps", 1e-8)), plain=plain)


def runner_config(ckpt: dict) -> dict:
    """The runner configuration of a checkpoint written by ``s3prl pretrain``."""
    return ckpt["Runner_Config"] if ckpt.get("Method") == "distiller" else ckpt["Config"]
