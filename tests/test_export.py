"""export.py and frame.py: pytest-benchmark JSON both ways, loading either format, renderers, DataFrames."""

import csv
import io
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from test_compare import make_report, result

from benchbench.compare import compare
from benchbench.errors import ReportError
from benchbench.export import (
    comparison_csv,
    comparison_json,
    comparison_text,
    from_pytest_benchmark,
    load_any,
    pytest_benchmark_json,
    to_pytest_benchmark,
)
from benchbench.frame import compare_frame, comparison_frame, report_frame, samples_frame
from benchbench.report import CaseKey, dumps, load, save

DATA = Path(__file__).parent / "data"
PB_BASE, PB_CURRENT, PB_NODATA = (DATA / f"pytest_benchmark_{n}.json" for n in ("base", "current", "nodata"))
GOLDEN = DATA / "report_v1.json"


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
        assert r.metrics["imported_stats"]["n"] > 0 and r.metrics["imported_stats"]["median"] > 0


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


@pytest.mark.parametrize("content, message", [
    ('{"results": []}', "neither a benchbench report"),
    ('[1, 2]', "neither a benchbench report"),
    ('{"machine_info": {}, "benchmarks": [{"name": "x"}]}', "malformed pytest-benchmark file"),
    ('{"schema": "benchbench.report", "schema_version": 99}', "newer benchbench"),
])
def test_load_any_rejects_other_files_in_one_line(tmp_path, content, message):
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(ReportError, match=message) as exc:
        load_any(path)
    assert "\n" not in str(exc.value)


def test_load_any_reads_benchbench_reports():
    assert dumps(load_any(GOLDEN)) == dumps(load(GOLDEN))


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


# --- comparison renderers -------------------------------------------------------------------------------------
def pb_comparison():
    return compare([load_any(PB_BASE), load_any(PB_CURRENT), load_any(PB_NODATA)], ["base", "current", "nodata"])


def test_comparison_csv_has_one_row_per_key_and_report():
    rows = list(csv.DictReader(io.StringIO(comparison_csv(pb_comparison()))))
    assert len(rows) == 6 and {r["other"] for r in rows} == {"current", "nodata"}
    nodata = [r for r in rows if r["other"] == "nodata"]
    assert all(r["p_value"] == "" and r["flags"] == "no-samples" for r in nodata)
    assert all(float(r["ratio_ci_low"]) <= float(r["ratio"]) <= float(r["ratio_ci_high"]) for r in rows)


def test_comparison_json_and_text():
    comp = pb_comparison()
    doc = json.loads(comparison_json(comp))
    assert doc["base"] == "base" and doc["others"] == ["current", "nodata"]
    assert set(doc["geomeans"]["current"]) == {"overall", "pytest-benchmark", "strings"}
    text = comparison_text(comp)
    assert "geometric mean time ratio" in text and "strings/test_join cpu" in text
    md = comparison_text(comp, "github").splitlines()
    assert md[0].startswith("| case") and md[1].startswith("|---")
    assert "- current vs base: geometric mean" in "\n".join(md) and "  - strings:" in "\n".join(md)


def test_environment_differences_are_listed_above_the_table():
    k = CaseKey.make("ops", "mm")
    a = make_report([result(k, [1.0] * 6)])
    b = make_report([result(k, [0.5] * 6)], {"torch": "2.14.1", "cpu": "Apple M3", "threads": 2, "hostname": "b"})
    text = comparison_text(compare([a, b], ["a", "b"]))
    first = text.splitlines()
    assert first[0] == "Environment differences:"
    assert "cpu: AMD EPYC (a) vs Apple M3 (b)" in first[1] and "incomparable" in first[1]
    assert "2.00x faster" in text


# --- pandas ---------------------------------------------------------------------------------------------------
def test_report_frame_from_the_golden_report():
    rep = load(GOLDEN)
    df = rep.to_frame()
    assert len(df) == len(rep.results)
    ok = [r for r in sorted(rep.results, key=lambda r: r.key.sort_key())]
    assert list(df["median_s"]) == pytest.approx([r.stats.median for r in ok])
    assert "param_n" in df.columns or "param_numel" in df.columns
    assert df["median_s"].dtype.kind == "f"


def test_report_frame_uses_imported_statistics_and_samples_frame_is_long():
    rep = load_any(PB_NODATA)
    df = report_frame(rep)
    assert df["median_s"].notna().all() and (df["n"] > 0).all()
    assert samples_frame(rep).empty
    base = load_any(PB_BASE)
    assert len(samples_frame(base)) == sum(len(r.samples) for r in base.results)
    assert list(report_frame(make_report([])).columns)[:3] == ["suite", "benchmark", "params"]


def test_comparison_frame_matches_the_comparison(tmp_path):
    comp = pb_comparison()
    df = comp.to_frame()
    assert len(df) == 6
    current = df[df["other"] == "current"].set_index("benchmark")
    row = next(r for r in comp.pairs[0].rows if r.key.benchmark == "test_join")
    assert current.loc["test_join", "ratio"] == pytest.approx(row.change.ratio)
    assert current.loc["test_join", "verdict"] == row.verdict
    save(load(GOLDEN), tmp_path / "g.json")
    df2 = compare_frame(tmp_path / "g.json", GOLDEN)
    assert (df2["ratio"] == 1.0).all() and (df2["p_value"] == 1.0).all()
    assert comparison_frame(comp).equals(df)


def test_package_load_reads_pytest_benchmark_files_too():
    import benchbench

    report = benchbench.load(str(Path(__file__).parent / "data" / "pytest_benchmark_base.json"))
    assert report.results and all(r.key.suite for r in report.results)
