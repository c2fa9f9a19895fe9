"""Write tests/fixtures/separation_oracle.pt and separation_v2_oracle.pt with the ORIGINAL s3prl 0.4.18 SE / SS
code (run in the oracle venv).

    bash tests/oracle/make_separation_fixtures.sh      # installs the metric libraries aside, then runs this

What it records, for the same signals, features and head weights:
  * the original ``enhancement_stft`` / ``separation_stft`` ``DownstreamExpert.forward`` (its dataset and collate,
    ``match_length``, ``SepRNN``, ``MSELoss``): the training loss (batch of 2) and the masks;
  * the same forward in test mode (batch of 1, as the original evaluates): its per-utterance records, i.e.
    asteroid's ``get_metrics`` (pb_bss_eval SI-SDR, ``pesq``, ``pystoi``) on the original's reconstruction;
  * ``get_metrics`` called directly on fixed signals (SI-SDR, PESQ, STOI, input and output).

The oracle venv has neither asteroid nor its metric libraries: ``make_separation_fixtures.sh`` installs
asteroid 0.7.0 (no dependencies), pb_bss_eval, pesq, pystoi, mir_eval, pandas into a separate folder appended
to ``sys.path`` (the venv itself is untouched). ``asteroid`` is imported as a bare namespace (its ``__init__``
pulls in training libraries the metrics do not use); ``asteroid.losses`` and ``h5py`` are empty stand-ins: the
original modules import them at the top but the MSE path used here never calls them.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import types
from collections import defaultdict
from pathlib import Path

SITE = os.environ.get("S3PRL_METRIC_ORACLE_SITE", "/tmp/metric_oracle_site")
sys.path.append(SITE)
sys.path.insert(0, str(Path(os.environ.get("S3PRL_ORACLE_TOOLS", "/work/shared/tools/s3prl-oracle"))))
import oracle_env  # noqa: E402,F401  (offline defaults, threads, seeds)

asteroid = types.ModuleType("asteroid")
asteroid.__path__ = [os.path.join(SITE, "asteroid")]
sys.modules["asteroid"] = asteroid
losses = types.ModuleType("asteroid.losses")
losses.PITLossWrapper = None  # only SISDRLoss uses it
sys.modules["asteroid.losses"] = losses
sys.modules.setdefault("h5py", types.ModuleType("h5py"))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from asteroid.metrics import get_metrics  # noqa: E402

RATE, HOP, DIM = 16000, 160, 6
LENGTHS = (8100, 7050)  # not multiples of HOP: the upstream's ceil(len / HOP) frames equal the STFT's 1 + len // HOP
MODEL = dict(model="SepRNN", rnn="LSTM", rnn_layers=2, hidden_size=8, dropout=0.0, non_linear="relu",
             bidirectional=True, loss_type="MSE", mask_type="NPSM")
# the v2 tasks: the SE one with a 320-sample upstream (features repeated twice for its fixed hop of 160) and a
# window shorter than n_fft; the SS one with the upstream's hop
V2 = {"enhancement_stft2": dict(model=dict(MODEL, non_linear="sigmoid", loss_type="L1", mask_type="AM", log="log1p"),
                                datarc=dict(win_length=400, hop_length=160), rate=320),
      "separation_stft2": dict(model=dict(MODEL, non_linear="sigmoid", log="log1p"), datarc={}, rate=HOP)}


def voice(n: int, f0: float, rng: np.random.Generator) -> np.ndarray:
    """A crude voiced signal: harmonics of a gliding f0 under a syllable-rate envelope (PESQ finds speech in it)."""
    t = np.arange(n) / RATE
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))) / RATE
    x = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 12))
    return 0.2 * x * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6))) / 3


def signals() -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for n, (f1, f2) in zip(LENGTHS, ((130.0, 210.0), (170.0, 115.0))):
        s1, s2 = voice(n, f1, rng), voice(n, f2, rng) * 0.7
        noise = 0.03 * rng.standard_normal(n)
        q = lambda x: np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)  # noqa: E731
        out.append(derived({"s1": q(s1), "s2": q(s2), "noise": q(noise)}))
    return out


def derived(sig: dict) -> dict:
    """The mixtures from the stored int16 signals: mix_clean = s1 + s2, noisy = s1 + noise, clean = s1."""
    add = lambda a, b: np.clip(a.astype(np.int32) + b, -32768, 32767).astype(np.int16)  # noqa: E731
    return {**sig, "mix_clean": add(sig["s1"], sig["s2"]), "noisy": add(sig["s1"], sig["noise"])}


def write_dirs(root: Path, sigs: list[dict]) -> None:
    for cond in ("s1", "s2", "mix_clean", "clean", "noisy"):  # clean is s1
        (root / cond).mkdir(parents=True)
        lines = []
        for i, sig in enumerate(sigs):
            path = root / cond / f"utt{i}.wav"
            sf.write(path, sig["s1" if cond == "clean" else cond], RATE, subtype="PCM_16")
            lines.append(f"utt{i} {path}\n")
        (root / cond / "wav.scp").write_text("".join(lines))


def expert(kind: str, root: Path, n_src: int, model: dict = MODEL, extra: dict | None = None, rate: int = HOP):
    module = __import__(f"s3prl.downstream.{kind}.expert", fromlist=["DownstreamExpert"])
    datarc = dict(num_speakers=n_src, rate=RATE, src=["mix_clean" if n_src == 2 else "noisy"],
                  tgt=["s1", "s2"] if n_src == 2 else ["clean"], n_fft=512, win_length=512, window="hann", center=True)
    datarc.update(extra or {})
    loaderrc = dict(num_workers=0, train_batchsize=2, eval_batchsize=1, train_dir=str(root), dev_dir=str(root),
                    test_dir=str(root))
    torch.manual_seed(1 + n_src)
    exp = module.DownstreamExpert(DIM, rate, {"datarc": datarc, "loaderrc": loaderrc, "modelrc": model}, str(root))
    with torch.no_grad():  # every weight perturbed away from PyTorch's default initialisation
        for p in exp.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return exp.eval()


def run_task(kind: str, root: Path, n_src: int, feats: list[torch.Tensor], model: dict = MODEL,
             extra: dict | None = None, rate: int = HOP) -> dict:
    exp = expert(kind, root, n_src, model, extra, rate)
    ds = exp.test_dataset
    batch = ds.collate_fn([ds[0], ds[1]])  # sorted by length inside: utt0 (8100) first
    names = batch[1]
    f = [feats[int(n[-1])] for n in names]
    records = defaultdict(list)
    with torch.no_grad():
        loss = exp("train", f, *batch[1:], records)
        from torch.nn.utils.rnn import pack_sequence

        up = [x.repeat_interleave(rate // HOP, dim=0) for x in f]  # what the v2 SE expert does for rate 320
        masks = exp.model(pack_sequence(exp_match(up, batch[6])))
    tests = []
    for i in range(2):
        one = ds.collate_fn([ds[i]])
        rec = defaultdict(list)
        with torch.no_grad():
            exp("test", [feats[i]], *one[1:], rec, batch_id=1)
        tests.append({k: float(rec[k][0]) for k in ("si_sdr", "stoi", "pesq") if k in rec})
    return {"state_dict": {k: v.clone() for k, v in exp.model.state_dict().items()}, "loss": float(loss),
            "order": list(names), "feat_length": batch[6].clone(),
            # the first 5 frames of every utterance and source, and each utterance's last valid frame (kept small)
            "masks_head": [m[:, :5].clone() for m in masks],
            "masks_last": [torch.stack([m[b, int(n) - 1] for b, n in enumerate(batch[6])]) for m in masks],
            "test_records": tests}


def exp_match(f, lengths):
    from s3prl.downstream.enhancement_stft.expert import match_length

    return match_length(f, lengths)


def direct_metrics(sigs: list[dict]) -> list[dict]:
    """get_metrics on fixed signals, as the SE expert calls it (no permutation) and as SS does (permutation)."""
    out = []
    for sig in sigs:
        f = lambda k: sig[k].astype(np.float32) / 32768  # noqa: E731
        est_se = (f("s1") + 0.5 * (f("noisy") - f("s1")))[None]
        se = get_metrics(f("noisy")[None], f("s1")[None], est_se, sample_rate=RATE,
                         metrics_list=["si_sdr", "stoi", "pesq"], compute_permutation=False)
        est_ss = np.stack([f("s2") + 0.3 * f("s1"), f("s1") + 0.2 * f("s2")])  # swapped order on purpose
        ss = get_metrics(f("mix_clean")[None], np.stack([f("s1"), f("s2")]), est_ss, sample_rate=RATE,
                         metrics_list=["si_sdr", "stoi", "pesq"], compute_permutation=True)
        out.append({"se": {k: float(v) for k, v in se.items()}, "ss": {k: float(v) for k, v in ss.items()}})
    return out


def main_v2(out: str) -> None:
    sigs = signals()
    gen = torch.Generator().manual_seed(8)
    result = {"features": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_dirs(root, sigs)
        for kind, conf in V2.items():
            feats = [torch.randn(math.ceil(n / conf["rate"]), DIM, generator=gen) for n in LENGTHS]
            result["features"][kind] = feats
            result[kind] = run_task(kind, root, 2 if kind.startswith("sep") else 1, feats, conf["model"],
                                    conf["datarc"], conf["rate"])
            result[kind]["rate"] = conf["rate"]
            print(kind, result[kind]["loss"], result[kind]["test_records"])
    torch.save(result, out)
    print("wrote", out, os.path.getsize(out), "bytes")


def main(out: str) -> None:
    sigs = signals()
    gen = torch.Generator().manual_seed(7)
    feats = [torch.randn(math.ceil(n / HOP), DIM, generator=gen) for n in LENGTHS]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_dirs(root, sigs)
        stored = [{k: torch.from_numpy(s[k]) for k in ("s1", "s2", "noise")} for s in sigs]
        result = {"signals": stored, "features": feats,
                  "hop": HOP, "model": MODEL,
                  "enhancement_stft": run_task("enhancement_stft", root, 1, feats),
                  "separation_stft": run_task("separation_stft", root, 2, feats),
                  "direct_metrics": direct_metrics(sigs)}
    torch.save(result, out)
    print("wrote", out, os.path.getsize(out), "bytes")
    for kind in ("enhancement_stft", "separation_stft"):
        print(kind, result[kind]["loss"], result[kind]["test_records"])
    print(result["direct_metrics"])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/separation_oracle.pt")
    main_v2(sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures/separation_v2_oracle.pt")
