"""compare.py, function by function: the edges of each setting, the exact interval each rule builds, and what a
row keeps, checked against the formulas in compare.py's docstrings on small seeded data.

Written against the mutants the fast tests let through (docs/mutation.md).
"""

import hashlib
import math
import statistics

import numpy as np
import pytest
from scipy import stats as sps
from test_compare import FP, make_report, result, rounds_result, timings

from benchbench.analysis import compare as c
from benchbench.analysis import sequential
from benchbench.analysis.compare import (
    Change,
    Criteria,
    MachineDrift,
    Row,
    Summary,
    change_from_paired_logs,
    change_from_paired_rounds,
    change_from_rounds,
    change_from_samples,
    change_from_sequential,
    change_from_summaries,
    compare,
    compare_pair,
    detectable_slowdown,
    geomean,
    geomeans,
    key_seed,
    machine_drift,
    mann_whitney_p,
    paired_reports,
    report_names,
    round_values,
    summary_of,
    verdict_counts,
)
from benchbench.errors import UserError
from benchbench.model.report import CaseKey, Result
from benchbench.model.stats import summarize

KEY = CaseKey.make("ops", "matmul", {"n": 256}, "cpu", "float32")
STEADY = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.01]


def _error(fn, *args, exc=UserError, **kw):
    with pytest.raises(exc) as got:
        fn(*args, **kw)
    return str(got.value)


# --- criteria and summaries -------------------------------------------------------------------------------
def test_criteria_edges_and_messages():
    assert Criteria(threshold=9.99).threshold == 9.99 and Criteria(alpha=0.49).alpha == 0.49
    assert _error(Criteria, threshold=10) == "threshold must be between 0% and 1000%, got 1000%"
    assert _error(Criteria, threshold=10.5) == "threshold must be between 0% and 1000%, got 1050%"
    assert _error(Criteria, threshold=-0.01) == "threshold must be between 0% and 1000%, got -1%"
    assert _error(Criteria, alpha=0) == "alpha must be between 0 and 0.5, got 0"
    assert _error(Criteria, alpha=0.5) == "alpha must be between 0 and 0.5, got 0.5"
    assert Criteria(round_quantile=0.5).round_quantile == 0.5 and Criteria(round_quantile=0).round_quantile == 0
    assert _error(Criteria, round_quantile=0.6) == "round_quantile must be between 0 and 0.5, got 0.6"
    assert _error(Criteria, round_quantile=-0.1) == "round_quantile must be between 0 and 0.5, got -0.1"


def test_summary_of_samples_imported_statistics_and_nothing():
    res = result(KEY, STEADY)
    s = summary_of(res)
    assert (s.median, s.iqr, s.n, s.from_samples) == (res.stats.median, res.stats.iqr, 8, True) and s.iqr > 0
    assert summary_of(None) is None and summary_of(result(KEY, status="failed")) is None
    imported = Result(KEY, "ok", imported_stats={"n": "40", "median": "2.5", "iqr": 0.5})
    assert summary_of(imported) == Summary(2.5, 0.5, 40, False)
    assert summary_of(Result(KEY, "ok", imported_stats={"n": 40, "median": "x", "iqr": 1})) is None
    assert summary_of(Result(KEY, "ok")) is None


def test_the_seed_is_the_first_eight_bytes_of_the_keys_sha256_little_endian():
    """Stored reports compared again, by another benchbench version on another machine, give the same table."""
    digest = hashlib.sha256(repr(KEY).encode()).digest()
    assert key_seed(KEY) == int.from_bytes(digest[:8], "little") < 2**64


# --- the bootstrap ----------------------------------------------------------------------------------------
def test_up_to_the_limit_the_bootstrap_resamples():
    xs = np.random.default_rng(3).lognormal(0, 0.2, c.BOOTSTRAP_RESAMPLE_MAX)
    got = c.bootstrap_medians(xs.tolist(), 50, np.random.default_rng(4))
    rng = np.random.default_rng(4)
    assert np.array_equal(got, np.median(xs[rng.integers(0, xs.size, size=(50, xs.size))], axis=1))


def _exact_median_rank_probabilities(n):
    """P(the bootstrap median of n distinct values is the k-th smallest), k = 1..n (m = ceil(n / 2))."""
    m = (n + 1) // 2
    cdf = [sps.binom.sf(m - 1, n, k / n) for k in range(1, n + 1)]
    return np.diff([0.0, *cdf])


@pytest.mark.parametrize("n", [3, 4, 11, 12])
def test_beyond_the_limit_the_median_is_drawn_from_its_exact_distribution(monkeypatch, n):
    monkeypatch.setattr(c, "BOOTSTRAP_RESAMPLE_MAX", 2)
    xs = [10.0 * (k + 1) for k in range(n)][::-1]  # distinct values, unsorted: rank k is 10 k
    draws = 20_000
    got = c.bootstrap_medians(xs, draws, np.random.default_rng(5))
    assert set(np.unique(got)) <= set(xs)
    freq = np.array([(got == 10.0 * k).sum() for k in range(1, n + 1)]) / draws
    expected = _exact_median_rank_probabilities(n)
    assert np.all(np.abs(freq - expected) <= 4 * np.sqrt(expected * (1 - expected) / draws) + 1e-9), (freq, expected)


