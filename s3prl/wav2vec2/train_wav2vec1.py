"""``s3prl wav2vec2 train --arch wav2vec``: fairseq's wav2vec (1.0) and vq-wav2vec pre-training command lines
(examples/wav2vec/README.md, ``python train.py ... --arch wav2vec --task audio_pretraining --criterion wav2vec``).

Flags and defaults are fairseq 0.12.2's (its ``Wav2VecConfig``, ``cosine`` schedule, ``wav2vec`` criterion). As
in fairseq, a boolean flag whose default is true switches it OFF: the README's ``--skip-connections-agg`` and
``--log-compression`` train WITHOUT aggregator skip connections and (wav2vec 1.0) without log compression. A flag
of another architecture (``--encoder-layers``, ``--latent-vars``, ...) is an error, as fairseq's parser makes it.

The model is :class:`~s3prl.wav2vec2.wav2vec1_pretraining.Wav2VecPreTraining` (its loss is fairseq's, proven in
tests/test_wav2vec2_pretrain_loss.py); data, Adam, the loop, logs and the checkpoint files are those of the
wav2vec 2.0 command (:mod:`s3prl.wav2vec2.train`); checkpoints carry fairseq's ``wav2vec`` model config, so fairseq
and ``s3prl.upstream.wav2vec`` load them.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from .manifest import RecipeError
from .train_wav2vec1_checkpoint import fairseq_cfg, fairseq_checkpoint, fairseq_model_cfg, load_resume
from .train_schedule import cosine, polynomial_decay

ARCHS = ("wav2vec",)

# fairseq 0.12.2 Wav2VecConfig defaults of the flags the wav2vec 2.0 parser shares (its own defaults differ)
SHARED_DEFAULTS = {
    "conv_feature_layers": "[(512, 10, 5), (512, 8, 4), (512, 4, 2), (512, 4, 2), (512, 4, 2), (512, 1, 1), "
                           "(512, 1, 1), (512, 1, 1)]",
    "num_negatives": 10, "dropout": 0.0}
AGG_DEFAULT = "[" + ", ".join(f"(512, {k}, 1)" for k in range(2, 14)) + "]"

# flags of the wav2vec 2.0 parser that mean the same with --arch wav2vec (general, data, optimisation, checkpoints)
COMMON_FLAGS = {
    "data", "overrides", "config_name", "config_dir", "task", "arch", "criterion", "save_dir", "seed", "fp16", "bf16",
    "cpu", "device", "log_interval", "log_keys", "log_format", "num_workers", "ddp_backend", "distributed_world_size",
    "no_progress_bar", "max_tokens", "batch_size", "required_batch_size_multiple", "max_sample_size",
    "min_sample_size", "normalize", "sample_rate", "enable_padding", "train_subset", "valid_subset",
    "skip_invalid_size_inputs_valid_test", "disable_validation", "max_update", "max_epoch", "update_freq",
    "clip_norm", "optimizer", "adam_betas", "adam_eps", "weight_decay", "lr", "lr_scheduler", "warmup_updates",
    "total_num_update", "end_learning_rate", "power", "save_interval", "save_interval_updates",
    "validate_interval_updates", "no_epoch_checkpoints", "keep_interval_updates", "restore_file",
    "conv_feature_layers", "dropout", "dropout_features", "num_negatives", "cross_sample_negatives", "infonce",
    "loss_weights"}
OWN_FLAGS: set[str] = set()  # filled by add_wav2vec1_arguments


def add_wav2vec1_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of fairseq's ``wav2vec`` model and ``cosine`` schedule that the wav2vec 2.0 parser lacks."""
    g = p.add_argument_group("wav2vec 1.0 / vq-wav2vec (--arch wav2vec); shared flags default to fairseq's "
                             "wav2vec values there: --conv-feature-layers (8 layers), --num-negatives 10, --dropout 0")
    before = {a.dest for a in p._actions}
    a = g.add_argument
    a("--prediction-steps", type=int, default=12, help="steps ahead to predict")
    a("--sample-distance", type=int, default=None, help="not supported (leave unset)")
    a("--conv-aggregator-layers", default=AGG_DEFAULT, help="context convs [(dim, kernel, stride), ...]")
    a("--dropout-agg", type=float, default=0.0, help="dropout after the context network")
    a("--aggregator", default="cnn", help="cnn (gru: not supported)")
    a("--gru-dim", type=int, default=512, help="not used (gru aggregator)")
    a("--no-conv-bias", action="store_true", help="context convs without bias")
    a("--agg-zero-pad", action="store_true", help="zero left padding in the context convs (default: replicate)")
    a("--skip-connections-feat", action="store_true", help="residuals in the feature encoder")
    a("--skip-connections-agg", action="store_false",
      help="fairseq 0.12: default ON, and giving the flag turns the context network's residuals OFF")
    a("--residual-scale", type=float, default=0.5, help="residual sums scaled by sqrt(value)")
    a("--log-compression", action="store_false",
      help="fairseq 0.12: default ON, and giving the flag turns log(|z| + 1) OFF")
    a("--balanced-classes", action="store_true", help="BCE: negatives weighted 1 / num_negatives")
    a("--project-features", default="none", help="none (same/new: not supported)")
    a("--non-affine-group-norm", action="store_true")
    a("--offset", default="auto", help="frames skipped before the first predicted step (auto: receptive field)")
    a("--activation", default="relu", help="relu or gelu")
    a("--vq-type", default="none", help="none (wav2vec), gumbel or kmeans (vq-wav2vec)")
    a("--vq-vars", type=int, default=320, help="codewords per group")
    a("--vq-groups", type=int, default=2)
    a("--vq-dim", type=int, default=0, help="0 (the feature size; other values are not supported)")
    a("--vq-depth", type=int, default=1, help="Gumbel: layers of the logit projection")
    a("--combine-groups", action="store_true", help="one codebook shared by the groups")
    a("--vq-temp", default="(2.0, 0.5, 0.999995)", help="Gumbel temperature (start, end, decay per update)")
    a("--vq-gamma", type=float, default=0.25, help="k-means commitment weight")
    # fairseq's cosine schedule and its stop rule
    a("--warmup-init-lr", type=float, default=-1.0, help="cosine: lr of update 1 (default --min-lr)")
    a("--min-lr", type=float, default=0.0, help="cosine: lowest lr of the first period")
    a("--t-mult", type=float, default=1.0, help="cosine: growth of each period")
    a("--lr-period-updates", type=float, default=-1.0, help="cosine: first period (default max-update - warmup)")
    a("--lr-shrink", type=float, default=0.1, help="cosine: factor of both bounds per period")
    a("--stop-min-lr", type=float, default=-1.0, help="stop when an epoch starts with lr <= this")
    OWN_FLAGS.update({a.dest for a in p._actions} - before)


