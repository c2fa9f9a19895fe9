"""Configurations read from checkpoint files are checked before anything is built: absurd sizes, list
arithmetic bombs and wrong types raise ``CheckpointConfigError`` (a ``ValueError``) at once, naming the key,
the file, the value and what is expected; a HuggingFace ``config.json`` that is not a JSON object names the file.

The memory bombs run in a child process with a 6 GB address-space limit, so that a regression fails the test
with a MemoryError instead of taking the machine's memory."""

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from s3prl.upstream import distiller, multires_hubert, wav2vec, wav2vec2

FIXTURES = Path(__file__).parent / "fixtures" / "oracle"
W2V2 = FIXTURES / "wav2vec2_tiny.pt"
REPO = Path(__file__).resolve().parent.parent
FAST = 3.0  # seconds: checking a configuration must not build anything


def edited(tmp_path, source: Path, edit, name: str = "bad.pt") -> str:
    """A copy of a fixture checkpoint with ``edit(obj)`` applied."""
    obj = torch.load(source, weights_only=True)
    edit(obj)
    path = tmp_path / name
    torch.save(obj, path)
    return str(path)


def assert_clear(err: BaseException, key: str, path: str, value: str | None = None):
    message = str(err)
    assert type(err).__name__ == "CheckpointConfigError", (type(err), message)
    assert repr(key) in message and path in message and "expected" in message, message
    if value is not None:
        assert value in message, message
    assert err.key == key and err.source == path


def raises_quickly(build, path):
    start = time.perf_counter()
    with pytest.raises(ValueError) as info:
        build(path)
    assert time.perf_counter() - start < FAST
    return info.value


def set_model_cfg(key, value):
    def edit(obj):
        obj["model_cfg"][key] = value
    return edit


@pytest.mark.parametrize("key,value,shown", [
    ("encoder_layers", "two", "'two'"),
    ("encoder_embed_dim", -32, "-32"),
    ("encoder_ffn_embed_dim", 0, "0"),
    ("encoder_attention_heads", True, "True"),  # a bool where an int is expected
    ("conv_pos", 1.5, "1.5"),
    ("dropout", "a lot", "'a lot'"),
    ("extractor_mode", 3, "3"),
    ("conv_feature_layers", "[(48, 10, 5)] + __import__('os').getcwd()", "__import__"),
    ("conv_feature_layers", "[(48, 10, 5)] * 65", "* 65"),  # more than 64 conv layers
    ("conv_feature_layers", "[(48, 100000, 5)]", "100000"),  # kernel beyond 65536
    ("conv_feature_layers", "[(48, 10)]", "(48, 10)"),  # not a triple
])
def test_wrong_wav2vec2_config_value_names_key_file_and_value(tmp_path, key, value, shown):
    path = edited(tmp_path, W2V2, set_model_cfg(key, value))
    assert_clear(raises_quickly(wav2vec2.build, path), key, path, shown)


def test_a_string_where_a_weight_tensor_is_expected(tmp_path):
    def edit(obj):
        obj["model_weight"]["encoder.layers.0.fc1.weight"] = "not a tensor"
    path = edited(tmp_path, W2V2, edit)
    assert_clear(raises_quickly(wav2vec2.build, path), "encoder.layers.0.fc1.weight", path, "'not a tensor'")


def test_heads_must_divide_the_width(tmp_path):
    path = edited(tmp_path, W2V2, set_model_cfg("encoder_attention_heads", 5))
    err = raises_quickly(wav2vec2.build, path)
    assert_clear(err, "encoder_attention_heads", path, "5")
    assert "encoder_embed_dim=32" in str(err)


def test_distiller_and_multires_lists_are_bounded_and_typed(tmp_path):
    def bad_distiller(obj):
        obj["Config"]["distiller"]["encoder_layers"] = "2 layers"
    path = edited(tmp_path, FIXTURES / "distiller_tiny.pt", bad_distiller)
    assert_clear(raises_quickly(distiller.build, path), "encoder_layers", path, "'2 layers'")

    def bad_ratios(obj):
        obj["model_cfg"]["label_rate_ratios"] = "[1, 2] * 1000"
    path = edited(tmp_path, FIXTURES / "hubert_variants" / "multires_hubert_two_res.pt", bad_ratios, "mr.pt")
    assert_clear(raises_quickly(multires_hubert.build, path), "label_rate_ratios", path, "[1, 2] * 1000")


