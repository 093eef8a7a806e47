"""The sequential rule: alpha spent over planned looks, and its false-alarm rate pinned by simulation."""

import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from benchbench.errors import UserError
from benchbench.sequential import Plan, look


@pytest.mark.parametrize("spending", ["obrien-fleming", "pocock"])
def test_the_looks_spend_exactly_alpha_and_nothing_before_the_first(spending):
    plan = Plan(alpha=0.05, min_rounds=3, max_rounds=12, spending=spending)
    per_look = [plan.alpha_at(n) for n in range(1, 15)]
    assert per_look[:2] == [0.0, 0.0] and per_look[12:] == [0.0, 0.0]
    assert all(a > 0 for a in per_look[2:12])
    assert sum(per_look) == pytest.approx(0.05)


def test_obrien_fleming_spends_little_early_and_pocock_more():
    obf, pocock = Plan(spending="obrien-fleming"), Plan(spending="pocock")
    assert obf.alpha_at(3) < 0.001 < pocock.alpha_at(3)
    assert obf.alpha_at(12) > pocock.alpha_at(12)


def test_a_fixed_plan_is_one_look_with_all_of_alpha_and_equals_the_plain_t_interval():
    plan = Plan.fixed(5, alpha=0.05)
    assert [plan.alpha_at(n) for n in range(1, 8)] == [0, 0, 0, 0, 0.05, 0, 0]
    logs = [0.01, 0.03, -0.02, 0.015, 0.005]
    seen = look(logs, plan, threshold=0.05)
    m, se = np.mean(logs), np.std(logs, ddof=1) / math.sqrt(5)
    half = student_t.ppf(0.975, 4) * se
    assert (seen.low, seen.high) == pytest.approx((math.exp(m - half), math.exp(m + half)))
    assert seen.decision == "not-slower"


def test_a_look_decides_on_which_side_of_the_limit_the_interval_lies():
    plan = Plan.fixed(4)
    assert look([0.10, 0.11, 0.09, 0.10], plan, 0.05).decision == "slower"
    assert look([0.00, 0.01, -0.01, 0.00], plan, 0.05).decision == "not-slower"
    assert look([0.05, 0.00, 0.10, -0.02], plan, 0.05).decision == "undecided"
    assert look([0.10, 0.11, 0.09], Plan(min_rounds=4, max_rounds=8), 0.05).decision == "undecided"  # no look yet


def test_a_plan_refuses_impossible_settings():
    with pytest.raises(UserError, match="min_rounds"):
        Plan(min_rounds=5, max_rounds=4)
    with pytest.raises(UserError, match="spending"):
        Plan(spending="bonferroni")
    assert Plan.from_dict(Plan(max_rounds=9).to_dict()) == Plan(max_rounds=9)
    assert Plan.from_dict({"rule": "alpha-spending", "alpha": "x"}) is None and Plan.from_dict(None) is None


def sequential_outcomes(plan, true_log, sd, threshold, trials, seed, df=None):
    """Run the sequential rule on `trials` seeded series of round log ratios; returns counts of the first
    decision (or undecided). Normal noise, or Student t with `df` (heavy tails) scaled to sd."""
    rng = np.random.default_rng(seed)
    if df is None:
        d = rng.normal(true_log, sd, size=(trials, plan.max_rounds))
    else:
        d = true_log + sd * rng.standard_t(df, size=(trials, plan.max_rounds)) / math.sqrt(df / (df - 2))
    limit = math.log1p(threshold)
    decided = np.full(trials, "undecided", dtype=object)
    open_ = np.ones(trials, dtype=bool)
    for n in range(plan.min_rounds, plan.max_rounds + 1):
        a = plan.alpha_at(n)
        x = d[:, :n]
        m, se = x.mean(axis=1), x.std(axis=1, ddof=1) / math.sqrt(n)
        half = student_t.ppf(1 - a / 2, n - 1) * se
        slower = open_ & (m - half > limit)
        not_slower = open_ & (m + half < limit)
        decided[slower], decided[not_slower] = "slower", "not-slower"
        open_ &= ~(slower | not_slower)
    return {k: int(np.sum(decided == k)) for k in ("slower", "not-slower", "undecided")}


class EveryLookAtAlpha(Plan):
    """Peeking done wrong: a 95% interval at every look."""

    def alpha_at(self, n):
        return self.alpha if self.min_rounds <= n <= self.max_rounds else 0.0


@pytest.mark.parametrize("spending", ["obrien-fleming", "pocock"])
@pytest.mark.parametrize("noise", [None, 4])
def test_peeking_after_every_round_keeps_the_false_alarm_rate_below_alpha_over_two(spending, noise):
    """The worst case for a false regression: the true ratio exactly at the limit. The union bound promises
    at most alpha/2 = 2.5% (a look's interval misses on the high side); with 20,000 trials the binomial
    standard error at 2.5% is 0.11%, so the bound plus three standard errors is what the data must meet.
    Peeking with a fixed 95% interval at every look breaks it (checked below), so the test can fail."""
    plan = Plan(alpha=0.05, min_rounds=3, max_rounds=12, spending=spending)
    trials = 20_000
    limit = 0.025 + 3 * math.sqrt(0.025 * 0.975 / trials)
    out = sequential_outcomes(plan, math.log1p(0.05), 0.02, 0.05, trials, seed=7, df=noise)
    assert out["slower"] / trials <= limit
    naive_out = sequential_outcomes(EveryLookAtAlpha(alpha=0.05, min_rounds=3, max_rounds=12), math.log1p(0.05),
                                    0.02, 0.05, trials, seed=7, df=noise)
    assert naive_out["slower"] / trials > limit


def test_with_the_spread_of_paired_rounds_the_rule_decides_clear_cases_within_the_plan():
    """At a between-pair spread of 1% (measured for most ops by block interleaving), A/A is called not
    slower than +5%, and +10% slower, in nearly every series; never the wrong way."""
    plan = Plan(alpha=0.05, min_rounds=3, max_rounds=12)
    aa = sequential_outcomes(plan, 0.0, 0.01, 0.05, 4000, seed=1)
    slow = sequential_outcomes(plan, math.log(1.10), 0.01, 0.05, 4000, seed=2)
    assert aa["slower"] == 0 and aa["not-slower"] >= 0.99 * 4000
    assert slow["not-slower"] == 0 and slow["slower"] >= 0.99 * 4000
