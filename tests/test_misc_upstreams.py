"""The remaining names: customized_upstream (example), stft_mag, timit_posteriorgram, mos_* (PASE+: test_pase.py).

Parity with the original s3prl on fixtures it produced (tests/oracle/make_hubert_variants_fixtures.sh):
hidden states of the original S3PRLUpstream, or the original MOS expert's scores."""

from pathlib import Path

import pytest
import torch

from parity import compare_with_dump
from s3prl.convert.errors import CheckpointFormatError
from s3prl.nn import S3PRLUpstream
from s3prl.nn.upstream import build_upstream
from s3prl.upstream import example, log_stft

FIXTURES = Path(__file__).parent / "fixtures" / "oracle" / "hubert_variants"
W2V2_TINY = Path(__file__).parent / "fixtures" / "oracle" / "wav2vec2_tiny.pt"
FRONTS = {"wav2vec2": "front_wav2vec2_tiny.pt", "tera": "front_tera_tiny.ckpt", "apc": "front_apc_tiny.ckpt"}


# ---------------------------------------------------------------------------------------------- example
def test_example_same_random_init_and_outputs_as_the_original():
    dump = torch.load(FIXTURES / "example.dump.pt", weights_only=True)
    torch.manual_seed(dump["meta"]["seed"])
    model = S3PRLUpstream("customized_upstream").eval()
    for key, value in model.upstream.state_dict().items():
        assert torch.equal(value, dump["state_dict"][key]), key
    err = compare_with_dump(model, dump)
    assert err["single"] == 0 and err["batch"] == 0


def test_example_legacy_keys_and_checkpoint(tmp_path):
    torch.manual_seed(1)
    model = example.build(None)
    torch.save(model.state_dict(), tmp_path / "example.pt")
    loaded = build_upstream("customized_upstream", str(tmp_path / "example.pt"))
    wav = torch.randn(1, 900)
    states, lengths = loaded(wav, torch.tensor([900]))
    assert torch.equal(states[1], model(wav, torch.tensor([900]))[0][1])
    assert set(loaded.legacy_extras(states, lengths)) == set(example.TASK_KEYS)
    with pytest.raises(CheckpointFormatError, match="example template"):
        build_upstream("customized_upstream", str(W2V2_TINY))
    with pytest.raises(TypeError, match="upstream_ckpt"):
        S3PRLUpstream("customized_upstream", extra_conf={"upstream_ckpt": "x"})


# ---------------------------------------------------------------------------------------------- stft_mag
@pytest.mark.parametrize("name", ["stft_mag", "log_stft_mag"])
def test_stft_mag_same_as_the_original(name):
    dump = torch.load(FIXTURES / f"{name}.dump.pt", weights_only=True)
    model = S3PRLUpstream("stft_mag", extra_conf={"model_config": str(FIXTURES / f"{name}.yaml")}).eval()
    err = compare_with_dump(model, dump)
    assert err["single"] < 1e-5 and err["batch"] < 1e-5, err


def test_stft_mag_defaults_and_yaml_as_checkpoint():
    default = S3PRLUpstream("stft_mag")  # the original required the yaml; its stft_mag.yaml values here
    assert default.hidden_sizes == [257] and default.downsample_rates == [320]
    as_ckpt = S3PRLUpstream("stft_mag", path_or_url=str(FIXTURES / "log_stft_mag.yaml"))
    wav = torch.randn(1, 5000)
    assert torch.allclose(as_ckpt(wav, torch.tensor([5000]))[0][0].exp(), default(wav, torch.tensor([5000]))[0][0],
                          atol=1e-4)
    with pytest.raises(ValueError, match="window"):
        log_stft.parse_config({"spectrogram": dict(log_stft.STFT_MAG, window="hamming")}, "x.yaml")
    with pytest.raises(TypeError, match="bogus"):
        S3PRLUpstream("stft_mag", extra_conf={"bogus": 1})


# ---------------------------------------------------------------------------------------------- timit
def test_timit_posteriorgram_same_as_the_original():
    dump = torch.load(FIXTURES / "timit_phone_tiny.dump.pt", weights_only=True)
    model = S3PRLUpstream("timit_posteriorgram_local", path_or_url=str(FIXTURES / "timit_phone_tiny.ckpt")).eval()
    assert model.hidden_sizes == [39] and model.downsample_rates == [160]
    err = compare_with_dump(model, dump)
    assert err["single"] < 1e-5 and err["batch"] < 1e-5, err


def test_timit_posteriorgram_is_deterministic_and_sums_to_one():
    model = S3PRLUpstream("timit_posteriorgram_local", path_or_url=str(FIXTURES / "timit_phone_tiny.ckpt")).eval()
    wavs, lens = torch.randn(2, 8000), torch.tensor([8000, 5000])
    with torch.no_grad():
        first, second = model(wavs, lens)[0][0], model(wavs, lens)[0][0]
    assert torch.equal(first, second)  # the original keeps dropout on at inference
    assert torch.allclose(first[0].sum(-1), torch.ones(50))
    with pytest.raises(CheckpointFormatError, match="timit_phone"):
        S3PRLUpstream("timit_posteriorgram_local", path_or_url=str(W2V2_TINY))


# ---------------------------------------------------------------------------------------------- MOS
@pytest.mark.parametrize("kind", sorted(FRONTS))
def test_mos_scores_same_as_the_original(kind):
    ref = torch.load(FIXTURES / f"mos_{kind}_tiny.scores.pt", weights_only=True)
    model = build_upstream(f"mos_{kind}_local", str(FIXTURES / f"mos_{kind}_tiny.ckpt"),
                           extra_conf={"upstream_ckpt": str(FIXTURES / FRONTS[kind])})
    wavs = [w.float() for w in ref["wavs"]]
    with torch.no_grad():
        scores = model.legacy_forward(wavs)["scores"]
        batched = model.scores(torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True),
                               torch.tensor([len(w) for w in wavs]))
    assert scores.shape == (len(wavs),)
    assert (scores - ref["scores"]).abs().max() < 1e-4
    assert (batched - ref["scores"]).abs().max() < 1e-4


def test_mos_has_no_hidden_states():
    ref = torch.load(FIXTURES / "mos_wav2vec2_tiny.scores.pt", weights_only=True)
    assert "hidden_states" in ref["s3prl_upstream_error"]  # the original S3PRLUpstream fails too
    model = S3PRLUpstream("mos_wav2vec2_local", path_or_url=str(FIXTURES / "mos_wav2vec2_tiny.ckpt"),
                          extra_conf={"upstream_ckpt": str(FIXTURES / FRONTS["wav2vec2"])})
    with pytest.raises(RuntimeError, match="hub interface"):
        model(torch.randn(1, 16000), torch.tensor([16000]))
    with pytest.raises(RuntimeError, match="no hidden states"):
        model.num_layers


def test_mos_bad_inputs():
    with pytest.raises(TypeError, match="bogus"):
        build_upstream("mos_wav2vec2_local", str(FIXTURES / "mos_wav2vec2_tiny.ckpt"), extra_conf={"bogus": 1})
    with pytest.raises(CheckpointFormatError, match="MOS prediction"):
        build_upstream("mos_apc_local", str(W2V2_TINY))


# ---------------------------------------------------------------------------------------------- PASE+
