"""A tiny wav2vec2-conformer checkpoint written by the ORIGINAL s3prl classes (run in the oracle venv).

    python make_conformer_ckpt.py {rel_pos,rope} OUT.pt [--post-ln]

The oracle's make_ckpt.py has no conformer preset; this builds the original ``Wav2Vec2Model`` with
``layer_type="conformer"`` (ESPnet attention, as the released LL_relpos / LL_rope models), perturbs every
tensor with make_ckpt's own helpers (BatchNorm statistics measured, then jittered; the rope ``inv_freq``
buffer is perturbed too, so a model that rebuilds it instead of loading it fails), and saves it in the
s3prl-converted layout that ``wav2vec2_local`` reads.
"""

import argparse
import dataclasses
import os
import sys

ORACLE = os.environ.get("S3PRL_ORACLE_DIR", os.path.join(os.path.dirname(__file__), "../../../shared/tools/s3prl-oracle"))
sys.path.insert(0, os.path.abspath(ORACLE))

import make_ckpt  # noqa: E402  (oracle_env first: threads, seeds, shims)
import torch  # noqa: E402
from s3prl.upstream.wav2vec2.wav2vec2_model import (  # noqa: E402
    AudioPretrainingConfig,
    Wav2Vec2Config,
    Wav2Vec2Model,
)


def main(pos_enc_type: str, out: str, post_ln: bool, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    cfg = Wav2Vec2Config(
        extractor_mode="layer_norm", conv_bias=True, layer_norm_first=not post_ln,
        conv_feature_layers="[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2",
        encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=4,
        final_dim=16, latent_vars=8, conv_pos=16, conv_pos_groups=4,
        layer_type="conformer", pos_enc_type=pos_enc_type, attn_type="espnet", depthwise_conv_kernel_size=31,
        dropout=0.0, attention_dropout=0.0, encoder_layerdrop=0.0, dropout_input=0.0, dropout_features=0.0,
    )
    task = AudioPretrainingConfig(sample_rate=16000, normalize=True)
    model = Wav2Vec2Model(cfg)
    make_ckpt.perturb_(model, gen)

    def calibrate():
        model.extract_features(torch.randn(2, 16000, generator=gen) * 0.1, padding_mask=None, mask=False)

    make_ckpt.randomize_batchnorm_stats_(model, gen, calibrate)
    torch.save({
        "task_cfg": dict(_name="audio_pretraining", data="/path/to/manifest", **dataclasses.asdict(task)),
        "model_cfg": dict(_name="wav2vec2", **dataclasses.asdict(cfg)),
        "model_weight": make_ckpt.state_dict_plain(model.eval()),
    }, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pos_enc_type", choices=["rel_pos", "rope"])
    parser.add_argument("out")
    parser.add_argument("--post-ln", action="store_true", help="layer_norm_first=False")
    args = parser.parse_args()
    main(args.pos_enc_type, args.out, args.post_ln)
