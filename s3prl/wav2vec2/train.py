"""``s3prl wav2vec2 train``: fairseq's wav2vec 2.0 pre-training command line (``fairseq-train --task
audio_pretraining --arch wav2vec2 --criterion wav2vec ...``) on :func:`s3prl.train.train`.

The flags are fairseq's (names and defaults); a flag we parse but whose feature is not built is an error naming
it, never silently dropped. Pieces:

* data: the manifest's ``<subset>.tsv``; files shorter than ``--min-sample-size`` are dropped, sizes are capped at
  ``--max-sample-size``; batches as fairseq makes them (sizes sorted descending with random tie-breaks, filled
  while ``longest * count <= --max-tokens``, rounded down to a multiple of ``--required-batch-size-multiple``),
  shuffled every epoch; a batch is cropped to its shortest file (random offsets), ``--normalize`` standardises
  each whole file first.
* optimizer: fairseq's Adam (bias-corrected step size, ``eps`` added to the uncorrected root, weight decay
  decoupled: ``p -= wd * lr * p``) with the ``polynomial_decay`` schedule (linear warm-up, then
  ``(lr - end) * remaining ** power + end``), one value per update as fairseq's ``step_update``.
* checkpoints in fairseq 0.12's layout (``args``/``cfg``/``model``/``optimizer_history``/``extra_state``):
  ``checkpoint_last.pt`` at every save, ``checkpoint_best.pt`` (lowest valid loss), ``checkpoint<E>.pt`` or,
  with ``--save-interval-updates``, ``checkpoint_<E>_<U>.pt``. ``extra_state["s3prl"]`` holds what an exact
  resume needs (optimizer, random states, position); like fairseq, re-running the command resumes from
  ``SAVE_DIR/checkpoint_last.pt``.

``--task audio_finetuning --arch wav2vec_ctc --criterion ctc`` (CTC fine-tuning) runs
:func:`s3prl.wav2vec2.train_finetune.run_finetune` on the same parser.
"""

from __future__ import annotations

import argparse
import ast
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn

from .manifest import RecipeError
from .train_checkpoint import atomic_save, fairseq_cfg, fairseq_checkpoint, load_resume
from .train_data import AudioData, make_batches
from .train_schedule import FairseqAdam, polynomial_decay

__all__ = ["AudioData", "FairseqAdam", "add_arguments", "atomic_save", "fairseq_cfg", "fairseq_checkpoint",
           "load_resume", "make_batches", "polynomial_decay", "run"]

LN2 = math.log(2)

TRAIN_EPILOG = """\
The seed's pre-training command (examples/wav2vec/README.md) with `fairseq-train` replaced:
  s3prl wav2vec2 train /manifest/path --save-dir /model/path --fp16 --num-workers 6 --task audio_pretraining \\
    --criterion wav2vec --arch wav2vec2 --log-keys '["prob_perplexity","code_perplexity","temp"]' \\
    --quantize-targets --extractor-mode default --conv-feature-layers '[(512, 10, 5)] + [(512, 3, 2)] * 4 + \\
    [(512,2,2)] * 2' --final-dim 256 --latent-vars 320 --latent-groups 2 --latent-temp '(2,0.5,0.999995)' \\
    --infonce --optimizer adam --adam-betas '(0.9,0.98)' --adam-eps 1e-06 --lr-scheduler polynomial_decay \\
    --total-num-update 400000 --lr 0.0005 --warmup-updates 32000 --mask-length 10 --mask-prob 0.65 \\
    --mask-selection static --mask-other 0 --encoder-layerdrop 0.05 --dropout-input 0.1 --dropout-features 0.1 \\
    --feature-grad-mult 0.1 --loss-weights '[0.1, 10]' --conv-pos 128 --conv-pos-groups 16 --num-negatives 100 \\
    --cross-sample-negatives 0 --max-sample-size 250000 --min-sample-size 32000 --dropout 0.1 \\
    --attention-dropout 0.1 --weight-decay 0.01 --max-tokens 1400000 --max-update 400000 \\
    --skip-invalid-size-inputs-valid-test --ddp-backend no_c10d
A tiny model: add e.g. --encoder-layers 2 --encoder-embed-dim 64 --encoder-ffn-embed-dim 128
--encoder-attention-heads 4 --conv-pos 16 --conv-pos-groups 4 --final-dim 32 --latent-vars 32.
Several processes: torchrun --nproc_per_node N $(which s3prl) wav2vec2 train ... (--distributed-world-size must
then be N or absent). Re-running the same command resumes from SAVE_DIR/checkpoint_last.pt (fairseq's default).
Logged loss values are in bits (fairseq's base-2 loss)."""


