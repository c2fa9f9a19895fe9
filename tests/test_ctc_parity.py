"""The CTC tasks against the original s3prl 0.4.18 code: fixtures written by tests/oracle/make_ctc_fixtures.py
(run in the oracle venv): metrics, symbol tables, heads + CTC loss + greedy decoding, SpecAugment."""

from pathlib import Path

import pytest
import torch

from s3prl.downstream.sequence_heads import CTCHead
from s3prl.downstream.specaug import SpecAug
from s3prl.downstream.tasks import ctc
from s3prl.metrics import error_rate, slots
from s3prl.text import PHONEMES, CharDictionary, CharSlotVocabulary, TokenVocabulary

FIXTURES = torch.load(Path(__file__).parent / "fixtures" / "oracle" / "ctc_parity.pt", weights_only=True)
SLOT_NAMES = ["city", "artist", "playlist", "music_item"]
DICT_CHARS = list("|ETAONIHSRDLUMCWFGYPBVK'XJQZ")  # the fixture's char.dict order


def ours(name, hyp, ref):
    functions = {"cer": error_rate.cer, "wer": lambda h, r: error_rate.wer(h, r, sep=" "),
                 "per": lambda h, r: error_rate.per(h, r, sep=" "), "slot_type_f1": slots.slot_type_f1,
                 "slot_value_cer": slots.slot_value_cer, "slot_value_wer": slots.slot_value_wer,
                 "slot_edit_f1_full": slots.slot_edit_f1_full, "slot_edit_f1_part": slots.slot_edit_f1_part}
    return functions[name](hyp, ref)


def test_metrics_equal_the_original_functions():
    compared = 0
    for case in FIXTURES["metrics"]:
        for name, expected in case["out"].items():
            if expected == "ZeroDivisionError":  # the original divides by zero: no reference slot at all
                assert name.startswith("slot_value") or name.startswith("slot_edit"), name
                continue
            assert ours(name, case["hyp"], case["ref"]) == pytest.approx(expected, abs=1e-12), (name, case)
            compared += 1
    assert compared > 300


def test_symbol_tables_equal_the_original_encoders():
    text = FIXTURES["text"]
    sf = CharSlotVocabulary(ctc.CTC_CHARS, SLOT_NAMES)
    assert len(sf) == text["sf_vocab_size"]
    for item in text["sf"]:
        assert sf.encode(item["line"]) == item["ids"], item["line"]
        assert sf.decode(item["ids"]) == item["decoded"]
    pr = TokenVocabulary(PHONEMES, "word")
    for item in text["pr"]:
        assert pr.encode(item["text"]) == item["ids"] and pr.decode(item["ids"]) == item["decoded"]
    d = CharDictionary(DICT_CHARS)
    assert len(d) == text["asr_dict_size"]
    for item in text["asr"]:
        assert d.encode(item["text"]) == item["ids"]
        assert d.string(item["ids"]) == item["string"]


def vocabulary_of(name):
    if name == "pr":
        return {"kind": "tokens", "symbols": list(PHONEMES), "mode": "word"}
    if name == "sf":
        return {"kind": "slots", "chars": list(ctc.CTC_CHARS), "slots": SLOT_NAMES}
    return {"kind": "dictionary", "symbols": DICT_CHARS}


def head_options(name, run):
    if name == "pr":
        return dict(project_dim=16, select="FrameLevel")
    return dict(project_dim=14, select="RNNs", **run.get("conf", {}) or {
        "total_rate": -1, "module": "LSTM", "bidirection": True, "dim": [10, 10], "dropout": [0.2, 0.2],
        "layer_norm": [False, False], "proj": [False, False], "sample_rate": [1, 1], "sample_style": "concat"})


