"""Bad input, handled by one rule for every family (S3PRLUpstream and the legacy hub interface).

The rules (``s3prl.nn.upstream.check_input``):
* waveforms of any floating dtype are cast to the upstream's dtype (float32 unless the model was moved with
  ``.double()`` / ``.half()``); integer and bool waveforms are refused with a TypeError saying to scale to [-1, 1];
* ``wavs_len`` holds integer sample counts: bool, floating (even whole numbers), negative, longer than the padded
  input or of the wrong shape is a ValueError / TypeError naming what was given;
* samples past an utterance's length are ignored, whatever they hold (NaN, inf): they never reach the model;
* NaN / inf inside an utterance's samples is a ValueError naming the utterance;
* an amplitude beyond any PCM full scale (> 2**31, e.g. 1e30: inf features in most families, silent garbage in
  those that normalise the waveform) is a ValueError naming the utterance and its max |amplitude| and saying
  audio belongs in [-1, 1]; features that still come out NaN/inf are a ValueError naming the utterance too.

Every family the tests can build offline (tiny checkpoints of tests/fixtures) goes through every rule.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
import torch

import s3prl.hub as hub
from s3prl.nn import S3PRLUpstream
from s3prl.nn.upstream import pad_short

HERE = Path(__file__).parent
FIX = HERE / "fixtures" / "oracle"
HV = FIX / "hubert_variants"
W1 = FIX / "wav2vec1_cpc"
KMEANS = str(W1 / "vq_kmeans_tiny.pt")
LIGHT_SUBNET = {"atten_dim": [64] * 12, "embed_dim": 32, "ffn_embed": [32, 48, 64] * 4, "heads_num": [1] * 12,
                "layer_num": 10, "slide_wsz": ["global"] * 12}


def _seeded_ast(name: str, folder: Path) -> str:
    """The AST-family checkpoints are rebuilt from their JSON specs (tests/test_ast_family.py)."""
    sys.path.insert(0, str(HERE / "oracle"))
    import seeded_ckpt

    path = folder / f"{name}.pt"
    seeded_ckpt.write(seeded_ckpt.load_spec(str(FIX / f"{name}.spec.json")), str(path))
    return str(path)


def _seeded_byol(name: str, folder: Path) -> str:
    """BYOL-A / BYOL-S checkpoints rebuilt from their JSON specs (tests/test_byol_vggish.py)."""
    spec = importlib.util.spec_from_file_location("make_byol_vggish_ckpt", HERE / "oracle" / "make_byol_vggish_ckpt.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    state = gen.build_state(json.loads((FIX / "byol_vggish" / f"{name}.spec.json").read_text()))
    path = folder / f"{name}.pth"
    torch.save(state, path)
    return str(path)


# case -> (registry entry, checkpoint: a path, None, or (maker, name) built on first use, extra_conf)
CASES = {
    "wav2vec2": ("wav2vec2_local", FIX / "wav2vec2_tiny.pt", None),
    "wav2vec2_large": ("wav2vec2_local", FIX / "wav2vec2_tiny_large.pt", None),  # layer norm, normalised wav
    "wav2vec2_conformer": ("wav2vec2_local", FIX / "wav2vec2_tiny_conformer_rel_pos.pt", None),
    "hubert": ("hubert_local", FIX / "hubert_tiny.pt", None),
    "data2vec": ("data2vec_local", FIX / "data2vec_tiny.pt", None),
    "wavlm": ("wavlm_local", FIX / "wavlm_tiny.pt", None),
    "distiller": ("distiller_local", FIX / "distiller_tiny.pt", None),
    "lighthubert": ("lighthubert_local", HV / "lighthubert_tiny.pt", {"subnet": LIGHT_SUBNET}),
    "multires_hubert": ("multires_hubert_local", HV / "multires_hubert_two_res.pt", None),
    "espnet_hubert": ("espnet_hubert_local", HV / "espnet_hubert_base" / "model.pth", None),
    "tera": ("tera_local", FIX / "tera_tiny.ckpt", None),
    "tera_kaldi_mfcc": ("tera_local", FIX / "mockingjay_variant_kaldi_mfcc.ckpt", None),
    "mockingjay": ("mockingjay_local", FIX / "mockingjay_tiny.ckpt", None),
    "audio_albert": ("audio_albert_local", FIX / "audio_albert_tiny.ckpt", None),
    "spec_augment": ("spec_augment_local", FIX / "mockingjay_variant_spec_augment.ckpt", None),
    "apc": ("apc_local", FIX / "apc_tiny.ckpt", None),
    "vq_apc": ("apc_local", FIX / "vq_apc_tiny.ckpt", None),
    "npc": ("npc_local", FIX / "npc_tiny.ckpt", None),
    "decoar": ("decoar_local", FIX / "decoar_tiny.pt", None),
    "decoar_layers": ("decoar_layers_local", FIX / "decoar_tiny.pt", None),
    "decoar2": ("decoar2_local", FIX / "decoar2_tiny.pt", None),
    "wav2vec": ("wav2vec_local", W1 / "wav2vec_tiny.pt", None),
    "vq_wav2vec": ("vq_wav2vec_custom", W1 / "vq_gumbel_tiny.pt", None),
    "discretebert": ("discretebert", W1 / "roberta_tiny.pt", {"frontend_ckpt": KMEANS}),
    "cpc": ("cpc_local", W1 / "cpc_tiny.pt", None),
    "fbank": ("fbank", None, None),
    "mfcc": ("mfcc", None, None),
    "spectrogram": ("spectrogram", None, None),
    "stft_mag": ("stft_mag", None, None),
    "log_stft_mag": ("stft_mag", None, {"model_config": str(HV / "log_stft_mag.yaml")}),
    "timit_posteriorgram": ("timit_posteriorgram_local", HV / "timit_phone_tiny.ckpt", None),
    "customized_upstream": ("customized_upstream", None, None),
    "ast": ("ast", (_seeded_ast, "ast_tiny"), {"window_secs": 0.5, "stride_secs": 0.5}),
    "ssast_frame": ("ssast_frame_base", (_seeded_ast, "ssast_frame_tiny"), {"window_secs": 0.2}),
    "ssast_patch": ("ssast_patch_base", (_seeded_ast, "ssast_patch_tiny"), None),
    "mae_ast": ("mae_ast_local", (_seeded_ast, "mae_ast_frame_tiny"), None),
    "passt": ("passt_base", (_seeded_ast, "passt_base_tiny"), None),
    "byol_a": ("byol_a_512", (_seeded_byol, "byol_a_512"), None),
    "byol_s": ("byol_s_default", (_seeded_byol, "byol_s_default"), None),
}
LENGTHS = (3200, 2000)  # utterance A, utterance B (B is padded)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """build(case) -> S3PRLUpstream in eval mode (cached for the module)."""
    folder, made = tmp_path_factory.mktemp("hardening"), {}

    def get(case: str) -> S3PRLUpstream:
        if case not in made:
            entry, ckpt, conf = CASES[case]
            if isinstance(ckpt, tuple):
                ckpt = ckpt[0](ckpt[1], folder)
            torch.manual_seed(0)  # customized_upstream draws its weights at random
            made[case] = S3PRLUpstream(entry, path_or_url=None if ckpt is None else str(ckpt),
                                       extra_conf=conf).eval()
        return made[case]

    return get


def speech(n: int, seed: int) -> torch.Tensor:
    """A voiced-looking clip in [-1, 1]: a few harmonics and noise."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    f0 = 120 + 40 * seed
    tone = sum(torch.sin(2 * torch.pi * f0 * k * t) / k for k in range(1, 4))
    return 0.2 * tone + 0.05 * torch.randn(n, generator=gen)


