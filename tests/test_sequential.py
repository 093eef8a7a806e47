"""The sequential rule: alpha spent over planned looks, and its false-alarm rate pinned by simulation."""

import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from benchbench.analysis.sequential import Look, Plan, look
from benchbench.errors import UserError


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


def test_the_spending_functions_are_the_published_formulas():
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1 - 0.05 / 2)
    obf, pocock = Plan(alpha=0.05, min_rounds=3, max_rounds=12), Plan(alpha=0.05, min_rounds=3, max_rounds=12,
                                                                       spending="pocock")
    for n in range(3, 12):
        assert obf.spent(n) == pytest.approx(2 * (1 - NormalDist().cdf(z / math.sqrt(n / 12))), rel=1e-12)
        assert pocock.spent(n) == pytest.approx(0.05 * math.log(1 + (math.e - 1) * n / 12), rel=1e-12)
    for plan in (obf, pocock):
        assert plan.spent(2) == 0.0 and plan.spent(12) == 0.05 and plan.spent(20) == 0.05
        assert plan.alpha_at(3) == plan.spent(3)  # the first look takes everything up to it
        assert plan.alpha_at(13) == 0.0
    fixed = Plan.fixed(6, alpha=0.1)
    assert (fixed.min_rounds, fixed.max_rounds, fixed.spending, fixed.alpha) == (6, 6, "fixed", 0.1)
    assert fixed.spent(5) == 0.0 and fixed.spent(6) == 0.1
    assert Plan(min_rounds=3, max_rounds=5, spending="fixed").spent(4) == 0.0
    assert (Plan.fixed(1).min_rounds, Plan.fixed(1).max_rounds, Plan.fixed(1).alpha) == (2, 2, 0.05)


def test_a_plan_names_what_it_refuses_and_reads_back_only_what_it_wrote():
    with pytest.raises(UserError, match=r"^sequential plan: need 2 <= min_rounds \(1\) <= max_rounds \(4\)$"):
        Plan(min_rounds=1, max_rounds=4)
    Plan(min_rounds=2, max_rounds=2)  # the smallest plan
    for alpha in (0.0, 0.5):
        with pytest.raises(UserError, match=rf"^sequential plan: alpha must be between 0 and 0.5, got {alpha:g}$"):
            Plan(alpha=alpha)
    with pytest.raises(UserError, match=r"^unknown spending function 'x' \(known: obrien-fleming, pocock, fixed\)$"):
        Plan(spending="x")
    plan = Plan(alpha=0.1, min_rounds=4, max_rounds=9, spending="pocock")
    assert plan.to_dict() == {"rule": "alpha-spending", "alpha": 0.1, "min_rounds": 4, "max_rounds": 9,
                              "spending": "pocock"}
    assert Plan.from_dict(plan.to_dict()) == plan
    assert Plan.from_dict({**plan.to_dict(), "rule": "other"}) is None
    assert Plan.from_dict({k: v for k, v in plan.to_dict().items() if k != "rule"}) is None
    assert Plan.from_dict({k: v for k, v in plan.to_dict().items() if k != "spending"}) is None
    assert Plan.from_dict({**plan.to_dict(), "spending": "bonferroni"}) is None
    assert Plan.from_dict({**plan.to_dict(), "min_rounds": None}) is None
    assert Plan.from_dict([plan.to_dict()]) is None


def test_a_look_reports_its_interval_and_says_nothing_without_two_rounds_or_a_planned_look():
    plan = Plan.fixed(3)
    assert look([], plan, 0.05) == Look(0, 0.0, 1.0, 0.0, math.inf, math.inf, 0, "undecided")
    assert look([0.1], plan, 0.05) == Look(1, 0.0, math.exp(0.1), 0.0, math.inf, math.inf, 0, "undecided")
    seen = look([0.19, 0.2, 0.21], plan, 0.05)
    se = 0.01 / math.sqrt(3)
    half = student_t.ppf(0.975, 2) * se
    assert (seen.n, seen.alpha, seen.df, seen.decision) == (3, 0.05, 2, "slower")
    assert (seen.ratio, seen.se, seen.low, seen.high) == pytest.approx(
        (math.exp(0.2), se, math.exp(0.2 - half), math.exp(0.2 + half)), rel=1e-12)
    unplanned = look([0.1, 0.2], plan, 0.05)  # two rounds, but the plan looks after three
    assert (unplanned.low, unplanned.high, unplanned.decision) == (0.0, math.inf, "undecided")
    same = look([0.1, 0.1, 0.1], plan, 0.05)  # no spread: the interval is the point
    assert same.low == same.high == same.ratio == pytest.approx(math.exp(0.1)) and same.decision == "slower"
    # an interval that only touches the limit decides nothing
    assert look([math.log(1.05)] * 3, plan, 0.05).decision == "undecided"
    assert look([math.log(0.95)] * 3, plan, 0.05).decision == "not-slower"
    assert look([math.log(1.05)] * 3, plan, 0.04).decision == "slower"
    assert look([math.log(1.05)] * 3, plan, 0.06).decision == "not-slower"


def test_two_rounds_are_enough_for_a_look_and_no_planned_look_decides_nothing_even_without_spread():
    two = look([0.10, 0.11], Plan.fixed(2), 0.05)
    half = student_t.ppf(0.975, 1) * 0.005
    assert two.df == 1 and (two.low, two.high) == pytest.approx((math.exp(0.105 - half), math.exp(0.105 + half)))
    flat = look([0.1, 0.1, 0.1], Plan(min_rounds=4, max_rounds=8), 0.05)  # no look after three rounds
    assert (flat.alpha, flat.low, flat.high, flat.decision) == (0.0, 0.0, math.inf, "undecided")
