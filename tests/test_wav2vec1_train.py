"""``s3prl wav2vec2 train --arch wav2vec``: wav2vec (1.0) and vq-wav2vec pre-training with fairseq's command lines.

References: fairseq 0.12.2 itself, through tests/fixtures/w2v1_train_oracle (tests/oracle/make_w2v1_train_fixtures.py):
fairseq-train's parser composed the seed's command lines (config of every flag, given or default); fairseq's loader
read OUR trainer's wav2vec / vq-wav2vec (Gumbel, k-means) checkpoints and computed their features and codebook
indices; fairseq's ``CosineLRSchedule`` gave the learning rates. The audio is synthetic (7 files).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from s3prl.cli import main as cli_main
from s3prl.wav2vec2 import train_wav2vec1
from s3prl.wav2vec2.train_schedule import cosine
from test_wav2vec2_train import data_copy  # a manifest folder of the same 7 synthetic files

FIX = Path(__file__).parent / "fixtures" / "w2v1_train_oracle"
AUDIO = FIX.parent / "w2v_train_oracle"  # audio/, train.tsv, valid.tsv: the wav2vec 2.0 trainer fixtures' 7 files
COMMANDS = json.loads((FIX / "commands.json").read_text())
FAIRSEQ_CFG = json.loads((FIX / "fairseq_cfg.json").read_text())
KINDS = ("wav2vec", "vq_gumbel", "vq_kmeans")


def command(name: str, data: Path, save: Path, *changes: str) -> list[str]:
    args = [a.replace("@DATA@", str(data)).replace("@SAVE@", str(save)) for a in COMMANDS[name]]
    for change in changes:  # "--flag=value": replace the flag's value, or append it
        flag, _, value = change.partition("=")
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value] if value else [flag]
    return ["wav2vec2", "train", *args]


def train(name: str, data: Path, save: Path, *changes: str) -> int:
    torch.set_num_threads(1)
    return cli_main(command(name, data, save, *changes))


def read(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def parsed_cfg(name: str, tmp_path: Path) -> dict:
    """Our parser + checks on a command line -> the checkpoint cfg sections (nothing trained)."""
    from s3prl.wav2vec2.train import add_arguments

    parser = __import__("argparse").ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(command(name, tmp_path, tmp_path / "ck")[2:])
    setup = train_wav2vec1.setup_from_args(args)
    return train_wav2vec1.fairseq_cfg(args, setup, setup.model_cfg)


# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FAIRSEQ_CFG))
def test_flags_mean_what_fairseq_train_makes_of_them(name, tmp_path):
    """Every field of fairseq's composed cfg (given flags and defaults; e.g. the README's --skip-connections-agg and
    --log-compression switch those OFF in fairseq 0.12) equals the cfg our command writes into its checkpoints."""
    ours, theirs = parsed_cfg(name, tmp_path), FAIRSEQ_CFG[name]
    assert ours["model"] == theirs["model"]
    for key in ("infonce", "loss_weights", "log_keys"):
        assert ours["criterion"][key] == theirs["criterion"][key], key
    for key, value in ours["lr_scheduler"].items():
        assert value == theirs["lr_scheduler"][key], key
    for key in ("adam_betas", "adam_eps", "weight_decay", "lr"):
        assert ours["optimizer"][key] == theirs["optimizer"][key], key
    for key in ("max_update", "max_epoch", "lr", "update_freq", "clip_norm", "stop_min_lr"):
        assert ours["optimization"][key] == theirs["optimization"][key], key


@pytest.mark.parametrize("name", ["seed_wav2vec", "seed_vq_gumbel", "seed_vq_kmeans"])
def test_fresh_model_initialised_as_fairseq(name, tmp_path):
    """A fresh model of the seed's full-size command has fairseq's parameters (names, shapes) drawn from fairseq's
    distributions: constants equal, every other tensor's mean / std / kurtosis (1.8 uniform, 3 normal) as those of
    fairseq's own fresh model (statistics of different draws: tolerances of many standard errors)."""
    from s3prl.wav2vec2.train import add_arguments
    from s3prl.wav2vec2.wav2vec1_pretraining import Wav2VecPreTraining, fairseq_state_dict

    theirs = json.loads((FIX / "fairseq_init.json").read_text())[name]
    parser = __import__("argparse").ArgumentParser()
    add_arguments(parser)
    setup = train_wav2vec1.setup_from_args(parser.parse_args(command(name, tmp_path, tmp_path / "ck")[2:]))
    torch.manual_seed(0)
    ours = fairseq_state_dict(Wav2VecPreTraining(setup.arch, setup.pretrain, setup.arch.activation))
    assert {k: list(v.shape) for k, v in ours.items()} == {k: v[0] for k, v in theirs.items()}
    for key, (_, mean, std, kurtosis) in theirs.items():
        x = ours[key].double().flatten()
        if std == 0:
            assert torch.all(x == mean), key
            continue
        n = x.numel()
        assert float(x.std()) == pytest.approx(std, rel=8 / n ** 0.5), key
        assert abs(float(x.mean()) - mean) < 8 * std / n ** 0.5, key
        if n >= 10000:
            assert float(((x - x.mean()) ** 4).mean() / x.std() ** 4) == pytest.approx(kurtosis, abs=0.15), key


