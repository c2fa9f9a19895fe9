"""LightHuBERT, MR-HuBERT and ESPnet HuBERT: parity with the original s3prl on tiny checkpoints it wrote
(tests/fixtures/oracle/hubert_variants, made by tests/oracle/make_hubert_variants_fixtures.sh), ESPnet
HuBERT also against HuggingFace's HubertModel, and the invariants (lengths, short inputs, options, formats)."""

import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from parity import compare_with_dump
from s3prl.convert.errors import CheckpointFormatError
from s3prl.nn import S3PRLUpstream
from s3prl.upstream import lighthubert

FIXTURES = Path(__file__).parent / "fixtures" / "oracle" / "hubert_variants"
DUMPS = Path(os.environ.get("S3PRL_ORACLE_DUMPS", "/tmp/s3prl-oracle-dumps"))
W2V2_TINY = Path(__file__).parent / "fixtures" / "oracle" / "wav2vec2_tiny.pt"

# the subnets the fixture generator gives the original (its supernet tables are patched to tiny ones)
TINY_PRUNED = {"atten_dim": [64] * 12, "embed_dim": 32, "ffn_embed": [32, 48, 64] * 4, "heads_num": [1] * 12,
               "layer_num": 10, "slide_wsz": ["global"] * 12}
TINY_MAX = {"atten_dim": [64] * 12, "embed_dim": 64, "ffn_embed": [128] * 12, "heads_num": [1] * 12,
            "layer_num": 12, "slide_wsz": ["global"] * 12}
CASES = {
    "lighthubert_tiny_pruned": ("lighthubert_local", "lighthubert_tiny.pt", {"subnet": TINY_PRUNED}),
    "lighthubert_tiny_max": ("lighthubert_local", "lighthubert_tiny.pt", {"subnet": TINY_MAX}),
    "multires_hubert_two_res": ("multires_hubert_local", "multires_hubert_two_res.pt", None),
    "multires_hubert_three_res_plain": ("multires_hubert_custom", "multires_hubert_three_res_plain.pt", None),
    "espnet_hubert_base": ("espnet_hubert_local", "espnet_hubert_base/model.pth", None),  # config.yaml beside
    "espnet_hubert_large": ("espnet_hubert_custom", "espnet_hubert_large/model.pth",
                            {"config": str(FIXTURES / "espnet_hubert_large" / "config.yaml")}),
}


def upstream(case: str) -> S3PRLUpstream:
    name, ckpt, conf = CASES[case]
    return S3PRLUpstream(name, path_or_url=str(FIXTURES / ckpt), extra_conf=conf).eval()


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_hidden_states_as_the_original(case):
    dump = torch.load(FIXTURES / f"{case}.dump.pt", weights_only=True)
    err = compare_with_dump(upstream(case), dump)
    assert err["single"] < 1e-4 and err["batch"] < 1e-4, err


@pytest.mark.parametrize("case", ["lighthubert_tiny_pruned", "multires_hubert_three_res_plain", "espnet_hubert_base"])
def test_short_inputs(case):
    model = upstream(case)
    lens = torch.tensor([0, 1, 400, 799, 2000])
    wavs = torch.randn(len(lens), int(lens.max())) * 0.1
    with torch.no_grad():
        hs, hs_len = model(wavs, lens)
    assert len(hs) == model.num_layers
    for h, n, size in zip(hs, hs_len, model.hidden_sizes):
        assert h.shape == (5, 7, size) and torch.isfinite(h).all()
        assert n.tolist() == [0, 1, 2, 3, 7]  # ceil(len / 320)


def test_state_counts_and_sizes():
    assert upstream("lighthubert_tiny_pruned").hidden_sizes == [32] * 11  # features + 10 kept layers
    assert upstream("multires_hubert_two_res").num_layers == 6  # (1+1) encoder, (1+1) middle, (1+1) decoder
    model = upstream("multires_hubert_three_res_plain")
    assert model.num_layers == 2 + 3 + 2 + 3 + 2  # override_encoder_layers [1, 2, 1, 1, 2]
    assert upstream("espnet_hubert_large").num_layers == 2  # the output of every layer, no input state


@pytest.mark.parametrize("name", ["lighthubert_local", "multires_hubert_local", "espnet_hubert_local"])
def test_unknown_option_is_a_type_error(name):
    ckpt = {"lighthubert_local": "lighthubert_tiny.pt", "multires_hubert_local": "multires_hubert_two_res.pt",
            "espnet_hubert_local": "espnet_hubert_base/model.pth"}[name]
    with pytest.raises(TypeError, match="window_secs"):
        S3PRLUpstream(name, path_or_url=str(FIXTURES / ckpt), extra_conf={"window_secs": 1.0})


@pytest.mark.parametrize("name", ["lighthubert_local", "multires_hubert_local", "espnet_hubert_custom"])
def test_checkpoint_of_another_family(name):
    conf = {"config": str(FIXTURES / "espnet_hubert_base" / "config.yaml")} if "espnet" in name else None
    with pytest.raises(CheckpointFormatError, match="model_cfg|model_weight|task_cfg|wav2vec2_local"):
        S3PRLUpstream(name, path_or_url=str(W2V2_TINY), extra_conf=conf)


