"""Tiny Mockingjay-family checkpoints for the code paths make_ckpt.py's presets do not cover (run in the oracle venv).

    python make_mockingjay_ckpt.py VARIANT OUT.ckpt        VARIANT: preln_fbank | mfcc_delta | linear_gamma |
                                                                    kaldi_mfcc | spec_augment

Each builds the ORIGINAL ``TransformerModel`` + ``TransformerSpecPredictionHead`` from the installed s3prl
with a tiny configuration, perturbs every tensor with make_ckpt's helpers, saves the pre-training runner's
layout and reloads the file through the original ``tera_local`` entry (the spec_augment, mockingjay and
audio_albert experts are the same class), checking that every stored weight reached the model.

* preln_fbank:  pre-LN, relu, Kaldi fbank + deltas + CMVN front-end (as tera_fbankBase), 3 uneven chunks
* mfcc_delta:   pre-LN with a shared layer (ALBERT), swish, eps 1e-5, STFT MFCC + 2 delta orders, no chunking
* linear_gamma: legacy layout (config under 'Config'), TensorFlow 'gamma'/'beta' LayerNorm names,
                STFT power spectrum + deltas, no log, no CMVN (digital silence gives all-zero frames, so the
                original's "first n non-zero-sum frames" attention mask cuts chunks short)
* kaldi_mfcc:   Kaldi MFCC, no 'delta' section (the original's Delta defaults to order 2), no CMVN
* spec_augment: the SpecAugment-Transformer recipe's config (task.mask_T/mask_F/...), log-mel
"""

import argparse
import copy
import os
import sys

ORACLE = os.environ.get("S3PRL_ORACLE_DIR", os.path.join(os.path.dirname(__file__), "../../../shared/tools/s3prl-oracle"))
sys.path.insert(0, os.path.abspath(ORACLE))

import make_ckpt  # noqa: E402  (oracle_env first: threads, seeds, shims)
import torch  # noqa: E402
from s3prl.upstream.baseline.extracter import get_extracter  # noqa: E402
from s3prl.upstream.baseline.preprocessor import get_preprocessor  # noqa: E402
from s3prl.upstream.mockingjay.model import (  # noqa: E402
    TransformerConfig,
    TransformerModel,
    TransformerSpecPredictionHead,
)

KALDI_SECTIONS = {
    "spectrogram": {"frame_length": 25.0, "frame_shift": 10.0},
    "fbank": {"num_mel_bins": 80, "frame_length": 25.0, "frame_shift": 10.0, "use_log_fbank": True},
    "mfcc": {"num_ceps": 13, "frame_length": 25.0, "frame_shift": 10.0},
}


def stft_audio(feat_type, log, delta, cmvn):
    feat = {"feat_type": feat_type, "channel": 0, "log": log, "delta": delta, "cmvn": cmvn}
    return {"target_level": -25, "win_ms": 25, "hop_ms": 10, "n_freq": 201, "n_mels": 80, "n_mfcc": 13,
            "input": feat, "target": {**feat, "feat_type": "mel", "channel": 1, "log": True, "delta": 0}}


def variant_config(name):
    transformer = {"input_dim": -1, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                   "intermediate_size": 64, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
                   "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02, "layer_norm_eps": 1.0e-12,
                   "share_layer": False, "pre_layer_norm": False}
    task = {"loss": "L1", "sequence_length": 100, "position_encoding_size": 32, "mask_proportion": 0.15,
            "mask_consecutive_min": 7, "mask_consecutive_max": 7, "mask_allow_overlap": True,
            "mask_bucket_ratio": 1.5, "mask_frequency": 0.2, "noise_proportion": 0.0}
    if name == "preln_fbank":
        transformer.update(pre_layer_norm=True, hidden_act="relu")
        task["sequence_length"] = 40
        audio = {"kaldi": {"feat_type": "fbank", **copy.deepcopy(KALDI_SECTIONS)},
                 "delta": {"order": 2, "win_length": 5}, "cmvn": {"use_cmvn": True}}
    elif name == "mfcc_delta":
        transformer.update(pre_layer_norm=True, share_layer=True, hidden_act="swish", layer_norm_eps=1e-5,
                           num_hidden_layers=3)
        task["sequence_length"] = 0
        audio = stft_audio("mfcc", False, 2, True)
    elif name == "linear_gamma":
        task["sequence_length"] = 64
        audio = stft_audio("linear", False, 1, False)  # exact zeros stay 0: the mask rule sees them
    elif name == "kaldi_mfcc":
        audio = {"kaldi": {"feat_type": "mfcc", **copy.deepcopy(KALDI_SECTIONS)}, "cmvn": {"use_cmvn": False}}
    elif name == "spec_augment":
        task = {"loss": "L1", "sequence_length": 100, "position_encoding_size": 32, "mask_T": 100, "mask_F": 9,
                "num_T": 2, "num_F": 2, "p": 1.0}
        audio = stft_audio("mel", True, 0, True)
    else:
        raise SystemExit(f"unknown variant {name}")
    return {"transformer": transformer, "task": task, "audio": audio}


def to_tf_names(state):
    """LayerNorm weight/bias -> gamma/beta, as TensorFlow-era checkpoints name them."""
    out = {}
    for key, value in state.items():
        if ".LayerNorm." in key or key.startswith("LayerNorm."):
            key = key.replace(".weight", ".gamma").replace(".bias", ".beta")
        out[key] = value
    return out


def main(name, out, seed=0):
    gen = torch.Generator().manual_seed(seed * 1000003 + sum(map(ord, name)))
    conf = variant_config(name)
    if "kaldi" in conf["audio"]:
        _, inp_dim, _ = get_extracter(copy.deepcopy(conf["audio"]))
        tgt_dim = inp_dim
    else:
        _, inp_dim, tgt_dim = get_preprocessor(copy.deepcopy(conf["audio"]), process_input_only=False)
    mcfg = TransformerConfig(conf["transformer"])
    model, head = TransformerModel(mcfg, inp_dim), TransformerSpecPredictionHead(mcfg, tgt_dim)
    make_ckpt.perturb_(model, gen)
    make_ckpt.perturb_(head, gen)
    weights = make_ckpt.state_dict_plain(model)
    ckpt = {"SpecHead": make_ckpt.state_dict_plain(head), "Step": 100000}
    if name == "linear_gamma":
        ckpt.update(Transformer=to_tf_names(weights), Config=conf)
    else:
        ckpt.update(Transformer=weights, Config=copy.deepcopy(make_ckpt.RUNNER_CONFIG_TRANSFORMER),
                    Upstream_Config=conf)
    torch.save(make_ckpt.plain(ckpt), out)
    check = make_ckpt.verify_through_hub("tera", out, {"Transformer": weights}, {})
    print(name, {k: check[k] for k in ("checked", "missing_in_model", "differs", "ok")})
    if not check["ok"]:
        raise SystemExit(f"{name}: the original loader did not load every weight")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=["preln_fbank", "mfcc_delta", "linear_gamma", "kaldi_mfcc",
                                            "spec_augment"])
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.variant, args.out, args.seed)
