"""% of the device's measured ceiling: which ceiling a result is held against, and the fraction."""

import pytest

from benchbench.analysis.ceilings import bound, ceiling_fraction, find_ceiling, is_ceiling
from benchbench.model.report import CaseKey, Result


def res(benchmark, median=0.01, suite="tensor_ops", backend="cpu", dtype="float32", status="ok", params=None,
        metrics=None, bound=None, **work):
    """A result whose samples all equal `median` seconds per call, with the given work per call."""
    return Result(key=CaseKey.make(suite, benchmark, params or {}, backend, dtype), status=status,
                  samples=[median] * 5 if status == "ok" else [], work=work, metrics=dict(metrics or {}),
                  bound=bound)


def mm_ceiling(flops_per_s, dtype="float32", backend="cpu", **kw):
    return res("ceiling_matmul", median=1.0, dtype=dtype, backend=backend, flops=flops_per_s, **kw)


def copy_ceiling(bytes_per_s, backend="cpu", **kw):
    return res("ceiling_copy", median=1.0, backend=backend, bytes=bytes_per_s, **kw)


def test_bound_prefers_the_declared_kind_then_infers_from_the_work():
    assert bound(res("m", flops=1.0, bytes=1.0)) == "compute"
    assert bound(res("m", bytes=1.0)) == "memory"
    assert bound(res("m", items=1.0)) is None
    assert bound(res("m", flops=1.0, bytes=1.0, bound="memory")) == "memory"
    assert bound(res("m", bytes=1.0, bound="link")) is None
    assert bound(res("m", items=1.0, bound="overhead")) is None


def test_compute_bound_result_against_the_matmul_ceiling_of_its_dtype():
    ceilings = [mm_ceiling(200e9), mm_ceiling(800e9, dtype="bfloat16"), copy_ceiling(10e9)]
    r = res("matmul", median=0.01, flops=1e9)  # 100 GFLOP/s
    ceiling = find_ceiling(ceilings + [r], r)
    assert ceiling.set_by is ceilings[0] and ceiling.measured is ceilings[0] and not ceiling.raised
    assert ceiling.rate == pytest.approx(200e9) and ceiling.kind == "compute"
    assert ceiling_fraction(ceilings + [r], r) == pytest.approx(0.5)
    r16 = res("matmul", median=0.01, dtype="bfloat16", flops=2e9)  # 200 GFLOP/s of 800
    assert ceiling_fraction(ceilings + [r16], r16) == pytest.approx(0.25)


def test_no_ceiling_of_the_dtype_means_no_fraction():
    r = res("matmul", dtype="float16", flops=1e9)
    assert find_ceiling([mm_ceiling(1e12)], r) is None
    assert ceiling_fraction([mm_ceiling(1e12)], r) is None


def test_a_result_without_dtype_is_held_against_the_float32_ceiling():
    r = res("user_op", suite="mine", dtype=None, median=1.0, flops=50e9)
    assert ceiling_fraction([mm_ceiling(100e9), mm_ceiling(1e15, dtype="bfloat16")], r) == pytest.approx(0.5)


def test_memory_bound_result_against_the_copy_ceiling_in_bytes():
    r = res("add", median=0.1, bytes=3e9, items=1e9)  # 30 GB/s
    assert ceiling_fraction([mm_ceiling(1e12), copy_ceiling(60e9)], r) == pytest.approx(0.5)
    # declared memory-bound: compared by bytes even though FLOPs are declared too
    r2 = res("k", median=1.0, flops=1e12, bytes=15e9, bound="memory")
    assert ceiling_fraction([mm_ceiling(2e12), copy_ceiling(60e9)], r2) == pytest.approx(0.25)


def test_links_and_overheads_have_no_ceiling():
    everything = [mm_ceiling(1e12), copy_ceiling(60e9)]
    assert ceiling_fraction(everything, res("transfer", bytes=1e9, bound="link")) is None
    assert ceiling_fraction(everything, res("dispatch", items=1.0)) is None


