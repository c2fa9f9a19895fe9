"""DDP through torchrun: 2 CPU processes (gloo), a sharded sampler and a shared feature cache."""

import json
import os
import subprocess
import sys

import torch

import minicorpus


def test_torchrun_two_processes(tmp_path):
    root = minicorpus.fsdd(tmp_path / "fsdd", digits=2, speakers=("ann",), takes=12)
    exp, cache = tmp_path / "exp", tmp_path / "cache"
    opts = (f"task.root={root},,data.cache_dir={cache},,data.num_workers=0,,data.batch_seconds=1.0,,"
            "train.total_steps=4,,train.eval_step=2,,train.save_step=2,,train.log_step=1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "s3prl.cli", "downstream", "train", "-u", "mfcc", "-d", "fsdd_digits", "-p", str(exp), "-o", opts]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ckpt = torch.load(exp / "states-4.ckpt", weights_only=True)
    assert ckpt["WorldSize"] == 2 and ckpt["Step"] == 4
    assert json.loads((exp / "results.json").read_text())["split"] == "test"
    assert (exp / "log.txt").read_text().count("step 2 dev") == 1  # rank 0 alone evaluates and logs
