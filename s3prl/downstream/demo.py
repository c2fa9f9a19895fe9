"""``s3prl demo``: a SUPERB-style benchmark that needs no download, end to end, in a few minutes on a CPU.

1. Synthesizes a small spoken-digit corpus with espeak-ng (10 digits, several voices, each take with its own
   speed, pitch and level of background noise) in the Free Spoken Digit Dataset layout:
   ``recordings/{digit}_{voice}_{take}.wav``; takes 0-4 are test, 5-9 dev, the rest train (the FSDD rule).
2. (``s3prl.cli.demo``) Benchmarks each upstream on it with the runner, exactly as ``s3prl downstream train -u UPSTREAM -d
   demo_digits`` does: frozen upstream, feature cache, Featurizer, task head, best checkpoint on dev, test.
3. Prints the results table and writes ``results.md`` and ``layer_weights.png`` next to the runs.

Nothing is fetched: the audio is made here (``apt-get install espeak-ng`` provides the synthesizer).
"""

from __future__ import annotations

import random
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# espeak-ng voices (accent + voice variant); the file-name speaker is the index: v0, v1, ...
VOICES = ("en-us", "en-gb+f3", "en-gb-scotland+m3", "en-029+f2", "en-us-nyc+m5", "en-gb-x-rp+f4")
TAKES = 24  # per voice and digit: 5 test, 5 dev, 14 train


def find_espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("the demo synthesizes its recordings with espeak-ng, which is not installed: "
                           "run `apt-get install espeak-ng` (`make demo` does it for you)")
    return exe


def synthesize(folder: Path, voices=VOICES, takes: int = TAKES, seed: int = 0) -> Path:
    """Write the digit corpus under ``folder/recordings`` (existing files are kept); returns ``folder``.

    Each take gets its own speed, pitch and a background of white noise at 5-25 dB SNR, so that the
    task is not trivial; files are stored as 16 kHz 16-bit PCM.
    """
    exe = find_espeak()
    rng = random.Random(seed)
    jobs = []
    for v, voice in enumerate(voices):
        for d, word in enumerate(DIGITS):
            for take in range(takes):
                speed, pitch, snr = rng.randint(120, 200), rng.randint(25, 75), rng.uniform(5.0, 25.0)
                path = folder / "recordings" / f"{d}_v{v}_{take}.wav"
                if not path.is_file():  # the draws above happen anyway: a resumed synthesis gives the same corpus
                    raw = path.with_name(path.stem + ".espeak.wav")
                    jobs.append(([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw), word],
                                 raw, path, snr))
    (folder / "recordings").mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=4) as pool:
        for done in pool.map(lambda job: subprocess.run(job[0], capture_output=True, text=True), jobs):
            if done.returncode != 0:
                raise RuntimeError(f"espeak-ng failed: {' '.join(done.args)}\n{done.stderr}")
    for _, raw, path, snr in jobs:
        add_noise(raw, path, snr)
    return folder


def add_noise(raw: Path, path: Path, snr_db: float) -> None:
    """``raw`` (espeak-ng's 22,050 Hz output) at 16 kHz with white noise at ``snr_db``, written to ``path``."""
    import numpy as np
    import soundfile

    from ..audio import load_audio

    wav = load_audio(raw, 16000).numpy()
    rng = np.random.default_rng(int(snr_db * 1e6))
    power = float(np.mean(wav**2)) or 1e-8
    noisy = wav + rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), wav.shape)
    tmp = path.with_name(path.stem + ".tmp.wav")
    soundfile.write(str(tmp), np.clip(noisy, -1, 1).astype(np.float32), 16000, subtype="PCM_16")
    tmp.replace(path)
    raw.unlink()
