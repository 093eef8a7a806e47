"""ab.py: sides (environment, interpreter, source tree from a git ref) and their checks, without measuring."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchbench.errors import UserError
from benchbench.run.ab import (
    SideSpec,
    check_side,
    differs,
    make_side,
    parse_env,
    side_environment,
)
from benchbench.run.runner import Side
from benchbench.worktree import repo_root, source_tree, tree_pythonpath, tree_sources


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "bench").mkdir()
    (root / "bench" / "suite.py").write_text("VERSION = 1\n")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    (root / "bench" / "suite.py").write_text("VERSION = 2\n")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two")
    return root


def worktrees(root):
    return [line for line in git(root, "worktree", "list").splitlines() if line.strip()]


def test_parse_env():
    assert parse_env(["A=1", "B_2=x=y", "C="], "--baseline-env") == (("A", "1"), ("B_2", "x=y"), ("C", ""))
    assert parse_env(None, "--x") == ()
    for bad in ("A", "=1", "A B=1"):
        with pytest.raises(UserError, match="expected KEY=VALUE"):
            parse_env([bad], "--baseline-env")


def test_source_tree_is_the_ref_and_is_removed_afterwards_even_on_errors(repo, monkeypatch):
    monkeypatch.chdir(repo / "bench")
    root = repo_root()
    assert root == repo.resolve()
    with source_tree("HEAD~1", root) as tree:
        assert (tree / "bench" / "suite.py").read_text() == "VERSION = 1\n"
        assert len(worktrees(repo)) == 2
    assert not tree.exists() and len(worktrees(repo)) == 1
    with pytest.raises(KeyboardInterrupt), source_tree("HEAD~1", root) as tree:
        raise KeyboardInterrupt  # Ctrl-C, or SIGTERM turned into it
    assert not tree.parent.exists() and len(worktrees(repo)) == 1
    with pytest.raises(UserError, match="--baseline-ref nope: no such commit"), source_tree("nope", root):
        pass


def test_repo_root_outside_git_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="not inside a git repository"):
        repo_root()


def test_tree_pythonpath_handles_src_layouts(tmp_path):
    assert tree_pythonpath(tmp_path) == (str(tmp_path),)
    (tmp_path / "src").mkdir()
    assert tree_pythonpath(tmp_path) == (str(tmp_path / "src"), str(tmp_path))


def test_suites_of_the_repository_load_from_the_worktree_on_the_baseline_side(tmp_path):
    root, tree = tmp_path / "repo", tmp_path / "tree"
    for base in (root, tree):
        (base / "bench").mkdir(parents=True)
        (base / "bench" / "mine.py").write_text("")
    (root / "bench" / "new.py").write_text("")  # not in the baseline: loaded from the current tree
    outside = tmp_path / "elsewhere.py"
    outside.write_text("")
    suites = [SimpleNamespace(name=n, source={"path": str(p)}) for n, p in
              (("mine", root / "bench" / "mine.py"), ("new", root / "bench" / "new.py"), ("out", outside))]
    suites.append(SimpleNamespace(name="tensor_ops", source={"module": "suites.tensor_ops"}))
    assert tree_sources(suites, root, tree) == (("mine", (("path", str(tree / "bench" / "mine.py")),)),)
    side = make_side("baseline", SideSpec(env=(("K", "v"),), ref="main"), tree, tree_sources(suites, root, tree))
    assert side.cwd == str(tree) and side.pythonpath == (str(tree),) and side.ref == "main"
    assert side.worker_env()["K"] == "v" and side.worker_env()["PYTHONPATH"].startswith(str(tree))
    assert side.source_for(SimpleNamespace(name="mine", source={"path": "x"})) == {"path": str(tree / "bench" / "mine.py")}


def test_a_baseline_interpreter_without_benchbench_or_torch_is_a_one_line_error(tmp_path):
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'raise ModuleNotFoundError(\"No module named torch\")'\n")
    fake.chmod(0o755)
    with pytest.raises(UserError) as err:
        check_side(Side(name="baseline", python=str(fake)), "--baseline-python")
    assert str(err.value).startswith(f"--baseline-python {fake} cannot import benchbench and torch (")
    assert "No module named torch" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UserError, match="no such interpreter"):
        check_side(Side(name="baseline", python=str(tmp_path / "nope")), "--baseline-python")


def test_a_side_reports_the_environment_its_workers_see(tmp_path):
    root = str(Path(__file__).parent.parent)
    side = Side(name="baseline", env=(("OMP_NUM_THREADS", "1"), ("PYTHONPATH", root)))
    assert differs(side) and not differs(Side(name="current"))
    env = side_environment(side, ["tensor_ops"], ["cpu"], fallback={"facts": {"threads": {"torch_threads": 99}}})
    assert env["facts"]["threads"]["torch_threads"] == 1 and "side_environment" not in env["facts"]
    assert env["fingerprint"]["torch"] and env["checks"]


def test_a_side_that_cannot_report_its_environment_keeps_this_one_and_says_so(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'ImportError: cannot import name collect' >&2\nexit 1\n")
    fake.chmod(0o755)
    fallback = {"facts": {"torch": {"version": "2.14.1"}}, "fingerprint": {}, "checks": []}
    env = side_environment(Side(name="baseline", python=str(fake)), [], None, fallback)
    assert env["facts"]["torch"] == {"version": "2.14.1"} and "side_environment" not in fallback["facts"]
    assert "could not report its own (ImportError: cannot import name collect)" in env["facts"]["side_environment"]


def test_the_check_imports_under_the_sides_own_environment(tmp_path):
    root = str(Path(__file__).parent.parent)
    assert check_side(Side(name="baseline", env=(("PYTHONPATH", root),)), "--baseline-python") is None
    (tmp_path / "torch.py").write_text("raise ImportError('this torch is broken on purpose')\n")
    broken = Side(name="baseline", env=(("PYTHONPATH", os.pathsep.join([str(tmp_path), root])),))
    with pytest.raises(UserError, match=r"cannot import benchbench and torch \(ImportError: this torch is broken"):
        check_side(broken, "--baseline-python")


# --- metrics: time, instruction counts, or both ------------------------------------------------------------
def test_check_metrics_orders_time_first_and_rejects_unknown_ones():
    from benchbench.run.ab import check_metrics

    assert check_metrics(None) == ("time",)
    assert check_metrics(["instructions", "time", "instructions"]) == ("time", "instructions")
    with pytest.raises(UserError, match="unknown metric 'cycles'"):
        check_metrics(["cycles"])


def fake_measure(calls, counts, times):
    """Stands in for session.measure: fills each side's report with counts (instructions) or times."""
    from benchbench.model.report import Result

    def measure(session, targets, progress=None, rounds=None, canary=True, on_result=None):
        calls.append((session.metric, session.rounds, canary, [t.path.name for t in targets]))
        values = counts if session.metric == "instructions" else times
        method = "callgrind-instructions" if session.metric == "instructions" else "perf_counter"
        for t in targets:
            t.report.results = [Result(key=c.key, status="ok", samples=values[t.side.name], timing_method=method,
                                       definition_hash="h") for c in session.cases]
        return [t.report for t in targets]
    return measure


