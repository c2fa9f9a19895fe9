"""Fixtures of ``s3prl wav2vec2 infer`` / the fine-tuned CTC model, made by FAIRSEQ 0.12.2.

Run IN THE FAIRSEQ ORACLE VENV, from the project root (about 2 minutes):

    O=../shared/tools/fairseq-oracle; PY=$(bash $O/setup.sh)
    $PY -m pip install --target /tmp/oracle_extra_ed --no-deps editdistance    # infer.py imports it
    PYTHONPATH=/tmp/oracle_extra_ed $PY tests/oracle/make_w2v_infer_fixtures.py tests/fixtures/w2v_infer_oracle

What it writes (everything produced by fairseq's own code; nothing of fairseq is copied here):

* ``ctc.pt`` + ``dict.ltr.txt``: ``make_ckpt.py wav2vec2_ctc --preset tiny --seed 3`` (fairseq's Trainer wrote it);
* ``data/``: a tiny LibriSpeech-style folder (3 synthetic 16 kHz FLAC files with ``*.trans.txt``), its manifest
  ``test.tsv`` (root written as ``@ROOT@``: tests substitute the folder they copy it to), ``test.ltr``,
  ``test.wrd``, ``dict.ltr.txt``, a word 2-gram ``lm.arpa`` and ``lexicon.lst`` (fixed text below);
* ``dump.pt``: ``dump.py --ckpt ctc.pt --wav ...``: fairseq's emissions (``get_logits``) and viterbi transcripts
  of each file alone (``single``);
* ``infer_viterbi/``, ``infer_kenlm/``: the ``--results-path`` files of fairseq's
  ``examples/speech_recognition/infer.py`` run with the seed's flags (``--w2l-decoder viterbi`` / ``kenlm
  --lm-model lm.arpa --lexicon lexicon.lst --lm-weight 2 --word-score -1 --sil-weight 0 --beam 5``), one
  utterance per batch (``--batch-size 1``: fairseq's padded batches change the GroupNorm statistics), plus
  ``log.txt`` (its WER line).

infer.py imports ``flashlight.lib.sequence`` (for ``W2lViterbiDecoder``'s ``CpuViterbiPath``) and
``flashlight.lib.text`` in one block. The text bindings come from the project venv's flashlight-text (same
Python); ``lib.sequence`` cannot be installed here, so a stand-in ``CpuViterbiPath`` is put on the path: with
the all-zero transition matrix infer.py passes, the Viterbi path is the per-frame argmax, which the stand-in
writes into fairseq's output buffer. fairseq's own code does everything else (loading, batching, dictionary,
post-processing, file writing, WER).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(os.path.dirname(HERE))
ORACLE = os.environ.get("FAIRSEQ_ORACLE_DIR", os.path.join(PROJECT, "..", "shared", "tools", "fairseq-oracle"))

# (relative path, samples, transcript): sizes differ, so fairseq's size-descending order is well defined
AUDIO = [("7/11/7-11-0000.flac", 12800, "HELLO WORLD"), ("7/11/7-11-0001.flac", 19200, "A QUIET DOG'S TALE"),
         ("7/11/7-11-0002.flac", 16000, "THE WORLD IS QUIET")]
LM_TEXT = ["HELLO WORLD", "THE WORLD IS QUIET", "A QUIET TALE", "THE DOG'S TALE", "HELLO THE DOG", "IS IT A DOG"]

STAND_IN = '''"""Stand-in for flashlight.lib.sequence.criterion (oracle run only): zero transitions -> argmax path."""
import ctypes

import numpy as np


def get_data_ptr_as_bytes(tensor):
    return tensor.data_ptr()


class CpuViterbiPath:
    @staticmethod
    def get_workspace_size(B, T, N):
        return 1

    @staticmethod
    def compute(B, T, N, emissions, transitions, path, workspace):
        em = np.ctypeslib.as_array(ctypes.cast(emissions, ctypes.POINTER(ctypes.c_float)), shape=(B, T, N))
        tr = np.ctypeslib.as_array(ctypes.cast(transitions, ctypes.POINTER(ctypes.c_float)), shape=(N, N))
        assert not tr.any(), "the stand-in handles zero transitions only"
        out = np.ctypeslib.as_array(ctypes.cast(path, ctypes.POINTER(ctypes.c_int32)), shape=(B, T))
        out[:] = em.argmax(-1)
'''


def _signal(seed: int, n: int):
    import numpy as np

    rng = np.random.RandomState(seed)
    t = np.arange(n) / 16000.0
    x = 0.3 * np.sin(2 * np.pi * (150 + 60 * seed) * t) * np.sin(2 * np.pi * 3 * t) + 0.05 * rng.randn(n)
    return np.clip(np.round(x * 12000), -32768, 32767).astype(np.int16)


def build_data(root: str) -> None:
    """The audio folder and its transcripts under ``root`` (needs numpy + soundfile only)."""
    import soundfile

    texts = {}
    for seed, (rel, n, text) in enumerate(AUDIO):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        soundfile.write(path, _signal(seed, n), 16000, subtype="PCM_16")
        texts.setdefault(os.path.dirname(path), []).append(f"{os.path.basename(rel).split('.')[0]} {text}\n")
    for folder, lines in texts.items():
        parts = folder.split(os.sep)
        with open(os.path.join(folder, f"{parts[-2]}-{parts[-1]}.trans.txt"), "w") as f:
            f.writelines(lines)


def write_lm(folder: str) -> None:
    """lm.arpa / lexicon.lst with the project's ``s3prl lm build`` (project venv)."""
    text = os.path.join(folder, "lm.txt")
    with open(text, "w") as f:
        f.writelines(line + "\n" for line in LM_TEXT)
    subprocess.run([os.path.join(PROJECT, ".venv", "bin", "python"), "-m", "s3prl.cli", "lm", "build", text,
                    "-o", os.path.join(folder, "lm.arpa"), "--order", "2",
                    "--lexicon", os.path.join(folder, "lexicon.lst")], check=True, cwd=PROJECT)