def test_the_ratio_interval_is_the_percentile_interval_of_the_bootstrap_ratios():
    rng = np.random.default_rng(9)
    a, b = timings(rng, 25, 1.0, 0.05), timings(rng, 25, 1.1, 0.05)
    for level in (0.95, 0.8):
        draw = np.random.default_rng(17)
        ratios = c.bootstrap_medians(b, 500, np.random.default_rng(0)) * 0  # shape only
        ma = c.bootstrap_medians(a, 500, draw)
        ratios = c.bootstrap_medians(b, 500, draw) / ma
        lo, hi = np.quantile(ratios, [(1 - level) / 2, (1 + level) / 2])
        assert c.bootstrap_ratio_ci(a, b, level, 500, 17) == (pytest.approx(lo, abs=0), pytest.approx(hi, abs=0))
    # the defaults are the criteria's bootstrap size and seed 0
    assert c.bootstrap_ratio_ci(a, b) == c.bootstrap_ratio_ci(a, b, 0.95, Criteria().n_boot, 0)


# --- Mann-Whitney and the sample rule ---------------------------------------------------------------------
def test_mann_whitney_only_skips_the_test_when_both_sides_are_one_constant():
    assert mann_whitney_p([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], [9.0] * 8) < 0.001
    assert mann_whitney_p([9.0] * 8, [9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0]) < 0.01
    assert mann_whitney_p([9.0] * 8, [9.0] * 7 + [10.0]) == pytest.approx(
        sps.mannwhitneyu([9.0] * 8, [9.0] * 7 + [10.0], alternative="two-sided").pvalue)
    assert mann_whitney_p([1.0, 2.0, math.nan], [1.0, 2.0, 3.0]) == 1.0  # a nan p-value is no evidence


def test_the_sample_rule_takes_half_the_noisier_sides_relative_iqr_and_the_default_seed_0():
    rng = np.random.default_rng(12)
    a, b = timings(rng, 30, 1.0, 0.02), timings(rng, 30, 1.0, 0.08)
    ch = change_from_samples(a, b)
    assert ch.noise == pytest.approx(max(summarize(a).rel_spread, summarize(b).rel_spread) / 2)
    assert (ch.ci_low, ch.ci_high) == c.bootstrap_ratio_ci(a, b, 0.95, 2000, 0)
    assert change_from_samples(a, b, seed=3) != ch and change_from_samples(a, b, 0.95, 2000, 0) == ch


def test_the_summary_interval_follows_its_formula():
    base, other = Summary(2.0, 0.2698, 25, False), Summary(3.0, 0.1349, 100, False)
    ch = change_from_summaries(base, other, 0.9)
    se_a, se_b = 1.2533 * 0.2 / (2.0 * 5), 1.2533 * 0.1 / (3.0 * 10)
    half = sps.norm.ppf(0.95) * math.hypot(se_a, se_b)
    assert ch.ratio == pytest.approx(1.5)
    assert (ch.ci_low, ch.ci_high) == (pytest.approx(1.5 * math.exp(-half)), pytest.approx(1.5 * math.exp(half)))
    assert (ch.level, ch.p_value, ch.n_base, ch.n_other, ch.unit) == (0.9, None, 25, 100, "sample")
    assert ch.noise == pytest.approx(max(0.2698 / 2.0 / 2, 0.1349 / 3.0 / 2))
    none = change_from_summaries(Summary(1.0, 0.1, 0, False), Summary(1.0, 0.1, 1, False))
    assert none.ci_high == pytest.approx(math.exp(sps.norm.ppf(0.975) * math.sqrt(2) * 1.2533 * 0.1 / 1.349))


# --- rounds -----------------------------------------------------------------------------------------------
def test_round_values_are_each_rounds_fastest_sample_by_default_keyed_by_its_round_index():
    rng = np.random.default_rng(2)
    res = rounds_result(KEY, [1.0, 2.0, 3.0], rng, n=5, start=4)
    split = res.round_samples
    assert round_values(res) == {4 + i: min(s) for i, s in enumerate(split)}
    assert round_values(res, 0.5) == {4 + i: statistics.median(s) for i, s in enumerate(split)}
    unnumbered = Result(KEY, "ok", samples=res.samples, rounds=[{"n": 5}, {"n": 5}, {"n": 5}])
    assert list(round_values(unnumbered)) == [0, 1, 2]
    skipped = Result(KEY, "ok", samples=res.samples[:5] + res.samples[10:], rounds=[{"round": 0, "n": 5},
                                                                                  {"round": 1, "n": 0},
                                                                                  {"round": 2, "n": 5}])
    assert list(round_values(skipped)) == [0, 2]


