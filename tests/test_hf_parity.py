"""Parity with HuggingFace ``transformers`` on random tiny models, both directions of import.

HF -> ours: an HF model with random (perturbed) weights is saved with ``save_pretrained``; we load the
folder with ``wav2vec2.build`` and through ``S3PRLUpstream("hf_wav2vec2_custom", ...)`` and compare every
hidden state at batch size 1. Ours -> HF: ``save_huggingface`` writes a folder that ``from_pretrained``
loads; the hidden states must agree again.

Hidden-state alignment (ours: L+1 states, the original s3prl's convention):
* post-LN models: ours[i] == HF ``hidden_states[i]`` for every i (state 0 is after pos_conv + LayerNorm);
* stable-layer-norm (pre-LN) and conformer models: ours[i] == ``hidden_states[i]`` for i < L, and
  ours[L] == ``last_hidden_state`` (after the encoder's final LayerNorm). transformers >= 5 returns the
  last layer's output *before* that LayerNorm as ``hidden_states[L]``; transformers 4.x (what the original
  ``hf_wav2vec2`` entry ran on) returned ``last_hidden_state`` there, which is what we return.
"""

from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from s3prl.convert import huggingface as hf_convert  # noqa: E402
from s3prl.nn import S3PRLUpstream  # noqa: E402
from s3prl.upstream import wav2vec2  # noqa: E402

TOL = 1e-4
CONV = dict(conv_dim=(32,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2))
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, **CONV)

# name: (config class, model class, config overrides, do_normalize or None for no preprocessor_config.json)
CASES = {
    "wav2vec2_group": ("Wav2Vec2Config", "Wav2Vec2Model", {}, False),
    "wav2vec2_layer": ("Wav2Vec2Config", "Wav2Vec2ForCTC",
                       dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
                            conv_dim=(24,) * 7), True),
    "hubert": ("HubertConfig", "HubertModel", {}, False),
    "hubert_large": ("HubertConfig", "HubertForCTC",
                     dict(feat_extract_norm="layer", do_stable_layer_norm=True, hidden_act="gelu_new"), None),
    "wavlm": ("WavLMConfig", "WavLMForCTC", dict(num_buckets=320, max_bucket_distance=800), False),
    "wavlm_large": ("WavLMConfig", "WavLMModel",
                    dict(feat_extract_norm="layer", do_stable_layer_norm=True, num_buckets=320,
                         max_bucket_distance=800, conv_dim=(48,) * 7), True),
    "data2vec_audio": ("Data2VecAudioConfig", "Data2VecAudioModel",
                       dict(num_conv_pos_embeddings=5, conv_pos_kernel_size=19), True),
    "unispeech_sat": ("UniSpeechSatConfig", "UniSpeechSatForPreTraining", {}, False),
    "conformer_rel_pos": ("Wav2Vec2ConformerConfig", "Wav2Vec2ConformerForPreTraining",
                          dict(position_embeddings_type="relative", hidden_act="swish",
                               feat_extract_norm="layer"), True),
    "conformer_rope": ("Wav2Vec2ConformerConfig", "Wav2Vec2ConformerModel",
                       dict(position_embeddings_type="rotary", hidden_act="swish"), False),
}


def perturb(model: torch.nn.Module, seed: int = 0) -> None:
    """Move every weight off its init value (trained-model magnitudes), so a dropped tensor shows."""
    gen = torch.Generator().manual_seed(seed)
    noise = lambda t, s: torch.randn(t.shape, generator=gen, dtype=t.dtype) * s  # noqa: E731
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "rel_attn_embed" in name:
                p.copy_(noise(p, 1.0))  # at init scale the gated bias would be invisible
            else:
                p.add_(noise(p, 0.1 * float(p.std()) if p.numel() > 1 else 0.0) + noise(p, 0.05))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.add_(noise(b, 0.1))
            elif name.endswith("running_var"):
                b.mul_(torch.exp(noise(b, 0.2)))


def make_hf(case: str, seed: int = 0):
    cfg_cls, model_cls, overrides, _ = CASES[case]
    config = getattr(transformers, cfg_cls)(**{**TINY, **overrides, "layerdrop": 0.0})
    torch.manual_seed(seed)
    model = getattr(transformers, model_cls)(config)
    perturb(model, seed)
    return model.eval()


