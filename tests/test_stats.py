import math
import random
import statistics

import pytest

from benchbench.model.stats import (
    health_flags,
    median_ci_ranks,
    quantile,
    rounds_disagree,
    summarize,
    summarize_rounds,
)


def test_summarize_known_values():
    st = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert st.n == 5
    assert st.median == 3.0
    assert (st.q1, st.q3, st.iqr) == (2.0, 4.0, 2.0)
    assert st.mean == 3.0
    assert st.stdev == pytest.approx(statistics.stdev([1, 2, 3, 4, 5]))
    assert (st.min, st.max) == (1.0, 5.0)
    assert st.rel_spread == pytest.approx(2 / 3)
    # fewer than 6 samples: the interval is the full range
    assert (st.ci_low, st.ci_high) == (1.0, 5.0)


def test_quantile_matches_linear_interpolation():
    xs = [1.0, 2.0, 10.0, 20.0]
    assert quantile(xs, 0.5) == 6.0
    assert quantile(xs, 0.25) == pytest.approx(1.75)
    assert quantile(xs, 1.0) == 20.0
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_median_ci_ranks_exact_binomial():
    # n=10: P(X<=1) = 11/1024 <= 0.025 < P(X<=2) = 56/1024, so ranks 1..8 (0-based)
    assert median_ci_ranks(10) == (1, 8)
    # n=20: P(X<=5) = 0.0207 <= 0.025 < P(X<=6) = 0.0577
    assert median_ci_ranks(20) == (5, 14)
    assert median_ci_ranks(3) == (0, 2)


def test_median_ci_covers_true_median_at_nominal_rate():
    rng = random.Random(1)
    covered = 0
    trials = 400
    for _ in range(trials):
        xs = [rng.lognormvariate(0, 0.5) for _ in range(30)]  # true median is exp(0) = 1
        st = summarize(xs)
        covered += st.ci_low <= 1.0 <= st.ci_high
    assert covered / trials >= 0.93


def test_large_n_uses_normal_approximation_consistently():
    lo, hi = median_ci_ranks(5000)
    assert lo + hi == 4999
    assert abs((hi - lo) - 2 * 1.96 * math.sqrt(5000) / 2) <= 2


def test_empty_samples_rejected():
    with pytest.raises(ValueError):
        summarize([])


def test_health_flags():
    noisy = summarize([1.0, 2.0, 1.0, 2.0, 1.0, 2.0])
    assert "high-spread" in health_flags(noisy, None, None)
    few = summarize([1.0, 1.0])
    assert "few-samples" in health_flags(few, None, None)
    steady = summarize([1.0] * 10)
    assert health_flags(steady, block_seconds=1e-6, timer_resolution=1e-8) == ["near-timer-resolution"]
    assert health_flags(steady, block_seconds=1e-3, timer_resolution=1e-9) == []


# --- rounds -------------------------------------------------------------------------------------
def _rounds(rng: random.Random, true: float, n_rounds: int, per_round: int, between: float, within: float):
    """Samples of one case in rounds: each process has its own speed (lognormal offset, sd `between`),
    and samples inside a process scatter around it (sd `within`)."""
    out = []
    for _ in range(n_rounds):
        offset = math.exp(rng.gauss(0.0, between))
        out.append([true * offset * math.exp(rng.gauss(0.0, within)) for _ in range(per_round)])
    return out


def test_round_interval_covers_the_true_value_at_its_nominal_rate():
    """Per-process offsets 10x the within-round noise: the round-level 95% interval must still cover
    the true value (the median over processes) in about 95 of 100 trials; the pooled within-run
    interval, which treats every sample as independent, covers it far less often."""
    rng = random.Random(7)
    hits = pooled_hits = 0
    for _ in range(200):
        rounds = _rounds(rng, 1.0, 5, 20, between=0.10, within=0.01)
        st = summarize_rounds(rounds)
        hits += st.ci_low <= 1.0 <= st.ci_high
        pooled = summarize([x for r in rounds for x in r])
        pooled_hits += pooled.ci_low <= 1.0 <= pooled.ci_high
    assert hits >= 0.93 * 200
    assert pooled_hits < 0.6 * 200