def test_welch_needs_two_rounds_a_side_and_follows_welch_satterthwaite():
    assert _error(change_from_rounds, [1.0], [1.0, 1.1], exc=ValueError) == (
        "Welch's t needs two or more rounds on each side")
    assert _error(change_from_rounds, [1.0, 1.1], [1.0], exc=ValueError) == (
        "Welch's t needs two or more rounds on each side")
    two = change_from_rounds([1.0, 1.1], [1.2, 1.3])
    assert (two.n_base, two.n_other, two.unit) == (2, 2, "round")
    base, other = [1.0, 1.02, 0.99], [1.1, 1.3, 1.0, 1.2, 1.25, 0.95]  # the current side spreads more
    la, lb = np.log(base), np.log(other)
    wa, wb = la.var(ddof=1) / 3, lb.var(ddof=1) / 6
    ch = change_from_rounds(base, other, 0.9)
    assert ch.df == pytest.approx((wa + wb) ** 2 / (wa**2 / 2 + wb**2 / 5))
    assert ch.se == pytest.approx(math.sqrt(wa + wb))
    assert ch.noise == pytest.approx(max(la.std(ddof=1), lb.std(ddof=1)))
    assert ch.ci_high == pytest.approx(math.exp(lb.mean() - la.mean() + sps.t.ppf(0.95, ch.df) * ch.se))
    assert ch.level == 0.9


def test_rounds_that_all_agree_give_a_known_change():
    same = change_from_rounds([1.0] * 5, [1.0] * 5)
    assert (same.ratio, same.ci_low, same.ci_high, same.p_value, same.df, same.se) == (1.0, 1.0, 1.0, 1.0, 8.0, 0.0)
    up = change_from_paired_logs([0.1, 0.1, 0.1])
    assert (up.ratio, up.ci_low, up.ci_high, up.p_value) == (pytest.approx(math.exp(0.1)),) * 3 + (0.0,)


def test_paired_rounds_need_two_and_keep_their_count_spread_and_level():
    assert _error(change_from_paired_logs, [0.1], exc=ValueError) == "a paired comparison needs two or more rounds"
    d = [0.05, 0.1, 0.02, 0.08]
    ch = change_from_paired_logs(d)
    sd = statistics.stdev(d)
    assert (ch.level, ch.n_base, ch.n_other, ch.df, ch.unit) == (0.95, 4, 4, 3, "paired-round")
    assert ch.noise == pytest.approx(sd) and ch.se == pytest.approx(sd / 2)
    assert ch.p_value == pytest.approx(sps.ttest_1samp(d, 0.0).pvalue)
    assert change_from_paired_logs(d[:2]).n_base == 2
    pairs = [(1.0, math.exp(x)) for x in d]
    assert change_from_paired_rounds(pairs, 0.8).level == 0.8
    assert change_from_paired_rounds(pairs).ci_high == pytest.approx(ch.ci_high)


# --- the sequential look ----------------------------------------------------------------------------------
PLAN = sequential.Plan(alpha=0.05, min_rounds=3, max_rounds=8)


def test_the_sequential_change_is_the_interval_of_its_look():
    d = [0.05, 0.12, 0.02, 0.09, 0.07]
    seen = sequential.look(d, PLAN, 0.05)
    ch = change_from_sequential(d, PLAN, 0.05)
    assert (ch.ratio, ch.ci_low, ch.ci_high) == (seen.ratio, seen.low, seen.high)
    assert ch.level == pytest.approx(1 - PLAN.alpha_at(5)) and 0.95 < ch.level < 1
    assert (ch.n_base, ch.n_other, ch.unit, ch.se, ch.df) == (5, 5, "paired-round", seen.se, 4)
    assert ch.noise == pytest.approx(statistics.stdev(d))
    assert ch.p_value == pytest.approx(sps.ttest_1samp(d, 0.0).pvalue)
    flat = change_from_sequential([0.0, 0.0, 0.0], PLAN, 0.05)
    assert (flat.p_value, flat.ratio) == (1.0, 1.0)
    assert change_from_sequential([0.1, 0.1, 0.1], PLAN, 0.05).p_value == 0.0


def _ab_reports(d, plan):
    """Two sides of an `ab` run: five rounds, the current side's round i slower by exp(d[i])."""
    rng = np.random.default_rng(21)
    base = rounds_result(KEY, [1e-3] * len(d), rng, within=0.0)
    cur = rounds_result(KEY, [1e-3 * math.exp(x) for x in d], rng, within=0.0)
    reps = []
    for side, res in (("baseline", base), ("current", cur)):
        rep = make_report([res])
        rep.side = {"name": side}
        rep.rounds = [{"round": i, "seed": 100 + i} for i in range(len(d))]
        rep.sequential = plan.to_dict() if plan else None
        reps.append(rep)
    return reps


