"""VC (``a2o-vc-vcc2020``): parity with the original code (fixtures from ``tests/oracle/make_vc_fixtures.py``:
the Taco2-AR head's outputs, loss and gradients for the same weights, inputs and dropout draws; the 24 kHz
log-mel targets; the MCD of the original's evaluation; the ``parallel_wavegan`` generator on a random
checkpoint in its format), the vocoder's errors, ``s3prl score mcd`` and a tiny run through the runner."""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from s3prl.audio.mel import griffin_lim, log_mel, mel_to_linear, stft
from s3prl.audio.parallel_wavegan import load_vocoder
from s3prl.downstream.taco2_ar import Taco2AR, Taco2ARConfig, masked_l1

sys.path.insert(0, str(Path(__file__).parent / "oracle"))
from vc_seeded import seeded_state  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
FX = Path(__file__).parent / "fixtures" / "vc"
DATA = os.environ.get("S3PRL_TEST_DATA")


# ------------------------------------------------------------------------------------------------
# features and Griffin-Lim
# ------------------------------------------------------------------------------------------------


def test_log_mel_equals_the_original():
    d = np.load(FX / "mel.npz")
    ours = log_mel(torch.from_numpy(d["wav"]))  # the task's defaults: 24 kHz, 1024, 256, 80 bins, 80-7600 Hz
    assert ours.shape == d["lmspc"].shape == (1 + len(d["wav"]) // 256, 80)
    np.testing.assert_allclose(ours.numpy(), d["lmspc"], atol=5e-5)
    spc = mel_to_linear(torch.from_numpy(d["lmspc"][:6]))
    np.testing.assert_allclose(spc.numpy(), d["spc"], rtol=1e-4, atol=1e-7)


def test_griffin_lim_recovers_a_signal_and_is_seeded():
    d = np.load(FX / "mel.npz")
    wav = torch.from_numpy(d["wav"])
    mag = stft(wav, 1024, 256).abs()

    def convergence(y):  # spectral convergence of the rebuilt signal (0 = the target magnitude)
        rebuilt = stft(y, 1024, 256).abs()[:mag.size(0)]
        return float((rebuilt - mag).norm() / mag.norm())

    few, many = griffin_lim(mag, n_iter=2, seed=1), griffin_lim(mag, n_iter=32, seed=1)
    assert len(many) == 256 * (mag.size(0) - 1)
    assert convergence(many) < 0.5 * convergence(few) and convergence(many) < 0.2
    assert torch.equal(many, griffin_lim(mag, n_iter=32, seed=1))
    assert not torch.equal(many, griffin_lim(mag, n_iter=32, seed=2))


# ------------------------------------------------------------------------------------------------
# the Taco2-AR head
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def taco2():
    rec = torch.load(FX / "taco2_ar.pt")
    cfg = {k: v for k, v in rec["config"].items() if k in ("hidden_dim", "prenet_layers", "prenet_dim",
                                                           "prenet_dropout_rate", "lstmp_layers", "lstmp_dropout_rate")}
    model = Taco2AR(Taco2ARConfig(input_dim=rec["dim"], resample_ratio=rec["ratio"], **cfg))
    model.load_state_dict(seeded_state({k: tuple(v.shape) for k, v in model.state_dict().items()}, "vc_taco2"))
    return model, rec


def test_original_sizes():
    cfg = Taco2ARConfig(input_dim=768)
    assert (cfg.hidden_dim, cfg.prenet_layers, cfg.prenet_dim, cfg.lstmp_layers, cfg.output_dim) == (1024, 2, 256, 2, 80)
    assert (cfg.prenet_dropout_rate, cfg.lstmp_dropout_rate, cfg.resample_ratio) == (0.5, 0.2, 24000 / 256 * 320 / 16000)


def test_taco2_ar_inference_equals_the_original(taco2):
    model, rec = taco2
    model.eval()
    with torch.no_grad():
        for i, n in enumerate(rec["eval_lengths"]):
            torch.manual_seed(100 + i)  # the prenet's dropout is on in evaluation: the same draws
            out, lens = model(rec["eval_feats"][i:i + 1, :n], torch.tensor([n]))
            assert int(lens[0]) == rec["eval_out_lengths"][i] == int(n * 1.875)
            torch.testing.assert_close(out[0], rec["eval_out"][i], atol=1e-5, rtol=1e-5)


def test_taco2_ar_training_step_equals_the_original(taco2):
    model, rec = taco2
    model.train()
    model.zero_grad()
    torch.manual_seed(7)
    out, lens = model(rec["train_feats"], torch.tensor([10, 10]), rec["train_targets"])
    loss = masked_l1(out, lens, rec["train_targets"], rec["train_target_lengths"], model)
    loss.backward()
    assert torch.equal(lens, rec["train_out_lengths"].long())
    torch.testing.assert_close(out.detach(), rec["train_out"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loss.detach(), rec["train_loss"], atol=1e-6, rtol=1e-6)
    params = dict(model.named_parameters())
    for name, norm in rec["grad_norms"].items():
        assert params[name].grad.norm().item() == pytest.approx(norm, rel=1e-4)
        torch.testing.assert_close(params[name].grad.flatten()[:64], rec["grad_slices"][name], atol=1e-7, rtol=1e-4)
    model.zero_grad()


def test_training_from_the_same_seed_follows_the_original(taco2):
    """Parameters are created and initialised in the original's order: the same seed gives the same model, and
    five AdamW updates the same losses."""
    seeded, rec = taco2
    torch.manual_seed(0)
    model = Taco2AR(seeded.cfg, seeded.target_mean, seeded.target_scale)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    losses = []
    for _ in range(5):
        out, lens = model(rec["train_feats"], torch.tensor([10, 10]), rec["train_targets"])
        loss = masked_l1(out, lens, rec["train_targets"], rec["train_target_lengths"], model)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    assert losses == pytest.approx(rec["updates"], rel=1e-5)
    assert losses[-1] < losses[0]


def test_padded_batch_gives_each_utterance_its_own_output():
    torch.manual_seed(0)
    model = Taco2AR(Taco2ARConfig(input_dim=6, output_dim=5, hidden_dim=16, prenet_dim=8,
                                  prenet_dropout_rate=0.0)).eval()  # no dropout draws: deterministic
    feats, lengths = torch.randn(2, 9, 6), torch.tensor([9, 5])
    feats[1, 5:] = 0
    with torch.no_grad():
        batch, blens = model(feats, lengths)
        alone, alens = model(feats[1:, :5], lengths[1:])
    assert blens.tolist() == [16, 9] and alens.tolist() == [9]
    torch.testing.assert_close(batch[1, :9], alone[0], atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------------------------------------
# Parallel WaveGAN
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pwg_a", "pwg_b"])
def test_parallel_wavegan_equals_the_package(name):
    vocoder = load_vocoder(FX / name / "checkpoint-0steps.pkl")
    io = torch.load(FX / name / "io.pt")
    wav = vocoder(io["mel"], noise=io["noise"])
    assert wav.shape == io["wav"].shape == (io["mel"].size(0) * vocoder.hop,)
    torch.testing.assert_close(wav, io["wav"], atol=1e-5, rtol=1e-5)
    assert torch.equal(vocoder(io["mel"], seed=3), load_vocoder(FX / name)(io["mel"], seed=3))  # a folder works


def copy_vocoder(tmp_path: Path, name: str = "pwg_a") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for f in ("checkpoint-0steps.pkl", "config.yml", "stats.h5"):
        (folder / f).write_bytes((FX / name / f).read_bytes())
    return folder


def test_vocoder_of_another_format_is_refused(tmp_path):
    folder = copy_vocoder(tmp_path)
    config = (folder / "config.yml").read_text()
    (folder / "config.yml").write_text("generator_type: HiFiGANGenerator\n" + config)
    with pytest.raises(ValueError, match="generator_type 'HiFiGANGenerator' is not supported"):
        load_vocoder(folder)
    (folder / "config.yml").write_text(config)
    ckpt = folder / "checkpoint-0steps.pkl"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, ckpt)  # e.g. a Lightning / other toolkit checkpoint
    with pytest.raises(ValueError, match=r"not a parallel_wavegan checkpoint \(expected a dict with model -> "):
        load_vocoder(ckpt)
    ckpt.write_bytes(pickle.dumps({"model": object()}, protocol=2))  # arbitrary objects are never unpickled
    with pytest.raises(ValueError, match="not a parallel_wavegan checkpoint readable as tensors"):
        load_vocoder(ckpt)
    other = torch.load(FX / "pwg_b" / "checkpoint-0steps.pkl")  # a generator of other sizes than config.yml
    torch.save(other, ckpt)
    with pytest.raises(ValueError, match="do not match"):
        load_vocoder(ckpt)
    (folder / "config.yml").unlink()
    with pytest.raises(FileNotFoundError, match="no config.yml next to"):
        load_vocoder(ckpt)
    folder = copy_vocoder(tmp_path, "pwg_b")
    (folder / "stats.h5").unlink()
    with pytest.raises(FileNotFoundError, match="no stats.h5 or stats.npy"):
        load_vocoder(folder)
    with pytest.raises(FileNotFoundError, match="no \\*.pkl checkpoint"):
        load_vocoder(tmp_path)


# ------------------------------------------------------------------------------------------------
# MCD
# ------------------------------------------------------------------------------------------------


def test_mel_cepstrum_and_power_equal_pysptk_and_the_original():
    from s3prl.metrics import mcd

    d = np.load(FX / "sp2mc.npz")
    np.testing.assert_allclose(mcd.sp2mc(d["sp"]), d["mcep"], atol=1e-9)
    np.testing.assert_allclose(mcd.normalized_power(d["sp"]), d["npow"], atol=1e-9)


def test_mcd_equals_the_original():
    from s3prl.metrics import mcd

    rec = json.loads((FX / "mcd.json").read_text())
    sig = np.load(FX / "mcd_signals.npz")
    for pair in rec["pairs"].values():
        ours = mcd.mcd(sig[pair["converted"]], sig[pair["reference"]], rec["rate"], rec["f0min"], rec["f0max"])
        assert ours == pytest.approx(pair["mcd"], abs=1e-5)
    assert mcd.mcd(sig["ref_a"], sig["ref_a"], 24000, 127, 405) == 0.0
    with pytest.raises(ValueError, match="the converted signal must be mono"):
        mcd.mcd(np.zeros((24000, 2)), sig["ref_a"], 24000, 127, 405)
    assert mcd.f0_range("TEM2") == (57.0, 182.0)
    with pytest.raises(ValueError, match="no F0 range for speaker 'LJ'"):
        mcd.f0_range("LJ")


@pytest.mark.skipif(not DATA or not os.path.isdir(os.path.join(DATA or "", "ljspeech_mini")),
                    reason="needs S3PRL_TEST_DATA with ljspeech_mini")
def test_mcd_of_real_recordings_equals_the_original():
    from s3prl.metrics import mcd

    rec = json.loads((FX / "mcd.json").read_text())["ljspeech"]
    conv, rate = sf.read(os.path.join(DATA, "ljspeech_mini", rec["converted"]), dtype="float32")
    ref, _ = sf.read(os.path.join(DATA, "ljspeech_mini", rec["reference"]), dtype="float32")
    assert mcd.mcd(conv, ref, rate, 127, 405) == pytest.approx(rec["mcd"], abs=1e-5)


def test_score_mcd_command(tmp_path, capsys):
    from s3prl.cli import main
    from s3prl.metrics import mcd

    sig = np.load(FX / "mcd_signals.npz")
    (tmp_path / "ref").mkdir()
    (tmp_path / "conv").mkdir()
    sf.write(tmp_path / "ref" / "E30001.wav", sig["ref_a"], 24000, subtype="PCM_16")
    sf.write(tmp_path / "ref" / "E30002.wav", sig["ref_b"], 24000, subtype="PCM_16")
    sf.write(tmp_path / "conv" / "SEF1_E30001_gen.wav", sig["cvt_a"], 24000, subtype="PCM_16")  # by number
    sf.write(tmp_path / "conv" / "E30002.wav", sig["cvt_b"], 24000, subtype="PCM_16")  # by name
    capsys.readouterr()
    assert main(["score", "mcd", str(tmp_path / "ref"), str(tmp_path / "conv"), "--speaker", "TEF1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["files"] == 2 and result["per_file"]["SEF1_E30001_gen.wav"]["reference"] == "E30001.wav"
    # the signals are exactly 16-bit values: the files hold the same samples as the fixture
    assert result["per_file"]["E30002.wav"]["mcd"] == pytest.approx(mcd.mcd(sig["cvt_b"], sig["ref_b"], 24000, 127,
                                                                              405), abs=1e-9)
    sf.write(tmp_path / "conv" / "SEM1_E39999.wav", sig["cvt_a"], 24000, subtype="PCM_16")
    assert main(["score", "mcd", str(tmp_path / "ref"), str(tmp_path / "conv"), "--f0min", "80", "--f0max", "400"]) == 1
    assert "1 converted file(s) have no reference: SEM1_E39999.wav" in capsys.readouterr().err
    (tmp_path / "conv" / "SEM1_E39999.wav").unlink()
    assert main(["score", "mcd", str(tmp_path / "ref"), str(tmp_path / "conv")]) == 1
    assert "give f0min and f0max" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# the task through the runner
# ------------------------------------------------------------------------------------------------


def tone(rate: int, seconds: float, f0: float, seed: int) -> np.ndarray:
    rng = np.random.RandomState(seed)
    t = np.arange(int(rate * seconds)) / rate
    x = sum(np.sin(2 * np.pi * f0 * k * t * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / k for k in range(1, 8))
    x = 0.3 * x / np.abs(x).max() + 0.01 * rng.randn(len(t))
    return x.astype(np.float32)


@pytest.fixture()
def vcc(tmp_path) -> Path:
    """A VCC2020-shaped folder of synthetic harmonic signals: target TEF1 (24 kHz), source SEF1 (16 kHz)."""
    root = tmp_path / "vcc2020"
    for spk in ("TEF1", "SEF1", "lists"):
        (root / spk).mkdir(parents=True)
    for i, n in enumerate(["E10001", "E10002", "E10003", "E20001", "E30001"]):
        sf.write(root / "TEF1" / f"{n}.wav", tone(24000, 0.4 + 0.1 * i, 180 + 10 * i, i), 24000, subtype="PCM_16")
    sf.write(root / "SEF1" / "E30001.wav", tone(16000, 0.45, 120, 9), 16000, subtype="PCM_16")
    (root / "lists" / "E_train_list.txt").write_text("E10001\nE10002\nE10003\nE10009\n")  # E10009: not recorded
    (root / "lists" / "E_dev_list.txt").write_text("E20001\n")
    (root / "lists" / "eval_list.txt").write_text("E30001\n")
    return root


def test_corpus_and_statistics(vcc):
    from sklearn.preprocessing import StandardScaler

    from s3prl.downstream import tasks

    task = tasks.get("a2o-vc-vcc2020")
    options = task.bind({"root": str(vcc), "srcspks": ["SEF1"]}, 320)
    splits = task.load(options)
    assert [ex.uid for ex in splits["train"]] == ["TEF1_E10001", "TEF1_E10002", "TEF1_E10003"]
    test = splits["test"][0]
    assert test.uid == "SEF1_E30001" and test.label.target is None and test.label.reference.endswith("TEF1/E30001.wav")
    n_mels, ratio, _, mean, std = task.count_classes(splits["train"])
    assert (n_mels, ratio) == (80, 1.875)
    scaler = StandardScaler()  # the original's statistics
    for ex in splits["train"]:
        wav, rate = sf.read(ex.path, dtype="float32")
        scaler.partial_fit(log_mel(torch.from_numpy(wav)).numpy())
    np.testing.assert_allclose(mean, scaler.mean_, atol=1e-4)
    np.testing.assert_allclose(std, scaler.scale_, rtol=1e-4)
    from dataclasses import replace

    from s3prl.downstream.tasks import voice_conversion as vc

    dev = [replace(ex, label=replace(ex.label, reference=None)) for ex in splits["dev"]]  # no MCD: quick
    truth = {ex.uid: vc.target_mel(ex.label.target, vc.fbank_key(ex.label.setup)) for ex in dev}
    assert vc.vc_score(truth, dev)["mel_l1"] == 0.0
    scored = vc.vc_score({k: v + 0.25 for k, v in truth.items()}, dev)
    assert scored["mel_l1"] == pytest.approx(0.25) and scored["mcd_utterances"] == 0 and np.isnan(scored["mcd"])
    (vcc / "lists" / "eval_list.txt").write_text("E30001\nE30002\n")
    with pytest.raises(FileNotFoundError, match="E30002.wav \\(in eval_list.txt\\) not found"):
        task.load(options)
    with pytest.raises(FileNotFoundError, match="VCC2020 target speaker TEM1"):
        task.load({**options, "trgspk": "TEM1"})


def test_train_writes_audio_and_scores_it(vcc, tmp_path, capsys):
    from s3prl.cli import main

    exp = tmp_path / "exp"
    opts = (f"task.root={vcc},,task.srcspks=[SEF1],,task.hidden_dim=16,,task.prenet_dim=8,,task.gl_iters=4,,"
            f"train.total_steps=2,,train.eval_step=2,,train.save_step=2,,train.log_step=1,,data.num_workers=0,,"
            f"data.cache_dir={tmp_path / 'cache'}")
    assert main(["downstream", "train", "-u", "fbank", "-d", "a2o-vc-vcc2020", "-p", str(exp), "-o", opts]) == 0
    result = json.loads((exp / "results.json").read_text())
    assert result["metric"] == "mcd" and result["metrics"]["mcd_utterances"] == 1
    assert np.isfinite(result["metrics"]["mcd"]) and result["metrics"]["mcd"] > 0
    wav, rate = sf.read(exp / "test_wav" / "SEF1_E30001.wav")
    mel = np.load(exp / "test_mel" / "SEF1_E30001.npy")
    # 0.45 s at 16 kHz -> 45 fbank frames -> floor(45 * 0.9375) mel frames -> hop 256 samples each (Griffin-Lim)
    assert rate == 24000 and mel.shape == (42, 80) and len(wav) == 256 * (42 - 1)
    capsys.readouterr()
    assert main(["score", "mcd", str(vcc / "TEF1"), str(exp / "test_wav"), "--speaker", "TEF1", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)["mean"]
    assert scored == pytest.approx(result["metrics"]["mcd"], abs=1e-9)  # the run scores the file it writes
    # evaluating the saved run again gives the same test audio (seeded vocoder, seeded prenet draws)
    assert main(["downstream", "evaluate", "-e", str(exp / "dev-best.ckpt"), "-t", "test"]) == 0
    assert json.loads((exp / "results_test.json").read_text())["metrics"]["mcd_utterances"] == 1
    # a vocoder in another format: the run refuses it with the reason
    bad = copy_vocoder(tmp_path)
    (bad / "config.yml").write_text("generator_type: MelGANGenerator\n" + (bad / "config.yml").read_text())
    assert main(["downstream", "evaluate", "-e", str(exp / "dev-best.ckpt"), "-t", "test", "-o",
                 f"task.vocoder={bad}"]) == 1
    assert "generator_type 'MelGANGenerator' is not supported" in capsys.readouterr().err
    # a vocoder for other features than the task's is refused too (the fixture's hop is 16, not 256)
    assert main(["downstream", "evaluate", "-e", str(exp / "dev-best.ckpt"), "-t", "test", "-o",
                 f"task.vocoder={FX / 'pwg_a'}"]) == 1
    assert "hop 16" in capsys.readouterr().err
    assert main(["downstream", "train", "-u", "fbank", "-d", "a2o-vc-vcc2020", "-p", str(tmp_path / "crop"), "-o",
                 opts + ",,data.crop_seconds=0.2"]) == 1
    assert "leave data.crop_seconds unset" in capsys.readouterr().err


def test_missing_vc_extra_is_named(vcc, monkeypatch):
    from s3prl.downstream import tasks

    monkeypatch.setitem(sys.modules, "pyworld", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 's3prl\[vc\]'"):
        tasks.get("a2o-vc-vcc2020").bind({"root": str(vcc)}, 320)