def pair() -> tuple[torch.Tensor, torch.Tensor]:
    """(2, T) zero-padded batch of utterances A (full length) and B (shorter), and their lengths."""
    wavs = torch.nn.utils.rnn.pad_sequence([speech(n, i) for i, n in enumerate(LENGTHS)], batch_first=True)
    return wavs, torch.tensor(LENGTHS)


def forward(up, wavs, lens):
    with torch.no_grad():
        return up(wavs, lens)


def assert_frames_equal(batch, batch_lens, b, single, single_lens, atol=1e-4):
    """Utterance ``b`` of a batch output equals a batch-size-1 output on its valid frames."""
    for layer, (h, n, ref, ref_n) in enumerate(zip(batch, batch_lens, single, single_lens)):
        frames = int(ref_n[0])
        assert int(n[b]) == frames, (layer, int(n[b]), frames)
        got, want = h[b, :frames], ref[0, :frames]
        assert torch.isfinite(got).all(), f"layer {layer}: non-finite frames"
        assert torch.allclose(got, want, atol=atol, rtol=1e-4), (layer, float((got - want).abs().max()))
        assert torch.isfinite(h[b, frames:]).all(), f"layer {layer}: non-finite padding frames"


ALL = sorted(CASES)


# ---- 1. dtypes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ALL)
def test_float_waveforms_of_any_dtype_become_the_model_dtype(case, build):
    up = build(case)
    wavs, lens = pair()
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        hs, hs_len = forward(up, wavs.to(dtype), lens)
        ref, ref_len = forward(up, wavs.to(dtype).float(), lens)  # the same samples, rounded to that dtype
        for h, r in zip(hs, ref):
            assert h.dtype == torch.float32, (dtype, h.dtype)
            assert torch.allclose(h, r, atol=1e-5, rtol=1e-5), (dtype, float((h - r).abs().max()))
        assert all(torch.equal(a, b) for a, b in zip(hs_len, ref_len))


