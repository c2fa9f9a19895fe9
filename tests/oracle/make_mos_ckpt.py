"""A tiny ``mos_wav2vec2`` checkpoint and the ORIGINAL expert's scores (run in the oracle venv).

    python make_mos_ckpt.py FRONTEND.pt OUT.ckpt OUT.scores.pt [--kind wav2vec2|tera|apc] [--seed N]

FRONTEND.pt is a tiny wav2vec2 / tera / apc checkpoint written by the oracle's make_ckpt.py. The original
MOS expert builds its front-end with ``s3prl.hub.<kind>()`` (a download, impossible offline); here that hub
entry is replaced, in this process only, by ``<kind>_local(ckpt=FRONTEND.pt)`` (the same class, the tiny
architecture). The MOS checkpoint's ``Upstream`` is that expert's state dict with every tensor perturbed
again (so a loader that kept FRONTEND.pt's weights fails), ``Downstream`` a perturbed ``MosDownstream``
(attention pooling, clipping, judge embedding) and ``Config`` its modelrc. The original legacy expert is
then run on a few waveforms (shorter than, equal to and longer than its 1 s segments; stored as float16,
their values are exactly float16 numbers); the scores, the waveforms and the error the original
``S3PRLUpstream`` raises on this entry are saved. For ``tera`` the original
cannot load its own checkpoint under a current torchaudio (see ``skip_empty_melscale_reset``); the reference
is computed with that one step skipped.
"""

import argparse
import os
import sys

ORACLE = os.environ.get("S3PRL_ORACLE_DIR", os.path.join(os.path.dirname(__file__), "../../../shared/tools/s3prl-oracle"))
sys.path.insert(0, os.path.abspath(ORACLE))

import make_ckpt  # noqa: E402  (oracle_env first: threads, seeds, shims)
import torch  # noqa: E402

LENGTHS = (9000, 16000, 16001, 30500)


def skip_empty_melscale_reset():
    """The original replaces the TERA extracter's mel filterbank by an empty tensor before its strict load
    (right for the lazily-built buffer of torchaudio < 0.9); with a current torchaudio the buffer is built at
    init and that load fails. For a reference, load the Upstream without that one replacement."""
    from s3prl.upstream.mos_prediction.expert import UpstreamExpert
    import s3prl.hub as hub

    def get_mos_upstream(self):
        upstream = getattr(hub, self.upstream_type)()
        upstream.load_state_dict(self.checkpoint["Upstream"])
        return upstream

    UpstreamExpert._get_mos_upstream = get_mos_upstream


def main(frontend_ckpt: str, out: str, scores_out: str, kind: str = "wav2vec2", seed: int = 0) -> None:
    import s3prl.hub as hub
    from s3prl.upstream.mos_prediction.model import MosDownstream

    local = getattr(hub, f"{kind}_local")
    setattr(hub, kind, lambda *args, **kwargs: local(ckpt=frontend_ckpt))
    gen = torch.Generator().manual_seed(seed)
    expert = local(ckpt=frontend_ckpt)
    # the weights only: TERA's feature-extractor buffers (window, mel filterbank) are not model weights
    make_ckpt.perturb_(expert.transformer.model if kind == "tera" else expert, gen)
    with torch.no_grad():
        dim = expert([torch.randn(16000)])["hidden_states"][-1].size(-1)
    modelrc = {"projector_dim": 8, "clipping": kind != "apc", "attention_pooling": kind == "wav2vec2"}
    head = MosDownstream(upstream_dim=dim, **modelrc)
    make_ckpt.perturb_(head, gen)
    torch.save({"Upstream": make_ckpt.state_dict_plain(expert), "Downstream": make_ckpt.state_dict_plain(head),
                "Config": {"downstream_expert": {"modelrc": modelrc, "datarc": {"segments_durations": 1}}},
                "Step": 1000}, out)
    if kind == "tera":
        skip_empty_melscale_reset()
    mos = getattr(hub, f"mos_{kind}_local")(ckpt=out).eval()
    wave_gen = torch.Generator().manual_seed(1234)  # values exact in float16, so the file can store them so
    wavs = [(torch.randn(n, generator=wave_gen) * 0.1).half().float() for n in LENGTHS]
    with torch.no_grad():
        scores = mos([w.clone() for w in wavs])["scores"]
    try:
        from s3prl.nn import S3PRLUpstream

        S3PRLUpstream(f"mos_{kind}_local", path_or_url=out)
        error = None
    except Exception as e:  # the original's answer on this entry
        error = f"{type(e).__name__}: {e}"
    torch.save({"wavs": [w.half() for w in wavs], "scores": scores.float(), "s3prl_upstream_error": error},
               scores_out)
    print(f"wrote {out} ({os.path.getsize(out) / 1e3:.0f} kB); scores {scores.tolist()}; S3PRLUpstream: {error}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("frontend")
    ap.add_argument("out")
    ap.add_argument("scores_out")
    ap.add_argument("--kind", choices=["wav2vec2", "tera", "apc"], default="wav2vec2")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    main(args.frontend, args.out, args.scores_out, args.kind, args.seed)
