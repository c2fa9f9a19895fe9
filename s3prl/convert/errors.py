"""Errors raised while reading foreign checkpoints."""


class CheckpointFormatError(ValueError):
    """A checkpoint is not of the expected format or family, or does not fit the model it should build."""
