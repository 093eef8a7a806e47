"""bisect: the search over a commit range (a fake step deciding each commit), the ab step's pieces, and
one end-to-end run over a throwaway repository whose library gets 4x slower in one commit."""

import json
import math
import subprocess

import pytest
from conftest import ROOT, run_cli

from benchbench.errors import UserError
from benchbench.output.bisect import bisect_json, bisect_markdown, bisect_text
from benchbench.run.bisect import Commit, Trial, commit_range, find_root, probe, run_bisect, trial_from_ab

GOOD = Commit("g" * 40, "good")


def commits(n):
    return [Commit(f"{i:040d}", f"change {i + 1}") for i in range(n)]


class FakeStep:
    """Decides a commit by its index: bad from `first_bad` on, skipped where asked, inconclusive where asked."""

    def __init__(self, cs, first_bad=None, skip=(), unclear=None):
        self.index = {c: i for i, c in enumerate(cs)}
        self.first_bad, self.skip, self.unclear = first_bad, set(skip), dict(unclear or {})
        self.calls = []

    def __call__(self, commit, attempt):
        i = self.index[commit]
        self.calls.append((i, attempt))
        if i in self.skip:
            return Trial("skip", reason="import failed: ModuleNotFoundError: No module named 'mypkg'")
        if self.unclear.get(i, 0) > attempt:
            return Trial("inconclusive", reason="cannot tell", ratio=1.04, ci_low=0.97, ci_high=1.12, level=0.95)
        bad = self.first_bad is not None and i >= self.first_bad
        return Trial("regression" if bad else "pass", case="s/work cpu", ratio=1.4 if bad else 1.0,
                     ci_low=1.3 if bad else 0.98, ci_high=1.5 if bad else 1.02, level=0.95, rounds=2)


@pytest.mark.parametrize("first_bad", range(8))
def test_the_first_bad_of_eight_is_found_in_at_most_log2_plus_one_steps(first_bad):
    cs = commits(8)
    step = FakeStep(cs, first_bad)
    result = run_bisect(GOOD, cs[-1], cs, step)
    assert result.outcome == "found" and result.first_bad == cs[first_bad]
    assert result.max_steps == math.ceil(math.log2(8)) + 1 == 4
    assert len(result.steps) <= 4 and len(step.calls) == len(result.steps)
    assert result.steps[0].commit == cs[-1]  # BAD first: is there anything to find?
    assert result.decisive.commit == cs[first_bad] and result.decisive.trial.ratio == 1.4
    assert result.exit_code == 1


@pytest.mark.parametrize("n", [1, 2, 3, 5, 16, 33])
def test_steps_stay_within_the_bound_for_any_range(n):
    cs = commits(n)
    for first_bad in range(n):
        result = run_bisect(GOOD, cs[-1], cs, FakeStep(cs, first_bad))
        assert result.first_bad == cs[first_bad]
        assert len(result.steps) <= math.ceil(math.log2(n)) + 1


def test_no_regression_between_good_and_bad_blames_no_commit():
    cs = commits(8)
    result = run_bisect(GOOD, cs[-1], cs, FakeStep(cs, None), good_ref="v1", bad_ref="main")
    assert result.outcome == "no-regression" and result.first_bad is None and len(result.steps) == 1
    assert result.exit_code == 0
    assert bisect_text(result).startswith("bisect: no regression between v1 and main")
    assert json.loads(bisect_json(result))["bisect"]["first_bad"] is None


def test_a_commit_that_does_not_import_is_skipped_and_named():
    cs = commits(8)
    step = FakeStep(cs, first_bad=5, skip={3})
    result = run_bisect(GOOD, cs[-1], cs, step)
    assert result.outcome == "found" and result.first_bad == cs[5]
    skipped = [s for s in result.steps if s.outcome == "skipped"]
    assert [s.commit for s in skipped] == [cs[3]] and "No module named 'mypkg'" in skipped[0].trial.reason
    text = bisect_text(result)
    assert "skipped" in text and cs[3].short in text and "No module named 'mypkg'" in text
    doc = json.loads(bisect_json(result))["bisect"]
    assert [s["outcome"] for s in doc["steps"]].count("skipped") == 1


def test_when_only_skipped_commits_are_left_the_answer_is_their_range():
    cs = commits(8)
    result = run_bisect(GOOD, cs[-1], cs, FakeStep(cs, first_bad=4, skip={3}))
    assert result.outcome == "only-skipped" and result.first_bad is None
    assert result.suspects == [cs[3], cs[4]] and result.exit_code == 3
    assert "cannot tell which of 2 commits" in bisect_text(result)


def test_an_inconclusive_step_gets_more_rounds_then_decides():
    cs = commits(8)
    step = FakeStep(cs, first_bad=2, unclear={3: 1})  # commit 3: unclear at its first attempt only
    result = run_bisect(GOOD, cs[-1], cs, step, retries=1)
    assert result.outcome == "found" and result.first_bad == cs[2]
    assert (3, 0) in step.calls and (3, 1) in step.calls
    (record,) = [s for s in result.steps if s.commit == cs[3]]
    assert record.attempts == 2 and record.outcome == "bad"