def build_shim(shim: str) -> str:
    """A folder for PYTHONPATH: the stand-in ``flashlight.lib.sequence`` + the project venv's ``flashlight.lib.text``."""
    seq = os.path.join(shim, "flashlight", "lib", "sequence")
    os.makedirs(seq)
    for folder in (os.path.join(shim, "flashlight"), os.path.join(shim, "flashlight", "lib"), seq):
        open(os.path.join(folder, "__init__.py"), "w").close()
    with open(os.path.join(seq, "criterion.py"), "w") as f:
        f.write(STAND_IN)
    text_lib = glob.glob(os.path.join(PROJECT, ".venv", "lib", "python3*", "site-packages", "flashlight", "lib",
                                      "text"))[0]
    os.symlink(text_lib, os.path.join(shim, "flashlight", "lib", "text"))
    return shim


def run_infer(data: str, ckpt: str, out: str, shim: str, extra: list[str], subset: str = "test") -> None:
    fairseq_dir = os.path.dirname(subprocess.run([sys.executable, "-c", "import fairseq; print(fairseq.__file__)"],
                                                 capture_output=True, text=True, check=True).stdout.strip())
    script = os.path.join(fairseq_dir, "examples", "speech_recognition", "infer.py")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([shim, os.environ.get("PYTHONPATH", "")]),
               TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", OMP_NUM_THREADS="1")
    # fairseq's folder goes LAST on sys.path (its `logging` package must not shadow the standard one), so that
    # infer.py's `from examples.speech_recognition ...` imports work as in a fairseq checkout
    runner = (f"import runpy, sys; sys.path.append({fairseq_dir!r}); sys.argv = sys.argv[1:]; "
              "runpy.run_path(sys.argv[0], run_name='__main__')")
    cmd = [sys.executable, "-c", runner, script, data, "--task", "audio_finetuning", "--nbest", "1", "--path", ckpt,
           "--gen-subset", subset, "--results-path", out, "--criterion", "ctc", "--labels", "ltr",
           "--max-tokens", "4000000", "--post-process", "letter", "--batch-size", "1", "--cpu", *extra]
    os.makedirs(out, exist_ok=True)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    with open(os.path.join(out, "log.txt"), "w") as f:
        f.write(" ".join(["infer.py", "DATA", *cmd[5:]]).replace(ckpt, "ctc.pt").replace(out, "RESULTS")
                .replace(data + os.sep, "DATA/") + "\n")
        f.writelines(line[line.index("WER:"):] + "\n" for line in done.stderr.splitlines() if "WER:" in line)
    if done.returncode:
        sys.exit(f"infer.py failed:\n{done.stderr[-4000:]}")


