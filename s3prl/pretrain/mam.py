"""Masked acoustic modelling: Mockingjay, TERA, Audio ALBERT and SpecAugment-Transformer pre-training.

Alterations of the input features (``mask_batch``), per utterance, as the original ``task.py``:

* time: spans of ``w = randint(mask_consecutive_min, max)`` frames starting at ``round(len * mask_proportion / w)``
  start points drawn without replacement from ``[0, len - w - 1]`` (or, without overlap, one per bucket of
  ``round(w * mask_bucket_ratio)`` frames); one dice per utterance: < 0.8 zero the spans, < 0.9 replace them
  with as many random spans of the same utterance, else keep them; the spans are prediction targets;
* frequency (TERA): one band of ``randint(0, int(D * mask_frequency))`` channels zeroed over all frames and
  made a target on the valid frames;
* magnitude (TERA): one dice per batch: with probability ``noise_proportion``, N(0, 0.2) noise on everything.

``len`` is the number of frames whose target features do not sum to zero; attention is restricted to them.
Utterances left without any target are dropped from the batch. The loss (L1 or MSE) is taken over the target
positions only, on the prediction of the ``SpecHead`` from the last encoder layer.

Random decisions come from the ``random.Random`` and ``torch.Generator`` given, in the original's order of
draws, so that the same seeds give the original's masks.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..upstream import mockingjay as mj


@dataclass
class MAMBatch:
    """Altered input (B, T, Din), target positions (B, T, Dout) bool, attention (B, T) 0/1, target (B, T, Dout)."""

    spec_masked: torch.Tensor
    mask_label: torch.Tensor
    attn_mask: torch.Tensor
    spec_target: torch.Tensor
    uids: list


def spans(starts: torch.Tensor, width: int) -> torch.Tensor:
    """(K,) start indices -> (K * width,) indices of the spans, span by span."""
    return (starts[:, None] + torch.arange(width)[None, :]).reshape(-1)


def mask_batch(inputs: torch.Tensor, target: torch.Tensor, task: dict, rng: random.Random,
               gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """inputs (B, T, Din), target (B, T, Dout), zero-padded -> (spec_masked, mask_label, attn_mask, spec_target,
    indices of the utterances kept)."""
    masked = inputs.clone()
    B, T, D = masked.shape
    lengths = (target.sum(dim=-1) != 0).long().sum(dim=-1).tolist()
    proportion, frequency = task["mask_proportion"], task["mask_frequency"]
    label = torch.zeros(target.shape, dtype=torch.bool) if proportion != 0 or frequency != 0 else \
        torch.ones(target.shape, dtype=torch.bool)
    attn = torch.ones(B, T)
    for b, n in enumerate(lengths):
        attn[b, n:] = 0
        if proportion > 0:
            width = rng.randint(task["mask_consecutive_min"], task["mask_consecutive_max"])
            last_start = max(n - width - 1, 0)
            count = round(n * proportion / width)
            if task["mask_allow_overlap"]:
                starts = torch.randperm(last_start + 1, generator=gen)[:count]
            else:
                bucket = round(width * task["mask_bucket_ratio"])
                first = rng.randint(0, min(width, last_start))
                candidates = torch.arange(first, last_start + 1, bucket)
                starts = candidates[torch.randperm(len(candidates), generator=gen)[:count]]
            frames = spans(starts, width)
            dice = rng.random()
            if dice < 0.8:
                masked[b, frames, :] = 0
            elif dice < 0.9:
                others = spans(torch.randperm(last_start + 1, generator=gen)[:count], width)
                masked[b, frames, :] = masked[b, others, :]
            label[b, frames, :] = True
        if frequency > 0:
            band_width = rng.randint(0, int(D * frequency))
            band = spans(torch.randperm(D - band_width, generator=gen)[:1], band_width)
            masked[b, :, band] = 0
            label[b, :n, band] = True
    if task["noise_proportion"] > 0 and rng.random() < task["noise_proportion"]:
        masked += torch.normal(torch.zeros(masked.shape), torch.full(masked.shape, 0.2), generator=gen)
    keep = label.view(B, -1).sum(dim=-1).nonzero().view(-1)
    return masked[keep], label[keep], attn[keep], target[keep], keep


def spec_augment_batch(inputs: torch.Tensor, target: torch.Tensor, task: dict, rng: random.Random,
                       gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """The SpecAugment pre-training task (the original ``generate_spec_aug_data``): per utterance, ``num_T`` time
    masks of ``randint(0, mask_T)`` frames starting anywhere in the padded length (only when ``mask_T`` <
    ``p`` x the utterance's length) and ``num_F`` bands of ``randint(0, mask_F)`` channels, zeroed and made
    targets. Same outputs as :func:`mask_batch`."""
    masked = inputs.clone()
    B, T, D = masked.shape
    lengths = (target.sum(dim=-1) != 0).long().sum(dim=-1).tolist()
    label = torch.zeros(target.shape, dtype=torch.bool) if task["mask_T"] != 0 or task["mask_F"] != 0 else \
        torch.ones(target.shape, dtype=torch.bool)
    attn = torch.ones(B, T)
    for b, n in enumerate(lengths):
        attn[b, n:] = 0
        if 0 < task["mask_T"] < n * task["p"]:
            for _ in range(task["num_T"]):
                width = rng.randint(0, task["mask_T"])
                frames = spans(torch.randperm(T - width, generator=gen)[:1], width)
                masked[b, frames, :] = 0
                label[b, frames, :] = True
        if task["mask_F"] > 0:
            for _ in range(task["num_F"]):
                width = rng.randint(0, task["mask_F"])
                band = spans(torch.randperm(D - width, generator=gen)[:1], width)
                masked[b, :, band] = 0
                label[b, :n, band] = True
    keep = label.view(B, -1).sum(dim=-1).nonzero().view(-1)
    return masked[keep], label[keep], attn[keep], target[keep], keep


class SpecHead(nn.Module):
    """The original ``TransformerSpecPredictionHead``: dense -> activation -> LayerNorm -> output."""

    def __init__(self, cfg: mj.TransformerConfig, output_dim: int):
        super().__init__()
        self.act = mj.ACTIVATIONS[cfg.activation]
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.output = nn.Linear(cfg.hidden_size, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.LayerNorm(self.act(self.dense(x))))


# our encoder name -> the original TransformerModel's key(s); {i} = layer index
ORIGINAL_NAMES = (
    (r"spec_transform\.(weight|bias)", ["input_representations.spec_transform.{p}"]),
    (r"input_norm\.(weight|bias)", ["input_representations.LayerNorm.{p}"]),
    (r"layers\.(\d+)\.(query|key|value)\.(weight|bias)", ["encoder.layer.{i}.attention.self.{m}.{p}"]),
    (r"layers\.(\d+)\.attn_out\.(weight|bias)", ["encoder.layer.{i}.attention.output.dense.{p}"]),
    (r"layers\.(\d+)\.attn_norm\.(weight|bias)", ["encoder.layer.{i}.attention.output.LayerNorm.{p}",
                                                  "encoder.layer.{i}.attention.LayerNorm.{p}"]),  # 2nd: pre-LN alias
    (r"layers\.(\d+)\.ffn_in\.(weight|bias)", ["encoder.layer.{i}.intermediate.dense.{p}"]),
    (r"layers\.(\d+)\.ffn_out\.(weight|bias)", ["encoder.layer.{i}.output.dense.{p}"]),
    (r"layers\.(\d+)\.ffn_norm\.(weight|bias)", ["encoder.layer.{i}.output.LayerNorm.{p}",
                                                 "encoder.layer.{i}.LayerNorm.{p}"]),
    (r"output_norms\.(\d+)\.(weight|bias)", ["encoder.LayerNorm.{n}.{p}"]),
)


def original_names(name: str, cfg: mj.TransformerConfig) -> list[str]:
    """Every key under which the original ``TransformerModel.state_dict()`` holds our parameter ``name``."""
    for pattern, templates in ORIGINAL_NAMES:
        match = re.fullmatch(pattern, name)
        if match:
            break
    else:
        raise KeyError(name)
    groups = match.groups()
    if name.startswith("output_norms"):
        return [templates[0].format(n=groups[0], p=groups[1])]
    if not name.startswith("layers"):
        return [templates[0].format(p=groups[0])]
    module = groups[1] if len(groups) == 3 else None
    layers = range(cfg.num_layers) if cfg.share_layer else [int(groups[0])]  # ALBERT: one layer under every index
    chosen = templates if cfg.pre_layer_norm else templates[:1]
    return [t.format(i=i, m=module, p=groups[-1]) for i in layers for t in chosen]


class OriginalLayout(nn.Module):
    """Our encoder, saved and loaded under the original's ``Transformer`` keys (what its readers load)."""

    def __init__(self, encoder: mj.Encoder):
        super().__init__()
        self.encoder = encoder

    def state_dict(self, *args, **kwargs) -> dict:
        return {key: value for name, value in self.encoder.state_dict().items()
                for key in original_names(name, self.encoder.cfg)}

    def load_state_dict(self, state: dict, strict: bool = True, assign: bool = False):
        mj.load_state(self.encoder, mj.map_state(state, self.encoder.cfg, "Transformer"), "Transformer")


def frontends(audio: dict) -> tuple[mj.FrontEnd, mj.FrontEnd | None]:
    """(input, target) front-ends of the ``audio`` section; target None: the input features are the target."""
    source = "audio (the model config)"
    if "kaldi" in audio:
        return mj.FrontEnd(audio, source), None
    if "target" not in audio:
        raise ValueError(f"{source}: the STFT front-end needs 'input' and 'target' sections")
    return mj.FrontEnd(audio, source), mj.FrontEnd({**audio, "input": audio["target"]}, source + " target")


class MAMObjective(nn.Module):
    """``objective(batch) -> loss``: the original ``TransformerForMaskedAcousticModel`` on a masked batch."""

    def __init__(self, model_config: dict):
        super().__init__()
        front, back = frontends(model_config["audio"])
        self.input_dim, self.output_dim = front.dim, (back or front).dim
        self.cfg = mj.config_from_checkpoint(model_config, self.input_dim, "model config")
        if (model_config["task"].get("mask_frequency", 0) > 0 or model_config["task"].get("mask_F", 0) > 0) \
                and self.output_dim < self.input_dim:
            raise ValueError(f"frequency masks mark input channels as targets: the target features "
                             f"({self.output_dim}) must have at least the input's {self.input_dim} channels")
        self.Transformer = mj.Encoder(self.cfg)
        self.Transformer.reset_parameters()
        self.SpecHead = SpecHead(self.cfg, self.output_dim)
        for module in self.SpecHead.modules():  # the original's initialisation (init_Transformer_weights)
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, self.cfg.initializer_range)
                nn.init.zeros_(module.bias)
        loss = model_config["task"].get("loss", "L1")
        if loss not in ("L1", "MSE"):
            raise ValueError(f"task.loss = {loss!r}: L1 or MSE")
        self.loss = F.l1_loss if loss == "L1" else F.mse_loss

    def parts(self) -> dict[str, nn.Module]:
        return {"Transformer": OriginalLayout(self.Transformer), "SpecHead": self.SpecHead}

    def forward(self, batch: MAMBatch) -> torch.Tensor:
        device = self.SpecHead.dense.weight.device
        x, label = batch.spec_masked.to(device), batch.mask_label.to(device)
        if x.size(0) == 0:  # no utterance with a target (the original asserts): a zero loss, no update
            return sum(p.sum() for p in self.parameters()) * 0.0
        mask = ((1.0 - batch.attn_mask.to(device)) * -10000.0)[:, None, None, :]  # (B, 1, 1, T) additive
        pred = self.SpecHead(self.Transformer(x, mask)[-1])  # (B, T, Dout)
        return self.loss(pred.masked_select(label), batch.spec_target.to(device).masked_select(label))


