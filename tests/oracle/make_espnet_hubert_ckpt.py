"""A tiny ESPnet-layout HuBERT (.pth + config.yaml) from torchaudio's HuBERT, and the original's dump.

    python make_espnet_hubert_ckpt.py ckpt OUT_DIR --preset base|large      # OUT_DIR/{model.pth,config.yaml}
    python make_espnet_hubert_ckpt.py dump -- <dump.py arguments>            # --name espnet_hubert_local ...

ESPnet is not installed in the oracle venv (and cannot be), so what ESPnet contributes is emulated here
from reading its source, and is NOT proven by this script:

* the checkpoint: ``torch.save(TorchAudioHubertPretrainModel.state_dict())``, i.e. torchaudio's
  ``HuBERTPretrainModel`` under ``encoder.hubert_pretrain_model.`` plus the encoder's ``global_step``
  buffer (the ``base`` preset stores the positional conv as ``weight_g``/``weight_v``, as torchaudio did
  before it moved to parametrizations; ``large`` uses the parametrization names);
* the config: ``encoder: torchaudio_hubert`` with ``encoder_conf`` (the arguments of ESPnet's
  ``TorchAudioHuBERTPretrainEncoder``), ``num_classes``, ``input_size`` and the usual top-level entries;
* ``espnet2.tasks.hubert.HubertTask.build_model_from_file`` (stubbed for the dump): builds
  ``torchaudio.models.hubert_pretrain_model`` from the yaml over ESPnet's encoder defaults and loads
  the state strictly; without a config it reads ``config.yaml`` beside the ``.pth`` (ESPnet's rule).

What the dump does prove: the ORIGINAL s3prl expert and ``S3PRLUpstream`` (which states, lengths,
padding) on torchaudio's real HuBERT code (its pure-python model, in the oracle venv).
"""

import argparse
import os
import sys
import types
from pathlib import Path

ORACLE = os.environ.get("S3PRL_ORACLE_DIR", os.path.join(os.path.dirname(__file__), "../../../shared/tools/s3prl-oracle"))
sys.path.insert(0, os.path.abspath(ORACLE))

import make_ckpt  # noqa: E402  (oracle_env first: threads, seeds, shims)
import torch  # noqa: E402
import torchaudio  # noqa: E402
import yaml  # noqa: E402

ESPNET_ENCODER_DEFAULTS = dict(
    extractor_mode="group_norm", extractor_conv_layer_config=[[512, 10, 5]] + [[512, 3, 2]] * 4 + [[512, 2, 2]] * 2,
    extractor_conv_bias=False, encoder_embed_dim=768, encoder_projection_dropout=0.1, encoder_pos_conv_kernel=128,
    encoder_pos_conv_groups=16, encoder_num_layers=12, encoder_num_heads=12, encoder_attention_dropout=0.1,
    encoder_ff_interm_features=3072, encoder_ff_interm_dropout=0.0, encoder_dropout=0.1,
    encoder_layer_norm_first=False, encoder_layer_drop=0.05, mask_prob=0.8, mask_selection="static",
    mask_other=0.0, mask_length=10, no_mask_overlap=False, mask_min_space=1, mask_channel_prob=0.0,
    mask_channel_selection="static", mask_channel_other=0.0, mask_channel_length=10,
    no_mask_channel_overlap=False, mask_channel_min_space=1, skip_masked=False, skip_nomask=False,
    num_classes=100, final_dim=256, feature_grad_mult=0.1,
)
ESPNET_ONLY = ("finetuning", "freeze_encoder_updates")  # encoder args that torchaudio's builder does not take
TINY = dict(extractor_conv_layer_config=[[16, 10, 5]] + [[16, 3, 2]] * 4 + [[16, 2, 2]] * 2, encoder_embed_dim=32,
            encoder_pos_conv_kernel=16, encoder_pos_conv_groups=4, encoder_num_layers=2, encoder_num_heads=4,
            encoder_ff_interm_features=64, final_dim=16, encoder_layer_drop=0.0)
