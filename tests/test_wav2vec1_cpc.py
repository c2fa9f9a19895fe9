"""wav2vec (v1), vq-wav2vec, DiscreteBERT and modified CPC: parity with the original s3prl on tiny checkpoints it
wrote (tests/fixtures/oracle/wav2vec1_cpc, made by tests/oracle/make_wav2vec1_cpc_fixtures.sh), raw fairseq
files, the legacy extras, batch independence, short inputs, option and format errors, and that every loaded
weight matters."""

import argparse
import os
import re
from pathlib import Path

import pytest
import torch

import s3prl.hub as hub
from parity import compare_with_dump
from s3prl.convert.errors import CheckpointFormatError
from s3prl.nn import S3PRLUpstream
from s3prl.upstream import cpc, roberta, wav2vec

FIXTURES = Path(__file__).parent / "fixtures" / "oracle" / "wav2vec1_cpc"
KMEANS = str(FIXTURES / "vq_kmeans_tiny.pt")
CASES = {  # fixture -> (entry, extra_conf)
    "wav2vec_tiny": ("wav2vec_local", None),
    "vq_gumbel_tiny": ("vq_wav2vec_custom", None),
    "vq_kmeans_tiny": ("vq_wav2vec_custom", None),
    "roberta_tiny": ("discretebert", {"frontend_ckpt": KMEANS}),
    "roberta_tiny_preln": ("vq_wav2vec_kmeans_roberta", {"frontend_ckpt": KMEANS}),
    "cpc_tiny": ("cpc_local", None),
    "cpc_tiny_variant": ("cpc_local", None),
}


pytestmark = pytest.mark.usefixtures("one_thread")


def upstream(case: str, path: str | None = None) -> S3PRLUpstream:
    entry, extra = CASES[case]
    return S3PRLUpstream(entry, path_or_url=path or str(FIXTURES / f"{case}.pt"), extra_conf=extra).eval()


def dump(case: str) -> dict:
    return torch.load(FIXTURES / f"{case}.dump.pt", weights_only=True)


def run(up, wavs: list[torch.Tensor]):
    lens = torch.tensor([len(w) for w in wavs])
    with torch.no_grad():
        return up(torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True), lens)


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_hidden_states_as_the_original(case):
    err = compare_with_dump(upstream(case), dump(case))
    assert err["single"] < 1e-4 and err["batch"] < 1e-4, err


@pytest.mark.parametrize("case", ["wav2vec_tiny", "vq_gumbel_tiny", "vq_kmeans_tiny"])
def test_legacy_extras_are_the_originals(case):
    """z, c (= default), codewords and code ids of the hub interface, on the utterance the original ran unpadded."""
    d = dump(case)
    b = d["legacy_extra_utterance"]
    with torch.no_grad():
        out = hub.__getattr__(CASES[case][0])(ckpt=str(FIXTURES / f"{case}.pt"))(d["wavs"])
    assert set(d["legacy_extra"]) <= set(out) and torch.equal(out["default"], out["c"])
    for key, ref in d["legacy_extra"].items():
        ours = out[key][b : b + 1, : ref.size(1)]
        assert ours.shape == ref.shape and ours.dtype == ref.dtype, key
        assert (ours.double() - ref.double()).abs().max() < 1e-4, key


@pytest.mark.parametrize("layout", ["cfg", "args"])
def test_raw_fairseq_wav2vec_gives_the_original_numbers(layout, tmp_path):
    """The converted file's weights re-wrapped as raw fairseq (hydra ``cfg`` or argparse ``args``)."""
    conv = torch.load(FIXTURES / "wav2vec_tiny.pt", weights_only=True)
    if layout == "cfg":
        raw = {"cfg": {"model": conv["model_cfg"], "task": conv["task_cfg"], "common": {"seed": 1}},
               "model": conv["model_weight"], "optimizer_history": [], "extra_state": {"epoch": 3}}
    else:
        raw = {"args": argparse.Namespace(**{**conv["task_cfg"], **conv["model_cfg"]}), "model": conv["model_weight"]}
    torch.save(raw, tmp_path / "raw.pt")
    err = compare_with_dump(upstream("wav2vec_tiny", str(tmp_path / "raw.pt")), dump("wav2vec_tiny"))
    assert err["single"] < 1e-4 and err["batch"] < 1e-4, err