def no_decay(objective: nn.Module) -> set[int]:
    """ids of the parameters the original leaves without weight decay: biases and LayerNorm weights."""
    ids = {id(p) for n, p in objective.named_parameters() if n.endswith("bias")}
    ids |= {id(p) for m in objective.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    return ids


class AdamWWithSchedule(torch.optim.Optimizer):
    """The original's ``AdamW_with_schedule``: Adam with bias correction, weight decay 0.01 added to the Adam
    direction (biases and LayerNorms excluded), the learning rate scaled by a linear warm-up over
    ``warmup_proportion`` of ``total_steps`` then a linear decay to 0, evaluated at each parameter's step."""

    def __init__(self, objective: nn.Module, params, lr: float, total_steps: int, warmup_proportion: float,
                 betas=(0.9, 0.999), eps: float = 1e-8, plain: set[int] | None = None):
        params = list(params)
        plain = no_decay(objective) if plain is None else plain  # ids of the parameters without weight decay
        groups = [{"params": [p for p in params if id(p) not in plain], "weight_decay": 0.01},
                  {"params": [p for p in params if id(p) in plain], "weight_decay": 0.0}]
        super().__init__(groups, {"lr": lr, "betas": betas, "eps": eps})
        self.total_steps, self.warmup = float(total_steps), float(warmup_proportion)

    def factor(self, step: int) -> float:
        progress = step / self.total_steps
        if progress < self.warmup:
            return progress / self.warmup
        return max((progress - 1.0) / (self.warmup - 1.0), 0.0)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                state["exp_avg"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                size = group["lr"] * math.sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t) * self.factor(t)
                update = state["exp_avg"] / state["exp_avg_sq"].sqrt().add(group["eps"])
                if group["weight_decay"]:
                    update.add_(p, alpha=group["weight_decay"])
                p.add_(update, alpha=-size)
