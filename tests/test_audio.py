"""Audio front-ends: Kaldi features against kaldi-native-fbank and torchaudio, resampling, reading."""

import math
import os

import numpy as np
import pytest
import torch

from s3prl.audio import (add_deltas, cmvn, compute_deltas, fbank, kaldi, load_audio, mfcc, power_spectrogram,
                         resample, spectrogram, stft_feature)

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "torchaudio_reference.pt")


def _signals():
    """Broad-band test signals (every mel band has energy, so float32 round-off stays far below 1e-3)."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(12000) / 16000
    noise = 0.1 * torch.randn(12000, generator=g)
    sine = 0.2 * torch.sin(2 * math.pi * 440 * t) + 0.1 * torch.sin(2 * math.pi * 3100 * t)
    return {"noise": noise, "sine": sine + 0.05 * torch.randn(12000, generator=g),
            "noise_int16_scale": noise * 32768}


SIGNALS = _signals()


# ---------------------------------------------------------------- kaldi-native-fbank (independent Kaldi port)

def _knf_run(online, opts, wav):
    opts.frame_opts.dither = 0.0
    extractor = online(opts)
    extractor.accept_waveform(16000, wav.tolist())
    extractor.input_finished()
    return torch.tensor(np.array([extractor.get_frame(i) for i in range(extractor.num_frames_ready)]))


def _set(opts, frame=None, mel=None, **top):
    for k, v in (frame or {}).items():
        setattr(opts.frame_opts, k, v)
    for k, v in (mel or {}).items():
        setattr(opts.mel_opts, k, v)
    for k, v in top.items():
        setattr(opts, k, v)
    return opts


# (our kwargs, knf frame options, knf mel options, knf top-level options); knf's energy floor is 0
FBANK_CASES = [
    ({"num_mel_bins": 80}, {}, {"num_bins": 80}, {}),
    ({"num_mel_bins": 40, "window_type": "hamming", "use_energy": True, "snip_edges": False},
     {"window_type": "hamming", "snip_edges": False}, {"num_bins": 40}, {"use_energy": True}),
    ({"num_mel_bins": 23, "htk_compat": True, "use_energy": True, "low_freq": 64.0, "high_freq": -400.0,
      "raw_energy": False}, {}, {"num_bins": 23, "low_freq": 64.0, "high_freq": -400.0},
     {"htk_compat": True, "use_energy": True, "raw_energy": False}),
    ({"num_mel_bins": 30, "window_type": "hanning", "use_power": False, "preemphasis_coefficient": 0.5,
      "remove_dc_offset": False}, {"window_type": "hanning", "preemph_coeff": 0.5, "remove_dc_offset": False},
     {"num_bins": 30}, {"use_power": False}),
    ({"num_mel_bins": 40, "window_type": "blackman", "round_to_power_of_two": False, "frame_length": 20.0,
      "frame_shift": 12.5}, {"window_type": "blackman", "round_to_power_of_two": False, "frame_length_ms": 20.0,
                             "frame_shift_ms": 12.5}, {"num_bins": 40}, {}),
]
MFCC_CASES = [
    ({"num_ceps": 13}, {}, {"num_bins": 23}, {"use_energy": False}),
    ({"num_ceps": 13, "use_energy": True}, {}, {"num_bins": 23}, {"use_energy": True}),
    ({"num_ceps": 20, "num_mel_bins": 40, "htk_compat": True, "cepstral_lifter": 0.0}, {}, {"num_bins": 40},
     {"num_ceps": 20, "htk_compat": True, "use_energy": False, "cepstral_lifter": 0.0}),
    ({"num_ceps": 13, "htk_compat": True, "use_energy": True, "window_type": "rectangular"},
     {"window_type": "rectangular"}, {"num_bins": 23}, {"htk_compat": True, "use_energy": True}),
]


@pytest.mark.parametrize("signal", sorted(SIGNALS))
@pytest.mark.parametrize("case", range(len(FBANK_CASES)))
def test_fbank_matches_kaldi_native_fbank(case, signal):
    knf = pytest.importorskip("kaldi_native_fbank")
    ours_kw, frame, mel, top = FBANK_CASES[case]
    wav = SIGNALS[signal]
    ours = fbank(wav, energy_floor=0.0, **ours_kw)
    ref = _knf_run(knf.OnlineFbank, _set(knf.FbankOptions(), frame, mel, **top), wav)
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max() < 1e-3


@pytest.mark.parametrize("signal", sorted(SIGNALS))
@pytest.mark.parametrize("case", range(len(MFCC_CASES)))
def test_mfcc_matches_kaldi_native_fbank(case, signal):
    knf = pytest.importorskip("kaldi_native_fbank")
    ours_kw, frame, mel, top = MFCC_CASES[case]
    wav = SIGNALS[signal]
    ours = mfcc(wav, energy_floor=0.0, **ours_kw)
    ref = _knf_run(knf.OnlineMfcc, _set(knf.MfccOptions(), frame, mel, **top), wav)
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max() < 1e-3


def _knf_frames(knf, wav, **frame):
    opts = knf.RawAudioSamplesOptions()
    for k, v in frame.items():
        setattr(opts.frame_opts, k, v)
    return _knf_run(knf.OnlineRawAudioSamples, opts, wav)  # (m, 400)


@pytest.mark.parametrize("signal", sorted(SIGNALS))
def test_spectrogram_matches_kaldi_native_fbank_frames(signal):
    """knf has no spectrogram, but Kaldi's is log |rfft|^2 of knf's windowed frames, bin 0 = log raw energy."""
    knf = pytest.importorskip("kaldi_native_fbank")
    wav = SIGNALS[signal]
    eps = torch.finfo(torch.float32).eps
    windowed = _knf_frames(knf, wav, window_type="povey", preemph_coeff=0.97, remove_dc_offset=True)
    raw = _knf_frames(knf, wav, window_type="rectangular", preemph_coeff=0.0, remove_dc_offset=True)
    rfft = knf.Rfft(512)
    packed = torch.tensor(np.array([rfft.compute(f.tolist() + [0.0] * 112) for f in windowed]))  # (m, 512)
    power = torch.cat([packed[:, :1] ** 2, packed[:, 2:].reshape(len(packed), 255, 2).pow(2).sum(-1),
                       packed[:, 1:2] ** 2], dim=1)  # (m, 257): DC, bins 1..255, Nyquist
    ref = power.clamp_min(eps).log()
    ref[:, 0] = raw.pow(2).sum(1).clamp_min(eps).log()
    ours = spectrogram(wav, energy_floor=0.0)
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max() < 1e-3


# ---------------------------------------------------------------- torchaudio (the original's back-end)

@pytest.fixture(scope="module")
def reference():
    return torch.load(FIXTURE, weights_only=True)


def test_kaldi_features_match_torchaudio(reference):
    wav = reference["wav"]
    for name, case in reference["kaldi"].items():
        ours = getattr(kaldi, case["fn"])(wav, **case["kwargs"])
        torch.testing.assert_close(ours, case["out"], rtol=1e-5, atol=1e-5, msg=name)


def test_resample_matches_torchaudio(reference):
    for name, case in reference["resample"].items():
        ours = resample(reference["wav"][: case["n"]], case["orig"], case["new"])
        assert ours.shape == case["out"].shape, name
        assert (ours - case["out"]).abs().max() < 1e-5, name


def test_deltas_and_stft_mfcc_match_torchaudio(reference):
    fb = reference["kaldi"]["fbank_80"]["out"]
    torch.testing.assert_close(compute_deltas(fb.T).T, reference["deltas_of_fbank_80"], rtol=0, atol=1e-6)
    ours = stft_feature(reference["wav"], "mfcc", n_mfcc=13)
    torch.testing.assert_close(ours, reference["stft_mfcc_13"], rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------- properties

def test_kaldi_frame_counts_and_short_input():
    for n in (399, 400, 559, 560, 16000):
        assert fbank(torch.randn(n)).shape[0] == max(0, (n - 400) // 160 + 1)
        assert fbank(torch.randn(n), snip_edges=False).shape[0] == (n + 80) // 160
    assert fbank(torch.zeros(0), num_mel_bins=80).shape == (0, 80)
    assert spectrogram(torch.randn(100)).shape == (0, 257)
    assert mfcc(torch.randn(100), num_ceps=13).shape == (0, 13)
    # a signal shorter than half a window still gives (mirrored) frames without snip_edges
    short = fbank(torch.randn(100), snip_edges=False)
    assert short.shape == (1, 23) and torch.isfinite(short).all()


def test_kaldi_accepts_channel_first_and_float64():
    wav = SIGNALS["noise"]
    torch.testing.assert_close(fbank(wav[None]), fbank(wav))
    out64 = fbank(wav.double(), num_mel_bins=40)
    assert out64.dtype == torch.float64
    assert (out64.float() - fbank(wav, num_mel_bins=40)).abs().max() < 1e-3


def test_kaldi_bad_options_raise():
    with pytest.raises(ValueError, match="window_type"):
        fbank(torch.randn(1000), window_type="triangle")
    with pytest.raises(ValueError, match="num_ceps"):
        mfcc(torch.randn(1000), num_ceps=30, num_mel_bins=23)
    with pytest.raises(ValueError, match="high_freq"):
        fbank(torch.randn(1000), high_freq=9000.0)


def test_deltas_of_a_ramp_and_cmvn():
    ramp = torch.arange(10.0)[None].repeat(3, 1)  # (F, T) with slope 1
    d = compute_deltas(ramp)
    assert torch.allclose(d[:, 2:-2], torch.ones(3, 6))
    assert add_deltas(torch.randn(7, 4), order=2).shape == (7, 12)
    x = cmvn(torch.randn(50, 6) * 3 + 2)
    assert torch.allclose(x.mean(0), torch.zeros(6), atol=1e-5)
    assert torch.allclose(x.std(0), torch.ones(6), atol=1e-5)
    assert torch.equal(cmvn(torch.ones(1, 3)), torch.zeros(1, 3))  # one frame: zeros, not NaN


def test_power_spectrogram_is_centred_stft():
    wav = SIGNALS["sine"][:4000]
    ref = torch.stft(wav, 400, 160, 400, window=torch.hann_window(400), center=True, pad_mode="reflect",
                     return_complex=True).abs().pow(2).T
    torch.testing.assert_close(power_spectrogram(wav, 400, 160, 400), ref)
    for n in (0, 1, 150, 160):  # shorter than the reflect padding: still N // 160 + 1 frames
        assert power_spectrogram(torch.randn(n), 400, 160, 400).shape[0] == (n // 160 + 1 if n else 0)


# ---------------------------------------------------------------- resampling

def _peak_hz(wav, sr):
    spectrum = torch.fft.rfft(wav * torch.hann_window(len(wav), dtype=wav.dtype)).abs()
    return spectrum.argmax().item() * sr / len(wav)


def test_resample_keeps_frequency_and_length():
    t = torch.arange(8000) / 8000
    tone8k = torch.sin(2 * math.pi * 440 * t)
    up = resample(tone8k, 8000, 16000)
    assert up.shape == (16000,)
    assert abs(_peak_hz(up, 16000) - 440) <= 1
    t16 = torch.arange(16000) / 16000
    # away from the edges the upsampled tone is the tone sampled at 16 kHz
    assert (up[200:-200] - torch.sin(2 * math.pi * 440 * t16)[200:-200]).abs().max() < 1e-2
    for n, orig, new in [(1001, 8000, 16000), (999, 44100, 16000), (12345, 22050, 16000), (7, 16000, 8000)]:
        assert resample(torch.randn(n), orig, new).shape == (-(-n * new // orig),)
    assert resample(torch.randn(2, 3, 100), 16000, 8000).shape == (2, 3, 50)
    wav = torch.randn(100)
    assert resample(wav, 16000, 16000) is wav


def test_resample_rejects_bad_rates():
    with pytest.raises(ValueError):
        resample(torch.randn(10), 0, 16000)
    with pytest.raises(ValueError):
        resample(torch.randn(10), 8000.5, 16000)


# ---------------------------------------------------------------- reading files

def test_load_audio_mixes_and_resamples(tmp_path):
    sf = pytest.importorskip("soundfile")
    t = np.arange(8000) / 8000
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    path = tmp_path / "stereo8k.wav"
    sf.write(path, stereo, 8000, subtype="FLOAT")
    wav = load_audio(path)
    assert wav.dtype == torch.float32 and wav.shape == (16000,)
    assert abs(wav.abs().max().item() - 0.25) < 0.01  # channel mean halves the amplitude
    assert abs(_peak_hz(wav, 16000) - 440) <= 1
    assert load_audio(path, sample_rate=8000).shape == (8000,)


def test_load_audio_errors_name_the_file(tmp_path):
    sf = pytest.importorskip("soundfile")
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        load_audio(tmp_path / "missing.wav")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(ValueError, match="garbage.wav"):
        load_audio(garbage)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1)), 16000)
    with pytest.raises(ValueError, match="empty.wav"):
        load_audio(empty)


def _data_dir():
    root = os.environ.get("S3PRL_TEST_DATA")
    if not root or not os.path.isdir(root):
        pytest.skip("S3PRL_TEST_DATA is not set or missing")
    return root


def test_real_audio_loads_and_gives_kaldi_frames():
    root = _data_dir()
    sf = pytest.importorskip("soundfile")
    for rel in ("fsdd/recordings/0_jackson_0.wav",
                "librispeech_test_other_mini/1688/1688-142285-0000.flac"):
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            pytest.skip(f"{path} missing")
        info = sf.info(path)
        wav = load_audio(path)
        assert wav.shape == (-(-info.frames * 16000 // info.samplerate),)
        feats = fbank(wav, num_mel_bins=80)
        assert feats.shape == ((len(wav) - 400) // 160 + 1, 80)
        assert torch.isfinite(feats).all()
