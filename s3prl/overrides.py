"""The original's ``-o`` syntax, shared by ``s3prl downstream`` and ``s3prl pretrain``: ``KEY=VALUE`` items
separated by ``,,``, values read as YAML scalars (nothing is evaluated)."""

from __future__ import annotations

import re


def override_items(text: str | None) -> list[tuple[str, str]]:
    """``"a.b=1,,c.d=x"`` -> ``[("a.b", "1"), ("c.d", "x")]`` (keys stripped, values raw); blank items skipped."""
    items = []
    for item in (text or "").split(",,"):
        if not item.strip():
            continue
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"-o: {item!r} is not KEY=VALUE (items are separated by ',,')")
        items.append((key.strip(), raw))
    return items


def numeric(value):
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; such values are meant as numbers."""
    if isinstance(value, str) and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+", value.strip()):
        return float(value)
    return value
