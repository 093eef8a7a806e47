"""`ab --profile-regressions`: after the decision, one torch.profiler run per side of each case that
regressed or stayed inconclusive, and the diff of their operator tables.

Each profile runs in a process of its own (`python -m benchbench.profile_worker`), with the side's
interpreter, environment and source tree, after every timed round is over: the timed numbers and
the verdicts are the same with or without profiling. The sides are profiled one after the other,
never together. Each side's Chrome trace (it opens in Perfetto and chrome://tracing) is written next
to the reports as `<side>-<case>.trace.json`; the operator tables and their diff go to
`profiles.json` there (`benchbench ab` adds `profiles.html`: the top rows with links to the traces).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchbench.analysis.profile_diff import OpDiff, Profile, diff, from_top_functions
from benchbench.model.report import CaseKey

PROFILE_SECONDS = 0.3  # about this long of calls profiled per side: enough calls to average, a small trace
OUTCOMES = ("regression", "inconclusive")


@dataclass
class CaseProfile:
    """One case's profiles, both sides: the trace files, the operator tables and their diff, or why not."""

    key: CaseKey
    outcome: str  # the gate's outcome for the case: regression / inconclusive
    traces: dict[str, str] = field(default_factory=dict)  # side name -> trace file
    profiles: dict[str, Profile] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # side name -> why its profile is missing

    @property
    def rows(self) -> list[OpDiff]:
        if "baseline" in self.profiles and "current" in self.profiles:
            return diff(self.profiles["baseline"], self.profiles["current"])
        return []

    def to_dict(self) -> dict[str, Any]:
        return {"case": self.key.label, "key": self.key.to_dict(), "outcome": self.outcome, "traces": dict(self.traces),
                "profiles": {k: p.to_dict() for k, p in self.profiles.items()}, "errors": dict(self.errors)}


def slug(key: CaseKey) -> str:
    """A file-name-safe form of the case's label."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", key.label).strip("_")[:120] or "case"


def run_profile(side: Any, case: Any, trace: Path, timeout: float, profile: str = "default",
                worker_env: dict[str, str] | None = None, seconds: float = PROFILE_SECONDS) -> Profile | str:
    """One profile worker for `case` on `side`: its operator table, or why there is none (one line)."""
    config = {"source": side.source_for(case.suite), "benchmark": case.bench.name, "key": case.key.to_dict(),
              "profile": profile, "trace": str(trace), "seconds": seconds}
    env = {**os.environ, **(worker_env or {}), **side.worker_env()}
    try:
        proc = subprocess.run([side.python, "-m", "benchbench.profile_worker", json.dumps(config)], cwd=side.cwd,
                              env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"no profile within {timeout:g} s"
    except OSError as exc:
        return f"profile worker did not start: {exc}"
    lines = [line for line in proc.stdout.strip().splitlines() if line.strip()]
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        err = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        return err[-1] if err else f"profile worker exit {proc.returncode}"
    if answer.get("event") != "profile":
        return str(answer.get("error") or "profile worker error")
    return Profile.from_dict(answer)


def profile_findings(session: Any, sides: Sequence[Any], gate_result: Any, folder: Path | None,
                     progress: Any = None) -> list[CaseProfile]:
    """Profile both sides of every case the gate found regressed or inconclusive (timed cases only)."""
    wanted = {f.row.key: f.outcome for f in gate_result.findings if f.outcome in OUTCOMES}
    cases = [c for c in session.cases if c.key in wanted and not c.skip]
    return profile_cases(cases, sides, wanted, folder, session.budget.timeout_s, session.profile.name,
                         session.worker_env, quiet=progress is None or getattr(progress, "quiet", False), who="ab")


def profile_cases(cases: Sequence[Any], sides: Sequence[Any], outcomes: dict[CaseKey, str], folder: Path | None,
                  timeout: float, profile: str = "default", worker_env: dict[str, str] | None = None,
                  quiet: bool = True, who: str = "ab") -> list[CaseProfile]:
    """One profile per side of each planned case (one after the other), their traces in `folder` (a new
    temporary folder when None) and the tables in its profiles.json."""
    from benchbench.model.report import write_atomic

    if not cases:
        return []
    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="benchbench-profiles-"))
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for case in cases:
        cp = CaseProfile(case.key, outcomes[case.key])
        for side in sides:
            trace = folder / f"{side.name}-{slug(case.key)}.trace.json"
            if not quiet:
                print(f"{who}: profiling {case.key.label} ({side.name})", file=sys.stderr)
            got = run_profile(side, case, trace, case.bench.timeout or timeout, profile, worker_env)
            if isinstance(got, Profile):
                cp.profiles[side.name], cp.traces[side.name] = got, str(trace)
            else:
                cp.errors[side.name] = got
        out.append(cp)
    write_atomic(folder / "profiles.json", json.dumps({"profiles": [cp.to_dict() for cp in out]}, indent=1))
    return out


def instruction_diffs(gate_result: Any) -> list[CaseProfile]:
    """Under `--metric instructions` the same diff by function, from the Callgrind data both sides'
    results already hold (no more workers): each regressed or inconclusive case's top functions."""
    out = []
    for f in gate_result.findings:
        if f.outcome not in OUTCOMES:
            continue
        cp = CaseProfile(f.row.key, f.outcome)
        for name, result in (("baseline", f.row.base), ("current", f.row.other)):
            rows = (((result.metrics or {}).get("instructions") or {}).get("top_functions")
                    if result is not None and result.ok else None)
            if rows is None:
                cp.errors[name] = "no Callgrind function table in its result"
            else:
                cp.profiles[name] = from_top_functions(rows)
        out.append(cp)
    return out


