"""VoiceBank-DEMAND (Valentini-Botinhao et al.) for speech enhancement, in three layouts.

1. The original's Kaldi-style lists: ``<root>/{train,dev,test}/{noisy,clean}/wav.scp``.
2. The released 16 kHz folders: ``clean_trainset_28spk_wav_16k``, ``noisy_trainset_28spk_wav_16k``,
   ``clean_testset_wav_16k``, ``noisy_testset_wav_16k``; dev is the training set's speakers p226 and p287 (the
   original's data preparation: the first two of its speaker list), train the 26 others, test the test set.
3. A small folder of pairs ``<root>/noisy/*.wav`` + ``<root>/clean/*.wav`` (same names), e.g. the shared
   ``voicebank_demand_mini``: sorted by name, the last ``held_out`` pairs are test, the ``held_out`` before
   them dev, the rest train.

Each example is a noisy file with a :class:`~s3prl.downstream.corpora.librimix.Mixture` label whose one source
is the clean file (same rate and length, checked from the headers).
"""

from __future__ import annotations

from pathlib import Path

from ._common import CorpusLayoutError, require_dir
from .librimix import load as load_kaldi
from .librimix import make_examples

LAYOUT = """\
  (1) <root>/{train,dev,test}/{noisy,clean}/wav.scp     (the original's lists: `<recording> <audio file>`)
  (2) <root>/{clean,noisy}_trainset_28spk_wav_16k/*.wav and <root>/{clean,noisy}_testset_wav_16k/*.wav
      (the 16 kHz release; dev = speakers p226, p287 of the training set)
  (3) <root>/noisy/*.wav and <root>/clean/*.wav, same file names (sorted: the last `held_out` pairs are test,
      the `held_out` before them dev, the rest train)"""

DEV_SPEAKERS = ("p226", "p287")
RELEASE = {"train": ("noisy_trainset_28spk_wav_16k", "clean_trainset_28spk_wav_16k"),
           "test": ("noisy_testset_wav_16k", "clean_testset_wav_16k")}


def wavs(folder: Path) -> dict[str, str]:
    return {p.stem: str(p) for p in sorted(folder.glob("*.wav"))}


def pairs(noisy: Path, clean: Path, what: str) -> tuple[dict[str, str], dict[str, str]]:
    n, c = wavs(noisy), wavs(clean)
    lone = sorted(set(n) ^ set(c))
    if lone:
        raise CorpusLayoutError(f"{what}: {len(lone)} file(s) have no partner in the other folder ({noisy} / "
                                f"{clean}), e.g. {', '.join(lone[:5])}")
    if not n:
        raise CorpusLayoutError(f"{what}: no .wav files in {noisy}. Expected layout:\n{LAYOUT}")
    return n, c


def load(root: str, held_out: int = 1, **_) -> dict:
    """``{"train", "dev", "test"}`` of noisy examples with their clean reference."""
    base = require_dir(root, "VoiceBank-DEMAND", LAYOUT)
    if (base / "train" / "noisy" / "wav.scp").is_file():
        return load_kaldi(root, src=("noisy",), tgt=("clean",))
    if (base / RELEASE["train"][0]).is_dir():
        train_n, train_c = pairs(base / RELEASE["train"][0], base / RELEASE["train"][1], "VoiceBank-DEMAND train")
        test_n, test_c = pairs(base / RELEASE["test"][0], base / RELEASE["test"][1], "VoiceBank-DEMAND test")
        dev = {k for k in train_n if k.split("_")[0] in DEV_SPEAKERS}
        return {"train": make_examples({k: v for k, v in train_n.items() if k not in dev}, [train_c], "train", LAYOUT),
                "dev": make_examples({k: train_n[k] for k in dev}, [train_c], "dev", LAYOUT),
                "test": make_examples(test_n, [test_c], "test", LAYOUT)}
    if (base / "noisy").is_dir() and (base / "clean").is_dir():
        noisy, clean = pairs(base / "noisy", base / "clean", "VoiceBank-DEMAND pairs")
        names = sorted(noisy)
        if len(names) < 2 * held_out + 1:
            raise CorpusLayoutError(f"{base}: {len(names)} pairs cannot give {held_out} dev, {held_out} test and at "
                                    "least one training pair: lower -o task.held_out")
        cut = {"train": names[:-2 * held_out], "dev": names[-2 * held_out:-held_out], "test": names[-held_out:]}
        return {split: make_examples({k: noisy[k] for k in keys}, [clean], split, LAYOUT)
                for split, keys in cut.items()}
    raise CorpusLayoutError(f"VoiceBank-DEMAND: {base} has none of the expected layouts:\n{LAYOUT}")
