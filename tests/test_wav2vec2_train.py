"""``s3prl wav2vec2 train`` (wav2vec 2.0 pre-training with fairseq's command line).

References: fairseq 0.12.2 itself, through tests/fixtures/w2v_train_oracle (tests/oracle/make_w2v_train_fixtures.py):
fairseq's loader read OUR trainer's checkpoint and computed its features; fairseq's ``adam`` + ``polynomial_decay``
ran on a fixed gradient sequence. Batching is checked against a derivation written here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from s3prl.cli import main as cli_main
from s3prl.wav2vec2 import train as w2v_train

FIX = Path(__file__).parent / "fixtures" / "w2v_train_oracle"
COMMAND = json.loads((FIX / "command.json").read_text())


def data_copy(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(FIX / "audio", data / "audio")
    for name in ("train", "valid"):
        text = (FIX / f"{name}.tsv").read_text().replace("@ROOT@", str(data / "audio"))
        (data / f"{name}.tsv").write_text(text)
    return data


def command(data: Path, save: Path, *changes: str) -> list[str]:
    args = [a.replace("@SAVE@", str(save)) for a in COMMAND]
    for change in changes:  # "--flag=value": replace the flag's value, or append it
        flag, _, value = change.partition("=")
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value] if value else [flag]
    return ["wav2vec2", "train", str(data), *args]


def train(data: Path, save: Path, *changes: str) -> int:
    torch.set_num_threads(1)
    return cli_main(command(data, save, *changes))


def read(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


# ------------------------------------------------------------------------------------------------------------


def test_fairseq_reads_our_checkpoint_with_the_same_features(tmp_path):
    """Our trainer, the fixture's command, retrained here: fairseq's loader gave these features for that
    checkpoint; ours (s3prl's wav2vec2 loader) must agree within 1e-4."""
    from s3prl.upstream.wav2vec2 import build
    from s3prl.wav2vec2.featurize import read_audio
    from s3prl.wav2vec2.pretraining import from_fairseq

    data = data_copy(tmp_path)
    assert train(data, tmp_path / "ck") == 0
    ckpt_path = tmp_path / "ck" / "checkpoint_last.pt"
    ckpt = read(ckpt_path)
    assert ckpt["args"] is None and ckpt["cfg"]["model"]["_name"] == "wav2vec2"
    assert ckpt["cfg"]["task"]["_name"] == "audio_pretraining" and ckpt["optimizer_history"][-1]["num_updates"] == 6
    assert {"train_iterator", "val_loss"} <= set(ckpt["extra_state"])
    oracle = torch.load(FIX / "dump.pt", weights_only=False)
    model = build(str(ckpt_path)).eval()
    heads = from_fairseq(str(ckpt_path)).eval()
    for name, ref in zip(oracle["meta"]["wavs"], oracle["single"]):
        wav = read_audio(str(data / "audio" / name))[None]
        with torch.no_grad():
            states, _ = model(wav, torch.tensor([wav.size(1)]))
            conv = model.feature_extractor.run(wav)
            idx = heads.quantizer.forward_idx(heads.model.feature_norm(conv))[1]  # fairseq's quantize()
        assert len(states) == len(ref["layers"]) + 1
        torch.testing.assert_close(states[-1], ref["x"], atol=1e-4, rtol=0)
        for ours, theirs in zip(states[1:], ref["layers"]):
            torch.testing.assert_close(ours, theirs[:, : ours.size(1)], atol=1e-4, rtol=0)
        torch.testing.assert_close(conv.transpose(1, 2), ref["conv"], atol=1e-4, rtol=0)
        assert torch.equal(idx.view_as(ref["quantizer_idx"]).long(), ref["quantizer_idx"].long())
    for name in ("checkpoint_best.pt", "checkpoint1.pt", "checkpoint2.pt", "log.txt"):
        assert (tmp_path / "ck" / name).is_file(), name  # 3 batches per epoch: epochs end at updates 3, 6
    assert read(tmp_path / "ck" / "checkpoint1.pt")["optimizer_history"][-1]["num_updates"] == 3
    log = (tmp_path / "ck" / "log.txt").read_text()
    for key in ("loss_0", "code_perplexity", "prob_perplexity", "temp", "accuracy", "lr", "valid: loss"):
        assert key in log, key


def test_adam_and_polynomial_decay_equal_fairseq():
    ref = torch.load(FIX / "optim.pt", weights_only=True)
    s = ref["settings"]
    rate = w2v_train.polynomial_decay(s["lr"], s["warmup"], s["total"], s["end"], s["power"])
    param = torch.nn.Parameter(ref["start"].clone())
    opt = w2v_train.FairseqAdam([param], s["lr"], (0.9, 0.98), s["eps"], s["weight_decay"], rate)
    for n in range(s["updates"]):
        assert opt.current_lr() == pytest.approx(float(ref["lrs"][n]), rel=1e-12), n
        param.grad = ref["grads"][n].clone()
        opt.step()
        torch.testing.assert_close(param.detach(), ref["params"][n], atol=1e-12, rtol=1e-10)


def test_batches_by_max_tokens_as_derived():
    # 20 files of 100 samples, max_tokens 1000: 10 fit, the full batch keeps 8 (a multiple of 8); 2 carry over
    sizes = [100] * 20
    batches = w2v_train.make_batches(sizes, 1000, None, 8, np.random.default_rng(0))
    assert [len(b) for b in batches] == [8, 8, 4] and sorted(sum(batches, [])) == list(range(20))
    # sizes 50..1: largest first, a batch holds files while longest * count <= 120, multiple 1
    sizes = list(range(1, 51))
    batches = w2v_train.make_batches(sizes, 120, None, 1, np.random.default_rng(0))
    flat = sum(batches, [])
    assert [sizes[i] for i in flat] == sorted(sizes, reverse=True)
    for batch in batches:
        longest = max(sizes[i] for i in batch)
        assert longest * len(batch) <= 120
    for a, b in zip(batches, batches[1:]):  # greedy: the next file would not have fitted
        assert max(sizes[i] for i in a) * (len(a) + 1) > 120
    assert len(w2v_train.make_batches([5] * 9, None, 4, 1, np.random.default_rng(0))) == 3


def test_resumed_run_equals_uninterrupted(tmp_path):
    data = data_copy(tmp_path)
    assert train(data, tmp_path / "whole") == 0
    assert train(data, tmp_path / "parts", "--max-update=2") == 0  # stops at update 2 (mid-epoch)
    assert read(tmp_path / "parts" / "checkpoint_last.pt")["optimizer_history"][-1]["num_updates"] == 2
    assert train(data, tmp_path / "parts") == 0  # the same command again: resumes from checkpoint_last.pt
    whole, parts = read(tmp_path / "whole" / "checkpoint_last.pt"), read(tmp_path / "parts" / "checkpoint_last.pt")
    assert whole["model"].keys() == parts["model"].keys()
    for key in whole["model"]:
        assert torch.equal(whole["model"][key], parts["model"][key]), key
    assert "resuming from" in (tmp_path / "parts" / "log.txt").read_text()


@pytest.mark.slow
def test_sigkill_at_a_random_update_then_resume(tmp_path):
    data = data_copy(tmp_path)
    changes = ("--max-update=30", "--save-interval-updates=1")
    assert train(data, tmp_path / "whole", *changes) == 0
    kill_at = int(np.random.default_rng().integers(2, 25))
    save = tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "s3prl.cli", *command(data, save, *changes)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if save.is_dir() and any(save.glob(f"checkpoint_*_{kill_at}.pt")):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert train(data, save, *changes) == 0
    whole, resumed = read(tmp_path / "whole" / "checkpoint_last.pt"), read(save / "checkpoint_last.pt")
    for key in whole["model"]:
        assert torch.equal(whole["model"][key], resumed["model"][key]), key


def test_flag_errors(tmp_path, capsys):
    data = data_copy(tmp_path)
    with pytest.raises(SystemExit):
        cli_main(command(data, tmp_path / "x", "--no-such-flag=3"))
    assert "--no-such-flag" in capsys.readouterr().err
    for change, words in [("--no-mask-overlap=", "--no-mask-overlap"), ("--arch=wav2vec", "--arch"),
                          ("--distributed-world-size=2", "--distributed-world-size 2"),
                          ("--conv-feature-layers=[(32, 10)", "--conv-feature-layers"),
                          ("--encoder-attention-heads=5", "--encoder-attention-heads")]:
        assert cli_main(command(data, tmp_path / "x", change)) != 0
        assert words in capsys.readouterr().err, change
    args = [a for a in command(data, tmp_path / "x") if a != "--infonce"]
    assert cli_main(args) != 0 and "--infonce" in capsys.readouterr().err
    assert not (tmp_path / "x" / "checkpoint_last.pt").exists()


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path):
    """2 CPU processes (gloo): each takes its share of every epoch's batches; one log and one checkpoint."""
    data = data_copy(tmp_path)
    save = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
           "-m", "s3prl.cli", *command(data, save, "--max-update=3", "--distributed-world-size=2")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = read(save / "checkpoint_last.pt")
    assert ckpt["optimizer_history"][-1]["num_updates"] == 3 and ckpt["extra_state"]["s3prl"]["WorldSize"] == 2
    log = (save / "log.txt").read_text()
    assert log.count("data: 5 training files") == 1 and "update 2:" in log