@pytest.mark.parametrize("case", ALL)
def test_integer_and_bool_waveforms_are_refused(case, build):
    up = build(case)
    for dtype in (torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool):
        with pytest.raises(TypeError, match=r"\[-1, 1\].*32768"):
            up(torch.zeros(1, 1600, dtype=dtype), torch.tensor([1600]))


def test_double_model_keeps_double_and_casts_other_floats():
    up = S3PRLUpstream("wav2vec2_local", path_or_url=str(FIX / "wav2vec2_tiny.pt")).eval().double()
    wavs, lens = pair()
    hs, _ = forward(up, wavs.half(), lens)
    ref, _ = forward(up, wavs.half().double(), lens)
    assert hs[-1].dtype == torch.float64 and torch.allclose(hs[-1], ref[-1])


# ---- 2. lengths ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ALL)
def test_lengths_must_be_integer_sample_counts_within_the_input(case, build):
    up = build(case)
    wavs, _ = pair()
    with pytest.raises(ValueError, match=r"wavs_len.*integer.*torch.bool"):
        up(wavs, torch.tensor([True, True]))
    with pytest.raises(ValueError, match=r"wavs_len.*integer.*torch.float32"):
        up(wavs, torch.tensor([3200.5, 2000.0]))
    with pytest.raises(ValueError, match=r"wavs_len.*integer.*torch.float64"):
        up(wavs, torch.tensor([3200.0, 2000.0], dtype=torch.float64))  # whole numbers too: say what to pass
    with pytest.raises(ValueError, match=r"lie in \[0, 3200\].*\[3201, 2000\]"):
        up(wavs, torch.tensor([3201, 2000]))
    with pytest.raises(ValueError, match=r"lie in \[0, 3200\].*\[3200, -1\]"):
        up(wavs, torch.tensor([3200, -1]))
    for shape in [(2, 1), (1, 2), (), (3,)]:
        with pytest.raises(ValueError, match=r"wavs_len must be \(B,\).*B=2"):
            up(wavs, torch.full(shape, 2000, dtype=torch.long))
    with pytest.raises(TypeError, match="torch tensors"):
        up(wavs, [3200, 2000])
    hs, hs_len = forward(up, wavs, torch.tensor(LENGTHS, dtype=torch.int32))  # any integer dtype is fine
    ref, ref_len = forward(up, wavs, torch.tensor(LENGTHS))
    assert all(torch.equal(a, b) for a, b in zip(hs, ref)) and hs_len[0].dtype == torch.long


# ---- 3. what lies in the padding -------------------------------------------------------------------------


