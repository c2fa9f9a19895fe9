"""fairseq's ``adam`` optimizer and ``polynomial_decay`` / ``cosine`` learning rates, for ``s3prl wav2vec2 train``."""

from __future__ import annotations

import math

import torch


def polynomial_decay(lr: float, warmup: int, total: float, end: float = 0.0, power: float = 1.0):
    """fairseq's ``polynomial_decay`` learning rate of the update that follows ``updates`` finished ones:
    ``lr / warmup`` before the first, ``lr * updates / warmup`` during warm-up, then
    ``(lr - end) * (1 - (updates - warmup) / (total - warmup)) ** power + end``, ``end`` from ``total`` on."""

    def rate(updates: int) -> float:
        if updates == 0:
            return lr / warmup if warmup > 0 else lr
        if warmup > 0 and updates <= warmup:
            return lr * updates / warmup
        if updates >= total:
            return end
        remaining = 1 - (updates - warmup) / (total - warmup)
        return (lr - end) * remaining ** power + end

    return rate


def cosine(lr: float, min_lr: float, warmup: int, warmup_init: float, period: float, t_mult: float = 1.0,
           shrink: float = 0.1):
    """fairseq's ``cosine`` learning rate of the update that follows ``updates`` finished ones (the wav2vec 1.0 /
    vq-wav2vec recipes): linear from ``warmup_init`` (``< 0``: ``min_lr``) by ``(lr - warmup_init) / warmup`` per
    update while ``updates < warmup``; then, with ``u = updates - warmup``, cycle ``i`` (periods of ``period``
    updates, each ``t_mult`` times longer than the one before) at position ``t`` of ``T`` updates gives
    ``m + (M - m) * (1 + cos(pi * t / T)) / 2`` with ``M = lr * shrink**i``, ``m = min_lr * shrink**i``."""
    warmup_init = min_lr if warmup_init < 0 else warmup_init
    step = (lr - warmup_init) / warmup if warmup > 0 else 1.0

    def rate(updates: int) -> float:
        if updates < warmup:
            return warmup_init + updates * step
        u = updates - warmup
        if t_mult != 1:
            i = math.floor(math.log(1 - u / period * (1 - t_mult), t_mult))
            length = t_mult ** i * period
            t = u - (1 - t_mult ** i) / (1 - t_mult) * period
        else:
            i = math.floor(u / period)
            length, t = period, u - period * i
        scale = shrink ** i
        low, high = min_lr * scale, lr * scale
        return low + 0.5 * (high - low) * (1 + math.cos(math.pi * t / length))

    return rate


class FairseqAdam(torch.optim.Optimizer):
    """Adam as fairseq's ``adam`` optimizer steps: ``step = lr * sqrt(1 - b2^t) / (1 - b1^t)``, denominator
    ``sqrt(v) + eps``, decoupled weight decay ``p -= wd * lr * p`` before the update. The learning rate of each
    update comes from ``rate(finished updates)`` (kept in the param group, so it is checkpointed)."""

    def __init__(self, params, lr: float, betas, eps: float, weight_decay: float, rate):
        super().__init__(params, {"lr": lr, "peak_lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "updates": 0})
        self.rate = rate

    def current_lr(self) -> float:
        return self.rate(self.param_groups[0]["updates"])

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr = self.rate(group["updates"])
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                half = p.dtype in (torch.float16, torch.bfloat16)
                grad = p.grad.float() if half else p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32 if half else p.dtype)
                    state["exp_avg_sq"] = torch.zeros_like(state["exp_avg"])
                state["step"] += 1
                t = state["step"]
                state["exp_avg"].mul_(beta1).add_(grad, alpha=1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = state["exp_avg_sq"].sqrt().add_(group["eps"])
                size = lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
                if group["weight_decay"]:
                    p.add_(p, alpha=-group["weight_decay"] * lr)
                p.addcdiv_(state["exp_avg"], denom, value=-size)
            group["updates"] += 1
