"""Run one case in this process: setup, first call and output check, timing, memory. Returns a Result.

The runner calls this inside a worker process; tests and `validate` call it directly.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchbench.api import Benchmark, Case, Context
from benchbench.errors import Skip
from benchbench.measure.backends import Backend
from benchbench.measure.energy import Meter, Tally
from benchbench.measure.engine import (
    PROFILES,
    Budget,
    Calibration,
    Measurement,
    measure,
    timed_block,
    warm_up_and_calibrate,
)
from benchbench.model.report import CaseFields, CaseKey, Result, typed_fields
from benchbench.model.stats import health_flags

# the folder under which a worker makes each case's scratch folder (the runner sets it; benchbench/worker.py reads it)
SCRATCH_ENV = "BENCHBENCH_SCRATCH_ROOT"


def skip_reason(bench: Benchmark, key: CaseKey, backend: Backend) -> str | None:
    """Why a case cannot run on this backend, known before any setup runs."""
    if not backend.available:
        return f"backend {backend.name} unavailable: {backend.reason}"
    return bench.unsupported_reason(backend.name) or backend.dtype_reason(key.dtype)


def _nonfinite(out: Any) -> bool:
    """True when a benchmark's output holds NaN or Inf (checked once, on the first call)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    if isinstance(out, torch.Tensor):
        if out.is_floating_point() or out.is_complex():
            return not bool(torch.isfinite(out).all())
        return False
    if isinstance(out, float):
        return not math.isfinite(out)
    if isinstance(out, (list, tuple)):
        return any(_nonfinite(o) for o in out)
    if isinstance(out, dict):
        return any(_nonfinite(o) for o in out.values())
    return False


def error_reason(exc: BaseException) -> str:
    """One line that says what went wrong; out-of-memory named as such."""
    name = type(exc).__name__
    first = (str(exc).strip().splitlines() or [""])[0]
    low = first.lower()
    if isinstance(exc, MemoryError) or name == "OutOfMemoryError" or any(
            s in low for s in ("out of memory", "can't allocate memory", "cannot allocate memory")):
        return f"out of memory: {name}: {first}".rstrip(": ")
    return f"{name}: {first}" if first else name


class Prepared:
    """A case set up in this process, called once, warmed up and calibrated: ready to be timed block by
    block (`block`), as block-interleaved A/B does over the worker's channel, then turned into its
    Result (`result`). `run_case` is the same steps with the engine's own sampling in the middle.

    A benchmark that timed itself (`Case.fn` is None) has its samples already: `self_timed` is true
    and there is nothing to call."""

    def __init__(self, bench: Benchmark, key: CaseKey, backend: Backend, case: Case, clock: Callable[[], float],
                 t_case: float, meter: Meter | str | None = None) -> None:
        self.bench, self.key, self.backend, self.case = bench, key, backend, case
        # energy over the timed calls: a meter's joules, or why there are none (None: not asked)
        self.energy = Tally.of(meter)
        self.clock, self.t_case = clock, t_case
        self.timer = backend.timer()
        self.flags = list(case.flags)
        self.first_s: float | None = None
        self.method = case.timing_method or self.timer.method
        self.samples: list[float] = [float(x) for x in case.samples or []] if case.fn is None else []
        self.loops = 1
        self.warmup = {"calls": 0, "seconds": 0.0}
        self.engine: dict[str, Any] = {"overhead_s": 0.0, "stopped": "external"}
        self.block_s: float | None = None

    @property
    def self_timed(self) -> bool:
        return self.case.fn is None

    @property
    def base(self) -> dict[str, Any]:
        return {"key": self.key, "definition_hash": self.bench.definition_hash}

    def first_call(self, ctx: Context) -> None:
        """The first call (compilation, lazy init) timed once; its output checked once for NaN/Inf."""
        self.method = self.timer.method
        self.first_s, out = ctx.time_once(self.case.fn)
        if self.case.check_output and _nonfinite(out):
            self.flags.append("nonfinite-output")
        del out
        # peak memory of the steady state, not of setup or a compiling first call
        self.backend.reset_peak_memory()

    def raised(self, exc: BaseException) -> Result:
        return raised(exc, self.key, self.bench.definition_hash, self.clock() - self.t_case)

    def take(self, m: Measurement) -> None:
        """The samples of a whole measurement (the engine's, or a count's) instead of blocks."""
        self.samples, self.loops = m.samples, m.loops
        self.block_s = m.block_s if m.samples else None
        self.warmup = {"calls": m.warmup_calls, "seconds": m.warmup_s}

    def calibrate(self, budget: Budget, on_phase: Callable[[str], None] | None = None) -> Calibration:
        cal = warm_up_and_calibrate(self.case.fn, self.timer, budget, self.clock, on_phase)
        self.loops = cal.loops
        self.warmup = {"calls": cal.warmup_calls, "seconds": cal.warmup_s}
        self.engine = {"overhead_s": cal.overhead_s, "stopped": "interleaved"}
        return cal

    def block(self, loops: int) -> float:
        """One timed block of `loops` calls; returns (and keeps) the seconds per call."""
        self.loops = loops
        if self.energy is not None:
            self.energy.start()
        sample = timed_block(self.timer, self.case.fn, loops)
        if self.energy is not None:
            self.energy.stop(loops)
        self.samples.append(sample)
        self.block_s = sample * loops
        return sample

    def result(self, engine: dict[str, Any] | None = None, counted: bool = False) -> Result:
        """The case's Result from the samples taken: its metrics, peak memory and health flags."""
        try:
            metrics = dict(self.case.metrics)
            if self.case.finish is not None:
                metrics.update(self.case.finish() or {})
            peak, memory_kind = self.backend.peak_memory(self.case.memory_counter)
            baseline = self.backend.memory_baseline() if peak is not None else None
            if baseline is not None:  # the process's memory at the reset: the case's growth is peak - baseline
                metrics["memory_baseline_bytes"] = baseline
        except Exception as exc:  # noqa: BLE001 - a failing case is data, not a crash (Skip included)
            return self.raised(exc)
        if self.energy is not None:
            if self.self_timed and not self.energy.reason:
                self.energy.reason = "the benchmark times itself: no timed calls to read the counter around"
            metrics.update(self.energy.metrics())
        result = Result(
            status="ok",
            timing_method=self.method,
            samples=list(self.samples),
            loops_per_sample=self.loops,
            warmup=dict(self.warmup),
            first_call_s=self.first_s,
            # per-second rates from instruction counts would be meaningless: the work stays out of it
            work=self.case.work() if not counted else {},
            metrics={**metrics, **(engine if engine is not None else self.engine)},
            peak_memory_bytes=peak,
            memory_kind=memory_kind,
            **{f.name: getattr(self.case, f.name) for f in typed_fields(CaseFields)},
            duration_s=self.clock() - self.t_case,
            **self.base,
        )
        result.flags = self.flags if counted else \
            self.flags + health_flags(result.stats, self.block_s, self.timer.resolution)
        return result