class FakeInterleaved:
    """Stands in for the block-interleaved time rounds: records how it was asked, fills the reports."""

    calls: list = []
    times: dict = {}

    def __init__(self, session, targets, plan, threshold_for, budget_s=None, **kw):
        self.session, self.targets, self.plan, self.budget_s = session, targets, plan, budget_s

    def run(self):
        from benchbench.model.report import Result
        from benchbench.run.interleave import Outcome

        FakeInterleaved.calls.append((self.session.metric, self.plan, self.budget_s, [t.path.name for t in self.targets]))
        for t in self.targets:
            t.report.results = [Result(key=c.key, status="ok", samples=self.times[t.side.name],
                                       timing_method="perf_counter", definition_hash="h") for c in self.session.cases]
        return Outcome(self.plan, 1, "max-rounds", 0.0)


def test_ab_with_both_metrics_gates_on_each_and_names_the_disagreement(monkeypatch, tmp_path):
    from benchbench.analysis.sequential import Plan
    from benchbench.measure import callgrind
    from benchbench.run import ab, session
    from benchbench.run.ab import run_ab

    monkeypatch.setattr(callgrind, "valgrind_status", lambda: callgrind.ValgrindStatus(True, "/usr/bin/valgrind", "3"))
    calls = []
    counts = {"baseline": [1000.0, 1000.0, 1001.0], "current": [1020.0, 1020.0, 1021.0]}  # +2% instructions
    monkeypatch.setattr(session, "measure", fake_measure(calls, counts, {}))
    monkeypatch.setattr(FakeInterleaved, "calls", [])
    monkeypatch.setattr(FakeInterleaved, "times", {"baseline": [1e-3] * 30, "current": [1e-3] * 30})  # time flat
    monkeypatch.setattr(ab, "Interleaved", FakeInterleaved)
    result = run_ab(["tensor_ops"], backends=["cpu"], pattern="dispatch_overhead", profile="quick",
                    metrics=["instructions", "time"], output=tmp_path / "ab", command=["benchbench", "ab"])
    quick = session.get_profile("quick")
    # time: block-interleaved rounds under the profile's sequential plan and budget; then counts, one round
    assert FakeInterleaved.calls == [("time", Plan(max_rounds=quick.ab_max_rounds), quick.ab_budget_s,
                                      ["baseline.json", "current.json"])]
    assert [c[:3] for c in calls] == [("instructions", 1, False)]
    assert calls[0][3] == ["baseline-instructions.json", "current-instructions.json"]
    assert result.metric == "time" and result.instructions.metric == "instructions"
    assert result.gate.verdict == "pass" and result.instructions.gate.verdict == "regression"
    assert result.verdict == "regression" and result.exit_code == 1
    (d,) = result.disagreements
    assert (d.kind, d.time, d.instructions) == ("instructions-only", "flat", "up")
    assert d.instructions_ratio == pytest.approx(1.02)