def test_stored_ab_reports_are_judged_at_their_plans_look_and_at_the_alpha_asked_for():
    d = [0.05, 0.12, 0.02, 0.09, 0.07]
    (row,) = compare(_ab_reports(d, PLAN)).pairs[0].rows
    seen = sequential.look(d, PLAN, 0.05)
    assert row.change.ci_low == pytest.approx(seen.low) and row.change.level == pytest.approx(1 - PLAN.alpha_at(5))
    assert row.mde == pytest.approx(detectable_slowdown(row.change, 0.05, PLAN.alpha_at(5)))
    strict = sequential.Plan(alpha=0.01, min_rounds=3, max_rounds=8)
    (row,) = compare(_ab_reports(d, PLAN), criteria=Criteria(alpha=0.01)).pairs[0].rows
    assert row.change.level == pytest.approx(1 - strict.alpha_at(5))
    (plain,) = compare(_ab_reports(d, None)).pairs[0].rows
    assert plain.change.level == 0.95 and plain.change.ci_low == pytest.approx(change_from_paired_logs(d).ci_low)
    pair = compare(_ab_reports(d, PLAN)).pairs[0]
    assert pair.paired and pair.drift is None
    (unpaired,) = compare(_ab_reports(d, PLAN), criteria=Criteria(paired=False)).pairs[0].rows
    assert unpaired.change.unit == "round"


def test_the_sequential_plan_sets_the_verdict():
    d = [0.07, 0.09, 0.08]  # about +8% in each of three rounds: slower at a fixed 5% look
    thr = {"threshold_for": lambda k: 0.01}
    (fixed,) = compare(_ab_reports(d, None), **thr).pairs[0].rows
    (planned,) = compare(_ab_reports(d, sequential.Plan(alpha=0.05, min_rounds=3, max_rounds=12)), **thr).pairs[0].rows
    assert planned.change.level > fixed.change.level
    assert planned.change.ci_high - planned.change.ci_low > fixed.change.ci_high - fixed.change.ci_low


# --- the minimum detectable effect ------------------------------------------------------------------------
def test_the_detectable_effect_of_the_sample_and_summary_rules_follows_its_formula():
    ch = Change(1.02, 0.98, 1.07, 0.9, 0.3, 0.001, 30, 30)
    se = math.log(1.07 / 0.98) / (2 * sps.norm.ppf(0.95))
    expected = math.expm1(math.log1p(0.05) + (sps.norm.ppf(0.99) + sps.norm.ppf(0.8)) * se)
    assert detectable_slowdown(ch, 0.05, 0.02, 0.8) == pytest.approx(expected)
    assert detectable_slowdown(ch, 0.05, 0.02) > detectable_slowdown(ch, 0.05, 0.02, 0.8)
    noisy = Change(1.02, 0.98, 1.07, 0.9, 0.3, 0.5, 30, 30)
    assert detectable_slowdown(noisy, 0.05, 0.02, 0.8) == 0.5  # never below the noise the rule requires
    faster = Change(0.85, 0.8, 0.95, 0.9, 0.01, 0.001, 30, 30)  # an interval wholly below 1 has an se too
    assert detectable_slowdown(faster, 0.05, 0.02, 0.8) == pytest.approx(math.expm1(math.log1p(0.05) + (
        sps.norm.ppf(0.99) + sps.norm.ppf(0.8)) * math.log(0.95 / 0.8) / (2 * sps.norm.ppf(0.95))))
    for low, high in ((0.0, 1.1), (0.9, 0.0), (-1.0, 1.1)):
        assert detectable_slowdown(Change(1.0, low, high, 0.95, 0.5, 0.01, 30, 30), 0.05, 0.05) == math.inf


def test_the_detectable_effect_of_rounds_uses_welchs_lower_df_and_the_paired_df():
    lam = c.power_noncentrality
    welch = Change(1.0, 0.9, 1.1, 0.95, 0.5, 0.05, 4, 7, "round", 0.04, 9.37)
    assert detectable_slowdown(welch, 0.05, 0.05) == pytest.approx(math.expm1(math.log1p(0.05) + lam(3, 0.05, 0.9) * 0.04))
    paired = Change(1.0, 0.9, 1.1, 0.95, 0.5, 0.05, 4, 4, "paired-round", 0.04, 3.456)
    assert detectable_slowdown(paired, 0.05, 0.05) == pytest.approx(
        math.expm1(math.log1p(0.05) + lam(3.46, 0.05, 0.9) * 0.04), rel=1e-12)
    assert detectable_slowdown(paired, 0.05, 0.05) != pytest.approx(
        math.expm1(math.log1p(0.05) + lam(3.5, 0.05, 0.9) * 0.04), rel=1e-9)
    one = Change(1.0, 0.9, 1.1, 0.95, 0.5, 0.05, 1, 5, "round", 0.04, 2.0)
    assert detectable_slowdown(one, 0.05, 0.05) == pytest.approx(math.expm1(math.log1p(0.05) + lam(1, 0.05, 0.9) * 0.04))
    # a round change without its se (never built so) falls back to the interval's normal approximation
    bare = Change(1.0, 0.9, 1.1, 0.95, 0.5, 0.0, 4, 4, "round", None, 3.0)
    assert detectable_slowdown(bare, 0.05, 0.05) == pytest.approx(detectable_slowdown(
        Change(1.0, 0.9, 1.1, 0.95, 0.5, 0.0, 4, 4), 0.05, 0.05))
    no_df = Change(1.0, 0.9, 1.1, 0.95, 0.5, 0.0, 4, 4, "paired-round", 0.04, None)
    assert detectable_slowdown(no_df, 0.05, 0.05) == detectable_slowdown(bare, 0.05, 0.05)
    sample = Change(1.0, 0.9, 1.1, 0.95, 0.5, 0.0, 4, 4, "sample", 0.04, 3.0)
    assert detectable_slowdown(sample, 0.05, 0.05) == detectable_slowdown(bare, 0.05, 0.05)


