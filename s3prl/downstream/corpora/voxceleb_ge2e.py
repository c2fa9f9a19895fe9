"""VoxCeleb1 + VoxCeleb2 speaker folders and trial lists (the original's legacy ``voxceleb2_ge2e`` downstream).

Facts from the original ``downstream/voxceleb2_ge2e`` (config, dataset, preprocess):

- Training (``datarc.train``): ``file_path`` names one or more roots (``Voxceleb1``: the VoxCeleb1 dev ``wav``
  folder, ``Voxceleb2``: the VoxCeleb2 dev ``wav`` folder, converted to wav); each sub-folder of a root is one
  speaker and all its ``*.wav`` below (any depth) are its utterances. The speakers named in ``meta_data``
  (``dev_speaker_ids.txt``, one id a line) are held out (here also the speakers of the dev trials). Each
  utterance is cut to its first ``max_timestep`` samples (128000). A speaker needs at least ``utter_number``
  utterances (the original's ``random.sample`` fails otherwise; here the error names them).
- Dev (``datarc.dev``): trial lines ``<1|0> <path1> <path2>`` (``dev_meta_data.txt``, drawn from the held-out
  speakers by its ``preprocess.py``), paths relative to the VoxCeleb1 dev ``wav`` folder; each utterance cut to
  its first ``max_timestep`` samples (131200).
- Test (``datarc.test``): the VoxCeleb1 trial list (``veri_test.txt``), paths relative to the VoxCeleb1 test
  ``wav`` folder, whole utterances.
"""

from __future__ import annotations

from pathlib import Path

from ..data import SAMPLE_RATE, Example
from ._common import CorpusLayoutError, missing_files_error, require_dir, require_file, visible_dirs

LAYOUT = """  task.root=<vox1 dev wav>/idXXXXX/<video>/<n>.wav      (training speakers; dev trial paths relative to it)
  task.vox2_root=<vox2 dev wav>/idXXXXX/<video>/<n>.wav  (optional, more training speakers; wav, not m4a)
  task.dev_speakers=dev_speaker_ids.txt                  (optional: speaker ids held out of training)
  task.dev_trials=dev_meta_data.txt                      (lines '<1|0> idXXXXX/<video>/<n>.wav idYYYYY/...')
  task.test_root=<vox1 test wav>, task.test_trials=veri_test.txt  (the same line format)"""


def speaker_files(folder: Path) -> list[Path]:
    """Every ``*.wav`` (any case, any depth) below a speaker folder, sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".wav" and p.is_file())


def read_trial_lines(trials_file: str, what: str) -> list[tuple[int, str, str]]:
    """``(target, path1, path2)`` of each line ``<1|0> <path1> <path2>``."""
    path = require_file(trials_file, what, LAYOUT)
    trials = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3 or fields[0] not in ("0", "1"):
            raise ValueError(f"voxceleb2_ge2e: bad line in {what} {str(path)!r}: {line!r} "
                             "(want '<1|0> <path1> <path2>')")
        trials.append((int(fields[0]), fields[1], fields[2]))
    if not trials:
        raise CorpusLayoutError(f"voxceleb2_ge2e: {what} {str(path)!r} holds no trial")
    return trials


def _trial_split(prefix: str, trials: list[tuple[int, str, str]], root: Path, cap: float | None, what: str):
    rels = sorted({r for _, a, b in trials for r in (a, b)})
    missing = [r for r in rels if not (root / r).is_file()]
    if missing:
        raise missing_files_error(f"voxceleb2_ge2e {what}", missing, len(rels), f"paths are relative to {str(root)!r}")
    examples = [Example(f"{prefix}:{r}", str(root / r), r.split("/")[0], 0.0, cap) for r in rels]
    return examples, [(f"{prefix}:{a}", f"{prefix}:{b}", t) for t, a, b in trials]


def load_with_trials(root: str, test_root: str, test_trials: str, dev_trials: str, vox2_root: str | None = None,
                     dev_speakers: str | None = None, utter_number: int = 10, max_timestep: int = 128000,
                     dev_max_timestep: int = 131200) -> tuple[dict[str, list[Example]], list]:
    """``({"train", "dev", "test"}, trials)``: training label = the speaker folder's index (folders of all roots in
    order, names sorted); dev / test labels = the speaker id; uids ``dev:<path>`` / ``test:<path>`` in the trials."""
    roots = [require_dir(root, "voxceleb2_ge2e root (VoxCeleb1 dev wav)", LAYOUT)]
    if vox2_root:
        roots.append(require_dir(vox2_root, "voxceleb2_ge2e vox2_root (VoxCeleb2 dev wav)", LAYOUT))
    dev_lines = read_trial_lines(dev_trials, "dev trial list")
    # held out of training: the listed dev speakers and, always, those of the dev trials (the original's dev
    # trials are drawn from its dev speaker list, so the two agree there)
    held_out = {r.split("/")[0] for _, a, b in dev_lines for r in (a, b)}
    if dev_speakers:
        held_out |= set(require_file(dev_speakers, "voxceleb2_ge2e dev speaker list", LAYOUT).read_text().split())
    train, short = [], []
    speaker = 0
    for k, base in enumerate(roots):
        for folder in visible_dirs(base):
            if folder.name in held_out:
                continue
            files = speaker_files(folder)
            if len(files) < utter_number:
                short.append(f"{folder} ({len(files)})")
                continue
            for f in files:
                rel = f.relative_to(base).as_posix()
                train.append(Example(rel if k == 0 else f"{k}:{rel}", str(f), speaker, 0.0, max_timestep / SAMPLE_RATE))
            speaker += 1
    if short:
        more = f"\n  ... and {len(short) - 5} more" if len(short) > 5 else ""
        shown = "\n".join(f"  {s}" for s in short[:5]) + more
        raise CorpusLayoutError(f"voxceleb2_ge2e: {len(short)} speaker folder(s) hold fewer than utter_number="
                                f"{utter_number} wav files (GE2E draws that many per speaker):\n{shown}\nremove them, "
                                "add them to task.dev_speakers, or lower task.utter_number")
    if speaker < 2:
        raise CorpusLayoutError(f"voxceleb2_ge2e: {speaker} training speaker folder(s) under "
                                f"{[str(r) for r in roots]}; GE2E needs at least 2. Expected layout:\n{LAYOUT}")
    dev, dev_pairs = _trial_split("dev", dev_lines, roots[0],
                                  dev_max_timestep / SAMPLE_RATE, "dev trials")
    test_dir = require_dir(test_root, "voxceleb2_ge2e test_root (VoxCeleb1 test wav)", LAYOUT)
    test, test_pairs = _trial_split("test", read_trial_lines(test_trials, "test trial list"), test_dir, None,
                                    "test trials")
    return {"train": train, "dev": dev, "test": test}, dev_pairs + test_pairs


def load(speakers_per_batch: int | None = None, agg_module: str | None = None, **options) -> dict[str, list[Example]]:
    """The splits of :func:`load_with_trials` (the task's options also hold the batch sampler's
    ``speakers_per_batch`` and the head's ``agg_module``, not read here)."""
    return load_with_trials(**options)[0]
