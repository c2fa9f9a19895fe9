"""Errors raised while reading foreign checkpoints."""


class CheckpointFormatError(ValueError):
    """A checkpoint is not of the expected format or family, or does not fit the model it should build."""


class CheckpointConfigError(CheckpointFormatError):
    """A configuration value read from a checkpoint (or its config file) has the wrong type or is out of bounds.

    The message names the file, the key, the value found and what is expected; the same facts are kept as
    attributes for programs."""

    def __init__(self, source: str, key: str, value, expected: str):
        self.source, self.key, self.value, self.expected = str(source), key, value, expected
        super().__init__(f"{source}: configuration key {key!r} = {short_repr(value)} is invalid: expected {expected}")


def short_repr(value, limit: int = 100) -> str:
    """``repr`` cut to ``limit`` characters (a bad value may be a huge string)."""
    if isinstance(value, (str, bytes)) and len(value) > 4 * limit:
        value = value[: 4 * limit]  # repr of a 1 GB string would itself be a big allocation
    text = repr(value) if not _is_tensor(value) else f"a tensor of shape {tuple(value.shape)}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_tensor(value) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "shape")