def literal(text: str):
    """A python literal flag value ('(0.9,0.98)', '[0.1, 10]', "[(512, 10, 5)] + [(512, 3, 2)] * 4")."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        from ..convert.config import parse_conv_layers

        return parse_conv_layers(text, "command line", "conv_feature_layers")


# fairseq 0.12.2's examples/wav2vec/config/pretraining recipes, as flags (their values; the rest are defaults)
_COMMON = ["--fp16", "--log-format", "json", "--log-interval", "200", "--save-interval-updates", "25000",
           "--keep-interval-updates", "1", "--no-epoch-checkpoints", "--task", "audio_pretraining",
           "--min-sample-size", "32000", "--num-workers", "6", "--skip-invalid-size-inputs-valid-test",
           "--criterion", "wav2vec", "--infonce", "--optimizer", "adam", "--adam-betas", "(0.9,0.98)",
           "--adam-eps", "1e-06", "--weight-decay", "0.01", "--lr-scheduler", "polynomial_decay",
           "--warmup-updates", "32000", "--arch", "wav2vec2", "--quantize-targets", "--ddp-backend", "legacy_ddp"]
HYDRA_RECIPES = {
    "wav2vec2_base_librispeech": _COMMON + [
        "--max-sample-size", "250000", "--max-tokens", "1400000", "--distributed-world-size", "64",
        "--loss-weights", "[0.1, 10]", "--max-update", "400000", "--lr", "0.0005", "--final-dim", "256",
        "--encoder-layerdrop", "0.05", "--dropout-input", "0.1", "--dropout-features", "0.1",
        "--feature-grad-mult", "0.1", "--encoder-embed-dim", "768"],
    "wav2vec2_large_librivox": _COMMON + [
        "--max-sample-size", "320000", "--normalize", "--batch-size", "4", "--max-tokens", "1200000",
        "--distributed-world-size", "128", "--loss-weights", "[0.1, 0]", "--max-update", "1000000", "--lr", "0.005",
        "--extractor-mode", "layer_norm", "--layer-norm-first", "--final-dim", "768", "--latent-temp",
        "[2.0,0.1,0.999995]", "--encoder-layerdrop", "0.0", "--dropout-input", "0.0", "--dropout-features", "0.0",
        "--dropout", "0.0", "--attention-dropout", "0.0", "--conv-bias", "--encoder-layers", "24",
        "--encoder-embed-dim", "1024", "--encoder-ffn-embed-dim", "4096", "--encoder-attention-heads", "16",
        "--feature-grad-mult", "1.0"],
}
_HYDRA_KEYS = {"data": None, "update_freq": "--update-freq", "lr": "--lr", "batch_size": "--batch-size",
               "max_sentences": "--batch-size"}


def from_hydra(args) -> argparse.Namespace:
    """``fairseq-hydra-train --config-name RECIPE KEY=VALUE ...`` -> the flags of the recipe + the overrides."""
    items = ([args.data] if args.data else []) + list(args.overrides)
    if args.config_name in HYDRA_RECIPES:
        flags, data = list(HYDRA_RECIPES[args.config_name]), None
    else:  # a fine-tuning recipe (examples/wav2vec/config/finetuning)
        from .train_finetune import preset_flags

        flags, data = preset_flags(args.config_name), None
    for item in items:
        key, eq, value = item.lstrip("+").partition("=")
        if not eq:
            raise RecipeError(f"{item!r}: with --config-name every argument is a KEY=VALUE override (e.g. "
                              "task.data=/manifest/path)")
        name = key.split(".")[-1]
        value = value.strip().strip("'\"")
        if name == "data":
            data = value
            continue
        if name == "update_freq":
            value = value.strip("[]")
        flag = _HYDRA_KEYS.get(name, "--" + name.replace("_", "-"))
        if value.lower() in ("true", "false"):
            flags = [f for f in flags if f != flag] + ([flag] if value.lower() == "true" else [])
        else:
            flags += [flag, value]
    if data is None:
        raise RecipeError("the manifest folder is missing: add task.data=/manifest/path")
    parser = argparse.ArgumentParser(prog="s3prl wav2vec2 train --config-name", add_help=False)
    add_arguments(parser)
    try:
        out = parser.parse_args([data, *flags])
    except SystemExit:
        raise RecipeError(f"an override above has no equivalent here: {' '.join(items)}") from None
    for key in ("device", "cpu", "no_progress_bar"):
        setattr(out, key, getattr(args, key))
    out.save_dir = args.save_dir if args.save_dir != "checkpoints" else out.save_dir
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("data", metavar="MANIFEST_DIR", nargs="?", default=None,
      help="folder of train.tsv / valid.tsv (`s3prl wav2vec2 manifest`); with --config-name: task.data=DIR")
    a("overrides", nargs="*", metavar="KEY=VALUE", help="with --config-name: fairseq-hydra-train overrides "
      "(task.data=DIR, optimization.max_update=N, +optimization.update_freq='[8]', model.encoder_layers=2, ...)")
    from .finetune_recipes import PRESETS

    a("--config-name", default=None, choices=sorted(HYDRA_RECIPES) + list(PRESETS),
      help="fairseq-hydra-train form: start from this recipe of examples/wav2vec/config/pretraining "
           "(wav2vec2_*) or config/finetuning (base_*: CTC fine-tuning)")
    a("--config-dir", default=None, help="accepted with --config-name (the recipes are built in)")
    # general
    a("--task", default="audio_pretraining", help="audio_pretraining, or audio_finetuning (CTC fine-tuning)")
    a("--arch", default="wav2vec2", help="wav2vec2 (wav2vec_ctc with audio_finetuning)")
    a("--criterion", default="wav2vec", help="wav2vec (ctc with audio_finetuning)")
    a("--save-dir", default="checkpoints", help="checkpoints, log.txt, history.jsonl (default checkpoints)")
    a("--seed", type=int, default=1)
    a("--fp16", action="store_true", help="fp16 mixed precision on a GPU (ignored on the CPU, with a notice)")
    a("--bf16", action="store_true", help="bf16 mixed precision on a GPU")
    a("--cpu", action="store_true", help="train on the CPU even if a GPU is present")
    a("--device", default=None, help="ours: cpu, cuda, cuda:1")
    a("--log-interval", type=int, default=100, help="updates between log lines (default 100)")
    a("--log-keys", default=None, help="accepted: every fairseq key is logged")
    a("--log-format", default=None, help="accepted (one plain-text format)")
    a("--num-workers", type=int, default=1, help="accepted (data is read in the training process)")
    a("--ddp-backend", default=None, help="accepted (torch DDP, unused parameters allowed)")
    a("--distributed-world-size", type=int, default=None, help="must equal torchrun's WORLD_SIZE")
    a("--no-progress-bar", action="store_true")
    # dataset
    a("--max-tokens", type=int, default=None, help="samples per batch (longest x count)")
    a("--batch-size", "--max-sentences", dest="batch_size", type=int, default=None, help="files per batch")
    a("--required-batch-size-multiple", type=int, default=8)
    a("--max-sample-size", type=int, default=None, help="crop longer files to this many samples")
    a("--min-sample-size", type=int, default=None, help="drop files shorter than this")
    a("--normalize", action="store_true", help="zero mean, unit variance per file (large models)")
    a("--sample-rate", type=int, default=16000)
    a("--enable-padding", action="store_true", help="not supported (batches are cropped to their shortest file)")
    a("--train-subset", default="train")
    a("--valid-subset", default="valid")
    a("--skip-invalid-size-inputs-valid-test", action="store_true")
    a("--disable-validation", action="store_true")
    # optimisation
    a("--max-update", type=int, default=0)
    a("--max-epoch", type=int, default=0)
    a("--update-freq", type=int, default=1, help="batches accumulated per update")
    a("--clip-norm", type=float, default=0.0)
    a("--optimizer", default="adam")
    a("--adam-betas", default="(0.9, 0.999)")
    a("--adam-eps", type=float, default=1e-8)
    a("--weight-decay", type=float, default=0.0)
    a("--lr", default="0.25", help="peak learning rate")
    a("--lr-scheduler", default="fixed", help="polynomial_decay or fixed")
    a("--warmup-updates", type=int, default=0)
    a("--total-num-update", type=float, default=None, help="updates of the decay (default --max-update)")
    a("--end-learning-rate", type=float, default=0.0)
    a("--power", type=float, default=1.0)
    # checkpoints
    a("--save-interval", type=int, default=1, help="epochs between checkpoint<E>.pt (1 only)")
    a("--save-interval-updates", type=int, default=0)
    a("--validate-interval-updates", type=int, default=0)
    a("--no-epoch-checkpoints", action="store_true")
    a("--keep-interval-updates", type=int, default=-1)
    a("--restore-file", default="checkpoint_last.pt")
    # model (fairseq's Wav2Vec2Config)
    a("--extractor-mode", default="default", choices=("default", "layer_norm"))
    a("--conv-feature-layers", default=None, help="default [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] * 2")
    a("--conv-bias", action="store_true")
    a("--encoder-layers", type=int, default=12)
    a("--encoder-embed-dim", type=int, default=768)
    a("--encoder-ffn-embed-dim", type=int, default=3072)
    a("--encoder-attention-heads", type=int, default=12)
    a("--activation-fn", default="gelu")
    a("--layer-norm-first", action="store_true")
    a("--dropout", type=float, default=None, help="default 0.1 (pre-training), 0.0 (fine-tuning)")
    a("--attention-dropout", type=float, default=None, help="default 0.1 (pre-training), 0.0 (fine-tuning)")
    a("--activation-dropout", type=float, default=0.0)
    a("--encoder-layerdrop", type=float, default=0.0)
    a("--dropout-input", type=float, default=0.0)
    a("--dropout-features", type=float, default=0.0)
    a("--final-dim", type=int, default=0)
    a("--logit-temp", type=float, default=0.1)
    a("--quantize-targets", action="store_true")
    a("--quantize-input", action="store_true", help="not supported")
    a("--target-glu", action="store_true")
    a("--feature-grad-mult", type=float, default=None, help="default 1.0 (pre-training), 0.0 (fine-tuning)")
    a("--quantizer-depth", type=int, default=1)
    a("--quantizer-factor", type=int, default=3)
    a("--latent-vars", type=int, default=320)
    a("--latent-groups", type=int, default=2)
    a("--latent-dim", type=int, default=0)
    a("--latent-temp", default="(2, 0.5, 0.999995)")
    a("--mask-length", type=int, default=10)
    a("--mask-prob", type=float, default=None, help="default 0.65 (pre-training), 0.5 (fine-tuning)")
    a("--mask-selection", default="static")
    a("--mask-other", type=float, default=0.0)
    a("--no-mask-overlap", action="store_true", help="not supported")
    a("--mask-min-space", type=int, default=1)
    a("--mask-channel-length", type=int, default=10)
    a("--mask-channel-prob", type=float, default=0.0)
    a("--mask-channel-selection", default="static")
    a("--mask-channel-other", type=float, default=0.0)
    a("--num-negatives", type=int, default=None, help="default 100 (wav2vec 1.0: 10)")
    a("--negatives-from-everywhere", action="store_true", help="not supported")
    a("--cross-sample-negatives", type=int, default=0)
    a("--codebook-negatives", type=int, default=0, help="not supported (0 only)")
    a("--conv-pos", type=int, default=128)
    a("--conv-pos-groups", type=int, default=16)
    # criterion
    a("--infonce", action="store_true", help="InfoNCE loss (required: the binary cross-entropy form is not built)")
    a("--loss-weights", default=None, help="weights of the extra losses, e.g. '[0.1, 10]'")
    from .train_finetune import add_finetune_arguments

    add_finetune_arguments(p)
    from .train_wav2vec1 import add_wav2vec1_arguments

    add_wav2vec1_arguments(p)


def _fail(flag: str, value, rule: str) -> None:
    raise RecipeError(f"{flag} {value!r}: {rule}")


def _check_unsupported(args) -> None:
    if args.task != "audio_pretraining":
        _fail("--task", args.task, "`s3prl wav2vec2 train` runs audio_pretraining or audio_finetuning")
    if args.arch != "wav2vec2":
        _fail("--arch", args.arch, "wav2vec2, or wav2vec (wav2vec 1.0 / vq-wav2vec; without the wav2vec2 flags)")
    if args.criterion != "wav2vec":
        _fail("--criterion", args.criterion, "only the wav2vec criterion is supported")
    if not args.infonce:
        raise RecipeError("--infonce is missing: wav2vec 2.0 is trained with the InfoNCE loss (the binary "
                          "cross-entropy variant is not built); add --infonce as the seed's command has it")
    if args.optimizer != "adam":
        _fail("--optimizer", args.optimizer, "only adam is supported")
    if args.lr_scheduler not in ("polynomial_decay", "fixed"):
        _fail("--lr-scheduler", args.lr_scheduler, "polynomial_decay or fixed")
    for flag, value, ok in [("--quantize-input", args.quantize_input, False),
                            ("--no-mask-overlap", args.no_mask_overlap, False),
                            ("--mask-min-space", args.mask_min_space, 1),
                            ("--negatives-from-everywhere", args.negatives_from_everywhere, False),
                            ("--codebook-negatives", args.codebook_negatives, 0),
                            ("--enable-padding", args.enable_padding, False),
                            ("--save-interval", args.save_interval, 1),
                            ("--sample-rate", args.sample_rate, 16000)]:
        if value != ok:
            _fail(flag, value, f"not supported here (only {ok!r}); drop the flag")
    if args.restore_file != "checkpoint_last.pt":
        _fail("--restore-file", args.restore_file, "not supported: runs resume from SAVE_DIR/checkpoint_last.pt")
    if args.max_tokens is None and args.batch_size is None:
        raise RecipeError("give --max-tokens (samples per batch, e.g. 1400000) or --batch-size")
    if not args.max_update and not args.max_epoch:
        raise RecipeError("give --max-update (number of updates) or --max-epoch")


PRETRAIN_DEFAULTS = {"dropout": 0.1, "attention_dropout": 0.1, "mask_prob": 0.65, "feature_grad_mult": 1.0,
                     "conv_feature_layers": "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] + [(512,2,2)]",
                     "num_negatives": 100}


@dataclass
class Setup:
    """Everything the command line decides, in our types."""

    arch: object  # Wav2Vec2Config
    pretrain: object  # Wav2Vec2PretrainConfig
    lr: float
    betas: tuple[float, float]
    eps: float
    weight_decay: float


def setup_from_args(args) -> Setup:
    from ..upstream.wav2vec2 import Wav2Vec2Config
    from .pretraining import Wav2Vec2PretrainConfig

    for key, value in PRETRAIN_DEFAULTS.items():  # flags whose default depends on the task
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    _check_unsupported(args)
    try:
        conv = tuple(tuple(int(v) for v in layer) for layer in literal(args.conv_feature_layers))
        temp = tuple(float(v) for v in literal(args.latent_temp))
        betas = tuple(float(v) for v in literal(args.adam_betas))
        weights = () if args.loss_weights is None else literal(args.loss_weights)
        weights = tuple(float(w) for w in (weights if isinstance(weights, (list, tuple)) else [weights]))
        lrs = literal(args.lr) if isinstance(args.lr, str) else args.lr
        lr = float(lrs[0] if isinstance(lrs, (list, tuple)) else lrs)
    except (TypeError, ValueError) as err:
        raise RecipeError(f"a list-valued flag could not be read ({err}): --conv-feature-layers takes e.g. "
                          "'[(512, 10, 5)] + [(512, 3, 2)] * 4', --latent-temp '(2,0.5,0.999995)', --adam-betas "
                          "'(0.9,0.98)', --loss-weights '[0.1, 10]', --lr 0.0005") from None
    if len(temp) != 3:
        _fail("--latent-temp", args.latent_temp, "needs (start, end, decay)")
    if len(betas) != 2:
        _fail("--adam-betas", args.adam_betas, "needs (beta1, beta2)")
    if args.encoder_embed_dim % args.encoder_attention_heads:
        _fail("--encoder-attention-heads", args.encoder_attention_heads, "must divide --encoder-embed-dim")
    if args.encoder_embed_dim % args.conv_pos_groups:
        _fail("--conv-pos-groups", args.conv_pos_groups, "must divide --encoder-embed-dim")
    if args.quantize_targets and (args.final_dim or args.encoder_embed_dim) % args.latent_groups \
            and not args.latent_dim:
        _fail("--latent-groups", args.latent_groups, "must divide --final-dim")
    arch = Wav2Vec2Config(conv_layers=conv, extractor_mode=args.extractor_mode, conv_bias=args.conv_bias,
                          embed_dim=args.encoder_embed_dim, ffn_dim=args.encoder_ffn_embed_dim,
                          num_layers=args.encoder_layers, num_heads=args.encoder_attention_heads,
                          activation=args.activation_fn, layer_norm_first=args.layer_norm_first,
                          conv_pos=args.conv_pos, conv_pos_groups=args.conv_pos_groups,
                          normalize_waveform=False,  # --normalize: the data standardises each whole file
                          dropout=args.dropout, attention_dropout=args.attention_dropout,
                          activation_dropout=args.activation_dropout)
    pre = Wav2Vec2PretrainConfig(
        final_dim=args.final_dim, latent_vars=args.latent_vars, latent_groups=args.latent_groups,
        latent_dim=args.latent_dim, latent_temp=temp, quantizer_depth=args.quantizer_depth,
        quantizer_factor=args.quantizer_factor, quantize_targets=args.quantize_targets, target_glu=args.target_glu,
        logit_temp=args.logit_temp, num_negatives=args.num_negatives,
        cross_sample_negatives=args.cross_sample_negatives, feature_grad_mult=args.feature_grad_mult,
        dropout_input=args.dropout_input, dropout_features=args.dropout_features,
        encoder_layerdrop=args.encoder_layerdrop, mask_prob=args.mask_prob, mask_length=args.mask_length,
        mask_selection=args.mask_selection, mask_other=args.mask_other, mask_channel_prob=args.mask_channel_prob,
        mask_channel_length=args.mask_channel_length, mask_channel_selection=args.mask_channel_selection,
        mask_channel_other=args.mask_channel_other, loss_weights=weights)
    return Setup(arch, pre, lr, betas, args.adam_eps, args.weight_decay)


# ------------------------------------------------------------------------------------------------
# the command
# ------------------------------------------------------------------------------------------------


class Logged(nn.Module):
    """The objective, plus fairseq's training log: the mean of its values every ``interval`` updates
    (:meth:`summarize` says which; the pre-training one adds accuracy, perplexities and the collapse warning)."""

    def __init__(self, objective, interval: int, accum: int, optimizer_ref: list, expdir: Path, groups: int,
                 leader: bool):
        super().__init__()
        self.objective, self.interval, self.accum, self.ref = objective, interval, accum, optimizer_ref
        self.expdir, self.groups, self.leader, self.records, self.calls = expdir, groups, leader, [], 0

    def forward(self, batch):
        loss = self.objective(batch)  # loss / sample_size
        self.records.append(dict(self.objective.last_log))
        self.calls += 1
        if self.calls % (self.interval * self.accum) == 0:
            self.flush(before_step=True)
        # (summed loss, sample size): the loop divides the update's gradient by the total sample size of its
        # micro-batches and processes, as fairseq's trainer does with --update-freq and several GPUs
        size = self.objective.last_log["sample_size"]
        return loss * size, size

    def flush(self, before_step: bool = False) -> None:
        from .. import train as trainer

        records, self.records = self.records, []
        if not self.leader or not records:
            return
        step = int(self.objective.num_updates) + int(before_step)  # the update these batches belong to
        out = self.summarize(records)
        out["lr"] = self.ref[0].rate(step - 1) if self.ref else float("nan")
        trainer.log(f"update {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in out.items()), self.expdir)
        trainer.append_history(self.expdir, {"step": step, "split": "train_inner", **out})
        self.warn(records, out, step)

    def summarize(self, records: list[dict]) -> dict:
        size = sum(r["sample_size"] for r in records) or 1
        out = {"loss": sum(r["loss"] for r in records) / size / LN2}
        for key in sorted({k for r in records for k in r if k.startswith("loss_")}):
            out[key] = sum(r.get(key, 0.0) for r in records) / size / LN2
        count = sum(r["count"] for r in records)
        out["accuracy"] = sum(r["correct"] for r in records) / count if count else float("nan")
        for key in ("code_perplexity", "prob_perplexity", "temp"):
            if key in records[0]:
                out[key] = sum(r[key] for r in records) / len(records)
        return out

    def warn(self, records: list[dict], out: dict, step: int) -> None:
        from .. import train as trainer
        from .criterion import collapse_warning

        if "code_perplexity" not in out:
            return
        merged = {"code_perplexity": out.get("code_perplexity"), "correct": sum(r["correct"] for r in records),
                  "count": sum(r["count"] for r in records)}
        warning = collapse_warning(merged, self.groups)
        if warning:
            trainer.log(f"update {step}: WARNING {warning}", self.expdir)


def evaluate_split(objective, data: AudioData) -> dict:
    """fairseq's validation: the loss (bits per masked frame) and accuracy over the whole split, eval mode."""
    objective.eval()
    total = size = correct = count = 0.0
    with torch.no_grad():
        for b in range(len(data.batches)):
            objective(data.batch(b, 0))
            log = objective.last_log
            total, size = total + log["loss"], size + log["sample_size"]
            correct, count = correct + log["correct"], count + log["count"]
    return {"loss": total / max(size, 1) / LN2, "accuracy": correct / count if count else float("nan")}