# --- pairing and the canary -------------------------------------------------------------------------------
def _sided(side, seeds):
    rep = make_report([])
    rep.side = {"name": side} if side else None
    rep.rounds = [{"round": i, "seed": s} for i, s in enumerate(seeds)]
    return rep


def test_paired_reports_need_both_sides_named_and_two_shared_rounds():
    assert paired_reports(_sided("baseline", [1, 2]), _sided("current", [1, 2]))
    assert not paired_reports(_sided("baseline", [1]), _sided("current", [1]))
    assert not paired_reports(_sided("baseline", [1, 2]), _sided(None, [1, 2]))
    assert not paired_reports(_sided(None, [1, 2]), _sided("current", [1, 2]))
    assert not paired_reports(_sided("baseline", [1, None]), _sided("current", [1, None]))


def test_the_canary_names_where_the_machine_moved_and_the_threshold_itself_is_not_beyond():
    drift = MachineDrift(between=None, within_base=1.3, within_other=0.7)
    assert drift.beyond(0.1) == [("base", 1.3), ("other", 0.7)]
    assert MachineDrift(2.0, None, None).beyond(1.0) == [] and MachineDrift(2.01, None, None).beyond(1.0) != []
    base = make_report([])
    base.rounds = [{"round": i, "canary": {"python_loop_s": v}} for i, v in enumerate([5e-6, 5e-6, 7e-6])]
    other = make_report([])
    other.rounds = [{"round": i, "canary": {"python_loop_s": 5e-6}} for i in range(3)]
    got = machine_drift(base, other)
    assert got.within_base == pytest.approx(1.4) and got.within_other == pytest.approx(1.0)


# --- compare_pair: what a row keeps ----------------------------------------------------------------------
def test_rows_without_a_comparison_keep_both_results_and_the_key():
    ok, failed = result(KEY, STEADY), result(KEY, status="failed")
    for base, other, verdict in ((None, ok, "new"), (ok, None, "missing"), (ok, failed, "broke"),
                                 (failed, ok, "fixed"), (failed, failed, "failed")):
        row = compare_pair(KEY, base, other, Criteria())
        assert (row.key, row.base, row.other, row.verdict, row.change) == (KEY, base, other, verdict, None)


def test_a_definition_hash_on_one_side_only_is_no_reason_to_refuse():
    row = compare_pair(KEY, result(KEY, STEADY, definition_hash="sha256:a"), result(KEY, STEADY), Criteria())
    assert row.verdict == "same" and row.reasons == []
    row = compare_pair(KEY, result(KEY, STEADY), result(KEY, STEADY, definition_hash="sha256:b"), Criteria())
    assert row.verdict == "same"
    row = compare_pair(KEY, result(KEY, STEADY, definition_hash="sha256:a"),
                       result(KEY, STEADY, definition_hash="sha256:b"), Criteria())
    assert row.reasons == ["benchmark definition changed"]


def test_shape_fields_that_differ_are_named_in_the_reasons():
    base = result(KEY, STEADY, world_size=2, nnodes=1)
    other = result(KEY, STEADY, world_size=4, nnodes=2)
    row = compare_pair(KEY, base, other, Criteria())
    assert row.verdict == "incomparable" and row.reasons == ["world size 2 vs 4", "nodes 1 vs 2"]
    assert row.statistical == "same"  # the numbers still say something, shown beside the reason


def test_results_without_a_positive_time_cannot_be_compared():
    zero = Result(KEY, "ok", imported_stats={"n": 100, "median": 0.0, "iqr": 0.0})
    fine = Result(KEY, "ok", imported_stats={"n": 100, "median": 1.0, "iqr": 0.01})
    for base, other in ((zero, fine), (fine, zero), (result(KEY, status="ok"), fine), (fine, Result(KEY, "ok"))):
        row = compare_pair(KEY, base, other, Criteria())
        assert (row.verdict, row.reasons, row.change) == ("incomparable", ["no timing to compare"], None)


