import pytest

from benchbench.model.report import CaseKey, Result
from benchbench.run.rounds import merge_round, round_order, round_seed, side_order

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
    r = merge_round(None, ok([1.0, 1.1], metrics={"compile_s": 3.0}, memory_kind="rss", peak=10), 0, 4)
    r = merge_round(r, ok([2.0, 2.2, 2.1], metrics={"compile_s": 5.0}, memory_kind="rss", peak=30), 1, 0)
    r = merge_round(r, ok([1.5], metrics={"compile_s": 4.0}, memory_kind="rss", peak=20), 2, 7)
    assert r.samples == [1.0, 1.1, 2.0, 2.2, 2.1, 1.5]
    assert r.round_samples == [[1.0, 1.1], [2.0, 2.2, 2.1], [1.5]]
    assert [m["position"] for m in r.rounds] == [4, 0, 7] and [m["round"] for m in r.rounds] == [0, 1, 2]
    assert r.metrics["compile_s"] == 4.0 and r.memory_kind == "rss"
    assert r.peak_memory_bytes == 30 and r.duration_s == pytest.approx(3.0)
    assert r.stats.rounds == 3


def test_a_boolean_metric_is_true_when_any_round_set_it():
    r = merge_round(None, ok([1.0], metrics={"image_set_made": True}, note="first"), 0, 0)
    r = merge_round(r, ok([1.1], metrics={"image_set_made": False}, note="second"), 1, 0)
    r = merge_round(r, ok([1.2], metrics={"image_set_made": False}, note="third"), 2, 0)
    assert r.metrics["image_set_made"] is True and r.note == "third"
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


def full(samples, loops, peak, duration, metrics, **kw):
    return Result(key=KEY, status="ok", samples=samples, loops_per_sample=loops, timing_method="perf_counter",
                  definition_hash=kw.pop("definition_hash", "h1"), warmup=kw.pop("warmup", {"calls": 3, "seconds": 0.1}),
                  first_call_s=kw.pop("first_call_s", 0.5), work={"items": 2.0}, peak_memory_bytes=peak,
                  duration_s=duration, metrics=metrics, **kw)


def test_merge_keeps_every_field_of_every_round_and_the_first_rounds_warmup():
    one = merge_round(None, full([1.0, 1.1], 4, 100, 1.0, {"x": 1.0, "made": True, "name": "a"}, flags=["custom"]), 0, 3)
    two = merge_round(one, full([1.2], 8, 300, 2.0, {"x": 3.0, "made": False, "name": "b"}, definition_hash="h2",
                                warmup={"calls": 9, "seconds": 0.9}, first_call_s=0.7), 1, 0)
    assert two.rounds == [
        {"round": 0, "position": 3, "n": 2, "loops": 4, "warmup": {"calls": 3, "seconds": 0.1}, "first_call_s": 0.5,
         "peak_memory_bytes": 100, "duration_s": 1.0, "metrics": {"x": 1.0, "made": True}},
        {"round": 1, "position": 0, "n": 1, "loops": 8, "warmup": {"calls": 9, "seconds": 0.9}, "first_call_s": 0.7,
         "peak_memory_bytes": 300, "duration_s": 2.0, "metrics": {"x": 3.0, "made": False}}]
    assert (two.status, two.reason, two.details) == ("ok", None, None)
    assert two.samples == [1.0, 1.1, 1.2] and two.timing_method == "perf_counter" and two.work == {"items": 2.0}
    # the first round stands for the case's calls per sample, warm-up and first call; the last for its code
    assert (two.loops_per_sample, two.warmup, two.first_call_s) == (4, {"calls": 3, "seconds": 0.1}, 0.5)
    assert two.definition_hash == "h2"
    assert two.metrics == {"x": 2.0, "made": True, "name": "b"}  # median, any, the last round's
    assert two.peak_memory_bytes == 300 and two.duration_s == 3.0 and "custom" in two.flags


