"""The public modules: ``S3PRLUpstream`` and ``Featurizer``."""

from .featurizer import Featurizer
from .upstream import S3PRLUpstream

__all__ = ["S3PRLUpstream", "Featurizer"]
