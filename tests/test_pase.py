"""PASE+ (pase_plus, pase_local, pase_url).

Parity with the ORIGINAL PASE code (s3prl/pase + pytorch-qrnn, run by s3prl 0.4.18's pase_plus entry through
../shared/tools/pase-oracle) on a tiny random-weight checkpoint in FE_e199.ckpt's format: every hidden state at
batch size 1, the raw frames of the original expert, and the same on LibriSpeech recordings ($S3PRL_TEST_DATA).
Fixtures: tests/oracle/make_pase_fixtures.sh. Then batch independence (bit-exact), lengths, the receptive-field
minimum, config sources, checkpoint formats and the influence of every loaded weight.
The full-size comparison is `-m oracle` (see docs/parity.md).
"""

import copy
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from parity import compare_with_dump
from s3prl.audio import load_audio
from s3prl.convert.errors import CheckpointFormatError
from s3prl.nn import S3PRLUpstream
from s3prl.upstream import pase

FIXTURES = Path(__file__).parent / "fixtures" / "oracle"
CKPT = FIXTURES / "pase_tiny.ckpt"  # its config is the side file pase_tiny.cfg
TOL = 2e-5  # the oracle's README: its own noise floor is 1.4e-6; a wrong window alone moves outputs by 1.4e-4
PASE_PLUS_CFG = {"kwidths": [251, 20, 11, 11, 11, 11, 11, 11], "strides": [1, 10, 2, 1, 2, 1, 2, 2],
                 "fmaps": [64, 64, 128, 128, 256, 256, 512, 512], "rnn_dim": 512, "denseskips": True,
                 "norm_out": True, "rnn_pool": True, "rnn_layers": 1}  # = cfg/frontend/PASE+.cfg


pytestmark = pytest.mark.usefixtures("one_thread")


def upstream(ckpt=CKPT, **extra_conf) -> S3PRLUpstream:
    return S3PRLUpstream("pase_local", path_or_url=str(ckpt), extra_conf=extra_conf or None).eval()


def data_dir() -> Path:
    root = os.environ.get("S3PRL_TEST_DATA")
    if not root or not os.path.isdir(os.path.join(root, "librispeech_test_other_mini")):
        pytest.skip("S3PRL_TEST_DATA is not set or lacks librispeech_test_other_mini")
    return Path(root)


def run(model, wavs):
    """A padded batch through ``model`` -> (states, lengths)."""
    lens = torch.tensor([len(w) for w in wavs])
    with torch.no_grad():
        return model(torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True), lens)


def assert_batch_is_batch_size_1(model, wavs):
    states, lens = run(model, wavs)
    for b, wav in enumerate(wavs):
        alone, alone_lens = run(model, [wav])
        for layer, (h, h1) in enumerate(zip(states, alone)):
            n = int(alone_lens[layer][0])
            assert int(lens[layer][b]) == n
            assert torch.equal(h[b, :n], h1[0]), (b, layer, (h[b, :n] - h1[0]).abs().max())
            assert not h[b, n:].any()  # zeros past the utterance's frames


# ---------------------------------------------------------------------------------------------- parity
def test_same_hidden_states_as_the_original():
    dump = torch.load(FIXTURES / "pase_tiny.states.pt", weights_only=True)
    err = compare_with_dump(upstream(), dump)
    assert err["utterances"] == 7 and err["single"] < TOL and err["batch"] < TOL, err


def test_raw_frames_as_the_original_expert():
    """The family module alone (no length contract) = the original expert (hub) on each utterance; where the
    original crashes (fewer samples than its receptive field) ours raises a ValueError naming the minimum."""
    dump = torch.load(FIXTURES / "pase_tiny.states.pt", weights_only=True)
    model = pase.build(str(CKPT))
    failed = {int(k[len("legacy_single["):-1]) for k in dump["meta"]["errors"] if k.startswith("legacy_single[")}
    assert {len(dump["wavs"][b]) for b in failed} == {400, 470}
    for b, (wav, refs) in enumerate(zip(dump["wavs"], dump["legacy_single"])):
        if b in failed:
            with pytest.raises(ValueError, match="at least 471 samples"):
                model(wav[None], torch.tensor([len(wav)]))
            continue
        with torch.no_grad():
            states, lens = model(wav[None], torch.tensor([len(wav)]))
        assert len(states) == len(refs) == 9
        for h, ref in zip(states, refs):
            assert h.shape == ref.shape and int(lens[0][0]) == ref.size(1)
            assert (h - ref).abs().max() < TOL


