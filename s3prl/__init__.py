"""s3prl: self-supervised speech representations.

Load any upstream by name (``s3prl.nn.S3PRLUpstream``), combine its layers (``s3prl.nn.Featurizer``),
or use the legacy hub interface (``s3prl.hub.<name>()``).
"""

__version__ = "0.5.0.dev0"
