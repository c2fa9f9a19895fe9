"""The runner refuses bad values by name, refuses resuming another run, leaves nothing behind when it
fails to start, and writes readable logs (loss, lr, throughput), a history and curves."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import minicorpus
from s3prl.cli import main
from s3prl.downstream import config, tasks
from s3prl.train import TrainConfig


@pytest.fixture(scope="module")
def fsdd_root(tmp_path_factory):
    return minicorpus.fsdd(tmp_path_factory.mktemp("fsdd"))


def opts(root, cache, extra=""):
    base = (f"task.root={root},,data.cache_dir={cache},,data.num_workers=0,,train.lr=0.003,,"
            "data.batch_seconds=3.0,,train.total_steps=10,,train.log_step=5,,train.eval_step=5,,train.save_step=5")
    return base + (",," + extra if extra else "")


@pytest.mark.parametrize("key,value", [
    ("save_step", 0), ("eval_step", 0), ("log_step", 0), ("gradient_accumulate_steps", 0), ("total_steps", -5),
    ("lr", float("nan")), ("lr", 0), ("optimizer", "Adamm"), ("scheduler", "cosine"), ("precision", "fp8"),
    ("max_keep", -1), ("total_steps", "many"), ("total_steps", True), ("gradient_clipping", float("inf")),
])
def test_train_values_are_checked_by_name(key, value):
    with pytest.raises(ValueError, match=rf"train\.{key} = "):
        TrainConfig(**{key: value})


def test_whole_floats_become_integers():
    assert TrainConfig(total_steps=2000.0).total_steps == 2000


@pytest.mark.parametrize("key,value", [
    ("batch_seconds", float("nan")), ("batch_seconds", 0), ("eval_batch_seconds", -1), ("crop_seconds", 0),
    ("num_workers", -1), ("cache", "yes"), ("dither", -0.1),
])
def test_data_values_are_checked_by_name(key, value):
    cfg = config.default_config(tasks.get("fsdd_digits"))
    cfg["data"][key] = value
    with pytest.raises(ValueError, match=rf"data\.{key} = "):
        config.validate(cfg)


def test_bad_config_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="bad.yaml: expected a mapping"):
        config.read_config_file(str(bad))
    bad.write_text("train: {lr: [1, 2\n")
    with pytest.raises(ValueError, match="bad.yaml: not valid YAML"):
        config.read_config_file(str(bad))


def test_failed_start_leaves_no_experiment_folder(tmp_path, capsys):
    exp = tmp_path / "exp"
    assert main(["downstream", "train", "-u", "fbank", "-d", "fsdd_digits", "-p", str(exp),
                 "-o", f"task.root={tmp_path / 'missing'}"]) == 1
    assert "not found" in capsys.readouterr().err
    assert not exp.exists()


def test_logs_history_curves_and_resume_guard(tmp_path, fsdd_root, capsys):
    exp = tmp_path / "exp"
    assert main(["downstream", "train", "-u", "fbank", "-d", "fsdd_digits", "-p", str(exp),
                 "-o", opts(fsdd_root, tmp_path / "cache")]) == 0
    log = (exp / "log.txt").read_text()
    for step in (5, 10):
        line = next(line for line in log.splitlines() if line.startswith(f"step {step}: train loss"))
        assert ", lr " in line and "steps/s" in line and "utt/s" in line
    assert "\r" not in log
    history = (exp / "history.jsonl").read_text().splitlines()
    assert len(history) == 4  # two training records, two dev evaluations
    assert (exp / "curves.png").stat().st_size > 1000 and (exp / "results.md").is_file()

    # -a on this folder with another upstream or task: refused, naming both
    capsys.readouterr()
    assert main(["downstream", "train", "-a", "-u", "mfcc", "-d", "fsdd_digits", "-p", str(exp)]) == 1
    err = capsys.readouterr().err
    assert "'fbank'" in err and "'mfcc'" in err
    assert main(["downstream", "train", "-a", "-u", "fbank", "-d", "fsdd_speakers", "-p", str(exp)]) == 1
    err = capsys.readouterr().err
    assert "'fsdd_digits'" in err and "'fsdd_speakers'" in err

    # transcribe is for the CTC tasks: a classification run is refused, naming the task
    wav = next(iter(sorted(fsdd_root.rglob("*.wav"))))
    assert main(["downstream", "transcribe", "-e", str(exp), str(wav)]) == 1
    assert "'fsdd_digits' run: transcribe takes the runs of the CTC tasks" in capsys.readouterr().err
    assert main(["downstream", "transcribe", "-e", str(exp), str(tmp_path / "missing.wav")]) == 1
    assert "not found" in capsys.readouterr().err


def test_stale_checkpoint_temporaries_are_removed_on_resume(tmp_path, fsdd_root, capsys):
    exp = tmp_path / "exp"
    argv = ["downstream", "train", "-u", "fbank", "-d", "fsdd_digits", "-p", str(exp),
            "-o", opts(fsdd_root, tmp_path / "cache", "train.total_steps=5")]
    assert main(argv) == 0
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = exp / f".ckpt.tmp{int(dead.stdout)}"
    stale.write_bytes(b"cut")
    argv[-1] = opts(fsdd_root, tmp_path / "cache", "train.total_steps=10")
    assert main([*argv[:2], "-a", *argv[2:]]) == 0
    assert not stale.exists()


def test_training_progress_is_plain_lines_in_a_log(tmp_path, fsdd_root):
    exp = tmp_path / "exp"
    env = {**os.environ, "S3PRL_PROGRESS_SECONDS": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "s3prl.cli", "downstream", "train", "-u", "fbank", "-d", "fsdd_digits",
                           "-p", str(exp), "-o", opts(fsdd_root, tmp_path / "cache")], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\r" not in proc.stderr and "\r" not in proc.stdout
    assert any(line.startswith("train: 10/10 step (100.0%)") for line in proc.stderr.splitlines())
    assert "step 5: train loss" in proc.stdout


@pytest.mark.parametrize("content,expected", [
    (b"garbage", "not a readable training checkpoint"),
    (b"", "not a readable training checkpoint"),
    (None, "no such checkpoint or experiment folder"),
])
def test_evaluate_names_a_bad_checkpoint(tmp_path, capsys, content, expected):
    path = tmp_path / "x.ckpt"
    if content is not None:
        path.write_bytes(content)
    assert main(["downstream", "evaluate", "-e", str(path if content is not None else tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("s3prl downstream evaluate: error:") and expected in err


def test_a_checkpoint_of_something_else_is_named(tmp_path, capsys):
    import torch

    torch.save({"model": torch.zeros(2)}, tmp_path / "other.pt")
    assert main(["downstream", "evaluate", "-e", str(tmp_path / "other.pt")]) == 1
    assert "not a checkpoint of `s3prl downstream train`" in capsys.readouterr().err
