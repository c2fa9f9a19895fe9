"""``s3prl wav2vec2 train --task audio_finetuning --arch wav2vec_ctc --criterion ctc``: fairseq's wav2vec 2.0 CTC
fine-tuning command (the seed's ``fairseq-train ... --w2v-path MODEL --labels ltr``) on :func:`s3prl.train.train`.

* data: ``<subset>.tsv`` + ``<subset>.<labels>`` (one label line per manifest line, checked by
  :func:`~s3prl.wav2vec2.labels.check_labels`) + ``dict.<labels>.txt`` in the manifest folder. Batches as in
  pre-training (``--max-tokens`` / ``--batch-size``), but, as fairseq's ``audio_finetuning`` task pads when labels
  are given, whole files zero-padded to the longest of the batch (files past ``--max-sample-size`` are cropped).
* model: :func:`~s3prl.wav2vec2.finetune_io.from_pretrained` on ``--w2v-path`` with the ``wav2vec_ctc`` options
  (:class:`~s3prl.wav2vec2.finetune.FineTuneConfig`; their defaults, not pre-training's, apply:
  ``--dropout 0``, ``--attention-dropout 0``, ``--mask-prob 0.5``, ``--feature-grad-mult 0``); the ``ctc``
  criterion (:class:`~s3prl.wav2vec2.finetune.Wav2Vec2CtcObjective`).
* optimizer: fairseq's Adam with ``tri_stage`` (``--warmup-steps/--hold-steps/--decay-steps`` or
  ``--phase-ratio``), ``polynomial_decay`` or ``fixed``.
* validation (from ``--validate-after-updates`` on): loss (bits), ``uer`` and ``wer`` (percent, greedy path,
  ``letter`` post-processing); ``--best-checkpoint-metric`` (default ``loss``; lower is better unless
  ``--maximize-best-checkpoint-metric``) picks ``checkpoint_best.pt``.
* checkpoints: fairseq's fine-tuned layout (:func:`~s3prl.wav2vec2.finetune_io.fairseq_finetuned_checkpoint`),
  readable by ``s3prl wav2vec2 infer --path``; ``extra_state["s3prl"]`` holds the exact-resume state and a re-run
  of the command resumes from ``SAVE_DIR/checkpoint_last.pt``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from .manifest import RecipeError, read_manifest
from .train_checkpoint import read_resumable
from .train import LN2, _fail
from .train import Logged as PretrainLogged
from .train_data import AudioData


FINETUNE_EPILOG = """\
CTC fine-tuning, the seed's command (examples/wav2vec/README.md) with `fairseq-train` replaced; MANIFEST_DIR holds
train.tsv/.ltr, dev_other.tsv/.ltr and dict.ltr.txt (`s3prl wav2vec2 labels`):
  s3prl wav2vec2 train /manifest/path --save-dir /model/path --post-process letter --valid-subset dev_other \\
    --no-epoch-checkpoints --best-checkpoint-metric wer --num-workers 4 --max-update 80000 --sentence-avg \\
    --task audio_finetuning --arch wav2vec_ctc --w2v-path /path/to/pretrained/model --labels ltr --apply-mask \\
    --mask-selection static --mask-other 0 --mask-length 10 --mask-prob 0.5 --layerdrop 0.1 \\
    --mask-channel-selection static --mask-channel-other 0 --mask-channel-length 64 --mask-channel-prob 0.5 \\
    --zero-infinity --feature-grad-mult 0.0 --freeze-finetune-updates 10000 --validate-after-updates 10000 \\
    --optimizer adam --adam-betas '(0.9, 0.98)' --adam-eps 1e-08 --lr 2e-05 --lr-scheduler tri_stage \\
    --warmup-steps 8000 --hold-steps 32000 --decay-steps 40000 --final-lr-scale 0.05 --final-dropout 0.0 \\
    --dropout 0.0 --activation-dropout 0.1 --criterion ctc --attention-dropout 0.0 --max-tokens 1280000 \\
    --seed 2337 --log-format json --log-interval 500 --ddp-backend no_c10d
