"""Write tests/fixtures/vc/* with the ORIGINAL s3prl 0.4.18 ``a2o-vc-vcc2020`` code and the ORIGINAL
``parallel_wavegan`` package (run in the oracle venv).

    S3PRL_VC_ORACLE_SITE=/tmp/vc_site ~/.cache/s3prl-oracle/venv/bin/python tests/oracle/make_vc_fixtures.py

The oracle venv lacks what the original's VC evaluation imports; install it aside (the venv stays untouched):

    pip install --target /tmp/vc_site --no-deps pyworld==0.3.5 pysptk==1.0.1 fastdtw==0.3.4 h5py "setuptools<80"
    pip install --target /tmp/vc_site --no-deps --no-build-isolation parallel-wavegan==0.6.1

(``setuptools<80`` only provides ``pkg_resources``, which pyworld 0.3.5 and pysptk import at start-up.)
Stand-ins, none of which touches a number: ``editdistance`` / ``jiwer`` / ``transformers`` / ``resemblyzer`` (imported by
``vc_evaluate.py`` for its ASR and ASV metrics, unused here) are empty modules while it is imported; ``scipy.signal.kaiser`` (removed from
scipy, imported by parallel_wavegan's PQMF layer, unused by its Parallel WaveGAN generator) points to
``scipy.signal.windows.kaiser``.

What it records:
  * ``mel.npz``: ``utils.logmelspectrogram`` of a 24 kHz signal with the task's fbank_config (80 bins, n_fft
    1024, hop 256, Hann, fmin 80, fmax 7600) and ``logmelspc_to_linearspc`` of its first frames;
  * ``taco2_ar.pt``: ``model.Model`` (Taco2-AR, config_taco2_ar.yaml with a narrower LSTM) with seeded weights
    (``vc_seeded.py``): eval-mode outputs of two utterances at batch size 1 (the prenet's dropout is on in
    eval too: seeded), and a teacher-forced training step (batch of 2, seeded dropout) with ``expert.Loss``,
    its loss and gradients; five AdamW updates from the original's own initialisation (seed 0) and their losses;
  * ``mcd.json`` (+ ``mcd_signals.npz``): ``vc_evaluate.calculate_mcd_f0``'s MCD for fixed signal pairs, and
    ``pysptk.sp2mc`` and ``spc2npow`` of a WORLD envelope; MCD of two LJSpeech clips when ``S3PRL_TEST_DATA`` is set;
  * ``pwg_a/``, ``pwg_b/``: random ``ParallelWaveGANGenerator``s saved in the package's checkpoint format
    (``checkpoint-0steps.pkl`` with ``model.generator``, ``config.yml``, ``stats.h5``), and the waveform
    ``load_model`` -> ``remove_weight_norm`` -> ``inference(c, x=noise, normalize_before=True)`` gives.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "fixtures" / "vc"
SITE = os.environ.get("S3PRL_VC_ORACLE_SITE", "/tmp/vc_site")
sys.path.append(SITE)
sys.path.insert(0, str(Path(os.environ.get("S3PRL_ORACLE_TOOLS", "/work/shared/tools/s3prl-oracle"))))
sys.path.insert(0, str(HERE))
import oracle_env  # noqa: E402,F401  (offline defaults, threads, seeds)

for name in ("editdistance", "jiwer"):  # ASR metric libraries (unused here)
    sys.modules.setdefault(name, types.ModuleType(name))
sys.modules.setdefault("resemblyzer", types.SimpleNamespace(preprocess_wav=None, VoiceEncoder=None))  # ASV metric
import scipy.signal  # noqa: E402
import scipy.signal.windows  # noqa: E402

if not hasattr(scipy.signal, "kaiser"):
    scipy.signal.kaiser = scipy.signal.windows.kaiser

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from seeded_ckpt import unit_noise  # noqa: E402
from vc_seeded import seeded_state  # noqa: E402

PKG = "s3prl.downstream.a2o-vc-vcc2020"
vc_model = importlib.import_module(PKG + ".model")
vc_utils = importlib.import_module(PKG + ".utils")
vc_expert = importlib.import_module(PKG + ".expert")
_real = sys.modules.pop("transformers", None)  # vc_evaluate's ASR imports names newer releases dropped
sys.modules["transformers"] = types.SimpleNamespace(Wav2Vec2ForCTC=None, Wav2Vec2Tokenizer=None,
                                                    Wav2Vec2Processor=None)
vc_eval = importlib.import_module(PKG + ".vc_evaluate")
sys.modules.pop("transformers")
if _real is not None:
    sys.modules["transformers"] = _real

FBANK = dict(fs=24000, n_mels=80, n_fft=1024, n_shift=256, win_length=None, window="hann", fmin=80, fmax=7600)
# config_taco2_ar.yaml's modelrc with hidden_dim 64 / prenet_dim 32 instead of 1024 / 256, so that seeding the
# weights stays quick in the default test run (the encoder's 512-channel convolutions are fixed by the original)
TACO2 = dict(ar=True, encoder_type="taco2", hidden_dim=64, prenet_layers=2, prenet_dim=32, prenet_dropout_rate=0.5,
             lstmp_layers=2, lstmp_dropout_rate=0.2, lstmp_proj_dim=256, lstmp_layernorm=False)
DIM, RATIO = 32, 24000 / 256 * 320 / 16000  # upstream feature size; the original's resample ratio (1.875)


def noise(shape, stream: str, scale: float = 1.0) -> torch.Tensor:
    n = int(np.prod(shape))
    return torch.from_numpy((scale * unit_noise(n, stream)).astype(np.float32)).reshape(shape)


def voiced(rate: int, seconds: float, f0: tuple[float, float], formants: tuple, seed: int,
           silence: float = 0.15) -> np.ndarray:
    """A speech-like test signal: a gliding pulse train through resonators, with noise and silent edges."""
    rng = np.random.RandomState(seed)
    n = int(rate * seconds)
    f = np.linspace(f0[0], f0[1], n) * (1 + 0.03 * np.sin(2 * np.pi * 5 * np.arange(n) / rate))
    phase = np.cumsum(f / rate)
    x = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
    for fc, bw in formants:
        r = np.exp(-np.pi * bw / rate)
        x = scipy.signal.lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / rate), r * r], x)
    x = x / np.max(np.abs(x)) * 0.5 + 0.003 * rng.randn(n)
    edge = int(silence * rate)
    x[:edge] *= 0.01
    x[-edge:] *= 0.01
    return (np.round(x * 32767) / 32768).astype(np.float32)  # exactly representable as 16-bit PCM


def mel_fixture() -> None:
    x = voiced(24000, 0.7, (110, 190), ((700, 90), (1200, 110), (2600, 160)), seed=1)
    lmspc = vc_utils.logmelspectrogram(x=x, **{k: v for k, v in FBANK.items() if k != "fs"}, fs=24000)
    spc = vc_utils.logmelspc_to_linearspc(lmspc[:6], fs=24000, n_mels=80, n_fft=1024, fmin=80, fmax=7600)
    np.savez_compressed(OUT / "mel.npz", wav=x, lmspc=lmspc.astype(np.float32), spc=spc.astype(np.float32))
    print("mel", lmspc.shape)


class Stats:
    def __init__(self, mean, scale):
        self.mean_, self.scale_ = mean, scale


def taco2_fixture() -> None:
    shapes_model = vc_model.Model(input_dim=DIM, output_dim=80, resample_ratio=RATIO,
                                  stats=Stats(np.zeros(80, np.float32), np.ones(80, np.float32)), **TACO2)
    state = seeded_state({k: tuple(v.shape) for k, v in shapes_model.state_dict().items()}, "vc_taco2")
    mean, scale = state["target_mean"].numpy(), state["target_scale"].numpy()
    model = vc_model.Model(input_dim=DIM, output_dim=80, resample_ratio=RATIO, stats=Stats(mean, scale), **TACO2)
    model.load_state_dict(state)
    loss_fn = vc_expert.Loss(Stats(mean, scale))
    rec = {"dim": DIM, "ratio": RATIO, "config": TACO2}

    # eval: one utterance at a time (the prenet's dropout stays on: seeded)
    model.eval()
    feats = noise((2, 12, DIM), "vc_taco2/feats")
    rec["eval_feats"], rec["eval_lengths"], rec["eval_out"], rec["eval_out_lengths"] = feats, [12, 9], [], []
    with torch.no_grad():
        for i, n in enumerate(rec["eval_lengths"]):
            torch.manual_seed(100 + i)
            out, lens = model(feats[i:i + 1, :n], torch.IntTensor([n]))
            rec["eval_out"].append(out[0])
            rec["eval_out_lengths"].append(int(lens[0]))

    # train: teacher forcing, a batch of 2 of equal input lengths (the original sorts by length), seeded dropout
    model.train()
    feats = noise((2, 10, DIM), "vc_taco2/train_feats")
    target_lengths = torch.tensor([20, 19])
    targets = noise((2, 20, 80), "vc_taco2/targets") * torch.from_numpy(scale) + torch.from_numpy(mean)
    targets[1, 19:] = 0.0
    torch.manual_seed(7)
    out, lens = model(feats, torch.IntTensor([10, 10]), targets)
    loss = loss_fn(out, targets, lens, target_lengths, torch.device("cpu"))
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters()}
    picked = ["encoder.input_layer.weight", "encoder.convs.0.0.weight", "encoder.convs.2.1.weight",
              "encoder.blstm.weight_hh_l0_reverse", "prenet.prenet.0.0.weight", "lstmps.0.cell.weight_ih",
              "lstmps.1.pj.weight", "proj.weight", "proj.bias"]
    rec.update(train_feats=feats, train_targets=targets, train_target_lengths=target_lengths, train_out=out.detach(),
               train_out_lengths=lens.clone(), train_loss=loss.detach(),
               grad_norms={k: grads[k].norm().item() for k in picked},
               grad_slices={k: grads[k].flatten()[:64].clone() for k in picked})
    # five AdamW updates from the original's own initialisation (seed 0), teacher-forced, clipped at 1
    torch.manual_seed(0)
    model = vc_model.Model(input_dim=DIM, output_dim=80, resample_ratio=RATIO, stats=Stats(mean, scale), **TACO2)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    rec["updates"] = []
    for _ in range(5):
        out, lens = model(feats, torch.IntTensor([10, 10]), targets)
        loss = loss_fn(out, targets, lens, target_lengths, torch.device("cpu"))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        rec["updates"].append(loss.item())
    torch.save(rec, OUT / "taco2_ar.pt")
    print("taco2", [o.shape for o in rec["eval_out"]], out.shape, loss.item())


def mcd_fixture() -> None:
    sig = {
        "ref_a": voiced(24000, 0.8, (150, 260), ((800, 80), (1300, 100), (2800, 150)), seed=2),
        "cvt_a": voiced(24000, 0.75, (160, 240), ((750, 90), (1400, 120), (2700, 170)), seed=3),
        "ref_b": voiced(24000, 0.6, (140, 200), ((600, 70), (1000, 90), (2400, 140)), seed=4),
        "cvt_b": voiced(24000, 0.7, (180, 300), ((900, 100), (1800, 120), (3000, 200)), seed=5),
    }
    np.savez_compressed(OUT / "mcd_signals.npz", **sig)
    rec = {"f0min": 127, "f0max": 405, "rate": 24000, "pairs": {}}
    for pair in ("a", "b"):
        mcd, f0rmse, f0corr, ddur = vc_eval.calculate_mcd_f0(sig[f"cvt_{pair}"], sig[f"ref_{pair}"], 24000, 127, 405)
        rec["pairs"][pair] = {"converted": f"cvt_{pair}", "reference": f"ref_{pair}", "mcd": float(mcd)}
    # the swapped order: the original's DTW is not symmetric
    mcd, *_ = vc_eval.calculate_mcd_f0(sig["ref_a"], sig["cvt_a"], 24000, 127, 405)
    rec["pairs"]["a_swapped"] = {"converted": "ref_a", "reference": "cvt_a", "mcd": float(mcd)}
    feats = vc_eval.world_extract(sig["ref_a"], 24000, 127, 405)
    rows = np.arange(40, 50)
    rec["sp2mc"] = {"rows": rows.tolist()}
    import pysptk

    sp = feats["sp"][rows]  # pysptk.sp2mc of a 2-D envelope halves its whole first frame: pass the slice itself
    np.savez_compressed(OUT / "sp2mc.npz", sp=sp, mcep=pysptk.sp2mc(sp, vc_eval.MCEP_DIM, vc_eval.MCEP_ALPHA),
                        npow=vc_eval.spc2npow(sp), full_npow=feats["npow"])
    data = os.environ.get("S3PRL_TEST_DATA")
    if data and os.path.isdir(os.path.join(data, "ljspeech_mini")):
        import librosa

        a, fs = librosa.load(os.path.join(data, "ljspeech_mini", "LJ001-0001.wav"), sr=None)
        b, _ = librosa.load(os.path.join(data, "ljspeech_mini", "LJ001-0002.wav"), sr=None)
        mcd, *_ = vc_eval.calculate_mcd_f0(b, a, fs, 127, 405)
        rec["ljspeech"] = {"converted": "LJ001-0002.wav", "reference": "LJ001-0001.wav", "rate": fs, "mcd": float(mcd)}
    (OUT / "mcd.json").write_text(json.dumps(rec, indent=1))
    print("mcd", rec["pairs"], rec.get("ljspeech"))


PWG = {
    "pwg_a": dict(in_channels=1, out_channels=1, kernel_size=3, layers=4, stacks=2, residual_channels=8,
                  gate_channels=16, skip_channels=8, aux_channels=80, aux_context_window=2, dropout=0.0,
                  bias=True, use_weight_norm=True, use_causal_conv=False, upsample_conditional_features=True,
                  upsample_net="ConvInUpsampleNetwork", upsample_params={"upsample_scales": [4, 4]}),
    "pwg_b": dict(in_channels=1, out_channels=1, kernel_size=5, layers=6, stacks=3, residual_channels=6,
                  gate_channels=12, skip_channels=10, aux_channels=80, aux_context_window=1, dropout=0.0,
                  bias=True, use_weight_norm=True, use_causal_conv=False, upsample_conditional_features=True,
                  upsample_net="ConvInUpsampleNetwork",
                  upsample_params={"upsample_scales": [2, 4, 2], "nonlinear_activation": "LeakyReLU",
                                   "nonlinear_activation_params": {"negative_slope": 0.4},
                                   "freq_axis_kernel_size": 3}),
}


def pwg_fixture() -> None:
    import h5py
    from parallel_wavegan.models import ParallelWaveGANDiscriminator, ParallelWaveGANGenerator
    from parallel_wavegan.utils import load_model

    for name, params in PWG.items():
        folder = OUT / name
        folder.mkdir(exist_ok=True)
        torch.manual_seed(11)
        gen = ParallelWaveGANGenerator(**json.loads(json.dumps(params)))
        with torch.no_grad():  # the package's init leaves weight_g at the norm of v: move it so that g matters
            for key, p in gen.named_parameters():
                if key.endswith("weight_g"):
                    p.mul_(0.5 + torch.rand_like(p))
                elif key.endswith("bias"):
                    p.normal_(0, 0.1)
        disc = ParallelWaveGANDiscriminator(layers=3, conv_channels=4)
        hop = int(np.prod(params["upsample_params"]["upsample_scales"]))
        config = {"sampling_rate": 24000, "fft_size": 1024, "hop_size": hop, "win_length": None, "window": "hann",
                  "num_mels": 80, "fmin": 80, "fmax": 7600, "format": "hdf5", "generator_params": params,
                  "discriminator_params": {"layers": 3, "conv_channels": 4}, "batch_max_steps": 25600,
                  "version": "0.6.1"}
        (folder / "config.yml").write_text(yaml.dump(config, Dumper=yaml.Dumper))
        torch.save({"model": {"generator": gen.state_dict(), "discriminator": disc.state_dict()},
                    "optimizer": {}, "steps": 0, "epochs": 0}, folder / "checkpoint-0steps.pkl")
        mean, scale = noise((80,), f"{name}/mean", 1.5) - 4.0, noise((80,), f"{name}/scale", 0.2).abs() + 0.5
        with h5py.File(folder / "stats.h5", "w") as f:
            f.create_dataset("mean", data=mean.numpy())
            f.create_dataset("scale", data=scale.numpy())
        model = load_model(str(folder / "checkpoint-0steps.pkl"))
        model.remove_weight_norm()
        model.eval()
        mel = noise((7, 80), f"{name}/mel") * scale + mean  # (frames, bins), de-normalised log-mel
        x = noise((7 * hop, 1), f"{name}/noise")
        with torch.no_grad():
            y = model.inference(mel, x=x, normalize_before=True).view(-1)
        torch.save({"mel": mel, "noise": x[:, 0], "wav": y}, folder / "io.pt")
        print(name, y.shape, float(y.abs().mean()))


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    mel_fixture()
    taco2_fixture()
    mcd_fixture()
    pwg_fixture()