def test_a_step_still_inconclusive_after_its_retries_stops_the_search_and_says_so():
    cs = commits(8)
    step = FakeStep(cs, first_bad=2, unclear={3: 5})
    result = run_bisect(GOOD, cs[-1], cs, step, retries=2)
    assert result.outcome == "unclear" and result.first_bad is None and result.exit_code == 3
    assert [a for i, a in step.calls if i == 3] == [0, 1, 2]
    assert result.open_range == cs[0:8]  # nothing known yet but that BAD is bad
    assert result.steps[-1].outcome == "unclear"
    assert "stopped" in bisect_text(result) and "⚠️" in bisect_markdown(result)


def test_an_unmeasurable_bad_commit_is_a_user_error():
    cs = commits(4)
    with pytest.raises(UserError, match="BAD .* cannot be measured"):
        run_bisect(GOOD, cs[-1], cs, FakeStep(cs, 0, skip={3}))


def test_the_answer_names_the_commit_its_subject_and_the_ratio_with_its_interval():
    cs = commits(8)
    result = run_bisect(GOOD, cs[-1], cs, FakeStep(cs, 5), good_ref="v1", bad_ref="main")
    text = bisect_text(result)
    assert f"first bad commit: {cs[5].short} change 6" in text
    assert "+40.0% [+30.0%, +50.0%] (95% interval)" in text
    md = bisect_markdown(result)
    assert md.startswith("### benchbench bisect: ❌") and "| step" in md
    doc = json.loads(bisect_json(result))["bisect"]
    assert doc["outcome"] == "found" and doc["first_bad"] == {"sha": cs[5].sha, "subject": "change 6"}
    assert doc["change"]["ratio"] == 1.4 and doc["change"]["ci"] == [1.3, 1.5]
    assert len(doc["steps"]) == len(result.steps) and doc["max_steps"] == 4


# --- the pieces of the real step ---------------------------------------------------------------------
def git(cwd, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


PKG = """
import time


def work():
    time.sleep({s})
"""
SUITE = """
from benchbench import Case, benchmark

import mypkg

SUITE = "e2e_bisect"


@benchmark
def work(ctx):
    return Case(mypkg.work)
"""


def make_project(root, n=8, slow_at=None, broken_at=None):
    """A repository with a src layout: GOOD, then `n` commits; mypkg sleeps 4x longer from commit `slow_at`
    (1-based) on; commit `broken_at` does not import."""
    (root / "src" / "mypkg").mkdir(parents=True)
    (root / "bench").mkdir()
    (root / "src" / "mypkg" / "__init__.py").write_text(PKG.format(s=0.002))
    (root / "bench" / "suite.py").write_text(SUITE)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "good")
    for i in range(1, n + 1):
        (root / "NOTES").write_text(f"change {i}\n")
        slow = slow_at is not None and i >= slow_at
        text = PKG.format(s=0.008 if slow else 0.002)
        if i == broken_at:
            text = "import no_such_module_anywhere\n" + text
        (root / "src" / "mypkg" / "__init__.py").write_text(text)
        git(root, "add", ".")
        git(root, "commit", "-qm", f"change {i}" + (" (slower)" if i == slow_at else ""))
    return root


def test_commit_range_is_first_parent_oldest_first_and_checks_ancestry(tmp_path):
    root = make_project(tmp_path / "p", n=3)
    good, bad, cs = commit_range("HEAD~3", "HEAD", root)
    assert [c.subject for c in cs] == ["change 1", "change 2", "change 3"] and bad == cs[-1]
    assert good.subject == "good"
    with pytest.raises(UserError, match="not an ancestor"):
        commit_range("HEAD", "HEAD~2", root)
    with pytest.raises(UserError, match="no such commit"):
        commit_range("nope", "HEAD", root)
    with pytest.raises(UserError, match="same commit"):
        commit_range("HEAD", "HEAD", root)


def test_find_root_outside_git_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not inside a git repository"):
        find_root(tmp_path)


def test_probe_imports_the_suites_from_the_tree_and_names_what_fails(tmp_path):
    import sys

    root = make_project(tmp_path / "p", n=1)
    source = {"path": str(root / "bench" / "suite.py")}
    assert probe(sys.executable, root, [source]) is None
    (root / "src" / "mypkg" / "__init__.py").write_text("import no_such_module_anywhere\n")
    why = probe(sys.executable, root, [source])
    assert why is not None and "no_such_module_anywhere" in why


