"""The runner end to end on mini corpora: train, test, evaluate, exact resume, tasks and options."""

import json
from pathlib import Path

import pytest
import torch

import minicorpus
from s3prl.cli import main
from s3prl.downstream import config, runner, tasks
from s3prl.downstream.data import Example

HUBERT_TINY = str(Path(__file__).parent / "fixtures" / "oracle" / "hubert_tiny.pt")  # 3 hidden states


@pytest.fixture(scope="module")
def fsdd_root(tmp_path_factory):
    return minicorpus.fsdd(tmp_path_factory.mktemp("fsdd"))


def run(*argv):
    assert main(["downstream", *argv]) == 0


def fast(root, cache, extra=""):
    opts = (f"task.root={root},,data.cache_dir={cache},,data.num_workers=0,,train.lr=0.003,,train.log_step=5,,"
            "train.scheduler=constant,,"
            "data.batch_seconds=3.0")
    return opts + (",," + extra if extra else "")


def test_train_then_evaluate(tmp_path, fsdd_root):
    exp = tmp_path / "exp"
    run("train", "-u", "mfcc", "-d", "fsdd_digits", "-p", str(exp),
        "-o", fast(fsdd_root, tmp_path / "cache", "train.total_steps=40,,train.eval_step=10,,train.save_step=10"))
    for name in ("results.json", "results.md", "layer_weights.png", "dev-best.ckpt", "states-40.ckpt",
                 "log.txt", "test_predict.txt", "config.yaml"):
        assert (exp / name).is_file(), name
    assert list((exp / "tensorboard").glob("events.*"))
    result = json.loads((exp / "results.json").read_text())
    assert result["split"] == "test" and result["checkpoint"] == "dev-best.ckpt"
    assert result["metrics"]["accuracy"] > 0.6  # 3 tone classes; chance is 1/3
    assert "| fsdd_digits | mfcc" in (exp / "results.md").read_text()
    assert "step 10 dev: accuracy" in (exp / "log.txt").read_text()

    run("evaluate", "-e", str(exp), "-t", "test")
    again = json.loads((exp / "results_test.json").read_text())
    assert again["metrics"] == pytest.approx(result["metrics"]) and again["checkpoint"] == "dev-best.ckpt"
    run("evaluate", "-e", str(exp / "states-40.ckpt"), "-t", "dev")
    assert json.loads((exp / "results_dev.json").read_text())["split"] == "dev"
    assert (exp / "dev_predict.txt").is_file()
    with pytest.raises(ValueError, match="already holds checkpoints"):  # no silent overwrite
        runner.cmd_train(runner_args(["train", "-u", "mfcc", "-d", "fsdd_digits", "-p", str(exp)]))


def runner_args(argv):
    from s3prl.cli import build_parser

    return build_parser().parse_args(["downstream", *argv])


def final_state(exp, step):
    ckpt = torch.load(exp / f"states-{step}.ckpt", weights_only=True)
    return {"Featurizer": ckpt["Featurizer"], "Downstream": ckpt["Downstream"], "Optimizer": ckpt["Optimizer"],
            "Step": ckpt["Step"], "Epoch": ckpt["Epoch"]}