def test_wav2vec1_aggregator_layers_are_bounded(tmp_path):
    def edit(obj):
        cfg = obj["model_cfg"] if "model_cfg" in obj else obj["cfg"]["model"]
        cfg["conv_aggregator_layers"] = "[(32, 2, 1)] * 1000"
    path = edited(tmp_path, FIXTURES / "wav2vec1_cpc" / "wav2vec_tiny.pt", edit)
    assert_clear(raises_quickly(wav2vec.load_model, path), "conv_aggregator_layers", path)


# ---------------------------------------------------------------------------------------------
# HuggingFace folders
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def hf_folder(tmp_path):
    from s3prl.convert.huggingface import save_huggingface

    torch.manual_seed(0)
    cfg = wav2vec2.Wav2Vec2Config(conv_layers=((16, 10, 5),) + ((16, 3, 2),) * 2, embed_dim=32, ffn_dim=64,
                                  num_layers=2, num_heads=4, conv_pos=16, conv_pos_groups=4)
    folder = tmp_path / "hf"
    save_huggingface(wav2vec2.Wav2Vec2(cfg), folder)
    wav2vec2.build(str(folder))  # the folder itself loads
    return folder


@pytest.mark.parametrize("content,what", [("[1, 2, 3]", "list"), ("42", "int"), ('"wav2vec2"', "str"),
                                          ("{not json", "readable")])
def test_hf_config_json_must_be_a_json_object(hf_folder, content, what):
    (hf_folder / "config.json").write_text(content)
    with pytest.raises(ValueError) as info:
        wav2vec2.build(str(hf_folder))
    assert type(info.value).__name__ in ("CheckpointFormatError", "CheckpointConfigError")
    assert str(hf_folder / "config.json") in str(info.value) and what in str(info.value)


@pytest.mark.parametrize("key,value", [("num_hidden_layers", "two"), ("hidden_size", -8), ("conv_dim", [16] * 65),
                                       ("conv_kernel", "[10, 3, 3]"), ("intermediate_size", True)])
def test_hf_config_values_are_checked(hf_folder, key, value):
    path = hf_folder / "config.json"
    conf = json.loads(path.read_text())
    conf[key] = value
    path.write_text(json.dumps(conf))
    assert_clear(raises_quickly(wav2vec2.build, str(hf_folder)), key, str(path))


# ---------------------------------------------------------------------------------------------
# Memory bombs: in a child process with a memory limit
# ---------------------------------------------------------------------------------------------

BOMB = """
import resource, sys, time
import torch
resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, resource.getrlimit(resource.RLIMIT_AS)[1]))
from s3prl.upstream import {module}
start = time.perf_counter()
try:
    {module}.{builder}({path!r})
except MemoryError:
    print("MEMORY ERROR"); sys.exit(3)
except ValueError as e:
    print(type(e).__name__, "|", time.perf_counter() - start, "|", e); sys.exit(0)
print("NO ERROR"); sys.exit(4)
"""


def run_bomb(module: str, builder: str, path: str) -> tuple[str, float, str]:
    code = textwrap.dedent(BOMB).format(module=module, builder=builder, path=path)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    kind, seconds, message = done.stdout.strip().split(" | ", 2)
    return kind, float(seconds), message


def test_conv_layer_list_arithmetic_bomb_is_refused_before_allocation(tmp_path):
    path = edited(tmp_path, W2V2, set_model_cfg("conv_feature_layers", "[(48,10,5)] * 100000 * 100000"))
    kind, seconds, message = run_bomb("wav2vec2", "build", path)
    assert kind == "CheckpointConfigError" and seconds < FAST
    assert "'conv_feature_layers'" in message and path in message and "1 to 64" in message


def test_distiller_conv_bomb_is_refused_before_allocation(tmp_path):
    def edit(obj):
        obj["Config"]["distiller"]["extractor_conv_feature_layers"] = "[(48,10,5)] * 100000 * 100000"
    path = edited(tmp_path, FIXTURES / "distiller_tiny.pt", edit)
    kind, seconds, message = run_bomb("distiller", "build", path)
    assert kind == "CheckpointConfigError" and seconds < FAST
    assert "'extractor_conv_feature_layers'" in message and path in message


def test_sizes_far_beyond_the_stored_weights_are_refused(tmp_path):
    """Each value within its bounds, together ~270 GB of parameters: refused, naming the file."""
    def edit(obj):
        obj["model_cfg"].update(encoder_layers=1000, encoder_embed_dim=4096, encoder_ffn_embed_dim=4096,
                                encoder_attention_heads=16, conv_pos_groups=16)
    path = edited(tmp_path, W2V2, edit)
    kind, seconds, message = run_bomb("wav2vec2", "build", path)
    assert kind == "CheckpointFormatError" and seconds < FAST
    assert path in message and "parameters" in message and "does not belong to these weights" in message
