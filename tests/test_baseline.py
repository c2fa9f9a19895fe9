"""The ``baseline`` upstream family: built-in front-ends, yaml configs, batch invariance, oracle parity."""

import glob
import math
import os

import pytest
import torch

from s3prl.upstream import baseline

DIMS = {"fbank": 240, "fbank_no_cmvn": 240, "mfcc": 39, "mel": 80, "linear": 201, "spectrogram": 257}
KALDI = {"fbank", "fbank_no_cmvn", "mfcc", "spectrogram"}


def _wavs(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    wavs = []
    for n in lengths:
        t = torch.arange(n) / 16000
        wavs.append(0.3 * torch.sin(2 * math.pi * (200 + 50 * torch.rand(1, generator=g)) * t)
                    + 0.05 * torch.randn(n, generator=g))
    padded = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)  # (B, T)
    return wavs, padded, torch.tensor(lengths)


def _expected_frames(feature, n):
    if feature in KALDI:
        return max(0, (n - 400) // 160 + 1)
    return n // 160 + 1 if n else 0


@pytest.mark.parametrize("feature", sorted(DIMS))
def test_shapes_lengths_and_properties(feature):
    model = baseline.build(feature=feature)
    assert model.num_layers == 1
    assert model.hidden_sizes == [DIMS[feature]]
    assert model.downsample_rates == [160]
    lengths = [16000, 8123, 960]
    _, padded, lens = _wavs(lengths)
    hs, hs_len = model(padded, lens)
    assert len(hs) == 1 and len(hs_len) == 1
    expected = [_expected_frames(feature, n) for n in lengths]
    assert hs_len[0].tolist() == expected and hs_len[0].dtype == torch.long
    assert hs[0].shape == (3, max(expected), DIMS[feature])
    assert torch.isfinite(hs[0]).all()
    for b, n in enumerate(expected):  # zero padding after each utterance's frames
        assert (hs[0][b, n:] == 0).all()


@pytest.mark.parametrize("feature", sorted(DIMS))
def test_batch_equals_single_utterance(feature):
    model = baseline.build(feature=feature)
    wavs, padded, lens = _wavs([12000, 4000, 7777, 500])
    hs, hs_len = model(padded, lens)
    for b, wav in enumerate(wavs):
        single, single_len = model(wav[None], torch.tensor([len(wav)]))
        n = int(single_len[0][0])
        assert int(hs_len[0][b]) == n
        assert torch.equal(hs[0][b, :n], single[0][0, :n])


def test_cmvn_normalises_each_utterance():
    model = baseline.build(feature="fbank")
    _, padded, lens = _wavs([16000])
    feats = model(padded, lens)[0][0][0]  # (T, 240)
    assert torch.allclose(feats.mean(0), torch.zeros(240), atol=1e-4)
    assert torch.allclose(feats.std(0), torch.ones(240), atol=1e-3)


@pytest.mark.parametrize("feature", sorted(DIMS))
def test_very_short_and_empty_input(feature):
    model = baseline.build(feature=feature)
    wavs = torch.zeros(3, 800)
    wavs[:, :450] = torch.randn(3, 450)  # one utterance of 0, one of 100, one of 450 samples
    lens = torch.tensor([0, 100, 450])
    hs, hs_len = model(wavs, lens)
    assert hs_len[0].tolist() == [_expected_frames(feature, n) for n in (0, 100, 450)]
    assert hs[0].shape[-1] == DIMS[feature]
    assert torch.isfinite(hs[0]).all()  # a single frame is normalised to zeros, not NaN


def test_dtype_is_kept():
    model = baseline.build(feature="fbank")
    _, padded, lens = _wavs([4000, 3000])
    hs64, _ = model(padded.double(), lens)
    hs32, _ = model(padded, lens)
    assert hs64[0].dtype == torch.float64
    assert (hs64[0].float() - hs32[0]).abs().max() < 1e-2


def test_bad_feature_and_options():
    with pytest.raises(ValueError, match="Unknown baseline feature 'fbankk'"):
        baseline.build(feature="fbankk")
    with pytest.raises(ValueError, match="Unknown option"):
        baseline.build(feature="fbank", window_secs=1.0)
    with pytest.raises(FileNotFoundError):
        baseline.build(model_config="/nonexistent/baseline.yaml")
    model = baseline.build(feature="fbank")
    with pytest.raises(ValueError, match="wavs_len"):
        model(torch.zeros(1, 100), torch.tensor([200]))


KALDI_YAML = """\
kaldi:
  feat_type: fbank
  fbank:
    num_mel_bins: 40
    frame_length: 25.0
    frame_shift: 20.0
    use_energy: true
    window_type: hamming
delta:
  order: 1
  win_length: 5
cmvn:
  use_cmvn: true
"""

STFT_YAML = """\
win_ms: 25
hop_ms: 10
n_freq: 201
n_mels: 40
n_mfcc: 13
input:
  feat_type: mfcc
  channel: 0
  log: false
  delta: 2
  cmvn: true
"""


def test_baseline_local_yaml(tmp_path):
    path = tmp_path / "kaldi.yaml"
    path.write_text(KALDI_YAML)
    model = baseline.build(model_config=str(path))
    assert model.hidden_sizes == [82] and model.downsample_rates == [320]
    hs, hs_len = model(torch.randn(1, 16000) * 0.1, torch.tensor([16000]))
    assert hs[0].shape == (1, (16000 - 400) // 320 + 1, 82) and hs_len[0].tolist() == [hs[0].shape[1]]
    # ``baseline_local`` may receive the yaml as the checkpoint path
    assert baseline.build(str(path)).hidden_sizes == [82]

    path = tmp_path / "stft.yaml"
    path.write_text(STFT_YAML)
    model = baseline.build(model_config=str(path))
    assert model.hidden_sizes == [39] and model.downsample_rates == [160]
    hs, _ = model(torch.randn(1, 16000) * 0.1, torch.tensor([16000]))
    assert hs[0].shape == (1, 101, 39)


@pytest.mark.parametrize("config, message", [
    ({"kaldi": {"feat_type": "fbank"}, "cmvn": {"use_cmvn": True}, "extra": 1}, "extra"),
    ({"kaldi": {"feat_type": "fbank", "fbank": {"num_mel_bin": 80}}, "cmvn": {"use_cmvn": True}}, "num_mel_bin"),
    ({"kaldi": {"feat_type": "fbank", "fbank": {"sample_frequency": 8000}}, "cmvn": {"use_cmvn": True}},
     "sample_frequency"),
    ({"kaldi": {"feat_type": "plp"}, "cmvn": {"use_cmvn": True}}, "plp"),
    ({"kaldi": {"feat_type": "fbank"}, "delta": {"order": 2, "window": 5}, "cmvn": {"use_cmvn": True}}, "window"),
    ({"kaldi": {"feat_type": "fbank"}}, "use_cmvn"),
    ({"win_ms": 25, "input": {"feat_type": "mel", "norm": True}}, "norm"),
    ({"win_ms": 25, "hopms": 10, "input": {"feat_type": "mel"}}, "hopms"),
    ({"input": {"feat_type": "phase"}}, "phase"),
    ({"win_ms": 25}, "input"),
])
def test_config_errors_are_clear(config, message):
    with pytest.raises(ValueError, match=message):
        baseline.build(model_config=config)


@pytest.mark.parametrize("feature", sorted(DIMS))
def test_config_dimension_matches_output(feature):
    cfg = baseline.BUILTIN_CONFIGS[feature]
    model = baseline.build(model_config=cfg)
    hs, _ = model(torch.randn(1, 4000) * 0.1, torch.tensor([4000]))
    assert hs[0].shape[-1] == model.hidden_sizes[0] == DIMS[feature]


def test_stft_cmvn_keeps_frames_up_to_last_nonzero_sample():
    """As the original: with trailing exact zeros, the STFT front-ends keep round(L / (N / frames)) frames."""
    model = baseline.build(feature="mel")
    wav = torch.zeros(1, 800)
    wav[0, :400] = torch.randn(400)
    _, hs_len = model(wav, torch.tensor([800]))
    assert hs_len[0].tolist() == [round(400 / (800 / 6))]


def test_real_audio_fbank_frame_counts():
    root = os.environ.get("S3PRL_TEST_DATA")
    if not root or not os.path.isdir(root):
        pytest.skip("S3PRL_TEST_DATA is not set or missing")
    from s3prl.audio import load_audio

    model = baseline.build(feature="fbank")
    paths = [os.path.join(root, "fsdd/recordings/0_jackson_0.wav"),
             os.path.join(root, "librispeech_test_other_mini/1688/1688-142285-0000.flac")]
    if not all(os.path.isfile(p) for p in paths):
        pytest.skip("test recordings missing")
    wavs = [load_audio(p) for p in paths]  # the FSDD clip is 8 kHz, resampled to 16 kHz
    lens = torch.tensor([len(w) for w in wavs])
    hs, hs_len = model(torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True), lens)
    assert hs_len[0].tolist() == [(n - 400) // 160 + 1 for n in lens.tolist()]
    assert hs[0].shape == (2, max(hs_len[0].tolist()), 240)
    assert torch.isfinite(hs[0]).all()


# ---------------------------------------------------------------- parity with the original s3prl

def _dumps():
    root = os.environ.get("S3PRL_ORACLE_DUMPS", "/tmp/s3prl-oracle-dumps")
    return sorted(glob.glob(os.path.join(root, "baseline_*.dump.pt")))


@pytest.mark.oracle
def test_matches_original_single_utterance():
    """Each utterance alone equals the original's batch-size-1 output on the frames we produce.

    Dumps come from tests/oracle/make_baseline_dumps.sh. Inputs under 800 samples are padded to 800 as
    the S3PRLUpstream wrapper does; the original's extra tail frames (last frame repeated) are the
    wrapper's and are not compared.
    """
    dumps = _dumps()
    if not dumps:
        pytest.skip("no oracle dumps: run tests/oracle/make_baseline_dumps.sh")
    for path in dumps:
        dump = torch.load(path, weights_only=True)
        model = baseline.build(feature=dump["meta"]["entry"])
        assert model.hidden_sizes == dump["meta"]["hidden_sizes"]
        assert model.downsample_rates == dump["meta"]["downsample_rates"]
        for b, wav in enumerate(dump["wavs"]):
            wav = torch.nn.functional.pad(wav, (0, max(0, 800 - len(wav))))
            hs, hs_len = model(wav[None], torch.tensor([len(wav)]))
            ref = dump["single"][b][0][0]  # (T_ref, D)
            n = int(hs_len[0][0])
            # the wrapper repeats our last frame up to ceil(len / 160), or crops to it
            assert math.ceil(len(dump["wavs"][b]) / 160) == ref.shape[0], (path, b)
            assert n <= ref.shape[0] + 1, (path, b)
            n = min(n, ref.shape[0])
            err = (hs[0][0, :n] - ref[:n]).abs().max().item()
            assert err < 1e-4, (path, b, err)
