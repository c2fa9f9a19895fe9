"""Tiny DiscreteBERT (RoBERTa over vq-wav2vec k-means units) checkpoints written by the ORIGINAL s3prl
classes (run in the oracle venv).

    python make_roberta_ckpt.py {released,preln} OUT.pt --kmeans KMEANS.pt [--preset tiny|base] [--seed N]

Builds the original ``RobertaEncoder`` / ``RobertaModel`` of ``s3prl.upstream.roberta.roberta_model`` (s3prl's
own copy of fairseq's code: no fairseq needed) over the original ``Dictionary``, with a dictionary of
the "i-j" unit pairs of the tiny k-means model KMEANS.pt (made by make_wav2vec_ckpt.py vq_kmeans; a few pairs
are left out so that ``<unk>`` occurs), perturbs every tensor and saves the s3prl-converted layout
``{task_cfg, model_cfg (argparse.Namespace), model_weight, text_dictionary}``.

``released``: post-LN, learned positions, embedding LayerNorm, unscaled embeddings (RoBERTa base), stored
with the OLD fairseq key names (``decoder.*``, ``emb_layer_norm``, fused ``in_proj_weight``) that the
original upgrades at load time. ``preln``: pre-LN with a final LayerNorm, sinusoidal positions, no embedding
LayerNorm, embeddings scaled by sqrt(dim), current key names. ``max_positions`` is small (24 tokens), so the
original's chunking over time is exercised. Reloaded with the original ``load_converted_model`` as a check.
``--preset base``: RoBERTa base sizes (12 layers, 768-d, 512 positions) over a dictionary of 20000 unit pairs.
"""

import argparse
import os
import random
import sys
import tempfile

ORACLE = os.environ.get("S3PRL_ORACLE_DIR", os.path.join(os.path.dirname(__file__), "../../../shared/tools/s3prl-oracle"))
sys.path.insert(0, os.path.abspath(ORACLE))

import make_ckpt  # noqa: E402  (oracle_env first: threads, seeds, shims)
import torch  # noqa: E402
from s3prl.upstream.roberta.convert import load_converted_model  # noqa: E402
from s3prl.upstream.roberta.dictionary import Dictionary  # noqa: E402
from s3prl.upstream.roberta.roberta_model import RobertaEncoder, RobertaModel  # noqa: E402

COMMON = dict(arch="roberta_base", encoder_layers=2, encoder_embed_dim=16, encoder_ffn_embed_dim=32,
              encoder_attention_heads=2, max_positions=24, tokens_per_sample=24, dropout=0.0, attention_dropout=0.0,
              activation_dropout=0.0, activation_fn="gelu", data="/path/to/units", criterion="masked_lm")
BASE = dict(encoder_layers=12, encoder_embed_dim=768, encoder_ffn_embed_dim=3072, encoder_attention_heads=12,
            max_positions=512, tokens_per_sample=512)
VARIANTS = {
    "released": dict(COMMON),
    "preln": dict(COMMON, encoder_normalize_before=True, encoder_learned_pos=False, layernorm_embedding=False,
                  no_scale_embedding=False),
}


def dictionary_text(num_vars: int, groups: int, gen: random.Random, size: int | None = None) -> str:
    pairs = [f"{i}-{j}" for i in range(num_vars) for j in range(num_vars)]
    assert groups == 2
    gen.shuffle(pairs)
    kept = pairs[: size or len(pairs) - 4]  # the others never occur in training: they map to <unk>
    return "".join(f"{p} {1000 - 10 * n}\n" for n, p in enumerate(kept))


def old_key_names(state: dict) -> dict:
    """Current fairseq names -> the 2019 ones the released bert_kmeans.pt has (upgraded by fairseq at load)."""
    out, fused = {}, {}
    for key, value in state.items():
        key = key.replace("encoder.", "decoder.", 1).replace(".layernorm_embedding.", ".emb_layer_norm.")
        if ".self_attn." in key and key.rsplit(".", 2)[-2] in ("q_proj", "k_proj", "v_proj"):
            prefix, proj, kind = key.rsplit(".", 2)
            fused.setdefault((prefix, kind), {})[proj[0]] = value
            continue
        out[key] = value
    for (prefix, kind), parts in fused.items():
        out[f"{prefix}.in_proj_{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def main(variant: str, out: str, kmeans: str, preset: str = "tiny", seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    km = torch.load(kmeans, map_location="cpu", weights_only=True)["model_cfg"]
    text = dictionary_text(km["vq_vars"], km["vq_groups"], random.Random(seed), 20000 if preset == "base" else None)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(text)
    dictionary = Dictionary.load(f.name)
    os.unlink(f.name)
    dictionary.add_symbol("<mask>")
    conf = dict(VARIANTS[variant], **(BASE if preset == "base" else {}))
    args = argparse.Namespace(**conf)
    model = RobertaModel(args, RobertaEncoder(args, dictionary))
    make_ckpt.perturb_(model, gen)
    model.encoder.sentence_encoder.version.fill_(3)  # a format marker, not a weight: keep it exact
    marker = getattr(model.encoder.sentence_encoder.embed_positions, "_float_tensor", None)
    if marker is not None:  # sinusoidal positions' dtype marker: uninitialised memory, make the file reproducible
        marker.fill_(0)
    state = make_ckpt.state_dict_plain(model.eval())
    if variant == "released":  # 2019 files: old names, and no version marker
        state = old_key_names({k: v for k, v in state.items() if not k.endswith(".version")})
    task_cfg = {"_name": "masked_lm", "data": "/path/to/units", "seed": 1, "tokens_per_sample": 24}
    torch.save({"task_cfg": task_cfg, "model_cfg": argparse.Namespace(**conf), "model_weight": state,
                "text_dictionary": text}, out)
    loaded, _ = load_converted_model(out)  # load check with the original loader (strict, after its upgrades)
    ref = model.state_dict()
    differ = [k for k, v in loaded.state_dict().items()  # markers the loader re-creates are not compared
              if not k.endswith(("_float_tensor", ".version")) and not torch.equal(ref[k], v)]
    assert not differ, f"reload differs: {differ}"
    print(f"{variant}: {out} ({os.path.getsize(out) / 1e3:.0f} kB, {len(state)} tensors, "
          f"{len(dictionary)} symbols) load check ok")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("out")
    parser.add_argument("--kmeans", required=True, help="the tiny vq-wav2vec k-means checkpoint (its code book size)")
    parser.add_argument("--preset", choices=["tiny", "base"], default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.variant, args.out, args.kmeans, args.preset, args.seed)
