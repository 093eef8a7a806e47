"""End-to-end CLI tests on the CPU, run as a user would: `python -m benchbench ...`."""

import json
import os
from pathlib import Path

import pytest
from conftest import run_cli

from benchbench.measure.backends import get
from benchbench.model.report import load, parse
from benchbench.run import registry
from benchbench.run.runner import plan

CUDA_USABLE = get("cuda").available

TINY_SUITE = '''
import torch
from benchbench import Case, benchmark

@benchmark(params={"n": [16, 32]})
def add(ctx, n):
    x = torch.ones(n)
    return Case(lambda: x + x, items=n, bytes=3 * 4 * n)
'''


def one_line_error(proc):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_version_and_help():
    assert run_cli("--version", check_rc=0).stdout.startswith("benchbench ")
    out = run_cli("--help", check_rc=0).stdout
    for cmd in ("run", "list", "show", "validate"):
        assert cmd in out


def test_list_shows_builtin_suites():
    out = run_cli("list", check_rc=0).stdout
    assert "tensor_ops" in out and "matmul" in out
    data = json.loads(run_cli("list", "--json", check_rc=0).stdout)
    assert any(s["suite"] == "tensor_ops" for s in data)


@pytest.mark.slow
def test_run_builtin_suite_writes_a_complete_report(tmp_path):
    out = tmp_path / "r.json"
    proc = run_cli("run", "--suite", "tensor_ops", "--profile", "quick", "--filter", r"add\[", "--label", "ci",
                   "--backend", "cpu", "-o", str(out), check_rc=0)
    assert "report:" in proc.stdout and str(out) in proc.stdout
    report = load(out)
    assert report.label == "ci" and report.profile == "quick" and not report.partial
    assert report.environment["fingerprint"]["torch"]
    assert set(report.environment["canary"]) == {"start", "end"}
    assert report.results
    for r in report.results:
        assert r.status == "ok" and r.samples and r.stats.n == len(r.samples) and r.timing_method
    assert parse(json.loads(out.read_text())) == report


@pytest.mark.slow
def test_user_suite_default_path_json_and_show(write_suite, tmp_path):
    suite = write_suite(TINY_SUITE)
    proc = run_cli("run", "--suite-path", str(suite), "--profile", "quick", "--backend", "cpu", "--json", "-q",
                   cwd=tmp_path, check_rc=0)
    doc = json.loads(proc.stdout)
    assert {r["key"]["suite"] for r in doc["results"]} == {"user_suite"}
    files = list((tmp_path / "reports").glob("*.json"))
    assert len(files) == 1
    report = load(files[0])
    assert len(report.results) == 2
    csv_out = run_cli("show", str(files[0]), "--format", "csv", check_rc=0).stdout
    assert csv_out.splitlines()[0].startswith("suite,benchmark,params")
    assert len(csv_out.splitlines()) == 3
    md = run_cli("show", str(files[0]), "--format", "markdown", check_rc=0).stdout
    assert "| case" in md and "user_suite/add[n=16]" in md


@pytest.mark.parametrize("args, message", [
    (["run", "--suite", "nope"], "unknown suite nope"),
    (["run", "--filter", "("], "invalid regular expression"),
    (["run", "--filter", "matches-nothing-at-all"], "no cases to run"),
    pytest.param(["run", "--backend", "cuda"], "backend cuda is not usable here",
                 marks=pytest.mark.skipif(CUDA_USABLE, reason="this machine has a usable CUDA GPU")),
    (["run", "--backend", "tpu"], "unknown backend"),
    (["run", "--profile", "turbo"], "invalid choice"),
    (["run", "--suite-path", "/no/such/file.py"], "no such file or folder"),
    (["frobnicate"], "invalid choice"),
])
def test_usage_errors_are_one_line_exit_2(args, message):
    assert message in one_line_error(run_cli(*args))


