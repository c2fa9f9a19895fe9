"""TWV / MTWV: hand-computable cases derived here from the definition, and a brute-force cross-check."""

import random

import pytest

import math

from s3prl.metrics.twv import beta_of, effective_prior, mtwv, twv

DOCS = [f"d{i}" for i in range(10)]
TRUTH = {"a": {"d0", "d1"}, "b": {"d2"}, "c": {"d3", "d4", "d5", "d6"}}
COSTS = {"p_target": 0.01, "c_miss": 2.0, "c_fa": 1.0}
BETA = (1.0 / 2.0) * (1 / 0.01 - 1)  # (C_FA / C_miss) (1 / P_target - 1) = 49.5


def decisions_for(yes: set) -> dict:
    return {(t, d): (t, d) in yes for t in TRUTH for d in DOCS}


def test_beta():
    assert beta_of(**COSTS) == pytest.approx(BETA)
    with pytest.raises(ValueError):
        beta_of(p_target=0.0)


def test_default_costs_give_the_scoring_scripts_effective_prior():
    # score-TWV-Cnxe.sh (MediaEval QUESST scoring package) passes the jar `bc` scale-7 output 0.0741289 for its
    # P_target 0.0008, C_miss 100, C_fa 1; bc truncates, so compare the truncated value
    prior = effective_prior()
    assert math.floor(prior * 1e7) / 1e7 == pytest.approx(0.0741289, abs=1e-12)
    assert beta_of() == pytest.approx((1 - prior) / prior, rel=1e-12)


def test_every_term_found_no_false_alarm_is_one():
    yes = {(t, d) for t, ds in TRUTH.items() for d in ds}
    assert twv(decisions_for(yes), TRUTH, DOCS, **COSTS) == pytest.approx(1.0)
    scores = {k: (1.0 if v else 0.0) for k, v in decisions_for(yes).items()}
    assert mtwv(scores, TRUTH, DOCS, **COSTS) == (pytest.approx(1.0), 1.0)


def test_nothing_found_is_zero():
    assert twv(decisions_for(set()), TRUTH, DOCS, **COSTS) == pytest.approx(0.0)


def test_false_alarms_only():
    yes = {("a", "d9"), ("a", "d8"), ("c", "d0")}
    # every term misses everything (P_miss = 1); P_FA(a) = 2 / (10 - 2), P_FA(b) = 0, P_FA(c) = 1 / (10 - 4)
    expected = 1 - ((1 + BETA * 2 / 8) + (1 + 0) + (1 + BETA * 1 / 6)) / 3
    assert twv(decisions_for(yes), TRUTH, DOCS, **COSTS) == pytest.approx(expected)


def test_half_found_and_one_false_alarm():
    yes = {("a", "d0"), ("c", "d3"), ("c", "d4"), ("c", "d9")}
    expected = 1 - ((0.5 + 0) + (1 + 0) + (0.5 + BETA / 6)) / 3
    assert twv(decisions_for(yes), TRUTH, DOCS, **COSTS) == pytest.approx(expected)


def test_terms_without_occurrence_are_left_out():
    truth = {**TRUTH, "z": set()}
    yes = {(t, d) for t, ds in TRUTH.items() for d in ds} | {("z", "d0")}
    assert twv(decisions_for(yes) | {("z", "d0"): True}, truth, DOCS, **COSTS) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        twv({}, {"z": set()}, DOCS)


def brute_force_mtwv(scores, truth, docs, p_target, c_miss, c_fa):
    """Every distinct score (and +inf) as the threshold, TWV counted pair by pair from the definition."""
    beta = c_fa / c_miss * (1 / p_target - 1)
    terms = [t for t in truth if truth[t]]
    best = 0.0
    for theta in sorted(set(scores.values())) + [float("inf")]:
        total = 0.0
        for t in terms:
            misses = sum(1 for d in truth[t] if not scores.get((t, d), -float("inf")) >= theta)
            fas = sum(1 for d in docs if d not in truth[t] and scores.get((t, d), -float("inf")) >= theta)
            total += misses / len(truth[t]) + beta * fas / (len(docs) - len(truth[t]))
        best = max(best, 1 - total / len(terms))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_mtwv_equals_brute_force_on_random_lists(seed):
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(rng.randint(5, 25))]
    truth = {f"t{j}": {d for d in docs if rng.random() < 0.2} for j in range(rng.randint(1, 6))}
    scores = {}
    for t in truth:
        for d in docs:
            if rng.random() < 0.9:  # some pairs have no score: never a YES
                bonus = 1.0 if d in truth[t] else 0.0
                scores[(t, d)] = round(rng.gauss(bonus, 1.0), 1)  # rounding makes ties
    costs = {"p_target": rng.choice([0.0008, 0.01, 0.1]), "c_miss": rng.choice([1.0, 100.0]), "c_fa": 1.0}
    if not any(truth.values()):
        return
    value, threshold = mtwv(scores, truth, docs, **costs)
    assert value == pytest.approx(brute_force_mtwv(scores, truth, docs, **costs), abs=1e-12)
    if threshold != float("inf"):  # the reported threshold gives that value
        yes = {k: s >= threshold for k, s in scores.items()}
        assert twv(yes, truth, docs, **costs) == pytest.approx(value, abs=1e-12)
