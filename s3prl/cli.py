"""The ``s3prl`` command: ``list``, ``info``, ``extract``, ``downstream`` and ``demo``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
SAMPLE_RATE = 16000


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except (ValueError, FileNotFoundError, NotImplementedError, RuntimeError) as err:
        print(f"s3prl {args.command}: error: {err}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3prl",
        description="Self-supervised speech representations: list upstreams, show their cards, extract features.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="list upstream names", description="List every upstream name of the registry.")
    p.add_argument("--family", help="only names of this family (e.g. wav2vec2, hubert, baseline)")
    p.add_argument("--registered", action="store_true", help="only names with a built-in checkpoint")
    p.add_argument("--implemented", action="store_true", help="only names whose family is implemented")
    p.set_defaults(run=cmd_list)

    p = sub.add_parser("info", help="show one upstream's entry and model card",
                       description="Show an upstream's family, checkpoint URLs, options and model card.")
    p.add_argument("name")
    p.set_defaults(run=cmd_info)

    p = sub.add_parser(
        "extract",
        help="extract hidden states of audio files to disk",
        description=(
            "Run an upstream on audio files or folders and write each file's hidden states to OUTDIR as "
            "<name>.pt ({'hidden_states': [(T, D) per layer], 'layers', 'upstream', 'downsample_rates', ...}). "
            "Files already extracted are skipped, so an interrupted run resumes where it stopped. "
            "Without INPUT, a demo clip is generated and extracted with the default upstream (fbank)."
        ),
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="audio files or folders (searched recursively)")
    p.add_argument("-u", "--upstream", default="fbank", help="registry name (default: fbank)")
    p.add_argument("-k", "--ckpt", help="checkpoint file, folder or URL (overrides the entry's default)")
    p.add_argument("--extra-conf", default="{}", help='JSON options of the entry, e.g. \'{"feature_selection": "fairseq_layers"}\'')
    p.add_argument("-o", "--outdir", default="extracted", help="output folder (default: ./extracted)")
    p.add_argument("-l", "--layers", help="comma-separated hidden-state indices to keep (default: all)")
    p.add_argument("--normalize", action="store_true", help="layer-normalise each hidden state")
    p.add_argument("--fp16", action="store_true", help="store half-precision tensors (half the disk space)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--batch-seconds", type=float, default=60.0,
                   help="audio seconds per batch; files are sorted by length and batched by duration (default: 60)")
    p.add_argument("--overwrite", action="store_true", help="extract again files whose output exists")
    p.set_defaults(run=cmd_extract)
    add_downstream_parser(sub)
    return parser


# ------------------------------------------------------------------------------------------------
# list / info
# ------------------------------------------------------------------------------------------------


def cmd_list(args) -> int:
    from . import registry
    from .upstream import FAMILIES

    rows = []
    for name in registry.available_names(args.registered):
        canonical, entry = registry.resolve(name)
        if args.family and entry.family != args.family:
            continue
        if args.implemented and entry.family not in FAMILIES:
            continue
        kind = "alias -> " + canonical if canonical != name else (
            "your checkpoint" if entry.user_ckpt else ("built-in" if not entry.urls else "download"))
        status = "ok" if entry.family in FAMILIES else "not yet"
        rows.append((name, entry.family, status, kind))
    width = max((len(r[0]) for r in rows), default=4)
    print(f"{'name':<{width}}  {'family':<16} {'impl.':<8} source")
    for name, family, status, kind in rows:
        print(f"{name:<{width}}  {family:<16} {status:<8} {kind}")
    print(f"\n{len(rows)} names")
    return 0


def cmd_info(args) -> int:
    from . import registry
    from .upstream import FAMILIES

    canonical, entry = registry.resolve(args.name)
    if canonical != args.name:
        print(f"{args.name} is an alias of {canonical}")
    print(f"name:        {canonical}")
    print(f"family:      {entry.family} ({'implemented' if entry.family in FAMILIES else 'not implemented yet'})")
    if entry.user_ckpt:
        print("checkpoint:  yours (pass path_or_url= / -k)")
    for i, url in enumerate(entry.urls):
        sha = entry.sha256[i] if i < len(entry.sha256) and entry.sha256[i] else "unknown"
        print(f"checkpoint:  {url}\n  sha256:    {sha}")
    for url in entry.original_urls:
        print(f"original:    {url}")
    if entry.extra_conf:
        print(f"extra_conf:  {json.dumps(dict(entry.extra_conf))}")
    if entry.card:
        for field in ("paper", "citation", "data", "architecture"):
            print(f"{field + ':':<14}{getattr(entry.card, field)}")
    return 0


# ------------------------------------------------------------------------------------------------
# extract
# ------------------------------------------------------------------------------------------------


def find_audio(inputs: list[str]) -> list[tuple[Path, Path]]:
    """(file, path relative to its input root) for every audio file under the inputs."""
    found = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.suffix.lower() in AUDIO_SUFFIXES and file.is_file():
                    found.append((file, file.relative_to(path)))
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            raise FileNotFoundError(f"input {item!r} is neither an audio file nor a folder")
    if not found:
        raise FileNotFoundError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {inputs}")
    return found


def make_demo_clip(path: Path, seconds: float = 3.0) -> Path:
    """Write a speech-like test signal (gliding harmonics with syllable envelopes), made here, not fetched."""
    import numpy as np
    import soundfile as sf

    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)  # a slowly gliding pitch
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 2  # three syllables a second
    noise = np.random.default_rng(0).normal(0, 0.01, t.shape)
    wav = (0.3 * voice * envelope / np.abs(voice).max() + noise).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav, SAMPLE_RATE)
    return path


def batches_by_duration(lengths: list[int], budget: int) -> list[list[int]]:
    """Indices sorted by length, grouped so that each batch's padded size stays within ``budget`` samples."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches, current = [], []
    for i in order:
        if current and lengths[i] * (len(current) + 1) > budget:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def save_atomic(obj, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def cmd_extract(args) -> int:
    import torch
    from tqdm import tqdm

    from .audio import load_audio
    from .nn import S3PRLUpstream

    outdir = Path(args.outdir)
    inputs = args.inputs
    if not inputs:
        clip = make_demo_clip(outdir / "demo_input" / "demo.wav")
        print(f"no INPUT given: generated a 3 s demo clip at {clip}")
        inputs = [str(clip.parent)]
    try:
        extra_conf = json.loads(args.extra_conf)
    except json.JSONDecodeError as err:
        raise ValueError(f"--extra-conf is not valid JSON ({err}): {args.extra_conf!r}") from None
    files = find_audio(inputs)
    targets = [outdir / rel.with_suffix(".pt") for _, rel in files]
    todo = [i for i, t in enumerate(targets) if args.overwrite or not t.exists()]
    print(f"{len(files)} audio files, {len(files) - len(todo)} already extracted, {len(todo)} to do")
    if not todo:
        return 0

    upstream = S3PRLUpstream(args.upstream, path_or_url=args.ckpt, extra_conf=extra_conf,
                             normalize=args.normalize).to(args.device).eval()
    layers = parse_layers(args.layers, upstream.num_layers)
    print(f"upstream {args.upstream}: {upstream.num_layers} hidden states of sizes {sorted(set(upstream.hidden_sizes))}, "
          f"keeping {len(layers)}")

    wavs = {i: load_audio(files[i][0], SAMPLE_RATE) for i in tqdm(todo, desc="reading audio", disable=None)}
    budget = max(1, int(args.batch_seconds * SAMPLE_RATE))
    order = batches_by_duration([len(wavs[i]) for i in todo], budget)
    start, seconds = time.perf_counter(), 0.0
    with torch.inference_mode(), tqdm(total=len(todo), desc="extracting", unit="file", disable=None) as bar:
        for batch in order:
            ids = [todo[j] for j in batch]
            lens = torch.tensor([len(wavs[i]) for i in ids])
            padded = torch.nn.utils.rnn.pad_sequence([wavs[i] for i in ids], batch_first=True).to(args.device)
            all_hs, all_lens = upstream(padded, lens.to(args.device))
            for b, i in enumerate(ids):
                states = [all_hs[l][b, : int(all_lens[l][b])].cpu() for l in layers]
                if args.fp16:
                    states = [s.half() for s in states]
                save_atomic({"hidden_states": states, "layers": layers, "upstream": args.upstream,
                             "downsample_rates": [upstream.downsample_rates[l] for l in layers],
                             "sample_rate": SAMPLE_RATE, "source": str(files[i][0])}, targets[i])
            seconds += float(lens.sum()) / SAMPLE_RATE
            bar.update(len(ids))
    elapsed = time.perf_counter() - start
    print(f"wrote {len(todo)} files to {outdir} ({seconds:.1f} s of audio in {elapsed:.1f} s, "
          f"{seconds / max(elapsed, 1e-9):.1f}x real time)")
    return 0


def parse_layers(spec: str | None, num_layers: int) -> list[int]:
    if spec is None:
        return list(range(num_layers))
    try:
        layers = [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--layers must be comma-separated integers, got {spec!r}") from None
    bad = [l for l in layers if not -num_layers <= l < num_layers]
    if bad:
        raise ValueError(f"--layers {bad} out of range: this upstream has {num_layers} hidden states")
    return [l % num_layers for l in layers]


# ------------------------------------------------------------------------------------------------
# downstream (the SUPERB runner) and demo
# ------------------------------------------------------------------------------------------------


def add_downstream_parser(sub) -> None:
    """``s3prl downstream train|evaluate``: the original ``run_downstream.py`` options where they make sense."""
    p = sub.add_parser(
        "downstream", help="train / evaluate a SUPERB downstream task on an upstream",
        description="Benchmark an upstream on a downstream task (SUPERB protocol: frozen upstream, weighted sum "
                    "of its hidden states, the task's head). Results go to result/downstream/EXPNAME. "
                    "Run under torchrun for several GPUs or machines.")
    p.add_argument("mode", nargs="?", choices=["train", "evaluate"])
    p.add_argument("-u", "--upstream", help="upstream registry name (s3prl list)")
    p.add_argument("-k", "--upstream_ckpt", help="the upstream's checkpoint file, folder or URL")
    p.add_argument("--extra-conf", dest="extra_conf", help="JSON options of the upstream entry")
    p.add_argument("-s", "--upstream_feature_selection", default="hidden_states",
                   help="hidden_states (all, default), last_hidden_state, hidden_state_N, or a family's own "
                        "selection such as fairseq_layers")
    p.add_argument("-l", "--upstream_layer_selection", type=int, help="use this one hidden state only")
    p.add_argument("--upstream_feature_normalize", action="store_true",
                   help="layer-normalise each hidden state before the weighted sum")
    p.add_argument("-f", "--upstream_trainable", action="store_true", help="fine-tune the upstream too")
    p.add_argument("-d", "--downstream", help="task name (see s3prl downstream --help-tasks)")
    p.add_argument("-n", "--expname", help="experiment name: result/downstream/EXPNAME")
    p.add_argument("-p", "--expdir", help="experiment folder (instead of -n)")
    p.add_argument("-c", "--config", help="YAML with sections train / task / data overriding the task's defaults")
    p.add_argument("-o", "--override", help="'train.lr=1e-3,,task.root=/data/x' (YAML values, nothing evaluated)")
    p.add_argument("-e", "--past_exp", help="resume (train) or evaluate this checkpoint or experiment folder")
    p.add_argument("-a", "--auto_resume", action="store_true", help="resume the experiment if it has checkpoints")
    p.add_argument("-t", "--evaluate_split", default="test", help="split for evaluate (default: test)")
    p.add_argument("--no-cache", dest="no_cache", action="store_true",
                   help="do not cache a frozen upstream's hidden states (recompute them every epoch)")
    p.add_argument("--cache-dir", dest="cache_dir", help="feature cache folder (default: $S3PRL_CACHE/features)")
    p.add_argument("--cache-fp16", dest="cache_fp16", action="store_true", help="store cached features as float16")
    p.add_argument("--stop-after", dest="stop_after", type=int,
                   help="stop with a checkpoint after this many steps (resume later with -a)")
    p.add_argument("--help-tasks", action="store_true", help="list the tasks and exit")
    p.set_defaults(run=cmd_downstream)

    p = sub.add_parser("demo", help="benchmark fbank and mfcc on spoken digits synthesized here (offline)",
                       description="A complete SUPERB-style benchmark that needs no download: synthesizes spoken "
                                   "digits with espeak-ng, trains the same runner on several upstreams and prints "
                                   "the results table and the layer-weight plot.")
    p.add_argument("-o", "--outdir", default="demo_output", help="output folder (default: demo_output)")
    p.add_argument("-u", "--upstreams", default="fbank,mfcc", help="comma-separated upstreams (default: fbank,mfcc)")
    p.add_argument("--steps", type=int, default=None, help="training steps per upstream (default: the task's)")
    p.set_defaults(run=cmd_demo)


def cmd_downstream(args) -> int:
    from .downstream import runner, tasks

    if args.help_tasks:
        for task in tasks.TASKS.values():
            print(f"{task.name:<18} {task.description}")
        return 0
    if args.mode is None:
        raise ValueError("give a mode: s3prl downstream train|evaluate ... (--help-tasks lists the tasks)")
    overrides = []
    if args.no_cache:
        overrides.append("data.cache=false")
    if args.cache_dir:
        overrides.append(f"data.cache_dir={args.cache_dir}")
    if args.cache_fp16:
        overrides.append("data.cache_fp16=true")
    if overrides:
        args.override = ",,".join(filter(None, [*overrides, args.override]))
    return runner.cmd_train(args) if args.mode == "train" else runner.cmd_evaluate(args)


def cmd_demo(args) -> int:
    from .downstream import demo

    return demo.run(args.outdir, [u for u in args.upstreams.split(",") if u], steps=args.steps)


if __name__ == "__main__":
    sys.exit(main())
