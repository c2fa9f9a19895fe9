"""SI-SDR / PESQ / STOI: definitions, the original's metric code (oracle fixture), real VoiceBank pairs, bad input,
and ``s3prl score sisdr|pesq|stoi``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from s3prl.cli import main
from s3prl.metrics import separation

FIXTURE = Path(__file__).parent / "fixtures" / "separation_oracle.pt"
VOICEBANK = Path(os.environ.get("S3PRL_TEST_DATA", "/nonexistent")) / "voicebank_demand_mini"


def derived(sig: dict) -> dict:
    """The fixture's mixtures from its stored int16 signals (as tests/oracle/make_separation_fixtures.py)."""
    s1, s2, noise = (sig[k].numpy().astype(np.int32) for k in ("s1", "s2", "noise"))
    f = lambda x: np.clip(x, -32768, 32767).astype(np.float32) / 32768  # noqa: E731
    return {"s1": f(s1), "s2": f(s2), "mix_clean": f(s1 + s2), "noisy": f(s1 + noise)}


def test_si_sdr_against_its_definition():
    rng = np.random.default_rng(0)
    ref, err = rng.standard_normal(4000) + 0.3, rng.standard_normal(4000)
    est = 0.3 * ref + 0.1 * err + 2.0
    # zero-mean signals, then the orthogonal decomposition written out: est = a * ref + e with <e, ref> = 0
    r, x = ref - ref.mean(), est - est.mean()
    a = r @ x / (r @ r)
    e = x - a * r
    assert abs(float(e @ r)) < 1e-9
    want = 10 * np.log10((a * a * (r @ r)) / (e @ e))
    assert separation.si_sdr(ref, est) == pytest.approx(want, abs=1e-6)
    assert separation.si_sdr(ref, 7.0 * est - 1.0) == pytest.approx(want, abs=1e-6)  # scale and offset invariant
    assert separation.si_sdr(ref, np.zeros_like(ref)) == pytest.approx(-80.0)  # silent estimate: the epsilon floor
    assert separation.si_sdr(ref, ref * 3) > 100
    mix = ref + err
    assert separation.si_sdr_improvement(ref, est, mix) == pytest.approx(want - separation.si_sdr(ref, mix), abs=1e-6)


def test_best_permutation_and_scores():
    rng = np.random.default_rng(1)
    s1, s2 = rng.standard_normal(3000), rng.standard_normal(3000)
    ests = [s2 + 0.1 * s1, s1 + 0.2 * s2]
    assert separation.best_permutation([s1, s2], ests) == (1, 0)
    got = separation.separation_scores([s1, s2], ests, s1 + s2)
    assert got["permutation"] == [1, 0]
    assert got["si_sdr"] == pytest.approx((separation.si_sdr(s1, ests[1]) + separation.si_sdr(s2, ests[0])) / 2)


@pytest.mark.parametrize("ref,est,message", [
    (np.zeros(100), np.ones(100), "reference is silent"),
    (np.full(100, 0.25), np.ones(100), "reference is silent"),  # a constant: nothing left without its mean
    (np.ones(100), np.ones(90), "same length"),
    (np.ones((2, 100)), np.ones((2, 100)), "mono"),
    (np.full(100, np.nan), np.ones(100), "NaN"),
])
def test_si_sdr_bad_input(ref, est, message):
    with pytest.raises(ValueError, match=message):
        separation.si_sdr(ref, est)


def test_equal_to_the_original_metric_code():
    """asteroid's get_metrics (pb_bss_eval, pesq, pystoi), as the original SE / SS experts call it."""
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    from s3prl.metrics import enhancement

    fx = torch.load(FIXTURE, weights_only=True)
    for sig, want in zip(fx["signals"], fx["direct_metrics"]):
        s = derived(sig)
        est = s["s1"] + 0.5 * (s["noisy"] - s["s1"])
        se = want["se"]
        assert separation.si_sdr(s["s1"], est) == pytest.approx(se["si_sdr"], abs=1e-4)
        assert separation.si_sdr(s["s1"], s["noisy"]) == pytest.approx(se["input_si_sdr"], abs=1e-4)
        assert enhancement.pesq(s["s1"], est) == pytest.approx(se["pesq"], abs=1e-4)
        assert enhancement.stoi(s["s1"], est) == pytest.approx(se["stoi"], abs=1e-4)
        assert enhancement.stoi(s["s1"], s["noisy"]) == pytest.approx(se["input_stoi"], abs=1e-4)
        ests = [s["s2"] + 0.3 * s["s1"], s["s1"] + 0.2 * s["s2"]]
        got = separation.separation_scores([s["s1"], s["s2"]], ests, s["mix_clean"])
        ss = want["ss"]
        assert got["si_sdr"] == pytest.approx(ss["si_sdr"], abs=1e-4)
        assert got["input_si_sdr"] == pytest.approx(ss["input_si_sdr"], abs=1e-4)
        order = got["permutation"]
        pesq = np.mean([enhancement.pesq(r, ests[j]) for r, j in zip([s["s1"], s["s2"]], order)])
        assert pesq == pytest.approx(ss["pesq"], abs=1e-4)


