"""DER: hand-computed cases, the policy options, bad input, the `s3prl score der` command, and agreement with
pyannote.metrics on the real AMI annotations of ../shared/data/ami_mini."""

import json
import os
import random
import warnings
from pathlib import Path

import numpy as np
import pytest

from s3prl.cli import main
from s3prl.metrics import der

AMI = Path(os.environ.get("S3PRL_TEST_DATA", "")) / "ami_mini"


def test_hand_computed_parts():
    # ref: A 0-10, B 5-15 (overlap 5-10); hyp: x 0-9, y 9-16
    ref = {"r": {"A": [(0, 10)], "B": [(5, 15)]}}
    hyp = {"r": {"x": [(0, 9)], "y": [(9, 16)]}}
    out = der.score(ref, hyp)
    d = out["recordings"]["r"]
    # region 0-16; ref speech 20 s; 5-9: 2 ref / 1 hyp -> 4 s missed; 10-15: B vs y; 15-16: 1 s false alarm
    # mapping x->A (9 s), y->B (6 s: 9-15); 9-10: A+B vs y -> 1 missed, y matches B: no confusion
    assert d["scored"] == pytest.approx(20.0)
    assert d["missed"] == pytest.approx(5.0)
    assert d["false_alarm"] == pytest.approx(1.0)
    assert d["confusion"] == pytest.approx(0.0)
    assert d["DER"] == pytest.approx(6 / 20)
    assert d["mapping"] == {"x": "A", "y": "B"}
    assert out["policy"] == {"collar": 0.0, "skip_overlap": False, "uem": der.Policy.uem}


def test_confusion_and_mapping_is_optimal():
    ref = {"r": {"A": [(0, 4)], "B": [(4, 10)]}}
    hyp = {"r": {"x": [(0, 10)]}}  # one speaker all the time: x maps to B (6 s), A's 4 s are confusion
    d = der.score(ref, hyp)["recordings"]["r"]
    assert (d["missed"], d["false_alarm"], d["confusion"]) == pytest.approx((0, 0, 4))
    assert d["mapping"] == {"x": "B"}


def test_uem_collar_overlap():
    ref = {"r": {"A": [(1, 5)], "B": [(4, 8)]}}
    hyp = {"r": {"x": [(0, 9)]}}
    plain = der.score(ref, hyp)["recordings"]["r"]  # region 0-9 (extent); ref 8 s
    # x maps to A (4 s shared, a tie with B): 7 s of one-to-one talk, 4 matched -> 3 s confusion
    assert (plain["scored"], plain["missed"], plain["false_alarm"], plain["confusion"]) == pytest.approx((8, 1, 2, 3))
    uem = der.score(ref, hyp, {"r": [(2, 6)]})["recordings"]["r"]  # A 2-5, B 4-6: 5 s; x 2-6
    assert (uem["scored"], uem["missed"], uem["false_alarm"], uem["confusion"]) == pytest.approx((5, 1, 0, 1))
    skip = der.score(ref, hyp, skip_overlap=True)["recordings"]["r"]  # 4-5 removed
    assert (skip["scored"], skip["region"]) == pytest.approx((6, 8))
    collar = der.score(ref, hyp, collar=0.5)["recordings"]["r"]  # +-0.5 around 1, 4, 5, 8 removed: 4 s
    assert collar["region"] == pytest.approx(9 - 4)
    assert der.score(ref, hyp, collar=0.5)["policy"]["collar"] == 0.5


def test_totals_sum_seconds_and_missing_recordings():
    ref = {"a": {"A": [(0, 10)]}, "b": {"B": [(0, 2)]}}
    hyp = {"a": {"x": [(0, 10)]}}  # b: the system said nothing -> all missed
    out = der.score(ref, hyp)
    assert out["recordings"]["b"]["missed"] == pytest.approx(2)
    assert out["total"]["DER"] == pytest.approx(2 / 12)
    with pytest.raises(ValueError, match="not in the reference: c"):
        der.score(ref, {"c": {"x": [(0, 1)]}})
    with pytest.raises(ValueError, match="UEM has no region for recordings of the reference: b"):
        der.score(ref, hyp, {"a": [(0, 10)]})
    with pytest.raises(ValueError, match="no speech"):
        der.score({"a": {}}, {"a": {"x": [(0, 1)]}}, {"a": [(0, 5)]})
    # a UEM recording without reference speech: its false alarm counts, its own DER is undefined (None)
    out = der.score({"a": {"A": [(0, 4)]}}, {"a": {"x": [(0, 4)]}, "e": {"x": [(0, 1)]}},
                    {"a": [(0, 4)], "e": [(0, 2)]})
    assert out["recordings"]["e"]["DER"] is None and out["total"]["DER"] == pytest.approx(1 / 4)
    with pytest.raises(ValueError, match="collar"):
        der.score(ref, hyp, collar=-1)


def test_same_speaker_turns_merge():
    ref = {"r": {"A": [(0, 5), (3, 8)]}}  # one speaker cannot talk twice at once
    d = der.score(ref, {"r": {"x": [(0, 8)]}})["recordings"]["r"]
    assert d["scored"] == pytest.approx(8) and d["DER"] == 0


