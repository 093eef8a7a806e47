"""output/tables.py: one report as a console, Markdown or CSV table."""

import csv
import io

import pytest
from test_ceilings import mm_ceiling, res

from benchbench.model.report import Report
from benchbench.output.tables import result_rows, results_csv, results_table


def _report(results):
    return Report(run_id="r", created_at="2026-01-01T00:00:00Z", results=results,
                  backends=[{"name": "cpu", "available": True, "peaks": None}])


def test_result_rows_show_percent_of_ceiling_beside_percent_of_peak():
    rows = result_rows(_report([mm_ceiling(200e9), res("matmul", params={"n": 8}, median=0.01, flops=1e9),
                                res("dispatch_overhead", items=1.0)]))
    by_case = {row["case"]: row for row in rows}
    assert by_case["tensor_ops/matmul[n=8]"]["% ceiling"] == "50%"
    assert by_case["tensor_ops/ceiling_matmul"]["% ceiling"] == "100%"
    assert by_case["tensor_ops/dispatch_overhead"]["% ceiling"] == ""
    assert all("% peak" in row for row in rows)


def test_table_has_no_ceiling_column_when_the_report_has_no_ceilings():
    table = results_table(_report([res("matmul", params={"n": 8}, flops=1e9)]))
    assert "% ceiling" not in table
    assert "% ceiling" in results_table(_report([mm_ceiling(1e9), res("matmul", params={"n": 8}, flops=1e9)]))


def test_csv_carries_the_ceiling_fraction():

    text = results_csv(_report([mm_ceiling(200e9), res("matmul", params={"n": 8}, median=0.01, flops=1e9),
                                res("dispatch_overhead", items=1.0)]))
    rows = {r["benchmark"]: r for r in csv.DictReader(io.StringIO(text))}
    assert float(rows["matmul"]["ceiling_fraction"]) == pytest.approx(0.5)
    assert rows["dispatch_overhead"]["ceiling_fraction"] == ""


def test_the_case_that_raised_a_ceiling_says_so_in_the_table():
    rows = result_rows(_report([mm_ceiling(100e9), res("matmul", params={"n": 1024}, median=1.0, flops=123e9),
                                res("matmul", params={"n": 8}, median=1.0, flops=61.5e9)]))
    by_case = {row["case"]: row["% ceiling"] for row in rows}
    assert by_case == {"tensor_ops/ceiling_matmul": "81%", "tensor_ops/matmul[n=1024]": "100% (sets ceiling)",
                       "tensor_ops/matmul[n=8]": "50%"}