@pytest.mark.parametrize("kind", KINDS)
def test_fairseq_reads_our_checkpoint_with_the_same_features(kind, tmp_path):
    """Our trainer, the fixture's tiny seed command, retrained here: fairseq's loader gave these z, c (and q,
    codebook indices) for that checkpoint; ours (s3prl's wav2vec loader) must agree within 1e-4."""
    from s3prl.upstream.wav2vec import load_model
    from s3prl.wav2vec2.featurize import read_audio

    data = data_copy(tmp_path)
    assert train(f"tiny_{kind}", data, tmp_path / "ck") == 0
    path = tmp_path / "ck" / "checkpoint_last.pt"
    ckpt = read(path)
    assert ckpt["args"] is None and ckpt["optimizer_history"][-1]["num_updates"] == 6
    assert ckpt["cfg"]["model"] == FAIRSEQ_CFG[f"tiny_{kind}"]["model"]
    oracle = torch.load(FIX / f"dump_{kind}.pt", weights_only=True)
    assert oracle["meta"]["cfg_model"] == ckpt["cfg"]["model"]
    model = load_model(str(path))
    for name, ref in zip(oracle["meta"]["wavs"], oracle["single"]):
        wav = read_audio(str(data / "audio" / name))[None]
        with torch.no_grad():
            z = model.feature_extractor(wav)
            q, idx = model.quantize(z) if model.quantizer is not None else (z, None)
            c = model.aggregator.output(q)
        torch.testing.assert_close(z, ref["z"], atol=1e-4, rtol=0)
        torch.testing.assert_close(c, ref["c"], atol=1e-4, rtol=0)
        if kind == "wav2vec":
            assert "idx" not in ref
        else:
            torch.testing.assert_close(q, ref["q"], atol=1e-4, rtol=0)
            assert torch.equal(idx, ref["idx"])
            assert len(idx.unique()) > 1  # not a collapsed (trivial) code sequence
    assert (tmp_path / "ck" / "checkpoint_best.pt").is_file()
    assert not list((tmp_path / "ck").glob("checkpoint[0-9]*.pt"))  # --no-epoch-checkpoints
    log = (tmp_path / "ck" / "log.txt").read_text()
    keys = ("loss", "lr", "valid: loss") + (("loss_1",) if kind == "vq_kmeans" else ()) + \
        (("code_perplexity", "prob_perplexity", "temp") if kind == "vq_gumbel" else ())
    for key in keys:
        assert key in log, key
    assert "accuracy" not in log  # BCE: fairseq logs no accuracy


@pytest.mark.parametrize("name", sorted(torch.load(FIX / "cosine.pt", weights_only=True)))
def test_cosine_learning_rate_equals_fairseq(name):
    ref = torch.load(FIX / "cosine.pt", weights_only=True)[name]
    s = {"t_mult": 1.0, "lr_period_updates": -1, "lr_shrink": 0.1, **ref["settings"]}
    period = s["lr_period_updates"] if s["lr_period_updates"] > 0 else s["max_update"] - s["warmup_updates"]
    rate = cosine(s["lr"], s["min_lr"], s["warmup_updates"], s["warmup_init_lr"], period, s["t_mult"],
                  s["lr_shrink"])
    for n, lr in zip(ref["updates"].tolist(), ref["lrs"].tolist()):
        assert rate(n) == pytest.approx(lr, rel=1e-12, abs=1e-18), n