def test_one_round_falls_back_to_the_samples_interval():
    rng = random.Random(1)
    rounds = _rounds(rng, 2.0, 1, 30, between=0.0, within=0.02)
    assert summarize_rounds(rounds) == summarize(rounds[0])


def test_rounds_estimate_is_the_geometric_mean_of_round_medians():
    st = summarize_rounds([[1.0, 1.0, 1.0], [4.0, 4.0, 4.0]])
    assert st.median == pytest.approx(2.0)
    assert st.rounds == 2 and st.between_rel_sd == pytest.approx(math.log(4) / math.sqrt(2))
    assert st.ci_low < 1.0 and st.ci_high > 4.0  # two disagreeing rounds: a wide interval


def test_rounds_disagree_flags_only_disagreement_beyond_the_inner_spread():
    rng = random.Random(3)
    agree = summarize_rounds(_rounds(rng, 1.0, 5, 30, between=0.0, within=0.05))
    apart = summarize_rounds(_rounds(rng, 1.0, 5, 30, between=0.2, within=0.005))
    assert not rounds_disagree(agree)
    assert rounds_disagree(apart)
    assert "rounds-disagree" in health_flags(apart, None, None)
    assert "rounds-disagree" not in health_flags(agree, None, None)


# --- edges, pinned (mutation testing found them unguarded) -----------------------------------------
def test_every_figure_of_a_summary_and_its_stored_form():
    xs = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]
    st = summarize([4.0, 1.0, 128.0, 2.0, 8.0, 16.0, 32.0, 64.0], level=0.9)
    assert median_ci_ranks(8, 0.9) == (1, 6) and median_ci_ranks(8) == (0, 7)  # the level matters at n = 8
    assert st.to_dict() == {
        "n": 8, "median": 12.0, "q1": 3.5, "q3": 40.0, "iqr": 36.5, "mean": statistics.fmean(xs),
        "stdev": pytest.approx(statistics.stdev(xs)), "min": 1.0, "max": 128.0, "ci_low": 2.0, "ci_high": 64.0,
        "ci_level": 0.9, "rel_spread": 36.5 / 12.0, "rel_ci": (64.0 - 2.0) / 2 / 12.0, "rounds": 1,
        "between_rel_sd": 0.0, "within_rel_ci": 0.0}
    one = summarize([3.0])
    assert (one.stdev, one.ci_low, one.ci_high, one.rel_ci) == (0.0, 3.0, 3.0, 0.0)
    assert summarize([1.0, 3.0]).stdev == pytest.approx(math.sqrt(2))
    small = summarize([0.4, 0.5, 0.6])  # a median below 1
    assert small.rel_ci == pytest.approx(0.2) and small.rel_spread == pytest.approx(0.2)
    zero = summarize([0.0, 0.0, 1.0])
    assert zero.rel_spread == math.inf and zero.rel_ci == math.inf
    with pytest.raises(ValueError, match="^no samples$"):
        median_ci_ranks(0)
    with pytest.raises(ValueError, match="^cannot summarize an empty list of samples$"):
        summarize([])
    with pytest.raises(ValueError, match="^quantile of no data$"):
        quantile([], 0.5)
    assert quantile([1.0, 2.0, 10.0, 20.0], 0.9) == pytest.approx(17.0)  # between the last two


def test_median_ci_ranks_at_other_levels_and_past_the_exact_range():
    from statistics import NormalDist

    median_ci_ranks.cache_clear()  # computed here, not remembered from another test
    assert median_ci_ranks(6) == (0, 5) and median_ci_ranks(5) == (0, 4)
    assert median_ci_ranks(20, 0.99) == (3, 16)  # P(X <= 3) = 0.0013 <= 0.005 < P(X <= 4) = 0.0059
    assert median_ci_ranks(1000) == (468, 531)  # exact binomial still
    z = NormalDist().inv_cdf(0.995)
    k = math.floor(5000 / 2 - z * math.sqrt(5000) / 2)
    assert median_ci_ranks(5000, 0.99) == (k, 4999 - k)
    k95 = math.floor(1001 / 2 - 1.959963984540054 * math.sqrt(1001) / 2)
    assert median_ci_ranks(1001) == (k95, 1000 - k95)


