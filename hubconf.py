"""torch.hub entry points: ``torch.hub.load(<this checkout>, "<name>", source="local", ckpt=...)``."""

dependencies = ["torch"]

from s3prl import hub as _hub  # noqa: E402


def __getattr__(name):
    return getattr(_hub, name)


def __dir__():
    return dir(_hub)