def test_multires_raw_fairseq_layout(tmp_path):
    """The same weights in fairseq's own layout {cfg: {model, task}, model} load to the same model."""
    obj = torch.load(FIXTURES / "multires_hubert_two_res.pt", weights_only=True)
    raw = tmp_path / "raw.pt"
    torch.save({"cfg": {"model": obj["model_cfg"], "task": obj["task_cfg"]}, "model": obj["model_weight"]}, raw)
    dump = torch.load(FIXTURES / "multires_hubert_two_res.dump.pt", weights_only=True)
    model = S3PRLUpstream("multires_hubert_custom", path_or_url=str(raw), extra_conf={"fairseq": True}).eval()
    assert compare_with_dump(model, dump)["single"] < 1e-4


WAV, WAV_LEN = torch.randn(1, 4000, generator=torch.Generator().manual_seed(0)) * 0.1, torch.tensor([4000])
_REFERENCE = {}


def _changes_output(name, path, conf, key, tmp_path, wrap=None):
    """Perturb one stored tensor (random direction): some hidden state must change."""
    if str(path) not in _REFERENCE:
        with torch.no_grad():
            _REFERENCE[str(path)] = S3PRLUpstream(name, path_or_url=str(path), extra_conf=conf).eval()(WAV, WAV_LEN)[0]
    ref = _REFERENCE[str(path)]
    obj = torch.load(path, weights_only=True)
    state = wrap(obj) if wrap else obj
    noise = torch.randn(state[key].shape, generator=torch.Generator().manual_seed(0))  # a constant would vanish in LNs
    state[key] = state[key] + 0.5 * state[key].float().std().clamp(min=0.1) * noise.to(state[key].dtype)
    changed = tmp_path / Path(path).name
    torch.save(obj, changed)
    if (Path(path).parent / "config.yaml").exists():
        shutil.copy(Path(path).parent / "config.yaml", tmp_path / "config.yaml")
    with torch.no_grad():
        out = S3PRLUpstream(name, path_or_url=str(changed), extra_conf=conf).eval()(WAV, WAV_LEN)[0]
    return max((a - b).abs().max().item() for a, b in zip(ref, out)) > 1e-5


@pytest.mark.parametrize("key", ["encoder.pos_conv.0.weight_g", "encoder.layers.1.fc1.weight",
                                 "encoder.layers.0.self_attn.v_proj.bias", "feature_extractor.conv_layers.3.2.1.weight"])
def test_lighthubert_weights_matter(key, tmp_path):
    assert _changes_output("lighthubert_local", FIXTURES / "lighthubert_tiny.pt", {"subnet": TINY_PRUNED}, key,
                           tmp_path, wrap=lambda o: o["model"])


@pytest.mark.parametrize("key", ["downsample_modules.0.downsample_conv.2.weight",
                                 "upsample_modules.0.upsample_conv.0.weight", "decoders.0.layers.0.fc2.bias"])
def test_multires_weights_matter(key, tmp_path):
    assert _changes_output("multires_hubert_local", FIXTURES / "multires_hubert_two_res.pt", None, key, tmp_path,
                           wrap=lambda o: o["model_weight"])


def test_espnet_weights_matter(tmp_path):
    key = "encoder.hubert_pretrain_model.wav2vec2.encoder.feature_projection.layer_norm.bias"
    assert _changes_output("espnet_hubert_local", FIXTURES / "espnet_hubert_base" / "model.pth", None, key, tmp_path)


def test_lighthubert_default_subnets():
    """The original's choice: student -> the type's max subnet; pruner -> its pruned subnet (type from the
    pruner_supernet file name, overriding supernet_type)."""
    cfg = lighthubert.subnet_config({"_name": "student_hubert", "supernet_type": "small"}, None, "x")
    assert (cfg.embed_dim, cfg.heads[0], cfg.ffn_dims[0], len(cfg.kept_layers)) == (512, 8, 2048, 12)
    cfg = lighthubert.subnet_config({"_name": "hubert_pruner", "supernet_type": "small",
                                     "pruner_supernet": "cfg/Supernet-Base.yaml"}, None, "x")
    assert (cfg.embed_dim, cfg.heads[0], cfg.ffn_dims[0]) == (640, 10, 2560)
    cfg = lighthubert.subnet_config({"_name": "student_hubert"}, None, "x")  # supernet_type defaults to base
    assert cfg.embed_dim == 768
    with pytest.raises(CheckpointFormatError, match="student_hubert"):
        lighthubert.subnet_config({"_name": "hubert"}, None, "x")
    with pytest.raises(NotImplementedError, match="sliding"):
        lighthubert.check_subnet(dict(TINY_PRUNED, slide_wsz=[32] * 12))
    assert lighthubert.check_subnet(dict(TINY_PRUNED, layer_num=6))[1] == [0, 1, 4, 5, 8, 9]


