import pytest

from benchbench.analysis.canary import run_canary, speed_ratio
from benchbench.measure.canary import measure_canary

A = {"python_loop_s": 8e-6, "torch_dispatch_s": 1.5e-6}


def slower(factor):
    return {k: v * factor for k, v in A.items()}


def test_speed_ratio_is_the_geometric_mean_of_the_workloads():
    assert speed_ratio(A, slower(2.0)) == pytest.approx(2.0)
    assert speed_ratio(A, {"python_loop_s": 16e-6, "torch_dispatch_s": 1.5e-6}) == pytest.approx(2**0.5)
    assert speed_ratio(None, A) is None and speed_ratio(A, {}) is None


def test_run_canary_reads_a_reports_canary_or_none():
    env = {"canary": {"start": A, "end": "garbled"}}
    assert run_canary(env, "start") == A
    assert run_canary(env, "end") is None and run_canary({}, "start") is None


def test_measure_canary_times_both_workloads():
    c = measure_canary()
    assert set(c) == {"python_loop_s", "torch_dispatch_s"}
    assert all(0 < v < 0.01 for v in c.values())
