import math
import random
import statistics

import pytest

from benchbench.stats import (
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
