"""`gate --profile-regressions` on stored reports: the current side from this checkout, the baseline from a
temporary git worktree of its recorded commit (or --baseline-ref), after the decision and without changing
it; and `rerun.find_cases`, which both it and `gate --rerun` use to find a stored case's benchmark here."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_compare import make_report, result, timings
from test_profile_diff import LIB_V1, LIB_V2, SUITE, check_chrome_trace, prof

from benchbench.analysis.gate import gate
from benchbench.errors import UserError
from benchbench.model.report import CaseKey, save
from benchbench.run import profiling

KEY = CaseKey("planted", "work", (), "cpu")


def git(root, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                          capture_output=True, text=True).stdout.strip()


def make_project(tmp_path):
    """A git repository of two commits: the library's work function gains a sort in the second.
    Returns (root, the first commit, the second)."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "plantedlib.py").write_text(LIB_V1)
    (root / "suite.py").write_text(SUITE)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "fast")
    good = git(root, "rev-parse", "HEAD")
    (root / "plantedlib.py").write_text(LIB_V2)
    git(root, "commit", "-qam", "sorts too")
    return root, good, git(root, "rev-parse", "HEAD")


@pytest.fixture
def project(tmp_path, monkeypatch):
    """make_project's repository, its suite file importable from this process (as `--suite-path` loads it)."""
    root, good, bad = make_project(tmp_path)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, "plantedlib", raising=False)
    monkeypatch.chdir(root)
    return root, good, bad


def reports(base_commit, current_commit, slowdown=1.5, seed=0):
    rng = np.random.default_rng(seed)
    base = make_report([result(KEY, timings(rng, 30, 1e-3, 0.01))])
    cur = make_report([result(KEY, timings(rng, 30, 1e-3 * slowdown, 0.01))])
    for rep, commit in ((base, base_commit), (cur, current_commit)):
        if commit:
            rep.environment["facts"]["git_commit"] = commit
    return base, cur


@pytest.fixture
def fake_profiles(monkeypatch):
    """run_profile replaced: records which side ran where and which library version it saw there."""
    calls = []

    def fake(side, case, trace, timeout, profile="default", worker_env=None, seconds=0.3):
        where = side.cwd or "."
        lib = open(f"{where}/plantedlib.py").read()
        calls.append((side.name, side.cwd, "sort" in lib))
        trace.write_text(json.dumps({"traceEvents": [{"ph": "X", "name": "x", "ts": 0, "dur": 1, "pid": 1,
                                                      "tid": 1}]}))
        extra = (("aten::sort", 1, 900.0),) if "sort" in lib else ()
        return prof(1, ("aten::mm", 1, 100.0), *extra)

    monkeypatch.setattr(profiling, "run_profile", fake)
    return calls


def test_the_baseline_is_profiled_from_a_worktree_of_its_commit_and_the_current_side_from_here(
        project, fake_profiles, tmp_path):
    root, good, bad = project
    base, cur = reports(good, bad)
    decided = gate(base, cur)
    assert decided.verdict == "regression"
    got, notes = profiling.profile_stored(decided, base, cur, suite_paths=[str(root / "suite.py")],
                                          folder=tmp_path / "profiles", cwd=root)
    assert notes == []
    (cp,) = got
    assert cp.outcome == "regression" and cp.errors == {}
    (b_name, b_cwd, b_sorts), (c_name, c_cwd, c_sorts) = fake_profiles
    assert (b_name, b_sorts) == ("baseline", False) and (c_name, c_cwd, c_sorts) == ("current", None, True)
    assert b_cwd != str(root)
    assert not Path(b_cwd).exists() and git(root, "worktree", "list").count("\n") == 0  # the worktree is gone
    assert cp.rows[0].name == "aten::sort" and cp.rows[0].change == "new"
    doc = json.loads((tmp_path / "profiles" / "profiles.json").read_text())
    assert doc["profiles"][0]["case"] == KEY.label
    assert set(cp.traces) == {"baseline", "current"}
    assert gate(base, cur).verdict == decided.verdict  # nothing in the reports changed


