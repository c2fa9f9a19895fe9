"""``s3prl pretrain``: pre-train an upstream with an s3prl method (the original ``run_pretrain.py``)."""

from __future__ import annotations

import argparse

# = s3prl.pretrain.methods.METHODS (kept here so that `--help` imports no torch; a test checks they agree)
METHODS = ("apc", "vq_apc", "npc", "mockingjay", "tera", "audio_albert", "spec_augment", "distiller")

DESCRIPTION = """\
Pre-train an upstream with one of the s3prl methods, with the original's default configurations (named by
the method) or its config_model.yaml (-g) / config_runner.yaml (-c) files. Features are computed once and
cached. Checkpoints go to result/pretrain/NAME/states-*.ckpt and load with S3PRLUpstream("<entry>_local",
path_or_url=...) (apc_local for APC and VQ-APC, npc_local, mockingjay_local, tera_local,
audio_albert_local, spec_augment_local, distiller_local) and in the original s3prl. DistilHuBERT
(-u distiller) distils a teacher (teacher.model: any S3PRLUpstream name, teacher.path: a local file;
HuBERT Base by default) whose target layers are cached on disk on the first pass."""

EPILOG = """\
examples:
  s3prl pretrain -u apc -n apc_libri -o "config.pretrain_expert.datarc.libri_root=/data/LibriSpeech,,\\
config.pretrain_expert.datarc.sets=['train-clean-100']"
  s3prl pretrain -u vq_apc -n vqapc_mine -o "config.pretrain_expert.datarc.audio_dir=/data/wavs,,\\
config.runner.total_steps=20000,,config.runner.n_epochs=-1"
  s3prl pretrain -u distiller -n distil -o "upstream.teacher.model=hubert_local,,\\
upstream.teacher.path=/models/hubert_base_ls960.pt,,config.pretrain_expert.datarc.audio_dir=/data/wavs"
  s3prl pretrain -u apc -n apc_libri -a          # resume after an interruption
-o keys: config.runner.*, config.optimizer.*, config.pretrain_expert.datarc.* (the runner file) and
upstream.<section>.* (the model file: model/task/data for APC and NPC, distiller/teacher/task/audio for
DistilHuBERT, transformer/task/audio for the others). Data sources in datarc: libri_root + sets (+ file_path
with len_for_bucket csvs), audio_dir (any folder) or manifest (a file list)."""


def add_parsers(sub, common) -> None:
    p = sub.add_parser("pretrain", parents=[common],
                       help="pre-train an upstream (APC, VQ-APC, NPC, Mockingjay, TERA, Audio ALBERT, SpecAugment, "
                            "DistilHuBERT)",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-u", "--upstream", choices=METHODS, help="the pre-training method")
    p.add_argument("-n", "--expname", help="experiment name: result/pretrain/NAME")
    p.add_argument("-p", "--expdir", help="experiment folder (instead of -n)")
    p.add_argument("-g", "--config_model", help="the original's config_model.yaml (default: the method's)")
    p.add_argument("-c", "--config_runner", help="the original's config_runner.yaml (default: the method's)")
    p.add_argument("-o", "--override", help="'config.optimizer.lr=1e-3,,config.runner.total_steps=100'")
    p.add_argument("-a", "--auto_resume", action="store_true", help="resume the experiment from its latest checkpoint")
    p.add_argument("-e", "--past_exp", help="resume from this checkpoint (or folder: its latest)")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--cache-dir", dest="cache_dir", help="feature cache folder (default: EXPDIR/features)")
    p.add_argument("--stop-after", dest="stop_after", type=int,
                   help="stop with a checkpoint after this many steps (resume later with -a)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_pretrain)


def cmd_pretrain(args) -> int:
    from ..pretrain import runner

    if args.upstream is None and args.past_exp is None and not args.auto_resume:
        raise ValueError("choose a method with -u (" + ", ".join(METHODS) + ")")
    return runner.cmd_pretrain(args)
