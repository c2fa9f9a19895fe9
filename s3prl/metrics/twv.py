"""Term Weighted Value (TWV) for spoken term detection, as QUESST 2014 scores it (file-level detections).

    TWV(theta) = 1 - mean over terms t of [ P_miss(t, theta) + beta * P_FA(t, theta) ]
    P_miss(t) = 1 - hits(t) / N_true(t)
    P_FA(t)   = false_alarms(t) / (N_trials(t) - N_true(t))
    beta      = (C_FA / C_miss) * (1 / P_target - 1)

In QUESST 2014 a detection is a (term, document) pair without a time (the task asks only which documents hold
the query), so the number of trials of a term is the number of documents. ATWV is the TWV at the system's own
YES decisions; MTWV is the maximum over a global threshold theta (YES = score >= theta), including a threshold
above every score (no detection at all, TWV = 0), so MTWV >= 0. As NIST's STD scoring, terms with no true
occurrence are left out of the average (their P_miss is undefined). A (term, document) pair without a score is
never a YES (the official script gives such pairs a default score, -10 in the SUPERB recipe; our systems score
every pair, so this never matters there).

Parameters: ``P_TARGET = 0.0008``, ``C_MISS = 100``, ``C_FA = 1`` (beta = 12.49), as set in ``score-TWV-Cnxe.sh``,
the script of the MediaEval QUESST scoring package that calls the Java scorer (read in its QUESST 2015 release,
the same organisers' successor of the 2014 package; the 2014 copy was not found). The script hands the jar only the
effective prior C_miss P_target / (C_miss P_target + C_FA (1 - P_target)) = 0.0741289 (bc, scale 7), the value in
the package README's example command; beta = (1 - prior) / prior. Pass other values to every function here.
"""

from __future__ import annotations

from typing import Iterable, Mapping

P_TARGET = 0.0008
C_MISS = 100.0
C_FA = 1.0


def beta_of(p_target: float = P_TARGET, c_miss: float = C_MISS, c_fa: float = C_FA) -> float:
    """The false-alarm weight beta = (C_FA / C_miss) * (1 / P_target - 1)."""
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    if c_miss <= 0 or c_fa < 0:
        raise ValueError(f"costs must be c_miss > 0 and c_fa >= 0, got c_miss={c_miss}, c_fa={c_fa}")
    return (c_fa / c_miss) * (1.0 / p_target - 1.0)


def effective_prior(p_target: float = P_TARGET, c_miss: float = C_MISS, c_fa: float = C_FA) -> float:
    """The single number ``score-TWV-Cnxe.sh`` passes to the QUESST scorer: C_miss P / (C_miss P + C_FA (1 - P))."""
    beta_of(p_target, c_miss, c_fa)  # same checks
    return c_miss * p_target / (c_miss * p_target + c_fa * (1.0 - p_target))


def _truth_sets(truth: Mapping[str, Iterable[str]], documents: Iterable[str]) -> tuple[dict[str, set], int]:
    docs = set(documents)
    sets = {term: set(hits) & docs for term, hits in truth.items()}
    return {t: s for t, s in sets.items() if s}, len(docs)  # terms without a true occurrence: left out


def twv(decisions: Mapping[tuple[str, str], bool], truth: Mapping[str, Iterable[str]], documents: Iterable[str],
        p_target: float = P_TARGET, c_miss: float = C_MISS, c_fa: float = C_FA) -> float:
    """TWV of a set of YES/NO decisions ``{(term, document): yes}`` (ATWV when they are the system's own).

    ``truth``: term -> the documents that hold it; ``documents``: every searched document (the trials).
    Terms are those of ``truth`` with at least one occurrence; decisions about other terms are ignored.
    """
    beta = beta_of(p_target, c_miss, c_fa)
    terms, n_docs = _truth_sets(truth, documents)
    if not terms:
        raise ValueError("TWV needs at least one term with a true occurrence in the documents")
    yes: dict[str, set] = {t: set() for t in terms}
    for (term, doc), decision in decisions.items():
        if decision and term in yes:
            yes[term].add(doc)
    total = 0.0
    for term, true_docs in terms.items():
        hits = len(yes[term] & true_docs)
        false_alarms = len(yes[term] - true_docs)
        non_target = n_docs - len(true_docs)
        p_fa = false_alarms / non_target if non_target else 0.0
        total += (1.0 - hits / len(true_docs)) + beta * p_fa
    return 1.0 - total / len(terms)


def mtwv(scores: Mapping[tuple[str, str], float], truth: Mapping[str, Iterable[str]], documents: Iterable[str],
         p_target: float = P_TARGET, c_miss: float = C_MISS, c_fa: float = C_FA) -> tuple[float, float]:
    """Maximum TWV over a global threshold on ``scores {(term, document): score}``; returns ``(mtwv, threshold)``
    with YES = score >= threshold (``threshold = inf`` when no detection at all is best).

    One pass over the scores sorted from high to low: lowering the threshold past a detection adds
    1 / (N_true * T) to TWV for a hit and subtracts beta / ((N_docs - N_true) * T) for a false alarm.
    """
    beta = beta_of(p_target, c_miss, c_fa)
    terms, n_docs = _truth_sets(truth, documents)
    if not terms:
        raise ValueError("MTWV needs at least one term with a true occurrence in the documents")
    n_terms = len(terms)
    gains = []
    for (term, doc), score in scores.items():
        if term not in terms:
            continue
        true_docs = terms[term]
        non_target = n_docs - len(true_docs)
        if doc in true_docs:
            gains.append((float(score), 1.0 / (len(true_docs) * n_terms)))
        elif non_target:
            gains.append((float(score), -beta / (non_target * n_terms)))
    gains.sort(key=lambda item: -item[0])
    best, best_threshold, value = 0.0, float("inf"), 0.0
    for k, (score, gain) in enumerate(gains):
        value += gain
        if k + 1 < len(gains) and gains[k + 1][0] == score:
            continue  # tied scores go in together
        if value > best:
            best, best_threshold = value, score
    return best, best_threshold
