"""The wav2vec 2.0 family model on tiny random configurations: batch independence, lengths, invariants."""

import pytest
import torch

from s3prl.nn.upstream import check_input, match_length, pad_short
from s3prl.upstream.distiller import Distiller
from s3prl.upstream.wav2vec2 import Wav2Vec2, Wav2Vec2Config, conv_output_lengths

TINY_CONV = ((16, 10, 5),) + ((16, 3, 2),) * 4 + ((16, 2, 2),) * 2
BASE = dict(conv_layers=TINY_CONV, embed_dim=32, ffn_dim=64, num_layers=2, num_heads=4, conv_pos=16, conv_pos_groups=4)

CONFIGS = {
    "base_group_norm": dict(BASE),
    "large_layer_norm": dict(BASE, extractor_mode="layer_norm", conv_bias=True, layer_norm_first=True,
                             normalize_waveform=True),
    "data2vec": dict(BASE, extractor_mode="layer_norm", pos_conv_depth=5, conv_pos=95),
    "wavlm": dict(BASE, relative_position_embedding=True, gru_rel_pos=True, num_buckets=320, max_distance=800),
}


def randomized(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Move every parameter away from its init so that each one matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return model.eval()


def make(name: str) -> Wav2Vec2:
    torch.manual_seed(0)
    return randomized(Wav2Vec2(Wav2Vec2Config(**CONFIGS[name])))


def run(model, wavs: list[torch.Tensor]):
    """S3PRLUpstream's contract on a bare family model."""
    lens = torch.tensor([len(w) for w in wavs])
    padded = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    padded, lens = check_input(padded, lens)
    x, model_lens = pad_short(padded, lens)
    states, produced = model(x, model_lens)
    wanted = (lens - 1) // 320 + 1
    return [match_length(h, n, wanted) for h, n in zip(states, produced)], wanted


WAV_LENGTHS = [16000, 7001, 12345, 400, 3200]


@pytest.fixture(scope="module")
def wavs():
    gen = torch.Generator().manual_seed(1)
    return [torch.randn(n, generator=gen) * 0.1 for n in WAV_LENGTHS]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_padded_batch_equals_each_utterance_alone(name, wavs):
    model = make(name)
    with torch.no_grad():
        batch, lens = run(model, wavs)
        for b, wav in enumerate(wavs):
            alone, alone_len = run(model, [wav])
            assert int(alone_len[0]) == int(lens[b])
            n = int(lens[b])
            for layer, (hb, hs) in enumerate(zip(batch, alone)):
                err = (hb[b, :n] - hs[0, :n]).abs().max().item()
                assert err < 1e-4, (name, layer, b, err)


def test_distiller_padded_batch_equals_each_utterance_alone(wavs):
    torch.manual_seed(0)
    cfg = Wav2Vec2Config(**BASE, feature_selection="fairseq_layers")
    model = randomized(Distiller(cfg, n_tasks=3, inter_dim=32, final_dim=32))
    with torch.no_grad():
        batch, lens = run(model, wavs)
        assert len(batch) == 1 + 2 + 3
        for b, wav in enumerate(wavs):
            alone, _ = run(model, [wav])
            n = int(lens[b])
            for hb, hs in zip(batch, alone):
                assert (hb[b, :n] - hs[0, :n]).abs().max().item() < 1e-4


def test_group_norm_batch_dependence_is_what_we_fix(wavs):
    """A plain GroupNorm over the padded time axis (what the original does) changes short utterances."""
    model = make("base_group_norm")
    with torch.no_grad():
        batch, lens = run(model, wavs)
        alone, _ = run(model, [wavs[1]])
        conv0 = model.feature_extractor.conv_layers[0]
        padded = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)[:, None]
        naive = torch.nn.functional.group_norm(conv0.conv(padded), 16, conv0.norm.weight, conv0.norm.bias)
        ours = torch.nn.functional.group_norm(conv0.conv(wavs[1][None, None]), 16, conv0.norm.weight, conv0.norm.bias)
        n = ours.size(-1)
        assert (naive[1, :, :n] - ours[0]).abs().max() > 1e-2  # the bug exists...
        assert (batch[-1][1, : int(lens[1])] - alone[-1][0, : int(lens[1])]).abs().max() < 1e-4  # ...and is fixed


def test_hidden_state_count_shapes_and_lengths(wavs):
    model = make("base_group_norm")
    assert model.num_layers == 3 and model.hidden_sizes == [32] * 3 and model.downsample_rates == [320] * 3
    with torch.no_grad():
        states, lens = run(model, wavs)
    assert len(states) == 3
    expected = [(n - 1) // 320 + 1 for n in WAV_LENGTHS]  # ceil(len / 320)
    assert lens.tolist() == expected
    for h in states:
        assert h.shape == (len(wavs), max(expected), 32)
        for b, n in enumerate(expected):  # frames past an utterance's length are zeros
            assert h[b, n:].abs().sum() == 0


def test_conv_output_lengths_formula():
    lengths = torch.tensor([0, 399, 400, 719, 720, 16000])
    assert conv_output_lengths(lengths, TINY_CONV).tolist() == [0, 0, 1, 1, 2, 49]


def test_last_frame_repeated_like_the_original():
    """16000 samples: the convs give 49 frames, the contract 50; frame 49 repeats frame 48 (batch size 1)."""
    model = make("base_group_norm")
    with torch.no_grad():
        states, lens = run(model, [torch.randn(16000)])
    assert lens.tolist() == [50]
    assert torch.equal(states[-1][0, 49], states[-1][0, 48])


def test_short_inputs_are_padded_to_800_samples_per_utterance():
    model = make("base_group_norm")
    with torch.no_grad():
        for n in (0, 1, 400, 799, 961, 1000, 1039):
            states, lens = run(model, [torch.randn(n) * 0.1])
            assert lens.tolist() == [(n - 1) // 320 + 1]
            assert all(torch.isfinite(h).all() for h in states)


def test_feature_selection_variants(wavs):
    torch.manual_seed(0)
    default = randomized(Wav2Vec2(Wav2Vec2Config(**BASE)))
    layers = Wav2Vec2(Wav2Vec2Config(**BASE, feature_selection="fairseq_layers"))
    before = Wav2Vec2(Wav2Vec2Config(**BASE, feature_selection="fairseq_layers_before_residual"))
    layers.load_state_dict(default.state_dict())
    before.load_state_dict(default.state_dict())
    layers.eval(), before.eval()
    assert layers.num_layers == 2 and before.num_layers == 2
    with torch.no_grad():
        all_states, _ = run(default, wavs[:1])
        layer_states, _ = run(layers, wavs[:1])
        before_states, _ = run(before, wavs[:1])
    for a, b in zip(all_states[1:], layer_states):  # post-LN: layer outputs are the next layers' inputs
        assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(before_states[-1], layer_states[-1], atol=1e-3)


def test_eval_is_deterministic_and_dtype_moves(wavs):
    model = make("wavlm")
    with torch.no_grad():
        a, _ = run(model, wavs[:2])
        b, _ = run(model, wavs[:2])
        assert all(torch.equal(x, y) for x, y in zip(a, b))
        model64 = make("wavlm").double()
        c, _ = run(model64, [w.double() for w in wavs[:2]])
        assert all((x.double() - y).abs().max() < 1e-4 for x, y in zip(a, c))
