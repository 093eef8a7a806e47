"""`benchbench ab` end to end: real worker processes, a real git repository, exit codes, interrupts.

The package under test sleeps: what these tests measure is the harness and the decision, not this
(shared, noisy) machine's speed. A 4x longer sleep must come out as a regression on any machine.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

PKG_V1 = """
import os
import time


def work():
    time.sleep(0.002 * float(os.environ.get("MYPKG_FACTOR", "1")))
"""
PKG_V2 = PKG_V1.replace("0.002", "0.008")  # the newer commit: 4x slower
SUITE = """
from benchbench import Case, benchmark

import mypkg

SUITE = "e2e_ab"


@benchmark
def work(ctx):
    return Case(mypkg.work)
"""
ARGS = ["--suite-path", "bench/suite.py", "--backend", "cpu", "--profile", "quick", "--fail-on", "median:50%"]
FEW = ["--rounds", "2"]  # two paired rounds: t with one degree of freedom still separates 4x from +50%


def git(cwd, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture
def project(tmp_path):
    """A small git repository with a src layout: mypkg gets 4x slower in its second commit."""
    root = tmp_path / "project"
    (root / "src" / "mypkg").mkdir(parents=True)
    (root / "bench").mkdir()
    (root / "src" / "mypkg" / "__init__.py").write_text(PKG_V1)
    (root / "bench" / "suite.py").write_text(SUITE)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "fast")
    (root / "src" / "mypkg" / "__init__.py").write_text(PKG_V2)
    git(root, "commit", "-qam", "slower")
    return root


def src_env(root):
    return {"PYTHONPATH": os.pathsep.join([str(ROOT), str(root / "src")])}


def worktrees(root):
    return git(root, "worktree", "list").strip().splitlines()


@pytest.mark.slow
def test_ab_baseline_ref_catches_the_slower_commit(project, tmp_path):
    proc = run_cli("ab", *ARGS, *FEW, "--baseline-ref", "HEAD~1", "-o", str(tmp_path / "out"), "--summary",
                   str(tmp_path / "summary.md"), "-q", cwd=project, env=src_env(project))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "e2e_ab/work cpu" in proc.stdout and "gate: REGRESSION: 1 regression" in proc.stdout
    base = json.loads((tmp_path / "out" / "baseline.json").read_text())
    cur = json.loads((tmp_path / "out" / "current.json").read_text())
    assert base["side"]["ref"] == "HEAD~1" and base["side"]["name"] == "baseline" and cur["side"]["name"] == "current"
    assert not base["partial"] and not cur["partial"]
    assert [r["seed"] for r in base["rounds"]] == [r["seed"] for r in cur["rounds"]]  # the same rounds
    assert base["results"][0]["definition_hash"] == cur["results"][0]["definition_hash"]
    assert (tmp_path / "summary.md").read_text().startswith("### benchbench ab: ❌ REGRESSION")
    assert len(worktrees(project)) == 1  # the baseline's worktree is gone
    # the stored pair gates the same way: the reports say they were measured together
    again = run_cli("gate", "--baseline", str(tmp_path / "out" / "baseline.json"), str(tmp_path / "out" / "current.json"),
                    "--fail-on", "median:50%", "--json")
    assert again.returncode == 1 and json.loads(again.stdout)["gate"]["paired"] is True


@pytest.mark.slow
def test_ab_baseline_env_catches_a_slowdown(project, tmp_path):
    proc = run_cli("ab", *ARGS, *FEW, "-q", "--json", "--baseline-env", "MYPKG_FACTOR=0.25", "-o", str(tmp_path / "env"),
                   cwd=project, env=src_env(project))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    (case,) = doc["gate"]["cases"]
    assert case["outcome"] == "regression" and case["mde"] is not None and doc["gate"]["paired"] is True
    base = json.loads((tmp_path / "env" / "baseline.json").read_text())
    # a report is shared: a variable not on env's allow-list is stored by name only, in the command line too
    assert base["side"]["env"] == {"MYPKG_FACTOR": "(redacted)"}
    assert "MYPKG_FACTOR=(redacted)" in base["command"] and "MYPKG_FACTOR=0.25" not in json.dumps(base)


def test_ab_refuses_a_baseline_interpreter_without_torch_before_measuring(project, tmp_path):
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'import sys; sys.exit(\"ModuleNotFoundError: No module named torch\")'\n")
    fake.chmod(0o755)
    proc = run_cli("ab", *ARGS, "--baseline-python", str(fake), "-o", str(tmp_path / "out"), cwd=project,
                   env=src_env(project))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"benchbench: error: --baseline-python {fake} cannot import benchbench and torch "
        "(ModuleNotFoundError: No module named torch); install both into that environment"]
    assert not (tmp_path / "out" / "baseline.json").exists()


@pytest.mark.slow
def test_interrupted_ab_keeps_both_partial_reports_and_removes_the_worktree(project, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **src_env(project)}
    proc = subprocess.Popen([sys.executable, "-m", "benchbench", "ab", *ARGS, "--rounds", "30", "--baseline-ref",
                             "HEAD~1", "-o", str(out), "-q"], cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:  # until the first round of the baseline has a result
            try:
                if json.loads((out / "baseline.json").read_text())["results"]:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        else:
            pytest.fail("ab never wrote a result")
        assert len(worktrees(project)) == 2
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert f"partial reports written to {out / 'baseline.json'}, {out / 'current.json'}" in err
    reports = [json.loads((out / f"{name}.json").read_text()) for name in ("baseline", "current")]
    assert all(r["partial"] is True for r in reports)
    assert len(worktrees(project)) == 1 and not Path(reports[0]["side"]["cwd"]).exists()



def test_ab_metric_choices_are_checked_by_the_parser(tmp_path):
    proc = run_cli("ab", "--metric", "cycles", "--suite", "tensor_ops", timeout=120)
    assert proc.returncode == 2 and "invalid choice: 'cycles'" in proc.stderr


@pytest.mark.parametrize("budget", ["abc", "0s", "-3m"])
def test_ab_budget_must_be_a_positive_duration(budget):
    proc = run_cli("ab", "--budget", budget, "--suite", "tensor_ops", timeout=120)
    assert proc.returncode == 2 and "--budget" in proc.stderr and "Traceback" not in proc.stderr


def test_ab_budget_reads_seconds_minutes_and_hours():
    from benchbench.commands.ab import parse_duration

    assert [parse_duration(t) for t in ("90", "90s", "3m", "1m30s", "1h", "0.5m")] == [90, 90, 180, 90, 3600, 30]


def test_ab_refuses_an_output_folder_that_holds_reports_unless_forced(tmp_path):
    (tmp_path / "baseline.json").write_text("{}")
    proc = run_cli("ab", "--suite", "nope", "-o", str(tmp_path))
    assert proc.returncode == 2 and "already holds baseline.json" in proc.stderr and "--force" in proc.stderr
    assert (tmp_path / "baseline.json").read_text() == "{}"
    forced = run_cli("ab", "--suite", "nope", "-o", str(tmp_path), "--force")
    assert forced.returncode == 2 and "unknown suite" in forced.stderr  # past the check, to the next one
