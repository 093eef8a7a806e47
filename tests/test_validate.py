import json

import pytest
from conftest import run_cli

from benchbench.validate import TOLERANCE, OpCheck, clock_resolution


def test_ratio_is_the_median_of_paired_rounds():
    # round 2 hit a burst of load on both engines: pairing cancels it
    check = OpCheck("cpu", "op", benchbench_median_s=2.0, torch_median_s=2.0,
                    benchbench_rounds=[1.0, 5.0, 2.02], torch_rounds=[1.01, 4.9, 2.0])
    assert check.ratio == pytest.approx(1.01)  # median of 0.990, 1.020, 1.010
    assert check.agrees
    off = OpCheck("cpu", "op", 1.2, 1.0, [1.2, 1.3, 1.2], [1.0, 1.0, 1.0])
    assert off.ratio == 1.2 and not off.agrees
    assert TOLERANCE == 0.05


def test_clock_resolution_is_observed():
    res = clock_resolution(samples=2000)
    assert res["declared_s"] > 0 and res["observed_step_s"] > 0


def test_validate_json_gives_both_medians_and_their_ratio():
    proc = run_cli("validate", "--json", "--rounds", "1", "--backend", "cpu", check_rc=0)
    data = json.loads(proc.stdout)
    assert [b["backend"] for b in data["backends"]] == ["cpu"]
    assert data["backends"][0]["sync_cost_s"] > 0
    assert len(data["ops"]) == 3
    for op in data["ops"]:
        assert op["benchbench_median_s"] > 0 and op["torch_median_s"] > 0
        assert op["ratio"] == op["benchbench_median_s"] / op["torch_median_s"]