def main(out: str) -> None:
    out = os.path.abspath(out)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    work = os.path.join("/tmp", "w2v_infer_oracle_work")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    oracle_py = sys.executable
    subprocess.run([oracle_py, os.path.join(ORACLE, "make_ckpt.py"), "wav2vec2_ctc", os.path.join(work, "ctc.pt"),
                    "--preset", "tiny", "--seed", "3"], check=True, stdout=subprocess.DEVNULL)
    for name in ("ctc.pt", "dict.ltr.txt"):
        shutil.copy(os.path.join(work, name), os.path.join(out, name))
    audio = os.path.join(work, "audio")
    build_data(audio)
    data = os.path.join(out, "data")
    os.makedirs(data)
    subprocess.run([oracle_py, os.path.join(ORACLE, "dump.py"), "--ckpt", os.path.join(out, "ctc.pt"), "--wav",
                    *[os.path.join(audio, rel) for rel, _, _ in AUDIO], "--out", os.path.join(out, "dump_full.pt")],
                   check=True)
    # the manifest / labels / dict as fairseq's own scripts write them (recipes.sh), root made portable
    subprocess.run(["bash", os.path.join(ORACLE, "recipes.sh"), audio, os.path.join(work, "manifest"),
                    "--valid-percent", "0"], check=True, stdout=subprocess.DEVNULL)
    for ext in ("tsv", "ltr", "wrd"):
        shutil.copy(os.path.join(work, "manifest", f"train.{ext}"), os.path.join(work, f"test.{ext}"))
    shutil.copy(os.path.join(out, "dict.ltr.txt"), os.path.join(work, "dict.ltr.txt"))
    write_lm(work)
    shim = build_shim(os.path.join(work, "shim"))
    run_infer(work, os.path.join(out, "ctc.pt"), os.path.join(out, "infer_viterbi"), shim,
              ["--w2l-decoder", "viterbi"])
    run_infer(work, os.path.join(out, "ctc.pt"), os.path.join(out, "infer_kenlm"), shim,
              ["--w2l-decoder", "kenlm", "--lm-model", os.path.join(work, "lm.arpa"), "--lexicon",
               os.path.join(work, "lexicon.lst"), "--lm-weight", "2", "--word-score", "-1", "--sil-weight", "0",
               "--beam", "5"])
    # portable data folder: manifest root -> @ROOT@, audio copied beside it
    with open(os.path.join(work, "test.tsv")) as f:
        lines = f.read().split("\n")
    with open(os.path.join(data, "test.tsv"), "w") as f:
        f.write("\n".join(["@ROOT@", *lines[1:]]))
    for name in ("test.ltr", "test.wrd", "dict.ltr.txt", "lm.arpa", "lexicon.lst", "lm.txt"):
        shutil.copy(os.path.join(work, name), os.path.join(data, name))
    shutil.copytree(audio, os.path.join(data, "audio"))
    slim_dump(os.path.join(out, "dump_full.pt"), os.path.join(out, "dump.pt"))
    os.remove(os.path.join(out, "dump_full.pt"))
    print(f"wrote {out}")


def slim_dump(src: str, dst: str) -> None:
    """Keep what the tests compare: per-file emissions (``single``) and fairseq's transcripts."""
    import torch

    d = torch.load(src, weights_only=False)
    single = d["single"]
    keep = {"emissions": [s["emissions"][0] for s in single], "transcripts": [s["transcripts"][0] for s in single],
            "hyp_pieces": [s["hyp_pieces"][0] for s in single], "batch_emissions": d["batch"]["emissions"],
            "files": [rel for rel, _, _ in AUDIO]}
    torch.save(keep, dst)


if __name__ == "__main__" and sys.argv[1:2] == ["--infer"]:
    # fairseq's infer.py on any data folder (the -m oracle test): --infer DATA SUBSET CKPT OUT [infer.py flags...]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        run_infer(sys.argv[2], sys.argv[4], sys.argv[5], build_shim(os.path.join(tmp, "shim")), sys.argv[6:],
                  sys.argv[3])
elif __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(PROJECT, "tests", "fixtures", "w2v_infer_oracle"))
