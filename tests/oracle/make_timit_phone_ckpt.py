"""A tiny timit_phone ConvBank checkpoint built with the ORIGINAL class, and the original's dump (oracle venv).

    python make_timit_phone_ckpt.py ckpt OUT.ckpt [--upstream fbank] [--dropout 0.0]
    S3PRL_ORACLE_ALLOW_PICKLE=1 python make_timit_phone_ckpt.py dump -- <dump.py arguments>

The checkpoint has the runner's layout: ``Args`` (an argparse Namespace, as the real file: the original
loader needs ``S3PRL_ORACLE_ALLOW_PICKLE=1`` under torch >= 2.6), ``Config`` with
``downstream_expert.modelrc`` (ConvBank, kernels [3, 5, 7]; the original fails on even kernels) and
``Downstream`` (``model.``-prefixed ConvBank weights, perturbed). The front-end is a checkpoint-free
baseline (``fbank``) so that nothing has to be downloaded. Dropout is 0: the original applies dropout at
inference (``F.dropout`` without ``training=``), which would make its output random.

The original ``s3prl.hub`` does not import ``timit_posteriorgram_local``; the dump mode exposes that
function of the original timit_phone hubconf on ``s3prl.hub`` so dump.py can call it.
"""

import argparse
import os
import sys

ORACLE = os.environ.get("S3PRL_ORACLE_DIR", os.path.join(os.path.dirname(__file__), "../../../shared/tools/s3prl-oracle"))
sys.path.insert(0, os.path.abspath(ORACLE))

import make_ckpt  # noqa: E402  (oracle_env first: threads, seeds, shims)
import torch  # noqa: E402


def write(out: str, upstream: str, dropout: float, seed: int = 0) -> None:
    from s3prl.downstream.timit_phone.model import ConvBank
    import s3prl.hub as hub

    gen = torch.Generator().manual_seed(seed)
    conf = {"kernels": [3, 5, 7], "cnn_size": 8, "hidden_size": 16, "dropout": dropout}
    frontend = getattr(hub, upstream)()
    with torch.no_grad():
        dim = frontend([torch.randn(16000)])["last_hidden_state"].size(-1)
    model = ConvBank(dim, output_class_num=39, **conf)
    make_ckpt.perturb_(model, gen)
    config = {"downstream_expert": {"modelrc": {"select": "ConvBank", "ConvBank": conf},
                                    "datarc": {"sample_rate": 16000}},
              "runner": {"total_steps": 500000}, "optimizer": {"name": "AdamW", "lr": 2.0e-4}}
    torch.save({"Args": argparse.Namespace(upstream=upstream, downstream="timit_phone", mode="train"),
                "Config": config, "Step": 1000,
                "Downstream": {f"model.{k}": v for k, v in make_ckpt.state_dict_plain(model).items()}}, out)
    print(f"wrote {out} ({os.path.getsize(out) / 1e3:.1f} kB), front-end {upstream} ({dim}-d)")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "dump":
        import s3prl.hub as hub
        from s3prl.downstream.timit_phone import hubconf

        hub.timit_posteriorgram_local = hubconf.timit_posteriorgram_local
        import dump

        rest = argv[1:]
        return dump.main(rest[rest.index("--") + 1:] if "--" in rest else rest)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["ckpt"])
    ap.add_argument("out")
    ap.add_argument("--upstream", default="fbank")
    ap.add_argument("--dropout", type=float, default=0.0)
    args = ap.parse_args(argv)
    write(args.out, args.upstream, args.dropout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