def given_flags(args, dests) -> list[str]:
    """The flags among ``dests`` whose value differs from the parser's default (i.e. the user gave them)."""
    from .train import add_arguments

    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    names = {a.dest: a.option_strings[0] for a in parser._actions if a.option_strings}
    return [names[d] for d in sorted(dests) if d in names and getattr(args, d) != parser.get_default(d)]


def reject_own_flags(args) -> None:
    """With --arch wav2vec2: wav2vec 1.0-only flags are errors (fairseq's parser would not know them)."""
    extra = given_flags(args, OWN_FLAGS)
    if extra:
        raise RecipeError(f"{', '.join(extra)}: flag(s) of --arch wav2vec (wav2vec 1.0 / vq-wav2vec), not of "
                          f"--arch {args.arch}; drop them")


def _fail(flag: str, value, rule: str) -> None:
    raise RecipeError(f"{flag} {value!r}: {rule}")


@dataclass
class Setup:
    arch: object  # s3prl.upstream.wav2vec.Wav2VecConfig
    pretrain: object  # Wav2VecPretrainConfig
    lr: float
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    model_cfg: dict  # cfg.model of the checkpoints (fairseq's Wav2VecConfig fields)
    log_keys: list


def _check(args) -> None:
    foreign = given_flags(args, set(vars(args)) - COMMON_FLAGS - OWN_FLAGS)
    if foreign:
        raise RecipeError(f"{', '.join(foreign)}: not a flag of --arch wav2vec (fairseq's wav2vec / vq-wav2vec "
                          "model); drop it, or use --arch wav2vec2")
    if args.task != "audio_pretraining":
        _fail("--task", args.task, "--arch wav2vec trains with audio_pretraining")
    if args.criterion != "wav2vec":
        _fail("--criterion", args.criterion, "only the wav2vec criterion is supported")
    if args.optimizer != "adam":
        _fail("--optimizer", args.optimizer, "only adam is supported")
    if args.lr_scheduler not in ("cosine", "polynomial_decay", "fixed"):
        _fail("--lr-scheduler", args.lr_scheduler, "cosine (the seed's), polynomial_decay or fixed")
    if args.lr_scheduler == "fixed" and args.warmup_updates:
        _fail("--warmup-updates", args.warmup_updates, "not supported with --lr-scheduler fixed")
    for flag, value, ok in [("--aggregator", args.aggregator, "cnn"), ("--project-features", args.project_features,
                            "none"), ("--sample-distance", args.sample_distance, None),
                            ("--enable-padding", args.enable_padding, False), ("--save-interval", args.save_interval, 1),
                            ("--sample-rate", args.sample_rate, 16000)]:
        if value != ok:
            _fail(flag, value, f"not supported here (only {ok!r}); drop the flag")
    if args.activation not in ("relu", "gelu"):
        _fail("--activation", args.activation, "relu or gelu")
    if args.vq_type not in ("none", "gumbel", "kmeans"):
        _fail("--vq-type", args.vq_type, "none, gumbel or kmeans")
    if args.restore_file != "checkpoint_last.pt":
        _fail("--restore-file", args.restore_file, "not supported: runs resume from SAVE_DIR/checkpoint_last.pt")
    if args.max_tokens is None and args.batch_size is None:
        raise RecipeError("give --max-tokens (samples per batch, e.g. 1500000) or --batch-size")
    if not args.max_update and not args.max_epoch:
        raise RecipeError("give --max-update (number of updates) or --max-epoch")


