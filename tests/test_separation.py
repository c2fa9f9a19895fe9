"""SE / SS tasks: parity with the original ``enhancement_stft`` / ``separation_stft`` experts (oracle fixture:
loss, masks and test-mode metrics for the same weights, features and audio), the corpus readers' errors,
the STFT front and the ``enhance`` / ``separate`` commands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from s3prl.downstream import tasks
from s3prl.downstream.corpora import librimix, voicebank
from s3prl.downstream.tasks import separation as sep

pytestmark = pytest.mark.usefixtures("one_thread")
FIXTURE = Path(__file__).parent / "fixtures" / "separation_oracle.pt"
FIXTURE_V2 = Path(__file__).parent / "fixtures" / "separation_v2_oracle.pt"
SMALL = {"hop_length": 160, "rnn_layers": 2, "hidden_size": 8, "dropout": 0.0}
# the fixture's v2 settings: SE v2 with a 320-sample upstream; SS v2 with n_fft 512 (its default is 1024)
V2 = {"enhancement_stft2": ({}, 320), "separation_stft2": ({"n_fft": 512, "win_length": 512}, 160)}
TASKS = ["enhancement_stft", "separation_stft", "enhancement_stft2", "separation_stft2"]


def write_lists(root: Path, fx: dict) -> None:
    """The fixture's signals as the original's Kaldi-style folders, the same for train, dev and test."""
    for split in ("train", "dev", "test"):
        for cond in ("s1", "s2", "mix_clean", "clean", "noisy"):
            (root / split / cond).mkdir(parents=True)
            lines = []
            for i, sig in enumerate(fx["signals"]):
                s1, s2, noise = (sig[k].numpy().astype(np.int32) for k in ("s1", "s2", "noise"))
                x = {"s1": s1, "clean": s1, "s2": s2, "mix_clean": s1 + s2, "noisy": s1 + noise}[cond]
                path = root / split / cond / f"utt{i}.wav"
                sf.write(path, np.clip(x, -32768, 32767).astype(np.int16), 16000, subtype="PCM_16")
                lines.append(f"utt{i} {cond}/utt{i}.wav\n")
            (root / split / cond / "wav.scp").write_text("".join(lines))


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    data = torch.load(FIXTURE, weights_only=True)
    v2 = torch.load(FIXTURE_V2, weights_only=True)
    data.update({k: v for k, v in v2.items() if k != "features"}, features_v2=v2["features"])
    root = tmp_path_factory.mktemp("lists")
    write_lists(root, data)
    data["root"] = root
    return data


def features(name: str, fx: dict) -> list[torch.Tensor]:
    return fx["features_v2"][name] if name in V2 else fx["features"]


def build(name: str, fx: dict):
    task = tasks.get(name)
    extra, rate = V2.get(name, ({}, 160))
    options = task.bind({**task.options, "root": str(fx["root"]), **SMALL, **extra}, rate)
    splits = task.load(options)
    ds = task.build(6, task.count_classes(splits["train"]))
    task.configure(ds, options)
    ds.head.load_state_dict(fx[name]["state_dict"])
    return task, ds.eval(), splits


@pytest.mark.parametrize("name", TASKS)
def test_loss_and_masks_equal_the_original(fx, name):
    task, ds, splits = build(name, fx)
    want = fx[name]
    examples = splits["train"]
    assert [ex.uid for ex in examples] == sorted(want["order"])
    raw = features(name, fx)
    feats, lengths = torch.nn.utils.rnn.pad_sequence(raw, batch_first=True), torch.tensor([len(f) for f in raw])
    with torch.no_grad():
        loss = sep.sep_loss(ds, feats, lengths, [ex.label for ex in examples])
        assert float(loss) == pytest.approx(want["loss"], rel=1e-5)
        # the head on the features brought to the STFT frames (utt0 is the longer: the original's sorted order too)
        up, up_len = sep.upsample(feats, lengths, ds.setup)
        frames = want["feat_length"]
        fitted = torch.nn.utils.rnn.pad_sequence([sep.fit_frames(up[b, :n], int(frames[b]))
                                                  for b, n in enumerate(up_len.tolist())], batch_first=True)
        masks = ds.head(fitted, frames)
    for k, m in enumerate(masks):
        torch.testing.assert_close(m[:, :5], want["masks_head"][k], atol=1e-5, rtol=1e-5)
        last = torch.stack([m[b, int(n) - 1] for b, n in enumerate(want["feat_length"])])
        torch.testing.assert_close(last, want["masks_last"][k], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", TASKS)
def test_test_metrics_equal_the_original(fx, name):
    """SI-SDRi, STOI and PESQ of the reconstructed estimates, per utterance, as the original test mode."""
    pytest.importorskip("pesq")
    task, ds, splits = build(name, fx)
    for i, ex in enumerate(splits["test"]):
        x = features(name, fx)[i][None]
        with torch.no_grad():
            pred = task.objective.predict(ds, x, torch.tensor([x.size(1)]))
        got = task.objective.score({ex.uid: pred[0]}, [ex])
        want = fx[name]["test_records"][i]
        assert got["si_sdri"] == pytest.approx(want["si_sdr"], abs=1e-3)
        for metric in ("stoi", "pesq"):
            assert (metric in got) == (metric in want)
            if metric in want:
                assert got[metric] == pytest.approx(want[metric], abs=1e-3)


def test_stft_round_trip_and_impulse():
    wav = torch.randn(5000)
    setup = {"n_fft": 512, "win_length": 512, "hop_length": 160, "center": True}
    assert sep.istft(sep.stft(wav, setup), setup, None).shape == (160 * (5000 // 160),)
    spec = sep.stft(wav, setup)
    assert spec.shape == (1 + 5000 // 160, 257)
    torch.testing.assert_close(sep.istft(spec, setup, 5000), wav, atol=1e-5, rtol=1e-5)
    x = np.concatenate([0.1 * np.sin(np.arange(6000) / 5), [0.9, -0.8, 0.5]])
    y = sep.suppress_end_impulse(x)
    assert np.all(y[6000:] == 0) and np.array_equal(y[:6000], x[:6000])
    assert np.array_equal(sep.suppress_end_impulse(x[:6000]), x[:6000])


def test_bad_corpora(tmp_path, fx):
    # a source shorter than its mixture, and one at another rate
    root = tmp_path / "c"
    write_lists(root, fx)
    sf.write(root / "test" / "s2" / "utt1.wav", np.zeros(100, np.int16), 16000, subtype="PCM_16")
    with pytest.raises(ValueError, match="same sample rate and length"):
        librimix.load(str(root))
    sf.write(root / "test" / "s2" / "utt1.wav", np.zeros(7050, np.int16), 8000, subtype="PCM_16")
    with pytest.raises(ValueError, match="8000 Hz"):
        librimix.load(str(root))
    (root / "dev" / "s1" / "wav.scp").unlink()
    with pytest.raises(librimix.CorpusLayoutError, match="wav.scp"):
        librimix.load(str(root))
    (tmp_path / "empty").mkdir()
    with pytest.raises(librimix.CorpusLayoutError, match="none of the expected layouts"):
        voicebank.load(str(tmp_path / "empty"))
    pairs = tmp_path / "pairs"
    for d in ("noisy", "clean"):
        (pairs / d).mkdir(parents=True)
        for i in range(3):
            sf.write(pairs / d / f"p_{i}.wav", np.ones(1600, np.int16), 16000, subtype="PCM_16")
    got = voicebank.load(str(pairs))
    assert [len(got[s]) for s in ("train", "dev", "test")] == [1, 1, 1]
    # the 16 kHz release folders: dev = speakers p226 and p287 of the training set
    release = tmp_path / "release"
    for kind, names in (("trainset_28spk", ("p226_001", "p230_001", "p287_002")), ("testset", ("p232_001",))):
        for side in ("clean", "noisy"):
            (release / f"{side}_{kind}_wav_16k").mkdir(parents=True)
            for name in names:
                sf.write(release / f"{side}_{kind}_wav_16k" / f"{name}.wav", np.ones(1600, np.int16), 16000)
    got = voicebank.load(str(release))
    assert {s: [ex.uid for ex in got[s]] for s in got} == {"train": ["p230_001"], "dev": ["p226_001", "p287_002"],
                                                           "test": ["p232_001"]}
    assert got["dev"][0].label.sources[0].endswith("clean_trainset_28spk_wav_16k/p226_001.wav")
    # other split folder names
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    for split in ("train", "dev", "test"):
        (renamed / ("train-100" if split == "train" else split)).symlink_to(fx["root"] / split)
    assert len(librimix.load(str(renamed), split_dirs={"train": "train-100"})["train"]) == 2
    (pairs / "clean" / "p_2.wav").unlink()
    with pytest.raises(librimix.CorpusLayoutError, match="no partner"):
        voicebank.load(str(pairs))


def test_wrong_hop_and_crop(fx):
    task = tasks.get("enhancement_stft")
    with pytest.raises(ValueError, match="does not divide"):
        task.bind({**task.options, "hop_length": 320}, 160)
    with pytest.raises(ValueError, match="picks its checkpoint by pesq"):
        task.bind({**task.options, "metrics": ["si_sdr"]}, 160)
    _, ds, splits = build("enhancement_stft", fx)
    half = [f[: len(f) // 2] for f in fx["features"]]
    feats = torch.nn.utils.rnn.pad_sequence(half, batch_first=True)
    with pytest.raises(ValueError, match="crop_seconds"):
        sep.sep_loss(ds, feats, torch.tensor([len(f) for f in half]), [ex.label for ex in splits["train"]])


def test_train_enhance_and_score(fx, tmp_path, capsys):
    """A few steps of SS through the runner, the test audio written, `separate` on a file gives the same audio."""
    from s3prl.cli import main

    exp = tmp_path / "exp"
    opts = (f"task.root={fx['root']},,data.cache_dir={tmp_path / 'cache'},,data.num_workers=0,,task.hidden_size=8,,"
            "task.rnn_layers=1,,task.dropout=0.0,,train.total_steps=4,,train.eval_step=2,,train.save_step=2,,"
            "train.log_step=2,,train.lr=0.01,,task.metrics=[si_sdr]")
    assert main(["downstream", "train", "-u", "fbank", "-d", "separation_stft", "-p", str(exp), "-o", opts]) == 0
    import json

    result = json.loads((exp / "results.json").read_text())
    assert result["metric"] == "si_sdri" and {"si_sdr", "input_si_sdr"} <= set(result["metrics"])
    written = sorted(p.name for p in (exp / "test_audio").iterdir())
    assert written == ["utt0_s1.wav", "utt0_s2.wav", "utt1_s1.wav", "utt1_s2.wav"]
    mix = fx["root"] / "test" / "mix_clean" / "utt0.wav"
    capsys.readouterr()
    assert main(["downstream", "separate", "-e", str(exp), str(mix), "-o", str(tmp_path / "out")]) == 0
    assert "utt0_s1.wav" in capsys.readouterr().out
    a, rate = sf.read(tmp_path / "out" / "utt0_s1.wav")
    b, _ = sf.read(exp / "test_audio" / "utt0_s1.wav")
    assert rate == 16000 and len(a) == sf.info(mix).frames
    np.testing.assert_allclose(a, b, atol=2 / 32768)  # the same run, the same file: the same estimate
    assert main(["downstream", "separate", "-e", str(exp), str(mix)]) == 0  # default folder: EXPDIR/separated
    assert (exp / "separated" / "utt0_s2.wav").is_file()
    assert main(["downstream", "enhance", "-e", str(exp)]) == 1
    assert "-e and audio files are needed" in capsys.readouterr().err
    assert main(["downstream", "enhance", "-e", str(tmp_path), str(mix)]) == 1  # not a run


def test_cpu_path_equals_packed_sequences():
    """On the CPU the head runs utterances one by one (the packed backward pass is ~20x slower there); outputs and
    gradients equal the packed computation (the original's, and the CUDA path's)."""
    torch.manual_seed(0)
    head = sep.SepRNN(6, 33, 2, "LSTM", 2, 8, 0.0)
    x, lengths = torch.randn(3, 20, 6, requires_grad=True), torch.tensor([20, 7, 13])
    ours = head(x, lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    h, _ = torch.nn.utils.rnn.pad_packed_sequence(head.rnn(packed)[0], batch_first=True)
    ref = [torch.relu(layer(h)) for layer in head.linear]
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    g1 = torch.autograd.grad(sum(o.square().sum() for o in ours), x)[0]
    g2 = torch.autograd.grad(sum(o.square().sum() for o in ref), x)[0]
    torch.testing.assert_close(g1, g2, atol=1e-6, rtol=1e-5)


VOICEBANK = Path(__import__("os").environ.get("S3PRL_TEST_DATA", "/nonexistent")) / "voicebank_demand_mini"


@pytest.mark.skipif(not VOICEBANK.is_dir(), reason="needs S3PRL_TEST_DATA with voicebank_demand_mini")
def test_ideal_mask_through_the_output_path_on_voicebank():
    """The task's output path (mask x STFT, inverse STFT, click suppression) on real pairs with the ideal NPSM mask
    (the loss's target over the mixture magnitude): far above the noisy input, so a head that learns the target
    improves the audio."""
    pytest.importorskip("pesq")
    from s3prl.downstream.data import read_segment
    from s3prl.metrics import enhancement, separation

    setup = {"n_fft": 512, "win_length": 512, "hop_length": 160, "center": True, "log": "none",
             "istft_length": True, "postprocess": True}
    for name in ("p287_001", "p287_004"):
        noisy, clean = (read_segment(str(VOICEBANK / side / f"{name}.wav"), 0.0, None) for side in ("noisy", "clean"))
        mix, src = sep.stft(noisy, setup), sep.stft(clean, setup)
        ideal = src.abs() * torch.relu(torch.cos(mix.angle() - src.angle())) / (mix.abs() + 1e-8)
        est = sep.estimates(ideal[None], noisy, setup)[0]
        ref = clean.numpy()
        assert enhancement.pesq(ref, est) > enhancement.pesq(ref, noisy.numpy()) + 1.0
        assert separation.si_sdr(ref, est) > separation.si_sdr(ref, noisy.numpy()) + 8.0


def test_silent_reference_names_the_recording(fx, tmp_path):
    task, ds, _ = build("separation_stft", fx)
    root = tmp_path / "silent"
    write_lists(root, fx)
    sf.write(root / "test" / "s2" / "utt1.wav", np.zeros(7050, np.int16), 16000, subtype="PCM_16")
    options = task.bind({**task.options, "root": str(root), **SMALL, "metrics": ["si_sdr"]}, 160)
    ex = task.load(options)["test"][1]
    x = fx["features"][1][None]
    with torch.no_grad():
        pred = task.objective.predict(ds, x, torch.tensor([x.size(1)]))
    with pytest.raises(ValueError, match=r"recording utt1 .*s2/utt1.wav.*reference is silent"):
        task.objective.score({ex.uid: pred[0]}, [ex])
