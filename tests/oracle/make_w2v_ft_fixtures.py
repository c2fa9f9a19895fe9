"""Oracle side of the wav2vec 2.0 CTC fine-tuning parity (tests/test_wav2vec2_finetune.py). Run from the project
root IN THE FAIRSEQ ORACLE VENV (it calls the project venv itself for the one step that needs our code):

    O=../shared/tools/fairseq-oracle; PY=$(bash $O/setup.sh)
    $PY tests/oracle/make_w2v_ft_fixtures.py [--out tests/fixtures]

Writes, all computed by fairseq 0.12.2 (no fairseq code is copied; the oracle's scripts and fairseq are run):
* ``w2v_ft_ckpt.pt``: a tiny wav2vec2_ctc checkpoint of the seed's ``base_100h`` recipe (oracle ``make_ckpt.py
  --preset tiny``: 2 layers of 32, 32 letters; mask_prob 0.65, mask_channel_prob 0.5 / length 8, layerdrop 0.1,
  feature_grad_mult 0, freeze_finetune_updates 0, zero_infinity, sentence_avg), weights rounded to float16 values,
  slimmed to ``{cfg: {model, task, criterion, optimization}, model}`` (weights_only-loadable, float16 storage).
* ``w2v_ft_loss.pt``: ``loss.py`` on two synthetic 16-bit waveforms (fairseq's padded batch, dropout/layerdrop
  zeroed by the oracle): the batch, the time/channel masks fairseq drew, its lprobs, loss, sample size, logging
  output and every gradient (``frozen``: the same batch and masks replayed with freeze_finetune_updates=5 at
  update 2: which parameters got gradients and their values).
* ``w2v_ft_lr.pt``: fairseq's ``TriStageLRSchedule.step_update`` values at chosen updates for each base_* recipe
  and a small schedule; ``w2v_ft_recipes.json``: the shipped ``examples/wav2vec/config/finetuning/base_*.yaml``.
* ``w2v_ft_ours_dump.pt``: OUR code (project venv) loads w2v_ft_ckpt.pt, does one replayed training step
  (SGD, lr 0.5 on the gradients / sample_size) and writes a fairseq-layout checkpoint with
  ``fairseq_finetuned_checkpoint``; fairseq's ``dump.py`` (``load_model_ensemble_and_task``) loads it and computes
  its emissions; only the emissions / lengths / transcripts are kept.
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
PROJECT_PY = os.environ.get("S3PRL_PYTHON", str(ROOT / ".venv" / "bin" / "python"))
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import torch  # noqa: E402

WAV_SAMPLES = (12000, 9600)
SGD_LR = 0.5
LR_STEPS = [0, 1, 2, 5, 99, 100, 101, 499, 500, 501, 999, 1000, 1001, 1299, 1300, 1301, 1999, 2000, 2001, 4000,
            7999, 8000, 8001, 39999, 40000, 40001, 79999, 80000, 80001, 100000]


def run(cmd, env=None):
    print("+", " ".join(map(str, cmd)), file=sys.stderr)
    subprocess.run([str(c) for c in cmd], check=True, stdout=subprocess.DEVNULL, env=env)


def write_wavs(folder: Path) -> list[str]:
    import numpy as np
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
    ck = torch.load(path, map_location="cpu", weights_only=False)
    ck["model"] = {k: v.half().float() if v.is_floating_point() else v for k, v in ck["model"].items()}
    torch.save(ck, path)


def slim_checkpoint(path: Path) -> dict:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    cfg = {k: ck["cfg"][k] for k in ("model", "task", "criterion", "optimization")}
    cfg["task"] = {k: v for k, v in cfg["task"].items() if k != "data"}
    cfg["model"]["w2v_args"]["task"] = {k: v for k, v in cfg["model"]["w2v_args"]["task"].items() if k != "data"}
    state = {}
    for k, v in ck["model"].items():
        if v.is_floating_point():
            assert torch.equal(v.half().float(), v), k
            v = v.half()
        state[k] = v.clone()
    d = ck["task_state"]["target_dictionary"]
    return {"cfg": json.loads(json.dumps(cfg)), "model": state, "dictionary": [d[i] for i in range(len(d))]}


def slim_loss(path: Path, full: bool) -> dict:
    d = torch.load(path, map_location="cpu", weights_only=True)
    source = d["batch"]["net_input.source"]
    pad = d["batch"]["net_input.padding_mask"]
    samples = torch.round(source.double() * 32768)
    assert torch.equal(samples / 32768, source.double())
    out = {"wav_int16": samples.to(torch.int16), "wav_len": (~pad).sum(1), "target": d["batch"]["target"],
           "target_lengths": d["batch"]["target_lengths"], "mask_indices": d["masks"]["mask_indices"],
           "mask_channel_indices": d["masks"]["mask_channel_indices"], "lprobs": d["lprobs"],
           "input_lengths": d["input_lengths"], "loss": float(d["loss"]), "sample_size": float(d["sample_size"]),
           "logging_output": dict(d["logging_output"]), "blank_idx": int(d["blank_idx"]),
           "num_updates": d["meta"]["num_updates"], "dropout_zeroed": list(d["meta"]["dropout_zeroed"]),
           "grads_none": list(d["grads"]["none"]), "grad_norms": dict(d["grads"]["norms"])}
    grads = d["grads"]["full"]
    out["grads"] = grads if full else {k: v for k, v in grads.items() if "proj" in k.split(".")[1]}
    return out


def lr_values(recipes: dict) -> dict:
    from fairseq.optim.lr_scheduler.tri_stage_lr_scheduler import TriStageLRSchedule, TriStageLRScheduleConfig

    from fairseq.optim import FairseqOptimizer

    class Opt(FairseqOptimizer):  # a real fairseq optimizer wrapper around one dummy parameter
        def __init__(self):
            super().__init__(None)
            self._optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)

    cases = {name: dict(lr=r["optimization"]["lr"], max_update=r["optimization"]["max_update"],
                        phase_ratio=r["lr_scheduler"]["phase_ratio"], final_lr_scale=r["lr_scheduler"]["final_lr_scale"])
             for name, r in recipes.items()}
    cases["small"] = dict(lr=[0.001], max_update=17, phase_ratio=[0.2, 0.3, 0.5], init_lr_scale=0.05,
                          final_lr_scale=0.1)
    out = {}
    for name, kw in cases.items():
        sched = TriStageLRSchedule(TriStageLRScheduleConfig(**kw), Opt())
        steps = list(range(0, 20)) if name == "small" else LR_STEPS
        out[name] = {"cfg": kw, "steps": steps, "lr": [float(sched.step_update(n)) for n in steps],
                     "stages": [sched.warmup_steps, sched.hold_steps, sched.decay_steps]}
    return out


OURS = r"""
import sys, torch
from s3prl.wav2vec2.finetune import CtcBatch, from_fairseq_finetuned, fairseq_finetuned_checkpoint, train_step
ckpt, loss, out, data = sys.argv[1:5]
model = from_fairseq_finetuned(torch.load(ckpt, weights_only=True), ckpt, layerdrop=0.0, activation_dropout=0.0)
d = torch.load(loss, weights_only=True)
model.train()
batch = CtcBatch(d["wav_int16"].float() / 32768, d["wav_len"], d["target"])
train_step(model, batch, num_updates=0, mask_indices=d["mask_indices"], mask_channel_indices=d["mask_channel_indices"])
with torch.no_grad():
    for p in model.parameters():
        if p.grad is not None:
            p -= float(sys.argv[5]) * p.grad