def test_ab_instructions_only_is_one_round_without_the_canary_and_the_gates_own_output(monkeypatch, tmp_path):
    from benchbench.measure import callgrind
    from benchbench.output.gate import ab_json, ab_text
    from benchbench.run import session
    from benchbench.run.ab import run_ab

    monkeypatch.setattr(callgrind, "valgrind_status", lambda: callgrind.ValgrindStatus(True, "/usr/bin/valgrind", "3"))
    calls = []
    same = {"baseline": [1000.0, 1000.0], "current": [1001.0, 1000.0]}
    monkeypatch.setattr(session, "measure", fake_measure(calls, same, {}))
    result = run_ab(["tensor_ops"], backends=["cpu"], pattern="dispatch_overhead", metrics=["instructions"],
                    output=tmp_path / "ab", command=["benchbench", "ab"])
    assert [c[:3] for c in calls] == [("instructions", 1, False)] and calls[0][3] == ["baseline.json", "current.json"]
    assert result.parts == [result] and result.verdict == "pass" and result.disagreements == []
    assert "ab:" not in ab_text(result) and '"gate"' in ab_json(result)  # one metric: the gate's own output


class CountingWorker:
    """Stands in for runner.Worker, one per process the runner would start: records how it would be started
    and answers each case with an instruction count (current side +3%), without Valgrind."""

    started: list = []

    def __init__(self, log_dir, env=None, python=None, cwd=None, command_prefix=(), start_timeout=0.0):
        self.command_prefix, self.env, self.requests = list(command_prefix), dict(env or {}), []
        self.current = self.env.get("SIDE") != "baseline"
        CountingWorker.started.append(self)

    def run(self, request, timeout, on_event):
        from benchbench.model.report import CaseKey, Result

        self.requests.append(request["key"])
        count = 1030.0 if self.current else 1000.0
        return {"event": "result", "result": Result(
            key=CaseKey.from_dict(request["key"]), status="ok", samples=[count, count],
            timing_method="callgrind-instructions", definition_hash="h").to_dict()}

    def log_tail(self, lines=20):
        return ""

    def close(self, kill=False):
        pass


def test_ab_instructions_runs_one_valgrind_worker_per_side_through_the_real_round_loop(monkeypatch, tmp_path):
    """session.measure and the Runner are real; only the worker process is not."""
    from benchbench.measure import callgrind
    from benchbench.run import ab, runner

    monkeypatch.setattr(callgrind, "valgrind_status", lambda: callgrind.ValgrindStatus(True, "/usr/bin/valgrind", "3"))
    monkeypatch.setattr(runner, "Worker", CountingWorker)
    monkeypatch.setattr(ab, "side_environment", lambda side, suites, backends, fallback: fallback)
    CountingWorker.started = []
    result = ab.run_ab(["tensor_ops"], backends=["cpu"], pattern="dispatch_overhead", metrics=["instructions"],
                       baseline=SideSpec(env=(("SIDE", "baseline"),)), output=tmp_path / "ab",
                       command=["benchbench", "ab"])
    workers = CountingWorker.started
    assert [w.current for w in workers] == [False, True]  # one worker per side, baseline first (one round)
    assert all(w.command_prefix[:2] == ["/usr/bin/valgrind", "--tool=callgrind"] for w in workers)
    assert all(callgrind.OUT_ENV in w.env for w in workers)
    cases = [r.key.to_dict() for r in result.baseline.results]
    assert cases and all(sorted(map(str, w.requests)) == sorted(map(str, cases)) for w in workers)
    assert result.gate.verdict == "regression" and result.exit_code == 1  # +3% instructions
    assert [len(r.rounds) for r in (result.baseline, result.current)] == [1, 1]


def test_ab_with_instructions_but_no_valgrind_stops_before_measuring(monkeypatch, tmp_path):
    from benchbench.measure import callgrind
    from benchbench.run import session
    from benchbench.run.ab import run_ab

    monkeypatch.setattr(callgrind, "valgrind_status", lambda: callgrind.ValgrindStatus(False, reason="not installed"))
    monkeypatch.setattr(session, "prepare", lambda *a, **k: pytest.fail("planned without Valgrind"))
    with pytest.raises(UserError, match="needs Valgrind.*apt-get install valgrind"):
        run_ab(["tensor_ops"], metrics=["time", "instructions"], output=tmp_path / "ab")