def test_only_the_same_backend_counts():
    r = res("matmul", backend="cuda", median=1.0, flops=1e12)
    assert ceiling_fraction([mm_ceiling(2e12, backend="cpu")], r) is None
    assert ceiling_fraction([mm_ceiling(2e12, backend="cpu"), mm_ceiling(4e12, backend="cuda")], r) == 0.25


def test_failed_ceilings_and_failed_results_do_not_count():
    failed = mm_ceiling(1e12, status="failed")
    r = res("matmul", median=1.0, flops=1e11)
    assert ceiling_fraction([failed], r) is None
    assert ceiling_fraction([failed, mm_ceiling(4e11)], r) == 0.25
    skipped = res("matmul", status="skipped", flops=1e9)
    assert ceiling_fraction([mm_ceiling(4e11)], skipped) is None


def test_the_fastest_matching_ceiling_is_the_ceiling_and_a_ceiling_is_at_100_percent():
    slow, fast = mm_ceiling(1e11), mm_ceiling(2e11)
    r = res("matmul", median=1.0, flops=1e11)
    assert find_ceiling([slow, fast, r], r).set_by is fast
    assert ceiling_fraction([slow, fast], fast) == 1.0
    assert ceiling_fraction([slow, fast], slow) == 0.5


def test_ceilings_come_from_the_tensor_ops_suite_only():
    impostor = res("ceiling_matmul", suite="mine", median=1.0, flops=1e9)
    r = res("matmul", median=1.0, flops=1e9)
    assert not is_ceiling(impostor) and is_ceiling(mm_ceiling(1.0)) and is_ceiling(copy_ceiling(1.0))
    assert ceiling_fraction([impostor], r) is None


def test_a_case_that_beats_its_ceiling_raises_it_and_says_so():
    measured = copy_ceiling(60e9)
    fast = res("add_inplace", median=1.0, bytes=90e9)  # e.g. in place: no write-allocate read on a CPU
    slower = res("add", median=1.0, bytes=45e9)
    everything = [measured, fast, slower]
    ceiling = find_ceiling(everything, slower)
    assert ceiling.raised and ceiling.set_by is fast and ceiling.measured is measured
    assert ceiling.rate == pytest.approx(90e9)
    assert ceiling_fraction(everything, fast) == pytest.approx(1.0)
    assert ceiling_fraction(everything, slower) == pytest.approx(0.5)
    assert ceiling_fraction(everything, measured) == pytest.approx(60 / 90)


def test_only_cases_of_the_same_kind_backend_and_dtype_raise_a_ceiling():
    fp32 = mm_ceiling(100e9)
    r = res("matmul", median=1.0, flops=50e9)
    others = [
        res("matmul", median=1.0, flops=400e9, dtype="bfloat16"),  # another dtype's ceiling
        res("matmul", median=1.0, flops=400e9, backend="cuda"),  # another backend
        res("fused", median=1.0, flops=400e9, bytes=1.0, bound="memory"),  # memory-bound
        res("matmul", median=1.0, flops=400e9, status="failed"),  # not ok
    ]
    assert ceiling_fraction([fp32, r, *others], r) == pytest.approx(0.5)
    no_dtype = res("user_op", suite="mine", dtype=None, median=1.0, flops=200e9)  # held as float32
    assert find_ceiling([fp32, r, no_dtype], r).set_by is no_dtype
    assert ceiling_fraction([fp32, r, no_dtype], r) == pytest.approx(0.25)
    # a fast case alone is no ceiling: one is only raised where a ceiling case was measured
    assert find_ceiling([r, no_dtype], r) is None


def test_no_result_shows_more_than_100_percent_of_its_ceiling():
    import random

    rng = random.Random(4)
    results = [mm_ceiling(100e9), copy_ceiling(20e9)]
    for i in range(40):
        if i % 2:
            results.append(res("matmul", params={"n": i}, median=1.0, flops=rng.uniform(10e9, 150e9)))
        else:
            results.append(res("add", params={"n": i}, median=1.0, bytes=rng.uniform(1e9, 40e9)))
    fractions = [ceiling_fraction(results, r) for r in results]
    assert all(f is not None and 0 < f <= 1.0 for f in fractions)
    assert fractions.count(1.0) == 2  # one case sets each ceiling
