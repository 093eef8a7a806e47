"""One place for a run: plan the cases, read the environment, measure them in rounds, return Reports.

`run()` is what `benchbench run` does, as one Python call a notebook can make too. `prepare()` and
`measure()` are its two halves, used separately by commands that need more than one side (`ab`
measures a baseline and a current side alternately, round by round) or that add rounds to an
existing report (`gate --rerun`). Nothing here prints: progress goes to the `progress` object the
caller passes (or nowhere), and text is the output layer's job.

A round is one fresh worker process per side visiting every case once, in its own seeded order
(`benchbench/run/rounds.py`). Before each round the canary (`benchbench/analysis/canary.py`) is timed in this
process, so a report knows how fast the machine itself was during each of its rounds. The reports
are saved atomically after every case: an interrupted run leaves valid, partial reports.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchbench import interrupts, metrics
from benchbench.errors import UserError
from benchbench.measure.engine import Budget, Profile, get_profile
from benchbench.model.report import CaseKey, Report, Result, save
from benchbench.run.registry import Suite
from benchbench.run.rounds import merge_round, round_order, round_seed, side_order
from benchbench.run.runner import Interrupted, PlannedCase, Runner, Side, now, plan


@dataclass
class Session:
    """What a run will measure and how: decided once, before any worker starts."""

    suites: list[Suite]
    all_backends: list[Any]  # every backend looked at (the report lists why unusable ones are unusable)
    backends: list[Any]  # the ones measured
    profile: Profile
    budget: Budget  # per case and round (the profile's, with --timeout applied)
    rounds: int
    seed: int
    cases: list[PlannedCase]
    environment: dict[str, Any] = field(default_factory=dict)
    worker_env: dict[str, str] = field(default_factory=dict)
    metric: str = "time"  # a runnable metric's name (benchbench/metrics/__init__.py): "instructions" counts under Callgrind

    def derive(self, results: list[Result]) -> None:
        """Each suite's `derive(results)` hook, on that suite's results (speedups, ratios between cases)."""
        by_suite = {s.name: s for s in self.suites}
        groups: dict[str, list[Result]] = defaultdict(list)
        for r in results:
            groups[r.key.suite].append(r)
        for name, rs in groups.items():
            hook = getattr(by_suite[name].module, "derive", None) if name in by_suite else None
            if hook:
                hook(rs)


def select_backends(requested: Sequence[str] | None) -> tuple[list[Any], list[Any]]:
    """(every backend looked at, the usable ones to measure). Naming an unusable backend is an error."""
    from benchbench.measure import backends as bk

    if requested:
        found = bk.discover(list(dict.fromkeys(requested)))
        unusable = [b for b in found if not b.available]
        if unusable:
            raise UserError("; ".join(f"backend {b.name} is not usable here: {b.reason}" for b in unusable))
        return found, found
    everything = bk.discover()
    return everything, [b for b in everything if b.available]


def prepare(suites: Sequence[str] | None = None, suite_paths: Sequence[str] | None = None,
            backends: Sequence[str] | None = None, profile: str = "default", rounds: int | None = None,
            pattern: str | None = None, overview: bool = False, timeout: float | None = None,
            seed: int | None = None, worker_env: dict[str, str] | None = None,
            environment: bool = True, metric: str = "time") -> Session:
    """Plan a run: suites x benchmarks x params x backends, filtered; the profile's budget and rounds.

    metric="instructions" counts CPU instructions under Valgrind's Callgrind instead of timing: CPU cases
    only, one round unless asked (counts do not vary between processes the way times do)."""
    from benchbench.run import registry

    if timeout is not None and timeout <= 0:
        raise UserError("--timeout must be positive")
    if rounds is not None and rounds < 1:
        raise UserError("--rounds must be at least 1")
    measured = metrics.runnable(metric)
    measured.check()  # before anything slow: no Valgrind, no run
    names = list(suites) if suites else None
    if suite_paths and not names:  # `run --suite-path mine.py` means: run mine
        names = list(dict.fromkeys(s.name for s in registry.load_paths(list(suite_paths))))
    found = registry.discover(list(suite_paths) if suite_paths else None, names)
    all_backends, usable = select_backends(backends)
    prof = get_profile("quick" if overview and profile == "default" else profile)
    budget = replace(prof.budget, timeout_s=timeout) if timeout else prof.budget
    cases = plan(found, usable, prof.name, overview=overview, pattern=pattern)
    if not cases:
        raise UserError("no cases to run: check --suite, --filter and --backend (`benchbench list` shows them)")
    cases = measured.prepare_cases(cases)
    rounds = rounds or measured.default_rounds
    session = Session(suites=found, all_backends=all_backends, backends=usable, profile=prof, budget=budget,
                      rounds=rounds or prof.rounds, seed=random.randrange(2**31) if seed is None else seed,
                      cases=cases, worker_env=dict(worker_env or {}), metric=metric)
    if environment:
        from benchbench.environment import Context, collect

        session.environment = collect(all_backends, Context(suites=tuple(s.name for s in found),
                                                            backends=tuple(backends) if backends else None))
    return session


def new_report(session: Session, label: str | None = None, command: Sequence[str] | None = None,
               side: Side | None = None) -> Report:
    """An empty report for one side of this session (the environment is copied: each report owns its own)."""
    import copy

    from benchbench._version import __version__
    from benchbench.environment.redaction import redact_command, redact_env

    command = list(command) if command is not None else ["benchbench", *sys.argv[1:]]
    side_info = side.info() if side is not None else None
    if side_info is not None:  # a report is a file people share: no secret given as a side's variable
        side_info["env"] = redact_env(side_info.get("env") or {})
    return Report(run_id=uuid.uuid4().hex[:12], created_at=now(), label=label, command=redact_command(command),
                  profile=session.profile.name, benchbench_version=__version__,
                  environment=copy.deepcopy(session.environment), backends=[b.info() for b in session.all_backends],
                  side=side_info)


@dataclass
class Target:
    """One side and the report (and file, if any) its rounds go into."""

    side: Side
    report: Report
    path: Path | None = None


def _canary() -> dict[str, float] | None:
    from benchbench.measure.canary import measure_canary

    try:
        return measure_canary()
    except Exception:  # noqa: BLE001 - the canary informs; it must never stop a run
        return None


def measure(session: Session, targets: Sequence[Target], progress: Any = None, rounds: int | None = None,
            canary: bool = True, on_result: Callable[[Target, Result], None] | None = None) -> list[Report]:
    """Measure the session's cases in rounds into each target's report, sides alternating (ABBA).

    A report that already holds results for some cases (`gate --rerun`) gets more rounds added to them.
    Raises `Interrupted` (after saving every report, marked partial) on Ctrl-C, SIGTERM or SIGHUP.
    """
    rounds = rounds or session.rounds
    workers = contextlib.ExitStack()  # the metric's worker options (Callgrind: a dump folder of this call's own)
    runner_options = workers.enter_context(metrics.runnable(session.metric).workers(session.worker_env))
    try:
        runner = Runner(session.budget, session.profile.name, progress, **runner_options)
    except BaseException:
        workers.close()
        raise
    state = []
    for t in targets:
        acc = {r.key: r for r in t.report.results}
        ended = {k for k, r in acc.items() if not r.ok}
        state.append((acc, ended, len(t.report.rounds)))
    keys = list(dict.fromkeys([*(r.key for t in targets for r in t.report.results), *(c.key for c in session.cases)]))

    def save_target(t: Target) -> None:
        if t.path is not None:
            save(t.report, t.path)

    def publish(t: Target, acc: dict[CaseKey, Result]) -> None:
        t.report.results = [acc[k] for k in keys if k in acc]
        session.derive(t.report.results)

    previous_handlers = interrupts.install()
    total = rounds * len(targets) * len(session.cases)
    done = 0
    try:
        for t in targets:
            t.report.partial = True
            t.report.environment.setdefault("canary", {})
            if canary and "start" not in t.report.environment["canary"]:
                t.report.environment["canary"]["start"] = _canary()
            save_target(t)
        for r in range(rounds):
            order = round_order(session.cases, session.seed, r)
            speed = _canary() if canary else None
            for ti in side_order(len(targets), r):
                t = targets[ti]
                acc, ended, offset = state[ti]
                index = offset + r
                record = {"round": index, "seed": round_seed(session.seed, r), "started_at": now(),
                          "side": t.side.name, "canary": speed}
                t.report.rounds.append(record)
                todo = [c for c in order if c.key not in ended and (c.bench.rounds is None or r < c.bench.rounds)]
                done += len(order) - len(todo)
                who = f" {t.side.name}" if len(targets) > 1 else ""

                def label(i: int, case: PlannedCase, _tag: str = f"round {r + 1}/{rounds}{who}") -> str:
                    return f"{case.key.label}  ({_tag})"

                position = {c.key: i for i, c in enumerate(order)}
                for case, result in runner.run_round(todo, t.side, label, (done, total)):
                    merged = merge_round(acc.get(case.key), result, index, position[case.key])
                    acc[case.key] = merged
                    if not merged.ok:
                        ended.add(case.key)
                    publish(t, acc)
                    save_target(t)
                    if on_result:
                        on_result(t, merged)
                done += len(todo)
                record["finished_at"] = now()
                save_target(t)
        end = _canary() if canary else None
        for t in targets:
            if canary:
                t.report.environment["canary"]["end"] = end
            t.report.partial = False
            t.report.finished_at = now()
            save_target(t)
    except KeyboardInterrupt:
        runner.close()
        for t in targets:
            t.report.finished_at = now()
            save_target(t)
        raise Interrupted([t.path for t in targets if t.path is not None]) from None
    finally:
        runner.close()
        workers.close()
        interrupts.restore(previous_handlers)
    return [t.report for t in targets]


def run(suites: Sequence[str] | None = None, *, suite_paths: Sequence[str] | None = None,
        backends: Sequence[str] | None = None, profile: str = "default", rounds: int | None = None,
        pattern: str | None = None, overview: bool = False, timeout: float | None = None, seed: int | None = None,
        label: str | None = None, output: str | os.PathLike | None = None, progress: Any = None,
        command: Sequence[str] | None = None, worker_env: dict[str, str] | None = None,
        metric: str = "time") -> Report:
    """Run suites and return the Report (saved to `output` after every case when given).

    In a notebook: `report = benchbench.run.session.run(["tensor_ops"], profile="quick", pattern="matmul")`.
    """
    session = prepare(suites, suite_paths, backends, profile, rounds, pattern, overview, timeout, seed, worker_env,
                      metric=metric)
    report = new_report(session, label, command)
    return measure(session, [Target(Side(), report, Path(output) if output else None)], progress)[0]


def default_path(label: str | None, now_s: float | None = None, folder: str = "reports") -> Path:
    """reports/<UTC time to the millisecond>_<host>[_<label>][-N].json: two runs started in the same
    second get different names, and a name already taken (a report, or `ab`'s folder) gets a counter."""
    import socket

    now_s = time.time() if now_s is None else now_s
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now_s)) + f".{int(now_s % 1 * 1000):03d}Z"
    host = "".join(c if c.isalnum() or c in "-." else "-" for c in socket.gethostname())[:40] or "host"
    name = f"{stamp}_{host}" + (f"_{''.join(c if c.isalnum() or c in '-._' else '-' for c in label)}" if label else "")
    path, n = Path(folder) / f"{name}.json", 1
    while path.exists() or path.with_suffix("").exists():
        n += 1
        path = Path(folder) / f"{name}-{n}.json"
    return path
