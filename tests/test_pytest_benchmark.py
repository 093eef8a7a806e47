"""pytest_benchmark.py: pytest-benchmark JSON read as reports and reports written as pytest-benchmark JSON."""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from test_compare import make_report, result

from benchbench.analysis.compare import compare
from benchbench.model.formats import load_any
from benchbench.model.pytest_benchmark import (
    from_pytest_benchmark,
    pytest_benchmark_json,
    to_pytest_benchmark,
)
from benchbench.model.report import CaseKey

DATA = Path(__file__).parent / "data"
PB_BASE, PB_NODATA = DATA / "pytest_benchmark_base.json", DATA / "pytest_benchmark_nodata.json"


# --- reading pytest-benchmark files (made by real `pytest --benchmark-json` runs of pb_sample_bench.py) ---
def test_pytest_benchmark_keys_and_samples():
    raw = json.loads(PB_BASE.read_text())
    rep = load_any(PB_BASE)
    by_label = {r.key.label: r for r in rep.results}
    assert set(by_label) == {"pytest-benchmark/test_sum_squares[n=1000] cpu",
                             "pytest-benchmark/test_sum_squares[n=10000] cpu", "strings/test_join cpu"}
    for bench in raw["benchmarks"]:
        res = next(r for r in rep.results if r.key.benchmark == bench["name"].split("[")[0]
                   and r.key.params_dict == (bench["params"] or {}))
        assert res.samples == bench["stats"]["data"]
        assert res.stats.median == pytest.approx(bench["stats"]["median"])
        assert res.loops_per_sample == bench["stats"]["iterations"]
    assert rep.fingerprint["cpu"] == raw["machine_info"]["cpu"]["brand_raw"]
    assert rep.created_at == raw["datetime"]


def test_pytest_benchmark_without_data_keeps_its_statistics_and_says_so():
    raw = json.loads(PB_NODATA.read_text())
    assert all("data" not in b["stats"] for b in raw["benchmarks"])
    rep = load_any(PB_NODATA)
    for r in rep.results:
        assert r.samples == [] and "no-samples" in r.flags
        assert r.imported_stats["n"] > 0 and r.imported_stats["median"] > 0


def test_pytest_benchmark_key_mapping_rules():
    def bench(name, fullname, params=None, group=None):
        return {"name": name, "fullname": fullname, "params": params, "group": group,
                "stats": {"data": [1.0, 1.1, 0.9], "iterations": 1, "rounds": 3, "median": 1.0, "iqr": 0.1}}

    doc = {"machine_info": {}, "version": "5.2.3", "benchmarks": [
        bench("test_mm[cuda:0-64]", "t/a.py::test_mm[cuda:0-64]", {"device": "cuda:0", "n": 64}),
        bench("test_cfg[x]", "t/a.py::test_cfg[x]", {"cfg": {"b": 1, "a": [2]}}),
        bench("test_same", "t/a.py::test_same"), bench("test_same", "t/b.py::test_same"),
    ]}
    keys = [r.key for r in from_pytest_benchmark(doc).results]
    assert keys[0] == CaseKey.make("pytest-benchmark", "test_mm", {"device": "cuda:0", "n": 64}, "cuda")
    assert keys[1].params_dict == {"cfg": '{"a": [2], "b": 1}'}
    assert [k.benchmark for k in keys[2:]] == ["t/a.py::test_same", "t/b.py::test_same"]


# --- writing pytest-benchmark files -------------------------------------------------------------------------
def exportable_report():
    k1 = CaseKey.make("ops", "matmul", {"n": 256}, "cpu", "float32", "eager")
    k2 = CaseKey.make("ops", "add", {}, "cpu")
    return make_report([
        result(k1, [1e-3, 1.1e-3, 0.9e-3, 1.05e-3], definition_hash="sha256:abc", timing_method="perf_counter",
               loops_per_sample=4, work={"flops": 1e6}),
        result(k2, status="failed", reason="boom"),
    ], label="exp")


def test_to_pytest_benchmark_writes_pytest_benchmark_statistics():
    doc = to_pytest_benchmark(exportable_report())
    assert len(doc["benchmarks"]) == 1  # the failed case has no place in the format
    b = doc["benchmarks"][0]
    assert b["name"] == "matmul[n=256-cpu-float32-eager]" and b["group"] == "ops"
    assert b["params"] == {"n": 256, "backend": "cpu", "dtype": "float32", "mode": "eager"}
    st = b["stats"]
    assert st["data"] == [1e-3, 1.1e-3, 0.9e-3, 1.05e-3] and st["rounds"] == 4 and st["iterations"] == 4
    assert st["median"] == pytest.approx(statistics.median(st["data"]))
    assert st["ops"] == pytest.approx(1 / statistics.mean(st["data"]))
    assert b["extra_info"]["flops_per_s"] == pytest.approx(1e6 / st["median"])


def test_round_trip_keeps_keys_samples_and_comparability():
    rep = exportable_report()
    back = from_pytest_benchmark(json.loads(pytest_benchmark_json(rep)))
    orig = rep.results[0]
    got = back.results[0]
    assert (got.key, got.samples, got.definition_hash, got.timing_method) == (
        orig.key, orig.samples, orig.definition_hash, orig.timing_method)
    assert back.fingerprint == rep.fingerprint and back.run_id == rep.run_id
    rows = {r.key.benchmark: r for r in compare([rep, back]).pairs[0].rows}
    assert rows["add"].verdict == "missing"  # failed in the report, so not exported
    assert rows["matmul"].change.ratio == 1.0 and rows["matmul"].change.p_value == 1.0


def test_exported_report_is_read_by_pytest_benchmark_compare(tmp_path):
    base = make_report([result(CaseKey.make("ops", "mm", {"n": n}), [1e-3 * n, 1.1e-3 * n, 0.9e-3 * n])
                        for n in (1, 2)])
    path = tmp_path / "0001_exported.json"
    path.write_text(pytest_benchmark_json(base))
    proc = subprocess.run([sys.executable, "-m", "pytest_benchmark", "compare", str(path), "--columns=median,rounds"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "mm[n=1-cpu]" in proc.stdout and "mm[n=2-cpu]" in proc.stdout
    assert "Median" in proc.stdout and "Rounds" in proc.stdout