def stored_outcomes(gate_result: Any) -> dict[CaseKey, str]:
    """The cases worth profiling in a gate on stored reports: regressed or inconclusive, measured on both sides."""
    return {f.row.key: f.outcome for f in gate_result.findings if f.outcome in OUTCOMES
            and f.row.base is not None and f.row.other is not None and f.row.base.ok and f.row.other.ok}


def profile_stored(gate_result: Any, baseline: Any, current: Any, *, suite_paths: list[str] | None = None,
                   folder: Path | None = None, baseline_ref: str | None = None, quiet: bool = True,
                   cwd: Path | None = None) -> tuple[list[CaseProfile], list[str]]:
    """`gate --profile-regressions`: profile both sides of each case the gate found regressed or inconclusive,
    on this machine, one after the other. Returns the profiles and notes for the user (one line each).

    The current side is this checkout. The baseline side is a temporary `git worktree` of `baseline_ref`, or
    else of the commit the baseline report records (`git_commit`). Without either, or outside a git
    repository that has that commit, only the current side is profiled and a note says why. The timed
    reports are not touched: the verdict is the gate's, decided before. Under instruction counts the diff
    comes from the Callgrind tables the reports hold, with no workers."""
    import contextlib

    from benchbench import metrics as metrics_registry
    from benchbench.measure.engine import get_profile
    from benchbench.model.report import report_fact
    from benchbench.run.rerun import find_cases
    from benchbench.run.runner import Side

    rows = [f.row for f in gate_result.findings]
    if any(metrics_registry.of_results(r.base, r.other) is metrics_registry.INSTRUCTIONS for r in rows):
        return instruction_diffs(gate_result), []
    wanted = stored_outcomes(gate_result)
    if not wanted:
        return [], []
    by_key = {r.key: r.other for r in rows}
    found, available, _ = find_cases([(key, by_key.get(key)) for key in wanted], suite_paths)
    notes = [f"not profiled: {key.label}: {got}" for key, got in found.items() if isinstance(got, str)]
    cases = [got for got in found.values() if not isinstance(got, str)]
    if not cases:
        return [], notes
    ref = baseline_ref or report_fact(baseline, "git_commit")
    commit = report_fact(current, "git_commit")
    here = _head(cwd)
    if commit and here and commit != here:
        notes.append(f"CURRENT was measured at commit {commit[:12]}; its side is profiled from this checkout "
                     f"({here[:12]})")
    profile = get_profile(current.profile or "default")
    with contextlib.ExitStack() as stack:
        sides: list[Any] = []
        tree, why = _baseline_tree(stack, ref, baseline_ref is not None, cwd)
        if tree is not None:
            from benchbench.worktree import tree_pythonpath, tree_sources

            root, path = tree
            sides.append(Side(name="baseline", ref=ref, pythonpath=tree_pythonpath(path), cwd=str(path),
                              sources=tree_sources(list(available.values()), root, path)))
        else:
            notes.append(f"baseline not profiled: {why}")
        sides.append(Side(name="current"))
        out = profile_cases(cases, sides, wanted, folder, profile.budget.timeout_s, profile.name, quiet=quiet,
                            who="gate")
    for cp in out:
        if why:
            cp.errors.setdefault("baseline", why)
    return out, notes


def _head(cwd: Path | None) -> str | None:
    from benchbench.environment.facts import _git_commit

    try:
        return _git_commit(cwd)
    except OSError:
        return None


def _baseline_tree(stack: Any, ref: str | None, asked: bool, cwd: Path | None,
                   ) -> tuple[tuple[Path, Path] | None, str | None]:
    """((repository root, a temporary worktree of `ref` kept open on `stack`), None), or (None, why not) when
    there is no ref or no such commit here. A ref the user gave (`asked`) that is not found is an error."""
    from benchbench.errors import UserError
    from benchbench.interrupts import stop_signals_interrupt
    from benchbench.worktree import has_commit, repo_root, source_tree

    if not ref:
        return None, "its report records no git commit (give --baseline-ref)"
    try:
        root = repo_root(cwd)
        if not asked and not has_commit(ref, root):
            return None, f"its commit {ref[:12]} is not in this repository (fetch it, or give --baseline-ref)"
        stack.enter_context(stop_signals_interrupt())  # the worktree goes on SIGTERM too
        return (root, stack.enter_context(source_tree(ref, root))), None
    except UserError as exc:
        if asked:
            raise
        return None, str(exc)