def test_a_side_without_raw_samples_uses_the_summary_rule_for_both():
    rng = np.random.default_rng(4)
    base = result(KEY, timings(rng, 200, 1.0, 0.02))
    other = Result(KEY, "ok", imported_stats={"n": 200, "median": 1.2, "iqr": 0.02})
    for a, b in ((base, other), (other, base)):
        row = compare_pair(KEY, a, b, Criteria())
        assert row.flags == ["no-samples"] and row.change.p_value is None and row.change.level == 0.95
    row = compare_pair(KEY, base, other, Criteria(alpha=0.1))
    assert row.change.level == 0.9 and row.verdict == "slower"
    assert row.mde == pytest.approx(detectable_slowdown(row.change, 0.05, 0.1))


def test_the_per_case_threshold_and_alpha_reach_the_row():
    rng = np.random.default_rng(6)
    base = rounds_result(KEY, [1e-3, 1.02e-3, 0.99e-3, 1.01e-3], rng)
    other = rounds_result(KEY, [1.1e-3, 1.12e-3, 1.09e-3, 1.11e-3], rng)
    row = compare_pair(KEY, base, other, Criteria(alpha=0.1), threshold=0.2)
    assert row.verdict == "same" and row.change.level == 0.9 and row.change.unit == "round"
    assert row.mde == pytest.approx(detectable_slowdown(row.change, 0.2, 0.1))
    assert compare_pair(KEY, base, other, Criteria(threshold=0.2), threshold=0.05).verdict == "slower"
    assert compare_pair(KEY, base, other, Criteria(threshold=0.2)).verdict == "same"


def test_the_declared_round_statistic_is_used_for_paired_rounds_too():
    rng = np.random.default_rng(8)
    base = rounds_result(KEY, [10e-3] * 4, rng, n=12, within=0.01)
    other = rounds_result(KEY, [10e-3] * 4, rng, n=12, within=0.01)
    base.samples = [s / 3 if i % 12 == 0 else s for i, s in enumerate(base.samples)]  # a prefetched first window
    base.round_statistic = other.round_statistic = "median"
    row = compare_pair(KEY, base, other, Criteria(), paired=True)
    assert row.change.unit == "paired-round" and row.verdict == "same"
    assert compare_pair(KEY, base, other, Criteria(round_quantile=0.5)).change.ratio == pytest.approx(
        row.change.ratio, rel=0.02)


def test_pairs_that_disagree_far_beyond_their_windows_are_flagged():
    rng = np.random.default_rng(13)
    offsets = [0.0, 0.3, -0.2, 0.25, -0.3]  # a per-process effect, far beyond the windows' spread

    def side(scale):
        samples, meta = [], []
        for i, off in enumerate(offsets):
            samples += timings(rng, 40, 1e-3 * scale * math.exp(off * (scale > 1)), 0.002)
            meta.append({"round": i, "n": 40, "windows": 8})
        return Result(KEY, "ok", samples=samples, rounds=meta)

    row = compare_pair(KEY, side(1.0), side(1.01), Criteria(), paired=True)
    assert row.flags == ["pairs-disagree"] and row.change.unit == "paired-round"


def test_single_round_samples_are_seeded_by_the_key_and_use_the_criteria():
    rng = np.random.default_rng(14)
    base, other = result(KEY, timings(rng, 40, 1.0, 0.03)), result(KEY, timings(rng, 40, 1.04, 0.03))
    row = compare_pair(KEY, base, other, Criteria(alpha=0.1, n_boot=300))
    assert row.change == change_from_samples(base.samples, other.samples, 0.9, 300, key_seed(KEY))
    assert row.flags == ["single-round"]
    half = Result(KEY, "ok", imported_stats={"n": 40, "median": 1.04, "iqr": 0.04})
    assert compare_pair(KEY, base, half, Criteria()).flags == ["no-samples"]


# --- instruction counts -----------------------------------------------------------------------------------
def _counted(samples, **kw):
    return result(KEY, samples, timing_method="callgrind-instructions", **kw)


def test_counts_keep_their_interval_jitter_and_sizes():
    row = compare_pair(KEY, _counted([100.0, 101.0, 100.5]), _counted([110.0, 111.0, 110.0, 112.0]), Criteria())
    from benchbench.metrics import instructions

    counted = instructions.classify_counts([100.0, 101.0, 100.5], [110.0, 111.0, 110.0, 112.0], 0.005)
    ch = row.change
    assert (ch.ratio, ch.ci_low, ch.ci_high, ch.level, ch.p_value, ch.noise, ch.n_base, ch.n_other) == (
        counted.ratio, counted.low, counted.high, 1.0, None, counted.jitter, 3, 4)
    assert row.verdict == row.statistical == counted.verdict == "slower"


def test_counts_missing_on_either_side_are_incomparable():
    for base, other in ((_counted([]), _counted([1.0, 1.0])), (_counted([1.0, 1.0]), _counted([]))):
        row = compare_pair(KEY, base, other, Criteria())
        assert (row.verdict, row.reasons, row.change) == ("incomparable", ["no instruction counts to compare"], None)


