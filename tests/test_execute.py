"""Running one case in-process: statuses, first call apart from samples, output checks, memory."""


import pytest
import torch
from fakes import FakeBackend, FakeClock, FakeTimer

from benchbench import Case, Skip, api, benchmark
from benchbench.measure.backends import get
from benchbench.measure.engine import PROFILES, Budget, Measurement
from benchbench.model.report import CaseKey
from benchbench.run.execute import error_reason, run_case

TINY = Budget(warmup_calls=2, warmup_min_s=0.0, warmup_max_s=0.5, block_min_s=0.0005, min_samples=5,
              max_samples=20, max_time_s=0.2, target_rel_ci=0.05, timeout_s=60)


def key(name="b", **kw):
    return CaseKey.make("t", name, kw.pop("params", {}), kw.pop("backend", "cpu"), kw.pop("dtype", None))


def fake_backend(per_call=lambda i: 1e-3):
    clock = FakeClock()
    return FakeBackend(timer=FakeTimer(clock, per_call)), clock


def test_ok_case_has_samples_stats_work_and_rates():
    @benchmark(params={"n": [8]})
    def b(ctx, n):
        return Case(lambda: None, items=n, flops=100.0, bytes=50.0, items_unit="rows")

    be, clock = fake_backend()
    r = run_case(b, key(params={"n": 8}), be, TINY, clock=clock)
    assert r.status == "ok" and r.timing_method == "fake"
    assert r.stats.median == pytest.approx(1e-3)
    assert r.work == {"items": 8.0, "flops": 100.0, "bytes": 50.0, "items_unit": "rows"}
    assert r.derived() == pytest.approx({"items_per_s": 8000.0, "flops_per_s": 1e5, "bytes_per_s": 5e4})
    assert r.definition_hash == b.definition_hash


def test_first_call_is_timed_apart_and_never_in_the_samples(monkeypatch):
    clock = FakeClock()
    calls = []

    @benchmark
    def slow_first(ctx):
        def fn():
            calls.append(1)
            clock.t += 0.3 if len(calls) == 1 else 1e-3  # e.g. compilation on the first call
            return torch.ones(2)
        return Case(fn)

    monkeypatch.setattr(api.time, "perf_counter", clock)  # what Context.time_once reads
    backend = FakeBackend(timer=FakeTimer(clock, lambda i: 1e-3))
    r = run_case(slow_first, key(), backend, TINY, clock=clock)
    assert r.status == "ok"
    assert r.first_call_s == pytest.approx(0.3)
    assert r.samples and r.samples == pytest.approx([1e-3] * len(r.samples))
    assert r.warmup["calls"] >= TINY.warmup_calls and backend.fake_timer.calls >= TINY.warmup_calls + len(r.samples)


def test_skip_and_declared_backends_and_dtypes():
    @benchmark(backends=("cuda",))
    def gpu(ctx):
        return Case(lambda: None)

    @benchmark
    def skipper(ctx):
        raise Skip("float16 is too slow here")

    @benchmark(dtypes=["float16"])
    def typed(ctx):
        return Case(lambda: None)

    be, _ = fake_backend()
    assert run_case(gpu, key(), be, TINY).reason == "gpu runs on cuda only"
    r = run_case(skipper, key(), be, TINY)
    assert (r.status, r.reason) == ("skipped", "float16 is too slow here")
    be.dtype_reasons = {"float16": "no float16 here"}
    r = run_case(typed, key(dtype="float16"), be, TINY)
    assert (r.status, r.reason) == ("skipped", "no float16 here")


def test_exceptions_become_failed_results_with_one_line_reason():
    @benchmark
    def boom(ctx):
        raise ValueError("bad shape\nmore detail")

    @benchmark
    def wrong_return(ctx):
        return lambda: None

    be, _ = fake_backend()
    r = run_case(boom, key(), be, TINY)
    assert r.status == "failed" and r.reason == "ValueError: bad shape"
    assert "ValueError" in r.details
    r = run_case(wrong_return, key(), be, TINY)
    assert r.status == "failed" and "expected benchbench.Case" in r.reason


