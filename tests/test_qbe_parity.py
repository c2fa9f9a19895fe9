"""QbE DTW against the original expert (fixtures written by tests/oracle/make_qbe_fixtures.py in the oracle venv)
and against dtw-python (the library the original calls)."""

from pathlib import Path

import numpy as np
import pytest

from s3prl.downstream.corpora.quesst14 import read_stdlist
from s3prl.downstream.dtw import distance_matrix, minmax_rows, score_matrix, subsequence_dtw
from s3prl.downstream.tasks.qbe import QBE_OPTIONS, qbe_scores

FIXTURES = Path(__file__).parent / "fixtures"
ORACLE = np.load(FIXTURES / "qbe_oracle.npz")


def split(flat, lens):
    return np.split(flat, np.cumsum(lens)[:-1])


QUERIES, DOCS = split(ORACLE["queries"], ORACLE["query_lens"]), split(ORACLE["docs"], ORACLE["doc_lens"])


@pytest.mark.parametrize("method", ["cosine_exp", "cosine", "cityblock", "euclidean"])
@pytest.mark.parametrize("minmax", [True, False])
def test_match_scores_equal_the_original(method, minmax):
    expected = ORACLE[f"match_{method}_{'minmax' if minmax else 'raw'}"]  # (Q, K), every pair
    ours = score_matrix(QUERIES, DOCS, method, minmax, min_query_frames=1, budget=500)  # several DTW groups
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-12)
    assert len(QUERIES[2]) > len(DOCS[2])  # a query longer than a document is scored too (the doc may stay)


def expected_stdlist(name):
    scores, decisions = read_stdlist(FIXTURES / f"qbe_oracle_{name}.stdlist.xml")
    return scores, decisions


def names(prefix, n):
    return [f"{prefix}{i}" for i in range(n)]


def test_pipeline_equals_the_original_stdlist():
    """Feature z-normalisation, per-query z-scores, the short query's zeros and the YES decisions."""
    q, d = names("q", len(QUERIES)), names("d", len(DOCS))
    feats = dict(zip(q + d, QUERIES + DOCS))
    ours = qbe_scores(feats, q, d, dict(QBE_OPTIONS))
    scores, decisions = expected_stdlist("cosine_exp")
    assert set(scores) == {(a, b) for a in q for b in d}
    for (term, doc), value in scores.items():
        assert abs(ours[term][doc] - value) <= 5.1e-5, (term, doc)  # the file holds 4 decimals
        assert (ours[term][doc] > 2.0) == decisions[(term, doc)]
    assert all(ours["q1"][x] == 0.0 for x in d)  # 3 frames < 5: not searched
    assert sum(decisions.values()) > 0


def test_silence_frames_and_cosine_neg_log_equal_the_original():
    q, d = names("q", len(QUERIES)), names("d", len(DOCS))
    post = split(ORACLE["post_queries"], ORACLE["query_lens"]) + split(ORACLE["post_docs"], ORACLE["doc_lens"])
    options = {**QBE_OPTIONS, "dist_method": "cosine_neg_log", "feature_normalization": False, "silence_frame": 0}
    ours = qbe_scores(dict(zip(q + d, post)), q, d, options)
    scores, decisions = expected_stdlist("neglog_silence")
    for (term, doc), value in scores.items():
        assert abs(ours[term][doc] - value) <= 5.1e-5, (term, doc)
        assert (ours[term][doc] > 2.0) == decisions[(term, doc)]


def test_subsequence_dtw_equals_dtw_python():
    dtw = pytest.importorskip("dtw", reason="dtw-python (the test extra) not installed")
    rng = np.random.default_rng(1)
    for _ in range(30):
        n, m = rng.integers(1, 15), rng.integers(1, 25)  # n > m happens: query longer than document
        dist = minmax_rows(distance_matrix(rng.normal(size=(n, 4)), rng.normal(size=(m, 4)), "cosine_exp"))
        ref = dtw.dtw(dist, step_pattern="asymmetric", open_begin=True, open_end=True).normalizedDistance
        assert subsequence_dtw(dist) == pytest.approx(ref, rel=1e-12, abs=1e-15)


def test_distances_equal_scipy():
    distance = pytest.importorskip("scipy.spatial.distance")
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(7, 5)), rng.normal(size=(9, 5))
    for method in ("cosine", "cityblock", "euclidean"):
        np.testing.assert_allclose(distance_matrix(a, b, method), distance.cdist(a, b, method), atol=1e-12)
    np.testing.assert_allclose(distance_matrix(a, b, "cosine_exp"), np.exp(distance.cdist(a, b, "cosine")) - 1,
                               atol=1e-12)
