"""Mockingjay / TERA / Audio ALBERT / SpecAugment Transformer (s3prl/upstream/mockingjay.py).

Parity fixtures (tests/fixtures/oracle, made by tests/oracle/make_mockingjay_fixtures.sh with the ORIGINAL s3prl):
NAME.ckpt is a checkpoint written by the original classes, NAME.oracle.pt the original S3PRLUpstream's hidden
states at batch size 1. The tiny presets chunk at 100 frames, so clips over 1 s take the chunked path; the
``mockingjay_variant_*`` files cover pre-LN, the shared layer with pre-LN, Kaldi fbank / MFCC and STFT MFCC /
power-spectrum front-ends with deltas, TensorFlow ``gamma``/``beta`` names, the legacy ``Config`` layout, the
SpecAugment recipe's config, and digital silence (whose frames the original's attention mask drops).
"""

import math
import os
from pathlib import Path

import pytest
import torch
import yaml

from parity import compare_with_dump
from s3prl import checkpoint as ckpt_io
from s3prl.convert.errors import CheckpointFormatError
from s3prl.nn import S3PRLUpstream
from s3prl.upstream import mockingjay

FIXTURES = Path(__file__).parent / "fixtures" / "oracle"
TERA = FIXTURES / "tera_tiny.ckpt"
CASES = [  # (entry, checkpoint, reference)
    ("tera_local", "tera_tiny", "tera_tiny"),
    ("tera_local", "tera_tiny_legacy", "tera_tiny"),  # same weights, config under 'Config'
    ("mockingjay_local", "mockingjay_tiny", "mockingjay_tiny"),
    ("audio_albert_local", "audio_albert_tiny", "audio_albert_tiny"),
    *[("tera_local", f"mockingjay_variant_{v}", f"mockingjay_variant_{v}")
      for v in ("preln_fbank", "mfcc_delta", "linear_gamma", "kaldi_mfcc")],
    ("spec_augment_local", "mockingjay_variant_spec_augment", "mockingjay_variant_spec_augment"),
]


pytestmark = pytest.mark.usefixtures("one_thread")


def upstream(path=TERA, entry="tera_local", **extra):
    return S3PRLUpstream(entry, path_or_url=str(path), extra_conf=extra or None).eval()


def load_reference(name):
    """NAME.oracle.pt; fixtures fed the same waveforms as an earlier one name that file in 'wavs_from'."""
    dump = torch.load(FIXTURES / f"{name}.oracle.pt", weights_only=True)
    if "wavs_from" in dump:
        dump["wavs"] = torch.load(FIXTURES / dump.pop("wavs_from"), weights_only=True)["wavs"]
        assert [len(w) for w in dump["wavs"]] == list(dump["meta"]["wav_lengths"])
    return dump


def run(model, wavs):
    lens = torch.tensor([len(w) for w in wavs])
    with torch.no_grad():
        return model(torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True), lens)


