"""A/B in one job: measure a baseline side and a current side together, block by block, and decide.

A side is what a worker runs with: an interpreter (`python`), environment variables (`env`), and a
source tree (`ref`: a git ref checked out into a temporary `git worktree`, put first on the side's
PYTHONPATH, `src/` layouts included, with the worker started in it so that `python -m` does not put
the current tree ahead of it). Both sides measure the same planned cases; a suite loaded from a
file of the repository is loaded, on the baseline side, from the same place inside the worktree.

Time is measured block-interleaved (`benchbench/run/interleave.py`): each round is a fresh process pair,
one worker per side, both alive together and taking turns block by block (ABBA), so the machine's
speed, which moves over seconds, hits both sides of every pair of blocks alike. Rounds are added
until every case is decided by the sequential plan (`benchbench/analysis/sequential.py`), the plan's last look,
or the time budget; `--rounds N` fixes the count instead. The decision is the gate's on the two
reports, which carry the pairing (blocks.py) and the plan, so `gate` on them decides the same way.
With identical sides this is the machine's A/A calibration: the verdicts show what this runner can
and cannot detect.

With `metrics=("instructions",)` each side's cases are counted under Callgrind instead
(benchbench/measure/callgrind.py): one Valgrind worker per side, one round, the exact-count rule deciding.
With both metrics, time is measured first and counts second, each gated on its own, and the result
lists the cases where the two disagree (benchbench/metrics/instructions.py).

`run_ab` is one Python call (a notebook can make it); `benchbench ab` parses arguments around it.
The worktree is removed afterwards, also on errors and on interrupt (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import contextlib
import copy
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchbench import metrics as metrics_registry
from benchbench.analysis.gate import EXIT_CODES, GateResult, Policy, gate
from benchbench.analysis.sequential import Plan
from benchbench.errors import UserError
from benchbench.metrics.instructions import Disagreement, disagreements
from benchbench.model.report import Report, check_output_folder
from benchbench.run.interleave import Interleaved, Outcome
from benchbench.run.runner import Side
from benchbench.worktree import repo_root, source_tree, tree_pythonpath, tree_sources

CHECK_TIMEOUT_S = 300.0  # importing torch on a busy machine can take a while


@dataclass(frozen=True)
class SideSpec:
    """What the user asks a side to differ by. Empty: the interpreter, environment and tree of this process."""

    python: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    ref: str | None = None
    # a source tree already checked out (of `ref`), kept by the caller: `bisect` makes GOOD's once
    tree: str | None = None


METRICS = metrics_registry.RUNNABLE


@dataclass
class AbResult:
    """Both sides' reports of one metric and the gate's verdict on them. With both metrics, this is the
    time part and `instructions` the counts' part, and `disagreements` the cases where they differ."""

    baseline: Report
    current: Report
    gate: GateResult
    paths: dict[str, Path] = field(default_factory=dict)  # side name -> report file
    metric: str = "time"
    instructions: AbResult | None = None
    disagreements: list[Disagreement] = field(default_factory=list)
    # time: how the block-interleaved rounds went (rounds run, why they stopped, time taken)
    outcome: Outcome | None = None
    # profile_regressions: each regressed or inconclusive case profiled on both sides (benchbench/run/profiling.py)
    profiles: list[Any] = field(default_factory=list)

    @property
    def parts(self) -> list[AbResult]:
        return [self, *([self.instructions] if self.instructions is not None else [])]

    @property
    def verdict(self) -> str:
        """The worse of the parts' verdicts: regression, then inconclusive, then pass."""
        verdicts = {p.gate.verdict for p in self.parts}
        return next(v for v in ("regression", "inconclusive", "pass") if v in verdicts or v == "pass")

    @property
    def exit_code(self) -> int:
        return int(EXIT_CODES[self.verdict])


def parse_env(items: Sequence[str] | None, what: str) -> tuple[tuple[str, str], ...]:
    """["KEY=VALUE", ...] -> (("KEY", "VALUE"), ...); a malformed item is a one-line error."""
    out = []
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum():
            raise UserError(f"{what} {item!r}: expected KEY=VALUE")
        out.append((key, value))
    return tuple(out)


