"""``s3prl downstream train|evaluate|tasks``: the SUPERB runner (the original ``run_downstream.py``)."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Benchmark an upstream on a downstream task with the SUPERB protocol: frozen upstream, softmax-weighted sum
of its hidden states, the task's head and hyper-parameters. Results go to result/downstream/EXPNAME.
Run under torchrun for several GPUs or machines."""

TRAIN_EPILOG = """\
examples:
  s3prl downstream train -u fbank -d fsdd_digits -n digits_fbank
  s3prl downstream train -u hubert -d speech_commands -n ks_hubert \\
      -o "task.root=/data/speech_commands_v0.01,,task.test_root=/data/speech_commands_test_set_v0.01"
  s3prl downstream train -a -n ks_hubert          # resume after an interruption
  torchrun --nproc_per_node 4 -m s3prl.cli downstream train ...
`s3prl downstream tasks` lists the tasks with their data layouts; -o keys are SECTION.NAME with sections
train (total_steps, lr, optimizer, log_step, eval_step, save_step, ...), task (the corpus options) and data
(batch_seconds, crop_seconds, cache, ...)."""

TRANSCRIBE_EPILOG = """\
examples:
  s3prl downstream transcribe -e result/downstream/asr_hubert a.wav b.flac
  s3prl downstream transcribe -e result/downstream/asr_hubert \\
      -o "task.decoder={kenlm_model: 4gram.arpa, lexicon: lexicon.txt, lm_weight: 2, word_score: -1}" a.wav"""

EVALUATE_EPILOG = """\
examples:
  s3prl downstream evaluate -e result/downstream/ks_hubert -t test      # its best dev checkpoint
  s3prl downstream evaluate -e result/downstream/ks_hubert/states-2000.ckpt -t dev
  s3prl downstream evaluate -u hubert -d quesst14_dtw -n qbe_hubert -t dev -l all -o task.root=/data/quesst14Database"""


