"""Which commit made it slower: a binary search over `git rev-list --first-parent GOOD..BAD`, one `ab` per step.

Each step measures a candidate commit against GOOD with `ab`'s machinery (benchbench/run/ab.py): both
source trees are `git worktree`s, both sides alive together and taking turns block by block, rounds
added until the sequential plan decides, and the gate's rule on the two reports. The candidate is
bad when the gate says `regression` (of the cases asked for, against GOOD), good when it says `pass`.

The search:
1. BAD is measured first. If it is not slower than GOOD, there is nothing to find: the result is
   "no regression between GOOD and BAD", not a blamed commit.
2. Then the usual halving between the last good and the first known bad commit of the range, so a
   range of n commits takes at most ceil(log2 n) more steps: ceil(log2 n) + 1 in all.
3. A step that stays inconclusive is run again with twice its rounds and budget (`retries` times);
   if it is still unclear, the search stops and says so rather than guess.
4. A commit whose build (`build`, a shell command run in its tree) or import of the suites fails, or
   whose cases fail, is skipped, like `git bisect skip`: the next candidate is the untested commit
   nearest the middle. If only skipped commits are left, the answer is the range they span.

`run_bisect` does the search over any `Step` (a callable commit -> Trial), so the search is tested
with a fake; `AbStep` is the real one. Nothing here prints: output/bisect.py renders the result.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from benchbench.errors import ExitCode, UserError

VERDICTS = ("regression", "pass", "inconclusive", "skip")
BUILD_TIMEOUT_S = 3600.0
PROBE_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str

    @property
    def short(self) -> str:
        return self.sha[:10]


@dataclass
class Trial:
    """What one `ab` of a candidate against GOOD said.

    `verdict`: the gate's (regression / pass / inconclusive), or "skip" when the candidate could not be
    measured (`reason` says why). `case`, `ratio`, `ci_low`, `ci_high` and `level`: the case that
    decided it (the most slowed one), its ratio current/GOOD and interval. `rounds`: process pairs run."""

    verdict: str
    reason: str | None = None
    case: str | None = None
    ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    level: float | None = None
    rounds: int | None = None
    elapsed_s: float | None = None
    output: str | None = None  # the step's reports folder

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown trial verdict {self.verdict!r}")


class Step(Protocol):
    def __call__(self, commit: Commit, attempt: int) -> Trial: ...


@dataclass
class StepRecord:
    """One commit tested: its place in the range (1 = the oldest after GOOD), and its last trial."""

    number: int
    commit: Commit
    position: int
    trial: Trial
    attempts: int = 1

    @property
    def outcome(self) -> str:
        """bad / good / unclear / skipped: what the search took from it."""
        return {"regression": "bad", "pass": "good", "inconclusive": "unclear", "skip": "skipped"}[self.trial.verdict]


OUTCOMES = ("found", "no-regression", "unclear", "only-skipped")


@dataclass
class BisectResult:
    good: Commit
    bad: Commit
    good_ref: str
    bad_ref: str
    commits: list[Commit]  # the range GOOD..BAD, oldest first (BAD last)
    steps: list[StepRecord] = field(default_factory=list)
    outcome: str = "unclear"  # found / no-regression / unclear / only-skipped
    first_bad: Commit | None = None
    # only-skipped: the first bad commit is one of these (skipped commits, then the first known bad one)
    suspects: list[Commit] = field(default_factory=list)
    # unclear: the range still open, from the first commit after the last good one to the first known bad one
    open_range: list[Commit] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def max_steps(self) -> int:
        """ceil(log2 n) + 1 for n commits: BAD first, then halving (without skips or retries)."""
        return math.ceil(math.log2(len(self.commits))) + 1 if self.commits else 0

    @property
    def decisive(self) -> StepRecord | None:
        """The step that measured the first bad commit (its ratio and interval are the answer's)."""
        if self.first_bad is None:
            return None
        return next((s for s in self.steps if s.commit == self.first_bad), None)

    @property
    def exit_code(self) -> int:
        return int({"found": ExitCode.REGRESSION, "no-regression": ExitCode.OK}.get(self.outcome,
                                                                                ExitCode.INCONCLUSIVE))


# --- git ----------------------------------------------------------------------------------------------
def git(args: Sequence[str], cwd: Path) -> str:
    """`git ARGS` in `cwd`; its stdout, or a one-line UserError with git's last line."""
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        raise UserError("bisect needs git, which is not installed") from None
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        raise UserError(f"git {' '.join(args)}: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return proc.stdout


def find_root(cwd: Path | None = None) -> Path:
    cwd = Path(cwd or Path.cwd())
    try:
        return Path(git(["rev-parse", "--show-toplevel"], cwd).strip()).resolve()
    except UserError:
        raise UserError(f"bisect: {cwd} is not inside a git repository") from None


def resolve(ref: str, root: Path, what: str) -> Commit:
    try:
        sha = git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], root).strip()
    except UserError:
        sha = ""
    if not sha:
        raise UserError(f"{what} {ref}: no such commit, branch or tag in {root} (in CI, check out with "
                        "fetch-depth: 0)")
    return Commit(sha, git(["log", "-1", "--format=%s", sha], root).strip())


