"""``s3prl downstream transcribe -e EXPDIR audio.wav ...``: a trained CTC task on audio files (the original's
``-m inference``): greedy decoding, or the lexicon + KenLM decoder with ``-o "task.decoder={...}"``."""

from __future__ import annotations

from pathlib import Path

import torch

from ..audio import load_audio
from . import tasks
from .config import UpstreamSpec, merge, parse_overrides, validate
from .data import SAMPLE_RATE, Batch
from .runner import DownstreamModel, build_upstream, load_run, pick_checkpoint
from .tasks.ctc import CTCTask


def load_model(target: Path, override: str | None, device: torch.device) -> tuple[DownstreamModel, tasks.Task]:
    """The experiment's upstream, featurizer and head with the checkpoint's weights (``target``: a .ckpt or a
    folder, whose best dev checkpoint, else latest, is used)."""
    path = target if target.is_file() else pick_checkpoint(target)
    ckpt = load_run(path)
    config = validate(merge(ckpt["Config"], parse_overrides(override), "-o"))
    task = tasks.get(config["task_name"])
    if not isinstance(task, CTCTask):
        raise ValueError(f"{path} is a {task.name!r} run: transcribe takes the runs of the CTC tasks "
                         f"({', '.join(n for n, t in tasks.TASKS.items() if isinstance(t, CTCTask))}); "
                         "use `s3prl downstream evaluate` for the others")
    spec = UpstreamSpec(**ckpt["Upstream_Spec"])
    upstream, featurizer = build_upstream(spec, device)
    options = task.bind(config["task"], featurizer.downsample_rate)
    downstream = task.build(featurizer.output_size, ckpt["Classes"]).to(device)
    task.configure(downstream, options)
    model = DownstreamModel(upstream, featurizer, downstream, task.objective, spec.trainable, upstream.num_layers)
    for key, module in model.parts().items():
        module.load_state_dict(ckpt[key])
    return model.eval(), task


@torch.no_grad()
def transcribe(model: DownstreamModel, task: tasks.Task, files: list[str]) -> list[tuple[str, str]]:
    """``(file, hypothesis)`` per file, each file run on its own (batch size 1, as the original evaluates)."""
    out = []
    for file in files:
        wav = load_audio(file, SAMPLE_RATE)
        batch = Batch(wav[None], torch.tensor([len(wav)]), None, [Path(file).stem])
        hs, hs_len = model.features(batch)
        out.append((file, str(task.objective.predict(model.downstream, hs, hs_len)[0])))
    return out


def cmd_transcribe(args) -> int:
    if not args.files:
        raise ValueError("give the audio files to transcribe: s3prl downstream transcribe -e EXPDIR a.wav b.flac")
    missing = [f for f in args.files if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"audio file(s) not found: {', '.join(missing)}")
    if not args.past_exp:
        raise ValueError("name the trained run with -e EXPDIR (or a .ckpt file)")
    device = torch.device(args.device)
    model, task = load_model(Path(args.past_exp), args.override, device)
    for file, text in transcribe(model.to(device), task, args.files):
        print(f"{file}\t{text}")
    return 0
