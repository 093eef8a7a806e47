"""Percentiles of per-call samples: known quantiles on seeded synthetic data, and the call counts behind them."""

from __future__ import annotations

import math
import random

import pytest

from benchbench.model.percentiles import PERCENTILES, percentiles, summary


def test_known_quantiles_of_an_exponential_sample():
    """Exponential(1): the p-quantile is -ln(1 - p): 0.693, 2.303, 4.605."""
    rng = random.Random(7)
    xs = [rng.expovariate(1.0) for _ in range(200_000)]
    ps = percentiles(xs)
    for name, (q, _) in PERCENTILES.items():
        assert ps[name].value == pytest.approx(-math.log(1 - q), rel=0.03), name
    assert ps["max"].value == max(xs)


def test_exact_quantiles_of_a_shuffled_grid():
    """0..1000 in any order: the linear-interpolation p-quantile is exactly 1000 p."""
    xs = list(range(1001))
    random.Random(1).shuffle(xs)
    ps = percentiles(xs)
    assert (ps["p50"].value, ps["p90"].value, ps["p99"].value, ps["max"].value) == (500, 900, 990, 1000)
    assert ps["p99"].tail_calls == 11  # 990 .. 1000
    assert ps["p50"].calls == 1001


def test_a_slow_tail_moves_p99_but_not_p50():
    rng = random.Random(3)
    body = [1.0 + rng.random() * 0.01 for _ in range(990)]
    ps = percentiles(body + [50.0] * 10)
    assert ps["p50"].value == pytest.approx(1.005, abs=0.006)
    assert ps["p99"].value > 1.02  # the 1% of slow calls reach the 99th percentile's neighbourhood
    assert ps["max"].value == 50.0


@pytest.mark.parametrize(("n", "missing"), [(1, ["p50", "p90", "p99"]), (9, ["p90", "p99"]), (99, ["p99"]),
                                            (100, [])])
def test_a_percentile_needs_enough_calls_and_says_so(n, missing):
    ps = percentiles([0.001 * (i + 1) for i in range(n)])
    assert [name for name, p in ps.items() if not p.supported] == missing
    if "p99" in missing:
        assert ps["p99"].note == f"p99 needs >= 100 calls, has {n}"
    assert ps["max"].supported


def test_summary_flattens_with_a_prefix_and_notes_the_unsupported():
    out = summary([0.002, 0.001, 0.003] * 10, prefix="itl")
    assert out["itl_p50_s"] == 0.002 and out["itl_max_s"] == 0.003 and out["itl_calls"] == 30
    assert out["itl_p90_s"] == pytest.approx(0.003)
    assert out["itl_p99_s"] is None and out["itl_note"] == "p99 needs >= 100 calls, has 30"
    assert "latency_note" not in summary([0.001] * 100)


@pytest.mark.parametrize("bad", [[], [float("nan")], [0.1, float("inf")]])
def test_no_percentiles_from_nothing_or_non_finite_samples(bad):
    with pytest.raises(ValueError):
        percentiles(bad)