def test_baseline_ref_overrides_the_recorded_commit(project, fake_profiles, tmp_path):
    root, good, bad = project
    base, cur = reports(bad, bad)  # the report says bad; the user knows better
    got, _ = profiling.profile_stored(gate(base, cur), base, cur, suite_paths=[str(root / "suite.py")],
                                      folder=tmp_path / "p", baseline_ref="HEAD~1", cwd=root)
    assert [c[2] for c in fake_profiles] == [False, True]
    assert got[0].rows[0].name == "aten::sort"


def test_without_a_commit_only_the_current_side_is_profiled_and_the_note_says_why(
        project, fake_profiles, tmp_path):
    root, good, bad = project
    for base_commit, why in ((None, "its report records no git commit (give --baseline-ref)"),
                             ("0" * 40, f"its commit {'0' * 12} is not in this repository")):
        fake_profiles.clear()
        base, cur = reports(base_commit, bad)
        (cp,), notes = profiling.profile_stored(gate(base, cur), base, cur, suite_paths=[str(root / "suite.py")],
                                                folder=tmp_path / "p", cwd=root)
        assert [c[0] for c in fake_profiles] == ["current"]
        assert notes[0].startswith(f"baseline not profiled: {why}")
        assert cp.errors["baseline"].startswith(why) and cp.rows == [] and set(cp.traces) == {"current"}


def test_a_given_baseline_ref_that_is_no_commit_is_an_error(project, fake_profiles, tmp_path):
    root, good, bad = project
    base, cur = reports(good, bad)
    with pytest.raises(UserError, match="--baseline-ref nosuch: no such commit"):
        profiling.profile_stored(gate(base, cur), base, cur, suite_paths=[str(root / "suite.py")],
                                 folder=tmp_path / "p", baseline_ref="nosuch", cwd=root)
    assert fake_profiles == []


def test_current_measured_at_another_commit_is_said(project, fake_profiles, tmp_path):
    root, good, bad = project
    base, cur = reports(good, good)
    _, notes = profiling.profile_stored(gate(base, cur), base, cur, suite_paths=[str(root / "suite.py")],
                                        folder=tmp_path / "p", cwd=root)
    assert notes == [f"CURRENT was measured at commit {good[:12]}; its side is profiled from this checkout "
                     f"({bad[:12]})"]


def test_a_passing_gate_or_an_unknown_case_profiles_nothing(project, fake_profiles, tmp_path):
    root, good, bad = project
    base, cur = reports(good, bad, slowdown=1.0)
    assert gate(base, cur).verdict == "pass"
    assert profiling.profile_stored(gate(base, cur), base, cur, suite_paths=[str(root / "suite.py")],
                                    folder=tmp_path / "p", cwd=root) == ([], [])
    base, cur = reports(good, bad)
    got, notes = profiling.profile_stored(gate(base, cur), base, cur, folder=tmp_path / "q", cwd=root)
    assert got == [] and notes == [f"not profiled: {KEY.label}: suite or benchmark not found (use --suite-path)"]
    assert fake_profiles == []


def test_find_cases_says_why_a_stored_case_cannot_run_here(project):
    from benchbench.measure import backends as bk
    from benchbench.run.rerun import find_cases

    root, _, _ = project
    unusable = [b.name for b in bk.discover() if not b.available]  # none faked, none present (GPU-shaped runs too)
    if not unusable:
        pytest.skip("every backend kind is usable here")
    other = CaseKey("planted", "work", (), unusable[0])
    missing = CaseKey("planted", "gone", (), "cpu")
    stored = result(KEY, [1e-3], definition_hash="not-this-code")
    found, suites, backends = find_cases([(KEY, stored), (other, None), (missing, None)], [str(root / "suite.py")])
    assert found[KEY] == "the benchmark's code differs from what CURRENT measured"
    assert found[missing] == "suite or benchmark not found (use --suite-path)"
    assert found[other] == f"backend {unusable[0]} is not usable here"
    assert "planted" in suites and unusable[0] not in backends and "cpu" in backends
    found, _, _ = find_cases([(KEY, result(KEY, [1e-3]))], [str(root / "suite.py")])
    assert found[KEY].key == KEY and found[KEY].skip is None


