"""APC, VQ-APC, NPC, DeCoAR, DeCoAR (layers) and DeCoAR 2.0.

Parity with the original s3prl on tiny checkpoints its own classes wrote (tests/fixtures/oracle, made by
tests/oracle/make_apc_npc_decoar_fixtures.sh): every hidden state within 1e-4 at batch size 1, and our padded
batch within 1e-4 of the original's batch-size-1 result. Then lengths, short inputs, options, foreign
checkpoints and the influence of every loaded weight.
"""

import os
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from parity import compare_with_dump
from s3prl.convert.errors import CheckpointFormatError
from s3prl.nn import S3PRLUpstream
from s3prl.upstream import apc, decoar, npc

FIXTURES = Path(__file__).parent / "fixtures" / "oracle"
CKPT = {"apc": "apc_tiny.ckpt", "vq_apc": "vq_apc_tiny.ckpt", "npc": "npc_tiny.ckpt",
        "decoar": "decoar_tiny.pt", "decoar_layers": "decoar_tiny.pt", "decoar2": "decoar2_tiny.pt"}
ENTRY = {"apc": "apc_local", "vq_apc": "apc_local", "npc": "npc_local",  # s3prl has no vq_apc_local
         "decoar": "decoar_local", "decoar_layers": "decoar_layers_local", "decoar2": "decoar2_local"}
SHAPES = {  # (number of states, hidden size of each, stride)
    "apc": (3, [32] * 3, 160), "vq_apc": (3, [32] * 3, 160), "npc": (5, [32] * 5, 160),
    "decoar": (1, [32], 160), "decoar_layers": (4, [32] * 4, 160), "decoar2": (3, [64] * 3, 320),
}
BUILD = {"apc": apc.build, "vq_apc": apc.build, "npc": npc.build, "decoar": decoar.build_decoar,
         "decoar_layers": decoar.build_decoar_layers, "decoar2": decoar.build_decoar2}


pytestmark = pytest.mark.usefixtures("one_thread")


def upstream(case: str) -> S3PRLUpstream:
    return S3PRLUpstream(ENTRY[case], path_or_url=str(FIXTURES / CKPT[case])).eval()


@pytest.mark.parametrize("case", sorted(CKPT))
def test_same_hidden_states_as_the_original(case):
    dump = torch.load(FIXTURES / f"{case}_tiny.states.pt", weights_only=True)
    err = compare_with_dump(upstream(case), dump)
    assert err["single"] < 1e-4 and err["batch"] < 1e-4, err


@pytest.mark.parametrize("case", sorted(CKPT))
def test_counts_sizes_and_short_inputs(case):
    model = upstream(case)
    count, sizes, stride = SHAPES[case]
    assert (model.num_layers, model.hidden_sizes, model.downsample_rates) == (count, sizes, [stride] * count)
    lens = torch.tensor([0, 1, 400, 799, 1600])
    wavs = torch.randn(len(lens), 1600) * 0.1
    with torch.no_grad():
        hs, hs_len = model(wavs, lens)
    want = (lens - 1).div(stride, rounding_mode="floor") + 1
    assert len(hs) == count
    for h, n, size in zip(hs, hs_len, sizes):
        assert torch.equal(n, want) and h.shape == (len(lens), int(want.max()), size)
        assert torch.isfinite(h).all()


def test_decoar_is_the_last_layer_of_decoar_layers():
    wav = torch.randn(1, 6000) * 0.1
    with torch.no_grad():
        last, _ = upstream("decoar")(wav, torch.tensor([6000]))
        layers, _ = upstream("decoar_layers")(wav, torch.tensor([6000]))
    assert torch.allclose(last[0], layers[-1], atol=1e-6)


def test_per_layer_decoar_layout_loads(tmp_path):
    """Files already in decoar_layers' per-layer key layout load the same weights."""
    state = torch.load(FIXTURES / CKPT["decoar"], weights_only=True)["model"]
    renamed = {}
    for key, value in state.items():
        if key.startswith(("forward_lstm.", "backward_lstm.")):
            direction, name = key.split(".")
            head, layer = name.rsplit("_l", 1)
            key = f"{direction}s.{layer}.{head}_l0"
        renamed[key] = value
    torch.save({"model": renamed}, tmp_path / "layers.pt")
    a = decoar.build_decoar_layers(str(FIXTURES / CKPT["decoar"])).state_dict()
    b = decoar.build_decoar_layers(str(tmp_path / "layers.pt")).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()


@pytest.mark.parametrize("case", ["apc", "npc", "decoar", "decoar2"])
def test_unknown_option_is_a_type_error(case):
    with pytest.raises(TypeError, match="bogus"):
        S3PRLUpstream(ENTRY[case], path_or_url=str(FIXTURES / CKPT[case]), extra_conf={"bogus": 1})


@pytest.mark.parametrize("build, ckpt, says", [
    (apc.build, CKPT["npc"], "NPC"),
    (npc.build, CKPT["apc"], "APC"),
    (apc.build, CKPT["decoar"], "DeCoAR checkpoint"),
    (decoar.build_decoar, CKPT["decoar2"], "DeCoAR 2.0"),
    (decoar.build_decoar2, CKPT["decoar"], "DeCoAR checkpoint"),
    (decoar.build_decoar, CKPT["apc"], "APC"),
    (decoar.build_decoar2, "wav2vec2_tiny.pt", "wav2vec 2.0"),
    (apc.build, "distiller_tiny.pt", "DistilHuBERT"),
])
def test_checkpoint_of_another_format_is_named(build, ckpt, says):
    if not (FIXTURES / ckpt).exists():
        pytest.skip(f"{ckpt} missing")
    with pytest.raises(CheckpointFormatError, match=says):
        build(str(FIXTURES / ckpt))


