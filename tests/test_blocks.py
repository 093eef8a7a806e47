"""Block-interleaved pairs: turn order, window ratios, and the pairing read back from results."""

import math

import numpy as np
import pytest

from benchbench import blocks
from benchbench.report import CaseKey, Result


def test_turns_are_abba_and_balanced_with_either_side_first():
    assert blocks.turn_order(4, 0) == [0, 1, 1, 0, 0, 1, 1, 0]
    assert blocks.turn_order(2, 1) == [1, 0, 0, 1]
    for first in (0, 1):
        order = blocks.turn_order(8, first)
        assert order.count(0) == order.count(1) == 8
        # each side goes first in half the pairs of turns
        assert sum(order[2 * i] == first for i in range(8)) == 4


def test_window_logs_cancel_a_drift_that_hits_both_sides():
    """The machine slows down 3x over the round; the current side does 10% more work. Per window the
    ratio stays 1.10, while the sides' overall medians are far apart in time."""
    speed = np.linspace(1.0, 3.0, 48)
    base = [1e-3 * s for s in speed]
    other = [1.1e-3 * s for s in speed]
    logs = blocks.window_logs(base, other, 6)
    assert len(logs) == 6 and all(v == pytest.approx(math.log(1.1)) for v in logs)
    assert math.exp(blocks.round_log(logs)) == pytest.approx(1.1)
    assert blocks.within_se(logs) == pytest.approx(0.0, abs=1e-12)


def test_window_logs_refuse_samples_that_do_not_cut_evenly():
    with pytest.raises(ValueError):
        blocks.window_logs([1.0] * 10, [1.0] * 10, 3)
    with pytest.raises(ValueError):
        blocks.window_logs([1.0] * 12, [1.0] * 10, 2)


def result(rounds, windows=None):
    key = CaseKey.make("s", "b", {}, "cpu", None)
    samples = [x for r in rounds for x in r]
    meta = [{"round": i, "n": len(r), **({"windows": windows} if windows else {})} for i, r in enumerate(rounds)]
    return Result(key=key, status="ok", samples=samples, rounds=meta, timing_method="perf_counter")


def test_paired_round_logs_use_the_windows_when_both_sides_have_them_and_round_values_otherwise():
    rng = np.random.default_rng(0)
    a_rounds = [list(1e-3 * (1 + 0.2 * rng.random(12))) for _ in range(3)]
    b_rounds = [[1.05 * x for x in r] for r in a_rounds]
    logs = blocks.paired_round_logs(result(a_rounds, 3), result(b_rounds, 3))
    assert sorted(logs) == [0, 1, 2]
    assert all(v == pytest.approx(math.log(1.05)) and se == pytest.approx(0.0, abs=1e-12) for v, se in logs.values())
    # without windows: the fastest sample of each round, and no within-round spread
    plain = blocks.paired_round_logs(result(a_rounds), result(b_rounds))
    assert all(v == pytest.approx(math.log(1.05)) and se is None for v, se in plain.values())
    # only rounds both sides hold are paired
    assert sorted(blocks.paired_round_logs(result(a_rounds[:2], 3), result(b_rounds, 3))) == [0, 1]


def test_pairs_disagree_only_when_rounds_spread_far_beyond_their_windows():
    quiet_within = [0.002] * 8
    agreeing = [0.001, -0.002, 0.003, 0.0, -0.001, 0.002, -0.003, 0.001]
    per_process = [0.10, -0.08, 0.05, -0.12, 0.09, 0.0, -0.05, 0.07]
    assert not blocks.pairs_disagree(agreeing, quiet_within)
    assert blocks.pairs_disagree(per_process, quiet_within)
    assert not blocks.pairs_disagree(per_process, [0.08] * 8)  # the windows are that noisy too
    assert not blocks.pairs_disagree(per_process[:2], quiet_within[:2])  # too few rounds to tell
    assert not blocks.pairs_disagree(per_process, [None] * 8)  # no windows: nothing to compare with