def check_side(side: Side, what: str) -> None:
    """The side's interpreter must import benchbench and torch (as its workers will); else a one-line error."""
    code = "import benchbench, torch"
    env = {**os.environ, **side.worker_env()}
    try:
        proc = subprocess.run([side.python, "-c", code], env=env, cwd=side.cwd, capture_output=True, text=True,
                              timeout=CHECK_TIMEOUT_S)
    except FileNotFoundError:
        raise UserError(f"{what} {side.python}: no such interpreter") from None
    except PermissionError:
        raise UserError(f"{what} {side.python}: not executable") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"{what} {side.python}: `{code}` did not finish in {CHECK_TIMEOUT_S:g} s") from None
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        raise UserError(f"{what} {side.python} cannot import benchbench and torch "
                        f"({lines[-1] if lines else f'exit {proc.returncode}'}); install both into that environment")


_ENV_CODE = """
import json, sys
try:
    from benchbench.measure import backends as bk
except ImportError:  # a tree from before the layer packages
    from benchbench import backends as bk
from benchbench.environment import Context, collect
a = json.loads(sys.argv[1])
ctx = Context(suites=tuple(a["suites"]), backends=tuple(a["backends"]) if a["backends"] else None)
print(json.dumps(collect(bk.discover(), ctx), default=str))
"""


def differs(side: Side) -> bool:
    """Whether a side's workers run with another interpreter, environment or source tree than this process."""
    return bool(side.python != sys.executable or side.env or side.pythonpath)


def side_environment(side: Side, suites: Sequence[str], backends: Sequence[str] | None,
                     fallback: dict[str, Any]) -> dict[str, Any]:
    """The environment (facts, fingerprint, checks) as the side's workers see it: collected by the side's
    own interpreter, with its environment variables and source tree, so that a baseline on another torch
    or with other thread settings records its own versions and settings. Where that interpreter cannot
    report (e.g. an older benchbench), the `fallback` (this process's environment) is used and says so."""
    import json

    payload = json.dumps({"suites": list(suites), "backends": list(backends) if backends else None})
    env = {**os.environ, **side.worker_env()}
    why = None
    try:
        proc = subprocess.run([side.python, "-c", _ENV_CODE, payload], env=env, cwd=side.cwd, capture_output=True,
                              text=True, timeout=CHECK_TIMEOUT_S)
        if proc.returncode == 0:
            found = json.loads(proc.stdout.strip().splitlines()[-1])
            if isinstance(found, dict) and "facts" in found:
                return found
            why = "it printed no environment"
        else:
            lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
            why = lines[-1] if lines else f"exit {proc.returncode}"
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        why = f"{type(exc).__name__}: {exc}"
    out = copy.deepcopy(fallback)
    out.setdefault("facts", {})["side_environment"] = (
        f"collected by the process that ran ab; the {side.name} side's interpreter could not report its own ({why})")
    return out


def make_side(name: str, spec: SideSpec, tree: Path | None = None,
              sources: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()) -> Side:
    side = Side(name=name, env=spec.env, ref=spec.ref)
    if spec.python:
        side = replace(side, python=spec.python)
    if tree is not None:
        side = replace(side, pythonpath=tree_pythonpath(tree), cwd=str(tree), sources=sources)
    return side


