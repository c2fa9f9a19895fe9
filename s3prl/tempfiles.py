"""Temporary files of killed runs: ``<name>.tmp<PID>`` / ``<name>.copy<PID>`` files are written beside their
final name and renamed into place; those whose process is gone are left-overs, safe to delete."""

from __future__ import annotations

import os
import re
from pathlib import Path

STALE = re.compile(r"\.(tmp|copy)(\d+)$")


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (ours counts as alive)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if os.name != "posix":  # no harmless probe (os.kill terminates on Windows): assume it runs
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except (ProcessLookupError, OverflowError):  # no such process; a PID too large to exist
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the ``*.tmp<PID>`` / ``*.copy<PID>`` files under ``folder`` whose process is gone; returns them."""
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.rglob("*"):
        match = STALE.search(path.name)
        if match and not pid_alive(int(match.group(2))) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
