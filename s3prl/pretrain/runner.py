"""``s3prl pretrain``: configuration -> data and cached features -> objective -> :func:`s3prl.train.train`.

Checkpoints (``states-<step>.ckpt``, and ``states-epoch-<n>.ckpt`` at the end of an epoch-based run) hold
what the original's pre-trainer wrote for the method (APC series: ``config``, ``model``, ``Upstream_Config``;
Mockingjay / TERA / Audio ALBERT: ``Transformer``, ``SpecHead``, ``Upstream_Config``; DistilHuBERT: ``Distiller``
and ``Config`` = the model configuration), the runner configuration (``Config``; DistilHuBERT: ``Runner_Config``),
the method (``Method``) and what an exact resume needs (optimizer, scheduler, step, epoch,
position, random states).
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import yaml

from .. import train as trainer
from . import config as config_io
from . import methods
from .data import FeatureCache, PretrainData, length_filter, list_files, make_buckets

METHODS = tuple(methods.METHODS)


def expdir_of(args) -> Path:
    if args.expdir:
        return Path(args.expdir)
    if not args.expname:
        raise ValueError("name the experiment with -n NAME (or give its folder with -p EXPDIR)")
    return Path("result") / "pretrain" / args.expname


def latest_states(folder: Path) -> Path | None:
    states = sorted(folder.glob("states-[0-9]*.ckpt"), key=lambda p: int(p.stem.split("-")[1]))
    return states[-1] if states else None


def find_resume(args, expdir: Path) -> tuple[dict | None, Path]:
    """``-e`` (a checkpoint, or a folder: its latest), or with ``-a`` the latest checkpoint of ``expdir``."""
    if args.past_exp:
        path = Path(args.past_exp)
        if path.is_dir():
            found = latest_states(path)
            if found is None:
                raise ValueError(f"-e {path}: no states-*.ckpt in this folder")
            path = found
        return trainer.load_checkpoint(path) | {"_path": str(path)}, path.parent
    found = latest_states(expdir) if expdir.is_dir() else None
    if found is None:
        return None, expdir
    if not args.auto_resume:
        raise ValueError(f"{expdir} already holds checkpoints: pass -a to resume it, or choose another -n")
    return trainer.load_checkpoint(found) | {"_path": str(found)}, expdir


def check_resumable(ckpt: dict, method: str | None) -> str:
    """The checkpoint's method; refuses a checkpoint of another method or one not written by this command."""
    path = ckpt["_path"]
    if "Method" not in ckpt or "TrainConfig" not in ckpt:
        raise ValueError(f"{path} was not written by `s3prl pretrain` (no Method / TrainConfig): it cannot be "
                         "resumed; start a new run")
    if method and ckpt["Method"] != method:
        raise ValueError(f"{path} is a {ckpt['Method']} pre-training checkpoint, not {method}: resume it with "
                         f"-u {ckpt['Method']} or start a new experiment for {method}")
    return ckpt["Method"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup_distributed(requested: str | None) -> tuple[int, int, torch.device, bool]:
    """(rank, world size, device, whether we started the process group): under torchrun, gloo on CPU and nccl
    on GPUs, one GPU per process."""
    world, local = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_RANK", "0"))
    if requested:
        device = torch.device(requested)
    else:
        device = torch.device(f"cuda:{local}" if world > 1 else "cuda") if torch.cuda.is_available() else \
            torch.device("cpu")
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
    started = world > 1 and not dist.is_initialized()
    if started:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank() if dist.is_initialized() else 0), world, device, started


def prepare_data(method: str, model_cfg: dict, runner_cfg: dict, expdir: Path, seed: int,
                 cache_dir: str | None, rank: int = 0, world: int = 1, teacher: nn.Module | None = None
                 ) -> PretrainData:
    datarc = runner_cfg["pretrain_expert"]["datarc"]
    items, problems = list_files(datarc)
    kept = length_filter(items, int(datarc["max_timestep"]))
    filtered = len(items) - len(kept)
    extract, min_frames = methods.extractor(method, model_cfg, teacher)
    cache = FeatureCache(extract, methods.audio_section(method, model_cfg, teacher),
                         Path(cache_dir) if cache_dir else expdir / "features")
    if world > 1 and rank > 0:
        dist.barrier()  # rank 0 computes the features first; the others then find them in the cache
    kept, bad, computed = cache.prepare(kept, min_frames)
    if world > 1 and rank == 0:
        dist.barrier()
    problems += bad
    say = trainer.log if rank == 0 else (lambda *a, **k: None)
    for line in problems[:10]:
        say(f"skipped {line}", expdir)
    say(f"data: {len(items) + len(problems) - len(bad)} files, {len(problems)} skipped (unreadable or too "
                f"short), {filtered} outside max_timestep {datarc['max_timestep']}, {len(kept)} used; features: "
                f"{computed} computed, {len(kept) - computed} read from {cache.folder}", expdir)
    task = model_cfg["task"]
    buckets = make_buckets(kept, int(datarc["train_batch_size"]), int(task["sequence_length"]))
    if not buckets:
        raise ValueError(f"no training batch: {len(kept)} usable file(s) for train_batch_size "
                         f"{datarc['train_batch_size']} (a last batch of one file is dropped, as the original)")
    data = PretrainData(buckets, cache, methods.crop_frames(method, model_cfg), seed,
                        methods.collate(method, model_cfg), rank, world)
    if len(data) == 0:
        raise ValueError(f"{len(buckets)} batch(es) cannot be shared by {world} processes: use fewer processes or "
                         "more data")
    return data