def commit_range(good: str, bad: str, root: Path, first_parent: bool = True) -> tuple[Commit, Commit, list[Commit]]:
    """GOOD, BAD and the commits of GOOD..BAD, oldest first; GOOD must be an ancestor of BAD."""
    g, b = resolve(good, root, "GOOD"), resolve(bad, root, "BAD")
    if g.sha == b.sha:
        raise UserError(f"GOOD {good} and BAD {bad} are the same commit: nothing to bisect")
    ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", g.sha, b.sha], cwd=root, capture_output=True)
    if ancestor.returncode != 0:
        raise UserError(f"GOOD {good} is not an ancestor of BAD {bad}: bisect searches the history from GOOD to BAD")
    fmt = ["rev-list", "--reverse", "--format=%H %s", "--no-commit-header"]
    try:
        out = git([*fmt, *(["--first-parent"] if first_parent else []), f"{g.sha}..{b.sha}"], root)
    except UserError:  # git before 2.33 has no --no-commit-header
        out = "\n".join(line for line in git(["log", "--reverse", "--format=%H %s",
                                                 *(["--first-parent"] if first_parent else []),
                                                 f"{g.sha}..{b.sha}"], root).splitlines())
    commits = [Commit(*(line.split(" ", 1) + [""])[:2]) for line in out.splitlines() if line.strip()]
    if not commits or commits[-1].sha != b.sha:
        raise UserError(f"BAD {bad} is not the newest commit of GOOD..BAD")
    return g, b, commits


# --- the search ---------------------------------------------------------------------------------------
def _next_index(lo: int, hi: int, skipped: set[int]) -> int | None:
    """The untested, unskipped index strictly between lo and hi nearest their middle (lower first)."""
    mid = (lo + hi) // 2
    for d in range(hi - lo):
        for i in (mid - d, mid + d):
            if lo < i < hi and i not in skipped:
                return i
    return None


def run_bisect(good: Commit, bad: Commit, commits: Sequence[Commit], step: Step, retries: int = 1,
               good_ref: str | None = None, bad_ref: str | None = None,
               on_step: Callable[[StepRecord], None] | None = None,
               clock: Callable[[], float] = time.monotonic) -> BisectResult:
    """The binary search over `commits` (GOOD..BAD, oldest first, BAD last) with `step` deciding each one."""
    if not commits or commits[-1] != bad:
        raise ValueError("commits must be the range GOOD..BAD, oldest first, BAD last")
    t0 = clock()
    result = BisectResult(good, bad, good_ref or good.short, bad_ref or bad.short, list(commits))

    def test(i: int) -> StepRecord:
        trial = step(commits[i], 0)
        attempts = 1
        while trial.verdict == "inconclusive" and attempts <= retries:
            trial = step(commits[i], attempts)
            attempts += 1
        record = StepRecord(len(result.steps) + 1, commits[i], i + 1, trial, attempts)
        result.steps.append(record)
        if on_step is not None:
            on_step(record)
        return record

    def finish(outcome: str, **kw: Any) -> BisectResult:
        result.outcome = outcome
        for k, v in kw.items():
            setattr(result, k, v)
        result.elapsed_s = clock() - t0
        return result

    lo, hi = -1, len(commits) - 1  # commits[lo] is good (GOOD itself at -1), commits[hi] is bad
    first = test(hi)
    if first.outcome == "good":
        return finish("no-regression")
    if first.outcome == "unclear":
        return finish("unclear", open_range=list(commits))
    if first.outcome == "skipped":
        raise UserError(f"BAD {result.bad_ref} cannot be measured ({first.trial.reason}): bisect needs a BAD "
                        "commit that builds and runs")
    skipped: set[int] = set()
    while True:
        i = _next_index(lo, hi, skipped)
        if i is None:
            break
        record = test(i)
        if record.outcome == "bad":
            hi = i
        elif record.outcome == "good":
            lo = i
        elif record.outcome == "skipped":
            skipped.add(i)
        else:
            return finish("unclear", open_range=list(commits[lo + 1:hi + 1]))
    suspects = [commits[i] for i in range(lo + 1, hi) if i in skipped]
    if suspects:
        return finish("only-skipped", suspects=[*suspects, commits[hi]])
    return finish("found", first_bad=commits[hi])