def setup_from_args(args) -> Setup:
    from ..convert.errors import CheckpointConfigError, CheckpointFormatError
    from ..upstream.wav2vec import config_from_dict
    from .train import literal
    from .wav2vec1_pretraining import pretrain_config_from_fairseq

    for key, value in SHARED_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    _check(args)
    model_cfg = fairseq_model_cfg(args)
    try:
        lrs = literal(args.lr) if isinstance(args.lr, str) else args.lr
        lr = float(lrs[0] if isinstance(lrs, (list, tuple)) else lrs)
        betas = tuple(float(v) for v in literal(args.adam_betas))
        weights = None if args.loss_weights is None else literal(args.loss_weights)
        weights = None if weights is None else [float(w) for w in (
            weights if isinstance(weights, (list, tuple)) else [weights])]
        log_keys = [] if args.log_keys is None else list(literal(args.log_keys))
        model_cfg["vq_temp"] = [float(v) for v in literal(args.vq_temp)]
    except (TypeError, ValueError) as err:
        raise RecipeError(f"a list-valued flag could not be read ({err}): --vq-temp takes e.g. '(2,0.5,0.999995)', "
                          "--adam-betas '(0.9,0.98)', --loss-weights '[1]', --log-keys '[\"code_perplexity\"]', "
                          "--lr 0.005") from None
    if len(betas) != 2:
        _fail("--adam-betas", args.adam_betas, "needs (beta1, beta2)")
    criterion = {"infonce": bool(args.infonce), "loss_weights": weights}
    try:  # the same checks as a fairseq checkpoint's config gets, with the command line's flag names
        arch = config_from_dict(model_cfg, {}, "command line")
        pretrain = pretrain_config_from_fairseq(model_cfg, criterion, arch.conv_layers, "command line")
    except CheckpointConfigError as err:  # a config key is a flag's name: say the flag
        flag = "--" + err.key.split(".")[-1].replace("_", "-")
        raise RecipeError(f"{flag} {err.value!r} is invalid: expected {err.expected}") from None
    except CheckpointFormatError as err:  # the message names config keys: say the flags
        keys = "|".join(k for k in model_cfg if k != "_name")
        text = re.sub(rf"\b({keys})\b", lambda m: "--" + m.group(1).replace("_", "-"), str(err))
        text = text.replace("command line: ", "")
        raise RecipeError(("--conv-aggregator-layers: " if "context convs" in text else "") + text) from None
    if weights is not None and len(weights) != 1:
        _fail("--loss-weights", args.loss_weights, "needs one value (wav2vec models have one extra loss: the "
              "Gumbel perplexity or the k-means loss)")
    if args.vq_dim not in (0, arch.embed_dim):
        _fail("--vq-dim", args.vq_dim, f"only 0 (= the feature size {arch.embed_dim}) is supported")
    if args.vq_type != "none" and args.vq_vars < 1:
        _fail("--vq-vars", args.vq_vars, "must be >= 1")
    return Setup(arch, pretrain, lr, betas, args.adam_eps, args.weight_decay, model_cfg, log_keys)