def test_old_fairseq_args_take_base_architecture_defaults():
    cfg = wav2vec.config_from_dict({}, wav2vec.ARGS_DEFAULTS, "args")
    assert cfg.agg_layers == ((512, 3, 1),) * 9 and len(cfg.conv_layers) == 5
    assert not cfg.log_compression and not cfg.skip_connections_agg and cfg.downsample_rate == 160
    cfg = wav2vec.config_from_dict({"infonce": True}, wav2vec.CONFIG_DEFAULTS, "converted")  # = wav2vec large
    assert [k for _, k, _ in cfg.agg_layers] == list(range(2, 14)) and cfg.log_compression and cfg.skip_connections_agg


@pytest.mark.parametrize("case", sorted(CASES))
def test_padded_batch_equals_each_utterance_alone_including_short_ones(case):
    gen = torch.Generator().manual_seed(3)
    wavs = [torch.randn(n, generator=gen) * 0.1 for n in (9000, 0, 1, 400, 799, 4321)]
    up = upstream(case)
    batch, lens = run(up, wavs)
    assert len(batch) == up.num_layers and [h.size(-1) for h in batch] == up.hidden_sizes
    for b, wav in enumerate(wavs):
        alone, alone_lens = run(up, [wav])
        n = (len(wav) - 1) // 160 + 1  # ceil(len / 160), 0 for an empty input
        for layer, (hb, hs) in enumerate(zip(batch, alone)):
            assert int(lens[layer][b]) == int(alone_lens[layer][0]) == n
            assert hs.shape[1] == n and torch.isfinite(hs).all()
            assert (hb[b, :n] - hs[0, :n]).abs().max().item() < 1e-4 if n else True, (case, layer, b)
            assert hb[b, n:].abs().sum() == 0  # past its length an utterance's frames are zeros


def test_discretebert_returns_bos_and_eos_states():
    """Each utterance gives (code frames + 2) states: <s>, one per code frame, </s>; chunked by max_positions."""
    model = roberta.build(str(FIXTURES / "roberta_tiny.pt"), frontend_ckpt=KMEANS)
    wav = torch.randn(1, 6000) * 0.1
    frames = int(model.frontend.frame_lengths(torch.tensor([6000]))[0])
    tokens = model.tokens(wav)
    assert tokens.numel() == frames + 2 > model.cfg.max_positions  # several chunks
    assert tokens[0] == model.bos == 0 and tokens[-1] == model.eos == 2
    with torch.no_grad():
        states, lens = model(wav, torch.tensor([6000]))
    assert lens[0].tolist() == [frames + 2] and states[0].shape == (1, frames + 2, 16)


def test_dictionary_parsing_follows_fairseq():
    d = roberta.Dictionary("0-1 10\n1-0 5\n0-1 3 #fairseq:overwrite\n", "test")
    assert d.symbols == ["<s>", "<pad>", "</s>", "<unk>", "0-1", "1-0", "0-1", "<mask>"]
    assert d.index("0-1") == 6 and d.index("5-5") == 3
    table = roberta.code_table(d, num_vars=2, groups=2)
    assert table.tolist() == [3, 6, 5, 3]  # (0,0) unk, (0,1), (1,0), (1,1) unk
    with pytest.raises(CheckpointFormatError, match="twice"):
        roberta.Dictionary("0-1 10\n0-1 5\n", "test")
    with pytest.raises(CheckpointFormatError, match="line 1"):
        roberta.Dictionary("0-1\n", "test")


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_option_raises_type_error(case):
    entry, extra = CASES[case]
    with pytest.raises(TypeError, match="not_an_option"):
        S3PRLUpstream(entry, path_or_url=str(FIXTURES / f"{case}.pt"), extra_conf={**(extra or {}), "not_an_option": 1})


@pytest.mark.parametrize("entry,ckpt,says", [
    ("wav2vec_local", "cpc_tiny.pt", r"keys \['config', 'weights'\]"),
    ("wav2vec_local", "../wav2vec2_tiny.pt", "wav2vec 2.0-family"),
    ("cpc_local", "wav2vec_tiny.pt", "not a CPC checkpoint"),
    ("vq_wav2vec_custom", "roberta_tiny.pt", "text_dictionary"),
    ("discretebert", "vq_kmeans_tiny.pt", "not an s3prl-converted DiscreteBERT"),
])
def test_checkpoint_of_another_format_is_named(entry, ckpt, says):
    with pytest.raises(CheckpointFormatError, match=says):
        S3PRLUpstream(entry, path_or_url=str(FIXTURES / ckpt), extra_conf=CASES["roberta_tiny"][1]
                      if entry == "discretebert" else None)


