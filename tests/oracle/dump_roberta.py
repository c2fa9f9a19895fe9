"""Dump the ORIGINAL DiscreteBERT (``vq_wav2vec_kmeans_roberta``) on local tiny checkpoints (oracle venv).

    python dump_roberta.py --roberta R.pt --kmeans K.pt -- DUMP_ARGS...

The original entry has no ``*_local``/``*_custom`` form: it ignores ``ckpt`` and downloads two files, the
converted RoBERTa (through ``_urls_to_filepaths`` in ``s3prl.upstream.roberta.hubconf``) and its front end
``s3prl.hub.vq_wav2vec_kmeans()``. This wrapper replaces exactly those two look-ups, in the original
package's namespace and for this process only, so that they return R.pt and ``vq_wav2vec_custom(ckpt=K.pt)``;
then it runs the oracle's ``dump.py`` unchanged with ``--name vq_wav2vec_kmeans_roberta --ckpt R.pt``.
Everything else (tokenisation, chunking, RoBERTa, S3PRLUpstream's length rule) is the original code.
"""

import argparse
import os
import sys

ORACLE = os.environ.get("S3PRL_ORACLE_DIR", os.path.join(os.path.dirname(__file__), "../../../shared/tools/s3prl-oracle"))
sys.path.insert(0, os.path.abspath(ORACLE))

import dump  # noqa: E402  (imports oracle_env first)


def main(argv) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roberta", required=True)
    parser.add_argument("--kmeans", required=True)
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    roberta, kmeans = os.path.abspath(args.roberta), os.path.abspath(args.kmeans)

    import s3prl.hub as hub
    import s3prl.upstream.roberta.hubconf as roberta_hubconf

    roberta_hubconf._urls_to_filepaths = lambda *urls, **kwargs: roberta
    hub.vq_wav2vec_kmeans = lambda *a, **kwargs: hub.vq_wav2vec_custom(ckpt=kmeans)
    rest = [a for a in args.rest if a != "--"]
    return dump.main(["--name", "vq_wav2vec_kmeans_roberta", "--ckpt", roberta] + rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
