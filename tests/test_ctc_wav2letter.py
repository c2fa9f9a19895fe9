"""The Wav2Letter CTC head against the original's (``downstream/asr/model.py``): same weights, same features ->
same log-probabilities, output lengths and CTC loss. Fixture: tests/oracle/make_ctc_wav2letter_fixtures.py (run in
the oracle venv; the weights are regenerated here from the seed the fixture records, checked by their sums)."""

from pathlib import Path

import pytest
import torch

from s3prl.downstream.corpora import sbcsae
from s3prl.downstream.sequence_heads import CTCHead, Wav2Letter
from s3prl.downstream.tasks import ctc

FIXTURES = torch.load(Path(__file__).parent / "fixtures" / "oracle" / "ctc_wav2letter.pt", weights_only=True)
DICT_CHARS = list("|ETAONIHSRDLUMCWFGYPBVK'XJQZ")  # the fixture's char.dict order


def seeded_weights(shapes: dict, seed: int) -> dict:
    """The fixture's weights (same definition as the oracle script's): per sorted name, N(0, 2 / fan_in) for
    matrices and kernels, N(0, 0.01) for biases."""
    out = {}
    for i, name in enumerate(sorted(shapes)):
        shape = shapes[name]
        gen = torch.Generator().manual_seed(seed * 1000 + i)
        fan_in = int(torch.tensor(shape[1:]).prod()) if len(shape) > 1 else 0
        std = (2.0 / fan_in) ** 0.5 if fan_in else 0.1
        out[name] = std * torch.randn(shape, generator=gen)
    return out


def downstream(name: str) -> ctc.CTCDownstream:
    run = FIXTURES[name]
    vocabulary = ({"kind": "dictionary", "symbols": DICT_CHARS} if name == "asr" else
                  {"kind": "tokens", "symbols": list(sbcsae.CHARS), "mode": "character"})
    size = len(ctc.make_tokenizer(vocabulary).symbols)
    head = CTCHead(12, size, run["upstream_rate"], project_dim=14, select="Wav2Letter", total_rate=run["total_rate"])
    ds = ctc.CTCDownstream(head, vocabulary, None)
    weights = seeded_weights(run["shapes"], run["seed"])
    for key, value in weights.items():
        assert float(value.double().sum()) == pytest.approx(run["sums"][key], rel=1e-9, abs=1e-9), key
    ds.load_state_dict(ctc.from_original_state_dict(weights))
    return ds.eval()


@pytest.mark.parametrize("name", ["asr", "sbcsae"])
def test_wav2letter_equals_the_original(name):
    run = FIXTURES[name]
    ds = downstream(name)
    feats = run["features"]
    labels = [ctc.Transcript("", tuple(y)) for y in run["labels"]]
    with torch.no_grad():
        for i, f in enumerate(feats):  # one utterance per batch, as the original evaluates
            lengths = torch.tensor([len(f)])
            log_probs, out_len = ds.log_probs(f[None], lengths)
            single = run["singles"][i]
            assert int(out_len[0]) == single["length"]
            assert log_probs[0].shape == single["log_probs"].shape
            assert (log_probs[0] - single["log_probs"]).abs().max() <= 1e-5, i
            loss = float(ctc.ctc_loss(ds, f[None], lengths, labels[i:i + 1]))
            assert abs(loss - single["loss"]) <= 1e-5 * max(1.0, single["loss"]), (i, loss, single["loss"])
        # a padded batch: each utterance keeps its own result, so the loss is the mean of the single losses
        x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
        x = torch.cat([x, 5 * torch.randn(x.size(0), 7, x.size(2))], dim=1)  # garbage padding
        lengths = torch.tensor([len(f) for f in feats])
        batch, out_len = ds.log_probs(x, lengths)
        for i, n in enumerate(out_len.tolist()):
            assert (batch[i, :n] - run["singles"][i]["log_probs"][:n]).abs().max() <= 1e-5, i
        mean = sum(s["loss"] for s in run["singles"]) / len(feats)
        assert float(ctc.ctc_loss(ds, x, lengths, labels)) == pytest.approx(mean, rel=1e-5)
    # the original lets padding reach the last frames of the shorter utterances: its batch loss differs
    assert abs(run["batch_loss"] - mean) > 1e-3


def test_wav2letter_parameter_names_and_rates():
    model = Wav2Letter(8, 5, upstream_rate=160, total_rate=320)
    convs = [k for k in model.state_dict() if k.endswith(".weight")]
    assert convs == [f"acoustic_model.{2 * i}.weight" for i in range(11)]
    assert model.downsample_rate == 2 and Wav2Letter(8, 5, 160, total_rate=-1).downsample_rate == 1
    with pytest.raises(ValueError, match="total_rate 160 is below the upstream's hop 320"):
        Wav2Letter(8, 5, upstream_rate=320, total_rate=160)


def test_head_overrides_select_another_model():
    task = ctc.SBCSAE
    assert ctc.head_options(task.head, {"select": "Wav2Letter"}) == {"project_dim": 1024, "select": "Wav2Letter"}
    original = {"project_dim": 32, "zero_infinity": True, "select": "Wav2Letter", "Wav2Letter": {"total_rate": 640},
                "RNNs": {"dim": [8]}}  # the original's layout: only the selected model's section is read
    assert ctc.head_options(task.head, original) == {"project_dim": 32, "select": "Wav2Letter", "total_rate": 640}
    same = ctc.head_options(task.head, {"RNNs": {"dim": [8]}, "dropout": [0.0]})
    assert same == {**task.head, "dim": [8], "dropout": [0.0]}
    with pytest.raises(ValueError, match="zero_infinity"):
        ctc.head_options(task.head, {"zero_infinity": False})
    vocabulary = {"kind": "tokens", "symbols": list(sbcsae.CHARS), "mode": "character", "upstream_rate": 160,
                  "head": ctc.head_options(task.head, {"select": "Wav2Letter", "project_dim": 8})}
    ds = task.build_head(4, vocabulary)
    assert isinstance(ds.head.model, Wav2Letter) and ds.head.model.downsample_rate == 2
    bad = {**vocabulary, "head": ctc.head_options(task.head, {"select": "Wav2Letter", "dim": [8]})}
    with pytest.raises(ValueError, match="bad head option"):
        task.build_head(4, bad)
