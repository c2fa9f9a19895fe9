"""The SUPERB runner: ``s3prl downstream train|evaluate -u UPSTREAM -d TASK -n EXPNAME``.

It builds an upstream (frozen by default), a ``Featurizer`` (softmax-weighted sum of all hidden states,
or one layer with ``-l``) and the task's head, and hands them to the one loop in ``s3prl.train``. A frozen
upstream's hidden states are computed once into the feature cache (``s3prl.downstream.cache``) and read
from there every epoch and every later run. After training, the best checkpoint on dev (for ASV: every
saved checkpoint, as the original) is tested; the experiment folder receives ``results.json``,
``results.md``, ``layer_weights.png``, ``<split>_predict.txt``, TensorBoard logs and the checkpoints.

Multi-GPU / multi-machine: run the same command under ``torchrun``; each rank trains on its shard of
the batches (DDP), rank 0 evaluates and saves.
"""

from __future__ import annotations

import copy
import glob
import json
import os
import random
import shutil
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import yaml

from .. import train as trainer
from ..nn import Featurizer, S3PRLUpstream
from . import tasks
from .config import (UpstreamSpec, build_config, layer_selection, merge, parse_overrides, spec_from_args,
                     task_of, validate)
from .cache import CachedDataset, FeatureCache, cache_key, file_digest
from .data import (AudioDataset, Batch, DurationBatchSampler, audio_duration, class_balanced_weights, collate,
                   conversion_notice, read_headers)


def build_upstream(spec: UpstreamSpec, device) -> tuple[S3PRLUpstream, Featurizer]:
    """The upstream (frozen unless ``-f``) and the Featurizer over the selected hidden states."""
    extra = dict(spec.extra_conf or {})
    if spec.feature_selection not in ("hidden_states", "last_hidden_state") and \
            not spec.feature_selection.startswith("hidden_state_"):
        extra["feature_selection"] = spec.feature_selection  # a family's own selection (e.g. fairseq_layers)
    upstream = S3PRLUpstream(spec.name, path_or_url=spec.ckpt, extra_conf=extra).to(device)
    if not spec.trainable:
        upstream.eval().requires_grad_(False)
    featurizer = Featurizer(upstream, layer_selection(spec, upstream.num_layers), normalize=spec.normalize)
    return upstream, featurizer.to(device)


def upstream_identity(spec: UpstreamSpec, cache_root: Path) -> dict:
    """What the cache key needs to know about the upstream: name, options and the checkpoint's content hash."""
    from .. import __version__, registry
    from ..nn.upstream import resolve_source

    canonical, entry = registry.resolve(spec.name)
    source = resolve_source(canonical, entry, spec.ckpt, refresh=False)
    return {"name": canonical, "extra_conf": spec.extra_conf or {}, "feature_selection": spec.feature_selection,
            "ckpt_sha256": file_digest(source, cache_root / "digests") if source else None, "s3prl": __version__}


# ------------------------------------------------------------------------------------------------
# the model: upstream -> featurizer -> task head
# ------------------------------------------------------------------------------------------------


