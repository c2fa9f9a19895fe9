"""Progress for long jobs: a live bar on a terminal, plain periodic lines in a log file.

A ``\\r``-updated bar is what a person at a terminal wants; written to a log file it becomes hundreds of
kilobytes of carriage returns. ``progress()`` therefore returns a tqdm bar only when stderr is a terminal,
and otherwise a :class:`PlainProgress` that prints one line every ``S3PRL_PROGRESS_SECONDS`` seconds
(default 30) and a last line when it closes.
"""

from __future__ import annotations

import math
import os
import sys
import time

DEFAULT_INTERVAL = 30.0


def interval_seconds() -> float:
    """``S3PRL_PROGRESS_SECONDS`` (seconds between plain progress lines), validated."""
    raw = os.environ.get("S3PRL_PROGRESS_SECONDS")
    if raw is None or not raw.strip():
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"S3PRL_PROGRESS_SECONDS={raw!r} is not a number of seconds >= 0 (default {DEFAULT_INTERVAL:g})")
    return value


def on_terminal(stream=None) -> bool:
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def progress(total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0, enabled: bool = True):
    """A progress reporter with tqdm's ``update``/``set_postfix``/``write``/``close`` and context manager."""
    if not enabled:
        return PlainProgress(total, desc, unit, initial, interval=math.inf, silent=True)
    if on_terminal():
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True)
    return PlainProgress(total, desc, unit, initial, interval=interval_seconds())


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class PlainProgress:
    """``desc: 120/3000 file (4.0%), 12.3 file/s, elapsed 0m10s, eta 3m54s, loss=0.41`` every ``interval`` s."""

    def __init__(self, total: int | None, desc: str, unit: str, initial: int = 0, interval: float = DEFAULT_INTERVAL,
                 silent: bool = False, stream=None):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.interval, self.silent = interval, silent
        self.stream = stream or sys.stderr
        self.started = self.last = time.monotonic()
        self.start_n = initial
        self.postfix = ""
        self.closed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._emit()

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def write(self, message: str) -> None:
        print(message, file=sys.stdout, flush=True)

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        rate = (self.n - self.start_n) / elapsed if elapsed > 0 else 0.0
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        parts = [f"{self.desc}: {done} {self.unit}"]
        if self.total:
            parts[0] += f" ({100.0 * self.n / self.total:.1f}%)"
        parts.append(f"{rate:.2f} {self.unit}/s")
        parts.append(f"elapsed {format_seconds(elapsed)}")
        if self.total and rate > 0 and self.n < self.total:
            parts.append(f"eta {format_seconds((self.total - self.n) / rate)}")
        if self.postfix:
            parts.append(self.postfix)
        return ", ".join(parts)

    def _emit(self) -> None:
        if not self.silent:
            sys.stdout.flush()  # keep the order of our stdout lines and this one in a shared log
            print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.n > self.start_n:
                self._emit()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
