"""``s3prl extract``: compact files, every format read back, one output per input, streamed with failures
isolated, resumable, plain progress off a terminal, conversion notices."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from s3prl.cli import main
from s3prl.nn import S3PRLUpstream


def tone(seconds: float, rate: int = 16000, seed: int = 0, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    wav = 0.3 * np.sin(2 * np.pi * (150 + 40 * seed) * t) + 0.01 * rng.standard_normal(t.shape)
    return np.stack([wav] * channels, axis=1).astype(np.float32) if channels > 1 else wav.astype(np.float32)


def write(path: Path, wav: np.ndarray, rate: int = 16000, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav, rate, subtype=subtype)
    return path


@pytest.fixture
def corpus(tmp_path) -> Path:
    root = tmp_path / "in"
    for i, seconds in enumerate((0.5, 0.8, 1.3, 2.0)):
        write(root / f"spk{i % 2}" / f"utt{i}.wav", tone(seconds, seed=i))
    return root


def reference(path: Path, name: str = "fbank") -> list[torch.Tensor]:
    """The upstream run on this one file alone (batch size 1)."""
    from s3prl.audio import load_audio

    wav = load_audio(path)
    model = S3PRLUpstream(name).eval()
    with torch.no_grad():
        hs, lens = model(wav[None], torch.tensor([len(wav)]))
    return [h[0, : int(n[0])] for h, n in zip(hs, lens)]


def test_each_file_holds_only_its_own_frames(corpus, tmp_path):
    # all four files go in one batch; a saved view of the batch would make every file as large as the batch
    assert main(["extract", "-u", "fbank", "-o", str(tmp_path / "out"), str(corpus)]) == 0
    files = sorted((tmp_path / "out").rglob("*.pt"))
    assert len(files) == 4
    for f in files:
        content = sum(t.numel() * t.element_size() for t in torch.load(f)["hidden_states"])
        assert f.stat().st_size < content + 4096, (f, f.stat().st_size, content)


@pytest.mark.parametrize("fmt", ["pt", "npy", "npz", "hdf5", "kaldi"])
@pytest.mark.parametrize("fp16", [False, True])
def test_every_format_reads_back_the_batch_size_one_features(corpus, tmp_path, fmt, fp16):
    if fmt == "kaldi" and fp16:
        pytest.skip("Kaldi has no float16 (refused: see test_kaldi_refuses_fp16)")
    out = tmp_path / "out"
    argv = ["extract", "-u", "fbank", "-f", fmt, "-o", str(out), str(corpus)] + (["--fp16"] if fp16 else [])
    assert main(argv) == 0
    uids = [f"spk{i % 2}/utt{i}" for i in range(4)]
    for i, uid in enumerate(uids):
        expected = reference(corpus / f"{uid}.wav")[0].numpy()
        got = read_back(out, fmt, uid)
        assert got.dtype == (np.float16 if fp16 else np.float32)
        np.testing.assert_allclose(got.astype(np.float32), expected, atol=2e-2 if fp16 else 1e-5, rtol=1e-3 if fp16 else 0)
    rows = [line.split("\t") for line in (out / "manifest.tsv").read_text().splitlines()]
    assert rows[0] == ["utt_id", "source", "output", "frames", "layers"]
    assert [r[0] for r in rows[1:]] == sorted(uids)
    frames = {r[0]: int(r[3]) for r in rows[1:]}
    assert frames == {uid: reference(corpus / f"{uid}.wav")[0].shape[0] for uid in uids}


def read_back(out: Path, fmt: str, uid: str) -> np.ndarray:
    """What a user of another tool does, per the documented layout (layer 0 of fbank)."""
    if fmt == "pt":
        return torch.load(out / f"{uid}.pt")["hidden_states"][0].numpy()
    if fmt == "npy":
        return np.load(out / f"{uid}.npy")[0]
    if fmt == "npz":
        return np.load(out / "features.npz")[f"{uid}/layer0"]
    if fmt == "hdf5":
        import h5py

        with h5py.File(out / "features.h5") as f:
            return f[f"{uid}/layer0"][()]
    import kaldiio

    return kaldiio.load_scp(str(out / "layer0.scp"))[uid]


def test_kaldi_refuses_fp16(corpus, tmp_path, capsys):
    assert main(["extract", "-f", "kaldi", "--fp16", "-o", str(tmp_path / "o"), str(corpus)]) == 1
    assert "float16" in capsys.readouterr().err


def test_outputs_map_one_to_one_to_inputs(tmp_path, capsys):
    a, b = tmp_path / "d1", tmp_path / "d2"
    write(a / "x.wav", tone(0.5, seed=1))
    write(b / "x.wav", tone(0.5, seed=2))
    assert main(["extract", "-o", str(tmp_path / "out"), str(a), str(b)]) == 0
    one, two = torch.load(tmp_path / "out/d1/x.pt"), torch.load(tmp_path / "out/d2/x.pt")
    assert not torch.equal(one["hidden_states"][0], two["hidden_states"][0])
    # the same id twice in one folder: refused up front, with the list, and nothing written
    write(a / "y.wav", tone(0.5, seed=3))
    sf.write(str(a / "y.flac"), tone(0.5, seed=4), 16000)
    assert main(["extract", "-o", str(tmp_path / "out2"), str(a)]) == 1
    err = capsys.readouterr().err
    assert "y.wav" in err and "y.flac" in err
    assert not (tmp_path / "out2").exists() or not list((tmp_path / "out2").rglob("*.pt"))


def test_bad_files_are_skipped_and_listed_the_others_kept(corpus, tmp_path, capsys):
    (corpus / "spk0" / "broken.wav").write_bytes(b"RIFF not really audio")
    nan = tone(1.3, seed=7)
    nan[100:200] = np.nan
    write(corpus / "spk1" / "nan.wav", nan, subtype="FLOAT")  # same length as utt2: they share a batch
    write(corpus / "spk0" / "loud.wav", tone(0.8, seed=8) * 1e10, subtype="FLOAT")  # readable; the upstream refuses it
    out = tmp_path / "out"
    assert main(["extract", "-o", str(out), str(corpus)]) == 1
    err = capsys.readouterr().err
    assert "broken.wav" in err and "nan.wav" in err and "loud.wav" in err
    failed = (out / "failed.tsv").read_text()
    assert "spk0/broken" in failed and "spk1/nan" in failed and "spk0/loud\t" in failed and "upstream failed" in failed
    for i in range(4):  # the good files are there, with their batch-size-1 values
        uid = f"spk{i % 2}/utt{i}"
        got = torch.load(out / f"{uid}.pt")["hidden_states"][0]
        torch.testing.assert_close(got, reference(corpus / f"{uid}.wav")[0], atol=1e-5, rtol=0)
    # --strict stops at the first failure, before anything else is written
    assert main(["extract", "--strict", "-o", str(tmp_path / "strict"), str(corpus)]) == 1
    assert not list((tmp_path / "strict").rglob("*.pt"))


def test_resume_skips_done_files_and_removes_stale_temporaries(corpus, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["extract", "-o", str(out), str(corpus)]) == 0
    (out / "spk0" / "utt0.pt").unlink()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = out / "spk1" / f"utt1.pt.tmp{int(dead.stdout)}"
    stale.write_bytes(b"half a file")
    capsys.readouterr()
    assert main(["extract", "-o", str(out), str(corpus)]) == 0
    text = capsys.readouterr().out
    assert "3 already extracted, 1 to do" in text
    assert not stale.exists() and "left by a killed run" in text
    assert len((out / "manifest.tsv").read_text().splitlines()) == 5


def test_notice_names_the_conversions(tmp_path, capsys):
    write(tmp_path / "in" / "a.wav", tone(0.5, rate=8000), rate=8000)
    write(tmp_path / "in" / "b.wav", tone(0.5, rate=44100, channels=2), rate=44100)
    write(tmp_path / "in" / "c.wav", tone(0.5))
    assert main(["extract", "-o", str(tmp_path / "out"), str(tmp_path / "in")]) == 0
    out = capsys.readouterr().out
    assert "note: of 3 audio files, 1 with 2 channels averaged to mono; 2 resampled to 16000 Hz " \
           "(1 at 8000 Hz, 1 at 44100 Hz)" in out


def test_progress_is_plain_lines_when_not_on_a_terminal(corpus, tmp_path):
    env = {**os.environ, "S3PRL_PROGRESS_SECONDS": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "s3prl.cli", "extract", "--batch-seconds", "1", "-o",
                           str(tmp_path / "out"), str(corpus)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and "\r" not in proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.startswith("extracting:")]
    assert len(lines) >= 2 and lines[-1].startswith("extracting: 4/4 file (100.0%)")


def test_first_output_comes_before_the_rest_is_read(corpus, tmp_path, monkeypatch):
    """Streaming: the first file is written before the last file is read."""
    from s3prl import extract as ex

    events = []
    read = ex.read_wav
    monkeypatch.setattr(ex, "read_wav", lambda item: (events.append(("read", item.uid)), read(item))[1])
    write_pt = ex.PtWriter.write
    monkeypatch.setattr(ex.PtWriter, "write", lambda self, item, *a: (events.append(("write", item.uid)),
                                                                       write_pt(self, item, *a))[1])
    assert main(["extract", "--batch-seconds", "1", "-o", str(tmp_path / "out"), str(corpus)]) == 0
    kinds = [kind for kind, _ in events]
    assert kinds.index("write") < len(kinds) - 1 - kinds[::-1].index("read")


@pytest.mark.parametrize("fmt", ["npz", "hdf5", "kaldi"])
def test_resume_and_overwrite_of_one_file_formats(corpus, tmp_path, fmt):
    """An interrupted run resumes into the same container; --overwrite rewrites it without duplicates."""
    out = tmp_path / "out"
    first = tmp_path / "first"
    write(first / "spk0" / "utt0.wav", tone(0.5, seed=0))
    assert main(["extract", "-f", fmt, "-o", str(out), str(first)]) == 0
    assert main(["extract", "-f", fmt, "-o", str(out), str(corpus)]) == 0  # 1 done, 3 more
    assert main(["extract", "-f", fmt, "--overwrite", "-o", str(out), str(corpus)]) == 0
    for i in range(4):
        uid = f"spk{i % 2}/utt{i}"
        np.testing.assert_allclose(read_back(out, fmt, uid), reference(corpus / f"{uid}.wav")[0].numpy(), atol=1e-5)
    if fmt == "npz":
        import zipfile

        names = zipfile.ZipFile(out / "features.npz").namelist()
        assert len(names) == len(set(names)) == 4
    if fmt == "kaldi":
        assert len((out / "layer0.scp").read_text().splitlines()) == 4
