"""AST, SSAST, MAE-AST and PaSST: parity with the original s3prl, HuggingFace AST parity, windows, errors.

The checkpoints were written and loaded by the ORIGINAL classes (tests/oracle/make_ast_family_fixtures.sh); only
their JSON specs are committed and ``seeded_ckpt`` rebuilds the very same files here (sha256 checked). The
dumps hold the original ``S3PRLUpstream``'s hidden states at batch size 1 (every K-th feature of each frame).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

from s3prl.convert.errors import CheckpointFormatError
from s3prl.nn import S3PRLUpstream
from s3prl.upstream import windows

HERE = Path(__file__).parent
FIX = HERE / "fixtures" / "oracle"
sys.path.insert(0, str(HERE / "oracle"))
import seeded_ckpt  # noqa: E402

TOL = 1e-4
PARITY = [  # dump, entry, checkpoint; every case also compares our padded batch with the original at batch size 1
    ("ast_cls", "ast", "ast_tiny"),
    ("ast_cls_w1_s05", "ast", "ast_tiny"),
    ("ast_hs_w1", "ast", "ast_tiny"),
    ("ast_hs_w105", "ast", "ast_tiny"),
    ("ssast_frame_w1", "ssast_frame_base", "ssast_frame_tiny"),
    ("ssast_frame_w25", "ssast_frame_base", "ssast_frame_tiny"),
    ("ssast_patch_w1", "ssast_patch_base", "ssast_patch_tiny"),
    ("ssast_patch_w2", "ssast_patch_base", "ssast_patch_tiny"),
    ("mae_ast_frame", "mae_ast_local", "mae_ast_frame_tiny"),
    ("mae_ast_patch", "mae_ast_local", "mae_ast_patch_tiny"),
    ("passt_base", "passt_base", "passt_base_tiny"),
    ("passt_base2level", "passt_base2level", "passt_base_tiny"),
    ("passt_base2levelmel", "passt_base2levelmel", "passt_base_tiny"),
    ("passt_hop100base2lvlmel", "passt_hop100base2lvlmel", "passt_hop100_tiny"),
    ("passt_hop160base2lvl", "passt_hop160base2lvl", "passt_hop160_tiny"),
    ("passt_base20sec", "passt_base20sec", "passt_20sec_tiny"),
]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory):
    """name -> path of the checkpoint rebuilt from its spec (byte-identical to the oracle's file)."""
    folder, built = tmp_path_factory.mktemp("ast_family"), {}

    def get(name: str) -> str:
        if name not in built:
            spec = seeded_ckpt.load_spec(str(FIX / f"{name}.spec.json"))
            path = folder / f"{name}.pt"  # same file stem as the oracle's: torch.save names its archive after it
            assert seeded_ckpt.write(spec, str(path)) == spec["sha256"], f"{name}: rebuilt checkpoint differs"
            built[name] = str(path)
        return built[name]

    return get


@pytest.fixture(scope="session")
def clips():
    return torch.load(FIX / "ast_family_wavs.pt", weights_only=True)


def load_dump(name: str) -> dict:
    return torch.load(FIX / f"{name}.dump.pt", weights_only=True)


def upstream(entry: str, path: str, **extra) -> S3PRLUpstream:
    return S3PRLUpstream(entry, path_or_url=path, extra_conf=extra or None).eval()


def compare(up: S3PRLUpstream, dump: dict, clips: list, batch: bool = True) -> tuple[float, float]:
    """Max abs diff of ours vs the original at batch size 1, and of our padded batch vs the same reference."""
    meta, k = dump["meta"], dump["meta"]["feature_stride"]
    assert (up.num_layers, up.hidden_sizes, up.downsample_rates) == (
        meta["num_layers"], meta["hidden_sizes"], meta["downsample_rates"])
    ok = [i for i, s in enumerate(dump["single"]) if s is not None]  # the original raised on the others
    wavs = [clips[meta["wav_index"][i]] for i in ok]
    lens = torch.tensor([len(w) for w in wavs])
    single_err = batch_err = 0.0
    with torch.no_grad():
        if batch:
            batch_hs, batch_lens = up(torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True), lens)
        for j, i in enumerate(ok):
            hs, hs_len = up(wavs[j][None], lens[j : j + 1])
            assert len(hs) == len(dump["single"][i])
            for layer, (h, ref, ref_len) in enumerate(zip(hs, dump["single"][i], dump["single_lengths"][i])):
                assert h[..., ::k].shape == ref.shape, (i, layer, h.shape, ref.shape)
                assert torch.equal(hs_len[layer], ref_len)
                n = int(ref_len[0])
                single_err = max(single_err, float((h[0, :n, ::k] - ref[0, :n]).abs().max()))
                if batch:
                    assert int(batch_lens[layer][j]) == n
                    batch_err = max(batch_err, float((batch_hs[layer][j, :n, ::k] - ref[0, :n]).abs().max()))
    return single_err, batch_err