@contextlib.contextmanager
def _term_interrupts() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt for the whole run (not only while measuring), so that
    the worktree is removed whenever the job is stopped."""
    from benchbench.interrupts import stop_signals_interrupt

    with stop_signals_interrupt():
        yield


def check_metrics(metrics: Sequence[str] | None) -> tuple[str, ...]:
    """The metrics to measure, time first; an unknown one is a one-line error."""
    wanted = list(dict.fromkeys(metrics or ["time"]))
    for m in wanted:
        metrics_registry.runnable(m)  # an unknown one is a one-line error
    return tuple(m for m in METRICS if m in wanted)


def metric_session(session: Any, metric: str, rounds: int | None = None) -> Any:
    """The session as `metric` measures it: the cases it can measure, its default rounds unless asked (instruction
    counts: CPU cases only, one round, since a count does not move between processes the way a time does)."""
    m = metrics_registry.runnable(metric)
    if m.name == session.metric:
        return session
    return replace(session, metric=m.name, cases=m.prepare_cases(session.cases),
                   rounds=rounds or m.default_rounds or session.rounds)


def run_ab(suites: Sequence[str] | None = None, *, suite_paths: Sequence[str] | None = None,
           backends: Sequence[str] | None = None, profile: str = "default", rounds: int | None = None,
           pattern: str | None = None, timeout: float | None = None, seed: int | None = None,
           baseline: SideSpec = SideSpec(), current: SideSpec = SideSpec(), policy: Policy | None = None,
           output: str | os.PathLike | None = None, label: str | None = None, progress: Any = None,
           command: Sequence[str] | None = None, on_start: Any = None,
           metrics: Sequence[str] = ("time",), budget: float | None = None,
           profile_regressions: bool = False) -> AbResult:
    """Measure both sides and gate current against baseline on the paired rounds.

    Time: rounds of block-interleaved process pairs (benchbench/run/interleave.py), added until every case
    is decided by the sequential plan (benchbench/analysis/sequential.py), the plan's last look (the profile's
    `ab_max_rounds`) or the time `budget` in seconds (default: the profile's `ab_budget_s`). `rounds`
    fixes the count instead: one look after exactly that many rounds.

    `output`: a folder for baseline.json and current.json (saved after every case; on interrupt they
    are partial and `runner.Interrupted` names them). `on_start(session, sides)` is called once the
    plan is made and both interpreters are checked, before the first worker starts (once per metric).

    `metrics`: "time" (rounds of fresh workers per side), "instructions" (counted under Callgrind, one
    worker per side and one round unless `rounds` says otherwise: an exact count needs no rounds), or
    both: then the time reports are baseline.json and current.json, the counts'
    baseline-instructions.json and current-instructions.json, and the result names the cases where the
    two metrics disagree (instructions up but time flat, or time up with instructions flat).
    """
    from benchbench.run import session as sess

    metrics = check_metrics(metrics)
    if current.ref and not current.tree:
        raise UserError("the current side is this working tree; only the baseline takes a ref (--baseline-ref)")
    for m in metrics:  # before anything slow: no Valgrind, no run
        metrics_registry.runnable(m).check()
    command = list(command) if command is not None else ["benchbench", *sys.argv[1:]]
    folder = Path(output) if output is not None else None
    if folder is not None:
        check_output_folder(folder, "-o")
    if budget is not None and not budget > 0:
        raise UserError("--budget must be positive")
    policy = policy or Policy()
    session = sess.prepare(suites, suite_paths, backends, profile, rounds, pattern, False, timeout, seed)
    sessions = [metric_session(session, m, rounds) for m in metrics]
    results: list[AbResult] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(_term_interrupts())
        sides = []
        root = repo_root() if baseline.ref or baseline.tree or current.tree else None
        for name, spec in (("baseline", baseline), ("current", current)):
            tree = Path(spec.tree) if spec.tree else None
            if spec.ref and tree is None and root is not None:
                tree = stack.enter_context(source_tree(spec.ref, root, name))
            sources = tree_sources(session.suites, root, tree) if tree is not None and root is not None else ()
            sides.append(make_side(name, spec, tree, sources))
        check_side(sides[0], "--baseline-python" if baseline.python else "the baseline interpreter")
        if current.python:
            check_side(sides[1], "--current-python")
        # the environment as each side's workers see it: collected once, copied into every report of the side
        environments = {side.name: side_environment(side, [s.name for s in session.suites], backends,
                                                    session.environment)
                        for side in sides if differs(side)}
        for metric, part in zip(metrics, sessions, strict=True):
            suffix = f"-{metric}" if metric != metrics[0] else ""  # the first metric's reports keep the plain names
            reports = [sess.new_report(part, label, command, side) for side in sides]
            for side, report in zip(sides, reports, strict=True):
                if side.name in environments:
                    report.environment = copy.deepcopy(environments[side.name])
            paths = {s.name: folder / f"{s.name}{suffix}.json" for s in sides} if folder is not None else {}
            if on_start:
                on_start(part, sides)
            targets = [sess.Target(s, r, paths.get(s.name)) for s, r in zip(sides, reports, strict=True)]
            outcome = None
            if metrics_registry.runnable(metric).rule == "rounds":  # time: block-interleaved process pairs
                plan = Plan.fixed(rounds, policy.alpha) if rounds else \
                    Plan(alpha=policy.alpha, max_rounds=part.profile.ab_max_rounds)
                outcome = Interleaved(part, targets, plan, policy.threshold_for,
                                      budget if budget is not None else part.profile.ab_budget_s,
                                      progress=progress).run()
            else:
                sess.measure(part, targets, progress, canary=False)
            result = gate(reports[0], reports[1], policy, ("baseline", "current"), paired=True)
            profiles = []
            if profile_regressions:  # after the decision; time: in workers of its own
                from benchbench.run.profiling import instruction_diffs, profile_findings

                profiles = profile_findings(part, sides, result, folder, progress) \
                    if metrics_registry.get(metric).explain == "profile" \
                    else instruction_diffs(result)
            results.append(AbResult(reports[0], reports[1], result, paths, metric, outcome=outcome,
                                    profiles=profiles))
    first = results[0]
    if len(results) > 1:
        first.instructions = results[1]
        first.disagreements = disagreements(first.gate.pair.rows, results[1].gate.pair.rows)
    return first
