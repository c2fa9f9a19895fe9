"""The registry table: every original name is there, aliases resolve, URLs and cards are sane."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from s3prl.registry import REGISTRY, Entry, ModelCard, available_names, resolve

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "docs" / "s3prl-reference.md"

# The original s3prl/hub.py exposes 192 entry functions (Appendix A: 191 distinct hubconf names, plus
# `timit_posteriorgram`). We add five names the original defines in hubconfs that hub.py does not import.
ORIGINAL_COUNT = 192
EXTRA_NAMES = {
    "timit_posteriorgram_local",
    "timit_posteriorgram_url",
    "spec_augment",
    "spec_augment_local",
    "spec_augment_url",
}
EXPECTED_COUNT = ORIGINAL_COUNT + len(EXTRA_NAMES)  # 197
# the original's options(only_registered_ckpt=True) keeps 133 of its 192 names; + spec_augment here
EXPECTED_REGISTERED = 133 + 1

USER_SUFFIXES = ("_local", "_url", "_custom", "_gdriveid")

KNOWN_FAMILIES = {
    "apc", "npc", "ast", "audio_albert", "baseline", "byol_a", "byol_s", "cpc", "data2vec", "decoar",
    "decoar_layers", "decoar2", "distiller", "espnet_hubert", "example", "hf_hubert", "hf_wav2vec2", "hubert",
    "lighthubert", "log_stft", "mae_ast", "mockingjay", "tera", "mos_prediction", "multires_hubert", "pase",
    "passt", "roberta", "ssast", "unispeech_sat", "vggish", "vq_wav2vec", "wav2vec", "wav2vec2", "wavlm",
    "timit_phone", "spec_augment",
}
# families whose rows may have no checkpoint URL (feature front-ends, user-config entries, templates)
NO_CHECKPOINT_FAMILIES = {"baseline", "log_stft", "example"}


def _kind(entry: Entry) -> str:
    if entry.alias_of is not None:
        return "alias"
    if entry.user_ckpt:
        return "user"
    if entry.urls:
        return "named"
    return "builtin"


def _appendix_rows() -> list[tuple[str, str | None]]:
    """(name, first backticked name of the "→" column or None) for every row of Appendix A."""
    text = REFERENCE.read_text(encoding="utf-8")
    start = text.index("## Appendix A")
    rows = []
    for line in text[start:].splitlines():
        m = re.match(r"^\| `([^`]+)`[^|]*\| ([^|]*)\|", line)
        if m:
            target = re.match(r"\s*`([^`]+)`", m.group(2))
            rows.append((m.group(1), target.group(1) if target else None))
    return rows


def test_expected_count():
    assert len(REGISTRY) == EXPECTED_COUNT
    assert EXTRA_NAMES <= set(REGISTRY)
    assert len(set(REGISTRY) - EXTRA_NAMES) == ORIGINAL_COUNT


@pytest.mark.skipif(not REFERENCE.is_file(), reason="reference document not available")
def test_every_appendix_name_is_registered():
    rows = _appendix_rows()
    names = {name for name, _ in rows} | {"timit_posteriorgram"}
    assert len(names) == ORIGINAL_COUNT
    missing = names - set(REGISTRY)
    assert not missing, f"missing registry names: {sorted(missing)}"
    assert set(REGISTRY) - names == EXTRA_NAMES


@pytest.mark.skipif(not REFERENCE.is_file(), reason="reference document not available")
def test_appendix_forwarders_are_aliases_exactly_where_the_target_is_a_model():
    for name, target in _appendix_rows():
        entry = REGISTRY[name]
        if target is not None and target in REGISTRY and not target.endswith(USER_SUFFIXES):
            assert entry.alias_of == target, name
        else:
            assert entry.alias_of is None, name


def test_aliases_resolve_to_model_rows_without_loops():
    for name, entry in REGISTRY.items():
        if entry.alias_of is None:
            continue
        assert entry.alias_of in REGISTRY, f"{name} -> unknown {entry.alias_of}"
        assert entry.alias_of != name
        assert entry.urls == () and entry.family == "" and not entry.user_ckpt
        # walk by hand too, so a loop is caught even if resolve() changes
        seen, cur = {name}, entry
        while cur.alias_of is not None:
            assert cur.alias_of not in seen, f"alias loop through {name}"
            seen.add(cur.alias_of)
            cur = REGISTRY[cur.alias_of]
        canonical, final = resolve(name)
        assert final.alias_of is None and final is cur
        assert not final.user_ckpt, f"{name} resolves to a user-checkpoint row {canonical}"


def test_known_aliases():
    assert resolve("wav2vec2")[0] == "wav2vec2_base_960"
    assert resolve("hubert")[0] == "hubert_base"
    assert resolve("wavlm")[0] == "wavlm_base_plus"
    assert resolve("tera")[0] == "tera_logMelBase_T_F_M_AdamW_b32_1m_960hr_drop1"
    assert resolve("mockingjay")[0] == "mockingjay_logMelLinearLarge_T_AdamW_b32_500k_360hr_drop1"
    assert resolve("baseline")[0] == "fbank"
    assert resolve("discretebert")[0] == "vq_wav2vec_kmeans_roberta"
    assert resolve("vq_apc")[0] == "vq_apc_360hr"
    # chains of the original that end in a *_custom entry are named rows, not aliases
    assert REGISTRY["hubert_base"].alias_of is None and REGISTRY["hubert_base"].urls
    assert REGISTRY["hubert_custom"].user_ckpt


def test_families_are_known():
    for name, entry in REGISTRY.items():
        if entry.alias_of is None:
            assert entry.family in KNOWN_FAMILIES, f"{name}: unknown family {entry.family!r}"
    assert REGISTRY["vq_apc_360hr"].family == "apc"  # vq_apc forwards to apc_url in the original


def test_model_rows_have_a_checkpoint_source():
    for name, entry in REGISTRY.items():
        kind = _kind(entry)
        if kind == "builtin":
            assert entry.family in NO_CHECKPOINT_FAMILIES or (
                entry.family == "passt" and "arch" in entry.extra_conf
            ), f"{name} has no checkpoint URL and no documented non-URL source"
        if kind in ("user", "alias"):
            assert entry.urls == () and entry.original_urls == ()


def test_urls_are_https():
    for name, entry in REGISTRY.items():
        for url in entry.urls + entry.original_urls:
            assert url.startswith("https://"), (name, url)
            assert not re.search(r"\s", url), (name, url)
            if "dropbox.com" in url:
                assert re.fullmatch(r"https://www\.dropbox\.com/s/[a-z0-9]+/[^/?]+\?dl=1", url), (name, url)
            if "huggingface.co" in url:
                assert "/resolve/main/" in url or "/raw/main/" in url, (name, url)
        if entry.sha256:
            assert len(entry.sha256) == len(entry.urls), name
            for digest in entry.sha256:
                assert digest is None or re.fullmatch(r"[0-9a-f]{64}", digest), name


def test_converted_and_original_urls():
    e = REGISTRY["hubert_base"]
    assert e.urls == ("https://huggingface.co/s3prl/converted_ckpts/resolve/main/hubert_base_ls960.pt",)
    assert e.original_urls == ("https://dl.fbaipublicfiles.com/hubert/hubert_base_ls960.pt",)
    e = REGISTRY["wav2vec2_base_960"]
    assert e.urls == ("https://huggingface.co/s3prl/converted_ckpts/resolve/main/wav2vec_small.pt",)
    assert e.original_urls == ("https://dl.fbaipublicfiles.com/fairseq/wav2vec/wav2vec_small.pt",)
    assert REGISTRY["tera_logMelBase_T_F_AdamW_b32_200k_100hr"].urls == (
        "https://www.dropbox.com/s/o36qt1zgtn3tsep/states-200000.ckpt?dl=1",
    )
    for name, entry in REGISTRY.items():
        if entry.family == "espnet_hubert" and entry.urls:
            assert len(entry.urls) == 2, name
            assert entry.urls[0].endswith(".pth") and entry.urls[1].endswith("/config.yaml"), name
    assert len(REGISTRY["vggish"].urls) == 2
    assert len(REGISTRY["pase_plus"].urls) == 2


def test_extra_conf_defaults():
    assert dict(REGISTRY["ast"].extra_conf) == {"window_secs": 10.24, "stride_secs": 10.24, "feature_selection": "cls"}
    assert REGISTRY["ssast_frame_base"].extra_conf["window_secs"] == 1.0
    assert REGISTRY["byol_a_512"].extra_conf["window_secs"] == 1
    assert REGISTRY["byol_a_512"].extra_conf["stride_secs"] == 1
    assert dict(REGISTRY["byol_s_cvt"].extra_conf) == {"model_name": "cvt", "window_secs": 1, "hop_secs": 0.05}
    for name, entry in REGISTRY.items():
        if entry.family == "passt":
            assert entry.extra_conf["window_secs"] == 0.16 and entry.extra_conf["stride_secs"] == 0.05
            assert entry.extra_conf["arch"] == name[len("passt_"):]
        if entry.family in ("mockingjay", "tera", "audio_albert", "wav2vec2", "hubert"):
            assert dict(entry.extra_conf) == {}, name
    with pytest.raises(TypeError):
        REGISTRY["ast"].extra_conf["window_secs"] = 1.0  # read-only


def test_only_registered_ckpt_drops_exactly_the_user_rows():
    everything = available_names()
    assert everything == list(REGISTRY)
    registered = available_names(only_registered_ckpt=True)
    assert registered == [n for n, e in REGISTRY.items() if not e.user_ckpt]
    assert len(registered) == EXPECTED_REGISTERED
    # same rule as the original's hub.options(): by name suffix
    for name, entry in REGISTRY.items():
        assert entry.user_ckpt == name.endswith(USER_SUFFIXES), name


def test_cards():
    for name, entry in REGISTRY.items():
        if entry.urls:
            card = entry.card
            assert isinstance(card, ModelCard), f"{name} has a checkpoint but no model card"
            for field in ("paper", "citation", "data", "architecture"):
                value = getattr(card, field)
                assert isinstance(value, str) and value.strip() and "\n" not in value, (name, field)


def test_unknown_name_suggests():
    with pytest.raises(ValueError, match="wav2vec2"):
        resolve("wav2vec_2")