def assert_bit_exact(a, b, where=""):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_bit_exact(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for i, (x, y) in enumerate(zip(a, b)):
            assert_bit_exact(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("cache", [True, False], ids=["cached", "audio"])
def test_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path, fsdd_root, cache):
    """Interrupted mid-epoch (accumulation 2, random crops, balanced draws, multi-layer Featurizer)."""
    opts = fast(fsdd_root, tmp_path / "cache", "train.total_steps=9,,train.eval_step=4,,train.save_step=100,,"
                "train.gradient_accumulate_steps=2,,data.crop_seconds=0.45,,data.balanced=true,,"
                f"data.cache={'true' if cache else 'false'}")
    common = ["-u", "hubert_local", "-k", HUBERT_TINY, "-d", "fsdd_digits", "-o", opts]
    run("train", *common, "-p", str(tmp_path / "whole"))
    run("train", *common, "-p", str(tmp_path / "parts"), "--stop-after", "3")
    assert (tmp_path / "parts" / "states-3.ckpt").is_file() and not (tmp_path / "parts" / "results.json").exists()
    run("train", *common, "-p", str(tmp_path / "parts"), "-a", "--stop-after", "3")  # 3 -> 6
    run("train", "-e", str(tmp_path / "parts" / "states-6.ckpt"))  # -e resumes too: 6 -> 9
    whole, parts = final_state(tmp_path / "whole", 9), final_state(tmp_path / "parts", 9)
    assert whole["Epoch"] >= 1  # the run crossed an epoch boundary
    assert "weights" in whole["Featurizer"]
    assert_bit_exact(whole, parts)
    a = json.loads((tmp_path / "whole" / "results.json").read_text())
    b = json.loads((tmp_path / "parts" / "results.json").read_text())
    assert a["metrics"] == b["metrics"] and len(a["layer_weights"]) == 3


def test_one_layer_and_feature_selection(tmp_path, fsdd_root):
    exp = tmp_path / "exp"
    run("train", "-u", "hubert_local", "-k", HUBERT_TINY, "-d", "fsdd_digits", "-l", "1", "-p", str(exp),
        "-o", fast(fsdd_root, tmp_path / "cache", "train.total_steps=2,,train.eval_step=2"))
    result = json.loads((exp / "results.json").read_text())
    assert result["layers"] == [1] and result["layer_weights"] == [1.0]
    spec = config.UpstreamSpec("x", feature_selection="last_hidden_state")
    assert config.layer_selection(spec, 13) == [12]
    assert config.layer_selection(config.UpstreamSpec("x", feature_selection="hidden_state_3"), 13) == [3]
    assert config.layer_selection(config.UpstreamSpec("x"), 13) is None


def test_verification_tests_every_saved_checkpoint(tmp_path):
    root = minicorpus.librispeech(tmp_path / "libri")
    exp = tmp_path / "asv"
    run("train", "-u", "mfcc", "-d", "librispeech_asv", "-p", str(exp), "-o",
        fast(root, tmp_path / "cache", "train.total_steps=6,,train.save_step=2,,train.max_keep=3,,"
             "task.test_speaker_ratio=0.4"))
    result = json.loads((exp / "results.json").read_text())
    assert set(result["tested"]) == {"states-2.ckpt", "states-4.ckpt", "states-6.ckpt"}
    assert 0.0 <= result["metrics"]["EER"] <= 1.0 and "minDCF" in result["metrics"]


def test_speech_commands_layout(tmp_path):
    root = minicorpus.speech_commands(tmp_path / "sc")
    exp = tmp_path / "ks"
    run("train", "-u", "fbank", "-d", "speech_commands", "-p", str(exp), "-o",
        fast(root, tmp_path / "cache", "train.total_steps=3,,train.eval_step=3"))
    result = json.loads((exp / "results.json").read_text())
    assert set(result["metrics"]) == {"accuracy", "balanced_accuracy"}
    ckpt = torch.load(exp / "dev-best.ckpt", weights_only=True)
    assert ckpt["Classes"] == 12 and ckpt["Downstream"]["head.classifier.weight"].shape[0] == 12


def test_overrides_are_parsed_not_evaluated():
    parsed = config.parse_overrides("train.lr=1e-3,,task.root=/data/x,,config.runner.total_steps=7,,data.cache=false")
    assert parsed == {"train": {"lr": "1e-3", "total_steps": 7}, "task": {"root": "/data/x"},
                      "data": {"cache": False}}
    cfg = config.merge(config.default_config(tasks.get("fsdd_digits")), parsed, "-o")
    assert cfg["train"]["lr"] == 1e-3 and cfg["train"]["total_steps"] == 7
    assert config.parse_overrides("task.root=__import__('os').getcwd()")["task"]["root"].startswith("__import__")
    with pytest.raises(ValueError, match="unknown key"):
        config.merge(cfg, {"train": {"learning_rate": 1}}, "-o")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        config.parse_overrides("train.lr")


def test_superb_defaults_follow_the_original_configs():
    ks, sid, er, asv = (tasks.get(n) for n in ("speech_commands", "voxceleb1", "emotion", "sv_voxceleb1"))
    assert ks.train["total_steps"] == 200000 and ks.train["lr"] == 1e-4 and ks.data["balanced"]
    assert sid.train["gradient_accumulate_steps"] == 4 and sid.data["crop_seconds"] == 8.0 and sid.classes == 1251
    assert er.train["total_steps"] == 30000 and er.train["gradient_accumulate_steps"] == 8 and er.folds == 5
    assert asv.train["optimizer"] == "AdamW" and asv.train["gradient_clipping"] == 1000.0
    assert asv.train["max_keep"] == 20 and asv.eval_splits == () and not asv.higher_better
    with pytest.raises(ValueError, match="needs root"):
        ks.load({})
    with pytest.raises(ValueError, match="unknown task"):
        tasks.get("asr_nope")


def test_intent_slots_all_three_must_be_right(tmp_path):
    root = minicorpus.fluent_commands(tmp_path / "fsc")
    exp = tmp_path / "ic"
    run("train", "-u", "mfcc", "-d", "fluent_commands", "-p", str(exp), "-o",
        fast(root, tmp_path / "cache", "train.total_steps=4,,train.eval_step=2"))
    ckpt = torch.load(exp / "dev-best.ckpt", weights_only=True)
    assert tuple(ckpt["Classes"]) == (3, 3, 3)
    assert set(json.loads((exp / "results.json").read_text())["metrics"]) == {"accuracy"}
    scores = tasks.classification_score({"a": (1, 2, 0), "b": (1, 2, 1)}, [Example("a", "", (1, 2, 0)),
                                                                        Example("b", "", (1, 2, 0))])
    assert scores == {"accuracy": 0.5}


def test_emotion_trains_every_fold_and_averages(tmp_path):
    root = minicorpus.iemocap(tmp_path / "iemocap")
    exp = tmp_path / "er"
    run("train", "-u", "mfcc", "-d", "emotion", "-p", str(exp), "-o",
        fast(root, tmp_path / "cache", "train.total_steps=2,,train.eval_step=2"))
    folds = [json.loads((exp / f"fold{k}" / "results.json").read_text()) for k in range(1, 6)]
    assert [f["task_options"]["fold"] for f in folds] == [1, 2, 3, 4, 5]
    summary = json.loads((exp / "results.json").read_text())
    mean = sum(f["metrics"]["accuracy"] for f in folds) / 5
    assert summary["metrics"]["accuracy"] == pytest.approx(mean) and summary["split"].startswith("test (mean")
    run("train", "-u", "mfcc", "-d", "emotion", "-p", str(tmp_path / "er3"), "-o",
        fast(root, tmp_path / "cache", "train.total_steps=2,,train.eval_step=2,,task.fold=3"))
    assert json.loads((tmp_path / "er3" / "results.json").read_text())["task_options"]["fold"] == 3


def test_voxceleb_sid_and_asv_layouts(tmp_path):
    root = minicorpus.voxceleb1(tmp_path / "vox")
    run("train", "-u", "mfcc", "-d", "voxceleb1", "-p", str(tmp_path / "sid"), "-o",
        fast(root, tmp_path / "cache", "train.total_steps=2,,train.eval_step=2,,train.gradient_accumulate_steps=1"))
    sid = json.loads((tmp_path / "sid" / "results.json").read_text())
    assert sid["metric"] == "accuracy" and sid["checkpoint"] == "dev-best.ckpt"
    run("train", "-u", "mfcc", "-d", "sv_voxceleb1", "-p", str(tmp_path / "asv"), "-o",
        fast(root, tmp_path / "cache", "train.total_steps=2,,train.save_step=1,,train.gradient_accumulate_steps=1"))
    asv = json.loads((tmp_path / "asv" / "results.json").read_text())
    assert set(asv["tested"]) == {"states-1.ckpt", "states-2.ckpt"} and "EER" in asv["metrics"]


def test_finetuning_trains_and_saves_the_upstream(tmp_path, fsdd_root):
    exp = tmp_path / "ft"
    run("train", "-u", "hubert_local", "-k", HUBERT_TINY, "-d", "fsdd_digits", "-f", "-p", str(exp), "-o",
        fast(fsdd_root, tmp_path / "cache", "train.total_steps=2,,train.eval_step=2,,data.crop_seconds=0.45"))
    ckpt = torch.load(exp / "states-2.ckpt", weights_only=True)
    assert "Upstream" in ckpt and not (tmp_path / "cache").exists()  # a trained upstream is never cached
    from s3prl.nn import S3PRLUpstream

    before = S3PRLUpstream("hubert_local", path_or_url=HUBERT_TINY).state_dict()
    changed = [k for k, v in ckpt["Upstream"].items() if not torch.equal(v, before[k])]
    assert changed


def test_random_states_survive_a_safe_checkpoint_round_trip(tmp_path):
    import random

    import numpy as np

    from s3prl import train as trainer

    states = trainer.random_states()
    torch.save({"Rng": states}, tmp_path / "rng.ckpt")
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    trainer.set_random_states(trainer.load_checkpoint(tmp_path / "rng.ckpt")["Rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
