"""Oracle side of the wav2vec 2.0 pre-training loss parity: run IN THE FAIRSEQ ORACLE VENV from the project root.

    O=../shared/tools/fairseq-oracle; PY=$(bash $O/setup.sh)
    $PY tests/oracle/make_w2v_loss_fixtures.py [--out tests/fixtures]

Writes, all computed by fairseq 0.12.2 (no fairseq code is copied; the oracle's own scripts are run):
* ``w2v_loss_{base,large}_ckpt.pt``: a small wav2vec 2.0 checkpoint written by fairseq's trainer
  (``make_ckpt.py``), slimmed to ``{cfg: {model, task, criterion}, model: state_dict}`` (weights_only-loadable).
  ``base``: the seed's wav2vec2_base_librispeech recipe at tiny sizes; ``large``: wav2vec2_large_librivox at
  tiny sizes (layer-norm extractor with conv bias, pre-LN transformer) plus a 2-layer quantizer projection,
  ``latent_dim``, cross-sample negatives and channel masks.
* ``w2v_loss_{base,large}_dump.pt``: the oracle's ``loss.py`` run on three synthetic 16-bit waveforms (base:
  fairseq's padded batch; large: ``--crop``, fairseq's training-style crop to the shortest): the batch (as int16
  samples + lengths; a normalized batch as float32), the masks, negatives and Gumbel noise fairseq drew, its
  logits, every loss term, the logging output, sample size and every gradient.
* ``w2v_loss_{wav2vec,vq_gumbel,vq_kmeans}_{ckpt,dump}.pt``: the same for the seed's wav2vec (1.0) and vq-wav2vec
  (Gumbel, k-means) command lines at the oracle's tiny sizes (always cropped; BCE loss); gradients in full for the
  small tensors and the quantizer / prediction heads, L2 norms (float64) for every tensor.
* Every checkpoint's float weights are first rounded to float16-representable values (the checkpoint is rewritten
  in fairseq's format and fairseq runs on it), so the fixtures store them as float16 without changing them.
* ``w2v_loss_stats.pt``: statistics of ``fairseq.data.data_utils.compute_mask_indices`` over many draws
  (per-position mask frequency, masked-count histogram) for a few configurations, and the Gumbel temperature of
  fairseq's ``GumbelVectorQuantizer.set_num_updates`` at chosen update counts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORACLE = Path(os.environ.get("FAIRSEQ_ORACLE_DIR", ROOT.parent / "shared" / "tools" / "fairseq-oracle"))
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # fairseq checkpoints pickle fairseq objects

import numpy as np  # noqa: E402
import torch  # noqa: E402

TINY = [
    "model.encoder_layers=2", "model.encoder_embed_dim=24", "model.encoder_ffn_embed_dim=48",
    "model.encoder_attention_heads=4",
    "model.conv_feature_layers='[(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2'",
    "model.conv_pos=8", "model.conv_pos_groups=4", "model.final_dim=16", "model.latent_vars=8",
]
SCENARIOS = {
    # name: (make_ckpt preset, extra overrides, loss.py options)
    "base": ("base", ["model.num_negatives=10"], ["--num-updates", "1000"]),
    "large": ("large", ["model.num_negatives=5", "model.cross_sample_negatives=3", "model.latent_dim=12",
                        "model.quantizer_depth=2", "model.quantizer_factor=2", "model.mask_prob=0.5",
                        "model.mask_length=4", "model.mask_channel_prob=0.25", "model.mask_channel_length=4"],
              ["--num-updates", "300000", "--crop"]),
}
V1_KINDS = {"wav2vec": "wav2vec", "vq_gumbel": "vq_wav2vec_gumbel", "vq_kmeans": "vq_wav2vec_kmeans"}
V1_FULL_GRAD_NUMEL = 1100  # wav2vec 1.0 / vq-wav2vec: full gradients of small tensors and of the heads, norms of all
WAV_SAMPLES = (12000, 9600, 8000)
MASK_CONFIGS = [  # (name, (B, T), valid lengths or None, kwargs of compute_mask_indices)
    ("time_padded", (4, 50), [50, 43, 31, 20],
     dict(mask_prob=0.65, mask_length=10, mask_type="static", min_masks=2, require_same_masks=True)),
    ("channel", (6, 32), None, dict(mask_prob=0.3, mask_length=4, mask_type="static", min_masks=0,
                                    require_same_masks=False)),
    ("time_dropout", (3, 40), [40, 35, 28],
     dict(mask_prob=0.5, mask_length=5, mask_type="static", min_masks=2, require_same_masks=True, mask_dropout=0.2)),
    ("uniform", (2, 60), None, dict(mask_prob=0.4, mask_length=6, mask_type="uniform", mask_other=2, min_masks=1,
                                    require_same_masks=False)),
]
MASK_DRAWS = 4000
TEMP_SCHEDULES = [(2.0, 0.5, 0.999995), (2.0, 0.1, 0.999995), (1.0, 0.25, 0.9)]
TEMP_STEPS = [0, 1, 2, 3, 10, 100, 1000, 12345, 100000, 277258, 277259, 300000, 460517, 460518, 10**6]


def run(cmd):
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def write_wavs(folder: Path) -> list[str]:
    import soundfile as sf

    rng = np.random.default_rng(0)
    paths = []
    for i, n in enumerate(WAV_SAMPLES):
        t = np.arange(n) / 16000
        x = 0.3 * np.sin(2 * np.pi * (150 + 50 * i) * t * (1 + 0.5 * t)) + 0.05 * rng.standard_normal(n)
        path = folder / f"w{i}.wav"
        sf.write(str(path), (x * 32767).astype(np.int16), 16000, subtype="PCM_16")
        paths.append(str(path))
    return paths


def round_weights_to_half(path: Path) -> None:
    """Make every float weight of a fairseq checkpoint exactly representable in float16 (rewritten in fairseq's
    own format), so that the fixture can store it in half the bytes and still hold the very weights fairseq ran."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    ck["model"] = {k: v.half().float() if v.is_floating_point() else v for k, v in ck["model"].items()}
    torch.save(ck, path)


