"""Fixtures of the wav2vec recipe tools (``s3prl wav2vec2 manifest|labels|featurize|tokenize``) made by FAIRSEQ 0.12.2.

Run IN THE FAIRSEQ ORACLE VENV (../shared/tools/fairseq-oracle):

    O=../shared/tools/fairseq-oracle; PY=$(bash $O/setup.sh)
    $PY -m pip install --target /tmp/oracle_extra_h5 --no-deps h5py     # wav2vec_featurize.py imports h5py
    PYTHONPATH=/tmp/oracle_extra_h5 $PY tests/oracle/make_w2v_recipe_fixtures.py tests/fixtures/w2v_recipe_oracle

(h5py goes to a side folder so that the oracle venv itself is not changed.)

It builds a tiny synthetic audio folder (``build_audio_folder``: deterministic PCM16 noise bursts in a
LibriSpeech layout with ``*.trans.txt``, plus hidden files, a non-matching extension and a wav2letter-style
split folder for featurizing), then runs fairseq's OWN scripts on it and keeps their outputs:

* ``recipes.sh`` (fairseq's ``wav2vec_manifest.py``, ``libri_labels.py`` and ``fairseq-preprocess --only-source``)
  -> ``manifest/{train,valid}.{tsv,ltr,wrd}``, ``manifest/dict.ltr.txt``; ``glob_order.txt`` is the file order
  fairseq's glob walk saw (filesystem-dependent: the split draws one random number per file in that order);
* ``wav2vec_manifest.py`` again with ``--ext wav --valid-percent 0`` and with ``--path-must-contain``
  -> ``manifest_wav/``, ``manifest_filter/`` (+ their glob orders);
* ``make_ckpt.py wav2vec`` / ``vq_wav2vec_gumbel`` / ``vq_wav2vec_kmeans`` (tiny) -> ``wav2vec_tiny.pt``,
  ``vq_wav2vec_gumbel_tiny.pt``, ``vq_wav2vec_kmeans_tiny.pt``;
* ``wav2vec_featurize.py --input W2L --output featurize --model wav2vec_tiny.pt --split train valid``
  -> ``featurize/<split>/*.h5context`` (+ the label files it copies), and ``--use-feat`` -> ``featurize_z``;
* ``vq-wav2vec_featurize.py --data-dir manifest --output-dir tokenize --checkpoint vq_wav2vec_gumbel_tiny.pt
  --split train valid --extension tsv --labels manifest/train.wrd`` -> ``tokenize/{train,valid}.{src,lbl}``,
  and ``--max-size 3000`` (chunked input) -> ``tokenize_chunked``; the k-means model -> ``tokenize_kmeans``.

fairseq's featurize scripts hard-code ``.cuda()``; they are run unchanged (``runpy``) with ``cuda()`` made the
identity on this CPU-only machine (``--shim-run``). Only the outputs are compared; nothing of fairseq is copied.
``build_audio_folder`` / ``build_w2l_folder`` need only numpy + soundfile, so tests import them to rebuild the same
folders.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE = os.environ.get("FAIRSEQ_ORACLE_DIR", os.path.join(HERE, "..", "..", "..", "shared", "tools", "fairseq-oracle"))

# (relative path, samples) of the LibriSpeech-style folder; speaker / chapter folders chosen so that a sorted
# walk and a codepoint sort disagree with numeric order ("103" < "19" < "2").
AUDIO = [
    ("19/198/19-198-0000.flac", 5120), ("19/198/19-198-0001.flac", 3600), ("19/198/19-198-0002.flac", 4480),
    ("19/227/19-227-0000.flac", 6000), ("19/227/19-227-0001.flac", 2900),
    ("103/1240/103-1240-0000.flac", 4100), ("103/1240/103-1240-0001.flac", 5300),
    ("103/1240/103-1240-0002.flac", 3333),
    ("2/35/2-35-0000.flac", 4000), ("2/35/2-35-0001.flac", 2500),
    ("19/198/.19-198-9999.flac", 2000),  # hidden file: glob skips it
    (".cache/7/7/7-7-0000.flac", 2000),  # hidden folder: glob skips it
    ("extra/notes.wav", 2400), ("extra/deep/more.wav", 1800),  # only with --ext wav
]
WORDS = ["THE", "AND", "OF", "TO", "A", "IN", "HE", "THAT", "WAS", "IT", "HIS", "HER", "YOU", "WITH", "SPEECH",
         "QUIET", "JAZZ", "FOX", "OVER", "LAZY", "DOG'S", "Z"]
# wav2letter-style folder for wav2vec_featurize.py: <split>/*.wav (flat) + label files copied to the output
W2L = {"train": [("a1.wav", 4000), ("b2.wav", 2700), ("c3.wav", 1200)], "valid": [("v1.wav", 3100)]}
W2L_LABELS = {"train": ["a1.wrd", "b2.wrd", "c3.wrd", "train.lst"], "valid": ["v1.wrd"]}


def _signal(seed: int, n: int):
    import numpy as np

    rng = np.random.RandomState(seed)
    t = np.arange(n) / 16000.0
    x = 0.3 * np.sin(2 * np.pi * (120 + 40 * (seed % 7)) * t) + 0.1 * rng.randn(n)
    return np.clip(np.round(x * 12000), -32768, 32767).astype(np.int16)


def _text(seed: int) -> str:
    return " ".join(WORDS[(seed * 7 + 3 * i * i + i) % len(WORDS)] for i in range(2 + seed % 5))


def build_audio_folder(root: str) -> list[str]:
    """Write the synthetic LibriSpeech-style folder under ``root``; returns the relative audio paths."""
    import soundfile

    for i, (rel, n) in enumerate(AUDIO):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fmt = "FLAC" if rel.endswith(".flac") else "WAV"
        soundfile.write(path, _signal(i, n), 16000, format=fmt, subtype="PCM_16")
    chapters: dict[str, list[str]] = {}
    for i, (rel, _) in enumerate(AUDIO):
        utt = os.path.basename(rel).split(".")[0]
        if rel.endswith(".flac") and utt.count("-") == 2 and not os.path.basename(rel).startswith("."):
            text = _text(i)
            if i == 1:
                text = text.replace(" ", "  ", 1)  # extra spaces in a transcript line
            chapters.setdefault(os.path.dirname(rel), []).append(f"{utt} {text}")
    for folder, lines in chapters.items():
        spk, chap = folder.split("/")[-2:]
        with open(os.path.join(root, folder, f"{spk}-{chap}.trans.txt"), "w") as f:
            f.write("\n".join(sorted(lines)) + "\n")
    with open(os.path.join(root, "README.txt"), "w") as f:
        f.write("synthetic test folder\n")
    return [rel for rel, _ in AUDIO]


def build_w2l_folder(root: str) -> None:
    """Write the wav2letter-style ``<split>/*.wav`` folder (with label files) under ``root``."""
    import soundfile

    for s, (split, files) in enumerate(W2L.items()):
        os.makedirs(os.path.join(root, split), exist_ok=True)
        for i, (name, n) in enumerate(files):
            soundfile.write(os.path.join(root, split, name), _signal(100 + 10 * s + i, n), 16000, subtype="PCM_16")
        for i, name in enumerate(W2L_LABELS[split]):
            with open(os.path.join(root, split, name), "w") as f:
                f.write(_text(50 + i) + "\n")


def glob_order(root: str, ext: str) -> list[str]:
    """The order in which fairseq's ``wav2vec_manifest.py`` visits files (its own glob call)."""
    base = os.path.realpath(root)
    return [os.path.relpath(os.path.realpath(f), base) for f in glob.iglob(os.path.join(base, "**/*." + ext),
                                                                           recursive=True)]


