"""DeCoAR / DeCoAR 2.0 checkpoints written by the ORIGINAL s3prl classes, and dumps of the original upstream
on them (run in the oracle venv).

    python make_decoar_ckpt.py ckpt {decoar,decoar2} OUT.pt [--preset tiny|base] [--seed N]
    python make_decoar_ckpt.py dump {decoar,decoar_layers,decoar2} [--preset tiny|base] -- DUMP.PY ARGS...

The oracle's make_ckpt.py has no DeCoAR family. The original classes hard-code their sizes (DeCoAR:
``Linear(80, 1024)`` + two 4-layer LSTMs of 1024; DeCoAR 2.0: the module-level ``args`` dict, 12 layers of
768), so the ``tiny`` preset shrinks them:

* DeCoAR: the original ``Decoar`` (``upstream/decoar`` and ``upstream/decoar_layers``) is built, then its
  ``post_extract_proj`` / LSTMs are swapped for the same modules of width ``TINY_DIM`` (4 layers kept);
  its ``forward`` and ``flipBatch`` are the original's, untouched.
* DeCoAR 2.0: the original ``args`` dict of ``upstream/decoar2/decoar2.py`` is updated before building.

The original experts build their model with these same classes, so ``dump`` applies the same change before
it runs the oracle's ``dump.py`` (the only stub; nothing else of the original code is replaced). ``base``
builds the released sizes unchanged (DeCoAR 270 MB, DeCoAR 2.0 340 MB: keep them out of the repository).

Every tensor is perturbed with make_ckpt's helpers; the file is ``{'model': state_dict}`` as the converted
``checkpoint_decoar.pt`` / ``checkpoint_decoar2.pt`` (DeCoAR keys in the ``forward_lstm.weight_ih_l0`` layout of
the stacked LSTM, which ``decoar_layers`` renames on load). It is then loaded through the original hub entry
and every stored weight is checked to have reached the model (the original loads non-strictly).
"""

import argparse
import contextlib
import io
import json
import os
import re
import sys
import zlib

ORACLE = os.environ.get("S3PRL_ORACLE_DIR",
                        os.path.join(os.path.dirname(__file__), "../../../shared/tools/s3prl-oracle"))
sys.path.insert(0, os.path.abspath(ORACLE))

import make_ckpt  # noqa: E402  (oracle_env first: threads, seeds, shims)
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from s3prl.upstream.decoar import decoar as decoar_model  # noqa: E402
from s3prl.upstream.decoar import expert as decoar_expert  # noqa: E402
from s3prl.upstream.decoar2 import decoar2 as decoar2_model  # noqa: E402
from s3prl.upstream.decoar_layers import decoar as decoar_layers_model  # noqa: E402
from s3prl.upstream.decoar_layers import expert as decoar_layers_expert  # noqa: E402

TINY_DIM = 16
TINY_DECOAR2 = {"encoder_embed_dim": 64, "encoder_layers": 2, "encoder_ffn_embed_dim": 128,
                "encoder_attention_heads": 1, "conv_pos": 16, "conv_pos_groups": 16}  # heads = dim // 64 as 768/12


class TinyDecoar(decoar_model.Decoar):
    """The original DeCoAR with width TINY_DIM (stacked 4-layer LSTMs, as the released model)."""

    def __init__(self):
        super().__init__()
        d = TINY_DIM
        self.post_extract_proj = nn.Linear(self.embed, d)
        self.forward_lstm = nn.LSTM(d, d, num_layers=self.encoder_layers, batch_first=True)
        self.backward_lstm = nn.LSTM(d, d, num_layers=self.encoder_layers, batch_first=True)


class TinyDecoarLayers(decoar_layers_model.Decoar):
    """The original decoar_layers model (one LSTM module per layer) with width TINY_DIM."""

    def __init__(self):
        super().__init__()
        d = TINY_DIM
        self.post_extract_proj = nn.Linear(self.embed, d)
        self.forward_lstms = nn.ModuleList(nn.LSTM(d, d, batch_first=True) for _ in range(self.encoder_layers))
        self.backward_lstms = nn.ModuleList(nn.LSTM(d, d, batch_first=True) for _ in range(self.encoder_layers))


def use_preset(preset: str) -> None:
    """Make the original experts build the preset's sizes."""
    if preset == "tiny":
        decoar_expert.Decoar = TinyDecoar
        decoar_layers_expert.Decoar = TinyDecoarLayers
        decoar2_model.args.update(TINY_DECOAR2)
    elif preset != "base":
        raise SystemExit(f"unknown preset {preset!r} (tiny or base)")


def build(family: str, preset: str, seed: int) -> dict:
    use_preset(preset)
    gen = torch.Generator().manual_seed(seed * 1000003 + zlib.crc32(family.encode()))
    model = decoar_expert.Decoar() if family == "decoar" else decoar2_model.Decoar2()
    make_ckpt.perturb_(model, gen)
    return {"model": make_ckpt.state_dict_plain(model.eval())}


def layers_name(key: str) -> str:
    """The key rename of the original decoar_layers expert (checked here against its loaded model)."""
    match = re.fullmatch(r"(forward|backward)_lstm\.(\w+)_l(\d+)", key)
    return f"{match[1]}_lstms.{match[3]}.{match[2]}_l0" if match else key


def verify(family: str, path: str, ckpt: dict) -> dict:
    """Load through the original hub entries; every stored weight must have reached the model."""
    import s3prl.hub as hub

    entries = ["decoar_local", "decoar_layers_local"] if family == "decoar" else ["decoar2_local"]
    report = {}
    for entry in entries:
        with contextlib.redirect_stdout(io.StringIO()):
            expert = getattr(hub, entry)(ckpt=path).eval()
        loaded = expert.model.state_dict()
        rename = layers_name if entry == "decoar_layers_local" else (lambda k: k)
        bad = [k for k, v in ckpt["model"].items() if not torch.equal(loaded.get(rename(k), torch.empty(0)), v)]
        unset = sorted(set(loaded) - {rename(k) for k in ckpt["model"]})
        with torch.no_grad():
            hs = expert([torch.randn(16000), torch.randn(12345)])["hidden_states"]
        report[entry] = {"checked": len(ckpt["model"]), "not_loaded": bad, "left_at_init": unset,
                         "num_hidden_states": len(hs), "finite": all(bool(torch.isfinite(h).all()) for h in hs),
                         "ok": not bad and not unset}
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ckpt")
    p.add_argument("family", choices=["decoar", "decoar2"])
    p.add_argument("out")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("dump")
    p.add_argument("family", choices=["decoar", "decoar_layers", "decoar2"])
    p.add_argument("--preset", default="tiny")
    argv = sys.argv[1:]
    rest = argv[argv.index("--") + 1 :] if "--" in argv else []  # everything after `--` goes to dump.py
    args = parser.parse_args(argv[: len(argv) - len(rest) - (1 if "--" in argv else 0)])
    if args.cmd == "dump":
        use_preset(args.preset)
        import dump

        return dump.main(["--name", f"{args.family}_local", *rest])
    ckpt = build(args.family, args.preset, args.seed)
    torch.save(ckpt, args.out)
    reloaded = torch.load(args.out, weights_only=True)
    report = verify(args.family, args.out, reloaded)
    print(json.dumps({"path": os.path.abspath(args.out), "bytes": os.path.getsize(args.out),
                      "params": make_ckpt.n_params(reloaded["model"]), "verify": report}, indent=1))
    return 0 if all(r["ok"] and r["finite"] for r in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
