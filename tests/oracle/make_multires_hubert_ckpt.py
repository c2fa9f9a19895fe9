"""A tiny MR-HuBERT checkpoint written by the ORIGINAL s3prl classes (run in the oracle venv).

    python make_multires_hubert_ckpt.py OUT.pt --preset two_res|three_res_plain [--seed N]

Builds the original ``MultiresHubertModel`` with a tiny configuration, perturbs every tensor with the
oracle's ``perturb_`` and saves it in the s3prl-converted layout that ``multires_hubert_local`` reads
(``task_cfg``, ``model_cfg``, ``model_weight``, ``dictionaries_symbols``), then loads it back through the
original hub entry (strict) to check the format.

* ``two_res``: label_rate_ratios [1, 2] (the released layout), ConvAdapter resampling, post-LN,
  group-norm CNN, one layer per stack, no waveform normalisation.
* ``three_res_plain``: ratios [1, 2, 1, 2], plain down/up-samplers, pre-LN, layer-norm CNN with bias,
  ``override_encoder_layers`` [1, 2, 1, 1, 2] (asymmetric stacks), waveform normalisation.
"""

import argparse
import dataclasses
import os
import sys

ORACLE = os.environ.get("S3PRL_ORACLE_DIR", os.path.join(os.path.dirname(__file__), "../../../shared/tools/s3prl-oracle"))
sys.path.insert(0, os.path.abspath(ORACLE))

import make_ckpt  # noqa: E402  (oracle_env first: threads, seeds, shims)
import torch  # noqa: E402
from s3prl.upstream.multires_hubert.hubert_model import (  # noqa: E402
    MultiresHubertConfig,
    MultiresHubertModel,
    MultiresHubertPretrainingConfig,
)

TINY = dict(conv_feature_layers="[(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2", encoder_embed_dim=32,
            encoder_ffn_embed_dim=64, encoder_attention_heads=4, conv_pos=16, conv_pos_groups=4, final_dim=16,
            dropout=0.0, attention_dropout=0.0, encoder_layerdrop=0.0, label_rate=50)
PRESETS = {
    "two_res": (dict(TINY, label_rate_ratios=[1, 2], encoder_layers=1), dict(normalize=False)),
    "three_res_plain": (dict(TINY, label_rate_ratios=[1, 2, 1, 2], encoder_layers=1, use_plain_updownsample=True,
                             layer_norm_first=True, extractor_mode="layer_norm", conv_bias=True,
                             override_encoder_layers="[1, 2, 1, 1, 2]"), dict(normalize=True)),
}


def main(out: str, preset: str, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    model_kw, task_kw = PRESETS[preset]
    cfg = MultiresHubertConfig(**model_kw)
    task = MultiresHubertPretrainingConfig(label_rate=50, label_rate_ratios=model_kw["label_rate_ratios"], **task_kw)
    n_res = len(model_kw["label_rate_ratios"]) // 2 + 1
    symbols = [["<s>", "<pad>", "</s>", "<unk>"] + [str(i) for i in range(6 + r)] for r in range(n_res)]
    model = MultiresHubertModel(cfg, task, symbols)
    make_ckpt.perturb_(model, gen)
    torch.save({
        "task_cfg": make_ckpt.plain(dict(_name="multires_hubert_pretraining", data="/path",
                                         **dataclasses.asdict(task))),
        "model_cfg": make_ckpt.plain(dict(_name="multires_hubert", **dataclasses.asdict(cfg))),
        "model_weight": make_ckpt.state_dict_plain(model.eval()),
        "dictionaries_symbols": symbols,
    }, out)
    import s3prl.hub as hub

    expert = hub.multires_hubert_local(ckpt=out)
    loaded, saved = expert.model.state_dict(), torch.load(out, weights_only=True)["model_weight"]
    assert all(torch.equal(loaded[k], v) for k, v in saved.items()) and set(loaded) == set(saved)
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.2f} MB, {sum(v.numel() for v in saved.values())} values)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="two_res")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    main(args.out, args.preset, args.seed)