def check_lengths(data, setup: Setup, name: str) -> None:
    """Every batch is cropped to its shortest file: that file must give enough frames for one prediction
    (``offset + 1``) and for negatives from the same utterance (2). fairseq fails inside ``torch.randint`` instead."""
    conv, p = setup.arch.conv_layers, setup.pretrain
    need = max(p.offset + 1, 2 if p.num_negatives else 1)
    samples = need
    for _, kernel, stride in reversed(conv):  # the fewest samples giving `need` frames
        samples = (samples - 1) * stride + kernel
    rel, n = min(data.files, key=lambda f: f[1])
    if n < samples:
        raise RecipeError(f"{name}: {rel} has {n} samples, fewer than the {samples} that give the {need} frames a "
                          f"wav2vec batch needs (offset {p.offset} + 1 predicted, 2 for negatives; batches are "
                          f"cropped to their shortest file): drop short files with --min-sample-size {samples}")


def make_rate(args, setup: Setup, total: int):
    """The learning rate per finished update count, as the chosen fairseq scheduler computes it."""
    if args.lr_scheduler == "fixed":
        return lambda _: setup.lr
    if args.lr_scheduler == "polynomial_decay":
        return polynomial_decay(setup.lr, args.warmup_updates, args.total_num_update or total,
                                args.end_learning_rate, args.power)
    period = args.lr_period_updates
    if period <= 0:
        if not args.max_update:
            raise RecipeError("--lr-scheduler cosine needs --max-update or --lr-period-updates")
        period = args.max_update - args.warmup_updates
    if period <= 0:
        _fail("--warmup-updates", args.warmup_updates, "must be below --max-update (the cosine period)")
    if setup.lr <= args.min_lr:
        _fail("--min-lr", args.min_lr, f"must be below --lr ({setup.lr}) for --lr-scheduler cosine")
    rate = cosine(setup.lr, args.min_lr, args.warmup_updates, args.warmup_init_lr, period, args.t_mult,
                  args.lr_shrink)
    if args.stop_min_lr >= 0 and min(rate(u) for u in range(total + 1)) <= args.stop_min_lr:
        _fail("--stop-min-lr", args.stop_min_lr, "this schedule reaches it, where fairseq would stop at the next "
              "epoch: not supported here; lower it (the seed's 1e-09 is below --min-lr)")
    return rate


# ------------------------------------------------------------------------------------------------
# the command
# ------------------------------------------------------------------------------------------------


def _logged_class():
    from .train import LN2, Logged

    class Logged1(Logged):
        """fairseq's training log of the wav2vec criterion (BCE: no accuracy; InfoNCE: accuracy)."""

        def summarize(self, records: list[dict]) -> dict:
            size = sum(r["sample_size"] for r in records) or 1
            out = {"loss": sum(r["loss"] for r in records) / size / LN2}
            for key in sorted({k for r in records for k in r if k.startswith("loss_")}):
                out[key] = sum(r.get(key, 0.0) for r in records) / size / LN2
            count = sum(r.get("count", 0) for r in records)
            if count:
                out["accuracy"] = sum(r["correct"] for r in records) / count
            for key in ("code_perplexity", "prob_perplexity", "temp"):
                if key in records[0]:
                    out[key] = sum(r[key] for r in records) / len(records)
            return out

        def warn(self, records: list[dict], out: dict, step: int) -> None:
            from .. import train as trainer
            from .criterion import collapse_warning

            if "code_perplexity" in out:
                warning = collapse_warning({"code_perplexity": out["code_perplexity"]}, self.groups)
                if warning:
                    trainer.log(f"update {step}: WARNING {warning}", self.expdir)

    return Logged1