or the recipe form: s3prl wav2vec2 train --config-name base_100h task.data=/manifest/path \\
    model.w2v_path=/path/to/pretrained/model (base_10m, base_1h, base_10h, base_960h as well).
Validation logs loss, uer and wer (percent); checkpoint_best.pt follows --best-checkpoint-metric. The checkpoints
are fairseq fine-tuned files: `s3prl wav2vec2 infer MANIFEST_DIR --path SAVE_DIR/checkpoint_best.pt ...`."""
FT_DEFAULTS = {"dropout": 0.0, "attention_dropout": 0.0, "mask_prob": 0.5, "feature_grad_mult": 0.0}
METRICS = ("loss", "wer", "uer")


def add_finetune_arguments(p) -> None:
    """fairseq's fine-tuning flags (``Wav2Vec2AsrConfig``, ``audio_finetuning``, ``ctc``, ``tri_stage``,
    checkpoint selection); used only with ``--task audio_finetuning``."""
    g = p.add_argument_group("fine-tuning (--task audio_finetuning --arch wav2vec_ctc --criterion ctc)")
    a = g.add_argument
    a("--w2v-path", default=None, help="the pre-trained wav2vec 2.0 (fairseq checkpoint, s3prl file or HF folder)")
    a("--labels", default=None, help="label extension: SUBSET.LABELS beside SUBSET.tsv and dict.LABELS.txt (ltr)")
    a("--post-process", default="letter", help="letter (the only one)")
    a("--apply-mask", action="store_true", help="span masks in fine-tuning (the mask flags above)")
    a("--layerdrop", type=float, default=0.0, help="transformer layer drop in fine-tuning")
    a("--final-dropout", type=float, default=0.0, help="dropout before the output projection")
    a("--mask-channel-before", action="store_true")
    a("--freeze-finetune-updates", type=int, default=0, help="updates that train only the output projection")
    a("--blank-weight", type=float, default=0.0)
    a("--blank-mode", default="add")
    a("--zero-infinity", action="store_true", help="CTC: zero infinite losses (too-short inputs)")
    a("--sentence-avg", action="store_true", help="normalise the loss by sentences rather than letters")
    a("--best-checkpoint-metric", default="loss", help="loss, wer or uer (checkpoint_best.pt)")
    a("--maximize-best-checkpoint-metric", action="store_true")
    a("--validate-after-updates", type=int, default=0)
    a("--warmup-steps", type=int, default=0, help="tri_stage")
    a("--hold-steps", type=int, default=0, help="tri_stage")
    a("--decay-steps", type=int, default=0, help="tri_stage")
    a("--phase-ratio", default=None, help="tri_stage, e.g. '(0.1, 0.4, 0.5)' (instead of the step counts)")
    a("--init-lr-scale", type=float, default=0.01, help="tri_stage")
    a("--final-lr-scale", type=float, default=0.01, help="tri_stage")


def preset_flags(name: str) -> list[str]:
    """A fine-tuning recipe of :mod:`finetune_recipes` as this command's flags (the epoch-based
    ``validate_interval`` / ``save_interval`` are left out: validation runs at every save)."""
    from .finetune_recipes import preset

    r = preset(name)
    flags = ["--task", "audio_finetuning", "--arch", "wav2vec_ctc", "--criterion", "ctc", "--labels", "ltr"]
    skip = {"_name", "validate_interval", "save_interval", "normalize"}
    for section in ("common", "checkpoint", "task", "dataset", "criterion", "optimizer", "lr_scheduler", "model",
                    "optimization", "distributed_training"):
        for key, value in r.get(section, {}).items():
            if key in skip or (section == "task" and key == "labels"):
                continue
            flag = {"max_tokens": "--max-tokens", "lr": "--lr", "update_freq": "--update-freq"}.get(
                key, "--" + key.replace("_", "-"))
            if isinstance(value, bool):
                flags += [flag] if value else []
            elif isinstance(value, (tuple, list)):
                flags += [flag, str(value[0]) if key in ("lr", "update_freq") else str(tuple(value))]
            else:
                flags += [flag, str(value)]
    if r["task"].get("normalize"):
        flags.append("--normalize")
    flags += ["--optimizer", r["optimizer"]["_name"], "--lr-scheduler", r["lr_scheduler"]["_name"]]
    return flags


def check_finetune(args) -> None:
    if args.arch != "wav2vec_ctc":
        _fail("--arch", args.arch, "--task audio_finetuning trains wav2vec_ctc (add --arch wav2vec_ctc)")
    if args.criterion != "ctc":
        _fail("--criterion", args.criterion, "--task audio_finetuning trains with the ctc criterion (--criterion ctc)")
    if not args.w2v_path:
        raise RecipeError("--w2v-path is missing: give the pre-trained wav2vec 2.0 checkpoint to fine-tune")
    if args.labels is None:
        raise RecipeError("--labels is missing: give the label extension (--labels ltr reads SUBSET.ltr and "
                          "dict.ltr.txt beside the manifest)")
    if args.post_process != "letter":
        _fail("--post-process", args.post_process, "only letter is supported")
    if args.optimizer != "adam":
        _fail("--optimizer", args.optimizer, "only adam is supported")
    if args.lr_scheduler not in ("tri_stage", "polynomial_decay", "fixed"):
        _fail("--lr-scheduler", args.lr_scheduler, "tri_stage, polynomial_decay or fixed")
    if args.best_checkpoint_metric not in METRICS:
        _fail("--best-checkpoint-metric", args.best_checkpoint_metric, f"one of {', '.join(METRICS)}")
    for flag, value, ok in [("--enable-padding", args.enable_padding, False),
                            ("--save-interval", args.save_interval, 1), ("--sample-rate", args.sample_rate, 16000),
                            ("--no-mask-overlap", args.no_mask_overlap, False),
                            ("--mask-min-space", args.mask_min_space, 1)]:
        if value != ok:
            _fail(flag, value, f"not supported here (only {ok!r}); drop the flag")
    if args.restore_file != "checkpoint_last.pt":
        _fail("--restore-file", args.restore_file, "not supported: runs resume from SAVE_DIR/checkpoint_last.pt")
    if args.max_tokens is None and args.batch_size is None:
        raise RecipeError("give --max-tokens (samples per batch, e.g. 1280000) or --batch-size")
    if not args.max_update and not args.max_epoch:
        raise RecipeError("give --max-update (number of updates) or --max-epoch")


def ft_config(args):
    from .finetune import FineTuneConfig

    for key, value in FT_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    try:
        return FineTuneConfig(
            apply_mask=args.apply_mask, mask_prob=args.mask_prob, mask_length=args.mask_length,
            mask_selection=args.mask_selection, mask_other=args.mask_other,
            mask_channel_prob=args.mask_channel_prob, mask_channel_length=args.mask_channel_length,
            mask_channel_selection=args.mask_channel_selection, mask_channel_other=args.mask_channel_other,
            mask_channel_before=args.mask_channel_before, layerdrop=args.layerdrop, dropout=args.dropout,
            attention_dropout=args.attention_dropout, activation_dropout=args.activation_dropout,
            dropout_input=args.dropout_input, final_dropout=args.final_dropout,
            feature_grad_mult=args.feature_grad_mult, freeze_finetune_updates=args.freeze_finetune_updates,
            blank_weight=args.blank_weight, blank_mode=args.blank_mode, zero_infinity=args.zero_infinity,
            sentence_avg=args.sentence_avg, post_process=args.post_process).check("fine-tuning flags")
    except ValueError as err:
        raise RecipeError(str(err).replace("_", "-")) from None


def learning_rate(args, lr: float, total: int):
    from .finetune_recipes import tri_stage
    from .train import literal
    from .train_schedule import polynomial_decay

    if args.lr_scheduler == "polynomial_decay":
        return polynomial_decay(lr, args.warmup_updates, args.total_num_update or total, args.end_learning_rate,
                                args.power)
    if args.lr_scheduler == "fixed":
        return lambda _: lr
    try:
        ratio = None if args.phase_ratio is None else tuple(float(r) for r in literal(args.phase_ratio))
        return tri_stage(lr, args.max_update or total, ratio, args.init_lr_scale, args.final_lr_scale,
                         args.warmup_steps, args.hold_steps, args.decay_steps)
    except (TypeError, ValueError) as err:
        raise RecipeError(f"--lr-scheduler tri_stage: {err} (give --warmup-steps/--hold-steps/--decay-steps, or "
                          "--phase-ratio '(0.1, 0.4, 0.5)' with --max-update)") from None


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------


def read_labels(tsv: str, label_path: str, vocabulary) -> list[list[int]]:
    """One id sequence per manifest line (clear errors for a file out of step with the manifest)."""
    from .labels import check_labels

    check_labels(tsv, label_path)
    with open(label_path, encoding="utf-8") as f:
        return [[vocabulary.index(s) for s in line.split()] for line in f.read().split("\n")[:len(
            read_manifest(tsv).entries)]]


class LabelledData(AudioData):
    """A manifest split with its labels; batches are whole files zero-padded (fairseq pads with labels)."""

    def __init__(self, tsv: str, label_path: str, vocabulary, **kw):
        labels = read_labels(tsv, label_path, vocabulary)
        entries = read_manifest(tsv).entries
        super().__init__(tsv, **kw)
        self.labels, j = [], 0
        for rel, n in self.files:  # the kept files, in manifest order
            while entries[j] != (rel, n):
                j += 1
            self.labels.append(labels[j])
            j += 1

    def batch(self, b: int, epoch: int):
        from .finetune import CtcBatch, collate_targets

        rng = np.random.default_rng([self.seed, epoch, b, 1])
        wavs = []
        for i in self.batches[b]:
            w = self.read(i)
            if self.max_sample and w.numel() > self.max_sample:  # fairseq's crop_to_max_size
                start = int(rng.integers(0, w.numel() - self.max_sample + 1))
                w = w[start:start + self.max_sample]
            wavs.append(w)
        lengths = torch.tensor([w.numel() for w in wavs], dtype=torch.long)
        padded = torch.stack([F.pad(w, (0, int(lengths.max()) - w.numel())) for w in wavs])
        return CtcBatch(padded, lengths, collate_targets([self.labels[i] for i in self.batches[b]]),
                        [self.files[i][0] for i in self.batches[b]])


# ------------------------------------------------------------------------------------------------
# logging, validation, checkpoints
# ------------------------------------------------------------------------------------------------


class Logged(PretrainLogged):
    """The objective plus fairseq's ctc training log (loss in bits per ``sample_size``) every ``interval``."""

    def __init__(self, objective, interval: int, accum: int, ref: list, expdir: Path, leader: bool):
        super().__init__(objective, interval, accum, ref, expdir, 0, leader)

    def summarize(self, records: list[dict]) -> dict:
        size = sum(r["sample_size"] for r in records) or 1
        return {"loss": sum(r["loss"] for r in records) / size / LN2,
                "ntokens": sum(r["ntokens"] for r in records), "nsentences": sum(r["nsentences"] for r in records)}

    def warn(self, records: list[dict], out: dict, step: int) -> None:
        pass


