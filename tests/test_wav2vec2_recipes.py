"""``s3prl wav2vec2 manifest|labels|featurize|tokenize`` against fairseq 0.12.2's own scripts.

The fixtures (tests/fixtures/w2v_recipe_oracle) were written by fairseq's ``wav2vec_manifest.py``,
``libri_labels.py``, ``fairseq-preprocess --only-source``, ``wav2vec_featurize.py`` and ``vq-wav2vec_featurize.py``
on a synthetic folder (tests/oracle/make_w2v_recipe_fixtures.py); the tests rebuild the same folder and compare
bytes (features: values, dtypes, shapes).
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import random
import shutil
import subprocess

import pytest
import torch

from s3prl.cli import main
from s3prl.wav2vec2 import RecipeError
from s3prl.wav2vec2 import featurize as feat
from s3prl.wav2vec2 import labels as lab
from s3prl.wav2vec2 import manifest as man

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures", "w2v_recipe_oracle")
_spec = importlib.util.spec_from_file_location("w2v_recipe_oracle",
                                               os.path.join(HERE, "oracle", "make_w2v_recipe_fixtures.py"))
oracle = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(oracle)
META = json.load(open(os.path.join(FIX, "meta.json")))
# the oracle's manifest runs: fixture folder -> (ext, valid percent, seed, path_must_contain)
CASES = {"manifest": ("flac", 0.3, 7, None), "manifest_wav": ("wav", 0.0, 42, None),
         "manifest_filter": ("flac", 0.5, 1, "19/")}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The oracle's synthetic folders, rebuilt; the fixture manifests re-rooted there."""
    base = tmp_path_factory.mktemp("w2v_recipe")
    audio, w2l = str(base / "audio"), str(base / "w2l")
    oracle.build_audio_folder(audio)
    oracle.build_w2l_folder(w2l)
    manifests = str(base / "manifests")
    os.makedirs(manifests)
    for split in ("train", "valid"):
        text = read(FIX, "manifest", f"{split}.tsv")
        with open(os.path.join(manifests, f"{split}.tsv"), "w") as f:
            f.write(os.path.realpath(audio) + "\n" + text.split("\n", 1)[1])
    return {"base": str(base), "audio": audio, "w2l": w2l, "manifests": manifests}


def read(*parts) -> str:
    with open(os.path.join(*parts), encoding="utf-8") as f:
        return f.read()


def body(text: str) -> str:
    """A manifest without its root line."""
    return text.split("\n", 1)[1]


# --------------------------------------------------------------------------------------------- manifest


