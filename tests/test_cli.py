"""The ``s3prl`` command: help per subcommand, list/info, the one error handler (no tracebacks), --debug."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from s3prl.cli import build_parser, main
from s3prl.cli import listing


def run_cli(*argv, env=None, timeout=120):
    """The real command in a subprocess: what a user sees on stdout / stderr, and the exit status."""
    return subprocess.run([sys.executable, "-m", "s3prl.cli", *argv], capture_output=True, text=True,
                          timeout=timeout, env=env)


def help_text(*argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*argv, "--help"])
    assert exit_info.value.code == 0
    return ""


@pytest.mark.parametrize("argv,must_contain", [
    (["downstream", "train"], ["--upstream", "--auto_resume", "--stop-after", "examples:", "s3prl downstream train -u"]),
    (["downstream", "evaluate"], ["--evaluate_split", "examples:", "s3prl downstream evaluate -e"]),
    (["downstream", "tasks"], ["data layout"]),
    (["extract"], ["--format", "npz", "hdf5", "kaldi", "manifest.tsv", "examples:", "--strict"]),
    (["list"], ["--implemented", "--status", "examples:"]),
    (["info"], ["allowed values", "example:"]),
])
def test_each_subcommand_has_its_own_help(capsys, argv, must_contain):
    help_text(*argv)
    text = capsys.readouterr().out
    for needle in must_contain:
        assert needle in text, (argv, needle)
    assert text != help_of(["downstream"], capsys) or argv == ["downstream"]


def help_of(argv, capsys) -> str:
    help_text(*argv)
    return capsys.readouterr().out


def test_train_help_differs_from_downstream_help(capsys):
    assert help_of(["downstream", "train"], capsys) != help_of(["downstream"], capsys)


def test_tasks_lists_every_task_with_its_layout(capsys):
    from s3prl.downstream import tasks

    assert main(["downstream", "tasks"]) == 0
    out = capsys.readouterr().out
    for name in tasks.TASKS:
        assert name in out
    assert "<root>/recordings/{digit}_{speaker}_{take}.wav" in out
    assert main(["downstream", "tasks", "fsdd_digits"]) == 0
    one = capsys.readouterr().out
    assert "dev_takes" in one and "data layout" in one


def list_rows(capsys, *argv) -> list[dict]:
    assert main(["list", "--json", *argv]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_list_tells_statuses_apart_and_its_flags_filter(capsys, monkeypatch):
    from s3prl import upstream

    def refuse(ckpt=None, **_):
        raise NotImplementedError("needs a dead package stack")

    # one family marked unavailable: --implemented must drop it, --status unavailable must keep only it
    monkeypatch.setitem(upstream.UNAVAILABLE, "cpc", refuse)
    everything = list_rows(capsys)
    statuses = {r["name"]: r["status"] for r in everything}
    assert statuses["modified_cpc"] == "unavailable"
    assert statuses["hubert"] == "implemented"
    assert statuses["mos_wav2vec2"] == "hub-only"
    reasons = {r["name"]: r["reason"] for r in everything}
    assert "dead package stack" in reasons["modified_cpc"]

    implemented = list_rows(capsys, "--implemented")
    assert {r["status"] for r in implemented} == {"implemented"}
    assert len(implemented) < len(everything)
    assert "modified_cpc" not in {r["name"] for r in implemented}
    assert {r["name"] for r in list_rows(capsys, "--status", "unavailable")} >= {"modified_cpc"}
    assert {r["status"] for r in list_rows(capsys, "--status", "unavailable")} == {"unavailable"}

    registered = list_rows(capsys, "--registered")
    assert registered and all(not r["source"].startswith("your checkpoint") for r in registered)
    assert {r["family"] for r in list_rows(capsys, "--family", "hubert")} == {"hubert"}


def test_list_rejects_an_unknown_family(capsys):
    assert main(["list", "--family", "hubertt"]) == 1
    err = capsys.readouterr().err
    assert "not a family" in err and "hubert" in err


def test_info_shows_options_with_allowed_values_and_the_length_rule(capsys):
    assert main(["info", "hubert"]) == 0
    out = capsys.readouterr().out
    assert "status:      implemented" in out
    assert "feature_selection = null" in out and "fairseq_layers_before_residual" in out
    assert "length rule" in out and "legacy" in out
    assert "trusted on first use" in out or "verified:" in out
    assert main(["info", "fbank"]) == 0
    out = capsys.readouterr().out
    assert 'feature = "fbank" (this entry)' in out and "mfcc" in out


def test_every_family_option_has_its_allowed_values():
    from s3prl.upstream import FAMILIES
    from s3prl.upstream.options import family_options

    missing = [(family, name) for family in FAMILIES for name, _, allowed in family_options(family) if not allowed]
    assert not missing, missing


def test_legacy_hub_gives_the_documented_frame_count():
    """The rule `s3prl info` states: S3PRLUpstream ceil(samples / 320), the hub floor((samples - 400) / 320) + 1."""
    from pathlib import Path

    import torch

    from s3prl import hub
    from s3prl.nn import S3PRLUpstream

    ckpt = str(Path(__file__).parent / "fixtures" / "oracle" / "wav2vec2_tiny.pt")
    wav = torch.randn(16000) * 0.1
    legacy = hub.wav2vec2_custom(ckpt=ckpt)([wav])["hidden_states"][-1]
    hs, lens = S3PRLUpstream("wav2vec2_local", path_or_url=ckpt).eval()(wav[None], torch.tensor([16000]))
    assert legacy.shape[1] == (16000 - 400) // 320 + 1 == 49
    assert int(lens[-1][0]) == hs[-1].shape[1] == -(-16000 // 320) == 50


def test_list_into_a_closed_pipe_ends_quietly():
    # `s3prl list | head -1`: the reader goes away; no BrokenPipeError traceback
    proc = subprocess.run(f"{sys.executable} -m s3prl.cli list | head -1", shell=True, capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.startswith("name")
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


@pytest.mark.parametrize("argv,expected", [
    (["info", "hubertt"], "Unknown upstream name 'hubertt'"),
    (["extract", "--extra-conf", "[1, 2]", "x.wav"], "must be a JSON object"),
    (["extract", "--batch-seconds", "nan", "x.wav"], "--batch-seconds"),
    (["extract", "/nonexistent/folder"], "neither an audio file nor a folder"),
    (["downstream", "train", "-u", "fbank", "-d", "fsdd_digits", "-n", "x", "-o", "train.save_step=0"],
     "train.save_step = 0"),
])
def test_user_errors_are_one_message_without_traceback(tmp_path, argv, expected):
    proc = subprocess.run([sys.executable, "-m", "s3prl.cli", *argv], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert expected in proc.stderr
    assert proc.stderr.strip().startswith("s3prl ")


def test_debug_shows_the_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "s3prl.cli", "info", "hubertt", "--debug"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_unexpected_errors_are_named_and_point_to_debug(capsys, monkeypatch):
    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(listing, "cmd_list", broken)
    assert main(["list"]) == 1
    err = capsys.readouterr().err
    assert "ZeroDivisionError" in err and "--debug" in err


def test_published_digests_are_recorded_with_their_source(capsys):
    from s3prl import registry

    _, entry = registry.resolve("wavlm_large")
    assert entry.sha256[0] == "6fb4b3c3e6aa567f0a997b30855859cb81528ee8078802af439f7b2da0bf100f"
    assert entry.sha256_sources[0].startswith("https://huggingface.co/s3prl/converted_ckpts/")
    assert sum(1 for e in registry.REGISTRY.values() if any(e.sha256_sources)) >= 25
    for url, (sha, source) in registry.PUBLISHED_SHA256.items():
        assert len(sha) == 64 and int(sha, 16) >= 0 and source.startswith("https://")
        assert any(url in e.urls for e in registry.REGISTRY.values()), url
    assert main(["info", "wavlm_large"]) == 0
    assert "against the published digest" in capsys.readouterr().out
    assert main(["info", "tera"]) == 0
    assert "trusted on first use" in capsys.readouterr().out


def test_hf_entries_given_a_file_or_a_missing_path_say_so(tmp_path, monkeypatch):
    from s3prl import download
    from s3prl.nn import S3PRLUpstream

    monkeypatch.setenv("S3PRL_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ValueError, match="is a file, but the hf_\\* entries load a HuggingFace model FOLDER"):
        S3PRLUpstream("hf_wav2vec2_custom", path_or_url="notes.txt")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        download.resolve_hf_model("./models/missing")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        download.resolve_hf_model("/data/models/wav2vec2")


def test_a_user_checkpoint_entry_without_k_says_k(tmp_path, capsys):
    assert main(["extract", "-u", "hubert_custom", "-o", str(tmp_path / "o")]) == 1
    assert "-k /path/to/file" in capsys.readouterr().err