def test_out_of_memory_is_named():
    assert error_reason(MemoryError()).startswith("out of memory")
    assert error_reason(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")).startswith("out of memory")
    assert error_reason(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried")).startswith("out of")
    assert error_reason(KeyError("x")) == "KeyError: 'x'"


def test_nonfinite_output_is_flagged():
    @benchmark
    def nan(ctx):
        x = torch.tensor([1.0, float("nan")])
        return Case(lambda: x * 1)

    r = run_case(nan, key(), fake_backend()[0], TINY)
    assert r.status == "ok" and "nonfinite-output" in r.flags


def test_finish_hook_and_case_metrics_are_kept():
    @benchmark
    def extra(ctx):
        return Case(lambda: None, metrics={"compile_s": 2.0}, finish=lambda: {"recompiles": 0})

    r = run_case(extra, key(), fake_backend()[0], TINY)
    assert r.metrics["compile_s"] == 2.0 and r.metrics["recompiles"] == 0


def test_unavailable_backend_skips():
    from benchbench.measure.backends import Backend

    @benchmark
    def b(ctx):
        return Case(lambda: None)

    r = run_case(b, key(backend="cuda"), Backend("cuda", False, "no NVIDIA driver found"), TINY)
    assert r.status == "skipped" and "no NVIDIA driver found" in r.reason


def test_real_cpu_case_records_peak_memory():
    @benchmark
    def alloc(ctx):
        x = torch.ones(2**20)
        return Case(lambda: x.clone(), bytes=2 * 4 * 2**20)

    r = run_case(alloc, key(), get("cpu"), PROFILES["quick"].budget)
    assert r.status == "ok" and r.peak_memory_bytes > 4 * 2**20
    assert r.memory_kind in ("rss-peak", "rss")


def test_a_benchmark_may_bring_its_own_samples():
    @benchmark
    def external(ctx):
        return Case(None, samples=[0.002, 0.003, 0.001], timing_method="rank0-perf_counter", items=4)

    r = run_case(external, key(), fake_backend()[0], TINY)
    assert r.status == "ok" and r.samples == [0.002, 0.003, 0.001]
    assert r.timing_method == "rank0-perf_counter" and r.stats.median == 0.002
    with pytest.raises(ValueError, match="needs fn"):
        Case(None)


def test_what_a_case_declares_reaches_its_result_as_typed_fields():
    @benchmark
    def declared(ctx):
        return Case(None, samples=[0.002, 0.003], round_statistic="median", bound="link", world_size=2, nnodes=1,
                    note="two ranks", metrics={"busbw_GBps": 1.5})

    r = run_case(declared, key(), fake_backend()[0], TINY)
    assert (r.round_statistic, r.bound, r.world_size, r.nnodes, r.note) == ("median", "link", 2, 1, "two ranks")
    assert r.metrics["busbw_GBps"] == 1.5 and not {"bound", "note", "memory_kind"} & set(r.metrics)


def test_a_case_that_puts_a_typed_field_among_its_metrics_is_refused():
    with pytest.raises(ValueError, match="pass bound=, note= as a keyword of Case"):
        Case(lambda: None, metrics={"bound": "compute", "note": "x", "compile_s": 1.0})


class FakeCounter:
    """Stands in for benchbench.measure.callgrind.Collector: counts 'instructions' as calls x 100."""

    method = "callgrind-instructions"

    def measure(self, fn, on_phase=None):
        on_phase("count")
        for _ in range(3):
            fn()
        return (Measurement(samples=[300.0, 301.0], loops=3, warmup_calls=1, warmup_s=0.0, overhead_s=0.0,
                            stopped="repeats"), {"instructions": {"calls_per_region": 3}, "stopped": "repeats"})


def test_with_a_counter_the_case_is_counted_after_setup_and_first_call_not_timed():
    calls = []

    @benchmark
    def b(ctx):
        calls.append("setup")
        return Case(lambda: calls.append("call"), items=4)

    be, clock = fake_backend()
    phases = []
    r = run_case(b, key(), be, TINY, clock=clock, counter=FakeCounter(), on_phase=phases.append)
    assert r.status == "ok" and r.timing_method == "callgrind-instructions"
    assert calls == ["setup", "call", "call", "call", "call"]  # setup, the first call, then the counter's
    assert phases == ["setup", "first-call", "count"]
    assert r.samples == [300.0, 301.0] and r.loops_per_sample == 3
    assert r.work == {} and r.derived() == {}  # no per-second rates from instruction counts
    assert r.metrics["instructions"] == {"calls_per_region": 3} and "overhead_s" not in r.metrics
    assert r.flags == []  # timing health flags do not apply


def test_a_self_timed_case_is_skipped_when_counting_instructions():
    @benchmark
    def external(ctx):
        return Case(None, samples=[1e-3, 1e-3], timing_method="perf_counter")

    be, clock = fake_backend()
    r = run_case(external, key(), be, TINY, clock=clock, counter=FakeCounter())
    assert r.status == "skipped" and "times itself" in r.reason


def test_a_skip_raised_while_timing_is_a_skip_not_a_failure():
    from benchbench import Skip as SkipCase

    calls = []

    @benchmark()
    def late(ctx):
        def fn():
            calls.append(1)
            if len(calls) > 3:
                raise SkipCase("not on this machine after all")
        return Case(fn)

    r = run_case(late, key("late"), get("cpu"), TINY)  # a real timer: the fake one never calls fn
    assert r.status == "skipped" and r.reason == "not on this machine after all"


def test_a_compiled_case_gets_its_benchmarks_compile_repeats_else_its_profiles():
    seen = []

    def setup(ctx):
        seen.append(ctx.compile_repeats)
        return Case(lambda: None)

    backend, _ = fake_backend()
    for bench, profile in ((benchmark(setup), "quick"), (benchmark(setup, compile_repeats=5), "quick"),
                           (benchmark(setup), "not-a-profile")):
        run_case(bench, key(), backend, TINY, profile=profile)
    assert seen == [PROFILES["quick"].compile_repeats, 5, 1]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="compile_repeats must be a positive integer"):
            benchmark(setup, compile_repeats=bad)