# --- one step: an `ab` of the candidate against GOOD ----------------------------------------------------
_PROBE = """
import json, sys
try:
    from benchbench.run import registry
except ImportError:  # a commit from before the layer packages
    from benchbench import registry
for source in json.loads(sys.argv[1]):
    registry.load_source(source)
"""


def probe(python: str, tree: Path, sources: Sequence[dict[str, str]], env: dict[str, str] | None = None) -> str | None:
    """Import the suites (and so the code they call) from `tree` the way a worker would; None when they
    import, else the error's last line."""
    from benchbench.worktree import tree_pythonpath

    rest = os.environ.get("PYTHONPATH", "")
    full = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join([*tree_pythonpath(tree), *([rest] if rest else [])])}
    try:
        proc = subprocess.run([python, "-c", _PROBE, json.dumps(list(sources))], cwd=tree, env=full,
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    if proc.returncode == 0:
        return None
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {proc.returncode}"


def build(command: str, tree: Path) -> str | None:
    """Run the build command in the tree; None when it succeeds, else why not (its last line of output)."""
    try:
        proc = subprocess.run(command, shell=True, cwd=tree, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"build did not finish in {BUILD_TIMEOUT_S:g} s"
    if proc.returncode == 0:
        return None
    lines = [line for line in (proc.stderr + proc.stdout).strip().splitlines() if line.strip()]
    return f"build failed (exit {proc.returncode}): {lines[-1] if lines else shlex.quote(command)}"


def relocate(source: dict[str, str], root: Path, tree: Path) -> dict[str, str]:
    """A suite found at a file of the repository, as the same file in `tree` (other sources unchanged)."""
    path = source.get("path")
    if not path:
        return dict(source)
    try:
        rel = Path(path).resolve().relative_to(root)
    except ValueError:
        return dict(source)
    return {**source, "path": str(tree / rel)}


def trial_from_ab(result: Any, elapsed_s: float | None = None, output: str | None = None) -> Trial:
    """An AbResult as a Trial. A case that failed on the candidate but ran on GOOD (`broke`) makes the
    candidate unmeasurable (skip), not slower: bisect looks for a change in time."""
    gate = result.gate
    regressions = gate.by_outcome("regression")
    broke = [f for f in regressions if f.row.verdict == "broke"]
    rounds = result.outcome.rounds if result.outcome is not None else None
    if broke:
        f = broke[0]
        why = f.row.other.reason if f.row.other is not None and f.row.other.reason else f.why
        return Trial("skip", reason=f"{f.row.key.label}: {why}", case=f.row.key.label, rounds=rounds,
                     elapsed_s=elapsed_s, output=output)
    findings = regressions or gate.by_outcome("inconclusive") or gate.findings
    timed = [f for f in findings if f.row.change is not None]
    f = max(timed, key=lambda f: f.row.change.ratio) if timed else (findings[0] if findings else None)
    change = f.row.change if f is not None else None
    return Trial(gate.verdict, reason=f.why if f is not None else None, case=f.row.key.label if f is not None else None,
                 ratio=change.ratio if change else None, ci_low=change.ci_low if change else None,
                 ci_high=change.ci_high if change else None, level=change.level if change else None,
                 rounds=rounds, elapsed_s=elapsed_s, output=output)


class AbStep:
    """One bisect step: GOOD's worktree (made once) as the baseline, the candidate's worktree as the
    current side, measured by `benchbench.run.ab.run_ab` with `ab_args` (suites, filter, profile, policy,
    ...). Attempt k (after inconclusive ones) runs a fixed 2**k times the rounds: the given `rounds`, or
    the profile's last look (`max_rounds`), decided once at the end with all of alpha."""

    def __init__(self, root: Path, good_tree: Path, ab_args: dict[str, Any], output: Path, sources: Sequence[dict],
                 build_command: str | None = None, python: str | None = None, max_rounds: int = 12,
                 good_ref: str | None = None, on_start: Callable[[Commit, int], None] | None = None) -> None:
        self.root, self.good_tree, self.ab_args, self.output = root, good_tree, dict(ab_args), output
        self.sources, self.build_command = list(sources), build_command
        self.python = python or sys.executable
        self.max_rounds, self.good_ref, self.on_start = max_rounds, good_ref, on_start

    def __call__(self, commit: Commit, attempt: int) -> Trial:
        from benchbench.run.ab import SideSpec, run_ab
        from benchbench.worktree import source_tree

        t0 = time.monotonic()
        folder = self.output / f"{commit.short}{f'-retry{attempt}' if attempt else ''}"
        with source_tree(commit.sha, self.root, f"candidate-{commit.short}") as tree:
            if self.build_command:
                why = build(self.build_command, tree)
                if why:
                    return Trial("skip", reason=why, elapsed_s=time.monotonic() - t0)
            why = probe(self.python, tree, [relocate(s, self.root, tree) for s in self.sources])
            if why:
                return Trial("skip", reason=f"import failed: {why}", elapsed_s=time.monotonic() - t0)
            args = dict(self.ab_args)
            if attempt:  # a fixed, larger count: one look at the end with all of alpha
                args["rounds"] = (args.get("rounds") or self.max_rounds) * 2 ** attempt
            if self.on_start is not None:
                self.on_start(commit, attempt)
            result = run_ab(**args, baseline=SideSpec(ref=self.good_ref, tree=str(self.good_tree)),
                            current=SideSpec(ref=commit.sha, tree=str(tree)), output=folder)
        return trial_from_ab(result, time.monotonic() - t0, str(folder))


def bisect(good: str, bad: str, *, suites: Sequence[str] | None = None, suite_paths: Sequence[str] | None = None,
           backends: Sequence[str] | None = None, profile: str = "default", rounds: int | None = None,
           pattern: str | None = None, timeout: float | None = None, seed: int | None = None,
           policy: Any = None, budget: float | None = None, output: str | os.PathLike | None = None,
           build_command: str | None = None, retries: int = 1, first_parent: bool = True,
           on_step: Callable[[StepRecord], None] | None = None,
           on_start: Callable[[Commit, int], None] | None = None) -> BisectResult:
    """Find the first commit of GOOD..BAD (in the repository around the current folder) that is slower
    than GOOD.

    The cases are planned once from this working tree's suites (`suites`, `suite_paths`, `pattern`,
    ...); each step loads them from the candidate's tree. Each step's two reports go to
    `output`/<commit>/ (default: a temporary folder, removed afterwards)."""
    import tempfile

    from benchbench.interrupts import stop_signals_interrupt
    from benchbench.run import session as sess
    from benchbench.worktree import source_tree

    if retries < 0:
        raise UserError("--retries must be 0 or more")
    root = find_root()
    g, b, commits = commit_range(good, bad, root, first_parent)
    # plan once, here, before anything slow: an unknown suite or an empty filter fails now
    session = sess.prepare(suites, suite_paths, backends, profile, rounds, pattern, False, timeout, seed,
                           environment=False)
    if not session.cases:
        raise UserError("bisect: no cases to measure (check --suite and --filter)")
    sources = [s.source for s in session.suites if any(c.suite is s for c in session.cases)]
    ab_args = {"suites": suites, "suite_paths": suite_paths, "backends": backends, "profile": profile,
               "rounds": rounds, "pattern": pattern, "timeout": timeout, "seed": seed, "policy": policy,
               "budget": budget, "command": ["benchbench", "bisect", good, bad], "label": None}
    with contextlib.ExitStack() as stack:
        # SIGTERM/SIGHUP as Ctrl-C, so that the worktrees are removed whenever the job is stopped
        stack.enter_context(stop_signals_interrupt())
        folder = Path(output) if output is not None else Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="benchbench-bisect-")))
        good_tree = stack.enter_context(source_tree(g.sha, root, f"good-{g.short}"))
        if build_command:
            why = build(build_command, good_tree)
            if why:
                raise UserError(f"GOOD {good}: {why}")
        why = probe(sys.executable, good_tree, [relocate(s, root, good_tree) for s in sources])
        if why:
            raise UserError(f"GOOD {good}: the suites do not import there ({why})")
        step = AbStep(root, good_tree, ab_args, folder, sources, build_command,
                      max_rounds=session.profile.ab_max_rounds, good_ref=g.sha, on_start=on_start)
        result = run_bisect(g, b, commits, step, retries, good, bad, on_step)
    if output is None:  # the steps' reports went to a temporary folder, removed now
        for record in result.steps:
            record.trial.output = None
    return result