def test_per_case_tolerance_reaches_the_counts():
    base, other = _counted([100.0, 100.0, 100.0]), _counted([102.0, 102.0, 102.0])
    assert compare_pair(KEY, base, other, Criteria()).verdict == "slower"
    assert compare_pair(KEY, base, other, Criteria(), tolerance=0.05).verdict == "same"
    assert compare_pair(KEY, base, other, Criteria(instructions_tolerance=0.05), tolerance=0.001).verdict == "slower"
    comp = compare([make_report([base]), make_report([other])], tolerance_for=lambda k: 0.05 if k == KEY else None)
    assert comp.pairs[0].rows[0].verdict == "same"  # the tolerance asked for this key, not for any key


# --- compare: names, pairs and what they carry ------------------------------------------------------------
def test_report_names_from_hints_labels_and_run_ids():
    reps = [make_report([], label="x"), make_report([], label="x"), make_report([], run_id="r9"),
            make_report([], label="x")]
    assert report_names(reps) == ["x", "x#2", "r9", "x#3"]
    assert report_names(reps, ["a", None]) == ["a", "x", "r9", "x#2"]
    assert report_names(reps, ["a", "b", "c", "d"]) == ["a", "b", "c", "d"]
    assert report_names(reps[:1], []) == ["x"]


def test_compare_messages_name_the_reports():
    a = make_report([result(KEY, STEADY)], label="base")
    b = make_report([result(CaseKey.make("x", "y"), STEADY)], label="other")
    assert _error(compare, [a]) == "compare needs at least two reports"
    assert _error(compare, [a, b]) == ("other has no results in common with base (no benchmark matches on suite, "
                                      "benchmark, params, backend, dtype and mode)")
    assert _error(compare, [a, a, b], ["one", "two", "three"]).startswith("three has no results in common with one ")


def test_a_pair_carries_its_report_name_environment_and_canary_reading():
    rng = np.random.default_rng(15)
    a = make_report([result(KEY, timings(rng))], label="a")
    b = make_report([result(KEY, timings(rng))], {**FP, "hostname": "b"}, label="b")
    b.rounds = [{"round": 0, "canary": {"python_loop_s": 5e-6}}, {"round": 1, "canary": {"python_loop_s": 8e-6}}]
    comp = compare([a, b], ["old", "new"])
    (pair,) = comp.pairs
    assert (comp.base_name, pair.name, pair.report, pair.paired) == ("old", "new", b, False)
    assert pair.env_diff == [("hostname", "a", "b", False)]
    assert pair.drift == MachineDrift(None, None, pytest.approx(1.6))
    assert pair.rows[0].machine == [("other", pytest.approx(1.6))]
    assert comp.criteria == Criteria()


def test_compare_passes_the_per_case_settings_to_every_row_and_metric():
    rng = np.random.default_rng(16)
    base = rounds_result(KEY, [1e-3] * 3, rng)
    other = rounds_result(KEY, [1.1e-3] * 3, rng)
    for res, peak in ((base, 100e6), (other, 130e6)):
        for meta in res.rounds:
            meta["peak_memory_bytes"] = peak
    seen = []

    def threshold_for(key):
        seen.append(key)
        return 0.25

    comp = compare([make_report([base]), make_report([other])], threshold_for=threshold_for)
    assert seen == [KEY] and comp.pairs[0].rows[0].verdict == "same"
    default = compare([make_report([base]), make_report([other])]).pairs[0]
    lenient = compare([make_report([base]), make_report([other])],
                      settings_for=lambda key: {"memory_tolerance": 0.5}).pairs[0]
    assert [m.verdict for m in default.metric_rows] != [m.verdict for m in lenient.metric_rows]


# --- aggregates -------------------------------------------------------------------------------------------
def test_geomean_messages_and_a_zero():
    assert _error(geomean, [], exc=ValueError) == "geometric mean of no values"
    assert _error(geomean, [1.0, 0.0], exc=ValueError) == "geometric mean needs positive values"
    assert _error(geomean, [1.0, -2.0], exc=ValueError) == "geometric mean needs positive values"


def test_an_incomparable_definition_stays_out_of_the_geomean():
    row = Row(KEY, None, None, "incomparable", Change(2.0, 1.9, 2.1, 0.95, 0.01, 0.01, 9, 9),
              reasons=["benchmark definition changed"])
    kept = Row(KEY, None, None, "same", Change(1.5, 1.4, 1.6, 0.95, 0.01, 0.01, 9, 9))
    assert geomeans([row, kept])[None].ratio == 1.5 and geomeans([row]) == {}


def test_verdict_counts_in_the_order_of_the_verdicts():
    rows = [Row(KEY, None, None, v) for v in ("same", "slower", "same", "new", "same", "failed")]
    counts = verdict_counts(rows)
    assert counts == {"slower": 1, "same": 3, "new": 1, "failed": 1}
    assert list(counts) == ["slower", "same", "new", "failed"] and verdict_counts([]) == {}


