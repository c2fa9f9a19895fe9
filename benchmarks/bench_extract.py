"""Extraction speed and memory: ours vs HuggingFace transformers (sdpa), same weights, same audio.

    .venv/bin/python benchmarks/bench_extract.py [--threads 2] [--repeats 3] [--model base|large]

Both extract all hidden states of a wav2vec 2.0 model (random weights, saved once as a HuggingFace folder
that both load) on two batches: 8 clips of mixed 2-10 s, and 8 clips of 10 s. Each (implementation, batch)
runs in a fresh process, so peak memory (max RSS growth during extraction) is measured separately.
Prints median seconds, the speed ratio (HF time / our time) and the memory of each.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def make_audio(case: str) -> list:
    import torch

    gen = torch.Generator().manual_seed(0)
    if case == "mixed":
        seconds = torch.empty(8).uniform_(2, 10, generator=gen).tolist()
    else:
        seconds = [10.0] * 8
    return [torch.randn(int(s * 16000), generator=gen) * 0.1 for s in seconds]


def make_folder(path: str, size: str) -> None:
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    if size == "base":
        cfg = Wav2Vec2Config()
    else:
        cfg = Wav2Vec2Config(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                             feat_extract_norm="layer", conv_bias=True, do_stable_layer_norm=True)
    Wav2Vec2Model(cfg).save_pretrained(path)


def worker(impl: str, case: str, folder: str, threads: int, repeats: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    wavs = make_audio(case)
    lens = torch.tensor([len(w) for w in wavs])
    padded = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    if impl == "ours":
        from s3prl.nn import S3PRLUpstream

        model = S3PRLUpstream("wav2vec2_custom", path_or_url=folder).eval()
        run = lambda: model(padded, lens)  # noqa: E731
    else:
        from transformers import Wav2Vec2Model

        model = Wav2Vec2Model.from_pretrained(folder, attn_implementation="sdpa").eval()
        mask = (torch.arange(padded.size(1))[None] < lens[:, None]).long()
        run = lambda: model(padded, attention_mask=mask, output_hidden_states=True)  # noqa: E731
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    with torch.inference_mode():
        run()  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": statistics.median(times), "times": times, "peak_mib": (peak - rss_before) / 1024,
            "audio_seconds": float(lens.sum()) / 16000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", choices=["base", "large"], default="base")
    parser.add_argument("--worker", nargs=3, metavar=("IMPL", "CASE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.threads, args.repeats)))
        return
    with tempfile.TemporaryDirectory() as folder:
        make_folder(folder, args.model)
        print(f"wav2vec 2.0 {args.model}, random weights, all hidden states, CPU, {args.threads} threads, "
              f"median of {args.repeats}")
        print(f"{'batch':<8} {'impl':<6} {'median s':>9} {'min s':>7} {'x real time':>12} {'peak MiB':>9}")
        for case in ("mixed", "fixed"):
            result = {}
            for impl in ("hf", "ours"):
                cmd = [sys.executable, __file__, "--threads", str(args.threads), "--repeats", str(args.repeats),
                       "--worker", impl, case, folder]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                result[impl] = json.loads(out.strip().splitlines()[-1])
                r = result[impl]
                print(f"{case:<8} {impl:<6} {r['seconds']:9.2f} {min(r['times']):7.2f} "
                      f"{r['audio_seconds'] / r['seconds']:12.1f} {r['peak_mib']:9.0f}")
            ratio = result["hf"]["seconds"] / result["ours"]["seconds"]
            ratio_min = min(result["hf"]["times"]) / min(result["ours"]["times"])
            mem = result["ours"]["peak_mib"] / max(result["hf"]["peak_mib"], 1e-9)
            print(f"{case:<8} speed ratio (HF time / our time) = {ratio:.2f}x (medians), {ratio_min:.2f}x (minima); "
                  f"memory ours/HF = {mem:.2f}")


if __name__ == "__main__":
    main()
