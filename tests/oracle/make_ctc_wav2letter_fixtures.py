"""Oracle side of the Wav2Letter CTC head: run IN THE ORACLE VENV, writes tests/fixtures/oracle/ctc_wav2letter.pt.

    O=../shared/tools/s3prl-oracle; PY=$(bash $O/setup.sh)
    $PY -m pip install --target /tmp/oracle_extra editdistance pandas python-dateutil --no-deps
    PYTHONPATH=/tmp/oracle_extra $PY tests/oracle/make_ctc_wav2letter_fixtures.py \
        tests/fixtures/oracle/ctc_wav2letter.pt

The original ``Wav2Letter`` (``downstream/asr/model.py``) has ~21 M parameters, too many for a fixture: every
weight is set instead from a seeded generator by :func:`seeded_weights` (the test regenerates them the same way
and checks the per-tensor sums recorded here). Recorded, from the ORIGINAL s3prl 0.4.18 experts, in eval mode:

* ``asr``: the asr expert with ``modelrc.select: Wav2Letter`` (fairseq char dictionary, upstream hop 160 samples,
  ``total_rate`` 320: first stride 2);
* ``sbcsae``: the ctc expert with the original ``sbcsae.yaml`` model section and ``select: Wav2Letter``
  (``cv_vocab/en_char.txt`` characters, hop 320: stride 1);

each with the features, labels, and for every utterance alone (batch of one) the log-probabilities, output
length and the expert's CTC loss, plus the expert's loss on the padded batch.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ORACLE_DIR = Path(__file__).resolve().parents[3] / "shared" / "tools" / "s3prl-oracle"
sys.path.insert(0, os.environ.get("S3PRL_ORACLE_DIR", str(ORACLE_DIR)))
import oracle_env  # noqa: E402,F401  (threads, seeds, shims)
import torch  # noqa: E402

from s3prl.downstream.asr.dictionary import Dictionary  # noqa: E402
from s3prl.downstream.asr.expert import DownstreamExpert as AsrExpert  # noqa: E402
from s3prl.downstream.ctc.expert import DownstreamExpert as CtcExpert  # noqa: E402

DICT_CHARS = list("|ETAONIHSRDLUMCWFGYPBVK'XJQZ")
EN_CHARS = [" ", "'", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ"]  # cv_vocab/en_char.txt
WORDS = ["HELLO WORLD", "A", "IT IS"]
LENGTHS = [41, 30, 19]
DIM = 12


def seeded_weights(state_dict: dict, seed: int) -> dict:
    """Weights drawn tensor by tensor (sorted names): N(0, 2 / fan_in) for matrices and kernels, N(0, 0.01) for
    biases. The test module has the same function (it is the definition of the fixture's weights)."""
    out = {}
    for i, name in enumerate(sorted(state_dict)):
        shape = state_dict[name].shape
        gen = torch.Generator().manual_seed(seed * 1000 + i)
        fan_in = int(torch.tensor(shape[1:]).prod()) if len(shape) > 1 else 0
        std = (2.0 / fan_in) ** 0.5 if fan_in else 0.1
        out[name] = std * torch.randn(shape, generator=gen)
    return out


def run(expert, features: list, labels: list, seed: int) -> dict:
    state = {k: v for k, v in expert.state_dict().items() if k != "best_score"}
    weights = seeded_weights(state, seed)
    expert.load_state_dict({**expert.state_dict(), **weights})
    expert.eval()
    singles = []
    with torch.no_grad():
        for i, f in enumerate(features):
            logits, out_len = expert.model(expert.projector(f[None].clone()), torch.IntTensor([len(f)]))
            loss = expert("test", [f.clone()], [labels[i]], [f"utt{i}"], defaultdict(list))
            singles.append({"log_probs": torch.log_softmax(logits, dim=-1)[0], "length": int(out_len[0]),
                            "loss": float(loss)})
        batch_loss = expert("test", [f.clone() for f in features], labels, [f"utt{i}" for i in range(len(features))],
                            defaultdict(list))
    return {"seed": seed, "sums": {k: float(v.double().sum()) for k, v in weights.items()},
            "shapes": {k: list(v.shape) for k, v in weights.items()}, "features": features,
            "labels": [list(map(int, y)) for y in labels], "singles": singles, "batch_loss": float(batch_loss)}


def main(path: str) -> None:
    torch.manual_seed(0)
    features = [torch.randn(n, DIM) for n in LENGTHS]
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        (tmp / "char.dict").write_text("".join(f"{c} {1000 - i}\n" for i, c in enumerate(DICT_CHARS)))
        (tmp / "en_char.txt").write_text("\n".join(EN_CHARS))
        d = Dictionary.load(str(tmp / "char.dict"))
        asr_labels = [d.encode_line(" ".join(list(w.replace(" ", "|"))) + " |", line_tokenizer=lambda x: x.split(),
                                    add_if_not_exist=False).tolist() for w in WORDS]
        cfg = {"datarc": {"dict_path": str(tmp / "char.dict"), "zero_infinity": True,
                          "decoder_args": {"decoder_type": "None"}},
               "modelrc": {"project_dim": 14, "select": "Wav2Letter", "Wav2Letter": {"total_rate": 320}}}
        out = {"asr": {**run(AsrExpert(DIM, 160, cfg, str(tmp)), features, asr_labels, 1), "upstream_rate": 160,
                       "total_rate": 320}}
        ctc_cfg = {"corpus": {"name": "sbcsae"}, "text": {"mode": "character", "vocab_file": str(tmp / "en_char.txt")},
                   "model": {"project_dim": 14, "zero_infinity": True, "select": "Wav2Letter",
                             "Wav2Letter": {"total_rate": 320}},
                   "metric": ["wer"], "metric_higher_better": False}
        expert = CtcExpert(DIM, 320, ctc_cfg, str(tmp))
        ctc_labels = [expert.tokenizer.encode(w) for w in WORDS]
        out["sbcsae"] = {**run(expert, features, ctc_labels, 2), "upstream_rate": 320, "total_rate": 320}
    torch.save(out, path)
    print(f"wrote {path}: " + ", ".join(f"{k}: losses {[round(s['loss'], 4) for s in v['singles']]} batch "
                                         f"{v['batch_loss']:.4f}" for k, v in out.items()))


if __name__ == "__main__":
    main(sys.argv[1])
