import json

import pytest
from conftest import run_cli
from test_cli import TINY_SUITE
from test_history import RUNS, make_report, planted

from benchbench.analysis import history as hs
from benchbench.model.report import load, save


def test_history_command_names_the_slowdown_and_the_environment_change(tmp_path):
    for i in range(1, RUNS + 1):
        save(planted(i), tmp_path / f"{i:02d}.json")
    page = tmp_path / "out" / "history.html"
    proc = run_cli("history", str(tmp_path), "--format", "json", "--html", str(page), check_rc=0)
    doc = json.loads(proc.stdout)
    changes = {s["key"]["benchmark"]: s["changes"] for s in doc["series"]}
    assert [(c["run"]["run_id"], c["cause"]) for c in changes["matmul"]] == [("run05", "code or unknown")]
    assert [(c["run"]["run_id"], c["cause"], c["keys"]) for c in changes["add"]] == [
        ("run10", "environment change", ["torch"])]
    assert page.read_text().count("<svg") == 3
    proc = run_cli("history", str(tmp_path), "--benchmark", "*matmul*", check_rc=0)
    assert "run 5 " in proc.stdout and "add" not in proc.stdout


def test_history_reads_the_index_and_rejects_bad_input(tmp_path):
    for i in range(1, 4):
        hs.append(make_report(i), tmp_path)
    proc = run_cli("history", str(tmp_path), "--format", "markdown", check_rc=0)
    assert proc.stdout.startswith(f"## History of {tmp_path}") and "3 runs" in proc.stdout
    proc = run_cli("history", str(tmp_path / "missing"), check_rc=2)
    assert proc.stderr.count("\n") == 1 and "not a folder" in proc.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no benchbench reports" in run_cli("history", str(empty), check_rc=2).stderr
    assert "--max-pvalue" in run_cli("history", str(tmp_path), "--max-pvalue", "2", check_rc=2).stderr


@pytest.mark.slow
def test_run_history_appends_one_line_per_run(write_suite, tmp_path):
    suite = write_suite(TINY_SUITE)
    for i in (1, 2):
        run_cli("run", "--suite-path", str(suite), "--backend", "cpu", "--profile", "quick", "-q", "--filter", r"n=16",
                "-o", str(tmp_path / f"r{i}.json"), "--history", str(tmp_path / "hist"), check_rc=0)
    lines = (tmp_path / "hist" / hs.INDEX).read_text().splitlines()
    assert [json.loads(ln)["run_id"] for ln in lines] == [load(tmp_path / f"r{i}.json").run_id for i in (1, 2)]
    proc = run_cli("history", str(tmp_path / "hist"), "--format", "json", check_rc=0)
    by_metric = {s["metric"]: s for s in json.loads(proc.stdout)["series"]}
    assert set(by_metric) <= {"time", "memory"}  # one case; its peak memory beside its time
    series = by_metric["time"]
    assert [p["status"] for p in series["points"]] == ["ok", "ok"] and "need at least" in series["note"]