@pytest.mark.parametrize("dump_name,entry,ckpt_name", PARITY, ids=[p[0] for p in PARITY])
def test_parity_with_original(dump_name, entry, ckpt_name, ckpt, clips):
    dump = load_dump(dump_name)
    up = upstream(entry, ckpt(ckpt_name), **dump["meta"]["extra_conf"])
    single, batched = compare(up, dump, clips)
    print(f"{dump_name}: single {single:.2e} batch {batched:.2e}")
    assert single < TOL and batched < TOL


def test_swapped_weights_break_parity(ckpt, clips, tmp_path):
    state = torch.load(ckpt("ssast_frame_tiny"), weights_only=True)
    a, b = "module.v.blocks.0.norm1.weight", "module.v.blocks.0.norm2.weight"
    state[a], state[b] = state[b], state[a]
    torch.save(state, tmp_path / "swapped.pt")
    single, _ = compare(upstream("ssast_frame_base", str(tmp_path / "swapped.pt")), load_dump("ssast_frame_w1"),
                        clips, batch=False)
    assert single > 1e-3


# ----------------------------------------------------------------------------- every stored weight matters
UNUSED = {  # loaded (the original loads them too) but never part of the selected hidden states
    "ssast_frame_tiny": {"transformer.norm.weight", "transformer.norm.bias"},
    "mae_ast_patch_tiny": {"encoder_norm.weight", "encoder_norm.bias"},  # pre-LN: the final norm is not a state
}


@pytest.mark.parametrize("entry,name,extra,length", [  # short windows and clips
    ("ast", "ast_tiny", {"window_secs": 0.5, "stride_secs": 0.5}, 8000),
    ("ssast_frame_base", "ssast_frame_tiny", {"window_secs": 0.2}, 3200),
    ("mae_ast_local", "mae_ast_frame_tiny", {}, 4000),
    ("mae_ast_local", "mae_ast_patch_tiny", {}, 4000),
    ("passt_base2levelmel", "passt_base_tiny", {}, 6401),
])
def test_every_loaded_tensor_matters(entry, name, extra, length, ckpt):
    """Each tensor loaded from the checkpoint reaches a hidden state: parameters get a non-zero gradient from a
    random projection of the outputs (one backward pass), buffers (statistics, tables) change the outputs."""
    model = upstream(entry, ckpt(name), **extra).upstream
    wav = torch.randn(1, length, generator=torch.Generator().manual_seed(0)) * 0.1

    def outputs():
        return torch.cat([h.flatten() for h in model(wav, torch.tensor([length]))[0]])

    out = outputs()
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
    params = dict(model.named_parameters())
    unused = [k for k, p in params.items() if p.grad is None or float(p.grad.abs().max()) == 0.0]
    with torch.no_grad():
        for key, buffer in model.state_dict(keep_vars=True).items():
            if key not in params:
                saved = buffer.clone()
                buffer.add_(0.1 + 0.1 * buffer.abs())
                changed = float((outputs() - out).abs().max()) > 1e-6
                buffer.copy_(saved)
                unused += [] if changed else [key]
    assert set(unused) == UNUSED.get(name, set())


