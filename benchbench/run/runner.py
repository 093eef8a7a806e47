"""Plan cases and run them in worker processes, so a crash, OOM or hang fails one case, not the run.

A round visits the cases once, in an order it is given, in a fresh worker process of one side (the
interpreter, environment and source tree the worker runs with). Within a round the worker is reused
between cases (importing torch costs seconds) and replaced after any case that did not end well;
every case whose benchmark isolates (`isolate=`) gets a worker of its own, next to the shared one.
The rounds themselves, and the reports, are the session's (`benchbench/run/session.py`).
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchbench.api import Benchmark
from benchbench.errors import UserError
from benchbench.measure.backends import Backend
from benchbench.measure.engine import Budget
from benchbench.model.report import CaseKey, Result
from benchbench.run.execute import SCRATCH_ENV, skip_reason
from benchbench.run.registry import Suite

WORKER_START_TIMEOUT = 300.0  # importing torch on a cold, busy machine can be slow


@dataclass
class PlannedCase:
    suite: Suite
    bench: Benchmark
    key: CaseKey
    skip: str | None = None  # known before running: recorded without starting a worker

    @property
    def isolate(self) -> bool:
        return self.bench.isolates(self.key)


def plan(suites: list[Suite], backends: list[Backend], profile: str, overview: bool = False,
         pattern: str | None = None) -> list[PlannedCase]:
    """Suites x benchmarks x params x backends, filtered by a regex on the case label."""
    try:
        rx = re.compile(pattern) if pattern else None
    except re.error as exc:
        raise UserError(f"--filter {pattern!r}: invalid regular expression: {exc}") from None
    out = []
    for suite in suites:
        for bench in suite.benchmarks:
            for backend in backends:
                for key in bench.cases(backend.name, profile, overview=overview):
                    if rx and not rx.search(key.label):
                        continue
                    out.append(PlannedCase(suite, bench, key, skip_reason(bench, key, backend)))
    return out


@dataclass(frozen=True)
class Side:
    """What a worker runs with: an interpreter, environment variables, and paths put first on its
    PYTHONPATH (a source tree). A normal run has one side; `ab` has a baseline and a current one.

    `sources` maps a suite name to where this side loads it from, when that differs from where the
    plan found it (a `--suite-path` resolved inside the baseline's source tree)."""

    name: str = "current"
    python: str = field(default_factory=lambda: sys.executable)
    env: tuple[tuple[str, str], ...] = ()
    pythonpath: tuple[str, ...] = ()
    sources: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    ref: str | None = None  # the git ref the source tree was made from, for the report
    # The worker's working directory. `python -m` puts it first on sys.path, ahead of PYTHONPATH, so a
    # side with a source tree of its own must start there, or the current tree's modules would win.
    cwd: str | None = None

    def worker_env(self) -> dict[str, str]:
        env = dict(self.env)
        if self.pythonpath:
            rest = env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
            env["PYTHONPATH"] = os.pathsep.join([*self.pythonpath, *([rest] if rest else [])])
        return env

    def source_for(self, suite: Suite) -> dict[str, str]:
        found = dict(self.sources).get(suite.name)
        return dict(found) if found is not None else suite.source

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "python": self.python, "env": dict(self.env),
                "pythonpath": list(self.pythonpath), "ref": self.ref, "cwd": self.cwd}


class WorkerDied(Exception):
    pass


class WorkerTimeout(Exception):
    pass


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