def test_a_round_that_fails_ends_the_case_with_its_reason_and_keeps_the_samples():
    two = merge_round(merge_round(None, full([1.0], 1, None, 1.0, {}), 0, 0), full([1.1], 1, None, 1.0, {}), 1, 0)
    failed = merge_round(two, Result(key=KEY, status="failed", reason="boom", details="tb", duration_s=0.5), 2, 1)
    assert (failed.status, failed.reason, failed.details) == ("failed", "round 3: boom", "tb")
    assert failed.duration_s == 2.5 and failed.samples == [1.0, 1.1] and len(failed.rounds) == 2
    assert merge_round(two, Result(key=KEY, status="timeout"), 2, 1).reason == "round 3"
    first = Result(key=KEY, status="skipped", reason="needs a GPU")
    assert merge_round(None, first, 0, 0) is first


def test_a_result_without_round_records_counts_as_round_zero():
    """Reports from before rounds were recorded (schema 1) hold one burst of samples and no records."""
    old = Result(key=KEY, status="ok", samples=[1.0, 1.0], loops_per_sample=2)
    merged = merge_round(old, full([3.0], 2, 20, 0.5, {"x": 5.0}), 1, 0)
    assert merged.rounds[0] == {"round": 0, "n": 2, "loops": 2} and merged.rounds[1]["round"] == 1
    assert merged.samples == [1.0, 1.0, 3.0] and merged.metrics["x"] == 5.0


def test_round_seeds_are_integers_fixed_across_versions():
    """A report records its seed; the same seed must give the same orders on any machine and version."""
    assert round_seed(11, 0) == 11 * 1_000_003 and round_seed(11, 2) == 11 * 1_000_003 + 2 * 7919
    assert round_order(list(range(8)), 11, 2) == round_order(list(range(8)), 11, 2)
    assert isinstance(round_seed(2**62, 5), int) and 0 <= round_seed(2**62, 5) < 2**63


def test_merge_edge_values_no_durations_mixed_metrics_and_spread_flags():
    bare = Result(key=KEY, status="ok", samples=[1.0], loops_per_sample=1)  # no duration recorded
    two = merge_round(bare, Result(key=KEY, status="ok", samples=[1.0], loops_per_sample=1), 1, 0)
    assert two.duration_s == 0.0
    assert merge_round(bare, Result(key=KEY, status="failed", reason="x"), 1, 0).duration_s == 0.0
    # a metric that is a flag in one round and a number in another is neither: the last round's value
    mixed = merge_round(merge_round(None, full([1.0], 1, None, 1.0, {"m": True}), 0, 0),
                        full([1.0], 1, None, 1.0, {"m": 2.0}), 1, 0)
    assert mixed.metrics["m"] == 2.0
    # the statistics' own flags are recomputed for the merged samples
    wide = merge_round(merge_round(None, full([1.0] * 5, 1, None, 1.0, {}), 0, 0),
                       full([3.0] * 5, 1, None, 1.0, {}), 1, 0)
    assert "rounds-disagree" in wide.flags or "high-spread" in wide.flags
    assert set(wide.flags) <= {"rounds-disagree", "high-spread", "few-samples"}


def test_a_round_record_keeps_a_list_of_numbers_its_own_repeats():
    r = merge_round(None, ok([1.0], metrics={"compile_runs_s": [4.0, 5.0], "names": ["a"], "none": []}), 0, 0)
    r = merge_round(r, ok([1.1], metrics={"compile_runs_s": [6.0, 7.0, 8.0], "names": ["b"], "none": []}), 1, 0)
    assert [m["metrics"] for m in r.rounds] == [{"compile_runs_s": [4.0, 5.0]}, {"compile_runs_s": [6.0, 7.0, 8.0]}]
    assert r.metrics["compile_runs_s"] == [6.0, 7.0, 8.0]  # the merged result: the last round's, as other lists