def real_dump() -> dict:
    """The LibriSpeech fixture with its audio read from $S3PRL_TEST_DATA (checked bit for bit)."""
    root = data_dir()
    dump = torch.load(FIXTURES / "pase_tiny_librispeech.states.pt", weights_only=True)
    wavs = [load_audio(root / f) for f in dump["files"]]
    for f, wav, sha in zip(dump["files"], wavs, dump["wav_sha256"]):
        assert hashlib.sha256(wav.numpy().tobytes()).hexdigest() == sha, f"{f} differs from the oracle's input"
    return {**dump, "wavs": wavs}


def test_real_recordings_same_as_the_original():
    err = compare_with_dump(upstream(), real_dump())
    assert err["utterances"] == 2 and err["single"] < TOL and err["batch"] < TOL, err


def test_real_recordings_padded_batch_is_batch_size_1():
    root = data_dir() / "librispeech_test_other_mini"
    files = ["3005/3005-163389-0007.flac", "2414/2414-128291-0009.flac", "1688/1688-142285-0000.flac",
             "367/367-130732-0006.flac"]
    wavs = [load_audio(root / f) for f in files]
    wavs.append(wavs[0][:1200])  # and a short clip among long ones
    assert_batch_is_batch_size_1(upstream(), wavs)


# ---------------------------------------------------------------------------------------------- batches, lengths
def test_padded_batch_is_batch_size_1():
    gen = torch.Generator().manual_seed(1)
    wavs = [torch.randn(n, generator=gen) * 0.1 for n in (16000, 471, 5555, 800, 12345, 3)]
    assert_batch_is_batch_size_1(upstream(), wavs)
    assert_batch_is_batch_size_1(pase.build(str(CKPT)), wavs[:-1])  # the family module alone, too


def test_counts_sizes_and_lengths():
    model = upstream()
    assert (model.num_layers, model.hidden_sizes, model.downsample_rates) == (9, [32] * 9, [160] * 9)
    lens = torch.tensor([0, 1, 400, 799, 1600, 16000, 16001])
    states, hs_len = run(model, [torch.randn(int(n)) * 0.1 for n in lens])
    want = (lens - 1).div(160, rounding_mode="floor") + 1  # ceil(len / 160), 800-sample minimum for the model
    assert len(states) == 9
    for h, n in zip(states, hs_len):
        assert torch.equal(n, want) and h.shape == (len(lens), int(want.max()), 32) and torch.isfinite(h).all()


