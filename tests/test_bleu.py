"""BLEU: equal to sacrebleu called directly and to the original speech_translation scoring code (oracle fixture from
tests/oracle/make_bleu_fixtures.py), and ``s3prl score bleu`` on id-keyed and line-aligned files."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import pytest

from s3prl.cli import main
from s3prl.metrics import bleu

sacrebleu = pytest.importorskip("sacrebleu")

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "bleu_oracle.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(FIXTURE["cases"]))
def test_equals_original_metric_code(name):
    case = FIXTURE["cases"][name]
    got = bleu.corpus_bleu(case["hyps"], case["refs"], tokenize=bleu.tokenizer_for(case["lang"]))
    assert got["bleu"] == pytest.approx(case["expert_bleu"], abs=1e-9)
    assert got["precisions"] == pytest.approx(case["expert_precisions"], abs=1e-9)
    assert got["brevity_penalty"] == pytest.approx(case["expert_bp"], abs=1e-12)
    if "script_bleu" in case:  # the original standalone count_sacreBLEU.py
        assert got["bleu"] == pytest.approx(case["script_bleu"], abs=1e-9)
    # and sacrebleu itself, called directly the documented way
    direct = sacrebleu.corpus_bleu(case["hyps"], [case["refs"]], tokenize=bleu.tokenizer_for(case["lang"]))
    assert got["bleu"] == pytest.approx(direct.score, abs=1e-12)
    assert 0 < got["bleu"] < 100


def test_case_sensitive_and_detokenized():
    ref = ["The cat sat on the mat."]
    assert bleu.corpus_bleu(["The cat sat on the mat."], ref)["bleu"] == pytest.approx(100.0)
    assert bleu.corpus_bleu(["the cat sat on the mat."], ref)["bleu"] < 100  # case counts
    assert bleu.tokenizer_for("zh") == "zh" and bleu.tokenizer_for("de") == "13a"


def test_bad_input():
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        bleu.corpus_bleu(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no sentences"):
        bleu.corpus_bleu([], [])
    with pytest.raises(ValueError, match="unknown tokenizer"):
        bleu.corpus_bleu(["a"], ["a"], tokenize="moses")
    with pytest.raises(TypeError, match="not a string"):
        bleu.corpus_bleu([None], ["a"])


def test_missing_sacrebleu_names_the_extra(monkeypatch, tmp_path, capsys):
    real_import = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "sacrebleu":
            raise ImportError("no sacrebleu")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match=r"s3prl\[st\]"):
        bleu.corpus_bleu(["a"], ["a"])
    (tmp_path / "r.txt").write_text("u1 a b c\n")
    assert main(["score", "bleu", str(tmp_path / "r.txt"), str(tmp_path / "r.txt")]) == 1
    err = capsys.readouterr().err
    assert "pip install 's3prl[st]'" in err and "unexpected" not in err


def test_score_cli(tmp_path, capsys):
    case = FIXTURE["cases"]["en_mixed"]
    ids = [f"utt{i:02d}" for i in range(len(case["refs"]))]
    ref, hyp = tmp_path / "ref.txt", tmp_path / "hyp.txt"
    ref.write_text("".join(f"{i} {t}\n" for i, t in zip(ids, case["refs"])), encoding="utf-8")
    hyp.write_text("".join(f"{i} {t}\n" for i, t in reversed(list(zip(ids, case["hyps"])))), encoding="utf-8")
    assert main(["score", "bleu", str(ref), str(hyp), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bleu"] == pytest.approx(case["expert_bleu"], abs=1e-9) and out["sentences"] == len(ids)
    assert main(["score", "bleu", str(ref), str(hyp)]) == 0
    assert f"BLEU {case['expert_bleu']:.2f}" in capsys.readouterr().out
    # plain line-aligned files
    ref_l, hyp_l = tmp_path / "ref.l", tmp_path / "hyp.l"
    ref_l.write_text("\n".join(case["refs"]) + "\n", encoding="utf-8")
    hyp_l.write_text("\n".join(case["hyps"]) + "\n", encoding="utf-8")
    assert main(["score", "bleu", "--lines", str(ref_l), str(hyp_l), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bleu"] == pytest.approx(case["expert_bleu"], abs=1e-9)
    zh = FIXTURE["cases"]["zh"]
    ref_l.write_text("\n".join(zh["refs"]) + "\n", encoding="utf-8")
    hyp_l.write_text("\n".join(zh["hyps"]) + "\n", encoding="utf-8")
    assert main(["score", "bleu", "--lines", "--tokenize", "zh", str(ref_l), str(hyp_l), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bleu"] == pytest.approx(zh["expert_bleu"], abs=1e-9)
    # bad input: a missing id, misaligned lines, an unknown tokenizer
    hyp.write_text("".join(f"{i} {t}\n" for i, t in list(zip(ids, case["hyps"]))[1:]), encoding="utf-8")
    assert main(["score", "bleu", str(ref), str(hyp)]) == 1
    assert "have no hypothesis: utt00" in capsys.readouterr().err
    hyp_l.write_text("one line\n", encoding="utf-8")
    assert main(["score", "bleu", "--lines", str(ref_l), str(hyp_l)]) == 1
    assert "line-aligned" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["score", "bleu", "--tokenize", "moses", str(ref_l), str(hyp_l)])
