"""fairseq's wav2vec / vq-wav2vec / wav2vec 2.0 recipes (``examples/wav2vec``) without fairseq.

Data tools (the ``s3prl wav2vec2`` subcommands, reading and writing fairseq's own file formats):

- :mod:`.manifest`: ``train.tsv`` / ``valid.tsv`` audio manifests (fairseq's ``wav2vec_manifest.py``);
- :mod:`.labels`: ``.ltr`` / ``.wrd`` label files from LibriSpeech transcripts (``libri_labels.py``) and the
  letter dictionary ``dict.ltr.txt`` (what ``fairseq-preprocess --only-source`` writes);
- :mod:`.featurize`: wav2vec features as ``.h5context`` files (``wav2vec_featurize.py``) and vq-wav2vec token
  strings (``vq-wav2vec_featurize.py``).

Training parts: :mod:`.pretraining`, :mod:`.criterion`, :mod:`.masking`, :mod:`.quantizer`.
"""


class RecipeError(ValueError):
    """A recipe input is not what fairseq's format needs; the message names the file, the line and the fix."""