@pytest.mark.parametrize("name", ["pr", "sf", "asr_superb", "asr_downsample", "asr_gru_drop"])
def test_head_loss_and_decoding_equal_the_original_expert(name):
    """Same weights and features: logits, CTC loss (zero_infinity) and greedy hypotheses of one forward."""
    run = FIXTURES["experts"][name]
    vocabulary = vocabulary_of(name.split("_")[0])
    tokenizer = ctc.make_tokenizer(vocabulary)
    head = CTCHead(12, len(tokenizer.symbols), 160, **head_options(name.split("_")[0], run))
    ds = ctc.CTCDownstream(head, vocabulary, None)
    ds.load_state_dict(ctc.from_original_state_dict({**run["state_dict"], "best_score": torch.ones(1)}))
    ds.eval()
    feats = run["features"]
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    lengths = torch.tensor([len(f) for f in feats])
    labels = [ctc.Transcript("", tuple(y)) for y in run["labels"]]
    with torch.no_grad():
        log_probs, out_len = ds.log_probs(x, lengths)
        assert torch.equal(out_len.cpu(), run["log_probs_len"])
        for i, n in enumerate(out_len.tolist()):  # valid frames (the original pads differently)
            assert (log_probs[i, :n] - run["log_probs"][i, :n]).abs().max() <= 1e-5, i
        loss = ctc.ctc_loss(ds, x, lengths, labels)
        hyps = ctc.ctc_predict(ds, x, lengths)
    assert abs(float(loss) - run["loss"]) <= 1e-5 * max(1.0, abs(run["loss"])), (float(loss), run["loss"])
    if name in ("pr", "sf"):
        assert hyps == run["single_hypothesis"]  # the original evaluates at batch size 1
        assert [tokenizer.decode(y) for y in run["labels"]] == run["groundtruth"]
    else:
        assert [h.tokens for h in hyps] == run["pred_tokens"]
        assert [h.words for h in hyps] == run["pred_words"]
        assert [tokenizer.decode(y) for y in run["labels"]] == run["target_words"]


def test_original_state_keys_are_checked():
    with pytest.raises(KeyError, match="objective.weight"):
        ctc.from_original_state_dict({"objective.weight": torch.ones(1)})


def test_padding_does_not_change_an_utterance():
    run = FIXTURES["experts"]["asr_superb"]
    vocabulary = vocabulary_of("asr")
    head = CTCHead(12, 32, 160, **head_options("asr", run))
    head.load_state_dict(run["state_dict"])
    head.eval()
    feats = run["features"]
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    x = torch.cat([x, torch.randn(x.size(0), 5, x.size(2))], dim=1)  # garbage padding
    lengths = torch.tensor([len(f) for f in feats])
    with torch.no_grad():
        batch, out_len = head(x, lengths)
        for i, f in enumerate(feats):
            alone, n = head(f[None], lengths[i:i + 1])
            assert torch.allclose(batch[i, : int(n)], alone[0], atol=1e-5)
    assert vocabulary["kind"] == "dictionary"


def test_specaug_equals_the_original_for_a_seed():
    for run in FIXTURES["specaug"]:
        feats = run["features"]
        x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
        lengths = torch.tensor([len(f) for f in feats])
        conf = {k: tuple(v) if isinstance(v, list) else v for k, v in run["conf"].items()}
        torch.manual_seed(run["seed"])
        out = SpecAug(**conf)(x, lengths)
        for i, expected in enumerate(run["output"]):
            assert torch.allclose(out[i, : len(expected)], expected, atol=1e-6), (run["name"], run["seed"], i)


def test_lexicon_kenlm_decoding_equals_the_original(tmp_path):
    pytest.importorskip("flashlight.lib.text.decoder")
    from s3prl.decode.lexicon import LexiconDecoder, LexiconDecoderConfig

    lm = FIXTURES["lm"]
    (tmp_path / "lm.arpa").write_text(lm["arpa"])
    (tmp_path / "lexicon.lst").write_text(lm["lexicon"])
    d = CharDictionary(DICT_CHARS)
    decoders = {}
    for run in lm["runs"]:
        key = (run["lm_weight"], run["word_score"])
        if key not in decoders:
            config = LexiconDecoderConfig(str(tmp_path / "lm.arpa"), str(tmp_path / "lexicon.lst"),
                                          lm_weight=key[0], word_score=key[1])
            decoders[key] = LexiconDecoder(config, d.symbols, d.blank, d.unk)
        assert decoders[key].decode(run["emissions"]) == run["words"], run["words"]
    assert {tuple(r["words"]) for r in lm["runs"]} >= {("HELLO", "WORLD"), ("LOW", "HELLO"), ("LOW", "WO")}