def compile_repeats(bench: Benchmark, profile: str) -> int:
    """Cold compiles per round for a compiled case: the benchmark's own count, else its profile's."""
    if bench.compile_repeats:
        return bench.compile_repeats
    return PROFILES[profile].compile_repeats if profile in PROFILES else 1


def prepare_case(
    bench: Benchmark,
    key: CaseKey,
    backend: Backend,
    profile: str = "default",
    scratch_dir: Path | None = None,
    on_phase: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    meter: Meter | str | None = None,
) -> Prepared | Result:
    """Set the case up and call it once. A Result instead when it is skipped or fails on the way.
    `meter` (benchbench.measure.energy.open_meter) reads energy around the timed calls; a str says why none can."""
    t_case = clock()
    phase = on_phase or (lambda _p: None)
    reason = skip_reason(bench, key, backend)
    if reason:
        return Result(status="skipped", reason=reason, key=key, definition_hash=bench.definition_hash)
    try:
        phase("setup")
        backend.reset_peak_memory()
        ctx = Context(backend=backend, key=key, profile=profile, scratch_dir=scratch_dir,
                      compile_repeats=compile_repeats(bench, profile))
        case = bench.setup(ctx, **key.params_dict)
        if not isinstance(case, Case):
            raise TypeError(f"setup of {bench.name} returned {type(case).__name__}, expected benchbench.Case")
        prepared = Prepared(bench, key, backend, case, clock, t_case, meter)
        if not prepared.self_timed:
            phase("first-call")
            prepared.first_call(ctx)
        return prepared
    except Exception as exc:  # noqa: BLE001 - a failing case is data, not a crash (Skip included)
        return raised(exc, key, bench.definition_hash, clock() - t_case)




def _energy_from_sampling(tally: Tally | None,
                          on_phase: Callable[[str], None] | None) -> Callable[[str], None] | None:
    """The phase callback, starting the energy counters when sampling begins (warm-up stays out)."""
    if tally is None:
        return on_phase

    def phase(p: str) -> None:
        if on_phase is not None:
            on_phase(p)
        if p == "measure":
            tally.start()

    return phase


def raised(exc: BaseException, key: CaseKey, definition_hash: str | None, duration_s: float) -> Result:
    """A case that raised: skipped when the benchmark said so (`Skip`), else failed, with the error in one
    line and its traceback (call it inside the `except`)."""
    if isinstance(exc, Skip):
        return Result(status="skipped", reason=str(exc) or "skipped by the benchmark", key=key,
                      definition_hash=definition_hash, duration_s=duration_s)
    return Result(status="failed", reason=error_reason(exc), key=key, definition_hash=definition_hash,
                  duration_s=duration_s, details=traceback.format_exc(limit=-8))


def run_case(
    bench: Benchmark,
    key: CaseKey,
    backend: Backend,
    budget: Budget,
    profile: str = "default",
    scratch_dir: Path | None = None,
    on_phase: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    counter: Any = None,
    meter: Meter | str | None = None,
) -> Result:
    """Set up, call once, then time the case (or, with `counter`, count its instructions instead:
    a `benchbench.measure.callgrind.Collector` in a worker running under Callgrind). With `meter`, the energy of
    the sampling phase (after warm-up and calibration) goes into the result's metrics."""
    prepared = prepare_case(bench, key, backend, profile, scratch_dir, on_phase, clock,
                            meter if counter is None else None)
    if isinstance(prepared, Result):
        return prepared
    if prepared.self_timed:
        if counter is not None:
            return Result(status="skipped", reason="the benchmark times itself: there is no callable to count "
                          "instructions of", **prepared.base, duration_s=clock() - prepared.t_case)
        return prepared.result()
    try:
        if counter is None:
            m = measure(prepared.case.fn, prepared.timer, budget, clock=clock,
                        on_phase=_energy_from_sampling(prepared.energy, on_phase))
            if prepared.energy is not None:
                prepared.energy.stop(len(m.samples) * m.loops)
            prepared.take(m)
            return prepared.result({"overhead_s": m.overhead_s, "stopped": m.stopped})
        # instructions per call, counted under Callgrind: not a time
        prepared.method = counter.method
        m, counted = counter.measure(prepared.case.fn, on_phase=on_phase)
        prepared.take(m)
        return prepared.result(counted, counted=True)
    except Exception as exc:  # noqa: BLE001 - a failing case is data, not a crash
        return prepared.raised(exc)
