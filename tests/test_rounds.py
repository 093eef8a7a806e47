import pytest

from benchbench.report import CaseKey, Result
from benchbench.rounds import merge_round, round_order, side_order

KEY = CaseKey.make("s", "b", {"n": 1})


def ok(samples, **kw):
    return Result(key=KEY, status="ok", samples=samples, loops_per_sample=kw.pop("loops", 1),
                  metrics=kw.pop("metrics", {}), peak_memory_bytes=kw.pop("peak", None), duration_s=1.0, **kw)


def test_round_order_is_seeded_and_differs_between_rounds():
    items = list(range(20))
    a0, a1 = round_order(items, 42, 0), round_order(items, 42, 1)
    assert sorted(a0) == items and a0 == round_order(items, 42, 0)
    assert a0 != a1 and a0 != round_order(items, 43, 0)


def test_sides_alternate_abba():
    assert [side_order(2, r) for r in range(4)] == [[0, 1], [1, 0], [0, 1], [1, 0]]
    assert side_order(1, 3) == [0]


def test_merge_appends_rounds_and_takes_medians_of_numeric_metrics():
    r = merge_round(None, ok([1.0, 1.1], metrics={"compile_s": 3.0, "memory_kind": "rss"}, peak=10), 0, 4)
    r = merge_round(r, ok([2.0, 2.2, 2.1], metrics={"compile_s": 5.0, "memory_kind": "rss"}, peak=30), 1, 0)
    r = merge_round(r, ok([1.5], metrics={"compile_s": 4.0, "memory_kind": "rss"}, peak=20), 2, 7)
    assert r.samples == [1.0, 1.1, 2.0, 2.2, 2.1, 1.5]
    assert r.round_samples == [[1.0, 1.1], [2.0, 2.2, 2.1], [1.5]]
    assert [m["position"] for m in r.rounds] == [4, 0, 7] and [m["round"] for m in r.rounds] == [0, 1, 2]
    assert r.metrics["compile_s"] == 4.0 and r.metrics["memory_kind"] == "rss"
    assert r.peak_memory_bytes == 30 and r.duration_s == pytest.approx(3.0)
    assert r.stats.rounds == 3


def test_a_boolean_metric_is_true_when_any_round_set_it():
    r = merge_round(None, ok([1.0], metrics={"image_set_made": True, "note": "first"}), 0, 0)
    r = merge_round(r, ok([1.1], metrics={"image_set_made": False, "note": "second"}), 1, 0)
    r = merge_round(r, ok([1.2], metrics={"image_set_made": False, "note": "third"}), 2, 0)
    assert r.metrics["image_set_made"] is True and r.metrics["note"] == "third"
    assert [m["metrics"]["image_set_made"] for m in r.rounds] == [True, False, False]
    never = merge_round(merge_round(None, ok([1.0], metrics={"made": False}), 0, 0), ok([1.0], metrics={"made": False}), 1, 0)
    assert never.metrics["made"] is False


def test_a_failed_round_ends_the_case_but_keeps_what_came_before():
    r = merge_round(None, ok([1.0, 1.1]), 0, 0)
    bad = Result(key=KEY, status="timeout", reason="no result within 5 s", duration_s=5.0)
    r = merge_round(r, bad, 1, 3)
    assert r.status == "timeout" and r.reason == "round 2: no result within 5 s"
    assert r.samples == [1.0, 1.1]


def test_statistics_flags_are_recomputed_for_the_merged_result():
    first = ok([1.0, 1.0, 1.0, 1.0], flags=["few-samples", "nonfinite-output"])
    r = merge_round(None, first, 0, 0)
    r = merge_round(r, ok([1.0, 1.0, 1.0, 1.0], flags=["few-samples"]), 1, 0)
    assert "nonfinite-output" in r.flags and "few-samples" not in r.flags  # 8 samples in all


def test_rounds_added_to_a_single_round_result_keep_its_samples():
    old = Result(key=KEY, status="ok", samples=[1.0, 1.2, 1.1])  # e.g. from a version-1 report
    r = merge_round(old, ok([1.3, 1.4]), 1, 0)
    assert r.round_samples == [[1.0, 1.2, 1.1], [1.3, 1.4]] and r.stats.rounds == 2
