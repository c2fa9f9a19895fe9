"""Statistics of FRESH fairseq 0.12.2 wav2vec 2.0 models, for tests/test_wav2vec2_init.py (our
``s3prl.wav2vec2.fairseq_init.init_like_fairseq``). Run from the project root IN THE FAIRSEQ ORACLE VENV:

    O=../shared/tools/fairseq-oracle; PY=$(bash $O/setup.sh)
    $PY tests/oracle/make_w2v_init_fixtures.py [tests/fixtures/w2v_init_oracle.json]

Writes one small JSON file, everything computed by fairseq's own ``Wav2Vec2Model.__init__`` (nothing is copied):

* ``base``: a fresh base-size model of the seed's ``base`` pre-training recipe (``quantize_targets``,
  ``final_dim`` 256; fairseq's other defaults), seed 0: for every parameter (fairseq's names) its shape, element
  count, mean, standard deviation and kurtosis (E[(x - mean)^4] / std^4: 3 for a normal, 1.8 for a uniform);
* ``tiny``: the tiny architecture of tests/oracle/make_w2v_train_fixtures.py; for seeds 0..SEEDS-1 a fresh model's
  ``features_pen`` (mean square of the CNN features, fairseq's ``net_output["features_pen"]`` of a training
  forward) on two fixed waveforms (``waveforms()``, a formula: no random numbers), fairseq's order of magnitude
  for the first update's feature penalty.
"""

from __future__ import annotations

import json
import math
import os
import sys

import torch

SEEDS = 16
SAMPLES = 16000
TINY = dict(encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=4,
            conv_feature_layers="[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32,2,2)] * 2", conv_pos=16,
            conv_pos_groups=4, final_dim=16, latent_vars=8, num_negatives=10, mask_length=3,
            quantize_targets=True, feature_grad_mult=0.1, dropout_input=0.1, dropout_features=0.1,
            encoder_layerdrop=0.05)


def waveforms() -> torch.Tensor:
    """(2, SAMPLES) chirps + harmonics at speech-like levels; the test builds the same tensor."""
    t = torch.arange(SAMPLES, dtype=torch.float64) / 16000
    rows = []
    for i in range(2):
        x = 0.3 * torch.sin(2 * math.pi * (120 + 60 * i) * t * (1 + 0.5 * t))
        x += 0.1 * torch.sin(2 * math.pi * 1300 * t + i) * torch.sin(2 * math.pi * 3 * t)
        rows.append(x)
    return torch.stack(rows).float()


def stats(x: torch.Tensor) -> dict:
    x = x.detach().double().flatten()
    mean, std = x.mean().item(), x.std(unbiased=False).item()
    kurt = ((x - mean) ** 4).mean().item() / std**4 if std > 0 else 0.0
    return {"n": x.numel(), "mean": mean, "std": std, "kurtosis": kurt}


def main(out: str) -> None:
    from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    base = Wav2Vec2Model(Wav2Vec2Config(quantize_targets=True, final_dim=256))
    table = {name: {"shape": list(p.shape), **stats(p)} for name, p in base.state_dict().items()}
    pens = []
    for seed in range(SEEDS):
        torch.manual_seed(seed)
        model = Wav2Vec2Model(Wav2Vec2Config(**TINY)).train()
        with torch.no_grad():
            net = model(waveforms(), padding_mask=None)
        pens.append(float(net["features_pen"]))
    import fairseq

    data = {"fairseq": fairseq.__version__, "torch": torch.__version__, "base_config": {"quantize_targets": True,
            "final_dim": 256}, "base": table, "tiny_config": TINY, "tiny_features_pen": pens}
    with open(out, "w") as f:
        json.dump(data, f, indent=0, sort_keys=True)
    print(f"wrote {out}: {len(table)} parameters; tiny features_pen {pens}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "fixtures",
                                                            "w2v_init_oracle.json"))