# ----------------------------------------------------------------------------- shapes, short input, errors
@pytest.mark.parametrize("entry,name,extra", [
    ("ast", "ast_tiny", {"window_secs": 1.0, "stride_secs": 1.0, "feature_selection": "hidden_states"}),
    ("ssast_frame_base", "ssast_frame_tiny", {}),
    ("ssast_patch_base", "ssast_patch_tiny", {}),
    ("mae_ast_local", "mae_ast_frame_tiny", {}),
])
def test_short_inputs(entry, name, extra, ckpt):
    up = upstream(entry, ckpt(name), **extra)
    lens = torch.tensor([0, 1, 400, 799])
    with torch.no_grad():
        hs, hs_len = up(torch.randn(4, 799) * 0.1, lens)
    for h, n, rate, size in zip(hs, hs_len, up.downsample_rates, up.hidden_sizes):
        assert n.tolist() == [(int(x) + rate - 1) // rate for x in lens]
        assert h.shape == (4, int(n.max()), size) and torch.isfinite(h).all()


@pytest.mark.parametrize("entry,name,minimum", [("mae_ast_local", "mae_ast_patch_tiny", 2800),
                                                ("passt_base", "passt_base_tiny", 1281),
                                                ("passt_base2level", "passt_base_tiny", 6401)])
def test_clips_shorter_than_a_window_are_refused(entry, name, minimum, ckpt):
    up = upstream(entry, ckpt(name))
    with torch.no_grad():
        up(torch.zeros(1, minimum), torch.tensor([minimum]))  # just long enough
        with pytest.raises(ValueError, match=f"at least {minimum} samples"):
            up(torch.zeros(2, 16000), torch.tensor([16000, minimum - 1]))


@pytest.mark.parametrize("entry,name", [("ast", "ast_tiny"), ("ssast_frame_base", "ssast_frame_tiny"),
                                        ("mae_ast_local", "mae_ast_frame_tiny"), ("passt_base", "passt_base_tiny")])
def test_unknown_option_raises_type_error(entry, name, ckpt):
    with pytest.raises(TypeError, match="bogus"):
        upstream(entry, ckpt(name), bogus=1)


def test_bad_option_values(ckpt):
    with pytest.raises(ValueError, match="feature_selection"):
        upstream("ast", ckpt("ast_tiny"), feature_selection="last")
    with pytest.raises(ValueError, match="model_size"):
        upstream("ssast_frame_base", ckpt("ssast_frame_tiny"), model_size="base")
    with pytest.raises(ValueError, match="arch"):
        upstream("passt_base", ckpt("passt_base_tiny"), arch="huge")
    with pytest.raises(ValueError, match="fewer than"):
        upstream("ssast_patch_base", ckpt("ssast_patch_tiny"), window_secs=0.1)


def test_wrong_checkpoint_formats(ckpt, tmp_path):
    with pytest.raises(CheckpointFormatError, match="SSAST"):
        upstream("ast", ckpt("ssast_frame_tiny"))
    with pytest.raises(CheckpointFormatError, match="AST model"):
        upstream("ssast_frame_base", ckpt("ast_tiny"))
    with pytest.raises(CheckpointFormatError, match="patch model"):
        upstream("ssast_patch_base", ckpt("ssast_frame_tiny"))
    with pytest.raises(CheckpointFormatError, match="not a PaSST"):
        upstream("passt_base", ckpt("mae_ast_frame_tiny"))
    with pytest.raises(CheckpointFormatError, match="not an MAE-AST"):
        upstream("mae_ast_local", ckpt("passt_base_tiny"))
    torch.save({"cfg": {"model": {}}, "model": {"encoder.layers.0.fc1.weight": torch.zeros(2, 2)}}, tmp_path / "w.pt")
    with pytest.raises(CheckpointFormatError, match="patch projection"):
        upstream("mae_ast_local", str(tmp_path / "w.pt"))
    torch.save({"cls_token": torch.zeros(1, 1, 64), "pos_embed": torch.zeros(1, 197, 64)}, tmp_path / "deit.pt")
    with pytest.raises(CheckpointFormatError, match="ImageNet"):
        upstream("passt_base", str(tmp_path / "deit.pt"))
    w2v = FIX / "wav2vec2_tiny.pt"
    for entry in ("ast", "ssast_patch_base", "mae_ast_local", "passt_hop100base"):
        with pytest.raises(CheckpointFormatError, match="model_weight"):
            upstream(entry, str(w2v))
    state = torch.load(ckpt("passt_base_tiny"), weights_only=True)
    del state["blocks.1.mlp.fc2.bias"]
    torch.save(state, tmp_path / "dropped.pt")
    with pytest.raises(CheckpointFormatError, match="blocks.1.mlp.fc2.bias"):
        upstream("passt_base", str(tmp_path / "dropped.pt"))
    state["blocks.1.mlp.fc2.bias"], state["blocks.0.attn.extra"] = torch.zeros(128), torch.zeros(1)
    torch.save(state, tmp_path / "extra.pt")
    with pytest.raises(CheckpointFormatError, match="blocks.0.attn.extra"):
        upstream("passt_base", str(tmp_path / "extra.pt"))


def test_properties_come_from_the_configuration(ckpt):
    up = upstream("ast", ckpt("ast_tiny"))
    assert (up.num_layers, up.hidden_sizes, up.downsample_rates) == (1, [527], [163840])
    up = upstream("ast", ckpt("ast_tiny"), feature_selection="hidden_states")
    assert (up.num_layers, up.hidden_sizes, up.downsample_rates) == (2, [12 * 768] * 2, [1600] * 2)
    up = upstream("passt_hop160base2lvlmel", ckpt("passt_hop160_tiny"))
    assert (up.num_layers, up.hidden_sizes, up.downsample_rates) == (1, [2 * (527 + 128) + 768], [800])


# ----------------------------------------------------------------------------- HuggingFace AST
def _random_hf(config_kwargs: dict):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.ASTConfig(**config_kwargs)
    model = transformers.ASTForAudioClassification(config).eval()
    with torch.no_grad():  # HF zero-initialises positions and unit-initialises norms: make every tensor matter
        for name, p in model.named_parameters():
            p.copy_(1 + 0.1 * torch.randn_like(p) if "layernorm" in name and name.endswith("weight")
                    else torch.randn_like(p) * (p.shape[-1] ** -0.5 if p.dim() > 1 else 0.1))
    return transformers, model


def test_huggingface_ast_to_ours(tmp_path):
    _, hf = _random_hf(dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256,
                            max_length=100, num_labels=7, layer_norm_eps=1e-6))
    hf.save_pretrained(tmp_path / "hf")
    cls = upstream("ast", str(tmp_path / "hf"), window_secs=1.0, stride_secs=1.0)
    hs = upstream("ast", str(tmp_path / "hf"), window_secs=1.0, stride_secs=1.0, feature_selection="hidden_states")
    wav = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.no_grad():
        feats = cls.upstream.fbank(wav)  # (1, 100, 128)
        out = hf(input_values=feats, output_hidden_states=True)
        ours_cls, _ = cls(wav, torch.tensor([16000]))
        ours_hs, _ = hs(wav, torch.tensor([16000]))
    assert float((ours_cls[0][0, 0] - out.logits[0]).abs().max()) < 1e-5
    for ours, theirs in zip(ours_hs, out.hidden_states[1:]):
        ref = theirs[:, 2:].reshape(1, 12, 9, -1).transpose(1, 2).flatten(2)  # (1, 9 frames, 12 * 128)
        assert float((ours[:, :9] - ref).abs().max()) < 1e-5