def speech(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    return (0.3 * torch.sin(2 * math.pi * 150 * t) + 0.05 * torch.randn(n, generator=g)).float()


@pytest.mark.parametrize("entry,ckpt,ref", CASES, ids=[c[1] for c in CASES])
def test_same_hidden_states_as_the_original(entry, ckpt, ref):
    err = compare_with_dump(upstream(FIXTURES / f"{ckpt}.ckpt", entry), load_reference(ref))
    assert err["single"] < 1e-4 and err["batch"] < 1e-4, err


def test_layout_of_hidden_states():
    model = upstream()
    assert (model.num_layers, model.hidden_sizes, model.downsample_rates) == (3, [32] * 3, [160] * 3)
    shared = upstream(FIXTURES / "mockingjay_variant_mfcc_delta.ckpt")  # 3 shared pre-LN layers
    assert shared.num_layers == 4 and len(shared.upstream.encoder.layers) == 1
    hs, lens = run(model, [speech(16000), speech(3000, 1)])
    assert len(hs) == 3 and all(h.shape == (2, 100, 32) for h in hs)
    assert all(torch.equal(n, torch.tensor([100, 19])) for n in lens)


def test_chunks_follow_torch_chunk_per_utterance():
    for frames in [1, 5, 99, 100, 101, 150, 199, 201, 250, 1234]:
        want = [c.size(0) for c in torch.chunk(torch.zeros(frames), math.ceil(frames / 100))] if frames > 100 \
            else [frames]
        assert mockingjay.chunk_sizes(frames, 100) == want, frames
    assert mockingjay.chunk_sizes(5000, 0) == [5000] and mockingjay.chunk_sizes(0, 100) == []


def test_padded_batch_gives_each_utterance_its_own_result():
    """Chunks and masks follow each utterance, not the padded batch (the original differs by up to 4.9 here)."""
    model = upstream()
    wavs = [speech(n, i) for i, n in enumerate([33000, 16100, 900, 24000])]
    wavs[2] = torch.zeros(900)  # digital silence: every frame masked
    batch, blens = run(model, wavs)
    for b, wav in enumerate(wavs):
        alone, alens = run(model, [wav])
        for h, a, n in zip(batch, alone, alens):
            assert torch.allclose(h[b, : int(n[0])], a[0], atol=1e-5)


def test_attention_mask_rule():
    """The first n frames of a chunk are attended to, n = number of frames with a non-zero feature sum."""
    feats = torch.ones(2, 6, 3)
    feats[0, 1] = 0  # one zero-sum frame in the middle: the LAST frame of the chunk is dropped
    feats[1, 2:] = 0  # padding-free but silent tail
    mask = mockingjay.chunk_mask(feats, torch.tensor([6, 4]))[:, 0, 0]
    inf = float("-inf")
    assert mask.tolist() == [[0, 0, 0, 0, 0, -10000], [0, 0, -10000, -10000, inf, inf]]


@pytest.mark.parametrize("n", [0, 1, 400, 799])
def test_short_inputs(n):
    model = upstream()
    hs, lens = run(model, [speech(n), speech(20000, 1)])
    single, slens = run(model, [speech(n)])
    for h, ln, s, sl in zip(hs, lens, single, slens):
        assert int(ln[0]) == int(sl[0]) == math.ceil(n / 160) and torch.isfinite(h).all()
        assert torch.allclose(h[0, : int(ln[0])], s[0, : int(ln[0])], atol=1e-5)


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match="window_secs"):
        upstream(window_secs=1.0)


def write_options(tmp_path, **options):
    path = tmp_path / "options.yaml"
    path.write_text(yaml.safe_dump({k: str(v) for k, v in options.items()}))
    return str(path)


def test_options_config_is_checked(tmp_path):
    for bad, match in [({"weighted_sun": True}, "weighted_sun"), ({"output_hidden_states": False}, "hidden"),
                       ({"no_grad": False, "spec_aug_prev": False}, "spec_aug_prev"), ({"spec_aug": "maybe"}, "maybe")]:
        with pytest.raises(ValueError, match=match):
            upstream(options_config=write_options(tmp_path, **bad))
    # the shipped options.yaml keys the original ignores or overwrites are accepted
    upstream(options_config=write_options(tmp_path, weighted_sum=False, select_layer=999, ckpt_file="", no_grad=True))


def test_options_that_change_outputs(tmp_path):
    wav = [speech(8000)]
    ref, _ = run(upstream(), wav)
    # load_pretrain False: the original's random initialisation instead of the stored weights
    rand, _ = run(upstream(options_config=write_options(tmp_path, load_pretrain=False)), wav)
    assert not torch.allclose(rand[-1], ref[-1], atol=1e-2) and torch.isfinite(rand[-1]).all()
    # permute_input True: the original (batch size 1) encodes every frame alone, at position 0
    perm = upstream(options_config=write_options(tmp_path, permute_input=True))
    hs, _ = run(perm, wav)
    enc = perm.upstream.encoder
    feats = perm.upstream.front_end(wav[0])  # (T, D)
    x0 = enc.input_norm(enc.spec_transform(feats) + mockingjay.sinusoid_table(1, 32))
    assert torch.allclose(hs[0][0], x0[: hs[0].size(1)], atol=1e-5)
    # dropout / spec_aug act in training mode only
    noisy = upstream(options_config=write_options(tmp_path, dropout=0.5, spec_aug=True))
    assert torch.allclose(run(noisy, wav)[0][-1], ref[-1], atol=1e-5)
    noisy.train()
    assert not torch.allclose(run(noisy, wav)[0][-1], ref[-1], atol=1e-3)


def test_no_grad_option(tmp_path):
    wav, lens = speech(4000)[None], torch.tensor([4000])
    assert upstream()(wav, lens)[0][-1].requires_grad
    frozen = upstream(options_config=write_options(tmp_path, no_grad=True))
    assert not frozen(wav, lens)[0][-1].requires_grad


def test_checkpoint_of_another_family_is_refused():
    with pytest.raises(CheckpointFormatError, match="DistilHuBERT"):
        upstream(FIXTURES / "distiller_tiny.pt")
    with pytest.raises(CheckpointFormatError, match="model_weight"):
        upstream(FIXTURES / "wav2vec2_tiny.pt")


