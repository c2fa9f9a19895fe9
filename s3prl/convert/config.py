"""Architecture settings read from a checkpoint's configuration: typed, bounded, and named in every error.

A checkpoint is data from elsewhere: its configuration decides how much memory the model we build takes, so
every value is checked (type, range) before anything is allocated, and list expressions such as fairseq's
``conv_feature_layers = "[(512, 10, 5)] + [(512, 3, 2)] * 4"`` are evaluated by a small interpreter that
bounds every intermediate list (``[(48, 10, 5)] * 100000 * 100000`` is refused at the first ``*``, not
after asking for 80 GB). A wrong value raises ``CheckpointConfigError`` naming the file, the key, the value
and what is expected; ``check_model_size`` refuses a configuration much larger than the weights it comes with.
"""

from __future__ import annotations

import ast
import math
import re

from .errors import CheckpointConfigError, CheckpointFormatError

MAX_SIZE = 65536  # channels, widths, kernel sizes, strides, heads, buckets ...
MAX_LAYERS = 1024  # transformer / recurrent layers of one stack
MAX_CONV_LAYERS = 64  # layers of a convolutional feature extractor
MAX_EXPR_CHARS = 4096  # a list expression longer than this is not a configuration
MAX_EXPR_ITEMS = 256  # elements of any list built while evaluating one
MAX_EXPR_DEPTH = 8  # nesting of brackets and operators
MAX_NUMBER = 2**31

_INT_TEXT = re.compile(r"\s*[+-]?\d{1,12}\s*")
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def as_int(value, key: str, source: str, lo: int = 1, hi: int = MAX_SIZE) -> int:
    """``value`` as an int in ``lo..hi`` (ints, integral floats and decimal strings; never a bool)."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value):
        number = int(value)
    if number is None or not lo <= number <= hi:
        raise CheckpointConfigError(source, key, value, f"an integer in {lo}..{hi}")
    return number


def as_float(value, key: str, source: str, lo: float = 0.0, hi: float = 1.0) -> float:
    """``value`` as a finite float in ``lo..hi`` (numbers and numeric strings; never a bool)."""
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and len(value) < 64:
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or not lo <= number <= hi:
        raise CheckpointConfigError(source, key, value, f"a number in {lo}..{hi}")
    return number


def as_bool(value, key: str, source: str) -> bool:
    """``value`` as a bool (bools, 0/1, and the strings true/false/yes/no/on/off)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise CheckpointConfigError(source, key, value, "true or false")


def as_str(value, key: str, source: str, choices=None) -> str:
    """``value`` as a str, one of ``choices`` when given."""
    if not isinstance(value, str) or (choices is not None and value not in choices):
        expected = "a string" if choices is None else "one of " + ", ".join(repr(c) for c in choices)
        raise CheckpointConfigError(source, key, value, expected)
    return value


def as_mapping(value, what: str, source: str) -> dict:
    """A configuration section that must be a dict (an ``argparse.Namespace`` becomes one)."""
    if isinstance(value, dict):
        return value
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return dict(vars(value))
    raise CheckpointFormatError(f"{source}: {what} is a {type(value).__name__}, expected a mapping of settings")


class Settings:
    """Typed reads of one configuration mapping; a missing or None key takes its value from ``defaults``."""

    def __init__(self, conf: dict, defaults: dict, source: str):
        self.conf, self.defaults, self.source = conf, defaults, str(source)

    def raw(self, key: str):
        value = self.conf.get(key)
        return value if value is not None else self.defaults[key]

    def int(self, key: str, lo: int = 1, hi: int = MAX_SIZE) -> int:
        return as_int(self.raw(key), key, self.source, lo, hi)

    def float(self, key: str, lo: float = 0.0, hi: float = 1.0) -> float:
        return as_float(self.raw(key), key, self.source, lo, hi)

    def bool(self, key: str) -> bool:
        return as_bool(self.raw(key), key, self.source)

    def str(self, key: str, choices=None) -> str:
        return as_str(self.raw(key), key, self.source, choices)

    def conv_layers(self, key: str) -> tuple[tuple[int, int, int], ...]:
        return parse_conv_layers(self.raw(key), self.source, key)

    def int_list(self, key: str, max_items: int, lo: int = 1, hi: int = MAX_SIZE) -> list[int]:
        return parse_int_list(self.raw(key), self.source, key, max_items, lo, hi)


