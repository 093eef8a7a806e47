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
from benchbench.backends import Backend
from benchbench.errors import Skip
from benchbench.measure import Budget, Measurement, measure
from benchbench.report import CaseKey, Result
from benchbench.stats import health_flags


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


def run_case(
    bench: Benchmark,
    key: CaseKey,
    backend: Backend,
    budget: Budget,
    profile: str = "default",
    scratch_dir: Path | None = None,
    on_phase: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Result:
    t_case = clock()
    phase = on_phase or (lambda _p: None)
    base = {"key": key, "definition_hash": bench.definition_hash}
    reason = skip_reason(bench, key, backend)
    if reason:
        return Result(status="skipped", reason=reason, **base)
    timer = backend.timer()
    try:
        phase("setup")
        backend.reset_peak_memory()
        ctx = Context(backend=backend, key=key, profile=profile, scratch_dir=scratch_dir)
        case = bench.setup(ctx, **key.params_dict)
        if not isinstance(case, Case):
            raise TypeError(f"setup of {bench.name} returned {type(case).__name__}, expected benchbench.Case")
        flags = list(case.flags)
        if case.fn is None:  # the benchmark timed itself
            first_s, method = None, case.timing_method or timer.method
            m = Measurement(samples=[float(x) for x in case.samples or []], loops=1, warmup_calls=0,
                            warmup_s=0.0, overhead_s=0.0, stopped="external")
        else:
            method = timer.method
            phase("first-call")
            first_s, out = ctx.time_once(case.fn)
            if case.check_output and _nonfinite(out):
                flags.append("nonfinite-output")
            del out
            # peak memory of the steady state, not of setup or a compiling first call
            backend.reset_peak_memory()
            m = measure(case.fn, timer, budget, clock=clock, on_phase=phase)
        metrics = dict(case.metrics)
        if case.finish is not None:
            metrics.update(case.finish() or {})
        peak, memory_kind = backend.peak_memory(case.memory_counter)
    except Skip as exc:
        return Result(status="skipped", reason=str(exc) or "skipped by the benchmark", **base,
                      duration_s=clock() - t_case)
    except Exception as exc:  # noqa: BLE001 - a failing case is data, not a crash
        return Result(status="failed", reason=error_reason(exc), **base, duration_s=clock() - t_case,
                      details=traceback.format_exc(limit=-8))
    result = Result(
        status="ok",
        timing_method=method,
        samples=m.samples,
        loops_per_sample=m.loops,
        warmup={"calls": m.warmup_calls, "seconds": m.warmup_s},
        first_call_s=first_s,
        work=case.work(),
        metrics={**metrics, "overhead_s": m.overhead_s, "stopped": m.stopped, "memory_kind": memory_kind},
        peak_memory_bytes=peak,
        duration_s=clock() - t_case,
        **base,
    )
    result.flags = flags + health_flags(result.stats, m.block_s, timer.resolution)
    return result
