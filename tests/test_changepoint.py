import importlib.util
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from benchbench import changepoint as cp

ROOT = Path(__file__).resolve().parent.parent


def load_calibration():
    spec = importlib.util.spec_from_file_location("changepoint_calibration",
                                                  ROOT / "benchmarks" / "changepoint_calibration.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def brute_energy(x, tau):
    left, right = x[:tau], x[tau:]
    m, n = len(left), len(right)
    xy = np.mean([abs(a - b) for a in left for b in right])
    xx = np.mean([abs(a - b) for a, b in itertools.permutations(left, 2)])
    yy = np.mean([abs(a - b) for a, b in itertools.permutations(right, 2)])
    return m * n / (m + n) * (2 * xy - xx - yy)


def test_energy_statistic_matches_its_definition():
    x = np.random.default_rng(0).standard_normal(23)
    q = cp.energy_statistic(x, min_size=3)
    assert np.isnan(q[:3]).all() and np.isnan(q[21:]).all()
    for tau in range(3, 21):
        assert q[tau] == pytest.approx(brute_energy(x, tau))


def test_energy_statistic_peaks_at_a_step():
    x = np.r_[np.zeros(30), np.ones(20)] + 0.1 * np.random.default_rng(1).standard_normal(50)
    assert int(np.nanargmax(cp.energy_statistic(x))) == 30


def test_ttest_is_students_pooled_test_on_winsorised_values():
    rng = np.random.default_rng(2)
    for n1, n2 in ((4, 96), (10, 10), (37, 12)):
        a, b = rng.standard_normal(n1), rng.standard_normal(n2) + 0.5
        a[0] += 8  # an outlier
        plain = stats.ttest_ind(a, b, equal_var=True).pvalue
        assert cp.ttest_pvalue(a, b, clip=None) == pytest.approx(plain, rel=1e-9)
        ma, mb = np.median(a), np.median(b)
        bound = 3 * 1.4826 * np.median(np.abs(np.r_[a - ma, b - mb]))
        clipped = stats.ttest_ind(ma + np.clip(a - ma, -bound, bound), mb + np.clip(b - mb, -bound, bound),
                                  equal_var=True).pvalue
        assert cp.ttest_pvalue(a, b) == pytest.approx(clipped, rel=1e-9)


def test_winsorising_keeps_one_outlier_from_making_a_step():
    x = 1 + 0.01 * np.random.default_rng(3).standard_normal(40)
    x[-2] = 1.5
    assert cp.ttest_pvalue(x[:36], x[36:], clip=None) < 0.01  # raw, one outlier looks like a step
    assert cp.ttest_pvalue(x[:36], x[36:]) > 0.05
    assert cp.detect(x) == []


def test_equal_weights_change_nothing_and_imprecise_points_count_less():
    rng = np.random.default_rng(4)
    a, b = 1 + 0.02 * rng.standard_normal(20), 1.03 + 0.02 * rng.standard_normal(20)
    plain = cp.ttest_pvalue(a, b)
    assert cp.ttest_pvalue(a, b, np.ones(20), np.ones(20)) == pytest.approx(plain)
    b_bad = b.copy()
    b_bad[:3] = 0.9  # three wild points...
    w = np.ones(20)
    w[:3] = 0.01  # ...whose intervals were wide
    assert cp.ttest_pvalue(a, b_bad, np.ones(20), w, clip=None) < cp.ttest_pvalue(a, b_bad, clip=None)


def test_weights_from_intervals():
    w = cp.weights_from_intervals([0.9, 0.8, None, 1.0], [1.1, 1.2, None, 1.0])
    assert w.mean() == pytest.approx(1.0)
    assert w[0] == pytest.approx(4 * w[1])  # half the width, four times the weight
    assert w[2] == pytest.approx(w[3])  # unknown and zero widths get the typical width: (0.1 + 0.2) / 2


def test_detect_finds_a_step_with_its_size_interval_and_pvalue():
    rng = np.random.default_rng(5)
    x = 1 + 0.02 * rng.standard_normal(60)
    x[40:] *= 1.10
    (c,) = cp.detect(x)
    assert c.index == 40 and (c.before, c.after) == (40, 20)
    assert c.ratio == pytest.approx(1.10, abs=0.015)
    assert c.ratio_low < 1.10 < c.ratio_high and c.ratio_high - c.ratio_low < 0.05
    assert c.pvalue < 1e-10
    assert cp.detect(x, seed=9)[0].ratio_low != c.ratio_low  # the interval is a seeded bootstrap...
    assert cp.detect(x)[0] == c  # ...so the same seed gives the same answer


def test_detect_finds_several_steps_and_respects_min_size():
    rng = np.random.default_rng(6)
    x = 1 + 0.01 * rng.standard_normal(90)
    x[30:] *= 1.2
    x[60:] *= 0.8
    assert [c.index for c in cp.detect(x)] == [30, 60]
    y = 1 + 0.01 * rng.standard_normal(30)
    y[-3:] *= 1.5  # three points at the end are too few to be a level of their own with min_size 4
    assert all(c.before >= 4 and c.after >= 4 for c in cp.detect(y, min_size=4))
    assert 27 not in [c.index for c in cp.detect(y, min_size=4)]
    assert [c.index for c in cp.detect(y, min_size=3)] == [27]


def test_eight_runs_are_enough_for_a_step_after_four():
    x = 1 + 0.003 * np.random.default_rng(7).standard_normal(8)
    x[4:] *= 1.10
    assert [c.index for c in cp.detect(x)] == [4]


def test_detect_edge_cases():
    assert cp.detect([]) == [] and cp.detect([1.0] * 5) == [] and cp.detect([2.0] * 50) == []
    with pytest.raises(ValueError):
        cp.detect([1.0, float("nan"), 2.0])
    with pytest.raises(ValueError):
        cp.detect([1.0] * 10, weights=[1.0] * 9)


def test_calibration_targets_hold_on_seeded_series():
    """The README's calibration table in small: 100-point series with and without a 5% step, seeded."""
    cal = load_calibration()
    cells = [cal.evaluate(cv, noise, 250, seed=2, resamples=20)
             for cv, noise in ((0.02, "normal"), (0.02, "outliers"), (0.03, "normal"), (0.03, "outliers"),
                               (0.05, "normal"))]
    assert sum(c.false_rate for c in cells) / len(cells) <= 0.01, cells  # at most 1% false change points
    assert all(c.false_rate <= 0.012 for c in cells), cells  # 3 of 250 in one cell is sampling, not drift
    for c in cells[:4]:
        assert c.detect_rate >= (0.9 if c.noise == "normal" else 0.88), c  # the step, within 5 points
    assert 0.25 <= cells[4].detect_rate < 0.9, cells[4]  # at CV 5%, a 5% step is often missed (README)