@pytest.mark.parametrize("case", ALL)
def test_nan_and_inf_in_padding_change_nothing(case, build):
    """What lies past an utterance's length never reaches the model (before: NaN * 0 stayed NaN there, and the
    families that normalise the waveform gave NaN for the padded utterance's valid frames)."""
    up = build(case)
    wavs, lens = pair()
    n_b = LENGTHS[1]
    wavs[1, n_b:] = float("nan")
    wavs[1, -100:] = float("inf")
    wavs[1, -50:] = -float("inf")
    seen = []
    hook = up.upstream.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    try:
        hs, hs_len = forward(up, wavs, lens)
    finally:
        hook.remove()
    assert torch.isfinite(seen[0]).all(), "non-finite padding reached the model"
    assert not seen[0][1, n_b:].any(), "padding must reach the model as zeros"
    assert_frames_equal(hs, hs_len, 0, *forward(up, wavs[:1], lens[:1]))
    assert_frames_equal(hs, hs_len, 1, *forward(up, wavs[1:, :n_b], lens[1:]))


@pytest.mark.parametrize("case", ALL)
def test_nan_in_one_utterance_does_not_reach_the_others(case, build):
    """Family contract: an utterance's frames never depend on another's samples, even non-finite ones (the
    family model is called directly: S3PRLUpstream refuses such input before the model runs)."""
    model = build(case).upstream
    for poisoned, clean in ((1, 0), (0, 1)):
        wavs, lens = pair()
        wavs[poisoned, 500] = float("nan")
        wavs[poisoned, 900] = float("inf")
        with torch.no_grad():
            states, produced = model(*pad_short(wavs, lens))
            one = slice(clean, clean + 1)
            alone, alone_produced = model(*pad_short(wavs[one, : LENGTHS[clean]], lens[one]))
        for layer, (h, n, ref, ref_n) in enumerate(zip(states, produced, alone, alone_produced)):
            frames = int(ref_n[0])
            assert int(n[clean]) == frames
            got = h[clean, :frames]
            assert torch.isfinite(got).all(), f"layer {layer}: utterance {poisoned}'s NaN reached utterance {clean}"
            assert torch.allclose(got, ref[0, :frames], atol=1e-4, rtol=1e-4), layer


# ---- 4. non-finite and absurd amplitudes -----------------------------------------------------------------


@pytest.mark.parametrize("case", ALL)
def test_nan_or_inf_inside_an_utterance_is_named(case, build):
    up = build(case)
    for bad in (float("nan"), float("inf")):
        wavs, lens = pair()
        wavs[1, 700] = bad
        with pytest.raises(ValueError, match=r"NaN or inf in utterance\(s\) \[1\]"):
            up(wavs, lens)


def peak(wav: torch.Tensor) -> str:
    return re.escape(f"{float(wav.abs().max()):.3g}")


@pytest.mark.parametrize("case", ALL)
def test_absurd_amplitude_is_refused_naming_the_utterance(case, build):
    """1e30 gives inf features in most families and silent garbage in those that normalise the waveform
    (float32 squares overflow past ~1e19): every family refuses it, naming the utterance and its amplitude."""
    up = build(case)
    wavs, lens = pair()
    wavs[1] *= 1e30
    with pytest.raises(ValueError, match=rf"utterance\(s\) \[1\] have max \|amplitude\| {peak(wavs[1])}.*\[-1, 1\]"):
        forward(up, wavs, lens)


@pytest.mark.parametrize("case", ALL)
def test_int16_scale_audio_gives_finite_features(case, build):
    """Un-normalised int16-scale floats are a common slip, not an error: features stay finite."""
    up = build(case)
    wavs, lens = pair()
    hs, hs_len = forward(up, wavs * 32767, lens)
    for h, n in zip(hs, hs_len):
        assert all(torch.isfinite(h[b, : int(n[b])]).all() for b in range(2))


class Squares(torch.nn.Module):
    """A stand-in family whose features overflow float32 for loud inputs: x**2 * 1e37."""

    num_layers, hidden_sizes, downsample_rates = 1, [1], [320]

    def forward(self, wavs, wavs_len):
        frames = (wavs_len - 1) // 320 + 1
        return [wavs[:, ::320, None] ** 2 * 1e37], [frames]