def evaluate_split(objective, data: LabelledData) -> dict:
    """fairseq's ctc validation over the whole split (eval mode): loss in bits, UER and WER in percent."""
    objective.eval()
    sums = dict.fromkeys(("loss", "sample_size", "c_errors", "c_total", "w_errors", "w_total"), 0.0)
    with torch.no_grad():
        for b in range(len(data.batches)):
            objective(data.batch(b, 0))
            for key in sums:
                sums[key] += objective.last_log.get(key, 0.0)
    return {"loss": sums["loss"] / max(sums["sample_size"], 1) / LN2,
            "uer": 100.0 * sums["c_errors"] / sums["c_total"] if sums["c_total"] else float("nan"),
            "wer": 100.0 * sums["w_errors"] / sums["w_total"] if sums["w_total"] else float("nan")}


def load_resume(path: Path, objective, vocabulary) -> dict:
    """``checkpoint_last.pt`` written by this command -> the :mod:`s3prl.train` resume checkpoint."""
    from .finetune_io import from_fairseq_finetuned

    obj, extra = read_resumable(path)
    try:
        loaded = from_fairseq_finetuned(obj, str(path), vocabulary).state_dict()
    except Exception as err:  # noqa: BLE001
        raise RecipeError(f"{path} is not a fine-tuning checkpoint of this command ({err}); choose another "
                          "--save-dir") from None
    state = objective.state_dict()
    if set(loaded) != {k[len("model."):] for k in state if k.startswith("model.")} or any(
            loaded[k].shape != state["model." + k].shape for k in loaded):
        raise RecipeError(f"{path}: its model does not match this command's --w2v-path / labels (resume with the "
                          "flags of the run that wrote it, or choose another --save-dir)")
    state.update({f"model.{k}": v for k, v in loaded.items()})
    state["num_updates"] = torch.tensor(int(extra["s3prl"]["Step"]))
    return dict(extra["s3prl"], Objective=state)


