"""Public API: S3PRLUpstream, Featurizer, the legacy hub, hubconf, and clear errors for bad input."""

import os
import shutil
from pathlib import Path

import pytest
import torch

import s3prl.hub as hub
from s3prl.checkpoint import CorruptCheckpointError
from s3prl.convert.errors import CheckpointFormatError
from s3prl.nn import Featurizer, S3PRLUpstream
from s3prl.upstream import FamilyNotImplementedError

FIXTURES = Path(__file__).parent / "fixtures" / "oracle"
W2V2 = str(FIXTURES / "wav2vec2_tiny.pt")
DISTILLER = str(FIXTURES / "distiller_tiny.pt")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def upstream():
    return S3PRLUpstream("wav2vec2_local", path_or_url=W2V2).eval()


def batch(*lengths, seed=0):
    gen = torch.Generator().manual_seed(seed)
    wavs = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        wavs[i, :n] = torch.randn(n, generator=gen) * 0.1
    return wavs, torch.tensor(lengths)


# ---- the documented examples -------------------------------------------------------------------


def test_documentation_example_with_featurizer(upstream):
    featurizer = Featurizer(upstream)
    wavs, wavs_len = batch(32000, 16000)
    with torch.no_grad():
        all_hs, all_hs_len = upstream(wavs, wavs_len)
        hs, hs_len = featurizer(all_hs, all_hs_len)
    assert upstream.num_layers == len(all_hs) == 3
    assert hs.shape == (2, 100, featurizer.output_size) and hs_len.tolist() == [100, 50]
    assert featurizer.downsample_rate == 320
    # equal initial weights: the sum is the mean of the layers
    assert torch.allclose(hs, torch.stack(all_hs).mean(0), atol=1e-6)


def test_featurizer_layer_selection_and_normalize(upstream):
    wavs, wavs_len = batch(16000)
    with torch.no_grad():
        all_hs, all_hs_len = upstream(wavs, wavs_len)
    single = Featurizer(upstream, layer_selections=[1])
    assert torch.equal(single(all_hs, all_hs_len)[0], all_hs[1])
    two = Featurizer(upstream, layer_selections=[2, 0], normalize=True)
    assert two.layer_selections == [0, 2] and two.weights.shape == (2,)
    out, _ = two(all_hs, all_hs_len)
    expected = torch.nn.functional.layer_norm(torch.stack([all_hs[0], all_hs[2]]), (all_hs[0].size(-1),)).mean(0)
    assert torch.allclose(out, expected, atol=1e-6)
    with pytest.raises(ValueError, match="out of range"):
        Featurizer(upstream, layer_selections=[7])


def test_legacy_hub_interface():
    model = hub.wav2vec2_custom(ckpt=W2V2)
    out = model([torch.randn(16000) * 0.1, torch.randn(8000) * 0.1])
    assert len(out["hidden_states"]) == 3
    assert out["last_hidden_state"] is out["hidden_states"][-1]
    assert all(torch.equal(out[f"hidden_state_{i}"], h) for i, h in enumerate(out["hidden_states"]))
    assert out["hidden_states"][0].shape == (2, 49, 32)  # the model's own frames, as the original hub
    assert model.get_downsample_rates("hidden_states") == 320
    assert "wavlm_base_plus" in dir(hub) and "hubert" in hub.options()


def test_distilhubert_paper_key():
    out = hub.distiller_local(ckpt=DISTILLER)([torch.randn(16000) * 0.1])
    assert len(out["hidden_states"]) == 6
    assert torch.equal(out["paper"], out["hidden_states"][2])
    assert out["pad_mask"].shape == out["hidden_states"][0].shape[:2]


def test_torch_hub_load_local(tmp_path):
    model = torch.hub.load(str(REPO), "wav2vec2_local", source="local", ckpt=W2V2)
    out = model([torch.randn(8000) * 0.1])
    assert len(out["hidden_states"]) == 3


def test_available_names_and_unimplemented_family(monkeypatch):
    from s3prl import registry

    names = S3PRLUpstream.available_names()
    assert "hubert_base" in names and "wav2vec2_custom" in names
    assert "wav2vec2_custom" not in S3PRLUpstream.available_names(only_registered_ckpt=True)
    monkeypatch.setitem(registry.REGISTRY, "future_model", registry.user("future_family"))
    with pytest.raises(FamilyNotImplementedError, match="family 'future_family'.*not implemented yet"):
        S3PRLUpstream("future_model", path_or_url=W2V2)
    with pytest.raises(ValueError, match="Did you mean"):
        S3PRLUpstream("hubert_bas")


def test_user_checkpoint_entry_requires_a_path():
    with pytest.raises(ValueError, match="path_or_url"):
        S3PRLUpstream("wav2vec2_local")


# ---- bad input ----------------------------------------------------------------------------------