def test_huggingface_legacy_key_names(tmp_path):
    from safetensors.torch import save_file

    _, hf = _random_hf(dict(hidden_size=64, num_hidden_layers=1, num_attention_heads=1, intermediate_size=64,
                            max_length=100, num_labels=3, layer_norm_eps=1e-6))
    hf.save_pretrained(tmp_path / "new")
    legacy = {}
    for key, value in hf.state_dict().items():
        for a, b in (("layers.", "encoder.layer."), ("attention.q_proj", "attention.attention.query"),
                     ("attention.k_proj", "attention.attention.key"), ("attention.v_proj", "attention.attention.value"),
                     ("attention.o_proj", "attention.output.dense"), ("mlp.fc1", "intermediate.dense"),
                     ("mlp.fc2", "output.dense")):
            key = key.replace(a, b)
        legacy[key] = value.contiguous()
    (tmp_path / "old").mkdir()
    save_file(legacy, str(tmp_path / "old" / "model.safetensors"))
    (tmp_path / "old" / "config.json").write_text((tmp_path / "new" / "config.json").read_text())
    wav = torch.randn(1, 12000) * 0.1
    with torch.no_grad():
        a = upstream("ast", str(tmp_path / "new"), window_secs=1.0)(wav, torch.tensor([12000]))[0][0]
        b = upstream("ast", str(tmp_path / "old"), window_secs=1.0)(wav, torch.tensor([12000]))[0][0]
    assert torch.equal(a, b)


def test_ours_to_huggingface_ast(ckpt):
    from s3prl.upstream.ast import to_huggingface

    transformers = pytest.importorskip("transformers")
    up = upstream("ast", ckpt("ast_tiny"), window_secs=1.0, stride_secs=1.0)
    config, state = to_huggingface(up.upstream)
    hf = transformers.ASTForAudioClassification(transformers.ASTConfig(**config)).eval()
    hf.load_state_dict(state, strict=True)
    wav = torch.randn(2, 16000, generator=torch.Generator().manual_seed(1)) * 0.1
    with torch.no_grad():
        feats = up.upstream.fbank(wav)
        out = hf(input_values=feats, output_hidden_states=True)
        blocks, _ = up.upstream.encode(feats)
        ours_cls = up.upstream.window_states(wav)[0][:, 0]
    for ours, theirs in zip(blocks, out.hidden_states[1:]):
        assert float((ours - theirs).abs().max()) < 1e-4
    assert float((ours_cls - out.logits).abs().max()) < 1e-4  # HF's classifier LayerNorm eps is 1e-6, not 1e-5


