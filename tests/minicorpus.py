"""Tiny corpora in the original layouts, made of generated audio, for the downstream tests.

Each class is a tone complex with its own pitch, so a few training steps on ``fbank`` separate them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


def tone(label: int, seconds: float, seed: int, sr: int = SR) -> np.ndarray:
    """A class-specific harmonic tone (pitch 150 * 1.5**label Hz) with a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 150.0 * 1.5 ** label * (1 + 0.02 * rng.standard_normal())
    wav = sum(np.sin(2 * math.pi * k * f0 * t + rng.uniform(0, 6.28)) / k for k in range(1, 5))
    wav = 0.2 * wav / max(np.abs(wav).max(), 1e-6) + 0.01 * rng.standard_normal(t.shape)
    return wav.astype(np.float32)


def write(path: Path, wav: np.ndarray, sr: int = SR) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav, sr)


def fsdd(root: Path, digits: int = 3, speakers=("ann", "bob"), takes: int = 16, sr: int = 8000) -> Path:
    """``recordings/{digit}_{speaker}_{take}.wav`` at 8 kHz like FSDD (takes 0-4 test, 5-9 dev, rest train)."""
    for d in range(digits):
        for s, speaker in enumerate(speakers):
            for take in range(takes):
                seconds = 0.3 + 0.05 * ((take + s) % 5)
                write(root / "recordings" / f"{d}_{speaker}_{take}.wav", tone(d, seconds, 1000 * d + 50 * s + take, sr), sr)
    return root


def speech_commands(root: Path, words=("yes", "no", "up", "bed"), per_word: int = 12, noise: bool = True) -> Path:
    """``<word>/<hash>_nohash_<n>.wav`` (1 s clips) and ``_background_noise_`` like Speech Commands v0.01."""
    for w, word in enumerate(words):
        for n in range(per_word):
            write(root / word / f"{w:02d}{n:06x}_nohash_0.wav", tone(w, 1.0, 100 * w + n))
    if noise:
        rng = np.random.default_rng(0)
        write(root / "_background_noise_" / "white_noise.wav", (0.05 * rng.standard_normal(5 * SR)).astype(np.float32))
    return root


def librispeech(root: Path, speakers=(11, 22, 33, 44, 55), per_speaker: int = 8) -> Path:
    """``<spk>/<chapter>/<spk>-<chapter>-<utt>.flac``; each speaker has its own pitch."""
    for s, spk in enumerate(speakers):
        for u in range(per_speaker):
            write(root / str(spk) / "100" / f"{spk}-100-{u:04d}.flac", tone(s, 0.6 + 0.1 * (u % 4), 10 * s + u))
    return root


def fluent_commands(root: Path, per_split=(12, 6, 6)) -> Path:
    """``data/{train,valid,test}_data.csv`` + ``wavs/speakers/<spk>/<name>.wav`` like Fluent Speech Commands."""
    slots = [("activate", "lights", "kitchen"), ("deactivate", "music", "none"), ("increase", "heat", "bedroom")]
    (root / "data").mkdir(parents=True, exist_ok=True)
    for split, n in zip(("train", "valid", "test"), per_split):
        lines = [",path,speakerId,transcription,action,object,location"]
        for i in range(n):
            k = i % len(slots)
            rel = f"wavs/speakers/spk{i % 2}/{split}{i:03d}.wav"
            write(root / rel, tone(k, 0.5 + 0.1 * (i % 3), 7 * i + len(split)))
            lines.append(f"{i},{rel},spk{i % 2},{' '.join(slots[k])},{','.join(slots[k])}")
        (root / "data" / f"{split}_data.csv").write_text("\n".join(lines) + "\n")
    return root


def iemocap(root: Path, per_session: int = 8) -> Path:
    """``SessionK/dialog/EmoEvaluation/*.txt`` + ``SessionK/sentences/wav/<dialog>/<utt>.wav`` like IEMOCAP."""
    emotions = ("neu", "hap", "ang", "sad", "exc", "fru")
    for k in range(1, 6):
        dialog = f"Ses0{k}F_impro01"
        lines = []
        for u in range(per_session):
            emo = emotions[u % len(emotions)]
            utt = f"{dialog}_F{u:03d}"
            label = {"exc": 1}.get(emo, emotions.index(emo) if emo in emotions[:4] else 0)
            write(root / f"Session{k}" / "sentences" / "wav" / dialog / f"{utt}.wav", tone(label, 0.6, 31 * k + u))
            lines.append(f"[{u:.4f} - {u + 0.6:.4f}]\t{utt}\t{emo}\t[2.5, 2.5, 2.5]")
        label_dir = root / f"Session{k}" / "dialog" / "EmoEvaluation"
        label_dir.mkdir(parents=True, exist_ok=True)
        (label_dir / f"{dialog}.txt").write_text("% header\n\n" + "\n".join(lines) + "\n")
    return root


def voxceleb1(root: Path, dev_speakers=(10001, 10002, 10003), test_speakers=(10004, 10005), per_speaker=4) -> Path:
    """``{dev,test}/wav/idXXXXX/<video>/<n>.wav``, ``iden_split.txt`` and ``voxceleb1_test_v2.txt``."""
    split_lines, test_utts = [], []
    for s, spk in enumerate(dev_speakers + test_speakers):
        part = "dev" if spk in dev_speakers else "test"
        for u in range(per_speaker):
            rel = f"id{spk}/vid{u % 2}/{u:05d}.wav"
            write(root / part / "wav" / rel, tone(s, 2.2 + 0.2 * u, 13 * s + u))
            split_lines.append(f"{1 if u < per_speaker - 2 else 2 + u % 2} {rel}")
            if part == "test":
                test_utts.append(rel)
    (root / "iden_split.txt").write_text("\n".join(split_lines) + "\n")
    trials = []
    for i, a in enumerate(test_utts):
        for b in test_utts[i + 1:]:
            trials.append(f"{int(a.split('/')[0] == b.split('/')[0])} {a} {b}")
    (root / "voxceleb1_test_v2.txt").write_text("\n".join(trials) + "\n")
    return root