class DownstreamModel(nn.Module):
    """``model(batch) -> loss``. Reads waveforms through the upstream, or cached hidden states directly."""

    def __init__(self, upstream: S3PRLUpstream | None, featurizer: Featurizer, downstream: tasks.Downstream,
                 objective: tasks.Objective, upstream_trainable: bool, num_layers: int):
        super().__init__()
        self.upstream = upstream
        self.featurizer = featurizer
        self.downstream = downstream
        self.objective = objective
        self.upstream_trainable = upstream_trainable
        self.num_layers = num_layers

    def train(self, mode: bool = True):
        super().train(mode)
        if self.upstream is not None and not self.upstream_trainable:
            self.upstream.eval()  # a frozen upstream never runs dropout or updates statistics
        return self

    def features(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        device = next(self.downstream.parameters()).device
        inputs, lengths = batch.inputs.to(device, non_blocking=True), batch.lengths.to(device)
        if self.upstream is None:  # cached: inputs are (B, T, L, D), one slot per selected layer
            all_hs, all_lens = [None] * self.num_layers, [None] * self.num_layers
            for j, layer in enumerate(self.featurizer.layer_selections):
                all_hs[layer], all_lens[layer] = inputs[:, :, j], lengths
        else:
            with torch.set_grad_enabled(self.upstream_trainable and self.training):
                all_hs, all_lens = self.upstream(inputs, lengths)
        return self.featurizer(all_hs, all_lens)

    def forward(self, batch: Batch) -> torch.Tensor:
        hs, hs_len = self.features(batch)
        labels = batch.labels.to(hs.device) if torch.is_tensor(batch.labels) else batch.labels
        return self.objective.loss(self.downstream, hs, hs_len, labels)

    def parts(self) -> dict[str, nn.Module]:
        """Checkpoint entries, as the original: the upstream only when it is trained."""
        parts = {"Featurizer": self.featurizer, "Downstream": self.downstream}
        if self.upstream_trainable:
            parts["Upstream"] = self.upstream
        return parts


# ------------------------------------------------------------------------------------------------
# data: datasets (cached or audio), loaders
# ------------------------------------------------------------------------------------------------


@dataclass
class Context:
    """Everything built once per run."""

    task: tasks.Task
    config: dict
    spec: UpstreamSpec
    device: torch.device
    rank: int
    world: int
    expdir: Path


def make_datasets(ctx: Context, splits: dict, upstream, featurizer, wanted: list[str]) -> dict:
    """A dataset per wanted split; for a frozen upstream with the cache on, ``CachedDataset``s."""
    data, seed = ctx.config["data"], ctx.config["train"]["seed"]
    use_cache = data["cache"] and not ctx.spec.trainable
    root = Path(data["cache_dir"] or default_cache_dir())
    identity = upstream_identity(ctx.spec, root) if use_cache else None
    headers = read_headers([ex for split in wanted for ex in splits[split]])  # durations and the notice
    if ctx.rank == 0:
        notice = conversion_notice(headers)
        if notice:
            trainer.log(notice, ctx.expdir)
    out = {}
    for split in wanted:
        examples = splits[split]
        crop = data["crop_seconds"] if split == "train" else None
        durations = [audio_duration(ex, headers) for ex in examples]
        if split == "train" and data["min_seconds"]:
            kept = [i for i, d in enumerate(durations) if d >= data["min_seconds"]]
            examples, durations = [examples[i] for i in kept], [durations[i] for i in kept]
        if not use_cache:
            out[split] = AudioDataset(examples, crop_seconds=crop, seed=seed, durations=durations, dither=data["dither"])
            continue
        layers = featurizer.layer_selections
        key = cache_key(identity, layers, data["cache_fp16"], examples, data["dither"])
        cache = FeatureCache(root / identity["name"] / key, examples, durations, layers,
                             featurizer.output_size, featurizer.downsample_rate, fp16=data["cache_fp16"],
                             dither=data["dither"])
        check_space(cache, root)
        # shared among the processes of a machine: correct whether or not machines share the folder
        local_rank, local_world = int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        cache.build(upstream, ctx.device, rank=local_rank, world_size=local_world, progress=ctx.rank == 0)
        out[split] = CachedDataset(cache, crop_seconds=crop, seed=seed)
    return out


def default_cache_dir() -> Path:
    from ..download import get_cache_dir

    return get_cache_dir() / "features"


def check_space(cache: FeatureCache, root: Path) -> None:
    """Refuse to start a cache that cannot fit on the disk (the error says what to do)."""
    import shutil

    if not cache.missing():
        return
    root.mkdir(parents=True, exist_ok=True)
    need, free = cache.estimated_bytes(), shutil.disk_usage(root).free
    if need > 0.9 * free:
        raise RuntimeError(f"the feature cache needs about {need / 2**30:.1f} GiB but {root} has "
                           f"{free / 2**30:.1f} GiB free: use -l to cache one layer, --cache-fp16, "
                           "--cache-dir elsewhere, or --no-cache")


def make_loader(dataset, data: dict, train: bool, seed: int, rank: int = 0, world: int = 1, sampler=None):
    """A DataLoader over duration-bucketed batches (or ``sampler``'s); its own generator leaves the global RNG
    untouched."""
    weights = class_balanced_weights([ex.label for ex in dataset.examples]) if train and data["balanced"] else None
    if sampler is None:
        sampler = DurationBatchSampler(dataset.durations, data["batch_seconds" if train else "eval_batch_seconds"],
                                       shuffle=train, seed=seed, weights=weights,
                                       num_replicas=world if train else 1, rank=rank if train else 0)
    # cached features are memory-mapped reads: worker processes would only add start-up and copying costs
    workers = data["num_workers"] if isinstance(dataset, AudioDataset) else 0
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=workers,
                                       generator=torch.Generator().manual_seed(seed),
                                       pin_memory=torch.cuda.is_available())