def slim_checkpoint(path: Path) -> dict:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    cfg = {k: ck["cfg"][k] for k in ("model", "task", "criterion")}
    cfg["task"] = {k: v for k, v in cfg["task"].items() if k != "data"}
    state = {}
    for k, v in ck["model"].items():
        if v.is_floating_point():
            assert torch.equal(v.half().float(), v), k
            v = v.half()
        state[k] = v.clone()
    return {"cfg": json.loads(json.dumps(cfg)), "model": state}


def slim_grads(grads: dict, full: bool) -> dict:
    if full:
        return grads
    return {k: v for k, v in grads.items()
            if v.numel() <= V1_FULL_GRAD_NUMEL or k.startswith(("vector_quantizer.", "wav2vec_predictions."))}


def slim_dump(path: Path, full_grads: bool = True) -> dict:
    d = torch.load(path, map_location="cpu", weights_only=True)
    source = d["batch"]["net_input.source"]
    pad = d["batch"].get("net_input.padding_mask")
    lengths = torch.full((source.size(0),), source.size(1)) if pad is None else (~pad).sum(1)
    samples = torch.round(source.double() * 32768)
    # raw 16-bit audio is stored as int16 (half the bytes); a normalized batch (task.normalize) as float32
    wav = {"wav_int16": samples.to(torch.int16)} if torch.equal(samples / 32768, source.double()) else {"wav": source}
    return {
        **wav, "wav_len": lengths, "num_updates": d["meta"]["num_updates"],
        "task_normalize": bool(d["meta"]["task_cfg_used"].get("normalize", False)),
        "batching": d["meta"]["batching"], "mask_indices": (d["masks"] or {}).get("mask_indices"),
        "mask_channel_indices": (d["masks"] or {}).get("mask_channel_indices"), "neg_idxs": d["negatives"]["neg_idxs"],
        "gumbel_noise": (d["gumbel"] or {}).get("noise"), "logits": d["logits"], "loss": float(d["loss"]),
        "sample_size": float(d["sample_size"]), "loss_terms": {k: float(v) for k, v in d["loss_terms"].items()},
        "extra_losses": {k: float(v) for k, v in d["extra_losses"].items()},
        "loss_weights": list(d["loss_weights"]), "logging_output": dict(d["logging_output"]),
        "grads": slim_grads(d["grads"]["full"], full_grads), "grad_norms": dict(d["grads"]["norms"]),
        "grads_none": list(d["grads"]["none"]), "targets": d["targets"], "target_weights": d["target_weights"],
        "infonce": bool(d["infonce"]),
        "dropout_zeroed": list(d["meta"]["dropout_zeroed"]),
    }


