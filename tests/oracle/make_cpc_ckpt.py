"""Tiny modified-CPC checkpoints written by the ORIGINAL s3prl classes (run in the oracle venv).

    python make_cpc_ckpt.py {released,variant} OUT.pt [--preset tiny|base] [--seed N]

``released``: the architecture of the Libri-light release (layerNorm = channel norm, 1-level LSTM);
``variant``: batchNorm encoder (running statistics measured then jittered), 2-level GRU read backwards
(``cpc_mode='reverse'``). Builds ``s3prl.upstream.cpc.model.CPCModel`` from the original's own
``get_default_cpc_config`` / ``getEncoder`` / ``getAR``, perturbs every tensor, saves the Libri-light
format ``{'config': vars(args), 'weights': model.state_dict()}`` and reloads it through the original
``cpc_local`` entry as a check. ``--preset base``: the released sizes (256-d encoder and LSTM).
"""

import argparse
import os
import sys

ORACLE = os.environ.get("S3PRL_ORACLE_DIR", os.path.join(os.path.dirname(__file__), "../../../shared/tools/s3prl-oracle"))
sys.path.insert(0, os.path.abspath(ORACLE))

import make_ckpt  # noqa: E402  (oracle_env first: threads, seeds, shims)
import torch  # noqa: E402
from s3prl.upstream.cpc.cpc_default_config import get_default_cpc_config  # noqa: E402
from s3prl.upstream.cpc.feature_loader import getAR, getEncoder  # noqa: E402
from s3prl.upstream.cpc.model import CPCModel  # noqa: E402

VARIANTS = {
    "released": dict(hiddenEncoder=16, hiddenGar=24, normMode="layerNorm", arMode="LSTM", nLevelsGRU=1),
    "variant": dict(hiddenEncoder=16, hiddenGar=12, normMode="batchNorm", arMode="GRU", nLevelsGRU=2,
                    cpc_mode="reverse"),
}


def main(variant: str, out: str, preset: str = "tiny", seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    args = get_default_cpc_config()
    for key, value in VARIANTS[variant].items():
        setattr(args, key, value)
    if preset == "base":
        args.hiddenEncoder = args.hiddenGar = 256
    model = CPCModel(getEncoder(args), getAR(args))
    make_ckpt.perturb_(model, gen)

    def calibrate():
        model(torch.randn(2, 1, 16000, generator=gen) * 0.1, None)

    make_ckpt.randomize_batchnorm_stats_(model, gen, calibrate)
    state = make_ckpt.state_dict_plain(model.eval())
    torch.save({"config": dict(vars(args)), "weights": state}, out)
    import s3prl.hub as hub  # load check with the original entry

    loaded = hub.cpc_local(ckpt=out).model.state_dict()
    assert set(loaded) == set(state) and all(torch.equal(state[k], loaded[k]) for k in state), "reload differs"
    print(f"{variant}: {out} ({os.path.getsize(out) / 1e3:.0f} kB, {len(state)} tensors) load check ok")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("out")
    parser.add_argument("--preset", choices=["tiny", "base"], default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.variant, args.out, args.preset, args.seed)
