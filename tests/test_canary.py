import pytest

from benchbench.canary import drift_lines, measure_canary, speed_ratio

A = {"python_loop_s": 8e-6, "torch_dispatch_s": 1.5e-6}


def slower(factor):
    return {k: v * factor for k, v in A.items()}


def test_speed_ratio_is_the_geometric_mean_of_the_workloads():
    assert speed_ratio(A, slower(2.0)) == pytest.approx(2.0)
    assert speed_ratio(A, {"python_loop_s": 16e-6, "torch_dispatch_s": 1.5e-6}) == pytest.approx(2**0.5)
    assert speed_ratio(None, A) is None and speed_ratio(A, {}) is None


def test_drift_lines_name_a_slower_machine_and_a_run_that_drifted():
    base = {"canary": {"start": A, "end": A}}
    same = {"canary": {"start": slower(1.03), "end": slower(1.02)}}
    assert drift_lines("a", base, [("b", same)]) == []
    busy = {"canary": {"start": slower(1.96), "end": slower(1.9)}}
    (line,) = drift_lines("a", base, [("b", busy)])
    assert "1.96x as long in b than in a" in line
    drifted = {"canary": {"start": A, "end": slower(1.5)}}
    (line,) = drift_lines("a", base, [("c", drifted)])
    assert line.startswith("c: the machine's speed changed during the run (canary 1.50x")
    assert drift_lines("a", {}, [("b", {})]) == []  # reports without a canary: nothing to say


def test_measure_canary_times_both_workloads():
    c = measure_canary()
    assert set(c) == {"python_loop_s", "torch_dispatch_s"}
    assert all(0 < v < 0.01 for v in c.values())