def run(args) -> int:
    from .. import train as trainer
    from . import train_loop as loop
    from .criterion import Wav2Vec2Objective
    from .fairseq_init import init_like_fairseq
    from .pretraining import Wav2Vec2PreTraining

    hydra = args.config_name is not None
    if hydra:
        args = from_hydra(args)
    elif args.overrides:
        raise RecipeError(f"unexpected arguments {' '.join(args.overrides)}: KEY=VALUE overrides need --config-name")
    if args.data is None:
        raise RecipeError("the manifest folder (MANIFEST_DIR, with train.tsv and valid.tsv) is missing")
    if args.task == "audio_finetuning":
        from .train_finetune import run_finetune

        return run_finetune(args)
    from .train_wav2vec1 import ARCHS, reject_own_flags, run_wav2vec1

    if args.arch in ARCHS:
        return run_wav2vec1(args)
    reject_own_flags(args)
    setup = setup_from_args(args)
    world_env = int(os.environ.get("WORLD_SIZE", "1"))
    if args.distributed_world_size is not None and args.distributed_world_size != world_env:
        n = args.distributed_world_size
        fix = (f"override distributed_training.distributed_world_size={world_env} "
               f"+optimization.update_freq='[{max(1, n // world_env)}]' to simulate {n} GPUs with gradient "
               "accumulation, as fairseq's README says" if hydra else "drop the flag")
        raise RecipeError(f"--distributed-world-size {n} but {world_env} process(es) run: start them with "
                          f"torchrun --nproc_per_node {n} (one per GPU), or {fix}")
    precision, rank, world, device, started = loop.start(args)
    save_dir = Path(args.save_dir)
    try:
        train_data, valid_data = loop.load_splits(
            lambda name, **kw: AudioData(str(Path(args.data) / f"{name}.tsv"), **kw), args, rank, world)
        per_epoch, total, save_every = loop.update_counts(args, train_data)
        model = Wav2Vec2PreTraining(setup.arch, setup.pretrain)
        if not (save_dir / "checkpoint_last.pt").is_file():  # fresh: fairseq's init (a resume loads weights)
            init_like_fairseq(model)
        objective = Wav2Vec2Objective(model).to(device)
        rate = polynomial_decay(setup.lr, args.warmup_updates, args.total_num_update or total, args.end_learning_rate,
                                args.power) if args.lr_scheduler == "polynomial_decay" else (lambda _: setup.lr)
        make_optimizer, ref = loop.optimizer_factory(objective, setup.lr, setup.betas, setup.eps, setup.weight_decay,
                                                     rate)
        cfg = loop.loop_config(args, total, save_every, setup.lr, precision)
        resume = loop.resume_or_describe(args, rank, lambda last: load_resume(last, objective), lambda: (
            f"data: {len(train_data.files)} training files in {len(train_data.batches)} batches "
            f"({train_data.dropped} dropped by --min-sample-size / --max-tokens); "
            f"{len(valid_data.files) if valid_data else 0} validation files; {total} updates; "
            f"model: {sum(p.numel() for p in objective.parameters())} parameters"))
        logged = Logged(objective, args.log_interval, args.update_freq, ref, save_dir,
                        setup.pretrain.latent_groups, rank == 0)
        net = loop.wrap(logged, world, device)
        fs_cfg = fairseq_cfg(args, setup)

        def batches(epoch: int, start: int):
            return train_data.iterate(epoch, start)

        def evaluate(split: str) -> dict:
            return evaluate_split(objective, valid_data)

        def on_save(ckpt: dict, names: list[str]) -> None:
            out = fairseq_checkpoint(ckpt, objective, fs_cfg, ckpt.get("BestScore"))
            loop.write_fairseq_files(out, args, names, int(ckpt["Step"]), int(ckpt["Epoch"]) + 1, per_epoch,
                                     save_every)

        result = trainer.train(net, {"Objective": objective}, batches, evaluate, cfg, save_dir,
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
