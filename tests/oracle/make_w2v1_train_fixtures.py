"""Fixtures of ``s3prl wav2vec2 train --arch wav2vec`` (wav2vec 1.0 / vq-wav2vec), checked by FAIRSEQ 0.12.2
(tests/test_wav2vec1_train.py).

Run from the project root with the PROJECT venv (about 45 s; it calls the fairseq oracle venv itself):

    O=../shared/tools/fairseq-oracle; bash $O/setup.sh >/dev/null
    .venv/bin/python tests/oracle/make_w2v1_train_fixtures.py tests/fixtures/w2v1_train_oracle

What it writes:

* nothing of the audio: the 7 synthetic files of tests/fixtures/w2v_train_oracle (5 train, 2 valid) are read
  there (``make_w2v_train_fixtures.py`` regenerates them byte for byte; if that ever changes, rerun this script);
* ``commands.json``: the seed's command lines (examples/wav2vec/README.md "Train a wav2vec model", "Train a gumbel
  vq-wav2vec model", and the k-means variant: ``--vq-type kmeans --loss-weights [1]``), each as given (``seed_*``)
  and with tiny sizes and 6 updates (``tiny_*``); ``@DATA@`` / ``@SAVE@`` stand for the folders;
* ``fairseq_cfg.json``: fairseq-train's own parser composed every one of those command lines (model, criterion,
  optimizer, lr_scheduler, optimization sections; make_w2v1_train_oracle.py ``cfg``);
* ``dump_<kind>.pt``: OUR trainer ran ``tiny_<kind>`` (CPU, 1 thread) and wrote ``checkpoint_last.pt``; fairseq's
  loader (``dump.py``: ``checkpoint_utils.load_model_ensemble_and_task``) read it and computed z, c and, for
  vq-wav2vec, the quantized q and codebook indices of two files alone. The test trains again and compares;
* ``cosine.pt``: fairseq's ``CosineLRSchedule`` learning rates (make_w2v1_train_oracle.py ``cosine``);
* ``fairseq_init.json``: per-parameter shape, mean, std and kurtosis of FRESH fairseq models built from the three
  seed command lines (make_w2v1_train_oracle.py ``init``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(os.path.dirname(HERE))
AUDIO = os.path.join(PROJECT, "tests", "fixtures", "w2v_train_oracle")
ORACLE = os.environ.get("FAIRSEQ_ORACLE_DIR", os.path.join(PROJECT, "..", "shared", "tools", "fairseq-oracle"))
ORACLE_PY = os.environ.get("FAIRSEQ_ORACLE_PYTHON",
                           os.path.expanduser("~/.cache/fairseq-oracle/venv/bin/python"))

AGG12 = "[" + ", ".join(f"(512, {k}, 1)" for k in range(2, 14)) + "]"
# examples/wav2vec/README.md, `python train.py /manifest/path` -> `s3prl wav2vec2 train @DATA@`
SEED_WAV2VEC = [
    "@DATA@", "--save-dir", "@SAVE@", "--num-workers", "6", "--fp16", "--max-update", "400000", "--save-interval", "1",
    "--no-epoch-checkpoints", "--arch", "wav2vec", "--task", "audio_pretraining", "--min-lr", "1e-06",
    "--stop-min-lr", "1e-09", "--optimizer", "adam", "--lr", "0.005", "--lr-scheduler", "cosine",
    "--conv-feature-layers", "[(512, 10, 5), (512, 8, 4), (512, 4, 2), (512, 4, 2), (512, 4, 2), (512, 1, 1), "
    "(512, 1, 1)]", "--conv-aggregator-layers", AGG12, "--skip-connections-agg", "--residual-scale", "0.5",
    "--log-compression", "--warmup-updates", "500", "--warmup-init-lr", "1e-07", "--criterion", "wav2vec",
    "--num-negatives", "10", "--max-sample-size", "150000", "--max-tokens", "1500000",
    "--skip-invalid-size-inputs-valid-test"]
SEED_GUMBEL = [
    "@DATA@", "--save-dir", "@SAVE@", "--num-workers", "6", "--fp16", "--max-update", "400000", "--save-interval", "1",
    "--no-epoch-checkpoints", "--arch", "wav2vec", "--task", "audio_pretraining", "--min-lr", "1e-06",
    "--stop-min-lr", "1e-09", "--optimizer", "adam", "--lr", "1e-05", "--lr-scheduler", "cosine",
    "--conv-feature-layers", "[(512, 10, 5), (512, 8, 4), (512, 4, 2), (512, 4, 2), (512, 4, 2), (512, 1, 1), "
    "(512, 1, 1), (512, 1, 1)]", "--conv-aggregator-layers", AGG12, "--activation", "gelu", "--offset", "auto",
    "--skip-connections-agg", "--residual-scale", "0.5", "--log-keys", '["prob_perplexity","code_perplexity","temp"]',
    "--vq-type", "gumbel", "--vq-groups", "2", "--vq-depth", "2", "--combine-groups", "--vq-vars", "320",
    "--vq-temp", "(2,0.5,0.999995)", "--prediction-steps", "12", "--warmup-updates", "1000", "--warmup-init-lr",
    "1e-07", "--criterion", "wav2vec", "--num-negatives", "10", "--max-sample-size", "150000", "--max-tokens",
    "300000", "--cross-sample-negatives", "0", "--update-freq", "1", "--seed", "2",
    "--skip-invalid-size-inputs-valid-test"]
# the README: "for k-means training, set vq-type with "kmeans" and add --loss-weights [1] argument"
SEED_KMEANS = [a if a != "gumbel" else "kmeans" for a in SEED_GUMBEL] + ["--loss-weights", "[1]"]

TINY_CONV7 = "[(32, 10, 5), (32, 8, 4), (32, 4, 2), (32, 4, 2), (32, 4, 2), (32, 1, 1), (32, 1, 1)]"
TINY_CONV8 = TINY_CONV7[:-1] + ", (32, 1, 1)]"
TINY = {"--conv-aggregator-layers": "[(32, 2, 1), (32, 3, 1), (32, 4, 1)]", "--max-update": "6",
        "--warmup-updates": "2", "--max-tokens": "24000", "--vq-vars": "16", "--log-interval": "2",
        "--no-progress-bar": None, "--seed": "3"}


def changed(cmd: list[str], changes: dict) -> list[str]:
    """``cmd`` with each flag's value replaced (appended when absent; a None value: a switch)."""
    out = list(cmd)
    for flag, value in changes.items():
        if flag in out and value is not None:
            out[out.index(flag) + 1] = value
        elif flag not in out:
            out += [flag] if value is None else [flag, value]
    return out