def build_model(args, vocabulary, ftcfg):
    from ..checkpoint import CheckpointError
    from ..convert.errors import CheckpointFormatError
    from .finetune_io import from_pretrained

    try:
        return from_pretrained(args.w2v_path, vocabulary, ftcfg)
    except FileNotFoundError as err:
        raise RecipeError(f"--w2v-path: {err}") from None
    except (CheckpointError, CheckpointFormatError, KeyError, ValueError) as err:
        raise RecipeError(f"--w2v-path {args.w2v_path!r} is not a pre-trained wav2vec 2.0 model: {err}") from None


# ------------------------------------------------------------------------------------------------
# the command
# ------------------------------------------------------------------------------------------------


def run_finetune(args) -> int:
    from .. import train as trainer
    from . import train_loop as loop
    from .ctc_model import Vocabulary
    from .finetune import Wav2Vec2CtcObjective
    from .finetune_io import fairseq_finetuned_checkpoint
    from .train import literal

    check_finetune(args)
    ftcfg = ft_config(args)
    try:
        betas = tuple(float(v) for v in literal(args.adam_betas))
        lrs = literal(args.lr) if isinstance(args.lr, str) else args.lr
        lr = float(lrs[0] if isinstance(lrs, (list, tuple)) else lrs)
        assert len(betas) == 2
    except (TypeError, ValueError, AssertionError):
        raise RecipeError(f"--adam-betas {args.adam_betas!r} / --lr {args.lr!r}: give e.g. --adam-betas "
                          "'(0.9, 0.98)' --lr 2e-05") from None
    world_env = int(os.environ.get("WORLD_SIZE", "1"))
    if args.distributed_world_size is not None and args.distributed_world_size != world_env:
        raise RecipeError(f"--distributed-world-size {args.distributed_world_size} but {world_env} process(es) "
                          "run: start them with torchrun --nproc_per_node N, or drop the flag (with --config-name: "
                          f"distributed_training.distributed_world_size={world_env})")
    data = Path(args.data)
    dict_path = data / f"dict.{args.labels}.txt"
    if not dict_path.is_file():
        raise RecipeError(f"{dict_path} not found: the output symbols (write it with `s3prl wav2vec2 labels "
                          f"{data}/{args.train_subset}.tsv --output-dir {data} --output-name {args.train_subset}`)")
    try:
        vocabulary = Vocabulary.load_fairseq(str(dict_path))
    except Exception as err:  # noqa: BLE001
        raise RecipeError(f"{dict_path}: {err}") from None
    if vocabulary.boundary not in vocabulary.symbols:
        raise RecipeError(f"{dict_path} has no word boundary '|': letter labels need it (regenerate the labels "
                          "and dictionary with `s3prl wav2vec2 labels`)")
    precision, rank, world, device, started = loop.start(args)
    save_dir = Path(args.save_dir)
    try:
        train_data, valid_data = loop.load_splits(lambda name, **kw: LabelledData(
            str(data / f"{name}.tsv"), str(data / f"{name}.{args.labels}"), vocabulary, **kw), args, rank, world)
        per_epoch, total, save_every = loop.update_counts(args, train_data)
        model = build_model(args, vocabulary, ftcfg)
        objective = Wav2Vec2CtcObjective(model).to(device)
        make_optimizer, ref = loop.optimizer_factory(objective, lr, betas, args.adam_eps, args.weight_decay,
                                                     learning_rate(args, lr, total))
        cfg = loop.loop_config(args, total, save_every, lr, precision)
        resume = loop.resume_or_describe(args, rank, lambda last: load_resume(last, objective, vocabulary), lambda: (
            f"data: {len(train_data.files)} training files in {len(train_data.batches)} batches; "
            f"{len(valid_data.files) if valid_data else 0} validation files; {total} updates; "
            f"model: {sum(p.numel() for p in objective.parameters())} parameters, "
            f"{len(vocabulary.symbols)} output symbols"))
        logged = Logged(objective, args.log_interval, args.update_freq, ref, save_dir, rank == 0)
        metric, maximize = args.best_checkpoint_metric, args.maximize_best_checkpoint_metric
        worst = -math.inf if maximize else math.inf

        def evaluate(name: str) -> dict:
            if int(objective.num_updates) < args.validate_after_updates:  # fairseq: no validation yet
                return {metric: worst}
            return evaluate_split(objective, valid_data)

        def on_save(ckpt: dict, names: list[str]) -> None:
            step, epoch = int(ckpt["Step"]), int(ckpt["Epoch"]) + 1
            best = ckpt.get("BestScore")
            best = None if best is None or math.isinf(best) else best
            extra = {"train_iterator": {"version": 2, "epoch": epoch, "iterations_in_epoch": int(ckpt["Position"]),
                                        "shuffle": True}, "best": best,
                     "s3prl": {k: v for k, v in ckpt.items() if k != "Objective"}}
            out = fairseq_finetuned_checkpoint(model, str(data), step, extra)
            out["cfg"]["checkpoint"] = {"best_checkpoint_metric": metric,
                                        "maximize_best_checkpoint_metric": maximize, "save_dir": str(save_dir)}
            out["cfg"]["common"] = {"seed": args.seed, "fp16": bool(args.fp16)}
            out["cfg"]["optimization"].update(max_update=args.max_update, lr=[lr], update_freq=[args.update_freq])
            out["cfg"]["optimizer"] = {"_name": "adam", "adam_betas": str(betas), "adam_eps": args.adam_eps,
                                       "weight_decay": args.weight_decay, "lr": [lr]}
            out["cfg"]["lr_scheduler"] = {"_name": args.lr_scheduler, "lr": [lr], **(
                {"phase_ratio": args.phase_ratio, "warmup_steps": args.warmup_steps, "hold_steps": args.hold_steps,
                 "decay_steps": args.decay_steps, "init_lr_scale": args.init_lr_scale,
                 "final_lr_scale": args.final_lr_scale, "max_update": args.max_update}
                if args.lr_scheduler == "tri_stage" else {})}
            loop.write_fairseq_files(out, args, names, step, epoch, per_epoch, save_every, best=best is not None)

        result = trainer.train(loop.wrap(logged, world, device), {"Objective": objective},
                               lambda e, s: train_data.iterate(e, s), evaluate, cfg,
                               save_dir, eval_splits=(args.valid_subset,) if valid_data else (),
                               selection=trainer.Selection(metric, higher_better=maximize), resume=resume,
                               progress=not args.no_progress_bar, make_optimizer=make_optimizer,
                               extra=loop.saved_args(args), on_save=on_save)
        logged.flush()
        if rank == 0:
            print(f"done: {result['step']} updates; best {metric} {result['best']}; checkpoints in {save_dir}")
        return 0
    finally:
        if started:
            dist.destroy_process_group()