def evaluate_split(objective, data) -> dict:
    from .train import LN2

    objective.eval()
    total = size = correct = count = 0.0
    with torch.no_grad():
        for b in range(len(data.batches)):
            objective(data.batch(b, 0))
            log = objective.last_log
            total, size = total + log["loss"], size + log["sample_size"]
            correct, count = correct + log.get("correct", 0), count + log.get("count", 0)
    out = {"loss": total / max(size, 1) / LN2}
    if count:
        out["accuracy"] = correct / count
    return out


def run_wav2vec1(args) -> int:
    from .. import train as trainer
    from . import train_loop as loop
    from .criterion import Wav2Vec2Objective
    from .train_data import AudioData
    from .wav2vec1_pretraining import Wav2VecPreTraining

    setup = setup_from_args(args)
    world_env = int(os.environ.get("WORLD_SIZE", "1"))
    if args.distributed_world_size is not None and args.distributed_world_size != world_env:
        raise RecipeError(f"--distributed-world-size {args.distributed_world_size} but {world_env} process(es) run: "
                          f"start them with torchrun --nproc_per_node {args.distributed_world_size}, or drop the flag")
    precision, rank, world, device, started = loop.start(args)
    save_dir = Path(args.save_dir)
    try:
        train_data, valid_data = loop.load_splits(
            lambda name, **kw: AudioData(str(Path(args.data) / f"{name}.tsv"), **kw), args, rank, world)
        for split in (train_data, valid_data):
            if split is not None:
                check_lengths(split, setup, split.tsv)
        per_epoch, total, save_every = loop.update_counts(args, train_data)
        rate = make_rate(args, setup, total)
        model = Wav2VecPreTraining(setup.arch, setup.pretrain, setup.arch.activation)
        objective = Wav2Vec2Objective(model).to(device)
        make_optimizer, ref = loop.optimizer_factory(objective, setup.lr, setup.betas, setup.eps, setup.weight_decay,
                                                     rate)
        cfg = loop.loop_config(args, total, save_every, setup.lr, precision)
        kind = "wav2vec" if setup.arch.vq_type == "none" else f"vq-wav2vec ({setup.arch.vq_type})"
        resume = loop.resume_or_describe(args, rank, lambda last: load_resume(last, objective), lambda: (
            f"data: {len(train_data.files)} training files in {len(train_data.batches)} batches "
            f"({train_data.dropped} dropped by --min-sample-size / --max-tokens); "
            f"{len(valid_data.files) if valid_data else 0} validation files; {total} updates; "
            f"model: {kind}, {sum(p.numel() for p in objective.parameters())} parameters, offset "
            f"{setup.pretrain.offset}, {'InfoNCE' if args.infonce else 'BCE'}"))
        logged = _logged_class()(objective, args.log_interval, args.update_freq, ref, save_dir, setup.arch.vq_groups,
                                 rank == 0)
        fs_cfg = fairseq_cfg(args, setup, setup.model_cfg)

        def on_save(ckpt: dict, names: list[str]) -> None:
            out = fairseq_checkpoint(ckpt, objective, fs_cfg, ckpt.get("BestScore"))
            loop.write_fairseq_files(out, args, names, int(ckpt["Step"]), int(ckpt["Epoch"]) + 1, per_epoch,
                                     save_every)

        result = trainer.train(loop.wrap(logged, world, device), {"Objective": objective},
                               lambda epoch, start: train_data.iterate(epoch, start),
                               lambda split: evaluate_split(objective, valid_data), cfg, save_dir,
                               eval_splits=("valid",) if valid_data else (),
                               selection=trainer.Selection("loss", higher_better=False), resume=resume,
                               progress=not args.no_progress_bar, make_optimizer=make_optimizer,
                               extra=loop.saved_args(args), on_save=on_save)
        logged.flush()
        if rank == 0:
            print(f"done: {result['step']} updates; checkpoints in {save_dir}")
        return 0
    finally:
        if started:
            dist.destroy_process_group()
