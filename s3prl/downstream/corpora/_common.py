"""Small helpers shared by the corpus readers: layout checks with useful errors, stable hashing."""

from __future__ import annotations

import hashlib
from pathlib import Path


class CorpusLayoutError(FileNotFoundError):
    """A corpus folder does not have the layout its reader expects (the message names the path and the layout)."""


def require_dir(path: str | Path, what: str, layout: str) -> Path:
    """``path`` as a Path if it is a folder, else a :class:`CorpusLayoutError` naming it and the expected layout."""
    path = Path(path)
    if not path.is_dir():
        raise CorpusLayoutError(f"{what}: folder {str(path)!r} not found. Expected layout:\n{layout}")
    return path


def require_file(path: str | Path, what: str, layout: str) -> Path:
    """``path`` as a Path if it is a file, else a :class:`CorpusLayoutError` naming it and the expected layout."""
    path = Path(path)
    if not path.is_file():
        raise CorpusLayoutError(f"{what}: file {str(path)!r} not found. Expected layout:\n{layout}")
    return path


def first_existing(candidates: list[Path], what: str, layout: str) -> Path:
    """The first of ``candidates`` that is a file; the error lists every place looked at."""
    for path in candidates:
        if path.is_file():
            return path
    tried = "\n".join(f"  {p}" for p in candidates)
    raise CorpusLayoutError(f"{what}: none of these files exists:\n{tried}\nExpected layout:\n{layout}")


def stable_key(text: str) -> str:
    """A hex digest of ``text``: an order that does not depend on the file system or on PYTHONHASHSEED."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def visible_dirs(path: Path) -> list[Path]:
    """Sub-folders of ``path`` in name order, hidden ones (``.git``, ``._*``) left out."""
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def missing_files_error(what: str, missing: list[str], total: int, hint: str) -> CorpusLayoutError:
    """An error that names the first few of ``missing`` files out of ``total`` listed."""
    shown = "\n".join(f"  {m}" for m in missing[:5])
    more = f"\n  ... and {len(missing) - 5} more" if len(missing) > 5 else ""
    return CorpusLayoutError(f"{what}: {len(missing)} of {total} listed files are missing:\n{shown}{more}\n{hint}")