def test_lighthubert_ffn_split_slicing():
    """FFN units form ffn // embed blocks; a subnet keeps a prefix of int(ffn_sub / ratio) rows of each."""
    rows = torch.arange(3072)[:, None].float()
    kept = lighthubert.split_rows(rows, 3072, 4, 1792, 1792 / 512).squeeze(1).long()  # ratio 3.5
    expect = list(range(0, 512)) + list(range(768, 1280)) + list(range(1536, 2048)) + list(range(2304, 2560))
    assert kept.tolist() == expect


def test_espnet_against_huggingface(tmp_path):
    """A HuggingFace HubertModel's weights in ESPnet's layout give HF's layer outputs (HF = torchaudio math)."""
    transformers = pytest.importorskip("transformers")
    conv = {"conv_dim": (16,) * 7, "conv_kernel": (10, 3, 3, 3, 3, 2, 2), "conv_stride": (5, 2, 2, 2, 2, 2, 2)}
    cfg = transformers.HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, conv_bias=False,
                                    feat_extract_norm="group", do_stable_layer_norm=False, hidden_dropout=0.0,
                                    attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
                                    layerdrop=0.0, **conv)
    torch.manual_seed(0)
    hf = transformers.HubertModel(cfg).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    renames = [("feature_projection.", "encoder.feature_projection."), ("encoder.pos_conv_embed.",
               "encoder.transformer.pos_conv_embed."), ("encoder.layer_norm.", "encoder.transformer.layer_norm."),
               ("encoder.layers.", "encoder.transformer.layers."), ("feature_extractor.", "feature_extractor.")]
    state = {"encoder.global_step": torch.tensor([1])}
    for key, value in hf.state_dict().items():
        if key == "masked_spec_embed":
            state["encoder.hubert_pretrain_model.mask_generator.mask_embedding"] = value
            continue
        old, new = next((o, n) for o, n in renames if key.startswith(o))
        state["encoder.hubert_pretrain_model.wav2vec2." + new + key[len(old):]] = value
    torch.save(state, tmp_path / "model.pth")
    encoder_conf = {"extractor_mode": "group_norm", "extractor_conv_layer_config": [[16, 10, 5]] + [[16, 3, 2]] * 4
                    + [[16, 2, 2]] * 2, "encoder_embed_dim": 32, "encoder_pos_conv_kernel": 16,
                    "encoder_pos_conv_groups": 4, "encoder_num_layers": 2, "encoder_num_heads": 4,
                    "encoder_ff_interm_features": 64, "encoder_layer_norm_first": False}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"encoder": "torchaudio_hubert", "encoder_conf": encoder_conf,
                                                          "num_classes": 10, "frontend": None}))
    ours = S3PRLUpstream("espnet_hubert_local", path_or_url=str(tmp_path / "model.pth")).eval()
    wav = torch.randn(1, 9000) * 0.1
    with torch.no_grad():
        ref = hf(wav, output_hidden_states=True).hidden_states[1:]
        hs, _ = ours.upstream(wav, torch.tensor([9000]))
    assert len(hs) == len(ref) == 2
    for h, r in zip(hs, ref):
        assert h.shape == r.shape and (h - r).abs().max() < 1e-4


def test_espnet_needs_its_config(tmp_path):
    shutil.copy(FIXTURES / "espnet_hubert_base" / "model.pth", tmp_path / "model.pth")
    with pytest.raises(ValueError, match="config.yaml"):
        S3PRLUpstream("espnet_hubert_local", path_or_url=str(tmp_path / "model.pth"))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"encoder": "hubert_pretrain", "encoder_conf": {}}))
    with pytest.raises(CheckpointFormatError, match="torchaudio_hubert"):
        S3PRLUpstream("espnet_hubert_local", path_or_url=str(tmp_path / "model.pth"))


def test_registry_rows_hand_the_config_url_to_the_builder():
    from s3prl.registry import REGISTRY

    rows = [e for e in REGISTRY.values() if e.family == "espnet_hubert" and e.urls]
    assert len(rows) == 7 and all(e.extra_conf["config"] == e.urls[1] for e in rows)


@pytest.mark.oracle
@pytest.mark.skipif(not (DUMPS / "lighthubert_base_pruner.dump.pt").exists(),
                    reason="run: bash tests/oracle/make_hubert_variants_fixtures.sh --base")
def test_lighthubert_real_size_tables():
    """The original's real tables: a base supernet pruned to 640 wide, 10 heads, FFN 2560 (split slicing)."""
    dump = torch.load(DUMPS / "lighthubert_base_pruner.dump.pt", weights_only=True)
    model = S3PRLUpstream("lighthubert_local", path_or_url=str(DUMPS / "lighthubert_base_pruner.pt")).eval()
    err = compare_with_dump(model, dump)
    print(f"\nlighthubert base pruner: single {err['single']:.2e}, batch {err['batch']:.2e}")
    assert err["single"] < 1e-4 and err["batch"] < 1e-4, err
