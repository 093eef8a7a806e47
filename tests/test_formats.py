"""formats.py: loading any report file benchbench reads, told apart by content."""

from pathlib import Path

import pytest

from benchbench.errors import ReportError
from benchbench.formats import load_any
from benchbench.report import dumps, load

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "report_v1.json"


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


def test_package_load_reads_pytest_benchmark_files_too():
    import benchbench

    report = benchbench.load(str(Path(__file__).parent / "data" / "pytest_benchmark_base.json"))
    assert report.results and all(r.key.suite for r in report.results)