def shim_run(script: str, argv: list[str]) -> None:
    """Run a fairseq script unchanged on a CPU-only machine: ``.cuda()`` becomes the identity."""
    import runpy

    import torch

    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    torch.cuda.empty_cache = lambda: None
    sys.argv = [script, *argv]
    runpy.run_path(script, run_name="__main__")


def run(cmd: list[str], **kw) -> None:
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, **kw)


def main(out: str) -> None:
    import importlib.util
    import tempfile

    py = sys.executable
    fs = os.path.dirname(importlib.util.find_spec("fairseq").origin)
    examples = os.path.join(fs, "examples", "wav2vec")
    out = os.path.abspath(out)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    work = tempfile.mkdtemp(prefix="w2v_recipe_")
    audio, w2l = os.path.join(work, "audio"), os.path.join(work, "w2l")
    build_audio_folder(audio)
    build_w2l_folder(w2l)
    env = dict(os.environ, FAIRSEQ_ORACLE_PYTHON=py)
    meta = {"audio_root": os.path.realpath(audio), "commands": []}

    # 1. manifest + labels + letter dictionary (fairseq's scripts through the oracle's recipes.sh)
    man = os.path.join(out, "manifest")
    cmd = ["bash", os.path.join(ORACLE, "recipes.sh"), audio, man, "--ext", "flac", "--valid-percent", "0.3",
           "--seed", "7"]
    run(cmd, env=env, stdout=subprocess.DEVNULL)
    meta["commands"].append(cmd)
    orders = {"manifest": glob_order(audio, "flac")}
    for name, extra in [("manifest_wav", ["--ext", "wav", "--valid-percent", "0"]),
                        ("manifest_filter", ["--ext", "flac", "--valid-percent", "0.5", "--seed", "1",
                                             "--path-must-contain", "19/"])]:
        cmd = [py, os.path.join(examples, "wav2vec_manifest.py"), audio, "--dest", os.path.join(out, name), *extra]
        run(cmd)
        meta["commands"].append(cmd)
        ext = extra[extra.index("--ext") + 1]
        orders[name] = [p for p in glob_order(audio, ext) if "--path-must-contain" not in extra or "19/" in
                        os.path.join(os.path.realpath(audio), p)]
    for name, order in orders.items():
        with open(os.path.join(out, name, "glob_order.txt"), "w") as f:
            f.write("".join(p + "\n" for p in order))

    # 2. tiny fairseq checkpoints (written by fairseq's Trainer)
    for kind in ("wav2vec", "vq_wav2vec_gumbel", "vq_wav2vec_kmeans"):
        cmd = [py, os.path.join(ORACLE, "make_ckpt.py"), kind, os.path.join(out, f"{kind}_tiny.pt"), "--preset",
               "tiny", "--seed", "0"]
        run(cmd, stdout=subprocess.DEVNULL)
        meta["commands"].append(cmd)

    # 3. wav2vec_featurize.py (h5context per file and split) and vq-wav2vec_featurize.py (token strings)
    jobs = [
        ("wav2vec_featurize.py", ["--input", w2l, "--output", os.path.join(out, "featurize"), "--model",
                                  os.path.join(out, "wav2vec_tiny.pt"), "--split", "train", "valid"]),
        ("wav2vec_featurize.py", ["--input", w2l, "--output", os.path.join(out, "featurize_z"), "--model",
                                  os.path.join(out, "wav2vec_tiny.pt"), "--split", "valid", "--use-feat",
                                  "--no-copy-labels"]),
        ("vq-wav2vec_featurize.py", ["--data-dir", man, "--output-dir", os.path.join(out, "tokenize"),
                                     "--checkpoint", os.path.join(out, "vq_wav2vec_gumbel_tiny.pt"), "--split",
                                     "train", "valid", "--extension", "tsv"]),
        ("vq-wav2vec_featurize.py", ["--data-dir", man, "--output-dir", os.path.join(out, "tokenize_chunked"),
                                     "--checkpoint", os.path.join(out, "vq_wav2vec_gumbel_tiny.pt"), "--splits",
                                     "train", "--extension", "tsv", "--max-size", "3000", "--labels",
                                     os.path.join(man, "train.wrd")]),
        ("vq-wav2vec_featurize.py", ["--data-dir", man, "--output-dir", os.path.join(out, "tokenize_kmeans"),
                                     "--checkpoint", os.path.join(out, "vq_wav2vec_kmeans_tiny.pt"), "--split",
                                     "train", "valid", "--extension", "tsv"]),
    ]
    for script, argv in jobs:
        cmd = [py, os.path.abspath(__file__), "--shim-run", os.path.join(examples, script), *argv]
        run(cmd, stdout=subprocess.DEVNULL)
        meta["commands"].append(cmd[2:])
    import torch

    import fairseq

    meta["versions"] = {"fairseq": fairseq.__version__, "torch": torch.__version__, "python": sys.version.split()[0]}
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    shutil.rmtree(work)
    print(out)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--shim-run":
        shim_run(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) == 2 and not sys.argv[1].startswith("-"):
        main(sys.argv[1])
    else:
        sys.exit(__doc__)