torch.save(fairseq_finetuned_checkpoint(model, data, num_updates=1), out)
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "tests" / "fixtures"))
    args = ap.parse_args()
    out = Path(args.out)
    py = sys.executable
    import yaml

    from fairseq import __file__ as fs_file

    conf_dir = Path(fs_file).parent / "examples" / "wav2vec" / "config" / "finetuning"
    recipes = {}
    for name in ("base_10m", "base_1h", "base_10h", "base_100h", "base_960h"):
        with open(conf_dir / f"{name}.yaml") as f:
            recipes[name] = yaml.safe_load(f)
    (out / "w2v_ft_recipes.json").write_text(json.dumps(recipes, indent=1, sort_keys=True) + "\n")
    torch.save(lr_values(recipes), out / "w2v_ft_lr.pt")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wavs = write_wavs(tmp)
        ckpt = tmp / "ctc" / "ctc.pt"
        run([py, ORACLE / "make_ckpt.py", "wav2vec2_ctc", ckpt, "--preset", "tiny", "--seed", "3"])
        round_weights_to_half(ckpt)
        full = tmp / "full.pt"
        run([py, ORACLE / "loss.py", "--ckpt", ckpt, "--wav", *wavs, "--out", full, "--seed", "1"])
        ck = torch.load(ckpt, map_location="cpu", weights_only=False)
        ck["cfg"]["model"]["freeze_finetune_updates"] = 5
        frozen_ckpt = tmp / "ctc" / "frozen.pt"
        torch.save(ck, frozen_ckpt)
        frozen = tmp / "frozen.pt"
        run([py, ORACLE / "loss.py", "--ckpt", frozen_ckpt, "--wav", *wavs, "--out", frozen, "--replay", full,
             "--num-updates", "2"])
        slim = slim_checkpoint(ckpt)
        torch.save(slim, out / "w2v_ft_ckpt.pt")
        loss = slim_loss(full, True)
        loss["frozen"] = slim_loss(frozen, False)
        torch.save(loss, out / "w2v_ft_loss.pt")

        data = tmp / "data"
        data.mkdir()
        (data / "dict.ltr.txt").write_text((tmp / "ctc" / "dict.ltr.txt").read_text())
        ours = tmp / "ours.pt"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        run([PROJECT_PY, "-c", OURS, out / "w2v_ft_ckpt.pt", out / "w2v_ft_loss.pt", ours, data, SGD_LR], env=env)
        dump = tmp / "ours.dump.pt"
        run([py, ORACLE / "dump.py", "--ckpt", ours, "--wav", *wavs, "--out", dump])
        d = torch.load(dump, map_location="cpu", weights_only=True)
        keep = {"sgd_lr": SGD_LR}
        for part in ("batch", "single"):
            v = d.get(part)
            if isinstance(v, dict):
                keep[part] = {k: v[k] for k in ("emissions", "padding_mask", "transcripts", "hyp_tokens") if k in v}
            elif isinstance(v, list):
                keep[part] = [{k: u[k] for k in ("emissions", "padding_mask", "transcripts", "hyp_tokens") if k in u}
                              for u in v]
        torch.save(keep, out / "w2v_ft_ours_dump.pt")
    for name in ("w2v_ft_ckpt.pt", "w2v_ft_loss.pt", "w2v_ft_lr.pt", "w2v_ft_recipes.json", "w2v_ft_ours_dump.pt"):
        print(name, (out / name).stat().st_size, file=sys.stderr)


if __name__ == "__main__":
    main()
