"""Block-interleaved A/B: both sides alive at once, taking turns block by block, rounds added until clear.

A round starts one worker per side at the same time (a process pair) and keeps both alive. For each
case, in the round's shuffled order:

1. each side prepares the case (setup, first call, warm-up, calibration), one side after the other;
   the loop count is the largest calibration seen so far (of both sides, over the rounds) and the
   layout is fitted to the quickest round so far, both shared by the two sides of a round, so a block
   is the same work on both (a first round that the machine starved leaves no thin layout behind);
2. the sides run timed blocks in turn, ABBA (`blocks.turn_order`), over `windows` windows; the idle
   side waits blocked on its pipe, never spinning, and its OpenMP threads are told to sleep
   (OMP_WAIT_POLICY=PASSIVE unless the side sets it), so it does not steal the other side's cores;
3. each side turns its samples into a Result (metrics, peak memory), merged round by round into its
   report with the round's window count, so the pairing can be read back from the reports.

A benchmark that times itself (no callable to time by blocks) is run whole on each side in turn, and
its rounds pair as whole runs. A case that isolates gets a process pair of its own.

After every round from the plan's first look on, each undecided case is looked at
(`benchbench/analysis/sequential.py`); a decided case gets no more rounds. The run stops when every case is
decided, at the plan's last look, or when the next round would not fit the time budget. Nothing here
prints or decides the gate: the caller (`ab.py`) gates the two reports with compare.py, which reads
the same structure with the same functions (`blocks.paired_round_logs`).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchbench.analysis import blocks
from benchbench.analysis.sequential import Look, Plan, look
from benchbench.model.report import CaseKey, Result, save
from benchbench.run.rounds import merge_round, round_order, round_seed, side_order
from benchbench.run.runner import Interrupted, PlannedCase, Side, Worker, WorkerDied, WorkerTimeout, now

# The idle side must sleep, not spin: libgomp's threads spin for a while after a parallel region
# before they sleep, and on a small machine a spinning idle side takes cores from the side that is
# being timed. A side that sets its own OMP_WAIT_POLICY keeps it.
IDLE_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


@dataclass(frozen=True)
class Layout:
    """How many windows of how many blocks per side a case gets in one round."""

    windows: int = 6
    blocks: int = 8  # per side and window; even, so that every window is ABBA-balanced
    case_round_s: float = 2.0  # at most this long of timed blocks per case and round, both sides

    def fit(self, block_s: float) -> tuple[int, int]:
        """(windows, blocks) for blocks of `block_s` seconds: fewer blocks (down to 2), then fewer windows
        (down to 2), until both sides' blocks fit `case_round_s`. Long cases stay at 2 x 2 whatever it costs."""
        w, b = self.windows, self.blocks

        def cost() -> float:
            return 2 * w * b * block_s

        while cost() > self.case_round_s and b > 2:
            b -= 2
        while cost() > self.case_round_s and w > 2:
            w -= 1
        return w, b


@dataclass
class CaseState:
    """One case across rounds: its shared loop count and layout, and where its decision stands."""

    case: PlannedCase
    loops: int | None = None
    windows: int | None = None
    blocks: int | None = None
    ended: bool = False  # not ok on a side: no more rounds (the gate says broke, missing, ...)
    look: Look | None = None
    per_call_s: float | None = None  # what the layout was fitted to: the quickest round's slower side

    def calibrate(self, layout: Layout, loops: Sequence[int], per_call_s: Sequence[float]) -> None:
        """Take this round's calibrations (one per side that times by blocks): the loop count is the
        largest seen, and the layout is fitted to the quickest round so far (its slower side's time per
        call). Both sides share both in a round. A first round starved by the machine (slow calls, so
        few loops and a thin layout) thus leaves no thin layout behind: the next quicker round widens it."""
        self.loops = max([self.loops or 1, *loops])
        slower = max(per_call_s, default=0.0)
        if self.per_call_s is None or slower < self.per_call_s:
            self.per_call_s = slower
        self.windows, self.blocks = layout.fit(self.per_call_s * self.loops)

    @property
    def done(self) -> bool:
        return self.ended or (self.look is not None and self.look.decision != "undecided")