def test_a_case_that_broke_on_the_candidate_makes_the_step_a_skip():
    from types import SimpleNamespace

    from benchbench.analysis.compare import Change

    def finding(verdict, outcome, reason=None, ratio=None):
        change = Change(ratio, ratio - 0.1, ratio + 0.1, 0.95, 0.01, 0.01, 3, 3, "paired-round") if ratio else None
        row = SimpleNamespace(verdict=verdict, change=change, key=SimpleNamespace(label=f"s/{verdict} cpu"),
                              other=SimpleNamespace(reason=reason))
        return SimpleNamespace(row=row, outcome=outcome, why=verdict)

    def ab(findings, verdict):
        gate = SimpleNamespace(verdict=verdict, findings=findings,
                               by_outcome=lambda o: [f for f in findings if f.outcome == o])
        return SimpleNamespace(gate=gate, outcome=SimpleNamespace(rounds=4))

    broke = trial_from_ab(ab([finding("broke", "regression", "RuntimeError: boom")], "regression"))
    assert broke.verdict == "skip" and "RuntimeError: boom" in broke.reason
    slow = trial_from_ab(ab([finding("slower", "regression", ratio=1.3), finding("slower", "regression", ratio=1.6),
                             finding("same", "ok", ratio=1.0)], "regression"))
    assert slow.verdict == "regression" and slow.ratio == 1.6 and slow.case == "s/slower cpu" and slow.rounds == 4
    ok = trial_from_ab(ab([finding("same", "ok", ratio=1.01)], "pass"))
    assert ok.verdict == "pass" and ok.ratio == 1.01


def test_a_step_checks_the_candidate_out_in_a_worktree_named_for_it_and_removes_it(tmp_path, monkeypatch):
    from pathlib import Path
    from types import SimpleNamespace

    import benchbench.run.ab
    from benchbench.run.bisect import AbStep

    root = make_project(tmp_path / "p", n=2)
    good, _, cs = commit_range("HEAD~2", "HEAD", root)
    seen = {}

    def fake_run_ab(**kw):  # the trees as ab gets them, and what git lists while the step runs
        seen.update(baseline=kw["baseline"].tree, current=Path(kw["current"].tree),
                    listed=git(root, "worktree", "list", "--porcelain"))
        gate = SimpleNamespace(verdict="pass", findings=[], by_outcome=lambda o: [])
        return SimpleNamespace(gate=gate, outcome=SimpleNamespace(rounds=3))

    monkeypatch.setattr(benchbench.run.ab, "run_ab", fake_run_ab)
    step = AbStep(root, root, {}, tmp_path / "out", [], good_ref=good.sha)
    assert step(cs[0], 0).verdict == "pass"
    assert seen["current"].name == f"candidate-{cs[0].short}" and seen["baseline"] == str(root)
    assert f"worktree {seen['current']}\nHEAD {cs[0].sha}" in seen["listed"] and "/baseline\n" not in seen["listed"]
    assert git(root, "worktree", "list").count("\n") == 1 and not seen["current"].exists()


def test_bisect_refuses_bad_input_before_measuring(tmp_path):
    root = make_project(tmp_path / "p", n=2)
    env = {"PYTHONPATH": f"{ROOT}:{root / 'src'}"}
    proc = run_cli("bisect", "HEAD", "HEAD~2", "--suite-path", "bench/suite.py", cwd=root, env=env)
    assert proc.returncode == 2 and "not an ancestor" in proc.stderr and "Traceback" not in proc.stderr
    from benchbench.run.bisect import bisect

    with pytest.raises(UserError, match="--retries"):
        bisect("HEAD~2", "HEAD", retries=-1)
    assert git(root, "worktree", "list").count("\n") == 1  # nothing left behind


# --- end to end ----------------------------------------------------------------------------------------
# 4x slower against a +100% limit, three process pairs per step: t with two degrees of freedom separates
# both the slow commits and the fast ones from the limit even on a busy machine
ARGS = ["--suite-path", "bench/suite.py", "--backend", "cpu", "--profile", "quick", "--fail-on", "median:100%",
        "--rounds", "3"]


@pytest.mark.slow
def test_bisect_finds_the_planted_regression_in_log2_plus_one_ab_steps_and_skips_a_broken_commit(tmp_path):
    root = make_project(tmp_path / "p", n=8, slow_at=5, broken_at=6)
    env = {"PYTHONPATH": f"{ROOT}:{root / 'src'}"}
    # four ab steps of three process pairs each, every worker importing torch: over 10 minutes on a busy
    # 2-core machine (load 10-16)
    proc = run_cli("bisect", "HEAD~8", "HEAD", *ARGS, "--json", "-o", str(tmp_path / "steps"), cwd=root, env=env,
                   timeout=1800)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)["bisect"]
    assert doc["outcome"] == "found" and doc["first_bad"]["subject"] == "change 5 (slower)"
    assert doc["first_bad"]["sha"] == git(root, "rev-parse", "HEAD~3").strip()
    assert doc["change"]["ratio"] > 1.5 and doc["change"]["ci"][0] > 1.5
    # BAD (8), then halving: 4 good, 6 does not import (skipped and named, no ab), 5 bad
    assert [(s["commit"]["subject"].split(" (")[0], s["outcome"]) for s in doc["steps"]] == [
        ("change 8", "bad"), ("change 4", "good"), ("change 6", "skipped"), ("change 5", "bad")]
    assert "no_such_module_anywhere" in doc["steps"][2]["reason"]
    measured = [s for s in doc["steps"] if s["outcome"] != "skipped"]
    assert len(measured) <= math.ceil(math.log2(8)) + 1
    assert all((tmp_path / "steps" / s["commit"]["sha"][:10] / "current.json").is_file() for s in measured)
    assert git(root, "worktree", "list").count("\n") == 1  # every worktree removed