PRESETS = {
    "base": dict(TINY),  # group_norm CNN, post-LN (defaults)
    "large": dict(TINY, extractor_mode="layer_norm", extractor_conv_bias=True, encoder_layer_norm_first=True),
}
PREFIX = "encoder.hubert_pretrain_model."


def build_torchaudio(conf: dict):
    enc = {**ESPNET_ENCODER_DEFAULTS, **{k: v for k, v in conf["encoder_conf"].items() if k not in ESPNET_ONLY}}
    enc["num_classes"] = conf["num_classes"]
    enc["extractor_conv_layer_config"] = [tuple(c) for c in enc["extractor_conv_layer_config"]]
    return torchaudio.models.hubert_pretrain_model(**enc)


def write(out_dir: str, preset: str, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    conf = {
        "config": "conf/tuning/train_ssl_torchaudiohubert_tiny.yaml", "output_dir": "exp/hubert_tiny",
        "token_list": ["<blank>", "<unk>"] + [str(i) for i in range(10)] + ["<sos/eos>"], "init": None,
        "input_size": 1, "num_classes": 10, "use_preprocessor": True, "token_type": "word",
        "frontend": None, "frontend_conf": {}, "specaug": None, "specaug_conf": {},
        "normalize": None, "normalize_conf": {}, "preencoder": None, "preencoder_conf": {},
        "encoder": "torchaudio_hubert", "encoder_conf": dict(PRESETS[preset], finetuning=False),
        "model": "torchaudio", "model_conf": {}, "required": ["output_dir", "token_list"], "version": "202207",
    }
    model = build_torchaudio(conf)
    make_ckpt.perturb_(model, gen)
    state = {PREFIX + k: v for k, v in make_ckpt.state_dict_plain(model.eval()).items()}
    if preset == "base":  # torchaudio < 2.1 layout of the weight-normed positional conv
        for new, old in (("original0", "weight_g"), ("original1", "weight_v")):
            key = f"{PREFIX}wav2vec2.encoder.transformer.pos_conv_embed.conv.parametrizations.weight.{new}"
            state[key.replace(f"parametrizations.weight.{new}", old)] = state.pop(key)
    state["encoder.global_step"] = torch.tensor([12345])
    os.makedirs(out_dir, exist_ok=True)
    torch.save(state, os.path.join(out_dir, "model.pth"))
    with open(os.path.join(out_dir, "config.yaml"), "w") as f:
        yaml.safe_dump(conf, f)
    print(f"wrote {out_dir}/model.pth ({os.path.getsize(os.path.join(out_dir, 'model.pth')) / 1e6:.2f} MB)")


class HubertTaskStub:
    """Stand-in for espnet2.tasks.hubert.HubertTask (ESPnet cannot be installed in the oracle venv)."""

    @staticmethod
    def build_model_from_file(config_file, model_file, device="cpu"):
        config_file = config_file or Path(model_file).parent / "config.yaml"  # ESPnet's rule
        with open(config_file) as f:
            conf = yaml.safe_load(f)
        assert conf["encoder"] == "torchaudio_hubert"
        hubert = build_torchaudio(conf)
        state = torch.load(model_file, map_location="cpu", weights_only=True)
        inner = {}
        for key, value in state.items():
            if key.startswith(PREFIX):
                key = key[len(PREFIX):].replace("conv.weight_g", "conv.parametrizations.weight.original0")
                inner[key.replace("conv.weight_v", "conv.parametrizations.weight.original1")] = value
        hubert.load_state_dict(inner, strict=True)
        model = torch.nn.Module()
        model.encoder = torch.nn.Module()
        model.encoder.hubert_pretrain_model = hubert
        return model.to(device).eval(), argparse.Namespace(**conf)


def install_stub():
    for name in ("espnet2", "espnet2.tasks", "espnet2.tasks.hubert"):
        sys.modules[name] = types.ModuleType(name)
    sys.modules["espnet2.tasks.hubert"].HubertTask = HubertTaskStub


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "dump":
        install_stub()
        import dump

        rest = argv[1:]
        return dump.main(rest[rest.index("--") + 1:] if "--" in rest else rest)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["ckpt"])
    ap.add_argument("out_dir")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="base")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    write(args.out_dir, args.preset, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