@dataclass
class Outcome:
    """What the interleaved run did: rounds run, why it stopped, each case's last look, time taken."""

    plan: Plan
    rounds: int
    stopped: str  # "decided" (every case), "max-rounds", "budget"
    elapsed_s: float
    looks: dict[CaseKey, Look] = field(default_factory=dict)
    rounds_of: dict[CaseKey, int] = field(default_factory=dict)


class _Pair:
    """One worker per side, started together and alive together."""

    def __init__(self, sides: Sequence[Side], log_dir: Path, worker_env: dict[str, str], start_timeout: float,
                 on_start: Callable[[], None] = lambda: None) -> None:
        self.sides, self.log_dir, self.worker_env, self.start_timeout = sides, log_dir, worker_env, start_timeout
        self.workers: list[Worker | None] = [None] * len(sides)
        self.errors: list[str | None] = [None] * len(sides)
        self.on_start = on_start
        for i in range(len(sides)):
            self._spawn(i)
        for i in range(len(sides)):
            self._ready(i)

    def _spawn(self, i: int) -> None:
        side = self.sides[i]
        env = {**IDLE_ENV, **self.worker_env, **side.worker_env()}
        try:
            self.workers[i] = Worker(self.log_dir, env, side.python, side.cwd, start_timeout=self.start_timeout,
                                     wait=False)
            self.on_start()
            self.errors[i] = None
        except OSError as exc:
            self.workers[i], self.errors[i] = None, f"worker did not start: {exc}"

    def _ready(self, i: int) -> None:
        worker = self.workers[i]
        if worker is None:
            return
        try:
            worker.wait_ready()  # a worker that does not start is killed there
        except (WorkerDied, WorkerTimeout) as exc:
            self.workers[i], self.errors[i] = None, str(exc) or "worker did not start"

    def replace(self, i: int) -> None:
        """A fresh worker for side i (after a failed case: its state must not leak into the next)."""
        worker = self.workers[i]
        if worker is not None:
            worker.close(kill=True)
        self._spawn(i)
        self._ready(i)

    def close(self, kill: bool = False) -> None:
        for i, worker in enumerate(self.workers):
            if worker is not None:
                worker.close(kill=kill)
                self.workers[i] = None