def test_hydra_form_with_overrides(tmp_path, capsys):
    """fairseq-hydra-train's form: the recipe's values, overrides on top (tiny model, 2 updates, 2 batches each)."""
    data = data_copy(tmp_path)
    tiny = ["model.encoder_layers=1", "model.encoder_embed_dim=32", "model.encoder_ffn_embed_dim=64",
            "model.encoder_attention_heads=4", "model.conv_feature_layers='[(32, 10, 5)] + [(32, 3, 2)] * 4 + "
            "[(32,2,2)] * 2'", "model.conv_pos=16", "model.conv_pos_groups=4", "model.final_dim=16",
            "model.latent_vars=8", "model.num_negatives=10", "model.mask_length=3", "dataset.max_tokens=24000",
            "task.min_sample_size=3200", "optimization.max_update=2", "lr_scheduler.warmup_updates=1",
            f"checkpoint.save_dir={tmp_path / 'h'}", "common.fp16=false", "checkpoint.save_interval_updates=1"]
    base = ["wav2vec2", "train", "--config-dir", "examples/wav2vec/config/pretraining", "--config-name",
            "wav2vec2_base_librispeech", f"task.data={data}", *tiny]
    assert cli_main(base) == 1  # the recipe's 64 GPUs
    assert "distributed_training.distributed_world_size=1 +optimization.update_freq='[64]'" in capsys.readouterr().err
    assert cli_main(base + ["distributed_training.distributed_world_size=1", "+optimization.update_freq='[2]'"]) == 0
    ckpt = read(tmp_path / "h" / "checkpoint_last.pt")
    assert ckpt["optimizer_history"][-1]["num_updates"] == 2
    assert ckpt["cfg"]["model"]["final_dim"] == 16 and ckpt["cfg"]["model"]["feature_grad_mult"] == 0.1
    resume = ckpt["extra_state"]["s3prl"]
    assert sorted(p.name for p in (tmp_path / "h").glob("checkpoint_*_*.pt")) == ["checkpoint_2_2.pt"]  # keep 1 (epoch 2)
    assert ckpt["cfg"]["optimization"]["update_freq"] == [2]
    assert (resume["Epoch"], resume["Position"]) == (1, 1)  # 4 batches: 3 of epoch 0, 1 of epoch 1