def mask_statistics() -> dict:
    from fairseq.data.data_utils import compute_mask_indices

    out = {}
    np.random.seed(0)
    for name, shape, lengths, kwargs in MASK_CONFIGS:
        B, T = shape
        pad = None
        if lengths is not None:
            pad = torch.arange(T)[None, :] >= torch.tensor(lengths)[:, None]
        freq = np.zeros(shape)
        counts = np.zeros((B, T + 1))
        for _ in range(MASK_DRAWS):
            m = compute_mask_indices(shape, pad, **kwargs)
            freq += m
            counts[np.arange(B), m.sum(1)] += 1
        out[name] = {"shape": list(shape), "lengths": lengths, "kwargs": kwargs, "draws": MASK_DRAWS,
                     "frequency": torch.tensor(freq / MASK_DRAWS), "count_hist": torch.tensor(counts / MASK_DRAWS)}
    return out


def temperatures() -> dict:
    from fairseq.modules import GumbelVectorQuantizer

    out = []
    for temp in TEMP_SCHEDULES:
        q = GumbelVectorQuantizer(dim=8, num_vars=4, temp=temp, groups=2, combine_groups=False, vq_dim=8,
                                  time_first=True)
        values = []
        for n in TEMP_STEPS:
            q.set_num_updates(n)
            values.append(float(q.curr_temp))
        out.append({"temp": list(temp), "steps": list(TEMP_STEPS), "values": values})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "tests" / "fixtures"))
    args = ap.parse_args()
    out = Path(args.out)
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wavs = write_wavs(tmp)
        for name, (preset, extra, loss_opts) in SCENARIOS.items():
            ckpt = tmp / name / f"{name}.pt"
            sets = [x for o in TINY + extra for x in ("--set", o)]
            run([py, str(ORACLE / "make_ckpt.py"), "wav2vec2", str(ckpt), "--preset", preset, "--seed", "3", *sets])
            round_weights_to_half(ckpt)
            dump = tmp / f"{name}.loss.pt"
            run([py, str(ORACLE / "loss.py"), "--ckpt", str(ckpt), "--wav", *wavs, "--out", str(dump),
                 "--seed", "1", *loss_opts])
            torch.save(slim_checkpoint(ckpt), out / f"w2v_loss_{name}_ckpt.pt")
            torch.save(slim_dump(dump), out / f"w2v_loss_{name}_dump.pt")
        for name, kind in V1_KINDS.items():  # the seed's wav2vec / vq-wav2vec command lines, tiny sizes
            ckpt = tmp / name / f"{name}.pt"
            run([py, str(ORACLE / "make_ckpt.py"), kind, str(ckpt), "--preset", "tiny", "--seed", "3"])
            round_weights_to_half(ckpt)
            dump = tmp / f"{name}.loss.pt"
            run([py, str(ORACLE / "loss.py"), "--ckpt", str(ckpt), "--wav", *wavs, "--out", str(dump),
                 "--seed", "1", "--num-updates", "1000"])
            torch.save(slim_checkpoint(ckpt), out / f"w2v_loss_{name}_ckpt.pt")
            torch.save(slim_dump(dump, full_grads=False), out / f"w2v_loss_{name}_dump.pt")
    torch.save({"masks": mask_statistics(), "temperatures": temperatures()}, out / "w2v_loss_stats.pt")
    for f in sorted(out.glob("w2v_loss_*")):
        print(f, f.stat().st_size, file=sys.stderr)


if __name__ == "__main__":
    main()