class Worker:
    """One `python -m benchbench.worker` process and its JSON-lines channel."""

    def __init__(self, log_dir: Path, env: dict[str, str] | None = None, python: str | None = None,
                 cwd: str | None = None, command_prefix: Sequence[str] = (),
                 start_timeout: float = WORKER_START_TIMEOUT, wait: bool = True) -> None:
        self.log_path = Path(tempfile.mkstemp(prefix="worker-", suffix=".log", dir=log_dir)[1])
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the worker
        # the worker's case scratch folders go in here, so that whoever closes the worker removes them,
        # also those of a case the worker was killed in
        self.scratch_root = Path(tempfile.mkdtemp(prefix="scratch-", dir=log_dir))
        env = {**(env or {}), SCRATCH_ENV: str(self.scratch_root)}
        # Its own session (process group): a timeout or crash kills the worker *and* whatever it
        # started (DataLoader workers, a torchrun launch), and Ctrl-C reaches only the runner.
        # command_prefix: a program the worker runs under (valgrind, for instruction counts).
        self.proc = subprocess.Popen(
            [*command_prefix, python or sys.executable, "-m", "benchbench.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            env={**os.environ, **(env or {})}, text=True, bufsize=1, start_new_session=os.name == "posix", cwd=cwd,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.start_timeout = start_timeout
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Wait for the worker's "ready" (it has imported torch). `wait=False` at start lets two workers
        import at the same time (block-interleaved A/B starts both sides of a pair together). A worker
        that does not start is killed, its pipes closed."""
        try:
            msg = self._next(self.start_timeout, lambda _m: None)
            if msg.get("event") != "ready":
                raise WorkerDied(f"worker failed to start: {msg.get('error', msg)}")
        except WorkerTimeout:
            self.close(kill=True)
            raise WorkerTimeout(f"worker did not start within {self.start_timeout:g} s") from None
        except BaseException:
            self.close(kill=True)
            raise

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _next(self, deadline_s: float, on_event: Callable[[dict], None]) -> dict[str, Any]:
        end = time.monotonic() + deadline_s
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise WorkerTimeout()
            try:
                line = self._lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                code = self.proc.wait()
                how = f"killed by {_signal_name(code)}" if code < 0 else f"exited with status {code}"
                raise WorkerDied(f"worker process {how}")
            try:
                msg = json.loads(line)
            except ValueError:  # a stray line on the worker's stdout (a C library printing): not ours
                continue
            if not isinstance(msg, dict):
                continue
            if msg.get("event") in ("phase",):
                on_event(msg)
                continue
            return msg

    def run(self, request: dict[str, Any], timeout: float, on_event: Callable[[dict], None]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(f"worker process is gone ({exc})") from None
        return self._next(timeout, on_event)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _kill_group(self) -> None:
        if os.name == "posix":
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        elif self.proc.poll() is None:
            self.proc.kill()

    def close(self, kill: bool = False, wait_s: float = 10.0) -> None:
        """End the worker: ask it to exit (waiting up to `wait_s`), or kill its process group at once;
        then close its pipes and remove its log and scratch folders."""
        if self.proc.poll() is None:
            if kill:
                self._kill_group()
            else:
                try:
                    assert self.proc.stdin is not None
                    self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                    self.proc.stdin.close()
                    self.proc.wait(timeout=wait_s)
                except (OSError, subprocess.TimeoutExpired):
                    self._kill_group()
            self.proc.wait()
        elif kill:
            self._kill_group()  # the worker is gone; its children may not be
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
        self._log.close()
        try:
            self.log_path.unlink()
        except OSError:
            pass
        _rmtree(self.scratch_root)


class Interrupted(Exception):
    """The run was stopped by SIGINT/SIGTERM; the partial reports were saved."""

    def __init__(self, report_paths: list[Path]) -> None:
        super().__init__(", ".join(str(p) for p in report_paths))
        self.report_paths = report_paths

    @property
    def report_path(self) -> Path:
        return self.report_paths[0]


class Runner:
    """Runs rounds of cases in workers of one side at a time; knows nothing of reports."""

    def __init__(self, budget: Budget, profile: str, progress: Any = None,
                 worker_env: dict[str, str] | None = None, command_prefix: Sequence[str] = (),
                 slowdown: float = 1.0) -> None:
        self.budget = budget
        self.profile = profile
        self.progress = progress
        self.worker_env = worker_env or {}
        # workers run under command_prefix; every timeout stretches by slowdown (Valgrind: benchbench/measure/callgrind.py)
        self.command_prefix = tuple(command_prefix)
        self.slowdown = slowdown
        self._shared: Worker | None = None
        self._live: set[Worker] = set()  # every worker started and not yet closed: shared and isolated
        self._tmp = Path(tempfile.mkdtemp(prefix="benchbench-run-"))
        self.workers_started = 0

    # --- workers -------------------------------------------------------------------------------
    def _start(self, side: Side) -> Worker:
        self.workers_started += 1
        worker = Worker(self._tmp, {**self.worker_env, **side.worker_env()}, side.python, side.cwd,
                        self.command_prefix, WORKER_START_TIMEOUT * self.slowdown)
        self._live.add(worker)
        return worker

    def _close(self, worker: Worker, kill: bool) -> None:
        self._live.discard(worker)
        worker.close(kill=kill)

    def _drop_shared(self, kill: bool) -> None:
        if self._shared is not None:
            worker, self._shared = self._shared, None
            self._close(worker, kill)

    def kill_all(self) -> None:
        """Kill every worker still alive, shared or isolated, with whatever it started (Ctrl-C, SIGTERM, SIGHUP)."""
        self._shared = None
        for worker in list(self._live):
            self._close(worker, kill=True)

    # --- one case ------------------------------------------------------------------------------
    def _timeout(self, case: PlannedCase) -> float:
        return (case.bench.timeout or self.budget.timeout_s) * self.slowdown

    def run_case(self, case: PlannedCase, side: Side) -> Result:
        """Run one case in this side's shared worker, or in a worker of its own when it isolates."""
        base = {"key": case.key, "definition_hash": case.bench.definition_hash}
        if case.skip:
            return Result(status="skipped", reason=case.skip, **base)
        t0 = time.monotonic()
        phase = {"name": "start"}

        def on_event(msg: dict) -> None:
            phase["name"] = msg.get("phase", phase["name"])
            if self.progress:
                self.progress.phase(phase["name"])

        try:
            if case.isolate:
                worker = self._start(side)
            else:
                if self._shared is None:
                    self._shared = self._start(side)
                worker = self._shared
        except (WorkerDied, WorkerTimeout) as exc:
            self._drop_shared(kill=True)
            return Result(status="failed", reason=str(exc) or "worker did not start", **base)
        request = {"source": side.source_for(case.suite), "benchmark": case.bench.name, "key": case.key.to_dict(),
                   "budget": self.budget.to_dict(), "profile": self.profile}
        timeout = self._timeout(case)
        status_ok = False
        try:
            msg = worker.run(request, timeout, on_event)
        except WorkerTimeout:
            result = Result(status="timeout", reason=f"no result within the {timeout:g} s case timeout "
                            f"(during {phase['name']})", duration_s=time.monotonic() - t0,
                            details=worker.log_tail() or None, **base)
        except WorkerDied as exc:
            result = Result(status="failed", reason=f"{exc} (during {phase['name']})",
                            duration_s=time.monotonic() - t0, details=worker.log_tail() or None, **base)
        else:
            if msg.get("event") == "result":
                result = Result.from_dict(msg["result"])
            else:
                result = Result(status="failed", reason=msg.get("error", "worker error"), details=msg.get("details"),
                                duration_s=time.monotonic() - t0, **base)
            status_ok = result.status not in ("failed", "timeout")
        # state after a failure (sticky CUDA errors, half-built graphs) must not leak into the next case
        if case.isolate:
            self._close(worker, kill=not status_ok)
        elif not status_ok:
            self._drop_shared(kill=True)
        return result

    # --- one round -----------------------------------------------------------------------------
    def run_round(self, cases: list[PlannedCase], side: Side, label: Callable[[int, PlannedCase], str] | None = None,
                  counter: tuple[int, int] | None = None) -> Iterator[tuple[PlannedCase, Result]]:
        """Visit `cases` in the given order in a fresh worker of `side`; yields each case's result.

        `counter` is (cases done before this round, cases in the whole run), for progress."""
        done, total = counter or (0, len(cases))
        self._drop_shared(kill=False)
        try:
            for i, case in enumerate(cases):
                if self.progress:
                    self.progress.start_case(done + i, total, label(i, case) if label else case.key.label)
                result = self.run_case(case, side)
                if self.progress:
                    self.progress.finish_case(result)
                yield case, result
        except BaseException:  # Ctrl-C and the like: kill at once, never wait for a busy worker
            self.kill_all()
            raise
        self._drop_shared(kill=False)

    def close(self) -> None:
        self.kill_all()
        if self.progress:
            self.progress.close()
        _rmtree(self._tmp)


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
