"""Block-interleaved pairs: turn order, window ratios, and the pairing read back from results."""

import math
import statistics

import numpy as np
import pytest

from benchbench.analysis import blocks
from benchbench.model.report import CaseKey, Result


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


def test_window_logs_cut_the_samples_in_order_into_equal_windows():
    base = [1.0] * 6
    assert blocks.window_logs(base, [1.0, 1.0, 2.0, 2.0, 4.0, 4.0], 3) == pytest.approx([0.0, math.log(2), math.log(4)])
    assert blocks.window_logs([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], 1) == pytest.approx([math.log(2)])  # medians
    assert blocks.window_logs([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], 3) == pytest.approx([math.log(2)] * 3)
    for bad_base, bad_other, windows in (([1.0] * 4, [1.0] * 4, 0), ([1.0] * 2, [1.0] * 2, 3), ([1.0] * 6, [1.0] * 6, 4)):
        with pytest.raises(ValueError, match=rf"^cannot cut {len(bad_base)} and {len(bad_other)} samples into "
                                             rf"{windows} equal windows$"):
            blocks.window_logs(bad_base, bad_other, windows)
    with pytest.raises(ValueError, match="^a window's median is not positive$"):
        blocks.window_logs([1.0, 1.0, 0.0, 0.0], [1.0] * 4, 2)
    with pytest.raises(ValueError, match="^a window's median is not positive$"):
        blocks.window_logs([1.0] * 4, [1.0, 1.0, 0.0, 0.0], 2)


def test_a_rounds_log_is_the_median_of_its_windows_and_its_se_that_of_a_median():
    assert blocks.round_log([0.1, 0.3, 0.2, 10.0]) == pytest.approx(0.25)
    assert blocks.within_se([]) is None and blocks.within_se([0.3]) is None
    assert blocks.within_se([0.0, 0.2]) == pytest.approx(1.2533 * math.sqrt(0.02) / math.sqrt(2))
    assert blocks.within_se([0.1, 0.1, 0.4]) == pytest.approx(1.2533 * math.sqrt(0.03) / math.sqrt(3))


def result_meta(rounds, metas):
    key = CaseKey.make("s", "b", {}, "cpu", None)
    return Result(key=key, status="ok", samples=[x for r in rounds for x in r], timing_method="perf_counter",
                  rounds=[{**m, "n": len(r)} for r, m in zip(rounds, metas, strict=True)])


def test_paired_round_logs_fall_back_to_quantiles_unless_both_sides_cut_the_same_windows():
    a = [[1.0, 2.0, 3.0, 4.0]]
    b = [[1.0, 4.0, 9.0, 16.0]]
    windowed = blocks.paired_round_logs(result_meta(a, [{"windows": 2}]), result_meta(b, [{"windows": 2}]))
    assert windowed[0][0] == pytest.approx(statistics.median([math.log(2.5 / 1.5), math.log(12.5 / 3.5)]))
    assert windowed[0][1] is not None
    for wa, wb in ((2, 1), (True, True), (0, 0), ("2", "2"), (None, 2)):
        logs = blocks.paired_round_logs(result_meta(a, [{"windows": wa}]), result_meta(b, [{"windows": wb}]))
        assert logs == {0: (0.0, None)}, (wa, wb)  # the fastest samples: 1.0 and 1.0
    # the same windows but not the same sample count: quantiles too
    longer = [[1.0, 4.0, 9.0, 16.0, 25.0, 36.0]]
    assert blocks.paired_round_logs(result_meta(a, [{"windows": 2}]), result_meta(longer, [{"windows": 2}])) == \
        {0: (0.0, None)}
    # q picks the quantile compared
    median = blocks.paired_round_logs(result_meta(a, [{}]), result_meta(b, [{}]), q=0.5)
    assert median[0][0] == pytest.approx(math.log(6.5 / 2.5)) and median[0][1] is None


def test_paired_round_logs_key_rounds_by_their_index_and_skip_what_cannot_be_compared():
    a = [[1.0, 1.0], [1.0, 1.0], [], [0.0, 0.0], [1.0, 1.0]]
    b = [[2.0, 2.0], [3.0, 3.0], [], [1.0, 1.0], [0.0, 1.0]]
    metas = [{"round": 7}, {"round": 3}, {"round": 4}, {"round": 5}, {"round": 6}]
    logs = blocks.paired_round_logs(result_meta(a, metas), result_meta(b, metas))
    # round 4 has no samples; round 5's baseline and round 6's other side have a zero quantile
    assert logs == {7: (pytest.approx(math.log(2)), None), 3: (pytest.approx(math.log(3)), None)}
    assert list(logs) == [3, 7]  # in round order
    # a window with a non-positive median drops that round, not the comparison
    windowed = [{"round": 0, "windows": 1}, {"round": 1, "windows": 1}]
    logs = blocks.paired_round_logs(result_meta([[0.0, 0.0], [1.0, 1.0]], windowed),
                                    result_meta([[1.0, 1.0], [2.0, 2.0]], windowed))
    assert logs == {1: (pytest.approx(math.log(2)), None)}
    # one window is the round's median ratio, not its fastest samples'
    one = [{"windows": 1}]
    assert blocks.paired_round_logs(result_meta([[1.0, 3.0, 3.0]], one), result_meta([[1.0, 6.0, 6.0]], one)) == \
        {0: (pytest.approx(math.log(2)), None)}
    # without round numbers, a round's position is its index
    plain = blocks.paired_round_logs(result_meta([[1.0], [1.0], [2.0]], [{}, {}, {}]),
                                     result_meta([[2.0], [4.0], [1.0]], [{}, {}, {}]))
    assert plain == {0: (pytest.approx(math.log(2)), None), 1: (pytest.approx(math.log(4)), None),
                     2: (pytest.approx(math.log(0.5)), None)}


def test_pairs_disagree_at_its_bounds():
    logs = [-2.0, -2.0, 2.0, 2.0, 0.0]  # variance 4 between rounds
    assert blocks.pairs_disagree(logs, [0.98] * 5)  # chi-square 4 * 4 / 0.96 = 16.7 > 13.3 (99%, 4 df); > 4x
    assert not blocks.pairs_disagree(logs, [1.0] * 5)  # chi-square 16 > 13.3, but exactly 4x: not more
    assert not blocks.pairs_disagree(logs, [0.98] * 5, level=0.999)  # 16.7 < 18.5
    assert not blocks.pairs_disagree(logs, [0.98] * 4 + [None])  # a round without windows: nothing to compare
    assert blocks.pairs_disagree([-1.0, 0.0, 1.0], [0.1] * 3)  # three rounds are enough
    assert blocks.pairs_disagree([-1.0, 0.0, 1.0], [0.0] * 3)  # no spread within: any spread between
    assert not blocks.pairs_disagree([0.5, 0.5, 0.5], [0.0] * 3)
