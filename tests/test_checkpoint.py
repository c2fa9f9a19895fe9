"""s3prl.checkpoint: safe loading of fairseq / omegaconf / s3prl pickles, and clear errors."""

from __future__ import annotations

import argparse
import collections
import os
import sys
import types
from pathlib import Path

import pytest
import torch

from s3prl.checkpoint import (
    CorruptCheckpointError,
    UnsafeCheckpointError,
    load_checkpoint,
    pickled_globals,
    to_plain,
)

FIXTURES = Path(__file__).parent / "fixtures"
PLAIN = (dict, list, tuple, str, int, float, bool, type(None), torch.Tensor)


def assert_plain(obj, where="ckpt"):
    assert isinstance(obj, PLAIN), f"{where} is {type(obj)}"
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert_plain(k, f"{where} key")
            assert_plain(v, f"{where}[{k!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            assert_plain(v, f"{where}[{i}]")


@pytest.fixture(autouse=True)
def no_trust(monkeypatch):
    monkeypatch.delenv("S3PRL_TRUST_CHECKPOINTS", raising=False)


def test_fairseq_dictconfig_checkpoint_loads_as_plain_data():
    ckpt = load_checkpoint(FIXTURES / "fairseq_cfg_dictconfig.pt")
    assert_plain(ckpt)
    cfg = ckpt["cfg"]
    model, task = cfg["model"], cfg["task"]
    assert model["_name"] == "wav2vec2" and model["extractor_mode"] == "default"  # Enum -> its value
    assert model["conv_feature_layers"] == "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] * 2"
    assert model["encoder_layers"] == 2 and model["layer_norm_first"] is False and model["dropout"] == 0.1
    assert model["latent_temp"] == (2.0, 0.5, 0.999995)
    assert model["label_rate"] == 50.0  # ${task.label_rate} resolved
    assert task == {"_name": "audio_pretraining", "data": "???", "sample_rate": 16000, "normalize": False,
                    "label_rate": 50.0, "labels": None}
    assert cfg["optimization"]["lr"] == [0.0005]
    assert cfg["dataset"]["batch_size_valid"] is None  # ${dataset.batch_size}
    assert cfg["criterion"]["loss_weights"] == [0.1, 10.0]
    assert cfg["criterion"]["log_keys"] == ("prob_perplexity",)
    assert ckpt["torch_version"] == str(ckpt["torch_version"]) and ckpt["torch_version"][:1].isdigit()
    assert list(ckpt["model"]) == ["feature_extractor.conv_layers.0.0.weight", "layer_norm.weight",
                                   "layer_norm.bias", "encoder.layers.0.fc1.weight"]
    assert ckpt["model"]["feature_extractor.conv_layers.0.0.weight"].shape == (4, 1, 10)
    assert ckpt["task_state"]["dictionaries"][0]["symbols"] == ["<s>", "<pad>", "</s>", "<unk>", "a", "b", "c"]
    assert ckpt["optimizer_history"][0]["lr_scheduler_state"]["best"] == 2.25  # numpy scalar -> float
    assert ckpt["extra_state"]["val_loss"] == 1.5
    meter = ckpt["extra_state"]["metrics"]["train"][0][3]["val"]
    assert torch.equal(meter, torch.tensor([1.0, 2.0], dtype=torch.float64))  # numpy array -> tensor


def test_fairseq_namespace_checkpoint_in_legacy_format():
    path = FIXTURES / "fairseq_args_namespace.pt"
    assert path.read_bytes()[:2] == b"\x80\x02"  # torch's pre-1.6 (non-zip) format
    ckpt = load_checkpoint(path)
    assert_plain(ckpt)
    args = ckpt["args"]
    assert args["arch"] == "wav2vec2" and args["normalize"] is False and args["sample_rate"] == 16000
    assert args["lr"] == [0.0005] and args["user_dir"] is None and args["latent_temp"] == (2, 0.5, 0.999995)
    assert ckpt["extra_state"]["counts"] == {"updates": 7}  # defaultdict -> dict
    assert ckpt["model"]["layer_norm.weight"].tolist() == [1.0] * 4


def test_pickled_globals_of_the_fixtures():
    names = pickled_globals(FIXTURES / "fairseq_cfg_dictconfig.pt")
    for expected in ("omegaconf.dictconfig.DictConfig", "omegaconf.nodes.EnumNode", "omegaconf.base.Metadata",
                     "fairseq.dataclass.constants.Choices", "fairseq.models.wav2vec.wav2vec2.Wav2Vec2Config",
                     "typing.Any", "builtins.str", "builtins.Ellipsis", "collections.defaultdict", "numpy.dtype",
                     "torch.torch_version.TorchVersion"):
        assert expected in names
    assert "argparse.Namespace" in pickled_globals(FIXTURES / "fairseq_args_namespace.pt")


def test_malicious_pickle_is_rejected_before_anything_runs(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    monkeypatch.setenv("S3PRL_TEST_MARKER", str(marker))
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(FIXTURES / "malicious_os_system.pt")
    msg = str(err.value)
    assert "system" in msg and "malicious_os_system.pt" in msg and "S3PRL_TRUST_CHECKPOINTS" in msg
    assert not marker.exists()


class _Eval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_other_globals_are_rejected_and_trust_escape_hatch(tmp_path, monkeypatch):
    path = tmp_path / "eval.pt"
    torch.save({"x": _Eval()}, path)
    with pytest.raises(UnsafeCheckpointError, match="builtins.eval"):
        load_checkpoint(path)
    monkeypatch.setenv("S3PRL_TRUST_CHECKPOINTS", "1")
    with pytest.warns(UserWarning, match="S3PRL_TRUST_CHECKPOINTS"):
        assert load_checkpoint(path) == {"x": 2}


def test_whole_pickled_module_is_rejected(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(UnsafeCheckpointError, match="torch.nn.modules.linear.Linear"):
        load_checkpoint(path)


class WarmupLinearSchedule:
    def __init__(self):
        self.warmup, self.t_total = 0.07, 200000


def test_s3prl_ckpt_with_namespace_and_old_scheduler(tmp_path, monkeypatch):
    # Old DistilHuBERT runs pickled schedulers of the original's top-level `optimizers` module.
    fake = types.ModuleType("optimizers")
    WarmupLinearSchedule.__module__ = "optimizers"
    fake.WarmupLinearSchedule = WarmupLinearSchedule
    monkeypatch.setitem(sys.modules, "optimizers", fake)
    state = {
        "Distiller": collections.OrderedDict(w=torch.arange(3.0)),
        "Config": {"distiller": {"layer_num": 2}},
        "Optimizer": {"state": {}, "param_groups": [{"lr": 2e-4, "schedule": WarmupLinearSchedule()}]},
        "Step": 10,
        "Args": argparse.Namespace(upstream="distiller", seed=1337),
    }
    path = tmp_path / "states-10.ckpt"
    torch.save(state, path)
    monkeypatch.delitem(sys.modules, "optimizers")  # loading never imports it
    ckpt = load_checkpoint(path)
    assert_plain(ckpt)
    assert ckpt["Args"] == {"upstream": "distiller", "seed": 1337}
    assert ckpt["Optimizer"]["param_groups"][0]["schedule"] == {"warmup": 0.07, "t_total": 200000}
    assert torch.equal(ckpt["Distiller"]["w"], torch.arange(3.0))


def test_plain_state_dict_keeps_ordered_dict_and_metadata(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.LayerNorm(3))
    path = tmp_path / "sd.pt"
    torch.save(model.state_dict(), path)
    sd = load_checkpoint(path)
    assert isinstance(sd, collections.OrderedDict) and hasattr(sd, "_metadata")
    model.load_state_dict(sd)


@pytest.mark.parametrize("name", ["fairseq_cfg_dictconfig.pt", "fairseq_args_namespace.pt"])
def test_truncated_file_is_reported_as_corrupt(tmp_path, name):
    data = (FIXTURES / name).read_bytes()
    for cut in (len(data) // 2, len(data) - 10):
        path = tmp_path / name
        path.write_bytes(data[:cut])
        with pytest.raises(CorruptCheckpointError) as err:
            load_checkpoint(path)
        assert name in str(err.value) and "refresh=True" in str(err.value)


def test_not_a_checkpoint(tmp_path):
    html = tmp_path / "error.pt"
    html.write_bytes(b"<!DOCTYPE html><html>Not Found</html>")
    with pytest.raises(CorruptCheckpointError, match="HTML"):
        load_checkpoint(html)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CorruptCheckpointError, match="empty"):
        load_checkpoint(empty)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_safetensors_file_and_folder(tmp_path):
    from safetensors.torch import save_file

    save_file({"a": torch.ones(2)}, tmp_path / "model-00001.safetensors")
    save_file({"b": torch.zeros(3)}, tmp_path / "model-00002.safetensors")
    assert load_checkpoint(tmp_path / "model-00001.safetensors")["a"].tolist() == [1.0, 1.0]
    assert sorted(load_checkpoint(tmp_path)) == ["a", "b"]
    bad = tmp_path / "bad" / "model.safetensors"
    bad.parent.mkdir()
    bad.write_bytes((tmp_path / "model-00001.safetensors").read_bytes()[:20])
    with pytest.raises(CorruptCheckpointError):
        load_checkpoint(bad.parent)


def test_to_plain_leaves_plain_data_alone():
    obj = {"a": [1, (2.0, "x")], "t": torch.ones(1), "n": argparse.Namespace(k=None)}
    assert to_plain(obj)["a"] == [1, (2.0, "x")] and to_plain(obj)["n"] == {"k": None}


def test_fixture_generator_is_present_and_fixtures_are_small():
    assert (FIXTURES / "make_fairseq_pickles.py").is_file()
    for name in ("fairseq_cfg_dictconfig.pt", "fairseq_args_namespace.pt", "malicious_os_system.pt"):
        assert os.path.getsize(FIXTURES / name) < 32_000