@pytest.mark.parametrize("case", sorted(CASES))
def test_manifest_split_is_fairseqs_for_the_same_walk(data, case):
    """Given the file order fairseq's glob saw, our lines, frame counts, split and header are its bytes."""
    ext, percent, seed, must = CASES[case]
    order = read(FIX, case, "glob_order.txt").split()
    entries = [(rel, man.audio_frames(os.path.join(data["audio"], rel))) for rel in order]
    train, valid = man.split(entries, percent, seed)
    assert man.format_manifest(META["audio_root"], train) == read(FIX, case, "train.tsv")
    if percent > 0:
        assert man.format_manifest(META["audio_root"], valid) == read(FIX, case, "valid.tsv")
    else:
        assert not valid and not os.path.exists(os.path.join(FIX, case, "valid.tsv"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_manifest_filesystem_order_is_fairseqs_glob(data, tmp_path, case):
    """--order filesystem walks as fairseq's glob call does (Python's glob on this disk is the reference); where
    this disk lists the folders as the oracle's did, the files are fairseq's byte for byte."""
    ext, percent, seed, must = CASES[case]
    dest = str(tmp_path / "out")
    rc = main(["wav2vec2", "manifest", data["audio"], "--dest", dest, "--ext", ext, "--valid-percent", str(percent),
               "--seed", str(seed), "--order", "filesystem"] + (["--path-must-contain", must] if must else []))
    assert rc == 0
    glob_now = [p for p in oracle.glob_order(data["audio"], ext) if not must or must in p]
    ours = [line.split("\t")[0] for split in ("train", "valid") if os.path.exists(os.path.join(dest, f"{split}.tsv"))
            for line in body(read(dest, f"{split}.tsv")).split("\n") if line]
    assert sorted(ours) == sorted(glob_now)
    assert [os.path.relpath(p, data["audio"]) for p in man.find_audio(data["audio"], ext, "filesystem")] == \
        oracle.glob_order(data["audio"], ext)
    assert read(dest, "train.tsv").split("\n")[0] == os.path.realpath(data["audio"])
    if glob_now == read(FIX, case, "glob_order.txt").split():
        for split in ("train", "valid") if percent > 0 else ("train",):
            assert body(read(dest, f"{split}.tsv")) == body(read(FIX, case, f"{split}.tsv"))


def test_manifest_default_order_is_sorted_and_disk_independent(data, tmp_path):
    """The default walk is a pre-order walk with every folder sorted (os.walk with sorted names is the reference)."""
    expected = []
    for folder, dirs, files in os.walk(data["audio"]):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        expected += [os.path.join(folder, f) for f in sorted(files) if f.endswith(".flac") and not f.startswith(".")]
    assert man.find_audio(data["audio"], "flac") == expected
    splits = man.write_manifest(data["audio"], str(tmp_path), "flac", 0.3, 7)
    rows = [line for s in ("train", "valid") for line in body(read(FIX, "manifest", f"{s}.tsv")).split("\n") if line]
    assert sorted(f"{r}\t{n}" for rows_ in splits.values() for r, n in rows_) == sorted(rows)
    rand = random.Random(7)
    draws = [rand.random() > 0.3 for _ in expected]
    assert [e[0] for e in splits["train"]] == [os.path.relpath(p, data["audio"]) for p, d in zip(expected, draws) if d]


def test_manifest_walk_survives_a_link_loop(tmp_path):
    oracle.build_w2l_folder(str(tmp_path))
    os.symlink(str(tmp_path), str(tmp_path / "train" / "loop"))
    assert len(man.find_audio(str(tmp_path), "wav")) == 4


def test_manifest_errors_name_the_problem(data, tmp_path, capsys):
    with pytest.raises(RecipeError, match="not found"):
        man.write_manifest(str(tmp_path / "nope"), str(tmp_path))
    with pytest.raises(RecipeError, match=r"no \*\.ogg file.*--ext"):
        man.write_manifest(data["audio"], str(tmp_path), ext="ogg")
    with pytest.raises(RecipeError, match="--valid-percent"):
        man.write_manifest(data["audio"], str(tmp_path), valid_percent=1.5)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.flac").write_bytes(b"not audio at all")
    assert main(["wav2vec2", "manifest", str(bad), "--dest", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "s3prl wav2vec2 manifest: error: cannot read the audio header of" in err and "x.flac" in err
    assert "Traceback" not in err and not os.path.exists(tmp_path / "o" / "train.tsv")
    tsv = tmp_path / "broken.tsv"
    tsv.write_text("/root\na.flac\t12\nb.flac 13\n")
    with pytest.raises(RecipeError, match=r"broken.tsv:3: expected"):
        man.read_manifest(str(tsv))


# --------------------------------------------------------------------------------------------- labels


def test_labels_and_letter_dictionary_are_fairseqs(data, tmp_path, capsys):
    out = str(tmp_path / "labels")
    for split in ("train", "valid"):
        assert main(["wav2vec2", "labels", os.path.join(data["manifests"], f"{split}.tsv"), "--output-dir", out,
                     "--output-name", split]) == 0
        for ext in ("ltr", "wrd"):
            assert read(out, f"{split}.{ext}") == read(FIX, "manifest", f"{split}.{ext}"), (split, ext)
    assert read(out, "dict.ltr.txt") == read(FIX, "manifest", "dict.ltr.txt")
    assert "dict.ltr.txt (22 symbols)" in capsys.readouterr().out
    assert lab.letters("HI  YOU") == "H I | | Y O U |" and lab.letters("A") == "A |"


def test_labels_errors_name_the_line(data, tmp_path):
    audio = str(tmp_path / "audio")
    shutil.copytree(data["audio"], audio)
    tsv = tmp_path / "train.tsv"
    tsv.write_text(os.path.realpath(audio) + "\n" + body(read(data["manifests"], "train.tsv")))
    trans = os.path.join(audio, "19", "198", "19-198.trans.txt")
    lines = read(trans).splitlines()
    with open(trans, "w") as f:
        f.write("\n".join(line for line in lines if not line.startswith("19-198-0002")) + "\n")
    with pytest.raises(RecipeError, match=r"train.tsv:4: no transcript for '19-198-0002'"):
        lab.write_labels(str(tsv), str(tmp_path / "o"), "train")
    assert not os.path.exists(tmp_path / "o" / "train.ltr")
    os.remove(trans)
    with pytest.raises(RecipeError, match=r"train.tsv:4: no transcript file for 19/198/19-198-0002.flac: looked "
                                          r"for .*/19/198/19-198.trans.txt or .*/19/198/19-198.trans.txt"):
        lab.write_labels(str(tsv), str(tmp_path / "o"), "train")
    flat = tmp_path / "flat.tsv"
    flat.write_text(f"{audio}\nx.flac\t10\n")
    with pytest.raises(RecipeError, match=r"flat.tsv:2: no transcript file for x.flac: looked for nowhere"):
        lab.write_labels(str(flat), str(tmp_path / "o"), "x")


def test_labels_of_a_flat_folder(data, tmp_path):
    """<spk>/<spk>-<chapter>-<utt>.flac with the .trans.txt beside it (fairseq's script needs two folder levels):
    the same labels as the LibriSpeech layout gives."""
    flat = tmp_path / "flat"
    for rel in body(read(data["manifests"], "train.tsv")).split():
        if rel.endswith(".flac"):
            spk, chap, name = rel.split("/")
            os.makedirs(flat / spk, exist_ok=True)
            shutil.copy(os.path.join(data["audio"], rel), flat / spk / name)
            shutil.copy(os.path.join(data["audio"], spk, chap, f"{spk}-{chap}.trans.txt"), flat / spk)
    lines = [line.split("\t") for line in body(read(data["manifests"], "train.tsv")).splitlines()]
    tsv = tmp_path / "train.tsv"
    tsv.write_text(f"{flat}\n" + "".join(f"{r.split('/')[0]}/{r.split('/')[2]}\t{n}\n" for r, n in lines))
    lab.write_labels(str(tsv), str(tmp_path / "o"), "train")
    assert read(tmp_path, "o", "train.ltr") == read(FIX, "manifest", "train.ltr")


def test_check_labels_finds_a_label_file_out_of_step(data, tmp_path):
    tsv = os.path.join(data["manifests"], "train.tsv")
    assert lab.check_labels(tsv, os.path.join(FIX, "manifest", "train.ltr")) == 6
    short = tmp_path / "short.ltr"
    short.write_text("".join(read(FIX, "manifest", "train.ltr").splitlines(True)[:5]))
    with pytest.raises(RecipeError, match=r"has 5 lines but .* lists 6 files: manifest line 7 \(103/1240"):
        lab.check_labels(tsv, str(short))
    with pytest.raises(RecipeError, match="valid.ltr has 4 lines .* label line 5|lists 6 files"):
        lab.check_labels(tsv, os.path.join(FIX, "manifest", "valid.ltr"))
    hole = tmp_path / "hole.ltr"
    hole.write_text("A |\n\nB |\nC |\nD |\nE |\n")
    with pytest.raises(RecipeError, match=r"hole.ltr:2: empty label line"):
        lab.check_labels(tsv, str(hole))


# --------------------------------------------------------------------------------------------- featurize / tokenize


def test_featurize_writes_fairseqs_h5context_files(data, tmp_path):
    h5py = pytest.importorskip("h5py")
    out = str(tmp_path / "feats")
    ckpt = os.path.join(FIX, "wav2vec_tiny.pt")
    assert feat.featurize(data["w2l"], out, ckpt, ["train", "valid"]) == {"train": 3, "valid": 1}
    feat.featurize(data["w2l"], str(tmp_path / "z"), ckpt, ["valid"], use_feat=True, copy_labels=False)
    for ours_root, ref_root in [(out, "featurize"), (str(tmp_path / "z"), "featurize_z")]:
        ref_files = sorted(os.path.relpath(p, os.path.join(FIX, ref_root))
                           for p in glob.glob(os.path.join(FIX, ref_root, "*", "*")))
        assert sorted(os.path.relpath(p, ours_root) for p in glob.glob(os.path.join(ours_root, "*", "*"))) == ref_files
        for rel in ref_files:
            if not rel.endswith(".h5context"):
                assert read(ours_root, rel) == read(FIX, ref_root, rel)
                continue
            with h5py.File(os.path.join(ours_root, rel)) as a, h5py.File(os.path.join(FIX, ref_root, rel)) as b:
                assert sorted(a) == sorted(b) == ["features", "info"]
                for key in ("features", "info"):
                    assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, (rel, key)
                assert (a["info"][()] == b["info"][()]).all()
                assert abs(a["features"][()] - b["features"][()]).max() <= 1e-5, rel


def test_tokenize_writes_fairseqs_token_strings(data, tmp_path):
    ckpt = os.path.join(FIX, "vq_wav2vec_gumbel_tiny.pt")
    out = str(tmp_path / "tok")
    assert main(["wav2vec2", "tokenize", "--data-dir", data["manifests"], "--output-dir", out, "--checkpoint", ckpt,
                 "--split", "train", "valid", "--extension", "tsv", "--log-format", "none"]) == 0
    for split in ("train", "valid"):
        assert read(out, f"{split}.src") == read(FIX, "tokenize", f"{split}.src")
    kmeans = os.path.join(FIX, "vq_wav2vec_kmeans_tiny.pt")
    feat.tokenize(data["manifests"], str(tmp_path / "k"), kmeans, ["train", "valid"], "tsv")
    for split in ("train", "valid"):
        assert read(tmp_path, "k", f"{split}.src") == read(FIX, "tokenize_kmeans", f"{split}.src")
    feat.tokenize(data["manifests"], str(tmp_path / "c"), ckpt, ["train"], "tsv", max_size=3000,
                  labels=os.path.join(FIX, "manifest", "train.wrd"))
    for name in ("train.src", "train.lbl"):  # 3000-sample pieces: 5 of the 6 files are cut in 2
        assert read(tmp_path, "c", name) == read(FIX, "tokenize_chunked", name)
    feat.tokenize(data["manifests"], str(tmp_path / "s"), ckpt, ["train"], "tsv", shard=1, num_shards=2,
                  labels=os.path.join(FIX, "manifest", "train.wrd"))
    assert read(tmp_path, "s", "train.src.1").splitlines() == read(FIX, "tokenize", "train.src").splitlines()[1::2]
    assert read(tmp_path, "s", "train.lbl.1").splitlines() == read(FIX, "manifest", "train.wrd").splitlines()[1::2]


def test_tokenize_and_featurize_errors(data, tmp_path):
    vq, w2v = os.path.join(FIX, "vq_wav2vec_gumbel_tiny.pt"), os.path.join(FIX, "wav2vec_tiny.pt")
    with pytest.raises(RecipeError, match="without a quantizer"):
        feat.tokenize(data["manifests"], str(tmp_path), w2v, ["train"], "tsv")
    with pytest.raises(RecipeError, match="--shard and --num-shards go together"):
        feat.tokenize(data["manifests"], str(tmp_path), vq, ["train"], "tsv", shard=0)
    short = tmp_path / "short.wrd"
    short.write_text("ONE\nTWO\n")
    with pytest.raises(RecipeError, match=r"2 lines but split 'train' lists 6 files: file 3"):
        feat.tokenize(data["manifests"], str(tmp_path), vq, ["train"], "tsv", labels=str(short))
    with pytest.raises(RecipeError, match="manifest .*valid2.tsv' not found"):
        feat.tokenize(data["manifests"], str(tmp_path), vq, ["valid2"], "tsv")
    with pytest.raises(RecipeError, match=r"no \*\.flac file in .*train"):
        feat.featurize(data["w2l"], str(tmp_path), w2v, ["train"], ext="flac")
    with pytest.raises(RecipeError, match="not found"):
        feat.featurize(data["w2l"], str(tmp_path), str(tmp_path / "missing.pt"), ["train"])


def test_models_by_registry_name(monkeypatch):
    """--model / --checkpoint may name a released model: its registry file is fetched (verified, cached)."""
    from s3prl import download, registry

    asked = []
    monkeypatch.setattr(download, "resolve_checkpoint", lambda url, sha256=None: asked.append((url, sha256)) or
                        os.path.join(FIX, "vq_wav2vec_kmeans_tiny.pt"))
    assert feat.load_wav2vec("vq_wav2vec_kmeans").vector_quantizer is not None
    entry = registry.REGISTRY["vq_wav2vec_kmeans"]
    assert asked == [(entry.urls[0], entry.sha256[0])]
    with pytest.raises(RecipeError, match="not a released wav2vec / vq-wav2vec model.*vq_wav2vec_gumbel"):
        feat.load_wav2vec("hubert")


def test_fairseq_python_names_on_our_models(data):
    """The README's python usage: feature_extractor -> feature_aggregator, vector_quantizer.forward_idx."""
    w2v = feat.load_wav2vec(os.path.join(FIX, "wav2vec_tiny.pt"))
    vq = feat.load_wav2vec(os.path.join(FIX, "vq_wav2vec_gumbel_tiny.pt"))
    wav = torch.randn(2, 4000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        z = w2v.feature_extractor(wav)  # (B, C, T)
        c = w2v.feature_aggregator(z)
        states, _ = w2v(wav, torch.tensor([4000, 4000]))
        assert z.shape == (2, 32, 23) and c.shape == (2, 32, 23)
        assert torch.allclose(c.transpose(1, 2), states[-1], atol=1e-6)
        assert torch.allclose(z.transpose(1, 2), states[0], atol=1e-6)
        words, idxs = vq.vector_quantizer.forward_idx(vq.feature_extractor(wav))
        assert idxs.shape == (2, 23, 2) and words.shape == (2, 32, 23)
        one = vq.vector_quantizer.forward_idx(vq.feature_extractor(wav[1:]))[1]
        assert torch.equal(idxs[1:], one)
    assert w2v.vector_quantizer is None and "feature_aggregator" not in dict(w2v.named_modules())


# --------------------------------------------------------------------------------------------- command line


@pytest.mark.parametrize("mode,script", [("manifest", "wav2vec_manifest.py"), ("labels", "libri_labels.py"),
                                         ("featurize", "wav2vec_featurize.py"),
                                         ("tokenize", "vq-wav2vec_featurize.py"),
                                         ("train", "fairseq-train"), ("infer", "speech_recognition/infer.py")])
def test_help_names_the_fairseq_script(capsys, mode, script):
    with pytest.raises(SystemExit) as exit_info:
        main(["wav2vec2", mode, "--help"])
    assert exit_info.value.code == 0
    assert script in " ".join(capsys.readouterr().out.split()).replace("vq- wav2vec", "vq-wav2vec")


def test_train_on_a_missing_manifest_is_a_clear_error(capsys, tmp_path):  # training: tests/test_wav2vec2_train.py
    assert main(["wav2vec2", "train", "--task", "audio_pretraining", str(tmp_path / "manifest"), "--max-update", "3",
                 "--infonce", "--max-tokens", "1000", "--save-dir", str(tmp_path / "ck")]) == 1
    err = capsys.readouterr().err
    assert "train.tsv" in err and "not found" in err and "Traceback" not in err


@pytest.mark.oracle
def test_manifest_equals_fairseq_run_now(data, tmp_path):
    """fairseq's own script on the same folder, now (needs ../shared/tools/fairseq-oracle set up)."""
    py = os.path.expanduser(os.environ.get("FAIRSEQ_ORACLE_PYTHON", "~/.cache/fairseq-oracle/venv/bin/python"))
    if not os.path.exists(py):
        pytest.skip("fairseq oracle venv not set up")
    script = subprocess.run([py, "-c", "import fairseq, os; print(os.path.dirname(fairseq.__file__))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    for seed in (0, 42):
        ref, ours = str(tmp_path / f"ref{seed}"), str(tmp_path / f"ours{seed}")
        subprocess.run([py, os.path.join(script, "examples", "wav2vec", "wav2vec_manifest.py"), data["audio"],
                        "--dest", ref, "--valid-percent", "0.4", "--seed", str(seed)], check=True)
        man.write_manifest(data["audio"], ours, "flac", 0.4, seed, order="filesystem")
        for split in ("train", "valid"):
            assert read(ours, f"{split}.tsv") == read(ref, f"{split}.tsv")


def _real_librispeech() -> str:
    root = os.path.join(os.environ.get("S3PRL_TEST_DATA", ""), "librispeech_test_other_mini")
    if not os.environ.get("S3PRL_TEST_DATA") or not os.path.isdir(root):
        pytest.skip("S3PRL_TEST_DATA (../shared/data) is not set")
    return root


def test_manifest_and_labels_of_real_librispeech_recordings(tmp_path):
    """100 real FLAC files: every one listed once, with the sample count of its decoded audio; labels from the
    official transcripts beside them."""
    import soundfile

    root = _real_librispeech()
    splits = man.write_manifest(root, str(tmp_path), "flac", 0.1, 42)
    rows = splits["train"] + splits["valid"]
    assert len(rows) == 100 and 3 <= len(splits["valid"]) <= 25
    assert sorted(r for r, _ in rows) == sorted(os.path.relpath(p, root) for p in glob.glob(f"{root}/*/*.flac"))
    for rel, frames in rows[:: 9]:
        assert frames == len(soundfile.read(os.path.join(root, rel))[0]), rel
    assert man.read_manifest(str(tmp_path / "valid.tsv")).entries == splits["valid"]
    texts = lab.write_labels(str(tmp_path / "train.tsv"), str(tmp_path), "train")
    official = {}
    for path in glob.glob(f"{root}/*/*.trans.txt"):
        official.update(line.strip().split(" ", 1) for line in open(path) if line.strip())
    assert texts == [official[os.path.basename(r)[:-5]] for r, _ in splits["train"]]
    assert lab.check_labels(str(tmp_path / "train.tsv"), str(tmp_path / "train.ltr")) == len(splits["train"])


@pytest.mark.oracle
def test_real_librispeech_recipe_equals_fairseq(tmp_path):
    """fairseq's recipes.sh (manifest, libri_labels, fairseq-preprocess) on the real recordings in LibriSpeech
    layout, and ours on the same folder: every file byte-identical."""
    root = _real_librispeech()
    py = os.path.expanduser(os.environ.get("FAIRSEQ_ORACLE_PYTHON", "~/.cache/fairseq-oracle/venv/bin/python"))
    if not os.path.exists(py):
        pytest.skip("fairseq oracle venv not set up")
    ref, ours = str(tmp_path / "ref"), str(tmp_path / "ours")
    subprocess.run(["bash", os.path.join(oracle.ORACLE, "recipes.sh"), root, ref, "--libri-layout", "--valid-percent",
                    "0.1"], check=True, env=dict(os.environ, FAIRSEQ_ORACLE_PYTHON=py), capture_output=True)
    layout = os.path.join(ref, "librispeech_layout")
    assert main(["wav2vec2", "manifest", layout, "--dest", ours, "--valid-percent", "0.1", "--order",
                 "filesystem"]) == 0
    for split in ("train", "valid"):
        assert main(["wav2vec2", "labels", os.path.join(ours, f"{split}.tsv"), "--output-dir", ours,
                     "--output-name", split]) == 0
    for name in ("train.tsv", "valid.tsv", "train.ltr", "valid.ltr", "train.wrd", "valid.wrd", "dict.ltr.txt"):
        assert read(ours, name) == read(ref, name), name