def commands() -> dict:
    seeds = {"wav2vec": SEED_WAV2VEC, "vq_gumbel": SEED_GUMBEL, "vq_kmeans": SEED_KMEANS}
    out = {f"seed_{k}": v for k, v in seeds.items()}
    for kind, cmd in seeds.items():
        tiny = dict(TINY, **{"--conv-feature-layers": TINY_CONV7 if kind == "wav2vec" else TINY_CONV8})
        if kind == "wav2vec":
            tiny.pop("--vq-vars")
        out[f"tiny_{kind}"] = changed(cmd, tiny)
    return out


def data_folder(tmp: str) -> str:
    """A runnable manifest folder in ``tmp`` of tests/fixtures/w2v_train_oracle's audio."""
    data = os.path.join(tmp, "data")
    shutil.copytree(os.path.join(AUDIO, "audio"), os.path.join(data, "audio"))
    for name in ("train", "valid"):
        text = open(os.path.join(AUDIO, f"{name}.tsv")).read()
        open(os.path.join(data, f"{name}.tsv"), "w").write(text.replace("@ROOT@", os.path.join(data, "audio")))
    return data


def main(out: str) -> None:
    import torch

    os.makedirs(out, exist_ok=True)
    cmds = commands()
    with open(os.path.join(out, "commands.json"), "w") as f:
        json.dump(cmds, f, indent=1)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    oracle_script = os.path.join(HERE, "make_w2v1_train_oracle.py")
    with tempfile.TemporaryDirectory() as tmp:
        data = data_folder(tmp)
        concrete = {name: [a.replace("@DATA@", data).replace("@SAVE@", os.path.join(tmp, name)) for a in cmd]
                    for name, cmd in cmds.items()}
        json.dump(concrete, open(os.path.join(tmp, "commands.json"), "w"))
        subprocess.run([ORACLE_PY, oracle_script, "cfg", os.path.join(tmp, "commands.json"),
                        os.path.join(tmp, "cfg.json")], check=True, env=env, stdout=subprocess.DEVNULL)
        cfgs = json.load(open(os.path.join(tmp, "cfg.json")))
        json.dump(cfgs, open(os.path.join(out, "fairseq_cfg.json"), "w"), indent=1)
        seeds = {name: cmd for name, cmd in concrete.items() if name.startswith("seed_")}
        json.dump(seeds, open(os.path.join(tmp, "seeds.json"), "w"))
        subprocess.run([ORACLE_PY, oracle_script, "init", os.path.join(tmp, "seeds.json"),
                        os.path.join(out, "fairseq_init.json")], check=True, env=env, stdout=subprocess.DEVNULL)
        wavs = [os.path.join(data, "audio", f"u{i}.wav") for i in (5, 6)]
        for kind in ("wav2vec", "vq_gumbel", "vq_kmeans"):
            name = f"tiny_{kind}"
            subprocess.run([sys.executable, "-m", "s3prl.cli", "wav2vec2", "train", *concrete[name]], check=True,
                           env=env, cwd=PROJECT)
            dump = os.path.join(tmp, f"dump_{kind}.pt")
            subprocess.run([ORACLE_PY, os.path.join(ORACLE, "dump.py"), "--ckpt",
                            os.path.join(tmp, name, "checkpoint_last.pt"), "--wav", *wavs, "--out", dump],
                           check=True, env=env, stdout=subprocess.DEVNULL)
            d = torch.load(dump, weights_only=False)
            keep = {"single": [{k: v for k, v in s.items() if k in ("z", "c", "q", "idx")} for s in d["single"]],
                    "meta": {"kind": d["meta"]["kind"], "model_class": d["meta"]["model_class"],
                             "versions": d["meta"]["versions"], "wavs": ["u5.wav", "u6.wav"],
                             "cfg_model": d["meta"]["cfg_model"]}}
            torch.save(keep, os.path.join(out, f"dump_{kind}.pt"))
        subprocess.run([ORACLE_PY, oracle_script, "cosine", os.path.join(out, "cosine.pt")], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(PROJECT, "tests", "fixtures", "w2v1_train_oracle"))
