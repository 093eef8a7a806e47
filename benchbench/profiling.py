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

from benchbench.profile_diff import OpDiff, Profile, diff, from_top_functions
from benchbench.report import CaseKey

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
    from benchbench.report import write_atomic

    wanted = {f.row.key: f.outcome for f in gate_result.findings if f.outcome in OUTCOMES}
    cases = [c for c in session.cases if c.key in wanted and not c.skip]
    if not cases:
        return []
    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="benchbench-profiles-"))
    out = []
    for case in cases:
        cp = CaseProfile(case.key, wanted[case.key])
        for side in sides:
            trace = folder / f"{side.name}-{slug(case.key)}.trace.json"
            if progress is not None and not getattr(progress, "quiet", False):
                print(f"ab: profiling {case.key.label} ({side.name})", file=sys.stderr)
            got = run_profile(side, case, trace, case.bench.timeout or session.budget.timeout_s,
                              session.profile.name, session.worker_env)
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