def test_trainer_steps_with_the_cosine_rates(tmp_path):
    """The learning rates the trainer logs per update are the schedule's: warm-up 1e-7 -> 0.005 in 2 updates, then
    half a cosine to 1e-6 over the 4 remaining (derived here from the formula, not from our code)."""
    data = data_copy(tmp_path)
    assert train("tiny_wav2vec", data, tmp_path / "ck", "--log-interval=1") == 0
    logged = [json.loads(line) for line in (tmp_path / "ck" / "history.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in logged if r.get("split") == "train_inner"]
    expected = [1e-7, 1e-7 + (0.005 - 1e-7) / 2] + [1e-6 + 0.5 * (0.005 - 1e-6) * (1 + math.cos(math.pi * t / 4))
                                                    for t in range(4)]
    assert lrs == pytest.approx(expected, rel=1e-12)


def test_resumed_run_equals_uninterrupted(tmp_path):
    """Stopped at update 2 (mid-epoch), then the same command again. The cosine period is given (= 6 - 2, what it
    is by default) so that the shortened first run follows the same schedule."""
    data = data_copy(tmp_path)
    period = "--lr-period-updates=4"
    assert train("tiny_vq_gumbel", data, tmp_path / "whole", period) == 0
    assert train("tiny_vq_gumbel", data, tmp_path / "parts", period, "--max-update=2") == 0
    assert read(tmp_path / "parts" / "checkpoint_last.pt")["optimizer_history"][-1]["num_updates"] == 2
    assert train("tiny_vq_gumbel", data, tmp_path / "parts", period) == 0  # resumes from checkpoint_last.pt
    whole, parts = read(tmp_path / "whole" / "checkpoint_last.pt"), read(tmp_path / "parts" / "checkpoint_last.pt")
    assert whole["model"].keys() == parts["model"].keys()
    for key in whole["model"]:
        assert torch.equal(whole["model"][key], parts["model"][key]), key
    assert "resuming from" in (tmp_path / "parts" / "log.txt").read_text()
    # another architecture in the same folder: a clear error, nothing overwritten
    assert train("tiny_vq_kmeans", data, tmp_path / "parts") != 0


def test_flag_errors(tmp_path, capsys):
    data = data_copy(tmp_path)
    cases = [
        ("tiny_wav2vec", "--encoder-layers=2", "--encoder-layers"),
        ("tiny_wav2vec", "--quantize-targets=", "--quantize-targets"),
        ("tiny_wav2vec", "--aggregator=gru", "--aggregator"),
        ("tiny_wav2vec", "--project-features=same", "--project-features"),
        ("tiny_wav2vec", "--activation=tanh", "--activation"),
        ("tiny_wav2vec", "--conv-aggregator-layers=[(32, 2, 2)]", "strided"),
        ("tiny_wav2vec", "--conv-aggregator-layers=[(32, 2)", "--conv-aggregator-layers"),
        ("tiny_wav2vec", "--min-lr=0.01", "--min-lr"),
        ("tiny_wav2vec", "--stop-min-lr=0.001", "--stop-min-lr"),
        ("tiny_wav2vec", "--lr-scheduler=inverse_sqrt", "--lr-scheduler"),
        ("tiny_wav2vec", "--warmup-updates=6", "--warmup-updates"),
        ("tiny_vq_gumbel", "--vq-type=rvq", "--vq-type"),
        ("tiny_vq_gumbel", "--vq-groups=3", "--vq-groups"),
        ("tiny_vq_gumbel", "--vq-dim=16", "--vq-dim"),
        ("tiny_vq_gumbel", "--vq-temp=(2, 0.5)", "--vq-temp"),
        ("tiny_vq_kmeans", "--loss-weights=[1, 2]", "--loss-weights"),
    ]
    for name, change, words in cases:
        assert cli_main(command(name, data, tmp_path / "x", change)) != 0, change
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, (change, err)
    # a wav2vec 1.0 flag with --arch wav2vec2: named
    w2v2 = ["wav2vec2", "train", str(data), "--save-dir", str(tmp_path / "x"), "--infonce", "--max-tokens", "24000",
            "--max-update", "1", "--vq-type", "gumbel"]
    assert cli_main(w2v2) != 0 and "--vq-type" in capsys.readouterr().err
    # a training file too short for offset 3 + 1 frames (945 samples with the seed's encoder): named, with the fix
    short = (AUDIO / "train.tsv").read_text().replace("@ROOT@", str(data / "audio")).replace("\t8000", "\t900")
    (data / "train.tsv").write_text(short)  # the manifest's size of u2.wav, which the length check reads
    assert cli_main(command("tiny_wav2vec", data, tmp_path / "x")) != 0
    err = capsys.readouterr().err
    assert "u2.wav has 900 samples" in err and "--min-sample-size 945" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path):
    """2 CPU processes (gloo) on the vq-wav2vec command: each takes its share of the batches; one checkpoint."""
    import os
    import subprocess
    import sys

    data = data_copy(tmp_path)
    save = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29547", "-m",
           "s3prl.cli", *command("tiny_vq_gumbel", data, save, "--max-update=3", "--warmup-updates=1",
                                 "--distributed-world-size=2")]
    done = subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = read(save / "checkpoint_last.pt")
    assert ckpt["optimizer_history"][-1]["num_updates"] == 3 and ckpt["extra_state"]["s3prl"]["WorldSize"] == 2
    assert (save / "log.txt").read_text().count("data: 5 training files") == 1