def test_files_and_bad_input(tmp_path):
    good = tmp_path / "ref.rttm"
    good.write_text("SPKR-INFO r 1 <NA> <NA> <NA> unknown A <NA>\n# comment\n"
                    "SPEAKER r 1 0.5 1.25 <NA> <NA> A <NA> <NA>\nSPEAKER r 1 2 1 <NA> <NA> B <NA>\n")
    assert der.read_rttm(good) == {"r": {"A": [(0.5, 1.75)], "B": [(2.0, 3.0)]}}
    out = tmp_path / "out.rttm"
    der.write_rttm(out, der.read_rttm(good))
    assert der.read_rttm(out) == der.read_rttm(good)
    for text, match in [("SPEAKER r 1 0.5\n", "at least 8 fields"), ("SPEAKER r 1 x 1 <NA> <NA> A\n", "numbers"),
                        ("SPEAKER r 1 1 -2 <NA> <NA> A\n", ">= 0")]:
        bad = tmp_path / "bad.rttm"
        bad.write_text(text)
        with pytest.raises(ValueError, match=match) as err:
            der.read_rttm(bad)
        assert "bad.rttm:1" in str(err.value)
    uem = tmp_path / "x.uem"
    uem.write_text("r 1 0 10\nr 1 5 12\n")
    with pytest.raises(ValueError, match=r"regions of r overlap \(lines 1 and 2"):
        der.read_uem(uem)
    uem.write_text("r 1 0 10\nr 1 10 12\n")
    assert der.read_uem(uem) == {"r": [(0, 10), (10, 12)]}
    uem.write_text("r 1 5 2\n")
    with pytest.raises(ValueError, match="start <= end"):
        der.read_uem(uem)


def test_cli(tmp_path, capsys):
    ref, hyp = tmp_path / "ref.rttm", tmp_path / "hyp.rttm"
    ref.write_text("SPEAKER r 1 0 10 <NA> <NA> A <NA> <NA>\nSPEAKER r 1 5 10 <NA> <NA> B <NA> <NA>\n")
    hyp.write_text("SPEAKER r 1 0 9 <NA> <NA> x <NA> <NA>\nSPEAKER r 1 9 7 <NA> <NA> y <NA> <NA>\n")
    assert main(["score", "der", str(ref), str(hyp)]) == 0
    text = capsys.readouterr().out
    assert "collar 0 s each side, overlap scored" in text and "TOTAL" in text and "30.00" in text
    assert main(["score", "der", str(ref), str(hyp), "--json", "--collar", "0.25", "--skip-overlap"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["policy"]["collar"] == 0.25 and out["policy"]["skip_overlap"] and "r" in out["recordings"]
    (tmp_path / "stray.rttm").write_text("SPEAKER q 1 0 1 <NA> <NA> x <NA> <NA>\n")
    assert main(["score", "der", str(ref), str(tmp_path / "stray.rttm")]) == 1
    assert "not in the reference: q" in capsys.readouterr().err


def ami_reference():
    ref, uem = {}, {}
    for split in ("train", "development", "test"):
        ref.update(der.read_rttm(AMI / f"debug.{split}.rttm"))
        uem.update(der.read_uem(AMI / f"debug.{split}.uem"))
    return ref, uem


def perturbed(turns: dict, seed: int) -> dict:
    """A plausible system output: turns jittered by up to 0.5 s, some dropped, speakers renamed and merged."""
    rnd, out = random.Random(seed), {}
    for spk, segs in sorted(turns.items()):
        name = f"h{rnd.randint(0, 2)}"
        for s, e in segs:
            if rnd.random() > 0.15:
                out.setdefault(name, []).append((max(0.0, s + rnd.uniform(-0.5, 0.5)), e + rnd.uniform(-0.5, 0.5)))
    return {k: der.merge(v) for k, v in out.items()}


@pytest.mark.skipif(not AMI.is_dir(), reason="set S3PRL_TEST_DATA to ../shared/data for the real AMI annotations")
@pytest.mark.parametrize("collar,skip_overlap,with_uem", [(0.0, False, True), (0.0, False, False),
                                                          (0.25, False, True), (0.0, True, True), (0.25, True, False)])
def test_equals_pyannote_on_ami(collar, skip_overlap, with_uem):
    pytest.importorskip("pyannote.metrics")
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    def annotation(turns, uri):
        a = Annotation(uri=uri)
        for spk, segs in turns.items():
            for i, (s, e) in enumerate(segs):
                a[Segment(s, e), f"{spk}{i}"] = spk
        return a

    ref, uem = ami_reference()
    hyp = {rec: perturbed(turns, i) for i, (rec, turns) in enumerate(sorted(ref.items()))}
    ours = der.score(ref, hyp, uem if with_uem else None, collar=collar, skip_overlap=skip_overlap)
    theirs = DiarizationErrorRate(collar=2 * collar, skip_overlap=skip_overlap)  # theirs: total collar width
    names = {"scored": "total", "missed": "missed detection", "false_alarm": "false alarm", "confusion": "confusion"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyannote warns when it approximates the UEM by the extent
        for rec in sorted(ref):
            region = Timeline([Segment(s, e) for s, e in uem[rec]]) if with_uem else None
            detail = theirs(annotation(ref[rec], rec), annotation(hyp[rec], rec), uem=region, detailed=True)
            for key, their_key in names.items():
                assert ours["recordings"][rec][key] == pytest.approx(detail[their_key], abs=1e-6), (rec, key)
    assert 0.05 < ours["total"]["DER"] < 1
    assert ours["total"]["DER"] == pytest.approx(abs(theirs), abs=1e-6)


def test_assignment_is_optimal():
    scipy = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(0)
    for _ in range(100):
        w = rng.random((rng.integers(1, 7), rng.integers(1, 7))) * (rng.random((1, 1)) > 0.1)
        rows, cols = der.assignment(w)
        r2, c2 = scipy.linear_sum_assignment(w, maximize=True)
        assert len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
        assert w[rows, cols].sum() == pytest.approx(w[r2, c2].sum(), abs=1e-12)