def _rewrite(tmp_path, name, edit):
    obj = torch.load(FIXTURES / CKPT[name], weights_only=True)
    edit(obj)
    path = tmp_path / CKPT[name]
    torch.save(obj, path)
    return str(path)


def test_unknown_and_missing_keys_raise_with_their_names(tmp_path):
    path = _rewrite(tmp_path, "apc", lambda o: o["model"].update({"rnn_layers.0.extra": torch.zeros(1)}))
    with pytest.raises(CheckpointFormatError, match="rnn_layers.0.extra"):
        apc.build(path)
    path = _rewrite(tmp_path, "decoar2", lambda o: o["model"].update({"encoder.layers.0.extra": torch.zeros(1)}))
    with pytest.raises(CheckpointFormatError, match="encoder.layers.0.extra"):
        decoar.build_decoar2(path)
    path = _rewrite(tmp_path, "decoar", lambda o: o["model"].pop("backward_lstm.bias_hh_l2"))
    with pytest.raises(CheckpointFormatError, match="backward_lstms.2.bias_hh_l0"):
        decoar.build_decoar(path)


def test_decoar_skips_keys_outside_the_model_as_the_original(tmp_path):
    """The original loads DeCoAR files non-strictly: tensors of other modules (pre-training heads) are unused."""
    path = _rewrite(tmp_path, "decoar2", lambda o: o["model"].update({"final_proj.weight": torch.zeros(2, 2)}))
    assert decoar.build_decoar2(path).num_layers == 3


def test_npc_mask_must_match_the_configuration(tmp_path):
    path = _rewrite(tmp_path, "npc", lambda o: o["model"]["masked_convs.1.conv_mask"].fill_(1))
    with pytest.raises(CheckpointFormatError, match="conv_mask"):
        npc.build(path)


def test_npc_weights_that_contradict_disable_cross_layer_are_refused(tmp_path):
    # disable_cross_layer keeps only the last block's masked conv: a file with the others has weights nothing uses
    path = _rewrite(tmp_path, "npc", lambda o: o["config"]["model"]["paras"].update(disable_cross_layer=True))
    with pytest.raises(CheckpointFormatError, match="masked_convs.0"):
        npc.build(path)


class CachedFrontend(nn.Module):
    """Test stand-in for the fbank front-end: the same features for every call (the weights are what varies)."""

    def __init__(self, feats, lengths):
        super().__init__()
        self.feats, self.lengths = feats, lengths

    def forward(self, wavs, wavs_len):
        return self.feats, self.lengths


@pytest.mark.parametrize("case", ["vq_apc", "npc", "decoar_layers", "decoar2"])
def test_every_loaded_weight_changes_the_hidden_states(case):
    model = BUILD[case](str(FIXTURES / CKPT[case]))
    wav = torch.randn(1, 4000) * 0.1
    model.frontend = CachedFrontend(*model.frontend(wav, torch.tensor([4000])))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        ref = model(wav, torch.tensor([4000]))[0]
        for name, tensor in model.state_dict().items():
            if name.endswith("num_batches_tracked"):  # a counter, unused in eval mode
                continue
            saved = tensor.clone()
            if name.endswith("running_var"):
                tensor.mul_(1.5)
            else:  # random, not constant: a constant shift of a matrix feeding a LayerNorm would cancel
                tensor.add_(torch.randn(tensor.shape, generator=gen) * 0.05)
            out = model(wav, torch.tensor([4000]))[0]
            tensor.copy_(saved)
            assert max((a - b).abs().max() for a, b in zip(out, ref)) > 1e-4, name


def test_legacy_hub_entry():
    import s3prl.hub as hub

    out = hub.npc_local(ckpt=str(FIXTURES / CKPT["npc"]))([torch.randn(16000) * 0.1, torch.randn(8000) * 0.1])
    assert len(out["hidden_states"]) == 5 and out["last_hidden_state"].shape == (2, 98, 32)


# ---------------------------------------------------------------------------------------------
# Optional: released sizes (make with `S3PRL_ORACLE_DUMPS=DIR bash tests/oracle/make_apc_npc_decoar_fixtures.sh base`)
# ---------------------------------------------------------------------------------------------


@pytest.mark.oracle
@pytest.mark.parametrize("case", sorted(CKPT))
def test_base_sizes_same_as_the_original(case):
    root = Path(os.environ.get("S3PRL_ORACLE_DUMPS", "/nonexistent"))
    ckpt, dump = root / CKPT[case].replace("_tiny", "_base"), root / f"{case}_base.states.pt"
    if not (ckpt.exists() and dump.exists()):
        pytest.skip(f"{dump} missing: run tests/oracle/make_apc_npc_decoar_fixtures.sh base")
    model = S3PRLUpstream(ENTRY[case], path_or_url=str(ckpt)).eval()
    err = compare_with_dump(model, torch.load(dump, weights_only=True))
    assert err["single"] < 1e-4 and err["batch"] < 1e-4, err
