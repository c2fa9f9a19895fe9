"""Audio manifests in fairseq's format (``s3prl wav2vec2 manifest``, replacing ``wav2vec_manifest.py``).

A manifest is a text file: the first line is the audio root folder (its real path), then one line per file,
``<path relative to the root>\\t<number of samples>``. ``write_manifest`` writes ``train.tsv`` and, when
``valid_percent > 0``, ``valid.tsv``, with the same files, header, sample counts and random split as fairseq's
script for the same folder and seed:

- files are ``**/*.EXT`` under the root; names starting with ``.`` (files and folders) are skipped, folder
  links are followed, each path is resolved (``realpath``) before it is made relative to the root, and
  ``path_must_contain`` filters on that resolved path;
- the split draws one ``random.Random(seed).random()`` per kept file, in walk order: the file goes to
  ``valid`` when the draw is ``<= valid_percent``.

The walk order decides the split, and fairseq's order is the order its file system lists folders (hash order on
ext4, creation order elsewhere): the same folder copied to another disk gives another split. ``order="sorted"``
(the default) lists every folder by name (code point order) so that a manifest does not depend on the disk;
``order="filesystem"`` walks exactly as fairseq's ``glob`` call does (pre-order: a folder's files, then its
sub-folders, each in listing order), which reproduces fairseq's files byte for byte on the same disk. The two
agree wherever the file system lists names sorted.

Deliberate differences, all on inputs where fairseq's script fails or misbehaves: a missing root, no matching
file and unreadable audio are errors naming the path (fairseq writes an empty manifest or a traceback); entries
that are folders or broken links are skipped; a folder link that leads back to one of its parents is not entered
again (fairseq's glob repeats such files until the path is too long); glob characters in the root are literal.
"""

from __future__ import annotations

import fnmatch
import os
import random
from dataclasses import dataclass

from . import RecipeError

ORDERS = ("sorted", "filesystem")


@dataclass
class Manifest:
    """A parsed manifest: the audio root and ``(relative path, samples)`` per line."""

    root: str
    entries: list[tuple[str, int]]

    def paths(self) -> list[str]:
        return [os.path.join(self.root, rel) for rel, _ in self.entries]


def _listing(folder: str, order: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            entries = [e for e in it if not e.name.startswith(".")]
    except OSError:  # an unreadable folder is skipped, as glob does
        return []
    return sorted(entries, key=lambda e: e.name) if order == "sorted" else entries


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def find_audio(root: str, ext: str = "flac", order: str = "sorted") -> list[str]:
    """Paths of the ``*.EXT`` files under ``root`` (as found, not resolved), in walk order (see module doc)."""
    if order not in ORDERS:
        raise RecipeError(f"unknown walk order {order!r} (allowed: {', '.join(ORDERS)})")
    pattern, found = "*." + ext, []

    def walk(folder: str, parents: tuple[str, ...]) -> None:
        entries = _listing(folder, order)
        found.extend(e.path for e in entries if fnmatch.fnmatchcase(e.name, pattern) and e.is_file())
        for entry in entries:
            if _is_dir(entry):
                real = os.path.realpath(entry.path)
                if real not in parents:  # a link back to a parent folder would never end
                    walk(entry.path, parents + (real,))

    walk(root, (os.path.realpath(root),))
    return found


def audio_frames(path: str) -> int:
    """Number of samples per channel of an audio file, from its header."""
    import soundfile

    try:
        return int(soundfile.info(path).frames)
    except Exception as err:  # libsndfile raises its own error types
        raise RecipeError(f"cannot read the audio header of {path}: {err}. Remove or convert the file, or "
                          "narrow the search with --ext / --path-must-contain") from err


def collect(root: str, ext: str = "flac", path_must_contain: str | None = None,
            order: str = "sorted") -> tuple[str, list[tuple[str, int]]]:
    """The manifest lines of a folder before the split: (real root, [(relative path, samples)])."""
    if not os.path.isdir(root):
        raise RecipeError(f"audio folder {root!r} not found (the first argument is the folder to index)")
    base = os.path.realpath(root)
    entries = []
    for path in find_audio(base, ext, order):
        real = os.path.realpath(path)
        if path_must_contain and path_must_contain not in real:
            continue
        entries.append((os.path.relpath(real, base), audio_frames(path)))
    if not entries:
        hint = f" containing {path_must_contain!r}" if path_must_contain else ""
        raise RecipeError(f"no *.{ext} file{hint} under {base} (hidden files and folders are skipped); "
                          "check the folder and --ext (e.g. --ext wav)")
    return base, entries


def split(entries: list, valid_percent: float, seed: int) -> tuple[list, list]:
    """fairseq's split: one ``random.Random(seed).random()`` draw per entry; ``> valid_percent`` -> train."""
    check_valid_percent(valid_percent)
    rand = random.Random(seed)
    train, valid = [], []
    for entry in entries:
        (train if rand.random() > valid_percent else valid).append(entry)
    return train, valid


def check_valid_percent(valid_percent: float) -> None:
    if not 0.0 <= valid_percent <= 1.0:
        raise RecipeError(f"--valid-percent must be a fraction between 0 and 1 (got {valid_percent}; "
                          "0.01 puts 1% of the files in valid.tsv)")


def format_manifest(root: str, entries: list[tuple[str, int]]) -> str:
    return "".join(f"{line}\n" for line in [root] + [f"{rel}\t{frames}" for rel, frames in entries])


def write_manifest(root: str, dest: str = ".", ext: str = "flac", valid_percent: float = 0.01, seed: int = 42,
                   path_must_contain: str | None = None, order: str = "sorted") -> dict[str, list]:
    """Write ``dest/train.tsv`` (and ``dest/valid.tsv`` when ``valid_percent > 0``); returns the entries per split."""
    check_valid_percent(valid_percent)
    base, entries = collect(root, ext, path_must_contain, order)
    train, valid = split(entries, valid_percent, seed)
    os.makedirs(dest, exist_ok=True)
    splits = {"train": train, "valid": valid} if valid_percent > 0 else {"train": train}
    for name, rows in splits.items():
        with open(os.path.join(dest, f"{name}.tsv"), "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(format_manifest(base, rows))
    return splits


def read_manifest(path: str) -> Manifest:
    """Parse a manifest; a malformed line raises :class:`RecipeError` naming the file and line number."""
    if not os.path.isfile(path):
        raise RecipeError(f"manifest {path!r} not found (write one with `s3prl wav2vec2 manifest`)")
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or not lines[0].strip():
        raise RecipeError(f"{path}: empty manifest (the first line must be the audio root folder)")
    entries = []
    for number, line in enumerate(lines[1:], 2):
        rel, tab, frames = line.rstrip("\r").partition("\t")
        if not tab or not rel or not frames.strip().isdigit():
            raise RecipeError(f"{path}:{number}: expected '<relative path>\\t<number of samples>', got {line!r}")
        entries.append((rel, int(frames)))
    return Manifest(lines[0].strip(), entries)