def test_empty_and_very_short_waveforms(upstream):
    wavs, wavs_len = batch(0, 1, 399, 799, 1000, 16000)
    with torch.no_grad():
        all_hs, all_hs_len = upstream(wavs, wavs_len)
    assert all_hs_len[0].tolist() == [0, 1, 2, 3, 4, 50]
    assert all(torch.isfinite(h).all() for h in all_hs)
    only_empty, only_empty_len = upstream(torch.zeros(1, 0), torch.tensor([0]))
    assert only_empty[0].shape == (1, 0, 32) and only_empty_len[0].tolist() == [0]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_and_inf_are_rejected(upstream, bad):
    wavs, wavs_len = batch(16000, 8000)
    wavs[1, 100] = bad
    with pytest.raises(ValueError, match=r"NaN or inf in utterance\(s\) \[1\]"):
        upstream(wavs, wavs_len)
    wavs[1, 100] = 0
    wavs[1, 9000] = bad  # past utterance 1's length: padding is ignored
    upstream(wavs, wavs_len)


def test_wrong_rank_dtype_and_lengths(upstream):
    with pytest.raises(ValueError, match="mono"):
        upstream(torch.randn(2, 2, 16000), torch.tensor([16000, 16000]))  # stereo (B, C, T)
    with pytest.raises(TypeError, match="32768"):
        upstream(torch.zeros(1, 16000, dtype=torch.int16), torch.tensor([16000]))
    with pytest.raises(ValueError, match="wavs_len"):
        upstream(torch.randn(2, 16000), torch.tensor([16000]))
    with pytest.raises(ValueError, match="lie in"):
        upstream(torch.randn(1, 16000), torch.tensor([17000]))
    out, _ = upstream(torch.randn(1, 16000, 1) * 0.1, torch.tensor([16000]))  # (B, T, 1) is accepted
    assert out[0].shape == (1, 50, 32)


def test_checkpoint_of_another_family_is_named():
    with pytest.raises(CheckpointFormatError, match="DistilHuBERT checkpoint"):
        S3PRLUpstream("wav2vec2_local", path_or_url=DISTILLER)
    with pytest.raises(CheckpointFormatError, match="not a DistilHuBERT checkpoint"):
        S3PRLUpstream("distiller_local", path_or_url=W2V2)


def test_truncated_and_corrupt_files(tmp_path):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(Path(W2V2).read_bytes()[:5000])
    with pytest.raises(CorruptCheckpointError, match="truncated.pt"):
        S3PRLUpstream("wav2vec2_local", path_or_url=str(truncated))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(CorruptCheckpointError, match="garbage.pt"):
        S3PRLUpstream("wav2vec2_local", path_or_url=str(garbage))
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        S3PRLUpstream("wav2vec2_local", path_or_url=str(tmp_path / "missing.pt"))


def test_unknown_option_is_rejected():
    with pytest.raises(TypeError, match="unknown option"):
        S3PRLUpstream("wav2vec2_local", path_or_url=W2V2, extra_conf={"windw_secs": 1})
    with pytest.raises(ValueError, match="feature_selection"):
        S3PRLUpstream("wav2vec2_local", path_or_url=W2V2, extra_conf={"feature_selection": "last"})


def test_normalize_and_randomize():
    torch.manual_seed(0)
    model = S3PRLUpstream("wav2vec2_local", path_or_url=W2V2, normalize=True).eval()
    hs, _ = model(*batch(16000))
    assert torch.allclose(hs[-1].mean(-1), torch.zeros(1, 50), atol=1e-4)
    random = S3PRLUpstream("wav2vec2_local", path_or_url=W2V2, randomize=True).eval()
    reference = S3PRLUpstream("wav2vec2_local", path_or_url=W2V2).eval()
    a, _ = random(*batch(16000))
    b, _ = reference(*batch(16000))
    assert not torch.allclose(a[-1], b[-1])


def test_cache_is_used_for_a_url_offline(tmp_path, monkeypatch):
    """A named entry in offline mode finds a file placed in the cache by hand, and says where it should be."""
    from s3prl import download, registry

    monkeypatch.setenv("S3PRL_OFFLINE", "1")
    monkeypatch.setenv("S3PRL_CACHE", str(tmp_path))
    download.set_cache_dir(None)
    url = registry.REGISTRY["ms_hubert"].urls[0]  # no published digest: trusted on first use
    with pytest.raises(download.OfflineError) as err:
        S3PRLUpstream("ms_hubert")
    target = download.cache_path(url)
    assert str(target) in str(err.value)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "hubert_tiny.pt", target)
    assert S3PRLUpstream("ms_hubert").num_layers == 3
    # an entry with a published digest refuses a cached file that does not match it
    target = download.cache_path(registry.REGISTRY["hubert_base"].urls[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "hubert_tiny.pt", target)
    with pytest.raises(download.OfflineError, match="expected efe234ba"):
        S3PRLUpstream("hubert_base")