def test_non_finite_features_are_named_with_the_amplitude():
    up = S3PRLUpstream("customized_upstream")
    up.upstream = Squares()
    wavs, lens = pair()
    forward(up, wavs, lens)  # in [-1, 1]: finite
    wavs[1] *= 100
    with pytest.raises(ValueError, match=rf"customized_upstream: the features of utterance\(s\) \[1\] are NaN or inf "
                                         rf"\(max \|amplitude\| {peak(wavs[1])}\).*\[-1, 1\]"):
        forward(up, wavs, lens)
    legacy = hub.LegacyUpstream(Squares(), "squares")
    with pytest.raises(ValueError, match=r"squares: the features of utterance\(s\) \[1\]"):
        legacy([wavs[0], wavs[1, : LENGTHS[1]]])
    wavs, lens = pair()
    up.upstream = Squares()
    up.upstream.forward = lambda w, n: ([torch.full((2, 10, 1), float("nan"))], [torch.tensor([10, 7])])
    with pytest.raises(ValueError, match=r"utterance\(s\) \[0, 1\].*in \[-1, 1\]: check the checkpoint"):
        forward(up, wavs, lens)


def test_amplitude_error_names_the_utterance_for_the_group_norm_wav2vec2(build):
    wavs, lens = pair()
    wavs[0] *= 1e30
    with pytest.raises(ValueError, match=rf"utterance\(s\) \[0\] have max \|amplitude\| {peak(wavs[0])}.*\[-1, 1\]"):
        forward(build("wav2vec2"), wavs, lens)


def test_float64_beyond_float32_range_is_an_amplitude_error(build):
    wavs, lens = pair()
    wavs = wavs.double()
    wavs[1, 10] = 1e300  # finite in float64, inf once cast
    with pytest.raises(ValueError, match=r"utterance\(s\) \[1\].*1e\+300.*\[-1, 1\]"):
        forward(build("fbank"), wavs, lens)


# ---- the legacy hub interface applies the same rules --------------------------------------------------------

HUB_CASES = ["wav2vec2", "wav2vec2_large", "distiller", "tera", "apc", "fbank", "cpc", "byol_a"]


@pytest.mark.parametrize("case", HUB_CASES)
def test_legacy_hub_same_rules(case, build):
    up = build(case)
    legacy = hub.LegacyUpstream(up.upstream, case)
    a, b = speech(LENGTHS[0], 0), speech(LENGTHS[1], 1)
    with torch.no_grad():
        ref = legacy([a, b])["hidden_states"]
        for dtype in (torch.float64, torch.float16, torch.bfloat16):
            out = legacy([a.to(dtype), b.to(dtype)])["hidden_states"]
            want = legacy([a.to(dtype).float(), b.to(dtype).float()])["hidden_states"]
            assert all(o.dtype == torch.float32 and torch.allclose(o, w, atol=1e-5) for o, w in zip(out, want))
        assert len(ref) == up.num_layers
    with pytest.raises(TypeError, match=r"\[-1, 1\].*32768"):
        legacy([a, (b * 32767).short()])
    with pytest.raises(ValueError, match=r"NaN or inf in utterance\(s\) \[1\]"):
        legacy([a, torch.where(torch.arange(len(b)) == 5, float("nan"), b)])
    with pytest.raises(ValueError, match=rf"utterance\(s\) \[1\] have max \|amplitude\| {peak(b * 1e30)}"):
        legacy([a, b * 1e30])


def test_legacy_hub_mos_entry_checks_its_input():
    model = hub.mos_wav2vec2_local(ckpt=str(HV / "mos_wav2vec2_tiny.ckpt"),
                                   upstream_ckpt=str(HV / "front_wav2vec2_tiny.pt"))
    a, b = speech(LENGTHS[0], 0), speech(LENGTHS[1], 1)
    with torch.no_grad():
        ref = model([a, b])["scores"]
        assert torch.allclose(model([a.double(), b.double()])["scores"], ref, atol=1e-5)
    with pytest.raises(ValueError, match=r"NaN or inf in utterance\(s\) \[0\]"):
        model([a / 0, b])
    with pytest.raises(TypeError, match="32768"):
        model([a.short(), b])
