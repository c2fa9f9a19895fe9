"""Hidden states of audio files to disk, in the formats other tools read (``s3prl extract``).

The work is streamed: file headers are read first (durations for batching, conversions for the notice),
then each batch is read, run and written before the next one is read, so the first files land on disk
within seconds and a file that cannot be read or computed is skipped and reported without stopping the
others. Outputs map one-to-one to inputs: an utterance's id is its path relative to the common folder of
the inputs, without the suffix; two inputs with the same id (``a.wav`` and ``a.flac``) are refused up
front with the list.

Formats (``--format``), all written atomically or resumably, with ``manifest.tsv`` (``utt_id``, ``source``,
``output``, ``frames``, ``layers``) beside them; ``fp16`` stores half precision (not for Kaldi):

* ``pt``:    ``<id>.pt`` per utterance, ``{"hidden_states": [(T, D) per layer], "layers", ...}`` (torch.load)
* ``npy``:   ``<id>.npy`` per utterance, one (L, T, D) array (needs layers of one size and rate)
* ``npz``:   ``features.npz``, key ``<id>/layer<l>`` -> (T, D) (numpy.load)
* ``hdf5``:  ``features.h5``, dataset ``/<id>/layer<l>`` (T, D), attributes on the file and groups (h5py)
* ``kaldi``: ``layer<l>.ark`` + ``layer<l>.scp`` per layer, one float32 matrix per utterance (kaldiio, Kaldi)
"""

from __future__ import annotations

import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .extras import MissingExtraError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
SAMPLE_RATE = 16000
FORMATS = ("pt", "npy", "npz", "hdf5", "kaldi")
MANIFEST = "manifest.tsv"


# ------------------------------------------------------------------------------------------------
# inputs: files, ids, headers
# ------------------------------------------------------------------------------------------------


