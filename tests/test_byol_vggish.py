"""BYOL-A, BYOL-S and VGGish: parity with the original s3prl, file formats, windows, options, errors.

The checkpoints (seeded random weights in the original formats) are too big to commit: each is rebuilt
from ``tests/fixtures/oracle/byol_vggish/<model>.spec.json`` and compared with the original's outputs
dumped from the same file (``tests/oracle/make_byol_vggish_fixtures.sh``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path

import pytest
import torch

from parity import compare_with_dump
from s3prl import download, registry
from s3prl.convert.errors import CheckpointFormatError
from s3prl.nn import S3PRLUpstream
from s3prl.upstream import byol_a, byol_s, vggish

HERE = Path(__file__).parent
FIX = HERE / "fixtures" / "oracle" / "byol_vggish"
_spec = importlib.util.spec_from_file_location("make_byol_vggish_ckpt", HERE / "oracle" / "make_byol_vggish_ckpt.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)

RELEASED_SHA256 = "6cc64226318494f06ef41d7e5810be7d37abfd6490da45abdab48f188c5332e2"  # byol-a d512 .pth


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """ckpt(model) -> path of the seeded checkpoint in the original format (VGGish: weights; PCA beside it)."""
    root, made = tmp_path_factory.mktemp("byol_vggish"), {}

    def get(model: str) -> str:
        if model not in made:
            spec = json.loads((FIX / f"{model}.spec.json").read_text())
            state = gen.build_state(spec)
            assert gen.checksum(state) == spec["checksum"], "seeded weights differ from the oracle's"
            path = root / f"{model}.pth"
            if model == "vggish":
                gen.save_pca(state, str(root / "vggish.pca.pth"))
                state = {k: v for k, v in state.items() if not k.startswith("pca_")}
            torch.save(state, path)
            made[model] = str(path)
        return made[model]

    return get


def pca_of(path: str) -> str:
    return str(Path(path).with_name("vggish.pca.pth"))


@pytest.fixture(scope="module")
def upstream(ckpt):
    """upstream(entry, model, **extra_conf) -> a cached S3PRLUpstream in eval mode on the seeded checkpoint
    (VGGish gets its PCA file unless postprocess=False). Tests that modify one must restore it."""
    made = {}

    def get(entry: str, model: str, **conf) -> S3PRLUpstream:
        path = ckpt(model)
        if model == "vggish" and conf.get("postprocess", True):
            conf = {"pca": pca_of(path), **conf}
        key = (entry, model, json.dumps(conf, sort_keys=True))
        if key not in made:
            made[key] = S3PRLUpstream(entry, path_or_url=path, extra_conf=conf).eval()
        return made[key]

    return get


def wavs_batch(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    wavs = [0.1 * torch.randn(n, generator=g) + 0.3 * torch.sin(torch.arange(n) * 0.05 * (i + 1))
            for i, n in enumerate(lengths)]
    return wavs, torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True), torch.tensor(lengths)


# ------------------------------------------------------------------------------------------ parity
CASES = {  # dump -> (seeded model, registry entry)
    "byol_a_512": ("byol_a_512", "byol_a_512"),
    "byol_a_512_w05_s025": ("byol_a_512", "byol_a_512"),
    "byol_a_2048": ("byol_a_2048", "byol_a_2048"),
    "byol_s_default": ("byol_s_default", "byol_s_default"),
    "byol_s_default_w05_h01": ("byol_s_default", "byol_s_default"),
    "byol_s_cvt": ("byol_s_cvt", "byol_s_cvt"),
    "byol_s_resnetish34": ("byol_s_resnetish34", "byol_s_resnetish34"),
    "vggish": ("vggish", "vggish"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_hidden_states_as_the_original(case, upstream):
    model, entry = CASES[case]
    dump = torch.load(FIX / f"{case}.dump.pt", weights_only=True)
    err = compare_with_dump(upstream(entry, model, **dump["meta"]["extra_conf"]), dump)
    print(case, err)
    assert err["single"] < 1e-4 and err["batch"] < 1e-4, err


def released_byol_a_512() -> str | None:
    path = os.environ.get("S3PRL_BYOL_A_512") or str(download.cache_path(registry.REGISTRY["byol_a_512"].urls[0]))
    return path if os.path.isfile(path) else None


@pytest.mark.skipif(released_byol_a_512() is None, reason="set S3PRL_BYOL_A_512 to the released d512 .pth")
def test_released_byol_a_512_weights_give_the_original_numbers():
    path = released_byol_a_512()
    assert download._hash_file(Path(path)) == RELEASED_SHA256
    dump = torch.load(FIX / "byol_a_512_released.dump.pt", weights_only=True)
    err = compare_with_dump(S3PRLUpstream("byol_a_512", path_or_url=path).eval(), dump)
    assert err["single"] < 1e-4 and err["batch"] < 1e-4, err


# ------------------------------------------------------------------------------------------ shapes, windows
@pytest.mark.parametrize("entry, model, size, rate", [
    ("byol_a_512", "byol_a_512", 512, 16000), ("byol_s_default", "byol_s_default", 2048, 800),
    ("byol_s_cvt", "byol_s_cvt", 2048, 800), ("vggish", "vggish", 128, 16000)])
def test_properties_come_from_the_configuration(entry, model, size, rate, upstream):
    up = upstream(entry, model)
    assert (up.num_layers, up.hidden_sizes, up.downsample_rates) == (1, [size], [rate])


def test_window_options_set_the_frame_rate(upstream):
    a = upstream("byol_a_512", "byol_a_512", stride_secs=0.5)
    s = upstream("byol_s_default", "byol_s_default", hop_secs=0.1)
    assert a.downsample_rates == [8000] and s.downsample_rates == [1600]
    _, padded, lens = wavs_batch([20000, 7000])
    hs, hs_len = a(padded, lens)
    assert hs_len[0].tolist() == [3, 1] and hs[0].shape == (2, 3, 512)


@pytest.mark.parametrize("entry, lengths", [("byol_a_512", [17000, 900, 2500]), ("byol_s_default", [2500, 900])])
def test_padded_batch_equals_each_utterance_alone(entry, lengths, upstream):
    """Windows never see another utterance; BYOL-S statistics come from each utterance alone."""
    up = upstream(entry, entry)
    wavs, padded, lens = wavs_batch(lengths)
    with torch.no_grad():
        hs, hs_len = up(padded, lens)
        for b, wav in enumerate(wavs):
            h1, l1 = up(wav[None], lens[b : b + 1])
            n = int(l1[0][0])
            assert int(hs_len[0][b]) == n == math.ceil(len(wav) / up.downsample_rates[0])
            assert (hs[0][b, :n] - h1[0][0]).abs().max() < 1e-4


@pytest.mark.parametrize("entry, model", [("byol_a_512", "byol_a_512"), ("byol_s_default", "byol_s_default")])
def test_short_inputs(entry, model, upstream):
    up = upstream(entry, model)
    _, padded, lens = wavs_batch([0, 1, 400, 799])
    with torch.no_grad():
        hs, hs_len = up(padded, lens)
    rate = up.downsample_rates[0]
    assert hs_len[0].tolist() == [math.ceil(n / rate) for n in lens.tolist()] == [0, 1, 1, 1]
    assert hs[0].shape[:2] == (4, 1) and torch.isfinite(hs[0]).all() and (hs[0][0] == 0).all()


def test_vggish_rejects_clips_shorter_than_one_example(upstream):
    _, padded, lens = wavs_batch([15600, 15599])
    with pytest.raises(ValueError, match=r"at least 15600 samples.*\[1\]"):
        upstream("vggish", "vggish")(padded, lens)


def test_vggish_without_postprocessing_gives_the_raw_embeddings(ckpt):
    raw = vggish.build(ckpt("vggish"), postprocess=False)  # the PCA file is not needed
    assert not hasattr(raw, "pca_vectors")
    x = vggish.examples(wavs_batch([15600])[0][0])
    with torch.no_grad():
        h_raw = raw.embed(x)
        raw.postprocess, raw.pca_vectors, raw.pca_means = True, torch.eye(128) / 2, torch.ones(128, 1)
        h_q = raw.embed(x)  # PCA = (h - 1) / 2, clip, quantise
    assert torch.equal(h_q, torch.round(((h_raw - 1) / 2).clamp(-2, 2).add(2) * 63.75))
    assert h_q.min() >= 0 and h_q.max() <= 255 and not torch.equal(h_q, h_raw)


def test_byol_s_window_count_follows_the_hop(upstream):
    m = upstream("byol_s_default", "byol_s_default").upstream
    _, padded, lens = wavs_batch([799, 800, 1601])
    with torch.no_grad():
        states, counts = m(padded, lens)
    assert counts[0].tolist() == [1, 2, 3] and states[0].shape == (3, 3, 2048)  # floor(len / hop) + 1 windows


# ------------------------------------------------------------------------------------------ weights matter
def _output(model, wav):
    return model(wav[None], torch.tensor([wav.numel()]))[0][0]


@pytest.mark.parametrize("model", ["byol_a_512", "byol_s_default", "byol_s_cvt", "byol_s_resnetish34"])
def test_every_stored_tensor_matters(model, upstream):
    """Every parameter gets a gradient; BatchNorm statistics change the output when perturbed (all of
    BYOL-A's, the first mean and the last variance of the bigger encoders). One window: 400 samples."""
    m = upstream(model, model).upstream
    wav = wavs_batch([400])[0][0]
    _output(m, wav).sum().backward()
    dead = [k for k, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    m.zero_grad(set_to_none=True)
    assert not dead, dead
    stats = [k for k in m.state_dict() if k.endswith(("running_mean", "running_var"))]
    with torch.no_grad():
        ref = _output(m, wav)
        for key in stats if model == "byol_a_512" else [stats[0], stats[-1]]:
            buf = m.get_buffer(key)
            saved = buf.clone()
            buf.mul_(1.5).add_(0.5)
            changed = (_output(m, wav) - ref).abs().max() > 1e-4
            buf.copy_(saved)
            assert changed, key


def test_vggish_every_tensor_matters(upstream):
    m = upstream("vggish", "vggish").upstream
    x = vggish.examples(wavs_batch([15600])[0][0])
    with torch.no_grad():
        ref = m.embed(x)
        for buf in (m.pca_vectors, m.pca_means):
            saved = buf.clone()
            buf.add_(0.3)
            changed = not torch.equal(m.embed(x), ref)
            buf.copy_(saved)
            assert changed
    m.postprocess = False  # quantisation has no gradient: check the weights on the raw embeddings
    try:
        m.embed(x).sum().backward()
    finally:
        m.postprocess = True
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
    m.zero_grad(set_to_none=True)


# ------------------------------------------------------------------------------------------ formats, errors
def test_byol_a_prefixed_and_wrapped_state_dicts_load(ckpt, tmp_path):
    """The original strips any prefix before fc./features. and unwraps 'state_dict'; training heads are dropped."""
    state = torch.load(ckpt("byol_a_512"), weights_only=True)
    wrapped = {"state_dict": {f"model.online.{k}": v for k, v in state.items()}}
    wrapped["state_dict"]["model.online.projector.net.0.weight"] = torch.zeros(2, 2)
    torch.save(wrapped, tmp_path / "wrapped.pth")
    a, b = byol_a.build(ckpt("byol_a_512")), byol_a.build(str(tmp_path / "wrapped.pth"))
    wav = wavs_batch([16000])[0][0]
    with torch.no_grad():
        assert torch.equal(_output(a, wav), _output(b, wav))
    state["extra.head"] = torch.zeros(1)
    torch.save(state, tmp_path / "unknown.pth")
    with pytest.raises(CheckpointFormatError, match="extra.head"):
        byol_a.build(str(tmp_path / "unknown.pth"))


def test_vggish_pca_file_numpy_or_tensors(ckpt, upstream):
    """The released PCA file holds float64 numpy arrays (means flat); tensors load the same way."""
    from s3prl.checkpoint import load_checkpoint

    pca = load_checkpoint(pca_of(ckpt("vggish")))  # numpy arrays become tensors, no pickle code runs
    m = upstream("vggish", "vggish").upstream
    mapped = vggish.map_pca({k: v.numpy() for k, v in pca.items()}, "pca")
    assert torch.equal(mapped["pca_vectors"], m.pca_vectors) and torch.equal(mapped["pca_means"], m.pca_means)
    assert m.pca_means.shape == (128, 1) and m.pca_vectors.dtype == torch.float32


@pytest.mark.slow
def test_vggish_single_file_layout(ckpt, tmp_path):
    """{'vggish': weights, 'pca': params}: what the original wrapper builds in memory, saved as one file."""
    path = ckpt("vggish")
    one = {"vggish": torch.load(path, weights_only=True), "pca": torch.load(pca_of(path), weights_only=False)}
    torch.save(one, tmp_path / "one.pth")
    del one
    a, b = vggish.build(path, pca=pca_of(path)), vggish.build(str(tmp_path / "one.pth"))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("entry, wrong, what", [
    ("byol_a_512", "byol_s_cvt", "CvT"),
    ("byol_s_default", "byol_s_resnetish34", "ResNetish"),
    ("byol_s_resnetish34", "byol_s_default", "AudioNTT2020"),
    ("byol_s_cvt", "byol_s_default", "AudioNTT2020"),
    ("byol_a_1024", "byol_a_512", "byol_a_512"),
])
def test_checkpoint_of_another_model_is_named(entry, wrong, what, ckpt):
    with pytest.raises(CheckpointFormatError, match=what):
        S3PRLUpstream(entry, path_or_url=ckpt(wrong))


def test_foreign_checkpoints_are_named(ckpt):
    distiller = str(HERE / "fixtures" / "oracle" / "distiller_tiny.pt")
    for entry in ("byol_a_512", "byol_s_default", "vggish"):
        with pytest.raises(CheckpointFormatError, match="DistilHuBERT"):
            S3PRLUpstream(entry, path_or_url=distiller)
    with pytest.raises(CheckpointFormatError, match="AudioNTT2020"):
        S3PRLUpstream("vggish", path_or_url=ckpt("byol_a_512"))
    with pytest.raises(CheckpointFormatError, match="BYOL-A .* not the VGGish PCA"):
        vggish.map_pca(torch.load(ckpt("byol_a_512"), weights_only=True), "pca.pth")


@pytest.mark.parametrize("entry, model", [("byol_a_512", "byol_a_512"), ("byol_s_cvt", "byol_s_cvt"),
                                          ("vggish", "vggish")])
def test_unknown_option_is_a_type_error(entry, model, ckpt):
    with pytest.raises(TypeError, match="not_an_option"):
        S3PRLUpstream(entry, path_or_url=ckpt(model), extra_conf={"not_an_option": 1})


def test_bad_window_options_are_explained(ckpt):
    with pytest.raises(ValueError, match="window_secs"):
        byol_a.build(ckpt("byol_a_512"), window_secs=0.01)
    with pytest.raises(ValueError, match="stride_secs"):
        byol_a.build(ckpt("byol_a_512"), stride_secs=0)
    with pytest.raises(ValueError, match="hop_secs"):
        byol_s.build(ckpt("byol_s_default"), hop_secs=0)
    with pytest.raises(ValueError, match="model_name"):
        byol_s.build(ckpt("byol_s_default"), model_name="clstm")