def train_config(runner_cfg: dict, n_buckets: int, seed: int) -> trainer.TrainConfig:
    run, opt = runner_cfg["runner"], runner_cfg["optimizer"]
    accum = int(run["gradient_accumulate_steps"])
    total = int(run["n_epochs"] * n_buckets / accum) if run["n_epochs"] > 0 else int(run["total_steps"])
    if total < 1:
        raise ValueError(f"runner: {run['n_epochs']} epoch(s) of {n_buckets} batches with gradient_accumulate_steps "
                         f"{accum} is less than one step; set runner.total_steps or more epochs")
    name = "AdamW" if opt["name"] == "AdamW_with_schedule" else opt["name"]  # the former: methods.optimizer_factory
    return trainer.TrainConfig(total_steps=total, optimizer=name, lr=float(opt["lr"]),
                               gradient_accumulate_steps=accum, gradient_clipping=float(run["gradient_clipping"]),
                               log_step=int(run["log_step"]), save_step=int(run["save_step"]),
                               max_keep=int(run["max_keep"]), eval_step=10**12,
                               precision="fp16" if run.get("fp16") else "fp32", seed=seed)


def cmd_pretrain(args) -> int:
    expdir = expdir_of(args) if not args.past_exp else None
    resume, expdir = find_resume(args, expdir)
    method = check_resumable(resume, args.upstream) if resume is not None else args.upstream
    if method is None:
        raise ValueError(f"nothing to resume in {expdir}: start the run with -u METHOD ({', '.join(METHODS)})")
    if method not in methods.METHODS:
        raise ValueError(f"-u {method!r}: available methods: {', '.join(METHODS)}")
    if resume is not None:
        model_cfg, runner_cfg = resume["Upstream_Config"], methods.runner_config(resume)
        if args.config_model or args.config_runner:
            raise ValueError("-g / -c cannot change a resumed run; use -o for a new total_steps")
        seed = int(resume["TrainConfig"]["seed"])
    else:
        model_cfg, runner_cfg = config_io.load(method, args.config_model, args.config_runner)
        seed = args.seed
    config_io.apply_overrides(args.override, model_cfg, runner_cfg)
    config_io.validate(method, model_cfg, runner_cfg)
    rank, world, device, started = setup_distributed(args.device)
    try:
        return run(args, method, model_cfg, runner_cfg, seed, resume, expdir, rank, world, device)
    finally:
        if started:
            dist.destroy_process_group()


def run(args, method: str, model_cfg: dict, runner_cfg: dict, seed: int, resume: dict | None, expdir: Path,
        rank: int, world: int, device: torch.device) -> int:
    if rank == 0:
        expdir.mkdir(parents=True, exist_ok=True)
        for name, cfg in (("config_model.yaml", model_cfg), ("config_runner.yaml", runner_cfg)):
            (expdir / name).write_text(yaml.safe_dump(cfg, sort_keys=False))
    seed_everything(seed)  # the same initial weights on every process
    teacher = methods.teacher(method, model_cfg, device)  # DistilHuBERT: frozen, fills the feature cache
    data = prepare_data(method, model_cfg, runner_cfg, expdir, seed, args.cache_dir, rank, world, teacher)
    cfg = train_config(runner_cfg, len(data), seed)
    objective = methods.objective(method, model_cfg, teacher).to(device)
    del teacher  # kept by the objective only when it runs in the loop (teacher.cache: false)
    model = objective if world == 1 else nn.parallel.DistributedDataParallel(
        objective, device_ids=[device.index] if device.type == "cuda" else None)
    if resume is None and rank == 0:
        n_params = sum(p.numel() for p in objective.parameters())
        trainer.log(f"{method}: {n_params} parameters, {cfg.total_steps} steps of {len(data)} batches per epoch "
                    f"(x{cfg.gradient_accumulate_steps} accumulated)", expdir)
    make_optimizer = methods.optimizer_factory(method, objective, runner_cfg, cfg.total_steps)
    if make_optimizer is not None and resume is None and rank == 0:
        opt = runner_cfg["optimizer"]
        trainer.log(f"optimizer: AdamW_with_schedule, lr {opt['lr']}, warm-up {opt.get('warmup_proportion', 0.07)} "
                    f"of {cfg.total_steps} steps (the schedule is inside the optimizer: the lr logged is its base)",
                    expdir)
    extra = {"Config": runner_cfg, **methods.extra_states(method, model_cfg, runner_cfg), "Method": method,
             "Args": {"upstream": method, "expdir": str(expdir), "seed": seed}}
    result = trainer.train(model, methods.parts(method, objective), data.batches, lambda split: {}, cfg,
                           expdir, eval_splits=(), extra=extra, resume=resume, stop_after=args.stop_after,
                           progress=not args.quiet, make_optimizer=make_optimizer)
    if rank > 0:
        return 0
    n_epochs = runner_cfg["runner"]["n_epochs"]
    if not result["stopped_early"] and n_epochs > 0 and result["last_checkpoint"] is not None:
        shutil.copyfile(result["last_checkpoint"], expdir / f"states-epoch-{n_epochs}.ckpt")
    trainer.log(f"checkpoint: {result['last_checkpoint']} (load it with "
                f"S3PRLUpstream('{methods.METHODS[method].entry}', path_or_url=...))", expdir)
    return 0
