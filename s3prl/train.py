"""The one training loop (downstream tasks and pre-training): build -> loop -> evaluate -> save.

``train()`` reads top to bottom. Each optimizer step accumulates ``gradient_accumulate_steps`` batches,
clips, steps and schedules; every ``eval_step`` steps it evaluates and keeps the best checkpoint; every
``save_step`` steps it saves ``states-<step>.ckpt``. A checkpoint holds everything a run depends on
(weights, optimizer, scheduler, gradient scaler, step, epoch, position in the epoch, random states), so
a run resumed from it ends with exactly the weights of an uninterrupted one. SIGINT/SIGTERM (Ctrl-C,
a cluster's time limit) make the loop save at the next step boundary and stop.

A model returns either a mean loss (each micro-batch then weighs ``1 / gradient_accumulate_steps``) or a pair
``(summed loss, sample size)``: the step's gradient is then the sum over its micro-batches (and processes)
divided by their total sample size, as fairseq's trainer normalises, so micro-batches with more masked frames
or tokens weigh more.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

OPTIMIZERS = {"Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW, "SGD": torch.optim.SGD}


@dataclass
class TrainConfig:
    """Hyper-parameters of the loop (the original's ``runner`` and ``optimizer`` sections)."""

    total_steps: int = 200000
    optimizer: str = "Adam"  # Adam | AdamW | SGD
    lr: float = 1e-4
    weight_decay: float | None = None  # None: the optimizer's own default
    scheduler: str = "constant"  # constant | linear (warm up, then decay linearly to 0) | sqrt_decay (ST)
    warmup_steps: int = 0
    gradient_accumulate_steps: int = 1
    gradient_clipping: float = 1.0
    log_step: int = 100
    eval_step: int = 5000
    save_step: int = 1000
    max_keep: int = 1
    precision: str = "auto"  # auto (bf16 on a GPU that has it, else fp32) | fp32 | bf16 | fp16
    seed: int = 1337

    def __post_init__(self):
        check_train_config(self)


SCHEDULERS = ("constant", "linear", "sqrt_decay")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def check_train_config(cfg: TrainConfig) -> None:
    """Every value by type and range, so that a typo fails now with its name, not as a crash hours later."""

    def fail(key: str, rule: str) -> None:
        raise ValueError(f"train.{key} = {getattr(cfg, key)!r}: {rule} (set it with -o train.{key}=VALUE or in "
                         f"the config file)")

    def integer(key: str, minimum: int) -> None:
        value = getattr(cfg, key)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
            setattr(cfg, key, value)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            fail(key, f"must be an integer >= {minimum}")

    def number(key: str, minimum: float, inclusive: bool, optional: bool = False) -> None:
        value = getattr(cfg, key)
        if optional and value is None:
            return
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value < minimum or (value == minimum and not inclusive):
            fail(key, f"must be a finite number {'>=' if inclusive else '>'} {minimum:g}" + (" or null" if optional else ""))
        setattr(cfg, key, float(value))

    for key in ("total_steps", "gradient_accumulate_steps", "log_step", "eval_step", "save_step"):
        integer(key, 1)
    integer("warmup_steps", 0)
    integer("max_keep", 0)
    integer("seed", 0)
    number("lr", 0.0, inclusive=False)
    number("gradient_clipping", 0.0, inclusive=False)
    number("weight_decay", 0.0, inclusive=True, optional=True)
    if cfg.optimizer not in OPTIMIZERS:
        fail("optimizer", f"must be one of {', '.join(OPTIMIZERS)}")
    if cfg.scheduler not in SCHEDULERS:
        fail("scheduler", f"must be one of {', '.join(SCHEDULERS)}")
    if cfg.precision not in PRECISIONS:
        fail("precision", f"must be one of {', '.join(PRECISIONS)}")


@dataclass
class Selection:
    """How to pick the best checkpoint: ``metric`` of the first evaluated split."""

    metric: str
    higher_better: bool = True


def train(model: nn.Module, parts: dict[str, nn.Module], batches: Callable[[int, int], Iterable],
          evaluate: Callable[[str], dict], cfg: TrainConfig, expdir: str | os.PathLike, *,
          eval_splits: tuple[str, ...] = ("dev",), selection: Selection | None = None,
          extra: dict | None = None, resume: dict | None = None, stop_after: int | None = None,
          progress: bool = True, make_optimizer: Callable | None = None,
          on_save: Callable[[dict, list[str]], None] | None = None) -> dict:
    """Train ``model`` (``model(batch) -> scalar loss``; it may be a DDP wrapper) for ``cfg.total_steps`` steps.

    Args:
        parts: the modules whose weights go into checkpoints, by checkpoint key (e.g. ``{"Featurizer": ...,
            "Downstream": ...}``); they share their parameters with ``model``.
        batches: ``batches(epoch, start)`` iterates over this rank's batches of ``epoch`` from batch ``start``.
        evaluate: ``evaluate(split) -> {metric: value}``; called on rank 0 only.
        eval_splits: splits evaluated every ``eval_step``; the best ``selection.metric`` on the first one is
            saved as ``<split>-best.ckpt``.
        extra: more entries for every checkpoint (e.g. ``Config``, ``Args``).
        resume: a checkpoint written by this function: continue exactly where it stopped.
        stop_after: stop (with a checkpoint) after this many steps in this call, e.g. for time-limited jobs.
        make_optimizer: ``make_optimizer(params) -> optimizer`` instead of ``cfg.optimizer`` (e.g. a pre-training
            method's own optimizer with its schedule inside; ``cfg.scheduler`` still applies on top).
        on_save: ``on_save(checkpoint, names)`` after each save on rank 0 (e.g. to write another format too).
    Returns:
        ``{"step", "best", "stopped_early", "last_checkpoint"}``.
    """
    expdir = Path(expdir)
    leader = not dist.is_initialized() or dist.get_rank() == 0
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, cfg) if make_optimizer is None else make_optimizer(params)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(cfg))
    amp_dtype = autocast_dtype(cfg.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    state = {"step": 0, "epoch": 0, "position": 0, "best": None}
    if resume is not None:
        restore(resume, parts, optimizer, scheduler, scaler, state)
    elif leader:
        log(f"training config: {json.dumps(asdict(cfg))}", expdir)
    writer = make_writer(expdir) if leader else None
    stop = StopFlag()
    first_step, losses, sizes, micro, last_ckpt, halt = state["step"], [], [], 0, None, False
    bar = make_bar(cfg.total_steps, state["step"], leader and progress)
    started = time.perf_counter()
    meter = Throughput(state["step"])
    model.train()
    try:
        while state["step"] < cfg.total_steps and not halt:
            for batch in batches(state["epoch"], state["position"]):
                state["position"] += 1
                micro += 1
                loss, size = forward_backward(model, batch, scaler, amp_dtype, device, cfg,
                                              sync=micro == cfg.gradient_accumulate_steps)
                losses.append(loss)
                sizes.append(size)
                meter.items += len(getattr(batch, "uids", ()) or ())
                if micro < cfg.gradient_accumulate_steps:
                    continue
                micro = 0
                if sizes[0] is not None:
                    divide_by_sample_size(params, sum(sizes), device)
                sizes = []
                grad_norm = optimizer_step(params, optimizer, scaler, cfg)
                scheduler.step()
                state["step"] += 1
                step = state["step"]
                bar.update(1)
                if leader and not math.isfinite(grad_norm):
                    log(f"step {step}: gradient norm {grad_norm}, update skipped", expdir)
                if leader and step % cfg.log_step == 0:
                    log_training(writer, bar, step, losses, grad_norm, current_lr(optimizer, scheduler), meter, expdir)
                    losses = []
                save_names = []
                if step % cfg.eval_step == 0 and eval_splits and leader:
                    save_names += run_evaluation(evaluate, eval_splits, selection, state, writer, step, expdir)
                    model.train()
                halt = stop.requested(device) or (stop_after is not None and step - first_step >= stop_after)
                if step % cfg.save_step == 0 or step == cfg.total_steps or halt:
                    save_names.append(f"states-{step}.ckpt")
                if leader and save_names:
                    ckpt = make_checkpoint(parts, optimizer, scheduler, scaler, state, cfg, extra)
                    last_ckpt = save_checkpoint(ckpt, expdir, save_names, cfg.max_keep)
                    if on_save is not None:
                        on_save(ckpt, save_names)
                if halt or step >= cfg.total_steps:
                    break
            else:  # the epoch ran out: the next one starts at its first batch
                if state["position"] == 0:
                    raise RuntimeError("the training data gave no batch: is the training split empty?")
                state["epoch"] += 1
                state["position"] = 0
    finally:
        bar.close()
        stop.restore()
        if writer is not None:
            writer.close()
    if leader:
        log(f"stopped at step {state['step']} after {time.perf_counter() - started:.1f} s; best: {state['best']}", expdir)
    return {"step": state["step"], "best": state["best"], "stopped_early": state["step"] < cfg.total_steps,
            "last_checkpoint": last_ckpt}


def forward_backward(model, batch, scaler, amp_dtype, device, cfg: TrainConfig,
                     sync: bool) -> tuple[torch.Tensor, float | None]:
    """One micro-batch: loss under autocast, backward of its share of the accumulated gradient.
    Under DDP, gradients are all-reduced only on the last micro-batch of a step (``sync``).
    Returns the mean loss (a tensor: no device sync per batch) and the sample size (None for a mean-loss model)."""
    sync_ctx = nullcontext() if sync or not hasattr(model, "no_sync") else model.no_sync()
    with sync_ctx:
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            out = model(batch)
        if isinstance(out, tuple):  # (summed loss, sample size): normalised at the step, over all micro-batches
            loss_sum, size = out
            scaler.scale(loss_sum).backward()
            return loss_sum.detach() / max(float(size), 1.0), float(size)
        scaler.scale(out / cfg.gradient_accumulate_steps).backward()
    return out.detach(), None


def divide_by_sample_size(params, size: float, device: torch.device) -> None:
    """Gradients of summed losses -> gradient of the update's mean: divide by the sample size of every micro-batch
    of every process. DDP averages gradients over processes, hence the factor world size (as fairseq's trainer)."""
    world = 1
    if dist.is_initialized():
        total = torch.tensor([size], dtype=torch.float64, device=device)
        dist.all_reduce(total)
        size, world = float(total), dist.get_world_size()
    factor = world / (size or 1.0)
    for p in params:
        if p.grad is not None:
            p.grad.mul_(factor)


def build_optimizer(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {cfg.optimizer!r} is not one of {sorted(OPTIMIZERS)}")
    if not params:
        raise ValueError("nothing to train: no parameter requires a gradient")
    kwargs = {"lr": cfg.lr} if cfg.weight_decay is None else {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    return OPTIMIZERS[cfg.optimizer](params, **kwargs)


def schedule(cfg: TrainConfig) -> Callable[[int], float]:
    """Learning-rate factor per step: constant (the SUPERB default) or linear warm-up then linear decay (or the
    original speech-translation ``sqrt_decay``)."""
    if cfg.scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler {cfg.scheduler!r} is not one of {list(SCHEDULERS)}")
    warmup, total, linear = cfg.warmup_steps, cfg.total_steps, cfg.scheduler == "linear"

    def factor(step: int) -> float:
        if cfg.scheduler == "sqrt_decay":  # the original's sqrt_decay_schedule_with_warmup (speech translation),
            # as written: step / warmup, then 1 / sqrt(step) (a drop by sqrt(warmup) when the warm-up ends)
            return step / max(1, warmup) if step < warmup else 1.0 / math.sqrt(max(step, warmup))
        if step < warmup:
            return (step + 1) / warmup
        if linear:
            return max(0.0, (total - step) / max(1, total - warmup))
        return 1.0

    return factor


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (None: full precision). Mixed precision is used on GPUs only."""
    choices = {"auto", "fp32", "bf16", "fp16"}
    if precision not in choices:
        raise ValueError(f"precision {precision!r} is not one of {sorted(choices)}")
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if precision == "bf16" else torch.float16


def current_lr(optimizer, scheduler) -> float:
    """The learning rate the next update uses: the optimizer's own schedule when it has one (``make_optimizer``,
    e.g. fairseq's Adam with its warm-up and decay), else the scheduler's."""
    own = getattr(optimizer, "current_lr", None)
    return float(own()) if callable(own) else scheduler.get_last_lr()[0]


def optimizer_step(params, optimizer, scaler, cfg: TrainConfig) -> float:
    """Unscale, clip, step (skipped when the gradient is not finite), zero. Returns the gradient norm."""
    scaler.unscale_(optimizer)
    grad_norm = float(nn.utils.clip_grad_norm_(params, cfg.gradient_clipping))
    if math.isfinite(grad_norm) or scaler.is_enabled():
        scaler.step(optimizer)  # with fp16 the scaler itself skips non-finite steps
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return grad_norm


def run_evaluation(evaluate, splits, selection: Selection | None, state: dict, writer, step: int,
                   expdir: Path) -> list[str]:
    """Evaluate every split (without touching the training random state); returns checkpoint names to save."""
    save_names = []
    for i, split in enumerate(splits):
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []  # this rank's GPU only
        with torch.random.fork_rng(devices=devices):
            metrics = evaluate(split)
        log(f"step {step} {split}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()), expdir)
        append_history(expdir, {"step": step, "split": split, **metrics})
        for key, value in metrics.items():
            writer.add_scalar(f"{split}/{key}", value, step)
        if i == 0 and selection is not None:
            score = metrics[selection.metric]
            better = state["best"] is None or (score > state["best"] if selection.higher_better else score < state["best"])
            if better:
                state["best"] = score
                save_names.append(f"{split}-best.ckpt")
    return save_names


class Throughput:
    """Steps and training items (utterances) per second since the last log line."""

    def __init__(self, step: int):
        self.step, self.items, self.time = step, 0, time.perf_counter()

    def read(self, step: int) -> tuple[float, float]:
        now = time.perf_counter()
        elapsed = max(now - self.time, 1e-9)
        rates = ((step - self.step) / elapsed, self.items / elapsed)
        self.step, self.items, self.time = step, 0, now
        return rates


def log_training(writer, bar, step: int, losses: list[torch.Tensor], grad_norm: float, lr: float,
                 meter: Throughput, expdir: Path) -> None:
    """TensorBoard scalars, the bar's postfix, a line in ``log.txt`` and a record in ``history.jsonl``."""
    loss = float(torch.stack(losses).float().mean()) if losses else float("nan")
    steps_per_s, items_per_s = meter.read(step)
    writer.add_scalar("train/loss", loss, step)
    writer.add_scalar("train/grad_norm", grad_norm, step)
    writer.add_scalar("train/lr", lr, step)
    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
    rate = f"{steps_per_s:.2f} steps/s" + (f", {items_per_s:.1f} utt/s" if items_per_s else "")
    log(f"step {step}: train loss {loss:.4f}, lr {lr:.3e}, grad norm {grad_norm:.3f}, {rate}", expdir, echo=False)
    append_history(expdir, {"step": step, "split": "train", "loss": loss, "lr": lr, "grad_norm": grad_norm,
                            "steps_per_second": steps_per_s})


def append_history(expdir: Path, record: dict) -> None:
    """One JSON line per log / evaluation: what the loss and metric curves are drawn from."""
    expdir.mkdir(parents=True, exist_ok=True)
    with open(expdir / "history.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


# ------------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------------


def random_states() -> dict:
    """Every random state a step may use, as plain types and tensors (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"python": random.getstate(), "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_random_states(states: dict) -> None:
    random.setstate(states["python"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def make_checkpoint(parts, optimizer, scheduler, scaler, state, cfg: TrainConfig, extra: dict | None) -> dict:
    """The original's downstream checkpoint keys (weights per part, ``Optimizer``, ``Step``, ``Epoch``,
    ``Config``, ...) plus what an exact resume needs (``Position``, ``Rng``, ``Scheduler``, ``GradScaler``)."""
    ckpt = {name: module.state_dict() for name, module in parts.items()}
    ckpt.update({"Optimizer": optimizer.state_dict(), "Scheduler": scheduler.state_dict(),
                 "GradScaler": scaler.state_dict(), "Step": state["step"], "Epoch": state["epoch"],
                 "Position": state["position"], "BestScore": state["best"], "Rng": random_states(),
                 "TrainConfig": asdict(cfg), "WorldSize": dist.get_world_size() if dist.is_initialized() else 1})
    ckpt.update(extra or {})
    return ckpt


def save_checkpoint(ckpt: dict, expdir: Path, names: list[str], max_keep: int) -> Path:
    """Write ``ckpt`` under every name (atomically), then drop all but the ``max_keep`` newest states."""
    expdir.mkdir(parents=True, exist_ok=True)
    tmp = expdir / f".ckpt.tmp{os.getpid()}"
    torch.save(ckpt, tmp)
    for name in names[:-1]:
        copy = expdir / f".ckpt.copy{os.getpid()}"
        copy.write_bytes(tmp.read_bytes())
        os.replace(copy, expdir / name)
    os.replace(tmp, expdir / names[-1])
    states = sorted((p for p in expdir.glob("states-*.ckpt") if p.stem.split("-")[1].isdigit()),  # not states-epoch-N
                    key=lambda p: int(p.stem.split("-")[1]))
    for old in states[:-max_keep] if max_keep > 0 else []:
        old.unlink(missing_ok=True)
    return expdir / names[-1]


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A checkpoint written by :func:`save_checkpoint` (safe loading: tensors and plain types only)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {os.fspath(path)!r}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - truncated, foreign or unsafe files all end here
        raise ValueError(f"{os.fspath(path)} is not a readable training checkpoint (truncated, not written by "
                         "torch.save, or holding objects other than tensors and plain types): give a states-*.ckpt "
                         "or *-best.ckpt written by s3prl, or the experiment folder") from None
    if not isinstance(ckpt, dict):
        raise ValueError(f"{os.fspath(path)} is not a training checkpoint written by s3prl (not a dict)")
    return ckpt


def restore(ckpt: dict, parts, optimizer, scheduler, scaler, state: dict) -> None:
    """Put every piece of a run's state back from ``ckpt``."""
    for name, module in parts.items():
        module.load_state_dict(ckpt[name])
    optimizer.load_state_dict(ckpt["Optimizer"])
    scheduler.load_state_dict(ckpt["Scheduler"])
    scaler.load_state_dict(ckpt["GradScaler"])
    state.update(step=ckpt["Step"], epoch=ckpt["Epoch"], position=ckpt["Position"], best=ckpt["BestScore"])
    set_random_states(ckpt["Rng"])
    log(f"resumed at step {state['step']} (epoch {state['epoch']}, batch {state['position']})")


# ------------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------------


def log(message: str, expdir: Path | None = None, echo: bool = True) -> None:
    """Print above the progress bar (flushed; ``echo=False``: when the bar itself shows it on a terminal),
    and append to ``expdir/log.txt``."""
    from tqdm import tqdm

    from .progress import on_terminal

    if echo or not on_terminal():
        tqdm.write(message)
        sys.stdout.flush()
    if expdir is not None:
        expdir.mkdir(parents=True, exist_ok=True)
        with open(expdir / "log.txt", "a") as f:
            f.write(message + "\n")


def make_writer(expdir: Path):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(expdir / "tensorboard"))


def make_bar(total: int, done: int, enabled: bool):
    """A tqdm bar on a terminal; in a log file, a plain line every S3PRL_PROGRESS_SECONDS (no ``\\r``)."""
    from .progress import progress

    return progress(total=total, initial=done, desc="train", unit="step", enabled=enabled)


class StopFlag:
    """Turns SIGINT/SIGTERM into a request to stop at the next step boundary (agreed on by all ranks)."""

    def __init__(self):
        self.flag = False
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self.handle)

    def handle(self, signum, frame) -> None:
        if self.flag:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.flag = True
        print(f"\nsignal {signum}: saving a checkpoint at the end of this step, then stopping")

    def requested(self, device: torch.device) -> bool:
        if not dist.is_initialized():
            return self.flag
        flag = torch.tensor([float(self.flag)], device=device if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