# --- the command ------------------------------------------------------------------------------------------
def _files(project, tmp_path, base_commit, cur_commit, slowdown=1.5):
    base, cur = reports(base_commit, cur_commit, slowdown)
    save(base, tmp_path / "base.json")
    save(cur, tmp_path / "cur.json")
    return str(tmp_path / "base.json"), str(tmp_path / "cur.json")


def test_gate_profile_regressions_keeps_the_exit_code_and_adds_traces_json_and_summary(
        project, fake_profiles, tmp_path, capsys):
    from benchbench.cli import main

    root, good, bad = project
    b, c = _files(project, tmp_path, good, bad)
    plain = main(["gate", "--baseline", b, c, "--json"])
    plain_doc = json.loads(capsys.readouterr().out)
    rc = main(["gate", "--baseline", b, c, "--json", "--profile-regressions", "--suite-path", "suite.py", "-q",
               "--summary", str(tmp_path / "summary.md")])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert rc == plain == 1 and doc["gate"]["verdict"] == plain_doc["gate"]["verdict"] == "regression"
    (case,) = doc["profiles"]
    assert case["case"] == KEY.label and case["top"][0]["operator"] == "aten::sort"
    folder = tmp_path / "cur.profiles"
    assert (folder / "profiles.html").is_file() and "aten::sort" in (folder / "profiles.html").read_text()
    assert f"profiles: {folder / 'profiles.html'}" in err
    assert "aten::sort" in (tmp_path / "summary.md").read_text()
    check_chrome_trace(folder / f"baseline-{profiling.slug(KEY)}.trace.json")
    # text output lists the operator diff under the gate's table
    rc = main(["gate", "--baseline", b, c, "--profile-regressions", "--suite-path", "suite.py", "-q",
               "--profiles-dir", str(tmp_path / "elsewhere")])
    out, _ = capsys.readouterr()
    assert rc == 1 and "aten::sort" in out and (tmp_path / "elsewhere" / "profiles.json").is_file()


@pytest.mark.parametrize("extra, message", [
    (["--baseline-ref", "HEAD"], "benchbench: error: --baseline-ref is for --profile-regressions"),
    (["--profiles-dir", "x"], "--profiles-dir is for --profile-regressions"),
    (["--profile-regressions", "--baseline-ref", "nosuch"], "benchbench: error: --baseline-ref nosuch: no such commit"),
    (["--profile-regressions", "--profiles-dir", "base.json"], "is a file, not a folder"),
])
def test_gate_profiling_options_given_wrong_are_one_line_errors(project, fake_profiles, tmp_path, capsys, extra,
                                                                  message):
    from benchbench.cli import main

    root, good, bad = project
    b, c = _files(project, tmp_path, good, bad)
    extra = [str(tmp_path / "base.json") if x == "base.json" else x for x in extra]
    assert main(["gate", "--baseline", b, c, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert fake_profiles == []


@pytest.mark.slow  # two profile workers import torch
def test_gate_profile_regressions_end_to_end_ranks_the_planted_operator_first(tmp_path):
    from conftest import ROOT, run_cli

    root, good, bad = make_project(tmp_path)
    b, c = _files(None, tmp_path, good, bad)
    proc = run_cli("gate", "--baseline", b, c, "--profile-regressions", "--suite-path", "suite.py", "--json", "-q",
                   cwd=root, env={"PYTHONPATH": f"{ROOT}:{root}"}, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (case,) = json.loads(proc.stdout)["profiles"]
    assert case["errors"] == {} and case["top"][0]["operator"] == "aten::sort"
    for side in ("baseline", "current"):
        check_chrome_trace(tmp_path / "cur.profiles" / f"{side}-{profiling.slug(KEY)}.trace.json")
    assert git(root, "worktree", "list").count("\n") == 0
