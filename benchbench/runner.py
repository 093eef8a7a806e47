"""Plan cases and run them in worker processes, so a crash, OOM or hang fails one case, not the run.

Workers are reused between cases (importing torch costs seconds) and replaced after any case that
did not end well, and around every case its benchmark isolates (`isolate=`). The report is saved
atomically after every case, so an interrupted or killed run leaves a valid, partial report.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchbench.api import Benchmark
from benchbench.backends import Backend
from benchbench.errors import UserError
from benchbench.execute import skip_reason
from benchbench.measure import Budget
from benchbench.registry import Suite
from benchbench.report import CaseKey, Report, Result, save

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
    # Within a suite, shared-worker cases first: interleaving isolated ones would restart the
    # shared worker (seconds of imports) around each of them.
    order = {s.name: i for i, s in enumerate(suites)}
    return sorted(out, key=lambda c: (order[c.suite.name], c.isolate and not c.skip))


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

    def __init__(self, log_dir: Path, env: dict[str, str] | None = None, command_prefix: Sequence[str] = (),
                 start_timeout: float = WORKER_START_TIMEOUT) -> None:
        self.log_path = Path(tempfile.mkstemp(prefix="worker-", suffix=".log", dir=log_dir)[1])
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the worker
        # Its own session (process group): a timeout or crash kills the worker *and* whatever it
        # started (DataLoader workers, a torchrun launch), and Ctrl-C reaches only the runner.
        # command_prefix: a program the worker runs under (valgrind, for instruction counts).
        self.proc = subprocess.Popen(
            [*command_prefix, sys.executable, "-m", "benchbench.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            env={**os.environ, **(env or {})}, text=True, bufsize=1, start_new_session=os.name == "posix",
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        msg = self._next(start_timeout, lambda _m: None)
        if msg.get("event") != "ready":
            raise WorkerDied(f"worker failed to start: {msg.get('error', msg)}")

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
            msg = json.loads(line)
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

    def close(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            if kill:
                self._kill_group()
            else:
                try:
                    assert self.proc.stdin is not None
                    self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                    self.proc.stdin.close()
                    self.proc.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    self._kill_group()
            self.proc.wait()
        elif kill:
            self._kill_group()  # the worker is gone; its children may not be
        self._log.close()
        try:
            self.log_path.unlink()
        except OSError:
            pass


class Interrupted(Exception):
    """The run was stopped by SIGINT/SIGTERM; the partial report was saved."""

    def __init__(self, report_path: Path) -> None:
        super().__init__(str(report_path))
        self.report_path = report_path


class Runner:
    def __init__(self, report: Report, path: Path, budget: Budget, profile: str,
                 progress: Any = None, worker_env: dict[str, str] | None = None,
                 command_prefix: Sequence[str] = (), slowdown: float = 1.0) -> None:
        self.report = report
        self.path = path
        self.budget = budget
        self.profile = profile
        self.progress = progress
        self.worker_env = worker_env or {}
        # workers run under command_prefix; every timeout stretches by slowdown (Valgrind: benchbench/callgrind.py)
        self.command_prefix = tuple(command_prefix)
        self.slowdown = slowdown
        self._worker: Worker | None = None
        self._tmp = Path(tempfile.mkdtemp(prefix="benchbench-run-"))

    # --- workers -------------------------------------------------------------------------------
    def _get_worker(self, fresh: bool) -> Worker:
        if fresh and self._worker is not None:
            self._drop_worker(kill=False)
        if self._worker is None:
            self._worker = Worker(self._tmp, self.worker_env, self.command_prefix,
                                  WORKER_START_TIMEOUT * self.slowdown)
        return self._worker

    def _drop_worker(self, kill: bool) -> None:
        if self._worker is not None:
            self._worker.close(kill=kill)
            self._worker = None

    # --- one case ------------------------------------------------------------------------------
    def _timeout(self, case: PlannedCase) -> float:
        return (case.bench.timeout or self.budget.timeout_s) * self.slowdown

    def _run_one(self, case: PlannedCase) -> Result:
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
            worker = self._get_worker(fresh=case.isolate)
        except (WorkerDied, WorkerTimeout) as exc:
            self._drop_worker(kill=True)
            return Result(status="failed", reason=str(exc) or "worker did not start", **base)
        request = {"source": case.suite.source, "benchmark": case.bench.name, "key": case.key.to_dict(),
                   "budget": self.budget.to_dict(), "profile": self.profile}
        timeout = self._timeout(case)
        try:
            msg = worker.run(request, timeout, on_event)
        except WorkerTimeout:
            tail = worker.log_tail()
            self._drop_worker(kill=True)
            return Result(status="timeout", reason=f"no result within the {timeout:g} s case timeout "
                          f"(during {phase['name']})", duration_s=time.monotonic() - t0, details=tail or None, **base)
        except WorkerDied as exc:
            tail = worker.log_tail()
            self._drop_worker(kill=True)
            return Result(status="failed", reason=f"{exc} (during {phase['name']})",
                          duration_s=time.monotonic() - t0, details=tail or None, **base)
        if msg.get("event") == "result":
            result = Result.from_dict(msg["result"])
        else:
            result = Result(status="failed", reason=msg.get("error", "worker error"), details=msg.get("details"),
                            duration_s=time.monotonic() - t0, **base)
        if result.status in ("failed", "timeout") or case.isolate:
            # state after a failure (sticky CUDA errors, half-built graphs) must not leak into the next case
            self._drop_worker(kill=result.status != "ok")
        return result

    # --- the run -------------------------------------------------------------------------------
    def save(self) -> None:
        save(self.report, self.path)

    def run(self, cases: list[PlannedCase], derive: Callable[[list[Result]], None] | None = None) -> Report:
        previous = signal.getsignal(signal.SIGTERM)

        def on_term(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, on_term)
        self.report.partial = True
        try:
            self.save()
            for i, case in enumerate(cases):
                if self.progress:
                    self.progress.start_case(i, len(cases), case.key.label)
                result = self._run_one(case)
                self.report.results.append(result)
                if derive:
                    derive(self.report.results)
                self.save()
                if self.progress:
                    self.progress.finish_case(result)
            self.report.partial = False
            self.report.finished_at = _now()
            self.save()
        except KeyboardInterrupt:
            self._drop_worker(kill=True)
            self.report.finished_at = _now()
            self.save()
            raise Interrupted(self.path) from None
        finally:
            self._drop_worker(kill=True)
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, previous)
            if self.progress:
                self.progress.close()
            _rmtree(self._tmp)
        return self.report


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