def test_log_t_interval_and_rounds_with_a_zero_median():
    from scipy.stats import t

    from benchbench.model.stats import log_t_interval

    assert log_t_interval([2.0]) == (pytest.approx(2.0), pytest.approx(2.0), pytest.approx(2.0), 0.0)
    half95 = t.ppf(0.975, 1) * math.log(4) / math.sqrt(2) / math.sqrt(2)
    assert log_t_interval([1.0, 4.0])[1:3] == pytest.approx((2.0 * math.exp(-half95), 2.0 * math.exp(half95)))
    est, lo, hi, sd = log_t_interval([1.0, 4.0], level=0.9)
    half = t.ppf(0.95, 1) * math.log(4) / math.sqrt(2) / math.sqrt(2)
    assert (est, lo, hi, sd) == pytest.approx((2.0, 2.0 * math.exp(-half), 2.0 * math.exp(half),
                                               math.log(4) / math.sqrt(2)))
    st = summarize_rounds([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], []])
    assert st.rounds == 2 and st.median == 0.5 and st.between_rel_sd == 0.0  # pooled, no logarithms
    with pytest.raises(ValueError, match="^cannot summarize rounds without samples$"):
        summarize_rounds([[], []])
    two = ([1.0, 1.1, 0.9, 1.0, 1.2, 0.8, 1.5, 0.5], [2.0, 2.2, 1.8, 2.0, 2.4, 1.6, 3.0, 1.3])
    rounds = summarize_rounds(list(two), level=0.9)
    per_round = [summarize(r, 0.9) for r in two]  # 8 samples a round: 90% and 95% ranks differ
    assert rounds.within_rel_ci != pytest.approx(statistics.median(summarize(r).rel_ci for r in two))
    assert rounds.within_rel_ci == pytest.approx(statistics.median(s.rel_ci for s in per_round))
    assert rounds.ci_level == 0.9 and rounds.rel_spread == pytest.approx(rounds.iqr / rounds.median)
    half = t.ppf(0.95, 1) * rounds.between_rel_sd / math.sqrt(2)  # the rounds' interval at the level asked
    assert (rounds.ci_low, rounds.ci_high) == pytest.approx((rounds.median * math.exp(-half),
                                                             rounds.median * math.exp(half)))
    assert rounds.rel_ci == pytest.approx((rounds.ci_high - rounds.ci_low) / 2 / rounds.median)


def test_flags_at_their_thresholds():
    from dataclasses import replace

    base = summarize([1.0] * 10)
    assert health_flags(replace(base, rel_spread=0.10), None, None) == []
    assert health_flags(replace(base, rel_spread=0.1001), None, None) == ["high-spread"]
    assert health_flags(replace(base, n=5), None, None) == []
    assert health_flags(replace(base, n=4), None, None) == ["few-samples"]
    assert health_flags(base, block_seconds=1e-5, timer_resolution=1e-8) == []  # exactly 1000 ticks
    assert health_flags(base, block_seconds=0.99e-5, timer_resolution=1e-8) == ["near-timer-resolution"]
    assert health_flags(base, block_seconds=1e-9, timer_resolution=0.0) == []  # no resolution known
    assert health_flags(base, block_seconds=None, timer_resolution=1e-8) == []
    # rounds disagree: the between-round sd against 3x the within-round standard error, at least 2%
    two = replace(base, rounds=2, within_rel_ci=1.96 * 0.01)  # a round median's se: 1%
    assert not rounds_disagree(replace(two, between_rel_sd=0.03))
    assert rounds_disagree(replace(two, between_rel_sd=0.0301))
    assert not rounds_disagree(replace(two, within_rel_ci=0.0, between_rel_sd=0.02))  # the 2% floor
    assert rounds_disagree(replace(two, within_rel_ci=0.0, between_rel_sd=0.0201))
    assert not rounds_disagree(replace(two, rounds=1, between_rel_sd=1.0))
    assert health_flags(replace(two, between_rel_sd=1.0), None, None) == ["rounds-disagree"]