@pytest.mark.parametrize("n", [471, 480, 799, 800, 1599, 1600, 1601, 16000, 32720, 40560])
def test_raw_frame_count(n):
    """T = floor(ceil(N / 10) / 16) for PASE+'s strides (README of the oracle: 32720 -> 204, 40560 -> 253)."""
    model = pase.build(str(CKPT))
    with torch.no_grad():
        states, lens = model(torch.randn(1, n) * 0.1, torch.tensor([n]))
    want = -(-n // 10) // 16
    assert int(lens[0][0]) == want and all(h.shape == (1, want, 32) for h in states)
    assert pase.frame_counts(pase.pase_config(PASE_PLUS_CFG, "PASE+"), n)[-1] == want


def test_minimum_samples_is_the_receptive_field():
    assert pase.minimum_samples(pase.pase_config(PASE_PLUS_CFG, "PASE+")) == 471
    model = pase.build(str(CKPT))
    assert model.min_samples == 471
    with pytest.raises(ValueError, match=r"at least 471 samples .* utterance\(s\) \[1\] have \[470\]"):
        model(torch.randn(2, 1000) * 0.1, torch.tensor([1000, 470]))
    with pytest.raises(ValueError, match="at least 471"):
        model(torch.zeros(1, 0), torch.tensor([0]))
    import s3prl.hub as hub  # the hub pads clips to 800 samples (as S3PRLUpstream does): no error there

    out = hub.pase_local(ckpt=str(CKPT))([torch.randn(400) * 0.1])
    assert out["last_hidden_state"].shape == (1, 5, 32)


# ---------------------------------------------------------------------------------------------- loading
def copy_ckpt(tmp_path, config: dict | None = None, name="model.ckpt") -> Path:
    path = tmp_path / name
    shutil.copy(CKPT, path)
    if config is not None:
        path.with_suffix(".cfg").write_text(json.dumps(config))
    return path


def tiny_cfg() -> dict:
    return json.loads((FIXTURES / "pase_tiny.cfg").read_text())


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_config_sources(tmp_path, monkeypatch):
    ref = pase.build(str(CKPT))
    (tmp_path / "cfg").mkdir()
    bare = copy_ckpt(tmp_path / "cfg", None, "FE_e199.ckpt")
    cfg_file = tmp_path / "my.json"
    cfg_file.write_text(json.dumps(tiny_cfg()))
    assert same_weights(ref, pase.build(str(bare), model_config=str(cfg_file)))  # a path
    assert same_weights(ref, pase.build(str(bare), model_config=tiny_cfg()))  # a dict
    (tmp_path / "cfg" / "FE_e199.ckpt.cfg").write_text(json.dumps(tiny_cfg()))  # <file>.cfg side file
    assert same_weights(ref, pase.build(str(bare)))
    # no config at all: the released PASE+.cfg (pase_plus's second URL), which offline names what to fetch
    monkeypatch.setenv("S3PRL_OFFLINE", "1")
    monkeypatch.setenv("S3PRL_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cfg" / "FE_e199.ckpt.cfg").unlink()
    with pytest.raises(Exception, match="PASE%2B.cfg"):
        pase.build(str(bare))


def test_pase_plus_entry(monkeypatch, tmp_path):
    """pase_plus downloads FE_e199.ckpt (offline: an error naming it), and also takes a local file."""
    monkeypatch.setenv("S3PRL_OFFLINE", "1")
    monkeypatch.setenv("S3PRL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(Exception, match="FE_e199.ckpt"):
        S3PRLUpstream("pase_plus")
    model = S3PRLUpstream("pase_plus", path_or_url=str(CKPT))  # side file pase_tiny.cfg
    assert same_weights(model.upstream, pase.build(str(CKPT)))


@pytest.mark.parametrize("edit, says", [
    ({"bogus": 1}, "bogus"),
    ({"name": "Resnet50"}, "Resnet50"),
    ({"norm_type": "inorm"}, "norm_type"),
    ({"rnn_type": "lstm"}, "rnn_type"),
    ({"densemerge": "concat"}, "densemerge"),
    ({"resblocks": True}, "resblocks"),
    ({"vq_K": 32}, "vq_K"),
    ({"activation": "ReLU"}, "activation"),
    ({"pad_mode": "circular"}, "pad_mode"),
    ({"strides": [1, 10, 2]}, "strides"),
    ({"kwidths": [251, 20, 0, 11, 11, 11, 11, 11]}, "kwidths"),
    ({"rnn_dim": 33}, "rnn_dim"),
    ({"denseskips": "yes"}, "denseskips"),
    ({"dilations": [1, 2, 1, 1, 1, 1, 1, 1]}, "dilations"),
])
def test_unsupported_or_bad_config_is_named(tmp_path, edit, says):
    path = copy_ckpt(tmp_path, {**tiny_cfg(), **edit})
    with pytest.raises(CheckpointFormatError, match=says):
        pase.build(str(path))


def test_config_of_another_size_says_so(tmp_path):
    path = copy_ckpt(tmp_path, {**tiny_cfg(), "emb_dim": 16})
    with pytest.raises(CheckpointFormatError, match="model_config"):
        pase.build(str(path))
    with pytest.raises(CheckpointFormatError, match="not a PASE config"):
        pase.build(str(CKPT), model_config=str(CKPT))


def save_state(tmp_path, state, config=True) -> Path:
    path = tmp_path / "edited.ckpt"
    torch.save(state, path)
    if config:
        path.with_suffix(".cfg").write_text(json.dumps(tiny_cfg()))
    return path


def test_checkpoint_variants(tmp_path):
    ref = pase.build(str(CKPT))
    state = torch.load(CKPT, weights_only=True)
    wrapped = save_state(tmp_path, {"step": 3, "state_dict": state, "optimizer": {}})  # PASE's Saver format
    assert same_weights(ref, pase.build(str(wrapped)))
    old = save_state(tmp_path, {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")})
    model = pase.build(str(old))  # files of torch < 0.4.1 have no BatchNorm counters; unused in eval mode
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items() if not k.endswith("tracked"))


@pytest.mark.parametrize("edit, says", [
    (lambda s: s.update({"blocks.0.conv.extra": torch.zeros(1)}), "blocks.0.conv.extra"),
    (lambda s: s.pop("rnn.layers.0.linear.bias"), "rnn.layers.0.linear.bias"),
    (lambda s: s.update({"W.weight": torch.zeros(32, 32, 3)}), "W.weight"),
])
def test_checkpoint_keys_are_checked(tmp_path, edit, says):
    state = copy.copy(torch.load(CKPT, weights_only=True))
    edit(state)
    with pytest.raises(CheckpointFormatError, match=says):
        pase.build(str(save_state(tmp_path, state)))


def test_checkpoint_of_another_model_is_refused():
    with pytest.raises(CheckpointFormatError, match="not a PASE checkpoint"):
        pase.build(str(FIXTURES / "apc_tiny.ckpt"))


def test_options_and_missing_checkpoint():
    with pytest.raises(TypeError, match="bogus"):
        upstream(bogus=1)
    with pytest.raises(ValueError, match="path_or_url"):
        S3PRLUpstream("pase_local")


def test_every_loaded_weight_changes_the_hidden_states():
    model = pase.build(str(CKPT))
    gen = torch.Generator().manual_seed(0)
    wav = torch.randn(1, 4000, generator=gen) * 0.1
    with torch.no_grad():
        ref = model(wav, torch.tensor([4000]))[0]
        for name, tensor in model.state_dict().items():
            if name.endswith("num_batches_tracked"):  # a counter, unused in eval mode
                continue
            saved = tensor.clone()
            if name.endswith("running_var"):
                tensor.mul_(1.5)
            else:
                tensor.add_(torch.randn(tensor.shape, generator=gen) * 0.05)
            out = model(wav, torch.tensor([4000]))[0]
            tensor.copy_(saved)
            assert max((a - b).abs().max() for a, b in zip(out, ref)) > 1e-4, name


def test_double_precision_and_eval_determinism():
    model = pase.build(str(CKPT))
    wav, n = torch.randn(1, 3000) * 0.1, torch.tensor([3000])
    with torch.no_grad():
        a, _ = model(wav, n)
        b, _ = model(wav, n)
        c, _ = copy.deepcopy(model).double()(wav.double(), n)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert all(y.dtype == torch.float64 and (x - y).abs().max() < 1e-4 for x, y in zip(a, c))


def test_legacy_hub_entry_and_listing():
    import s3prl.hub as hub
    from s3prl.cli.listing import availability

    out = hub.pase_local(ckpt=str(CKPT))([torch.randn(16000) * 0.1, torch.randn(8000) * 0.1])
    assert len(out["hidden_states"]) == 9 and out["last_hidden_state"].shape == (2, 100, 32)
    assert torch.equal(out["hidden_state_8"], out["last_hidden_state"])
    assert availability("pase") == ("implemented", "")


# ---------------------------------------------------------------------------------------------- full size (-m oracle)
@pytest.mark.oracle
@pytest.mark.parametrize("dump_name", ["pase_plus.states.pt", "pase_plus_librispeech.states.pt"])
def test_full_size_same_as_the_original(dump_name):
    """Make with `S3PRL_ORACLE_DUMPS=DIR bash tests/oracle/make_pase_fixtures.sh plus` (PASE+.cfg, 7.8 M weights)."""
    root = Path(os.environ.get("S3PRL_ORACLE_DUMPS", "/nonexistent"))
    ckpt, dump = root / "pase_plus.ckpt", root / dump_name
    if not (ckpt.exists() and dump.exists()):
        pytest.skip(f"{dump} missing: run tests/oracle/make_pase_fixtures.sh plus")
    dump = torch.load(dump, weights_only=True)
    model = upstream(ckpt)
    err = compare_with_dump(model, dump)
    print(dump_name, err)
    assert err["single"] < TOL and err["batch"] < TOL, err
    assert_batch_is_batch_size_1(model, dump["wavs"])


@pytest.mark.oracle
@pytest.mark.parametrize("variant", ["a", "b", "c"])
def test_other_wavefe_configurations_same_as_the_original(variant):
    """No SincNet / constant padding / 2 QRNN layers / tanh_out (a); replicate padding, dilation, even kernel, no
    QRNN (b); SincNet with stride 2 and an even width at sr 8000 (c). Make with `... make_pase_fixtures.sh variants`."""
    root = Path(os.environ.get("S3PRL_ORACLE_DUMPS", "/nonexistent"))
    ckpt, dump = root / f"pase_variant_{variant}.ckpt", root / f"pase_variant_{variant}.states.pt"
    if not (ckpt.exists() and dump.exists()):
        pytest.skip(f"{dump} missing: run tests/oracle/make_pase_fixtures.sh variants")
    dump = torch.load(dump, weights_only=True)
    model = upstream(ckpt)
    err = compare_with_dump(model, dump)
    print(variant, err)
    assert err["single"] < TOL and err["batch"] < TOL, err
    assert_batch_is_batch_size_1(model, dump["wavs"])
