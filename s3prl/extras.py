"""The error for an optional dependency that is not installed (``pip install 's3prl[EXTRA]'``).

Raised where the dependency is imported, with a message naming the extra to install; the command line shows
it as a user's error (``s3prl ...: error: ...``), not as a bug. It is an ImportError, so code that catches
ImportError still does."""


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message says which extra installs it."""