def save_hf(model, folder, do_normalize):
    model.save_pretrained(folder)
    if do_normalize is not None:
        transformers.Wav2Vec2FeatureExtractor(do_normalize=do_normalize, return_attention_mask=True).save_pretrained(
            folder)


def wav(seconds: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    n = int(16000 * seconds)
    t = torch.arange(n) / 16000
    return 0.1 * torch.sin(2 * torch.pi * 220 * t) + 0.05 * torch.randn(n, generator=gen)


def hf_states(model, audio: torch.Tensor, normalize: bool) -> list[torch.Tensor]:
    """HF's hidden states in our convention (see the module docstring)."""
    if normalize:
        extractor = transformers.Wav2Vec2FeatureExtractor(do_normalize=True)
        audio = extractor(audio.numpy(), sampling_rate=16000, return_tensors="pt").input_values[0]
    with torch.no_grad():
        out = model.base_model(audio[None], output_hidden_states=True)
    return list(out.hidden_states[:-1]) + [out.last_hidden_state]


def max_diff(ours: list[torch.Tensor], refs: list[torch.Tensor]) -> float:
    assert len(ours) == len(refs)
    worst = 0.0
    for a, b in zip(ours, refs):
        n = b.size(1)
        assert a.size(1) >= n and a.size(-1) == b.size(-1)
        worst = max(worst, float((a[:, :n] - b).abs().max()))
    return worst


@pytest.mark.parametrize("case", list(CASES))
def test_hf_folder_to_ours(case, tmp_path):
    hf = make_hf(case)
    do_normalize = CASES[case][3]
    save_hf(hf, tmp_path, do_normalize)
    normalize = hf_convert.FALLBACK_DO_NORMALIZE if do_normalize is None else do_normalize
    audio = wav(1.3, seed=1)
    refs = hf_states(hf, audio, normalize)

    ours = wav2vec2.build(str(tmp_path))
    assert ours.cfg.normalize_waveform == normalize
    assert ours.num_layers == len(refs) == hf.config.num_hidden_layers + 1
    with torch.no_grad():
        states, lengths = ours(audio[None], torch.tensor([audio.numel()]))
    assert int(lengths[0][0]) == refs[0].size(1)
    assert max_diff(states, refs) < TOL

    entry = "hf_hubert_custom" if case.startswith("hubert") else "hf_wav2vec2_custom"
    upstream = S3PRLUpstream(entry, path_or_url=str(tmp_path)).eval()
    with torch.no_grad():
        all_hs, _ = upstream(audio[None], torch.tensor([audio.numel()]))
    assert max_diff(all_hs, refs) < TOL


def test_stable_layer_norm_alignment(tmp_path):
    """Documents the index facts above on the installed transformers."""
    hf = make_hf("wav2vec2_layer")
    with torch.no_grad():
        out = hf.base_model(wav(0.5, seed=2)[None], output_hidden_states=True)
    last, final_norm = out.hidden_states[-1], hf.base_model.encoder.layer_norm
    if int(transformers.__version__.split(".")[0]) >= 5:
        assert torch.allclose(final_norm(last), out.last_hidden_state, atol=1e-6)
    else:
        assert torch.equal(last, out.last_hidden_state)


ROUND_TRIP = {
    "wav2vec2": dict(),
    # HF normalises with eps 1e-7 (fairseq: 1e-5): the only thing an export cannot carry over
    "hubert": dict(extractor_mode="layer_norm", layer_norm_first=True, conv_bias=True, normalize_waveform=True,
                   normalize_eps=1e-7, extra={"name": "hubert"}),
    "wavlm": dict(relative_position_embedding=True, gru_rel_pos=True, num_buckets=320, max_distance=800),
    "data2vec-audio": dict(extractor_mode="layer_norm", pos_conv_depth=5, conv_pos=95),
    "wav2vec2-conformer": dict(layer_type="conformer", pos_enc_type="rel_pos", layer_norm_first=True,
                               extractor_mode="layer_norm"),
}


@pytest.mark.parametrize("model_type", list(ROUND_TRIP))
def test_ours_to_hf_round_trip(model_type, tmp_path):
    tiny = dict(conv_layers=tuple((32, k, s) for k, s in zip(CONV["conv_kernel"], CONV["conv_stride"])),
                embed_dim=32, ffn_dim=64, num_layers=2, num_heads=4, conv_pos=16, conv_pos_groups=4)
    cfg = wav2vec2.Wav2Vec2Config(**{**tiny, **ROUND_TRIP[model_type]})
    torch.manual_seed(3)
    ours = wav2vec2.Wav2Vec2(cfg)
    perturb(ours, seed=3)
    ours.eval()
    audio = wav(1.1, seed=4)
    with torch.no_grad():
        expected, _ = ours(audio[None], torch.tensor([audio.numel()]))

    hf_convert.save_huggingface(ours, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == model_type
    hf, info = transformers.AutoModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["unexpected_keys"]
    assert all(k.startswith(("masked_spec_embed", "encoder.pos_conv_embed")) for k in info["missing_keys"])
    assert max_diff(expected, hf_states(hf.eval(), audio, cfg.normalize_waveform)) < TOL

    again = wav2vec2.build(str(tmp_path))
    with torch.no_grad():
        states, _ = again(audio[None], torch.tensor([audio.numel()]))
    assert max_diff(states, expected) < TOL


def padded_batch(seconds=(1.6, 0.9, 1.25)):
    wavs = [wav(s, seed=10 + i) for i, s in enumerate(seconds)]
    lens = torch.tensor([w.numel() for w in wavs])
    return wavs, torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True), lens


@pytest.mark.parametrize("case", ["wav2vec2_group", "conformer_rel_pos", "conformer_rope"])
def test_padded_batch_equals_single(case, tmp_path):
    hf = make_hf(case)
    save_hf(hf, tmp_path, False)
    ours = wav2vec2.build(str(tmp_path))
    wavs, padded, lens = padded_batch()
    with torch.no_grad():
        batch, frames = ours(padded, lens)
        for b, w in enumerate(wavs):
            single, _ = ours(w[None], torch.tensor([w.numel()]))
            n = int(frames[0][b])
            assert n == single[0].size(1)
            assert max_diff([h[b:b + 1, :n] for h in batch], single) < TOL

    if case == "wav2vec2_group":  # HF (as the original hf_wav2vec2 calls it) depends on the batch here
        mask = (torch.arange(padded.size(1))[None] < lens[:, None]).long()
        with torch.no_grad():
            hf_batch = hf(padded, attention_mask=mask, output_hidden_states=True).hidden_states
            hf_single = hf(wavs[1][None], output_hidden_states=True).hidden_states
        n = hf_single[-1].size(1)
        assert float((hf_batch[-1][1, :n] - hf_single[-1][0]).abs().max()) > 1e-3


def test_folder_errors(tmp_path):
    from s3prl.convert.errors import CheckpointFormatError

    hf = make_hf("wav2vec2_group")
    save_hf(hf, tmp_path, None)
    cfg, _ = hf_convert.load_folder(tmp_path)
    assert cfg.normalize_waveform is hf_convert.FALLBACK_DO_NORMALIZE
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "sew"}))
    with pytest.raises(CheckpointFormatError, match="model_type 'sew'"):
        hf_convert.load_folder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config))
    state = hf_convert.read_weights(tmp_path)
    state["mystery.weight"] = torch.zeros(1)
    (tmp_path / "model.safetensors").unlink()
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointFormatError, match="mystery.weight"):
        hf_convert.load_folder(tmp_path)


def test_legacy_weight_norm_names_and_shards(tmp_path):
    """Older folders: weight_g/weight_v instead of parametrizations, pytorch_model.bin shards + index."""
    hf = make_hf("wav2vec2_group")
    save_hf(hf, tmp_path, False)
    state = hf_convert.read_weights(tmp_path)
    legacy = {k.replace("parametrizations.weight.original0", "weight_g")
               .replace("parametrizations.weight.original1", "weight_v"): v for k, v in state.items()}
    assert any(k.endswith("weight_g") for k in legacy)
    (tmp_path / "model.safetensors").unlink()
    keys = sorted(legacy)
    weight_map = {}
    for i, part in enumerate((keys[: len(keys) // 2], keys[len(keys) // 2:])):
        name = f"pytorch_model-0000{i + 1}-of-00002.bin"
        torch.save({k: legacy[k] for k in part}, tmp_path / name)
        weight_map.update({k: name for k in part})
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    audio = wav(0.8, seed=5)
    ours = wav2vec2.build(str(tmp_path))
    with torch.no_grad():
        states, _ = ours(audio[None], torch.tensor([audio.numel()]))
    assert max_diff(states, hf_states(hf, audio, False)) < TOL