def test_pesq_stoi_errors():
    pytest.importorskip("pesq")
    from s3prl.metrics import enhancement

    with pytest.raises(ValueError, match="8000 or 16000"):
        enhancement.pesq(np.ones(16000), np.ones(16000), 22050)
    with pytest.raises(ValueError, match="silent"):
        enhancement.stoi(np.zeros(16000), np.ones(16000))


def test_missing_extra_is_named(monkeypatch):
    import builtins

    from s3prl.metrics import enhancement

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "pesq":
            raise ImportError("no pesq")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match=r"s3prl\[enhance\]"):
        enhancement.pesq(np.ones(16000), np.ones(16000))


@pytest.mark.skipif(not VOICEBANK.is_dir(), reason="needs S3PRL_TEST_DATA with voicebank_demand_mini")
def test_voicebank_noisy_scores(capsys):
    """The unprocessed noisy VoiceBank-DEMAND audio: PESQ-WB 1.41, STOI 0.834, SI-SDR 8.2 dB (the data's README)."""
    pytest.importorskip("pesq")
    ref, est = str(VOICEBANK / "clean"), str(VOICEBANK / "noisy")
    means = {}
    for kind in ("pesq", "stoi", "sisdr"):
        assert main(["score", kind, ref, est, "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["files"] == 6
        means[kind] = result["mean"]["score"]
    assert means["pesq"] == pytest.approx(1.41, abs=0.005)
    assert means["stoi"] == pytest.approx(0.834, abs=0.0005)
    assert means["sisdr"] == pytest.approx(8.2, abs=0.05)


def test_score_cli(tmp_path, capsys):
    rng = np.random.default_rng(3)
    for d in ("ref", "est", "mix"):
        (tmp_path / d).mkdir()
    truth = {}
    for name in ("a", "b"):
        ref = 0.3 * rng.standard_normal(4000)
        mix = ref + 0.3 * rng.standard_normal(4000)
        est = ref + 0.1 * rng.standard_normal(4000)
        for d, x in (("ref", ref), ("est", est), ("mix", mix)):
            sf.write(tmp_path / d / f"{name}.wav", x, 16000, subtype="FLOAT")
        truth[f"{name}.wav"] = (separation.si_sdr(ref, est), separation.si_sdr(ref, mix))
    args = ["score", "sisdr", str(tmp_path / "ref"), str(tmp_path / "est")]
    assert main([*args, "--mixture", str(tmp_path / "mix"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for name, (score, inp) in truth.items():
        assert out["per_file"][name]["score"] == pytest.approx(score, abs=1e-6)
        assert out["per_file"][name]["improvement"] == pytest.approx(score - inp, abs=1e-6)
    assert out["mean"]["score"] == pytest.approx(np.mean([s for s, _ in truth.values()]), abs=1e-6)
    assert main(args) == 0
    assert "MEAN (2 files)" in capsys.readouterr().out
    # bad input: a missing estimate, a length mismatch, a silent reference, another rate
    (tmp_path / "est" / "b.wav").unlink()
    assert main(args) == 1
    assert "have no estimate: b.wav" in capsys.readouterr().err
    sf.write(tmp_path / "est" / "b.wav", np.zeros(3000), 16000)
    assert main(args) == 1
    assert "same length" in capsys.readouterr().err
    sf.write(tmp_path / "ref" / "b.wav", np.zeros(4000), 16000)
    sf.write(tmp_path / "est" / "b.wav", np.ones(4000) * 0.1, 16000)
    assert main(args) == 1
    assert "silent" in capsys.readouterr().err
    sf.write(tmp_path / "est" / "b.wav", np.ones(4000) * 0.1, 8000)
    assert main(args) == 1
    assert "8000 Hz" in capsys.readouterr().err