# --- the rule at its exact edges --------------------------------------------------------------------------
@pytest.mark.parametrize("change, expected", [
    (Change(1.2, 1.15, 1.25, 0.95, 0.05, 0.02, 30, 30), "noisy"),     # p exactly alpha: not significant
    (Change(1.2, 1.05, 1.25, 0.95, 0.001, 0.02, 30, 30), "noisy"),    # interval starting exactly at +5%
    (Change(1.2, 1.15, 1.25, 0.95, 0.001, 0.2, 30, 30), "noisy"),     # change exactly the samples' noise
    (Change(0.9, 0.85, 1 / 1.05, 0.95, 0.001, 0.02, 30, 30), "noisy"),  # interval ending exactly at -5%
    (Change(1 / 1.2, 0.8, 0.85, 0.95, 0.001, 0.2, 30, 30), "noisy"),   # change exactly the noise, faster
    (Change(0.95, 0.9, 0.94, 0.95, 0.001, 0.1, 30, 30), "noisy"),     # inside the noise: 0.95 > 1 / 1.1
    (Change(1.0, 1 / 1.05, 1.02, 0.95, 0.5, 0.01, 30, 30), "noisy"),  # same only strictly inside the band
    (Change(1.0, 0.98, 1.05, 0.95, 0.5, 0.01, 30, 30), "noisy"),
])
def test_each_bound_of_the_rule_is_strict(change, expected):
    assert c.classify(change, threshold=0.05, alpha=0.05) == expected


def test_mann_whitney_runs_when_only_the_current_side_is_constant_at_the_baselines_slowest():
    base = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    p = mann_whitney_p(base, [8.0] * 8)
    assert p == pytest.approx(sps.mannwhitneyu(base, [8.0] * 8).pvalue) and p < 0.01


def test_the_ratio_intervals_default_seed_is_0():
    rng = np.random.default_rng(19)
    a, b = timings(rng, 301, 1.0, 0.05), timings(rng, 301, 1.1, 0.05)
    assert c.bootstrap_ratio_ci(a, b, 0.95, 2000, 0) != c.bootstrap_ratio_ci(a, b, 0.95, 2000, 1)
    assert c.bootstrap_ratio_ci(a, b) == c.bootstrap_ratio_ci(a, b, 0.95, 2000, 0)


@pytest.mark.parametrize("status", ["ok", "skipped", "failed", "timeout"])
def test_a_case_only_the_other_report_has_is_new_whatever_its_status(status):
    """Absent from the baseline: `new`, also when the other report skipped or failed it, and the row keeps
    the other side's result (absent from the other report: `missing`, keeping the baseline's)."""
    other = result(KEY, STEADY if status == "ok" else None, status=status)
    row = c.compare_pair(KEY, None, other, Criteria())
    assert (row.verdict, row.base, row.other) == ("new", None, other)
    row = c.compare_pair(KEY, other, None, Criteria())
    assert (row.verdict, row.base, row.other) == ("missing", other, None)


def test_two_rounds_a_side_are_enough_to_pair_and_to_compare_rounds():
    rng = np.random.default_rng(5)
    a, b = rounds_result(KEY, [1e-3, 1.1e-3], rng), rounds_result(KEY, [1.2e-3, 1.3e-3], rng)
    assert compare_pair(KEY, a, b, Criteria(), paired=True).change.unit == "paired-round"
    assert compare_pair(KEY, a, b, Criteria()).change.unit == "round"
    one_a, one_b = rounds_result(KEY, [1e-3], rng), rounds_result(KEY, [1.2e-3], rng)
    assert compare_pair(KEY, one_a, b, Criteria()).change.unit != "round"  # one round on a side: no rounds rule
    assert compare_pair(KEY, a, one_b, Criteria()).change.unit != "round"


def test_exactly_the_minimum_samples_is_not_few():
    rng = np.random.default_rng(6)
    a, b = result(KEY, timings(rng, 5)), result(KEY, timings(rng, 5))
    assert "few-samples" not in compare_pair(KEY, a, b, Criteria(min_samples=5)).flags
    assert "few-samples" in compare_pair(KEY, a, b, Criteria(min_samples=6)).flags


def test_paired_rounds_take_the_criterias_level_and_the_mde_its_power():
    rng = np.random.default_rng(7)
    a, b = rounds_result(KEY, [1e-3, 1.1e-3, 1.05e-3], rng), rounds_result(KEY, [1.2e-3, 1.3e-3, 1.25e-3], rng)
    row = compare_pair(KEY, a, b, Criteria(alpha=0.1, power=0.8), paired=True)
    assert row.change.level == pytest.approx(0.9)
    assert row.mde == pytest.approx(c.detectable_slowdown(row.change, 0.05, 0.1, 0.8))
    assert row.mde != pytest.approx(c.detectable_slowdown(row.change, 0.05, 0.1, 0.9))
