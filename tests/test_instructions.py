"""The instruction-count rule: a tolerance, not a significance test; and where time and instructions disagree."""

import pytest

from benchbench.analysis.compare import Change, Row
from benchbench.errors import UserError
from benchbench.metrics.instructions import check_tolerance, classify_counts, disagreement, disagreements
from benchbench.model.report import CaseKey

BASE = [100_000.0, 100_010.0, 99_995.0]  # jitter 0.015%


@pytest.mark.parametrize("factor, verdict", [
    (1.0, "same"), (1.004, "same"), (0.996, "same"),  # inside 0.5%
    (1.02, "slower"), (1.0051, "slower"), (0.98, "faster"), (0.994, "faster"),
])
def test_a_change_beyond_the_tolerance_is_real(factor, verdict):
    c = classify_counts(BASE, [x * factor for x in BASE], tolerance=0.005)
    assert c.verdict == verdict
    assert c.ratio == pytest.approx(factor)
    assert c.low <= c.ratio <= c.high


def test_the_tolerance_is_the_callers():
    other = [x * 1.02 for x in BASE]
    assert classify_counts(BASE, other, tolerance=0.03).verdict == "same"
    assert classify_counts(BASE, other, tolerance=0.01).verdict == "slower"


def test_a_change_whose_repeats_overlap_the_baseline_is_noisy_not_a_change():
    jittery = [97_000.0, 103_500.0, 100_000.0]  # 6.5% between repeats
    c = classify_counts(BASE, [x * 1.02 for x in jittery], tolerance=0.005)
    assert c.verdict == "noisy" and c.jitter == pytest.approx(0.065, rel=1e-2) and c.low < 1.0
    assert classify_counts([x * 1.02 for x in jittery], BASE, tolerance=0.005).verdict == "noisy"
    # one warming-up repeat on each side moves neither median: same
    assert classify_counts([97_000.0, 100_000.0, 100_010.0], [96_900.0, 100_005.0, 100_000.0]).verdict == "same"
    # separated ranges: a real change even with some jitter
    assert classify_counts([99_000.0, 100_000.0, 100_400.0], [101_500.0, 102_000.0, 102_300.0]).verdict == "slower"


def test_one_count_per_side_is_enough():
    assert classify_counts([1000.0], [1030.0]).verdict == "slower"
    with pytest.raises(ValueError):
        classify_counts([], [1.0])


def test_check_tolerance():
    assert check_tolerance(0.005) == 0.005
    for bad in (0.0, -0.1, 1.0):
        with pytest.raises(UserError, match="between 0% and 100%"):
            check_tolerance(bad)


@pytest.mark.parametrize("time_v, instr_v, expected", [
    ("same", "slower", ("flat", "up", "instructions-only")),
    ("slower", "same", ("up", "flat", "time-only")),
    ("faster", "same", ("down", "flat", "time-only")),
    ("same", "faster", ("flat", "down", "instructions-only")),
    ("slower", "faster", ("up", "down", "opposite")),
    ("slower", "slower", None), ("same", "same", None),
    ("noisy", "slower", None),  # a noisy time cannot disagree
    ("slower", "noisy", None), ("incomparable", "slower", None), (None, "slower", None),
])
def test_disagreement(time_v, instr_v, expected):
    ratios = {"slower": 1.10, "faster": 0.9, "same": 1.0, "noisy": 1.0}
    found = disagreement(time_v, instr_v, ratios.get(time_v), {"slower": 1.02, "faster": 0.98}.get(instr_v, 1.0))
    if expected is None:
        assert found is None
    else:
        assert (found.time, found.instructions, found.kind) == expected
        assert found.time_ratio == ratios[time_v]


def test_disagreements_match_rows_by_key():
    a, b, c = (CaseKey.make("s", n) for n in "abc")

    def row(key, verdict, ratio):
        return Row(key, None, None, verdict, Change(ratio, ratio, ratio, 1.0, None, 0.0, 3, 3))

    time_rows = [row(a, "slower", 1.2), row(b, "same", 1.0), row(c, "same", 1.0)]
    instr_rows = [row(a, "same", 1.0), row(b, "same", 1.001)]
    found = disagreements(time_rows, instr_rows)
    assert [d.key for d in found] == [a]
    assert (found[0].kind, found[0].time_ratio, found[0].instructions_ratio) == ("time-only", 1.2, 1.0)
    assert found[0].to_dict()["case"] == a.label and found[0].to_dict()["kind"] == "time-only"