def test_missing_and_unknown_weights_are_named(tmp_path):
    obj = ckpt_io.load_checkpoint(str(TERA))
    state = dict(obj["Transformer"])
    del state["encoder.layer.1.output.dense.bias"]
    torch.save({**obj, "Transformer": state}, tmp_path / "missing.ckpt")
    with pytest.raises(CheckpointFormatError, match="ffn_out.bias"):
        upstream(tmp_path / "missing.ckpt")
    state = {**obj["Transformer"], "encoder.pooler.dense.weight": torch.zeros(3)}
    torch.save({**obj, "Transformer": state}, tmp_path / "extra.ckpt")
    with pytest.raises(CheckpointFormatError, match="encoder.pooler.dense.weight"):
        upstream(tmp_path / "extra.ckpt")


def outputs_with(model, state, wav):
    mockingjay.load_state(model.upstream.encoder, mockingjay.map_state(state, model.upstream.cfg, "test"), "test")
    return run(model, [wav])[0]


def test_every_stored_weight_matters():
    """Perturbing any one stored tensor changes the outputs (attention key biases cancel in the softmax)."""
    model, wav = upstream(), speech(4000)
    state = dict(ckpt_io.load_checkpoint(str(TERA))["Transformer"])
    ref = outputs_with(model, state, wav)
    g = torch.Generator().manual_seed(0)
    for key, value in state.items():
        if key.endswith("attention.self.key.bias"):
            continue
        out = outputs_with(model, {**state, key: value + 0.5 * torch.randn(value.shape, generator=g)}, wav)
        assert max((o - r).abs().max().item() for o, r in zip(out, ref)) > 1e-5, key


def test_shared_layer_loads_the_last_copy_like_the_original():
    """ALBERT checkpoints store the shared layer once per depth; the original's loader keeps the last copy."""
    model, wav = upstream(FIXTURES / "audio_albert_tiny.ckpt", "audio_albert_local"), speech(6000)
    state = dict(ckpt_io.load_checkpoint(str(FIXTURES / "audio_albert_tiny.ckpt"))["Transformer"])
    ref = outputs_with(model, state, wav)
    key = "encoder.layer.{}.intermediate.dense.weight"
    assert torch.equal(outputs_with(model, {**state, key.format(0): state[key.format(0)] + 1}, wav)[-1], ref[-1])
    assert not torch.allclose(outputs_with(model, {**state, key.format(1): state[key.format(1)] + 1}, wav)[-1],
                              ref[-1])


def test_legacy_hub_interface():
    import s3prl.hub as hub

    expert = hub.tera_local(ckpt=str(TERA)).eval()
    with torch.no_grad():
        out = expert([speech(16000), speech(5000, 1)])
    assert len(out["hidden_states"]) == 3 and out["last_hidden_state"] is out["hidden_states"][-1]
    assert out["hidden_state_0"].shape == (2, 101, 32) and expert.get_downsample_rates("hidden_states") == 160


def test_double_precision_and_determinism():
    model, wav = upstream(), [speech(12000)]
    a, _ = run(model, wav)
    assert all(torch.equal(x, y) for x, y in zip(a, run(model, wav)[0]))
    hs, _ = run(model.double(), [wav[0].double()])
    assert hs[-1].dtype == torch.float64 and torch.allclose(hs[-1].float(), a[-1], atol=1e-4)


ORACLE_DUMPS = Path(os.environ.get("S3PRL_ORACLE_DUMPS", "/tmp/s3prl-oracle-dumps"))
ORACLE_CASES = ["tera_base", "mockingjay_base", "audio_albert_base", "mockingjay_large"]


@pytest.mark.oracle
@pytest.mark.parametrize("case", ORACLE_CASES)
def test_original_numbers_full_size(case):
    """Base presets and the 12-layer mockingjay large (tests/oracle/make_mockingjay_fixtures.sh --dumps)."""
    dump_path = ORACLE_DUMPS / f"{case}.oracle.pt"
    if not dump_path.exists():
        pytest.skip(f"{dump_path} missing: run tests/oracle/make_mockingjay_fixtures.sh --dumps")
    torch.set_num_threads(2)
    family = case.rsplit("_", 1)[0]
    err = compare_with_dump(upstream(ORACLE_DUMPS / f"{case}.ckpt", f"{family}_local"),
                            torch.load(dump_path, weights_only=True))
    print(f"\n{case}: max|ours - original| single {err['single']:.2e}, batch {err['batch']:.2e}")
    assert err["single"] < 1e-4 and err["batch"] < 1e-4, err
