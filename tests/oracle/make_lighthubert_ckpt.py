"""LightHuBERT checkpoints written by the ORIGINAL s3prl classes, and dumps of the original (oracle venv).

    python make_lighthubert_ckpt.py ckpt OUT.pt --preset tiny|base [--name student_hubert|hubert_pruner] [--fp16]
    python make_lighthubert_ckpt.py dump --preset tiny|base [--subnet pruned|max] -- <dump.py arguments>

The original supernet tables are real-size only (768/512-wide search spaces, hard-coded) and its
constructor samples those subnets, so a tiny supernet cannot even be built without smaller tables. For
``--preset tiny`` this script therefore replaces the search space and the pruned subnet of
``LightHuBERTSupernetConfig`` (class properties, in this process only) by the tiny ones below, both when
writing the checkpoint and when dumping; the slicing code of the original is untouched. ``base`` uses
the original tables unchanged (a 95 M-parameter supernet). Every tensor is perturbed with the oracle's
``perturb_``; the file has the released layout ``{'cfg': {'model': ...}, 'model': ...}`` and, like the
released files, also ``label_embs_concat`` / ``final_proj.*`` (which the original loads non-strictly and
ignores). ``--fp16`` stores the weights in half precision (the released models were trained in fp16).
"""

import argparse
import os
import sys

ORACLE = os.environ.get("S3PRL_ORACLE_DIR", os.path.join(os.path.dirname(__file__), "../../../shared/tools/s3prl-oracle"))
sys.path.insert(0, os.path.abspath(ORACLE))

import make_ckpt  # noqa: E402  (oracle_env first: threads, seeds, shims)
import torch  # noqa: E402
from s3prl.upstream.lighthubert.lighthubert import (  # noqa: E402
    LightHuBERT,
    LightHuBERTConfig,
    LightHuBERTSupernetConfig,
)

TINY_SEARCH_SPACE = {"atten_dim": [64], "embed_dim": [32, 64], "ffn_ratio": [1.0, 1.5, 2.0], "heads_num": [1],
                     "layer_num": [10, 11, 12]}
TINY_SUBNET = {"atten_dim": [64] * 12, "embed_dim": 32, "ffn_embed": [32, 48, 64] * 4, "heads_num": [1] * 12,
               "layer_num": 10, "slide_wsz": ["global"] * 12}
TINY_MAX_SUBNET = {"atten_dim": [64] * 12, "embed_dim": 64, "ffn_embed": [128] * 12, "heads_num": [1] * 12,
                   "layer_num": 12, "slide_wsz": ["global"] * 12}
PRESETS = {
    "tiny": dict(conv_feature_layers="[(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2", encoder_embed_dim=64,
                 encoder_ffn_embed_dim=128, encoder_attention_heads=1, conv_pos=16, conv_pos_groups=4,
                 teacher_embed_dim=16),
    "base": dict(teacher_embed_dim=768),
}


def use_tiny_tables(subnet: str = "pruned"):
    LightHuBERTSupernetConfig.search_space = property(lambda self: TINY_SEARCH_SPACE)
    chosen = TINY_MAX_SUBNET if subnet == "max" else TINY_SUBNET
    LightHuBERTSupernetConfig.subnet = property(lambda self: chosen)


def write(out: str, preset: str, name: str, fp16: bool, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    model_cfg = dict(_name=name, supernet_type="base", extractor_mode="layer_norm", conv_bias=True,
                     dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, **PRESETS[preset])
    if name == "hubert_pruner":
        model_cfg["pruner_supernet"] = "config/supernet/Supernet-Base.yaml"
    cfg = LightHuBERTConfig(model_cfg)
    model = LightHuBERT(cfg)
    make_ckpt.perturb_(model, gen)
    state = make_ckpt.state_dict_plain(model.eval())
    final_dim = 16
    state["label_embs_concat"] = torch.randn(24, final_dim, generator=gen)
    state["final_proj.weight"] = torch.randn(final_dim, cfg.encoder_embed_dim, generator=gen)
    state["final_proj.bias"] = torch.randn(final_dim, generator=gen)
    if fp16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    full_cfg = {k: v for k, v in vars(cfg).items()}
    full_cfg.update(model_cfg)
    torch.save({"cfg": {"model": full_cfg, "task": {"_name": "hubert_pretraining", "normalize": True}},
                "model": state}, out)
    # load it back through the original hub entry: strict=False there, so check every weight arrived
    import s3prl.hub as hub

    expert = hub.lighthubert_local(ckpt=out)
    loaded = expert.model.state_dict()
    bad = [k for k, v in state.items() if k in loaded and not torch.equal(loaded[k], v.float())]
    missing = [k for k in loaded if k not in state]
    assert not bad and not missing, (bad[:5], missing[:5])
    print(f"wrote {out}: {sum(v.numel() for v in state.values())} values, {os.path.getsize(out) / 1e6:.2f} MB")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "dump":
        rest = argv[1:]
        sep = rest.index("--") if "--" in rest else len(rest)
        opts = argparse.ArgumentParser()
        opts.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
        opts.add_argument("--subnet", choices=["pruned", "max"], default="pruned",
                          help="tiny only: the subnet the patched tables give to a hubert_pruner checkpoint")
        opts = opts.parse_args(rest[:sep])
        if opts.preset == "tiny":
            use_tiny_tables(opts.subnet)
        import dump

        return dump.main(rest[sep + 1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["ckpt"])
    ap.add_argument("out")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ap.add_argument("--name", choices=["student_hubert", "hubert_pruner"], default="hubert_pruner")
    ap.add_argument("--fp16", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.preset == "tiny":
        use_tiny_tables()
    write(args.out, args.preset, args.name, args.fp16, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