class Interleaved:
    """Runs the rounds of a block-interleaved A/B over two targets (baseline first, then current)."""

    def __init__(self, session: Any, targets: Sequence[Any], plan: Plan, threshold_for: Callable[[CaseKey], float],
                 budget_s: float | None = None, layout: Layout | None = None, progress: Any = None,
                 clock: Callable[[], float] = time.monotonic, start_timeout: float | None = None) -> None:
        from benchbench.run.runner import WORKER_START_TIMEOUT

        if len(targets) != 2:
            raise ValueError("block-interleaved A/B needs exactly two sides")
        self.session, self.targets, self.plan = session, list(targets), plan
        self.threshold_for, self.budget_s, self.progress, self.clock = threshold_for, budget_s, progress, clock
        self.layout = layout or Layout(case_round_s=session.profile.ab_case_round_s)
        self.start_timeout = start_timeout or WORKER_START_TIMEOUT
        self.states = [CaseState(c) for c in session.cases]
        self.acc: list[dict[CaseKey, Result]] = [{}, {}]
        self.keys = [c.key for c in session.cases]
        self._tmp = Path(tempfile.mkdtemp(prefix="benchbench-ab-"))
        self.workers_started = 0

    # --- reports -----------------------------------------------------------------------------------
    def _publish(self, ti: int) -> None:
        t = self.targets[ti]
        t.report.results = [self.acc[ti][k] for k in self.keys if k in self.acc[ti]]
        self.session.derive(t.report.results)
        if t.path is not None:
            save(t.report, t.path)

    def _record(self, ti: int, case: PlannedCase, result: Result, r: int, position: int, windows: int | None) -> None:
        merged = merge_round(self.acc[ti].get(case.key), result, r, position,
                             {"windows": windows} if windows is not None and result.ok else None)
        self.acc[ti][case.key] = merged
        self._publish(ti)

    # --- one request -------------------------------------------------------------------------------
    def _timeout(self, case: PlannedCase) -> float:
        return case.bench.timeout or self.session.budget.timeout_s

    def _ask(self, pair: _Pair, i: int, request: dict[str, Any], case: PlannedCase) -> dict[str, Any] | Result:
        """The worker's answer, or a failed/timeout Result (the worker is then replaced)."""
        base = {"key": case.key, "definition_hash": case.bench.definition_hash}
        worker = pair.workers[i]
        if worker is None:
            return Result(status="failed", reason=pair.errors[i] or "worker did not start", **base)

        def on_event(msg: dict) -> None:
            if self.progress:
                self.progress.phase(f"{self.targets[i].side.name} {msg.get('phase', '')}")

        timeout = self._timeout(case)
        try:
            msg = worker.run(request, timeout, on_event)
        except WorkerTimeout:
            result = Result(status="timeout", reason=f"no answer within the {timeout:g} s case timeout "
                            f"({request.get('op')})", details=worker.log_tail() or None, **base)
        except WorkerDied as exc:
            result = Result(status="failed", reason=f"{exc} ({request.get('op')})", details=worker.log_tail() or None,
                            **base)
        else:
            if msg.get("event") in ("prepared", "block"):
                return msg
            if msg.get("event") == "result":
                result = Result.from_dict(msg["result"])
                if result.status not in ("failed", "timeout"):
                    return result
            else:
                result = Result(status="failed", reason=msg.get("error", "worker error"), details=msg.get("details"),
                                **base)
        # state after a failure (sticky CUDA errors, half-built graphs) must not leak into the next case
        pair.replace(i)
        return result

    # --- one case in one round ---------------------------------------------------------------------
    def _case_round(self, pair: _Pair, st: CaseState, first: int) -> tuple[list[Result | None], int | None]:
        """Both sides' results of this case in this round, and the window count (None: not by blocks)."""
        case = st.case
        sides = [first, 1 - first]
        results: list[Result | None] = [None, None]
        prepared: dict[int, dict[str, Any]] = {}
        for i in sides:
            request = {"op": "prepare", "source": self.targets[i].side.source_for(case.suite),
                       "benchmark": case.bench.name, "key": case.key.to_dict(),
                       "budget": self.session.budget.to_dict(), "profile": self.session.profile.name}
            answer = self._ask(pair, i, request, case)
            if isinstance(answer, Result):
                results[i] = answer
            else:
                prepared[i] = answer
        timed = {i: p for i, p in prepared.items() if not p.get("self_timed")}
        windows = None
        if timed:
            st.calibrate(self.layout, [int(p.get("loops") or 1) for p in timed.values()],
                         [float(p.get("per_call_s") or 0.0) for p in timed.values()])
            windows = st.windows
            for _ in range(st.windows or 0):
                for i in blocks.turn_order(st.blocks or 2, first):
                    if i not in timed:
                        continue
                    answer = self._ask(pair, i, {"op": "block", "loops": st.loops}, case)
                    if isinstance(answer, Result):
                        results[i] = answer
                        del timed[i]
                        prepared.pop(i, None)
        for i in sides:
            if i in prepared:
                answer = self._ask(pair, i, {"op": "finish"}, case)
                results[i] = answer if isinstance(answer, Result) else Result(
                    status="failed", reason=f"unexpected answer to finish: {answer.get('event')}",
                    key=case.key, definition_hash=case.bench.definition_hash)
        return results, windows

    # --- rounds --------------------------------------------------------------------------------------
    def _look(self, st: CaseState) -> None:
        a, b = self.acc[0].get(st.case.key), self.acc[1].get(st.case.key)
        if a is None or b is None or not a.ok or not b.ok:
            st.ended = True
            return
        from benchbench.analysis.compare import ROUND_STATISTICS

        q = ROUND_STATISTICS.get(a.round_statistic, 0.0)
        logs = [v for v, _ in blocks.paired_round_logs(a, b, q).values()]
        st.look = look(logs, self.plan, self.threshold_for(st.case.key))

    def run(self) -> Outcome:
        """Measure round after round until every case is decided, the last look, or the budget.

        Raises `Interrupted` (after saving both reports, marked partial) on Ctrl-C or SIGTERM (the
        caller turns SIGTERM into KeyboardInterrupt)."""
        t0 = self.clock()
        last_round_s, last_active = None, 1
        stopped, r = "max-rounds", 0
        for ti, t in enumerate(self.targets):
            t.report.partial = True
            t.report.sequential = self.plan.to_dict()
            self._publish(ti)
        try:
            for r in range(self.plan.max_rounds):
                active = [st for st in self.states if not st.done]
                if not active:
                    stopped = "decided"
                    break
                elapsed = self.clock() - t0
                # the next round's length, guessed from the last one's per case (the pair's start included)
                expected = last_round_s * len(active) / last_active if last_round_s is not None else 0.0
                if self.budget_s is not None and r >= self.plan.min_rounds and elapsed + expected > self.budget_s:
                    stopped = "budget"
                    break
                r0 = self.clock()
                self._round(r, active)
                last_round_s, last_active = self.clock() - r0, len(active)
                for st in active:
                    if not st.ended:
                        self._look(st)
            else:
                r = self.plan.max_rounds
                if all(st.done for st in self.states):
                    stopped = "decided"
            for ti, t in enumerate(self.targets):
                t.report.partial = False
                t.report.finished_at = now()
                self._publish(ti)
        except KeyboardInterrupt:
            for ti, t in enumerate(self.targets):
                t.report.finished_at = now()
                self._publish(ti)
            raise Interrupted([t.path for t in self.targets if t.path is not None]) from None
        finally:
            import shutil

            if self.progress:
                self.progress.close()
            shutil.rmtree(self._tmp, ignore_errors=True)
        rounds_of = {st.case.key: len(self.acc[1][st.case.key].rounds) if st.case.key in self.acc[1] else 0
                     for st in self.states}
        return Outcome(self.plan, r, stopped, self.clock() - t0,
                       {st.case.key: st.look for st in self.states if st.look is not None}, rounds_of)

    def _round(self, r: int, active: list[CaseState]) -> None:
        order = round_order(active, self.session.seed, r)
        first = side_order(2, r)[0]
        for t in self.targets:
            t.report.rounds.append({"round": r, "seed": round_seed(self.session.seed, r), "started_at": now(),
                                    "side": t.side.name, "interleaved": True,
                                    "first": self.targets[first].side.name})
        shared: _Pair | None = None
        try:
            for position, st in enumerate(order):
                if self.progress:
                    self.progress.start_case(position, len(order), f"{st.case.key.label}  (round {r + 1}, "
                                             f"{len(order)} undecided)")
                if st.case.skip:
                    for ti in range(2):
                        self._record(ti, st.case, Result(status="skipped", reason=st.case.skip, key=st.case.key,
                                                         definition_hash=st.case.bench.definition_hash), r,
                                     position, None)
                    st.ended = True
                    continue
                if st.case.isolate:
                    pair = self._pair()
                else:
                    shared = shared or self._pair()
                    pair = shared
                try:
                    results, windows = self._case_round(pair, st, first)
                finally:
                    if pair is not shared:
                        pair.close(kill=True)
                for ti, result in enumerate(results):
                    if result is not None:
                        self._record(ti, st.case, result, r, position, windows)
                if self.progress:
                    self.progress.finish_case(self.acc[1].get(st.case.key) or results[1] or results[0])
        except BaseException:  # Ctrl-C and the like: kill at once, never wait for a busy worker
            if shared is not None:
                shared.close(kill=True)
                shared = None
            raise
        finally:
            if shared is not None:
                shared.close()
            for t in self.targets:
                t.report.rounds[-1]["finished_at"] = now()

    def _pair(self) -> _Pair:
        return _Pair([t.side for t in self.targets], self._tmp, self.session.worker_env, self.start_timeout,
                     self._started)

    def _started(self) -> None:
        self.workers_started += 1