def add_parsers(sub, common) -> None:
    p = sub.add_parser("downstream", parents=[common], help="train / evaluate a SUPERB downstream task on an upstream",
                       description=DESCRIPTION, epilog="Run `s3prl downstream MODE --help` for each mode's options.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--help-tasks", action="store_true", help=argparse.SUPPRESS)  # the old spelling of `tasks`
    p.set_defaults(run=cmd_downstream_usage, parser=p)
    modes = p.add_subparsers(dest="mode", metavar="MODE")

    experiment, cache = experiment_options(), cache_options()
    t = modes.add_parser("train", parents=[common, experiment, cache], help="train a task's head (and resume)",
                         description=DESCRIPTION + "\nThe head trains on the upstream's features, is evaluated "
                                     "on dev every eval_step, and the best dev checkpoint is tested.",
                         epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("-u", "--upstream", help="upstream registry name (s3prl list)")
    t.add_argument("-k", "--upstream_ckpt", help="the upstream's checkpoint file, folder or URL")
    t.add_argument("--extra-conf", dest="extra_conf", help="JSON options of the upstream entry (s3prl info NAME)")
    t.add_argument("-s", "--upstream_feature_selection", default="hidden_states",
                   help="hidden_states (all, default), last_hidden_state, hidden_state_N, or a family's own "
                        "selection such as fairseq_layers")
    t.add_argument("-l", "--upstream_layer_selection", type=int, help="use this one hidden state only")
    t.add_argument("--upstream_feature_normalize", action="store_true",
                   help="layer-normalise each hidden state before the weighted sum")
    t.add_argument("-f", "--upstream_trainable", action="store_true", help="fine-tune the upstream too")
    t.add_argument("-d", "--downstream", help="task name (s3prl downstream tasks)")
    t.add_argument("-c", "--config", help="YAML with sections train / task / data overriding the task's defaults")
    t.add_argument("-a", "--auto_resume", action="store_true",
                   help="resume the experiment if it has checkpoints (refused if -u / -d differ from the run's)")
    t.add_argument("--stop-after", dest="stop_after", type=int,
                   help="stop with a checkpoint after this many steps (resume later with -a)")
    t.set_defaults(run=cmd_train)

    e = modes.add_parser("evaluate", parents=[common, experiment, cache], help="evaluate a checkpoint on a split",
                         description="Evaluate a checkpoint (-e: a .ckpt file, or an experiment folder: its best "
                                     "dev checkpoint, else its latest) on split -t; writes results_<split>.json / "
                                     ".md and <split>_predict.txt next to the checkpoint.",
                         epilog=EVALUATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("-t", "--evaluate_split", default="test", help="split to evaluate (default: test)")
    # training-free tasks (QbE: quesst14_dtw) are evaluated straight from an upstream, without -e
    e.add_argument("-u", "--upstream", help="training-free tasks: upstream registry name")
    e.add_argument("-k", "--upstream_ckpt", help="training-free tasks: the upstream's checkpoint file or URL")
    e.add_argument("-d", "--downstream", help="training-free tasks: task name (e.g. quesst14_dtw)")
    e.add_argument("-l", "--upstream_layer_selection", help="training-free tasks: hidden state N, or all (default)")
    e.add_argument("-c", "--config", help="training-free tasks: YAML with sections task / data")
    e.set_defaults(run=cmd_evaluate)

    r = modes.add_parser("transcribe", parents=[common], help="transcribe audio files with a trained CTC task",
                         description="Run a trained PR / ASR / SF / OOD-ASR experiment on audio files and print "
                                     "'FILE<TAB>hypothesis' per file (the original's -m inference): greedy "
                                     "decoding, or lexicon + KenLM beam search with -o \"task.decoder={...}\".",
                         epilog=TRANSCRIBE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("files", nargs="*", metavar="AUDIO", help="audio files (any rate, mono or stereo)")
    r.add_argument("-e", "--past_exp", help="the experiment folder (its best dev checkpoint) or a .ckpt file")
    r.add_argument("-o", "--override", help="e.g. 'task.decoder={kenlm_model: lm.arpa, lexicon: lexicon.txt}'")
    r.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    r.set_defaults(run=cmd_transcribe)

    for mode, what in (("enhance", "enhanced"), ("separate", "separated")):
        a = modes.add_parser(mode, parents=[common], help=f"write {what} audio with a trained SE / SS run",
                             description=f"Run a trained enhancement_stft / separation_stft experiment on audio files "
                                         f"and write the {what} waveforms (16 kHz): OUTDIR/<name>.wav for one source, "
                                         "OUTDIR/<name>_s1.wav, _s2.wav ... for several.",
                             epilog=f"example:\n  s3prl downstream {mode} -e result/downstream/se_hubert a.wav -o out/",
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        a.add_argument("files", nargs="*", metavar="AUDIO", help="audio files (any rate: resampled to 16 kHz)")
        a.add_argument("-e", "--past_exp", help="the experiment folder (its best dev checkpoint) or a .ckpt file")
        a.add_argument("-o", "--outdir", help=f"folder for the output files (default: EXPDIR/{what})")
        a.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
        a.set_defaults(run=cmd_separate)

    k = modes.add_parser("tasks", parents=[common], help="list the tasks, their data layouts and metrics",
                         description="List every task with its data layout (what -o task.root=... must hold) "
                                     "and its metric.")
    k.add_argument("name", nargs="?", help="show one task in full (its default options too)")
    k.set_defaults(run=cmd_tasks)


def experiment_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-n", "--expname", help="experiment name: result/downstream/EXPNAME")
    p.add_argument("-p", "--expdir", help="experiment folder (instead of -n)")
    p.add_argument("-e", "--past_exp", help="resume (train) or evaluate this checkpoint or experiment folder")
    p.add_argument("-o", "--override", help="'train.lr=1e-3,,task.root=/data/x' (YAML values, nothing evaluated)")
    return p


def cache_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--no-cache", dest="no_cache", action="store_true",
                   help="do not cache a frozen upstream's hidden states (recompute them every epoch)")
    p.add_argument("--cache-dir", dest="cache_dir", help="feature cache folder (default: $S3PRL_CACHE/features)")
    p.add_argument("--cache-fp16", dest="cache_fp16", action="store_true", help="store cached features as float16")
    return p


def with_cache_overrides(args) -> None:
    overrides = []
    if args.no_cache:
        overrides.append("data.cache=false")
    if args.cache_dir:
        overrides.append(f"data.cache_dir={args.cache_dir}")
    if args.cache_fp16:
        overrides.append("data.cache_fp16=true")
    if overrides:
        args.override = ",,".join(filter(None, [*overrides, args.override]))


def cmd_downstream_usage(args) -> int:
    if args.help_tasks:
        return cmd_tasks(argparse.Namespace(name=None))
    args.parser.print_help()
    return 2


def cmd_train(args) -> int:
    from ..downstream import runner

    with_cache_overrides(args)
    return runner.cmd_train(args)


def cmd_evaluate(args) -> int:
    from ..downstream import runner, tasks

    with_cache_overrides(args)
    if getattr(args, "downstream", None) and not args.past_exp:
        task = tasks.get(args.downstream)
        if not getattr(task, "training_free", False):
            raise ValueError(f"task {task.name} is trained first: evaluate its experiment with -e (or -n); -u / -d "
                             "are for training-free tasks such as quesst14_dtw")
        if not args.upstream:
            raise ValueError(f"evaluate -d {task.name} needs -u UPSTREAM")
        return runner.cmd_evaluate_free(args)
    return runner.cmd_evaluate(args)


def cmd_transcribe(args) -> int:
    from ..downstream.transcribe import cmd_transcribe as run

    return run(args)


def cmd_separate(args) -> int:
    """``enhance`` / ``separate``: a trained SE / SS run on audio files, writing the estimates."""
    from pathlib import Path

    import torch

    from ..downstream import runner, tasks
    from ..downstream.config import UpstreamSpec
    from ..downstream.tasks.separation import SeparationTask, process_files

    if not args.files or not args.past_exp:
        raise ValueError(f"usage: s3prl downstream {args.mode} -e EXPDIR AUDIO... [-o OUTDIR] (-e and audio files "
                         "are needed)")
    missing = [f for f in args.files if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"audio file(s) not found: {', '.join(missing)}")
    target = Path(args.past_exp)
    path = target if target.is_file() else runner.pick_checkpoint(target)
    ckpt, device = runner.load_run(path), torch.device(args.device)
    task = tasks.get(ckpt["Config"]["task_name"])
    if not isinstance(task, SeparationTask):
        raise ValueError(f"{path} is a {task.name!r} run: {args.mode} takes enhancement_stft / separation_stft runs")
    spec = UpstreamSpec(**ckpt["Upstream_Spec"])
    upstream, featurizer = runner.build_upstream(spec, device)
    options = task.bind(ckpt["Config"]["task"], featurizer.downsample_rate)
    downstream = task.build(featurizer.output_size, ckpt["Classes"]).to(device)
    task.configure(downstream, options)
    model = runner.DownstreamModel(upstream, featurizer, downstream, task.objective, spec.trainable,
                                   upstream.num_layers)
    for key, module in model.parts().items():
        module.load_state_dict(ckpt[key])
    default = path.parent / {"enhance": "enhanced", "separate": "separated"}[args.mode]
    outdir = Path(args.outdir) if args.outdir else default
    for file, written in process_files(model.eval(), args.files, outdir):
        print(f"{file}\t{' '.join(written)}")
    return 0


def cmd_tasks(args) -> int:
    from ..downstream import tasks

    if args.name:
        task = tasks.get(args.name)
        print(f"{task.name}: {task.description}")
        print(f"metric: {task.metric} ({'higher' if task.higher_better else 'lower'} is better)")
        print("task options (-o task.KEY=VALUE):")
        for key, value in task.options.items():
            print(f"  {key} = {value!r}")
        print(f"data layout (task.root):\n{layout_of(task)}")
        return 0
    for task in tasks.TASKS.values():
        print(f"{task.name:<18} {task.metric:<10} {task.description}")
        print(f"{'':<18} layout: {layout_of(task).strip().splitlines()[0].strip()}")
    print("\n`s3prl downstream tasks NAME` shows a task's options and data layout.")
    return 0


def layout_of(task) -> str:
    """The folder layout the task's corpus reader expects (its module's ``LAYOUT``)."""
    import inspect

    return getattr(inspect.getmodule(task.corpus), "LAYOUT", "  (see the corpus reader's documentation)")
