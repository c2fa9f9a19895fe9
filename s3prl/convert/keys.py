"""Renaming checkpoint keys with an explicit table: every key is mapped or named unused, others raise."""

from __future__ import annotations

import re

from .errors import CheckpointFormatError


def rename_keys(state: dict, key_map, drop, source: str = "checkpoint") -> dict:
    """Apply the first matching ``(pattern, replacement)`` of ``key_map`` to each key (full-match regexes);
    keys matching a pattern of ``drop`` are left out; any other key raises ``CheckpointFormatError``."""
    out, unknown = {}, []
    for key, value in state.items():
        for pattern, repl in key_map:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, repl, key)] = value
                break
        else:
            if not any(re.fullmatch(p, key) for p in drop):
                unknown.append(key)
    if unknown:
        raise CheckpointFormatError(f"{source}: unexpected checkpoint keys (not mapped, not known to be unused): "
                                    f"{unknown[:10]}")
    return out