# ----------------------------------------------------------------------------- windows
def test_start_range_windows():
    wav = torch.arange(1, 11, dtype=torch.float32)  # 10 samples
    w = windows.split_windows(wav, window=4, stride=3)  # starts 0, 3, 6, 9; padded to 13
    assert w.tolist() == [[1, 2, 3, 4], [4, 5, 6, 7], [7, 8, 9, 10], [10, 0, 0, 0]]
    stacked, counts = windows.stack_windows(torch.stack([wav, wav * 0]), torch.tensor([10, 2]), 4, 3)
    assert counts == [4, 1] and stacked.shape == (5, 4)
    out = torch.arange(5 * 2 * 1, dtype=torch.float32).reshape(5, 2, 1)  # 2 frames per window
    merged, lengths = windows.merge_windows(out, counts, keep=[7, 5])
    assert lengths.tolist() == [7, 2] and merged[0, :, 0].tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert merged[1, :2, 0].tolist() == [8, 9] and merged[1, 2:].abs().sum() == 0
    assert windows.frame_count(16001, 160) == len(range(0, 16001, 160))
    model = lambda w: [w[:, :2, None], w[:, None, :1]]  # noqa: E731  (two "states": 2 frames / 1 frame per window)
    wavs, lens = torch.stack([wav, wav * 2]), torch.tensor([10, 5])
    whole = windows.run_windowed(wavs, lens, 4, 3, model, rates=[2, 3])
    chunked = windows.run_windowed(wavs, lens, 4, 3, model, rates=[2, 3], max_batch=1)
    assert [h.tolist() for h in whole[0]] == [h.tolist() for h in chunked[0]]
    assert [n.tolist() for n in whole[1]] == [[5, 3], [4, 2]]  # min(windows * frames, ceil(len / rate))
    with pytest.raises(ValueError, match="empty"):
        windows.split_windows(wav[:0], 4, 3)


def test_centered_windows():
    wav = torch.arange(10, dtype=torch.float32)
    w = windows.centered_windows(wav, window=4, hop=3)  # reflect-padded by 2: (10 + 4 - 4) // 3 + 1 windows
    assert w.shape == (4, 4) and w[0].tolist() == [2, 1, 0, 1] and w[1].tolist() == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="too short"):
        windows.centered_windows(wav[:2], window=4, hop=3)


def test_ast_window_rules_in_registry():
    from s3prl.registry import REGISTRY

    assert json.dumps(dict(REGISTRY["ast"].extra_conf), sort_keys=True) == \
        '{"feature_selection": "cls", "stride_secs": 10.24, "window_secs": 10.24}'


# ----------------------------------------------------------------------------- full-size models (-m oracle)
BASE_DUMPS = Path(os.environ.get("S3PRL_ORACLE_DUMPS", "/tmp/s3prl-oracle-dumps")) / "ast_family"
BASE_CASES = sorted(p.name[: -len(".dump.pt")] for p in BASE_DUMPS.glob("*.dump.pt")) if BASE_DUMPS.is_dir() else []


@pytest.mark.oracle
@pytest.mark.skipif(not BASE_CASES, reason=f"no dumps in {BASE_DUMPS}: BASE=only bash "
                                           "tests/oracle/make_ast_family_fixtures.sh")
@pytest.mark.parametrize("case", BASE_CASES)
def test_full_size_parity_with_original(case, clips):
    """768-d, 12-block checkpoints written by the original classes (released sizes)."""
    dump = torch.load(BASE_DUMPS / f"{case}.dump.pt", weights_only=True)
    ckpt_file = BASE_DUMPS / f"{case.split('.')[0]}.pt"
    up = upstream(dump["meta"]["entry"], str(ckpt_file), **dump["meta"]["extra_conf"])
    single, batched = compare(up, dump, clips)
    print(f"\n{case}: max|ours - original| single {single:.2e}, batch {batched:.2e}")
    assert single < TOL and batched < TOL
