"""Parity fixtures for the SD task, written by the ORIGINAL s3prl 0.4.18 diarization code (oracle venv).

    PY=$(cd / && bash ../shared/tools/s3prl-oracle/setup.sh | tail -1)
    $PY tests/oracle/make_diarization_fixtures.py tests/fixtures/oracle/diarization

Writes ``head_pit.pt`` (the original ``Model`` weights, features, labels, lengths, its ``_match_length`` output,
logits, ``pit_loss`` value and best permutations, for 2 and 3 speakers) and ``rttm_cases.pt`` (posteriors and the
RTTM text ``make_rttm.py`` writes for them at several thresholds, median filters and frame shifts).
The original imports h5py and pandas at module level without needing them here; small stand-ins replace them
so that the oracle venv stays as its setup script made it (``make_rttm.py`` reads ``T_hat`` through the stand-in).
"""

import os
import runpy
import sys
import tempfile
import types

import numpy as np
import torch

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/oracle/diarization"


def stub_modules() -> None:
    h5py = types.ModuleType("h5py")
    h5py.File = lambda path, mode="r": {"T_hat": np.load(path)}  # make_rttm reads data["T_hat"][:]
    sys.modules["h5py"] = h5py
    sys.modules.setdefault("pandas", types.ModuleType("pandas"))


def head_case(n_speakers: int, seed: int, label_len: int, feat_lens: list, dim: int = 12, hidden: int = 20) -> dict:
    from s3prl.downstream.diarization.expert import DownstreamExpert
    from s3prl.downstream.diarization.model import Model
    from s3prl.downstream.diarization.utils import pit_loss

    torch.manual_seed(seed)
    model = Model(input_dim=dim, output_class_num=n_speakers, rnn_layers=1, hidden_size=hidden)
    feats = [torch.randn(n, dim) for n in feat_lens]
    lengths = torch.tensor([label_len - 3 * i for i in range(len(feat_lens))])
    labels = [(torch.rand(int(n), n_speakers) > 0.5).float() for n in lengths]
    padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    target = torch.nn.utils.rnn.pad_sequence(labels, batch_first=True)
    expert = types.SimpleNamespace()
    expert._tile_representations = lambda reps, factor: DownstreamExpert._tile_representations(expert, reps, factor)
    matched, target = DownstreamExpert._match_length(expert, padded, target)
    logits = model(matched)
    loss, perm_idx, perm_list = pit_loss(logits, target, lengths)
    return {"state_dict": model.state_dict(), "features": padded, "labels": target, "lengths": lengths,
            "matched": matched.detach(), "logits": logits.detach(), "loss": loss.detach(),
            "perms": torch.tensor(np.array([perm_list[i] for i in perm_idx.tolist()])), "hidden": hidden}


def rttm_case(seed: int, frames: int, n_speakers: int, threshold: float, median: int, frame_shift: int) -> dict:
    rng = np.random.default_rng(seed)
    # smooth random posteriors: speech-like runs with flickers that the median filter removes
    raw = (np.cumsum(rng.standard_normal((frames, n_speakers)), axis=0) * 0.15
           + rng.standard_normal((frames, n_speakers)))
    post = (1 / (1 + np.exp(-raw))).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        h5 = os.path.join(tmp, f"rec{seed}.h5")
        with open(h5, "wb") as f:
            np.save(f, post)
        listing, rttm = os.path.join(tmp, "list"), os.path.join(tmp, "hyp.rttm")
        with open(listing, "w") as f:
            f.write(h5 + "\n")
        argv = sys.argv
        sys.argv = ["make_rttm.py", listing, rttm, f"--threshold={threshold}", f"--median={median}",
                    f"--frame_shift={frame_shift}", "--subsampling=1", "--sampling_rate=16000"]
        import s3prl.downstream.diarization as pkg

        runpy.run_path(os.path.join(os.path.dirname(pkg.__file__), "make_rttm.py"), run_name="__main__")
        sys.argv = argv
        text = open(rttm).read()
    return {"posteriors": torch.from_numpy(post), "rec": f"rec{seed}", "threshold": threshold, "median": median,
            "frame_shift": frame_shift, "rttm": text}


def main() -> None:
    stub_modules()
    os.makedirs(OUT, exist_ok=True)
    cases = {"two": head_case(2, 0, 40, [40, 38, 35]),  # features as long as the labels (cut to them)
             "three": head_case(3, 1, 30, [31, 29, 25]),  # one frame more, fewer: cut / last frame repeated
             "tiled": head_case(2, 2, 40, [20, 19])}  # labels twice as dense: features repeated
    torch.save(cases, os.path.join(OUT, "head_pit.pt"))
    rttm = [rttm_case(s, 400, n, th, med, shift) for s, (n, th, med, shift) in enumerate(
        [(2, 0.5, 1, 320), (2, 0.3, 11, 320), (3, 0.7, 11, 160), (2, 0.5, 5, 256), (4, 0.4, 1, 160)])]
    torch.save(rttm, os.path.join(OUT, "rttm_cases.pt"))
    print(f"wrote {OUT}/head_pit.pt and rttm_cases.pt")


if __name__ == "__main__":
    main()
