"""Tiny wav2vec / vq-wav2vec checkpoints written by the ORIGINAL s3prl classes (run in the oracle venv).

    python make_wav2vec_ckpt.py {wav2vec,vq_gumbel,vq_kmeans} OUT.pt [--preset tiny|base] [--seed N]

Builds the original ``s3prl.upstream.wav2vec.wav2vec_model.Wav2VecModel`` (s3prl's own copy of fairseq's
code: no fairseq needed) with a tiny configuration that keeps the real kernel/stride layout (stride 160)
and exercises the switches of the released models (wav2vec: relu, log compression, skip connections,
a context network whose width changes so residual projections exist, project_features='same';
vq-wav2vec: gelu, zero padding, no conv bias, shared codebooks; k-means also without norm affines),
perturbs every tensor with the oracle's make_ckpt helpers, saves the s3prl-converted layout
``{task_cfg, model_cfg, model_weight}`` and reloads it through the original hub entry as a check.
``--preset base``: the released sizes (512 channels, 12 context convs of kernel 2..13, 320 code words per group).
"""

import argparse
import dataclasses
import os
import sys

ORACLE = os.environ.get("S3PRL_ORACLE_DIR", os.path.join(os.path.dirname(__file__), "../../../shared/tools/s3prl-oracle"))
sys.path.insert(0, os.path.abspath(ORACLE))

import make_ckpt  # noqa: E402  (oracle_env first: threads, seeds, shims)
import torch  # noqa: E402
from s3prl.upstream.wav2vec.wav2vec_model import Wav2VecConfig, Wav2VecModel  # noqa: E402
from s3prl.upstream.wav2vec2.wav2vec2_model import AudioPretrainingConfig  # noqa: E402

FEATURE_LAYERS = "[(16, 10, 5), (16, 8, 4), (16, 4, 2), (16, 4, 2), (16, 4, 2), (16, 1, 1), (16, 1, 1), (16, 1, 1)]"
COMMON = dict(conv_feature_layers=FEATURE_LAYERS, prediction_steps=3, num_negatives=2, dropout=0.0,
              dropout_features=0.0, dropout_agg=0.0, residual_scale=0.5)
VARIANTS = {
    "wav2vec": dict(COMMON, infonce=False, activation="relu", log_compression=True, skip_connections_feat=True,
                    skip_connections_agg=True, project_features="same",
                    conv_aggregator_layers="[(16, 2, 1), (24, 3, 1), (24, 4, 1), (16, 5, 1)]"),
    "vq_gumbel": dict(COMMON, infonce=False, activation="gelu", log_compression=False, skip_connections_agg=True,
                      agg_zero_pad=True, no_conv_bias=True, vq_type="gumbel", vq_vars=8, vq_groups=2, vq_depth=2,
                      combine_groups=True, conv_aggregator_layers="[(16, 2, 1), (16, 3, 1), (16, 4, 1)]"),
    "vq_kmeans": dict(COMMON, infonce=False, activation="gelu", log_compression=False, skip_connections_agg=True,
                      non_affine_group_norm=True, vq_type="kmeans", vq_vars=8, vq_groups=2, combine_groups=True,
                      conv_aggregator_layers="[(16, 2, 1), (16, 3, 1), (16, 4, 1)]"),
}
BASE = dict(conv_feature_layers=FEATURE_LAYERS.replace("16", "512"),
            conv_aggregator_layers=str([(512, k, 1) for k in range(2, 14)]))
BASE_VARIANTS = {
    "wav2vec": dict(VARIANTS["wav2vec"], skip_connections_feat=False, project_features="none", **BASE),
    "vq_gumbel": dict(VARIANTS["vq_gumbel"], agg_zero_pad=False, no_conv_bias=False, vq_vars=320, **BASE),
    "vq_kmeans": dict(VARIANTS["vq_kmeans"], non_affine_group_norm=False, vq_vars=320, **BASE),
}
ENTRY = {"wav2vec": "wav2vec_custom", "vq_gumbel": "vq_wav2vec_custom", "vq_kmeans": "vq_wav2vec_custom"}


def main(variant: str, out: str, preset: str = "tiny", seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    cfg = Wav2VecConfig(**(VARIANTS if preset == "tiny" else BASE_VARIANTS)[variant])
    model = Wav2VecModel(cfg)
    make_ckpt.perturb_(model, gen)
    task = AudioPretrainingConfig(sample_rate=16000, normalize=False)
    torch.save({
        "task_cfg": dict(_name="audio_pretraining", data="/path/to/manifest", **dataclasses.asdict(task)),
        "model_cfg": dict(_name="wav2vec", **dataclasses.asdict(cfg)),
        "model_weight": make_ckpt.state_dict_plain(model.eval()),
    }, out)
    import s3prl.hub as hub  # load check with the original entry (strict load_state_dict inside)

    expert = getattr(hub, ENTRY[variant])(ckpt=out)
    ref = model.state_dict()
    loaded = expert.model.state_dict()
    assert all(torch.equal(ref[k], loaded[k]) for k in ref), "reloaded weights differ"
    print(f"{variant}: {out} ({os.path.getsize(out) / 1e3:.0f} kB, {len(ref)} tensors) load check ok")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("out")
    parser.add_argument("--preset", choices=["tiny", "base"], default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.variant, args.out, args.preset, args.seed)
