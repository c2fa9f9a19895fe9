"""Re-wrap an s3prl-converted checkpoint as a raw fairseq checkpoint (run in the oracle venv).

    python make_fairseq_raw.py CONVERTED.pt OUT_PREFIX

writes OUT_PREFIX.cfg.pt (newer fairseq: ``cfg`` is an omegaconf DictConfig with common/task/model/...
sections, plus optimizer history and task state) and OUT_PREFIX.args.pt (older fairseq: ``args`` is one flat
argparse.Namespace). The weights are the converted file's, unchanged, so the original s3prl's outputs on the
converted file are the reference for ours on the raw files. Needs omegaconf, not fairseq.
"""

import argparse
import sys

import torch
from omegaconf import OmegaConf


def main(src: str, prefix: str) -> None:
    conv = torch.load(src, map_location="cpu", weights_only=True)
    task, model = dict(conv["task_cfg"]), dict(conv["model_cfg"])
    task.setdefault("_name", "audio_pretraining")
    task.setdefault("data", "/checkpoint/manifests/librispeech")
    cfg = OmegaConf.create({
        "_name": None,
        "common": {"fp16": True, "log_interval": 200, "seed": 1},
        "distributed_training": {"distributed_world_size": 64},
        "dataset": {"max_tokens": 1400000, "valid_subset": "valid"},
        "optimization": {"max_update": 400000, "lr": [0.0005], "update_freq": [1]},
        "optimizer": {"_name": "adam", "adam_betas": "(0.9,0.98)"},
        "task": task,
        "model": model,
    })
    extra = {"train_iterator": {"epoch": 10}, "best": 1.5}
    raw = {"cfg": cfg, "model": conv["model_weight"], "optimizer_history": [{"optimizer_name": "Adam", "num_updates": 400000}],
           "extra_state": extra, "last_optimizer_state": None}
    torch.save(raw, prefix + ".cfg.pt")
    flat = argparse.Namespace(**{k: v for k, v in {**task, **model}.items() if k != "_name"}, arch=model.get("_name"))
    torch.save({"args": flat, "model": conv["model_weight"], "optimizer_history": [], "extra_state": extra},
               prefix + ".args.pt")


if __name__ == "__main__":
    main(*sys.argv[1:3])
