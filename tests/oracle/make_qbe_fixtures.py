"""Parity fixtures for QbE (``quesst14_dtw``), written by the ORIGINAL s3prl 0.4.18 expert (oracle venv).

    PY=$(cd / && bash ../shared/tools/s3prl-oracle/setup.sh | tail -1)
    $PY -m pip install --target /tmp/qbe_oracle_pkgs dtw-python lxml   # the expert's imports, kept out of the venv
    PYTHONPATH=/tmp/qbe_oracle_pkgs $PY tests/oracle/make_qbe_fixtures.py tests/fixtures

Writes ``qbe_oracle.npz``: seeded features of 4 queries (one shorter than 5 frames) and 7 documents (one shorter
than two of the queries; some hold a noisy copy of a query), the original ``match`` scores (minus the normalised
DTW distance) for every (query, document) pair with each distance and with / without min-max normalisation, and
``qbe_oracle_<case>.stdlist.xml``: what the original ``DownstreamExpert.log_records`` writes for the same features
(feature z-normalisation, per-query z-scores, YES above 2) with cosine_exp, and with cosine_neg_log on
non-negative posteriorgram-like features with ``silence_frame=0``.
"""

import os
import shutil
import sys
import tempfile
from collections import defaultdict
from functools import partial

import numpy as np
import torch

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
QUERY_LENS, DOC_LENS, DIM = [12, 3, 20, 9], [30, 45, 8, 60, 25, 40, 15], 6


def features(seed: int) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    queries = [rng.normal(size=(n, DIM)).astype(np.float32) for n in QUERY_LENS]
    docs = [rng.normal(size=(n, DIM)).astype(np.float32) for n in DOC_LENS]
    for q, d, at in ((0, 1, 10), (2, 3, 25), (3, 4, 5), (0, 5, 20)):  # planted, noisy occurrences
        docs[d][at:at + QUERY_LENS[q]] = queries[q] + 0.3 * rng.normal(size=queries[q].shape).astype(np.float32)
    return queries, docs


def match_scores(queries, docs) -> dict:
    from scipy.spatial import distance
    from s3prl.downstream.quesst14_dtw import expert

    dtwrc = {"step_pattern": "asymmetric", "keep_internals": False, "distance_only": False,
             "open_begin": True, "open_end": True}
    out = {}
    for method in ("cosine_exp", "cosine", "cityblock", "euclidean"):
        fn = expert.cosine_exp if method == "cosine_exp" else partial(distance.cdist, metric=method)
        for minmax in (True, False):
            out[f"match_{method}_{'minmax' if minmax else 'raw'}"] = np.array(
                [[expert.match(q, d, "q", "d", fn, minmax, dtwrc)[2] for d in docs] for q in queries])
    return out


def run_expert(queries, docs, dist_method: str, normalize: bool, silence_frame, name: str) -> None:
    from s3prl.downstream.quesst14_dtw.expert import DownstreamExpert

    folder = tempfile.mkdtemp()
    conf = {"max_workers": 1, "feature_normalization": normalize, "silence_frame": silence_frame,
            "datarc": {"dataset_root": folder, "batch_size": 1, "num_workers": 0},
            "dtwrc": {"dist_method": dist_method, "step_pattern": "asymmetric", "minmax_norm": True,
                      "subsequence": True}}
    expert = DownstreamExpert(DIM, conf, folder)
    expert.test_dataset = type("D", (), {"n_queries": len(queries)})()
    records = defaultdict(list)
    names = [f"q{i}" for i in range(len(queries))] + [f"d{i}" for i in range(len(docs))]
    expert.forward("dev", [torch.from_numpy(f) for f in queries + docs], names, records)
    expert.log_records("dev", records)
    shutil.copy(os.path.join(folder, "benchmark.stdlist.xml"), os.path.join(OUT, f"qbe_oracle_{name}.stdlist.xml"))
    shutil.rmtree(folder)


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    queries, docs = features(0)
    scores = match_scores(queries, docs)
    # posteriorgram-like: softmax over 6 classes, class 0 ("silence") wins in some frames
    post_q = [torch.softmax(torch.from_numpy(2 * q), 1).numpy() for q in queries]
    post_d = [torch.softmax(torch.from_numpy(2 * d), 1).numpy() for d in docs]
    np.savez_compressed(os.path.join(OUT, "qbe_oracle.npz"),
                        queries=np.concatenate(queries), docs=np.concatenate(docs),
                        query_lens=np.array(QUERY_LENS), doc_lens=np.array(DOC_LENS),
                        post_queries=np.concatenate(post_q), post_docs=np.concatenate(post_d), **scores)
    run_expert(queries, docs, "cosine_exp", True, None, "cosine_exp")
    run_expert(post_q, post_d, "cosine_neg_log", False, 0, "neglog_silence")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