# ------------------------------------------------------------------------------------------------
# evaluation
# ------------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(model: DownstreamModel, loader, task: tasks.Task, trials, amp_dtype) -> tuple[dict, dict]:
    """Metrics of one split and the prediction per utterance."""
    model.eval()
    predictions = {}
    device_type = next(model.downstream.parameters()).device.type
    for batch in loader:
        with torch.autocast(device_type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            hs, hs_len = model.features(batch)
            outputs = task.objective.predict(model.downstream, hs, hs_len)
        predictions.update(zip(batch.uids, outputs))
    return task.objective.score(predictions, loader.dataset.examples, trials), predictions


def write_predictions(path: Path, predictions: dict, examples) -> None:
    """``uid prediction truth`` per line (classification), as the original's ``<split>_predict.txt``."""
    if not examples or torch.is_tensor(next(iter(predictions.values()), None)):
        return
    if hasattr(examples[0].label, "ids"):  # sequence labels (CTC tasks): their objective writes hyp / ref files
        return
    lines = [f"{ex.uid} {predictions[ex.uid]} {ex.label}\n" for ex in examples]
    path.write_text("".join(lines).replace(", ", ","))


# ------------------------------------------------------------------------------------------------
# one training run
# ------------------------------------------------------------------------------------------------


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare(ctx: Context, wanted: list[str], classes=None):
    """Build upstream, featurizer, head and the datasets; returns ``(model, datasets, trials, classes)``."""
    set_seed(ctx.config["train"]["seed"])
    upstream, featurizer = build_upstream(ctx.spec, ctx.device)
    ctx.config["task"] = ctx.task.bind(ctx.config["task"], featurizer.downsample_rate)
    splits = ctx.task.load(ctx.config["task"])
    missing = [s for s in wanted if s not in splits]
    if missing:
        raise ValueError(f"task {ctx.task.name} has no split {missing}; it has {sorted(splits)}")
    classes = classes if classes is not None else ctx.task.count_classes(splits["train"])
    downstream = ctx.task.build(featurizer.output_size, classes).to(ctx.device)
    ctx.task.configure(downstream, ctx.config["task"])
    datasets = make_datasets(ctx, splits, upstream, featurizer, wanted)
    cached = isinstance(next(iter(datasets.values())), CachedDataset)
    num_layers = upstream.num_layers
    model = DownstreamModel(None if cached else upstream, featurizer, downstream, ctx.task.objective,
                            ctx.spec.trainable, num_layers)
    trials = ctx.task.trials(ctx.config["task"], splits) if ctx.task.trials else None
    return model, datasets, trials, classes


def train_one(ctx: Context, resume: dict | None, stop_after: int | None) -> dict:
    """Train one experiment (one fold) and test its best checkpoint; returns the results record."""
    wanted = ["train", *ctx.task.eval_splits, "test"]
    model, datasets, trials, classes = prepare(ctx, list(dict.fromkeys(wanted)), resume["Classes"] if resume else None)
    data, train_cfg = ctx.config["data"], trainer.TrainConfig(**ctx.config["train"])
    own = ctx.task.batch_sampler(datasets["train"], ctx.config["task"], train_cfg.seed, ctx.rank, ctx.world)
    loader = make_loader(datasets["train"], data, True, train_cfg.seed, ctx.rank, ctx.world, sampler=own)
    evals = {s: make_loader(datasets[s], data, False, train_cfg.seed) for s in ctx.task.eval_splits}
    amp = trainer.autocast_dtype(train_cfg.precision, ctx.device)

    def batches(epoch: int, start: int):
        loader.batch_sampler.set_epoch(epoch, start)
        datasets["train"].epoch = epoch
        return iter(loader)

    def run_eval(split: str) -> dict:
        return evaluate(model, evals[split], ctx.task, trials, amp)[0]

    wrapped = wrap_ddp(model, ctx)
    extra = {"Config": ctx.config, "Upstream_Spec": asdict(ctx.spec), "Classes": classes}
    selection = trainer.Selection(ctx.task.select_metric, ctx.task.higher_better)
    result = trainer.train(wrapped, model.parts(), batches, run_eval, train_cfg, ctx.expdir,
                           eval_splits=ctx.task.eval_splits, selection=selection, extra=extra,
                           resume=resume, stop_after=stop_after, progress=True)
    if result["stopped_early"]:
        return {"stopped_early": True, "step": result["step"]}
    if ctx.rank != 0:  # rank 0 tests and reports
        return {}
    test_loader = make_loader(datasets["test"], data, False, train_cfg.seed)
    return test_checkpoints(ctx, model, test_loader, trials, amp)


def wrap_ddp(model: DownstreamModel, ctx: Context) -> nn.Module:
    if ctx.world == 1:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def test_checkpoints(ctx: Context, model: DownstreamModel, loader, trials, amp) -> dict:
    """Test the dev-best checkpoint, or (no dev split, e.g. ASV) every saved one and report the best."""
    if ctx.task.eval_splits and (ctx.expdir / f"{ctx.task.eval_splits[0]}-best.ckpt").is_file():
        names = [f"{ctx.task.eval_splits[0]}-best.ckpt"]
    elif ctx.task.eval_splits:  # never evaluated (total_steps < eval_step): the last state
        names = [sorted_states(ctx.expdir)[-1].name]
    else:
        names = [p.name for p in sorted_states(ctx.expdir)]
    tested, best = {}, None
    sign = 1.0 if ctx.task.higher_better else -1.0
    for name in names:
        ckpt = load_run(ctx.expdir / name)
        for key, module in model.parts().items():
            module.load_state_dict(ckpt[key])
        metrics, predictions = evaluate(model, loader, ctx.task, trials, amp)
        tested[name] = {"step": ckpt["Step"], **metrics}
        trainer.log(f"test with {name} (step {ckpt['Step']}): " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
                    ctx.expdir)
        if best is None or sign * metrics[ctx.task.metric] > sign * best[1][ctx.task.metric]:
            best = (name, metrics, predictions, {k: copy.deepcopy(m.state_dict()) for k, m in model.parts().items()})
    name, metrics, predictions, weights = best
    for key, module in model.parts().items():
        module.load_state_dict(weights[key])
    write_predictions(ctx.expdir / "test_predict.txt", predictions, loader.dataset.examples)
    if ctx.task.objective.write is not None:
        ctx.task.objective.write(ctx.expdir, "test", predictions, loader.dataset.examples)
    return record(ctx, model, "test", metrics, name, tested[name]["step"], tested)


def load_run(path: Path) -> dict:
    """A checkpoint of a downstream run (what resume and evaluate need), or an error naming the file."""
    ckpt = trainer.load_checkpoint(path)
    missing = [k for k in ("Step", "Config", "Upstream_Spec", "Classes") if k not in ckpt]
    if missing:
        raise ValueError(f"{path} is not a checkpoint of `s3prl downstream train` (no {', '.join(missing)})")
    return ckpt


def sorted_states(expdir: Path) -> list[Path]:
    if not expdir.is_dir():
        raise FileNotFoundError(f"no such checkpoint or experiment folder: {str(expdir)!r}")
    states = sorted(expdir.glob("states-*.ckpt"), key=lambda p: int(p.stem.split("-")[1]))
    if not states:
        raise FileNotFoundError(f"no states-*.ckpt in {expdir}")
    return states


def record(ctx: Context, model: DownstreamModel, split: str, metrics: dict, ckpt: str, step: int,
           tested: dict | None = None, name: str = "results") -> dict:
    """The results record: written as ``<name>.json`` / ``<name>.md``, and the layer-weight plot."""
    weights = model.featurizer.layer_weights.tolist()
    rec = {"task": ctx.task.name, "upstream": ctx.spec.name, "split": split, "metric": ctx.task.metric,
           "metrics": metrics, "checkpoint": ckpt, "step": step, "layers": model.featurizer.layer_selections,
           "layer_weights": weights, "tested": tested or {}, "task_options": ctx.config["task"]}
    save_results(ctx.expdir, rec, name)
    return rec


def save_results(expdir: Path, rec: dict, name: str = "results") -> None:
    from .report import plot_curves, plot_layer_weights, results_table

    (expdir / f"{name}.json").write_text(json.dumps(rec, indent=1, default=str))
    (expdir / f"{name}.md").write_text(results_table([rec]) + "\n")
    if (expdir / "history.jsonl").is_file():
        plot_curves(expdir / "history.jsonl", expdir / "curves.png", rec.get("metric"),
                    title=f"{rec['task']} / {rec['upstream']}: training loss and {rec.get('metric')}")
    if rec.get("layer_weights"):
        plot_layer_weights({rec["upstream"]: (rec["layers"], rec["layer_weights"])}, expdir / "layer_weights.png",
                           title=f"{rec['task']}: learned layer weights")


# ------------------------------------------------------------------------------------------------
# entry points
# ------------------------------------------------------------------------------------------------


def setup_distributed() -> tuple[int, int, torch.device]:
    """Rank, world size and device; under torchrun, the process group (gloo on CPU, nccl on GPUs)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}") if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        # long evaluations on rank 0 keep the others waiting in a collective: allow hours, not minutes
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(hours=4))
    return (dist.get_rank() if dist.is_initialized() else 0), world, device


def find_resume(args, expdir: Path) -> tuple[dict | None, Path]:
    """The checkpoint to resume from and the experiment folder: ``-e`` (a file, or a folder -> its latest
    states), or with ``-a`` the latest states in ``expdir`` if there is one."""
    if args.past_exp is not None:
        path = Path(args.past_exp)
        path = sorted_states(path)[-1] if path.is_dir() else path
        trainer.log(f"resuming from {path}")
        return load_run(path), path.parent
    return resume_in(expdir, args.auto_resume), expdir


def resume_in(folder: Path, auto_resume: bool) -> dict | None:
    if not list(folder.glob("states-*.ckpt")):
        return None
    if not auto_resume:
        raise ValueError(f"{folder} already holds checkpoints: pass -a to resume it, or choose another -n")
    path = sorted_states(folder)[-1]
    trainer.log(f"resuming from {path}")
    return load_run(path)


def expdir_of(args) -> Path:
    if args.expdir:
        return Path(args.expdir)
    if not args.expname:
        raise ValueError("name the experiment with -n EXPNAME (or give its folder with -p EXPDIR)")
    return Path("result") / "downstream" / args.expname


def cmd_train(args) -> int:
    rank, world, device = setup_distributed()
    resume, expdir = find_resume(args, None if args.past_exp else expdir_of(args))
    if resume is not None:
        check_same_run(args, resume, expdir)
        config = validate(merge(resume["Config"], parse_overrides(args.override), "-o"))
        spec = UpstreamSpec(**resume["Upstream_Spec"])
    else:
        if not args.upstream or not args.downstream:
            raise ValueError("train needs -u UPSTREAM and -d TASK (or -e / -a to resume)")
        config, spec = build_config(task_of(args), args), spec_from_args(args)
    task = tasks.get(config["task_name"])
    if getattr(task, "training_free", False):
        raise ValueError(f"task {task.name} has nothing to train (training-free): run `s3prl downstream evaluate "
                         f"-u UPSTREAM -d {task.name} -n NAME -t dev -l all -o task.root=...` instead")
    results = []
    for fold, fold_dir in runs_of(task, config, args, expdir, resume):
        fold_config = copy.deepcopy(config)
        if fold is not None:
            fold_config["task"]["fold"] = fold
        if fold_dir != expdir and args.auto_resume and (fold_dir / "results.json").is_file():
            results.append(json.loads((fold_dir / "results.json").read_text()))  # a finished fold
            continue
        fold_resume = resume if fold_dir == expdir else resume_in(fold_dir, args.auto_resume)
        created = not fold_dir.exists()
        if rank == 0:
            fold_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(fold_dir)
            (fold_dir / "config.yaml").write_text(yaml.safe_dump({**fold_config, "upstream": asdict(spec)}))
        ctx = Context(task, fold_config, spec, device, rank, world, fold_dir)
        try:
            results.append(train_one(ctx, fold_resume, args.stop_after))
        except BaseException:
            if rank == 0 and created and not list(fold_dir.glob("*.ckpt")):
                shutil.rmtree(fold_dir, ignore_errors=True)  # a run that never got going leaves no folder behind
                if fold_dir != expdir and expdir.is_dir() and not any(expdir.iterdir()):
                    expdir.rmdir()
            raise
        if results[-1].get("stopped_early"):
            break
    if rank == 0 and results and not results[-1].get("stopped_early"):
        summarize(task, spec, expdir, results)
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return 0


def check_same_run(args, resume: dict, expdir: Path) -> None:
    """``-a`` / ``-e`` with ``-u`` or ``-d`` that differ from the run being resumed: refuse, naming both."""
    old_upstream, old_task = resume["Upstream_Spec"]["name"], resume["Config"]["task_name"]
    new_upstream, new_task = getattr(args, "upstream", None), getattr(args, "downstream", None)
    clashes = []
    if new_upstream and new_upstream != old_upstream:
        clashes.append(f"upstream {old_upstream!r} (you gave -u {new_upstream!r})")
    if new_task and new_task != old_task:
        clashes.append(f"task {old_task!r} (you gave -d {new_task!r})")
    if clashes:
        raise ValueError(f"{expdir} holds a run of {' and '.join(clashes)}: resume it without -u/-d, or start "
                         "the new run under another -n")


def remove_stale_temporaries(folder: Path) -> None:
    """Checkpoint temporaries (``.ckpt.tmp<PID>``) of killed runs: their process is gone, the file is useless."""
    from ..tempfiles import remove_stale_temporaries as remove

    for path in remove(folder):
        trainer.log(f"removed {path} (left by a killed run)")


def runs_of(task: tasks.Task, config: dict, args, expdir: Path, resume) -> list[tuple[int | None, Path]]:
    """(fold, folder) of each run: ER-style tasks train every fold in ``foldK/`` unless one was chosen
    (``-o task.fold=K``) or a checkpoint is resumed."""
    if not task.folds or resume is not None or "fold" in parse_overrides(args.override).get("task", {}):
        return [(None, expdir)]
    return [(k, expdir / f"fold{k}") for k in range(1, task.folds + 1)]


def summarize(task: tasks.Task, spec: UpstreamSpec, expdir: Path, results: list[dict]) -> None:
    """For several folds: the average of each metric, written at the top of the experiment folder."""
    from .report import results_table

    if len(results) == 1:
        print(results_table(results))
        return
    keys = results[0]["metrics"].keys()
    mean = {k: sum(r["metrics"][k] for r in results) / len(results) for k in keys}
    rec = {"task": task.name, "upstream": spec.name, "split": "test (mean over folds)", "metric": task.metric,
           "metrics": mean, "folds": results, "layers": results[0]["layers"],
           "layer_weights": [sum(w) / len(results) for w in zip(*(r["layer_weights"] for r in results))]}
    save_results(expdir, rec)
    print(results_table(results + [rec]))


def cmd_evaluate_free(args) -> int:
    """A training-free task (QbE): the upstream's hidden states of split ``-t`` for ``-l N`` or ``-l all`` (cached
    once for a frozen upstream), handed one layer at a time to the task; writes ``results_<split>.json`` / ``.md``
    in the experiment folder. No checkpoint is read or written."""
    _, _, device = setup_distributed()
    task, expdir = tasks.get(args.downstream), expdir_of(args)
    config = build_config(task, args)
    layer = getattr(args, "upstream_layer_selection", None)
    if layer not in (None, "all") and not str(layer).isdigit():
        raise ValueError(f"-l must be a hidden-state index (0, 1, ...) or 'all', got {layer!r}")
    spec = UpstreamSpec(name=args.upstream, ckpt=getattr(args, "upstream_ckpt", None),
                        layer=None if layer in (None, "all") else int(layer))
    ctx = Context(task, config, spec, device, 0, 1, expdir)
    set_seed(config["train"]["seed"])
    upstream, featurizer = build_upstream(spec, device)
    split = args.evaluate_split
    splits = task.load(config["task"])
    if split not in splits:
        raise ValueError(f"task {task.name} has no split {split!r}; it has {sorted(splits)}")
    expdir.mkdir(parents=True, exist_ok=True)
    dataset = make_datasets(ctx, splits, upstream, featurizer, [split])[split]
    loader = make_loader(dataset, config["data"], False, config["train"]["seed"])
    layers = list(featurizer.layer_selections)
    metrics, details = task.evaluate(layers, lambda k: layer_features(loader, upstream, layers, k, device),
                                     dataset.examples, config["task"], split, expdir)
    rec = {"task": task.name, "upstream": spec.name, "split": split, "metric": task.metric, "metrics": metrics,
           "checkpoint": f"layer {details['best_layer']}" if "best_layer" in details else "-",
           "layers": layers, "details": details, "task_options": config["task"]}
    save_results(expdir, rec, f"results_{split}")
    from .report import results_table

    print(results_table([rec]))
    return 0


@torch.no_grad()
def layer_features(loader, upstream, layers: list[int], layer: int, device) -> dict:
    """``{uid: (T, D) float32 array}`` of hidden state ``layer`` for every utterance of ``loader``."""
    out = {}
    for batch in loader:
        inputs, lengths = batch.inputs.to(device), batch.lengths.to(device)
        if inputs.dim() == 4:  # cached: (B, T, L, D), one slot per selected layer
            hs, lens = inputs[:, :, layers.index(layer)], lengths
        else:
            all_hs, all_lens = upstream(inputs, lengths)
            hs, lens = all_hs[layer], all_lens[layer]
        for uid, h, n in zip(batch.uids, hs, lens.tolist()):
            out[uid] = h[:n].float().cpu().numpy()
    return out


def cmd_evaluate(args) -> int:
    """Evaluate a checkpoint (``-e``: file, or experiment folder -> its best / latest) on split ``-t``;
    writes ``results_<split>.json`` / ``.md`` and ``<split>_predict.txt`` next to the checkpoint."""
    _, _, device = setup_distributed()
    target = Path(args.past_exp) if args.past_exp else expdir_of(args)
    path = target if target.is_file() else pick_checkpoint(target)
    ckpt = load_run(path)
    config = validate(merge(ckpt["Config"], parse_overrides(args.override), "-o"))
    task, spec = tasks.get(config["task_name"]), UpstreamSpec(**ckpt["Upstream_Spec"])
    ctx = Context(task, config, spec, device, 0, 1, path.parent)
    model, datasets, trials, _ = prepare(ctx, [args.evaluate_split], ckpt["Classes"])
    for key, module in model.parts().items():
        module.load_state_dict(ckpt[key])
    amp = trainer.autocast_dtype(config["train"]["precision"], device)
    loader = make_loader(datasets[args.evaluate_split], config["data"], False, config["train"]["seed"])
    metrics, predictions = evaluate(model, loader, task, trials, amp)
    write_predictions(path.parent / f"{args.evaluate_split}_predict.txt", predictions, loader.dataset.examples)
    if task.objective.write is not None:
        task.objective.write(path.parent, args.evaluate_split, predictions, loader.dataset.examples)
    rec = record(ctx, model, args.evaluate_split, metrics, path.name, ckpt["Step"],
                 name=f"results_{args.evaluate_split}")  # the training's own results.json stays
    from .report import results_table

    print(results_table([rec]))
    return 0


def pick_checkpoint(expdir: Path) -> Path:
    best = sorted(glob.glob(str(expdir / "*-best.ckpt")))
    return Path(best[0]) if best else sorted_states(expdir)[-1]
