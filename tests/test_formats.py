"""formats.py: loading any report file benchbench reads, told apart by content."""

from pathlib import Path

import pytest

from benchbench.errors import ReportError
from benchbench.model.formats import load_any, load_reports
from benchbench.model.report import dumps, load

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "report_v1.json"


@pytest.mark.parametrize("content, message", [
    ('{"results": []}', "neither a benchbench report"),
    ('[1, 2]', "neither a benchbench report"),
    ('{"machine_info": {}, "benchmarks": [{"name": "x"}]}', r"benchmarks\[0\]\.stats: missing"),
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


def test_package_load_reads_pytest_benchmark_files_too():
    import benchbench

    report = benchbench.load(str(Path(__file__).parent / "data" / "pytest_benchmark_base.json"))
    assert report.results and all(r.key.suite for r in report.results)


# --- benchbench pages ---------------------------------------------------------------------------------------
def _page(tmp_path, reports, name="page.html"):
    from benchbench.output.report_html import report_page

    path = tmp_path / name
    path.write_text(report_page(reports, [f"r{i}" for i in range(len(reports))]))
    return path


def test_a_page_of_one_report_loads_back_as_that_report(tmp_path):
    rep = load(GOLDEN)
    back = load_any(_page(tmp_path, [rep]))
    assert dumps(back) == dumps(rep)


def test_a_page_of_several_reports_loads_as_a_list_and_load_any_says_so(tmp_path):
    a, b = load(GOLDEN), load(GOLDEN)
    b.run_id = "other"
    path = _page(tmp_path, [a, b])
    assert [r.run_id for r in load_reports(path)] == [a.run_id, "other"]
    with pytest.raises(ReportError, match="holds 2 reports; read them with benchbench.model.formats.load_reports"):
        load_any(path)


@pytest.mark.parametrize("text, message", [
    ("<!DOCTYPE html><html><body>hello</body></html>", "an HTML file without benchbench data"),
    ('<html><script type="application/json" id="benchbench-data">{"format": "x"}</script></html>',
     "not a benchbench page document"),
    ('<html><script type="application/json" id="benchbench-data">{"format": "benchbench.page", "reports": [{"a": 1}]'
     "</script></html>", "not valid JSON"),
    ('<html><script type="application/json" id="benchbench-data">{"format": "benchbench.page", "reports": []}'
     "</script></html>", "holds no reports"),
    ('<html><script type="application/json" id="benchbench-data">{"format": "benchbench.page", "reports": [{}]}'
     "</script></html>", r"page.html \(report 1\): not a benchbench report"),
])
def test_bad_pages_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "page.html"
    path.write_text(text)
    with pytest.raises(ReportError, match=message) as exc:
        load_reports(path)
    assert "\n" not in str(exc.value)