@dataclass
class Item:
    """One input file: its id (path relative to the inputs' common folder, no suffix) and header facts."""

    uid: str
    path: Path
    frames: int = 0  # samples at the file's own rate
    sample_rate: int = 0
    channels: int = 0
    error: str | None = None

    @property
    def samples(self) -> int:
        """Samples after resampling to 16 kHz (what the batch will hold)."""
        return -(-self.frames * SAMPLE_RATE // self.sample_rate) if self.sample_rate else 0


def find_audio(inputs: list[str]) -> list[Item]:
    """Every audio file under ``inputs`` with its id; colliding ids raise with the full list."""
    found: list[Path] = []
    roots: list[Path] = []
    for given in inputs:
        path = Path(given).expanduser().absolute()
        if path.is_dir():
            roots.append(path)
            found += [f for f in sorted(path.rglob("*")) if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file()]
        elif path.is_file():
            roots.append(path.parent)
            found.append(path)
        else:
            raise FileNotFoundError(f"input {given!r} is neither an audio file nor a folder")
    if not found:
        raise FileNotFoundError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {', '.join(inputs)}")
    common = Path(os.path.commonpath([str(r) for r in roots]))
    items, seen = [], {}
    for path in dict.fromkeys(found):  # a file given twice is one input
        uid = path.relative_to(common).with_suffix("").as_posix()
        seen.setdefault(uid, []).append(path)
        items.append(Item(uid, path))
    clashes = {uid: paths for uid, paths in seen.items() if len(paths) > 1}
    if clashes:
        lines = "\n".join(f"  {uid}: {', '.join(str(p) for p in paths)}" for uid, paths in sorted(clashes.items()))
        raise ValueError(f"{len(clashes)} output name(s) would be written by several inputs (outputs are named by "
                         f"the path without its suffix):\n{lines}\nrename or move one of each, or extract them "
                         "in separate runs with different -o")
    return items


def read_headers(items: list[Item]) -> None:
    """Frames, rate and channels from each file's header (nothing decoded); unreadable files get ``error``."""
    import soundfile

    for item in items:
        try:
            info = soundfile.info(str(item.path))
            item.frames, item.sample_rate, item.channels = info.frames, info.samplerate, info.channels
            if info.frames <= 0:
                item.error = "the file holds no samples"
        except Exception as err:  # noqa: BLE001 - libsndfile's errors have their own types
            item.error = f"cannot read the audio header: {err}"


def conversion_notice(items: list[Item]) -> str | None:
    """One line saying which files are converted on reading (channels averaged, rates resampled)."""
    from .audio import describe_conversions

    return describe_conversions([(i.sample_rate, i.channels) for i in items if i.error is None], SAMPLE_RATE)


def batches_by_duration(lengths: list[int], budget: int) -> list[list[int]]:
    """Indices sorted by length, grouped so that each batch's padded size stays within ``budget`` samples."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches, current = [], []
    for i in order:
        if current and lengths[i] * (len(current) + 1) > budget:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


# ------------------------------------------------------------------------------------------------
# writers: one per format
# ------------------------------------------------------------------------------------------------


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` then rename into place: a killed run never leaves a partial file under ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class Writer:
    """Base: ``done()`` ids already written, ``write(item, states, layers, meta) -> output path``, ``close()``."""

    def __init__(self, outdir: Path, fp16: bool):
        self.outdir, self.fp16 = outdir, fp16

    def array(self, state: torch.Tensor) -> np.ndarray:
        state = state.detach().to("cpu", torch.float16 if self.fp16 else torch.float32)
        return state.contiguous().numpy().copy()  # its own compact buffer, never a view of the batch

    def done(self) -> set[str]:
        raise NotImplementedError

    def write(self, item: Item, states: list[torch.Tensor], layers: list[int], meta: dict) -> str:
        raise NotImplementedError

    def close(self) -> None:
        pass


class PtWriter(Writer):
    suffix = ".pt"

    def target(self, uid: str) -> Path:
        return self.outdir / f"{uid}{self.suffix}"

    def done(self) -> set[str]:
        return {p.relative_to(self.outdir).as_posix()[: -len(self.suffix)] for p in self.outdir.rglob(f"*{self.suffix}")}

    def write(self, item, states, layers, meta) -> str:
        tensors = [torch.from_numpy(self.array(s)) for s in states]
        obj = {"hidden_states": tensors, "layers": layers, **meta, "source": str(item.path)}
        atomic_write(self.target(item.uid), lambda tmp: torch.save(obj, tmp))
        return self.target(item.uid).relative_to(self.outdir).as_posix()


class NpyWriter(PtWriter):
    suffix = ".npy"

    def write(self, item, states, layers, meta) -> str:
        stacked = np.stack([self.array(s) for s in states])  # (L, T, D)

        def save(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.save(f, stacked)

        atomic_write(self.target(item.uid), save)
        return self.target(item.uid).relative_to(self.outdir).as_posix()


class NpzWriter(Writer):
    """Per-utterance ``.npy`` files in a staging folder (resumable), packed into ``features.npz`` at the end."""

    name = "features.npz"

    def __init__(self, outdir: Path, fp16: bool):
        super().__init__(outdir, fp16)
        self.staging = outdir / ".npz_staging"

    def done(self) -> set[str]:
        done = set()
        if (self.outdir / self.name).is_file():
            with zipfile.ZipFile(self.outdir / self.name) as z:
                done |= {n.rsplit("/layer", 1)[0] for n in z.namelist()}
        if self.staging.is_dir():
            done |= {p.relative_to(self.staging).as_posix()[:-4] for p in self.staging.rglob("*.npz")}
        return done

    def write(self, item, states, layers, meta) -> str:
        arrays = {f"layer{l}": self.array(s) for l, s in zip(layers, states)}

        def save(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

        atomic_write(self.staging / f"{item.uid}.npz", save)
        return f"{self.name}:{item.uid}/layer*"

    def close(self) -> None:
        """Pack the staged utterances (and those of an earlier features.npz) into one file, atomically."""
        final = self.outdir / self.name
        staged = sorted(self.staging.rglob("*.npz")) if self.staging.is_dir() else []
        if not staged:
            return

        def pack(tmp: Path) -> None:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as out:
                restaged = {path.relative_to(self.staging).as_posix()[:-4] for path in staged}
                if final.is_file():
                    with zipfile.ZipFile(final) as old:
                        for name in old.namelist():
                            if name.rsplit("/layer", 1)[0] not in restaged:  # extracted again: the new one wins
                                out.writestr(name, old.read(name))
                for path in staged:
                    uid = path.relative_to(self.staging).as_posix()[:-4]
                    with zipfile.ZipFile(path) as one:
                        for name in one.namelist():
                            out.writestr(f"{uid}/{name}", one.read(name))

        atomic_write(final, pack)
        for path in staged:
            path.unlink()
        for folder in sorted(self.staging.rglob("*"), reverse=True):
            if folder.is_dir():
                folder.rmdir()
        self.staging.rmdir()


class Hdf5Writer(Writer):
    """``features.h5``: group per utterance, dataset per layer; flushed after every utterance."""

    name = "features.h5"

    def __init__(self, outdir: Path, fp16: bool):
        super().__init__(outdir, fp16)
        h5py = optional_import("h5py", "hdf5")
        outdir.mkdir(parents=True, exist_ok=True)
        self.file = h5py.File(outdir / self.name, "a")

    def done(self) -> set[str]:
        done = set()
        self.file.visititems(lambda name, obj: done.add(name) if obj.attrs.get("complete") else None)
        return done

    def write(self, item, states, layers, meta) -> str:
        if item.uid in self.file:  # a group a killed run left unfinished
            del self.file[item.uid]
        group = self.file.create_group(item.uid)
        for layer, state in zip(layers, states):
            group.create_dataset(f"layer{layer}", data=self.array(state))
        group.attrs.update({"source": str(item.path), "layers": layers})
        for key, value in meta.items():
            self.file.attrs[key] = value
        group.attrs["complete"] = True  # set last: a group without it is rewritten on resume
        self.file.flush()
        return f"{self.name}:/{item.uid}"

    def close(self) -> None:
        self.file.close()


class KaldiWriter(Writer):
    """``layer<l>.ark`` / ``.scp`` per layer. The scp line is written after the matrix: it is the record."""

    def __init__(self, outdir: Path, fp16: bool, layers: list[int]):
        if fp16:
            raise ValueError("--format kaldi stores float32 matrices (Kaldi has no float16): drop --fp16")
        super().__init__(outdir, fp16)
        self.kaldiio = optional_import("kaldiio", "kaldi")
        self.layers = layers
        outdir.mkdir(parents=True, exist_ok=True)

    def scp(self, layer: int) -> Path:
        return self.outdir / f"layer{layer}.scp"

    def done(self) -> set[str]:
        per_layer = []
        for layer in self.layers:
            path = self.scp(layer)
            lines = path.read_text().splitlines() if path.is_file() else []
            per_layer.append({line.split(" ", 1)[0] for line in lines if " " in line})
        return set.intersection(*per_layer) if per_layer else set()

    def write(self, item, states, layers, meta) -> str:
        if " " in item.uid:
            raise ValueError(f"Kaldi utterance ids cannot contain spaces: {item.uid!r} (rename the file)")
        for layer, state in zip(layers, states):
            ark = (self.outdir / f"layer{layer}.ark").resolve()
            self.kaldiio.save_ark(str(ark), {item.uid: self.array(state)}, scp=str(self.scp(layer)), append=True)
        return f"layer*.scp:{item.uid}"


def start_over(fmt: str, outdir: Path) -> None:
    """``--overwrite`` for the formats that gather every utterance in one file: begin those files anew."""
    containers = {"npz": [NpzWriter.name], "hdf5": [Hdf5Writer.name], "kaldi": ["layer*.ark", "layer*.scp"]}
    for pattern in containers.get(fmt, []):
        for path in outdir.glob(pattern):
            path.unlink()


def make_writer(fmt: str, outdir: Path, fp16: bool, layers: list[int]) -> Writer:
    if fmt == "pt":
        return PtWriter(outdir, fp16)
    if fmt == "npy":
        return NpyWriter(outdir, fp16)
    if fmt == "npz":
        return NpzWriter(outdir, fp16)
    if fmt == "hdf5":
        return Hdf5Writer(outdir, fp16)
    if fmt == "kaldi":
        return KaldiWriter(outdir, fp16, layers)
    raise ValueError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")


def optional_import(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"--format {extra} needs the package {module!r}: pip install 's3prl[{extra}]' "
                          f"(or pip install {module})") from None


# ------------------------------------------------------------------------------------------------
# the manifest
# ------------------------------------------------------------------------------------------------


@dataclass
class Manifest:
    """``manifest.tsv``: one line per extracted utterance, appended as they are written (resumable)."""

    path: Path
    rows: dict[str, str] = field(default_factory=dict)
    header = "utt_id\tsource\toutput\tframes\tlayers"

    def load(self) -> None:
        if self.path.is_file():
            for line in self.path.read_text().splitlines()[1:]:
                if line.count("\t") == 4:  # a line cut by a kill has fewer fields
                    self.rows[line.split("\t", 1)[0]] = line
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.finish()  # drop cut lines now; later lines are appended

    def add(self, uid: str, source: Path, output: str, frames: list[int], layers: list[int]) -> None:
        frame_text = str(frames[0]) if len(set(frames)) == 1 else ",".join(map(str, frames))
        line = f"{uid}\t{source}\t{output}\t{frame_text}\t{','.join(map(str, layers))}"
        self.rows[uid] = line
        with open(self.path, "a") as f:
            f.write(line + "\n")

    def finish(self) -> None:
        text = "\n".join([self.header, *(self.rows[k] for k in sorted(self.rows))]) + "\n"
        atomic_write(self.path, lambda tmp: tmp.write_text(text))


# ------------------------------------------------------------------------------------------------
# the loop
# ------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    written: int = 0
    seconds: float = 0.0
    failed: dict[str, str] = field(default_factory=dict)  # uid -> why
    first_output_after: float | None = None
    elapsed: float = 0.0


def read_wav(item: Item) -> torch.Tensor:
    """The file's samples at 16 kHz, mono; non-finite samples are refused (they would poison a batch)."""
    from .audio import load_audio

    wav = load_audio(item.path, SAMPLE_RATE)
    if not torch.isfinite(wav).all():
        raise ValueError("the audio holds NaN or infinite samples")
    return wav


def run_batch(upstream, wavs: list[torch.Tensor], device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    lens = torch.tensor([len(w) for w in wavs])
    padded = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True).to(device)
    all_hs, all_lens = upstream(padded, lens.to(device))
    return all_hs, all_lens


def extract_items(items: list[Item], upstream, writer: Writer, manifest: Manifest, layers: list[int],
                  meta: dict, batch_seconds: float, device="cpu", strict: bool = False, bar=None) -> Outcome:
    """Read, run and write batch after batch; a file that fails is recorded in ``Outcome.failed`` and skipped
    (with ``strict``, the first failure raises). A batch that fails is retried one file at a time, so one
    bad file never takes its batch-mates down."""
    outcome, started = Outcome(), time.perf_counter()
    budget = max(1, int(batch_seconds * SAMPLE_RATE))

    def fail(item: Item, why: str) -> None:
        if strict:
            raise RuntimeError(f"{item.path}: {why} (without --strict, such files are skipped and listed)")
        outcome.failed[item.uid] = f"{item.path}: {why}"

    def write(item: Item, b: int, all_hs, all_lens) -> None:
        states = [all_hs[l][b, : int(all_lens[l][b])] for l in layers]  # finite: S3PRLUpstream checks them
        output = writer.write(item, states, layers, meta)
        manifest.add(item.uid, item.path, output, [s.size(0) for s in states], layers)
        outcome.written += 1
        outcome.seconds += item.samples / SAMPLE_RATE
        if outcome.first_output_after is None:
            outcome.first_output_after = time.perf_counter() - started

    with torch.inference_mode():
        for batch in batches_by_duration([i.samples for i in items], budget):
            group, wavs = [], []
            for j in batch:
                try:
                    wavs.append(read_wav(items[j]))
                    group.append(items[j])
                except Exception as err:  # noqa: BLE001 - any unreadable file is skipped and reported
                    fail(items[j], str(err))
            if group:
                try:
                    all_hs, all_lens = run_batch(upstream, wavs, device)
                    results = [(item, b, all_hs, all_lens) for b, item in enumerate(group)]
                except Exception:  # noqa: BLE001 - find the file that broke the batch
                    results = []
                    for item, wav in zip(group, wavs):
                        try:
                            results.append((item, 0, *run_batch(upstream, [wav], device)))
                        except Exception as err:  # noqa: BLE001
                            fail(item, f"the upstream failed on it: {err}")
                for item, b, all_hs, all_lens in results:
                    write(item, b, all_hs, all_lens)
            if bar is not None:
                bar.update(len(batch))
    outcome.elapsed = time.perf_counter() - started
    return outcome
