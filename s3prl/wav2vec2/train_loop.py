"""What the three fairseq-style training commands share around the one loop (:func:`s3prl.train.train`):
wav2vec 2.0 pre-training (``train.py``), wav2vec 1.0 / vq-wav2vec pre-training (``train_wav2vec1.py``) and CTC
fine-tuning (``train_finetune.py``). Processes and device, the manifest splits, update counts, the loop's
config, the DDP wrapper and the fairseq checkpoint files written at each save.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from .manifest import RecipeError
from .train_checkpoint import atomic_save


def choose_device(args) -> torch.device:
    if args.device:
        return torch.device(args.device)
    world, local = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_RANK", "0"))
    if args.cpu or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device(f"cuda:{local}" if world > 1 else "cuda")


def start(args) -> tuple[str, int, int, torch.device, bool]:
    """Join the torchrun processes (if any) and seed: ``(precision, rank, world, device, started)``."""
    from ..pretrain.runner import seed_everything, setup_distributed

    precision = "fp16" if args.fp16 else "bf16" if args.bf16 else "fp32"
    rank, world, device, started = setup_distributed(str(choose_device(args)))
    if precision != "fp32" and device.type != "cuda" and rank == 0:
        print(f"note: --{precision} ignored on the CPU: training in fp32", file=sys.stderr)
    seed_everything(args.seed)
    return precision, rank, world, device, started


def load_splits(make: Callable, args, rank: int, world: int):
    """``make(subset, skip_invalid=..., **batching)`` -> the training split (this rank's share) and the validation
    split (None when disabled or absent), with fairseq's batching flags."""
    common = dict(max_tokens=args.max_tokens, max_sentences=args.batch_size,
                  multiple=args.required_batch_size_multiple, max_sample=args.max_sample_size,
                  min_sample=args.min_sample_size, normalize=args.normalize, seed=args.seed)
    train_data = make(args.train_subset, skip_invalid=False, rank=rank, world=world, **common)
    if len(train_data.batches) < world:
        raise RecipeError(f"{len(train_data.batches)} training batch(es) cannot be shared by {world} processes")
    valid_data = None
    if not args.disable_validation and (Path(args.data) / f"{args.valid_subset}.tsv").is_file():
        valid_data = make(args.valid_subset, skip_invalid=args.skip_invalid_size_inputs_valid_test, **common)
    return train_data, valid_data


def update_counts(args, train_data) -> tuple[int, int, int]:
    """``(updates per epoch, total updates, updates between saves)`` from --max-update / --max-epoch."""
    per_epoch = max(1, len(train_data.epoch_order(0)) // args.update_freq)
    total = args.max_update or per_epoch * args.max_epoch
    if args.max_update and args.max_epoch:
        total = min(total, per_epoch * args.max_epoch)
    return per_epoch, total, args.save_interval_updates or per_epoch


def loop_config(args, total: int, save_every: int, lr: float, precision: str):
    from .. import train as trainer

    return trainer.TrainConfig(total_steps=total, optimizer="Adam", lr=lr, gradient_accumulate_steps=args.update_freq,
                               gradient_clipping=args.clip_norm if args.clip_norm > 0 else 1e30,
                               log_step=args.log_interval, eval_step=args.validate_interval_updates or save_every,
                               save_step=save_every, max_keep=1, precision=precision, seed=args.seed)


def wrap(logged: nn.Module, world: int, device: torch.device) -> nn.Module:
    if world == 1:
        return logged
    return nn.parallel.DistributedDataParallel(logged, device_ids=[device.index] if device.type == "cuda" else None,
                                               find_unused_parameters=True)


def saved_args(args) -> dict:
    """The command's flags, for the loop's own checkpoints."""
    return {"Wav2Vec2TrainArgs": {k: v for k, v in vars(args).items()
                                  if isinstance(v, (str, int, float, bool, type(None)))}}


def write_fairseq_files(out: dict, args, names: list[str], step: int, epoch: int, per_epoch: int,
                        save_every: int, best: bool = True) -> None:
    """fairseq's files for one save: ``checkpoint_last.pt`` always, ``checkpoint_best.pt`` when the loop saved a
    new best (and ``best``), ``checkpoint<E>.pt`` at epoch ends or ``checkpoint_<E>_<U>.pt`` every
    --save-interval-updates (only the newest --keep-interval-updates kept)."""
    save_dir = Path(args.save_dir)
    targets = [save_dir / "checkpoint_last.pt"]
    if best and any(n.endswith("-best.ckpt") for n in names):
        targets.append(save_dir / "checkpoint_best.pt")
    if step % save_every == 0:
        if args.save_interval_updates:
            targets.append(save_dir / f"checkpoint_{epoch}_{step}.pt")
        elif not args.no_epoch_checkpoints:
            targets.append(save_dir / f"checkpoint{step // per_epoch}.pt")
    for path in targets[1:]:
        atomic_save(out, path)
    atomic_save(out, targets[0])  # last: a kill mid-save leaves the previous checkpoint_last.pt
    if args.keep_interval_updates > 0:
        kept = sorted(save_dir.glob("checkpoint_*_*.pt"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
        for old in kept[:-args.keep_interval_updates]:
            old.unlink(missing_ok=True)


def optimizer_factory(objective, lr: float, betas, eps: float, weight_decay: float, rate: Callable[[int], float]):
    """``(make_optimizer, ref)`` for the loop: fairseq's Adam on ``rate``, attached to the objective (which counts
    updates); ``ref`` receives the optimizer, for the training log's learning rate."""
    from .train_schedule import FairseqAdam

    ref: list = []

    def make_optimizer(params):
        opt = FairseqAdam(params, lr, betas, eps, weight_decay, rate)
        ref.append(opt)
        return objective.attach(opt)

    return make_optimizer, ref


def resume_or_describe(args, rank: int, load: Callable[[Path], dict], describe: Callable[[], str]) -> dict | None:
    """The loop state of ``SAVE_DIR/checkpoint_last.pt`` (re-running a command resumes it, as fairseq), else None
    after logging ``describe()`` (the data and model of a fresh run)."""
    from .. import train as trainer

    save_dir = Path(args.save_dir)
    last = save_dir / "checkpoint_last.pt"
    if last.is_file():
        resume = load(last)
        if rank == 0:
            trainer.log(f"resuming from {last} (update {resume['Step']})", save_dir)
        return resume
    if rank == 0:
        trainer.log(describe(), save_dir)
    return None