@pytest.mark.parametrize("content, message", [
    ('{"schema": "benchbench.report", "schema_version": 1, "res', "not valid JSON"),
    ('{"some": "other json"}', "neither a benchbench report"),
    ('{"schema": "benchbench.report", "schema_version": 7, "run_id": "x", "created_at": "y"}', "newer benchbench"),
])
def test_bad_report_files_are_one_line_exit_2(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert message in one_line_error(run_cli("show", str(path)))


def _unwritable(tmp_path, how):
    if how == "parent is a file":
        (tmp_path / "a_file").write_text("x")
        return tmp_path / "a_file" / "report.json"
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        return locked / "report.json"
    return Path("/proc/benchbench-report.json")  # not writable by root either


@pytest.mark.parametrize("how", ["parent is a file", "no permission"])
def test_run_to_an_unwritable_path_fails_before_measuring(write_suite, tmp_path, how):
    out = _unwritable(tmp_path, how)
    line = one_line_error(run_cli("run", "--suite-path", str(write_suite(TINY_SUITE)), "--quick", "-o", str(out)))
    assert line.startswith(f"benchbench: error: cannot write the report to {out}")


def test_missing_report_file(tmp_path):
    assert "no such file" in one_line_error(run_cli("show", str(tmp_path / "missing.json")))


def test_overview_covers_every_builtin_suite():
    suites = registry.discover()
    cases = plan(suites, [get("cpu")], "quick", overview=True)
    assert {c.key.suite for c in cases} == {s.name for s in suites}
    assert len(cases) <= 20  # a short overview, not a full run


ROUNDS_SUITE = '''
import torch
from benchbench import Case, benchmark

@benchmark(params={"n": [16, 32, 64]})
def add(ctx, n):
    x = torch.ones(n)
    return Case(lambda: x + x, items=n)

@benchmark(rounds=1)
def costly(ctx):
    x = torch.ones(8)
    return Case(lambda: x * 2)
'''


@pytest.mark.slow
def test_rounds_are_fresh_processes_in_seeded_shuffled_orders(write_suite, tmp_path):
    suite = write_suite(ROUNDS_SUITE, "rounds_suite.py")
    out = tmp_path / "r.json"
    run_cli("run", "--suite-path", str(suite), "--backend", "cpu", "--profile", "quick", "--rounds", "3", "--seed", "11", "-q",
            "-o", str(out), check_rc=0)
    report = load(out)
    assert [r["round"] for r in report.rounds] == [0, 1, 2] and len({r["seed"] for r in report.rounds}) == 3
    adds = [r for r in report.results if r.key.benchmark == "add"]
    assert len(adds) == 3 and all(r.n_rounds == 3 and r.stats.rounds == 3 for r in adds)
    # every round visits the cases in its own order, recorded as each case's position
    orders = [tuple(r.rounds[i]["position"] for r in adds) for i in range(3)]
    assert all(len(set(o)) == 3 and set(o) <= {0, 1, 2, 3} for o in orders)
    assert len(set(orders)) > 1
    costly = next(r for r in report.results if r.key.benchmark == "costly")
    assert costly.ok and costly.n_rounds == 1  # its benchmark allows one round only
    # the same seed gives the same orders
    out2 = tmp_path / "r2.json"
    run_cli("run", "--suite-path", str(suite), "--backend", "cpu", "--profile", "quick", "--rounds", "3", "--seed", "11", "-q",
            "-o", str(out2), check_rc=0)
    again = [r for r in load(out2).results if r.key.benchmark == "add"]
    assert [tuple(r.rounds[i]["position"] for r in again) for i in range(3)] == orders


def test_run_history_that_is_a_file_is_refused_before_the_run(write_suite, tmp_path):
    suite = write_suite(TINY_SUITE)
    history_file = tmp_path / "history.jsonl"
    history_file.write_text("")
    out = tmp_path / "r.json"
    proc = run_cli("run", "--suite-path", str(suite), "--backend", "cpu", "--history", str(history_file),
                   "-o", str(out))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"benchbench: error: --history {history_file}: is a file; give a folder (its history.jsonl holds one "
        "line per run)"]
    assert not out.exists()  # nothing was measured


def test_default_report_names_are_unique(tmp_path):
    from benchbench.run.session import default_path

    first = default_path("x", 1_700_000_000.25, str(tmp_path))
    assert default_path("x", 1_700_000_000.75, str(tmp_path)) != first  # the same second
    first.parent.mkdir(parents=True, exist_ok=True)
    first.write_text("{}")
    again = default_path("x", 1_700_000_000.25, str(tmp_path))  # the same millisecond: a counter
    assert again != first and again.name.endswith("-2.json")
