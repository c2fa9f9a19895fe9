"""The one error handler of the ``s3prl`` command: every failure ends as one message and a non-zero exit.

A user mistake (a misspelled name, a missing file, a bad option, a broken checkpoint or configuration)
is reported as ``s3prl COMMAND: error: WHAT`` with no traceback. Anything else is reported the same way,
marked as unexpected, with a hint to rerun with ``--debug`` (or ``S3PRL_DEBUG=1``), which shows the
traceback instead.
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # what a shell reports for a process ended by SIGPIPE (`s3prl list | head`)


class UserError(Exception):
    """A mistake in what the user asked for; the message says what was wrong and how to fix it."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exception types whose message is meant for the user (our own errors subclass these)."""
    from ..extras import MissingExtraError  # an optional dependency: the message names the extra

    types: list[type[BaseException]] = [UserError, MissingExtraError, ValueError, OSError, NotImplementedError,
                                        RuntimeError, LookupError, TypeError, pickle.UnpicklingError, EOFError]
    try:
        import yaml

        types.append(yaml.YAMLError)
    except ImportError:  # pragma: no cover - a dependency
        pass
    try:
        from safetensors import SafetensorError

        types.append(SafetensorError)
    except ImportError:  # pragma: no cover - older safetensors
        pass
    return tuple(types)


def debug_requested(args=None) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get("S3PRL_DEBUG", "").lower() in ("1", "true", "yes")


def describe(err: BaseException) -> str:
    """One line (or a few) saying what went wrong; ``KeyError('x')`` and friends get their type named."""
    message = str(err).strip()
    if isinstance(err, KeyError) and err.args:
        message = f"missing key {err.args[0]!r}"
    if isinstance(err, OSError) and getattr(err, "filename", None) and str(err.filename) not in message:
        message = f"{message} ({err.filename})"
    return message or type(err).__name__


def run_command(command, args) -> int:
    """Call ``command(args)`` and turn every failure into a message and an exit code."""
    words = [getattr(args, "command", None), getattr(args, "mode", None)]
    prefix = " ".join(["s3prl", *(w for w in words if w)])
    try:
        return int(command(args) or 0)
    except KeyboardInterrupt:
        print(f"\n{prefix}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        silence_stdout()
        return EXIT_BROKEN_PIPE
    except SystemExit:
        raise
    except BaseException as err:  # noqa: BLE001 - the one place that turns failures into messages
        if debug_requested(args):
            traceback.print_exc()
        elif isinstance(err, user_error_types()):
            print(f"{prefix}: error: {describe(err)}", file=sys.stderr)
        else:
            print(f"{prefix}: unexpected error ({type(err).__name__}): {describe(err)}\n"
                  f"This may be a bug in s3prl: rerun with --debug for the traceback and report it.", file=sys.stderr)
        return EXIT_ERROR


def silence_stdout() -> None:
    """After the reader of our output went away: send what is left to /dev/null so exit does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