def test_unknown_or_missing_weights_raise(tmp_path):
    obj = torch.load(FIXTURES / "cpc_tiny.pt", weights_only=True)
    obj["weights"]["gAR.baseNet.extra"] = torch.zeros(1)
    torch.save(obj, tmp_path / "extra.pt")
    with pytest.raises(CheckpointFormatError, match="gAR.baseNet.extra"):
        cpc.build(str(tmp_path / "extra.pt"))
    del obj["weights"]["gAR.baseNet.extra"], obj["weights"]["gEncoder.conv3.bias"]
    torch.save(obj, tmp_path / "missing.pt")
    with pytest.raises(CheckpointFormatError, match="encoder.convs.3.bias"):  # the original silently kept random init
        cpc.build(str(tmp_path / "missing.pt"))
    conv = torch.load(FIXTURES / "vq_gumbel_tiny.pt", weights_only=True)
    conv["model_weight"]["vector_quantizer.something_new"] = torch.zeros(1)
    torch.save(conv, tmp_path / "vq.pt")
    with pytest.raises(CheckpointFormatError, match="vector_quantizer.something_new"):
        wav2vec.build(str(tmp_path / "vq.pt"))


def test_legacy_option_is_refused_with_a_hint():
    with pytest.raises(ValueError, match="legacy"):
        wav2vec.build(str(FIXTURES / "wav2vec_tiny.pt"), legacy=True)
    with pytest.raises(ValueError, match="legacy"):
        roberta.build(str(FIXTURES / "roberta_tiny.pt"), legacy=True, frontend_ckpt=KMEANS)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_loaded_weight_matters(case):
    """Perturb each loaded tensor in turn: some hidden state must change (else it should be in a DROP list)."""
    model = upstream(case).upstream
    wav = torch.randn(1, 3000, generator=torch.Generator().manual_seed(0)) * 0.1
    lens = torch.tensor([3000])
    with torch.no_grad():
        ref, _ = model(wav, lens)
        for name, tensor in model.state_dict(keep_vars=True).items():
            if name.endswith("num_batches_tracked") or re.match(r"frontend\.aggregator\.", name):
                continue  # a counter; DiscreteBERT's front end only needs vq-wav2vec up to its code ids
            saved = tensor.detach().clone()
            tensor.data.add_(torch.randn(tensor.shape, generator=torch.Generator().manual_seed(1)).abs() + 0.5)
            out, _ = model(wav, lens)
            tensor.data.copy_(saved)
            assert any(not torch.allclose(a, b, atol=1e-6) for a, b in zip(ref, out)), name


def test_dtype_move_and_determinism():
    up = upstream("vq_kmeans_tiny")
    wav = [torch.randn(5000, generator=torch.Generator().manual_seed(2)) * 0.1]
    a, _ = run(up, wav)
    b, _ = run(up, wav)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    c, _ = run(up.double(), [wav[0].double()])
    assert all((x.double() - y).abs().max() < 1e-4 for x, y in zip(a, c))


# ---------------------------------------------------------------------------------------------------------------
# Released sizes (-m oracle): bash tests/oracle/make_wav2vec1_cpc_dumps.sh, then pytest -m oracle
ORACLE_DUMPS = Path(os.environ.get("S3PRL_ORACLE_DUMPS", "/tmp/s3prl-oracle-dumps")) / "wav2vec1_cpc"
BASE_CASES = {"wav2vec_base": "wav2vec_local", "vq_gumbel_base": "vq_wav2vec_custom",
              "vq_kmeans_base": "vq_wav2vec_custom", "roberta_base": "discretebert", "cpc_base": "cpc_local"}


@pytest.mark.oracle
@pytest.mark.parametrize("case", sorted(BASE_CASES))
def test_released_sizes_same_as_the_original(case):
    if not (ORACLE_DUMPS / f"{case}.dump.pt").exists():
        pytest.skip(f"no {case} dump in {ORACLE_DUMPS}: run tests/oracle/make_wav2vec1_cpc_dumps.sh")
    extra = {"frontend_ckpt": str(ORACLE_DUMPS / "vq_kmeans_base.pt")} if case == "roberta_base" else None
    up = S3PRLUpstream(BASE_CASES[case], path_or_url=str(ORACLE_DUMPS / f"{case}.pt"), extra_conf=extra).eval()
    err = compare_with_dump(up, torch.load(ORACLE_DUMPS / f"{case}.dump.pt", weights_only=True))
    print(f"\n{case}: max|ours - original| single {err['single']:.2e}, batch {err['batch']:.2e}")
    assert err["single"] < 1e-4 and err["batch"] < 1e-4, err