def eval_list_expression(spec: str, key: str, source: str, expected: str):
    """Evaluate a list/tuple literal with ``+`` and ``*`` (fairseq's layer specs), every list bounded by
    ``MAX_EXPR_ITEMS`` *before* it is built; anything else (names, calls, ``**``) is refused."""

    def fail():
        return CheckpointConfigError(source, key, spec, expected)

    def number(value):
        if abs(value) > MAX_NUMBER:
            raise fail()
        return value

    def repeat(seq, times):
        if not isinstance(times, int) or not 0 <= times <= MAX_EXPR_ITEMS or len(seq) * times > MAX_EXPR_ITEMS:
            raise fail()
        return seq * times

    def ev(node, depth: int):
        if depth > MAX_EXPR_DEPTH:
            raise fail()
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return number(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = ev(node.operand, depth + 1)
            if not isinstance(value, (int, float)):
                raise fail()
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, (ast.List, ast.Tuple)):
            if len(node.elts) > MAX_EXPR_ITEMS:
                raise fail()
            items = [ev(e, depth + 1) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = ev(node.left, depth + 1), ev(node.right, depth + 1)
            numbers = isinstance(left, (int, float)) and isinstance(right, (int, float))
            if isinstance(node.op, ast.Add):
                if numbers:
                    return number(left + right)
                if type(left) is not type(right) or len(left) + len(right) > MAX_EXPR_ITEMS:
                    raise fail()
                return left + right
            if numbers:
                return number(left * right)
            if isinstance(left, (list, tuple)):
                return repeat(left, right)
            if isinstance(right, (list, tuple)):
                return repeat(right, left)
        raise fail()

    if len(spec) > MAX_EXPR_CHARS:
        raise fail()
    try:
        tree = ast.parse(spec.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise fail() from None
    return ev(tree.body, 0)


def parse_conv_layers(spec, source: str = "checkpoint", key: str = "conv_feature_layers"):
    """fairseq's conv feature-extractor spec (a string such as ``"[(512, 10, 5)] + [(512, 3, 2)] * 4"`` or
    a list of triples) -> ``((channels, kernel, stride), ...)``, 1 to ``MAX_CONV_LAYERS`` layers, each value in
    1..``MAX_SIZE``; anything else raises ``CheckpointConfigError``."""
    expected = (f"a list of 1 to {MAX_CONV_LAYERS} (channels, kernel, stride) triples of integers in 1..{MAX_SIZE}, "
                'such as "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2"')
    layers = eval_list_expression(spec, key, source, expected) if isinstance(spec, str) else spec
    if not isinstance(layers, (list, tuple)) or not 1 <= len(layers) <= MAX_CONV_LAYERS:
        raise CheckpointConfigError(source, key, spec, expected)
    out = []
    for layer in layers:
        if not isinstance(layer, (list, tuple)) or len(layer) != 3:
            raise CheckpointConfigError(source, key, spec, expected)
        try:
            out.append(tuple(as_int(v, key, source, 1, MAX_SIZE) for v in layer))
        except CheckpointConfigError:
            raise CheckpointConfigError(source, key, spec, expected) from None
    return tuple(out)


def parse_int_list(spec, source: str, key: str, max_items: int, lo: int = 1, hi: int = MAX_SIZE) -> list[int]:
    """A list of ints given as a list or as a string (``"[1, 2]"``, ``"[1] * 3"``), at most ``max_items``."""
    expected = f"a list of at most {max_items} integers in {lo}..{hi}"
    values = eval_list_expression(spec, key, source, expected) if isinstance(spec, str) else spec
    if not isinstance(values, (list, tuple)) or len(values) > max_items:
        raise CheckpointConfigError(source, key, spec, expected)
    try:
        return [as_int(v, key, source, lo, hi) for v in values]
    except CheckpointConfigError:
        raise CheckpointConfigError(source, key, spec, expected) from None


def require_tensors(state: dict, source: str, skip=()) -> None:
    """Every value of a weights dict must be a tensor (keys in ``skip`` excepted)."""
    import torch

    for key, value in state.items():
        if key not in skip and not isinstance(value, torch.Tensor):
            raise CheckpointConfigError(source, key, value, "a tensor (a model weight)")


def conv_parameters(layers, in_channels: int = 1) -> int:
    """Weights of a stack of (channels, kernel, stride) convs, without biases or norms."""
    total = 0
    for out, kernel, _ in layers:
        total, in_channels = total + in_channels * out * kernel, out
    return total


def stored_parameters(state: dict) -> int:
    """How many numbers the tensors of a state dict hold."""
    return sum(v.numel() for v in state.values() if hasattr(v, "numel") and hasattr(v, "shape"))


def check_model_size(estimate: int, state: dict, source: str) -> None:
    """Refuse to build a model whose configuration asks for far more parameters than the file stores
    (``estimate``: a lower bound of the model's parameter count, from the configuration alone)."""
    stored = stored_parameters(state)
    if estimate > 2 * stored + 10**7:
        raise CheckpointFormatError(
            f"{source}: its configuration describes a model of at least {estimate:,} parameters but the file "
            f"stores {stored:,} numbers: the configuration does not belong to these weights (nothing was built)"
        )
