"""Measurement validation: does benchbench's engine read the truth on this machine?

Three measurements of every reference op, alternated inside each of several fresh worker processes
(`python -m benchbench.validate_worker`):

- benchbench's engine (`benchbench.measure.engine.measure`: warm-up, calibrated blocks, median),
- `torch.utils.benchmark.Timer.blocked_autorange` (its median),
- the plain loop: the wall time of one long loop of N back-to-back calls, divided by N, with the
  device synchronised before and after (through the backend). No statistics, no blocks: the time
  the op costs when it is simply run many times, which is what both engines claim to estimate.

In each round of a process the three are taken back to back, in a shuffled order, for one op after
another (the op order shuffled too), so a slow minute of the machine hits all three alike. Each
engine's *paired* ratio to the plain loop (engine / loop, same process, same round) is averaged in
log space within a process; the interval is a t interval on those per-process means, because the
process is the independent unit (memory layout, thread placement and luck are shared by the rounds
of one process). With a single process the rounds are the unit, and the interval says less.

An engine agrees when the whole interval of its ratio lies within ±TOLERANCE; otherwise the verdict
says whether it is off (the interval excludes 1 and the estimate is beyond the tolerance) or the
data cannot tell, and gives the likely reason from what was recorded (the engine's own mean, its
timed block against the timer's overhead, the size of the op).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from benchbench.kinds import KINDS, is_gpu

TOLERANCE = 0.03  # an engine agrees when its ratio's whole interval lies within 1 ± this
HELD_ABOVE_S = 10e-6  # ops faster than this are shown but not held to the tolerance
ENGINES = ("benchbench", "torch")
ENGINE_NAMES = {"benchbench": "benchbench's engine", "torch": "torch.utils.benchmark"}
PLAIN_LOOP_S = 0.25  # wall time of one plain loop
LEVEL = 0.95
WORKER_TIMEOUT_S = 1800


# --- statistics: pure functions, tested on seeded synthetic data -------------------------------------
@dataclass(frozen=True)
class RatioInterval:
    """A paired ratio (engine / plain loop) with its interval, from per-unit groups of ratios."""

    ratio: float  # geometric mean over units of each unit's geometric mean
    low: float
    high: float
    units: int  # independent units behind the interval (processes, or rounds when only one process)
    unit: str  # "process" or "round"
    spread: float  # standard deviation of the units' log ratios (~ relative spread between units)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _t_quantile(level: float, df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, df))


def paired_ratio(groups: Sequence[Sequence[float]], level: float = LEVEL) -> RatioInterval:
    """Ratio and t interval from paired ratios grouped by process (one list of round ratios each).

    Each process contributes the mean of its rounds' log ratios; the interval is a Student t
    interval on those means (so it widens when processes disagree, not only when rounds do). With a
    single process its rounds are the units. Fewer than two units give an unbounded interval.
    """
    groups = [[r for r in g if r > 0 and math.isfinite(r)] for g in groups]
    groups = [g for g in groups if g]
    if not groups:
        raise ValueError("no ratios")
    if len(groups) >= 2:
        logs, unit = [statistics.fmean(math.log(r) for r in g) for g in groups], "process"
    else:
        logs, unit = [math.log(r) for r in groups[0]], "round"
    centre = statistics.fmean(logs)
    if len(logs) < 2:
        return RatioInterval(math.exp(centre), 0.0, math.inf, len(logs), unit, math.nan)
    sd = statistics.stdev(logs)
    half = _t_quantile(level, len(logs) - 1) * sd / math.sqrt(len(logs))
    return RatioInterval(math.exp(centre), math.exp(centre - half), math.exp(centre + half), len(logs), unit, sd)


@dataclass(frozen=True)
class Verdict:
    status: str  # "agrees", "off" or "unclear"
    text: str


def judge(engine: str, interval: RatioInterval, mean_interval: RatioInterval | None, per_call_s: float,
          overhead_fraction: float | None, tolerance: float = TOLERANCE) -> Verdict:
    """What one engine's ratio to the plain loop says, and the likely reason when it is not ~1.

    mean_interval: the same ratio computed from the engine's *mean* sample instead of its median;
    overhead_fraction: the timer's own cost (an empty timed block) over one timed block, if known.
    """
    name = ENGINE_NAMES.get(engine, engine)
    lo, hi = 1 - tolerance, 1 + tolerance
    pct = (interval.ratio - 1) * 100
    where = f"{abs(pct):.1f}% {'above' if pct > 0 else 'below'}"
    ci = f"[{interval.low:.3f}, {interval.high:.3f}]"
    if lo <= interval.low and interval.high <= hi:
        return Verdict("agrees", f"{name} reads {where} the plain loop, interval {ci} within ±{tolerance:.0%}")
    significant = interval.high < 1 or interval.low > 1
    if not significant or lo <= interval.ratio <= hi:
        why = (f"it reads {where} the plain loop, but the interval {ci} reaches beyond ±{tolerance:.0%}"
               if significant else f"the interval {ci} holds 1 but reaches beyond ±{tolerance:.0%}")
        spread = "" if math.isnan(interval.spread) else f" (its {'processes' if interval.unit == 'process' else 'rounds'} disagree by {interval.spread:.1%})"
        return Verdict("unclear", f"{name}: cannot tell: {why}{spread}; a busy or drifting machine; "
                                  "run more processes, or on a quieter machine")
    reasons = []
    if mean_interval is not None and abs(mean_interval.ratio - 1) <= tolerance < abs(interval.ratio - 1):
        reasons.append(f"it reports a median and the plain loop is a mean: the mean of its own samples reads "
                       f"{mean_interval.ratio:.3f} of the loop, so the gap is the slow tail (interruptions by "
                       "other processes, page faults, frequency changes) that a median leaves out")
    if pct > 0 and overhead_fraction is not None and overhead_fraction > 0.01:
        reasons.append(f"its timed block is short against the timer's own cost ({overhead_fraction:.1%} of a "
                       "block is the empty-block overhead)")
    if per_call_s < HELD_ABOVE_S:
        reasons.append(f"one call lasts {per_call_s * 1e6:.2f} us, so the cost of the Python loop around it "
                       "(a local or global lookup, timeit's loop or a for loop) is a visible part of the time")
    if not reasons:
        reasons.append("of something its mean, its timer overhead and the op's size do not explain (cache or "
                       "allocator state, thread wake-ups between blocks); check with more processes on a quiet "
                       "machine")
    return Verdict("off", f"{name} reads {where} the plain loop, beyond ±{tolerance:.0%} (interval {ci}): "
                          f"likely because {'; and '.join(reasons)}")


# --- what a worker measures ------------------------------------------------------------------------
def clock_resolution(samples: int = 20000) -> dict[str, float]:
    """Declared and observed resolution of perf_counter (smallest non-zero step seen)."""
    declared = time.get_clock_info("perf_counter").resolution
    smallest = None
    t_prev = time.perf_counter_ns()
    for _ in range(samples):
        t = time.perf_counter_ns()
        if t != t_prev:
            step = t - t_prev
            smallest = step if smallest is None else min(smallest, step)
            t_prev = t
    return {"declared_s": declared, "observed_step_s": (smallest or 0) * 1e-9}


def reference_ops(backend: Any) -> dict[str, Callable[[], Any]]:
    """Everyday ops from tiny to milliseconds: a matmul, an elementwise add, a scan, an FFT, a 1-element add."""
    import torch

    dev = backend.torch_device()
    n = 4096 if is_gpu(backend.name) else 512
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    numel = 2**26 if is_gpu(backend.name) else 2**20
    x = torch.randn(numel, device=dev)
    y = torch.randn(numel, device=dev)
    one = torch.ones(1, device=dev)
    return {
        f"matmul {n}x{n} float32": lambda: a @ b,
        f"add {numel} float32": lambda: x + y,
        f"cumsum {numel} float32": lambda: torch.cumsum(x, 0),
        f"fft {numel} float32": lambda: torch.fft.fft(x),
        "tiny op (1-element add)": lambda: one + one,
    }


def plain_loop(fn: Callable[[], Any], synchronize: Callable[[], None], seconds: float = PLAIN_LOOP_S,
               clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Wall time of one loop of N back-to-back calls / N, synchronised before and after.

    N is found by doubling a synchronised batch until it lasts seconds/8 (which also warms the op
    up), then scaling to `seconds`. The cyclic GC is paused during the loop, as both engines do.
    """
    import gc

    def loop(n: int) -> float:
        synchronize()
        t0 = clock()
        for _ in range(n):
            fn()
        synchronize()
        return clock() - t0

    batch = 1
    while True:
        took = loop(batch)
        if took >= seconds / 8 or batch >= 2**30:
            break
        batch *= 2
    calls = max(batch, math.ceil(seconds * batch / took)) if took > 0 else batch
    enabled = gc.isenabled()
    gc.disable()
    try:
        wall = loop(calls)
    finally:
        if enabled:
            gc.enable()
    return {"per_call_s": wall / calls, "calls": calls, "wall_s": wall}


def engine_measure(fn: Callable[[], Any], backend: Any, profile: str) -> dict[str, float]:
    from benchbench.measure.engine import budget_for, measure

    m = measure(fn, backend.timer(), budget_for(profile))
    return {"median_s": statistics.median(m.samples), "mean_s": statistics.fmean(m.samples),
            "block_s": m.block_s, "overhead_s": m.overhead_s, "loops": m.loops, "samples": len(m.samples)}


def torch_measure(fn: Callable[[], Any], backend: Any, min_run_time: float) -> dict[str, float]:
    import torch
    from torch.utils.benchmark import Timer

    # Timer defaults to one thread; benchbench measures with torch's configured thread count.
    kwargs: dict[str, Any] = {"num_threads": torch.get_num_threads()}
    if KINDS[backend.name].timer == "sync+host":
        # torch.utils.benchmark synchronises CUDA itself but not MPS: give it a timer that does.
        def synced() -> float:
            backend.synchronize()
            return time.perf_counter()

        kwargs["timer"] = synced
    # `_f` is bound in setup, which timeit runs inside its timing function: a local, as fn is in
    # benchbench's loop. stmt="fn()" would add a global lookup per call (~2% of a 1.5 us op).
    timer = Timer(stmt="_f()", setup="_f = fn", globals={"fn": fn}, **kwargs)
    m = timer.blocked_autorange(min_run_time=min_run_time)
    return {"median_s": m.median, "mean_s": m.mean, "samples": len(m.times)}


def worker_rounds(config: dict[str, Any], emit: Callable[[dict[str, Any]], None]) -> None:
    """Inside one worker process: `rounds` rounds over every op, three measurements each, shuffled."""
    from benchbench.measure import backends as bk

    rng = random.Random(config["seed"])
    pattern = re.compile(config["ops"]) if config.get("ops") else None
    plain_s = config.get("plain_s", PLAIN_LOOP_S)
    for name in config["backends"]:
        backend = bk.get(name)
        ops = {op: fn for op, fn in reference_ops(backend).items() if not pattern or pattern.search(op)}
        for rnd in range(config["rounds"]):
            for op in rng.sample(list(ops), len(ops)):
                fn = ops[op]
                row: dict[str, Any] = {"event": "row", "backend": name, "op": op, "round": rnd}
                order = rng.sample(["benchbench", "torch", "plain"], 3)
                for method in order:
                    if method == "benchbench":
                        row["benchbench"] = engine_measure(fn, backend, config["profile"])
                    elif method == "torch":
                        row["torch"] = torch_measure(fn, backend, min_run_time=plain_s)
                    else:
                        row["plain"] = plain_loop(fn, backend.synchronize, plain_s)
                row["order"] = order
                emit(row)


# --- the parent: processes, pairing, verdicts ---------------------------------------------------
def _worker_command(config: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "benchbench.validate_worker", json.dumps(config)]


def _run_worker(config: dict[str, Any], on_row: Callable[[dict[str, Any]], None]) -> str | None:
    """One `python -m benchbench.validate_worker` process; returns an error text, or None.

    Its output is read by a thread, so that WORKER_TIMEOUT_S bounds the whole wait: a worker that hangs
    without closing its output is killed, not waited for."""
    import queue
    import threading

    with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe: a chatty stderr cannot block the worker
        proc = subprocess.Popen(_worker_command(config), stdout=subprocess.PIPE, stderr=log, text=True,
                                env=dict(os.environ))
        assert proc.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()

        def read(stream: Any = proc.stdout) -> None:
            for line in stream:
                lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        end = time.monotonic() + WORKER_TIMEOUT_S
        error = None
        try:
            while True:
                try:
                    line = lines.get(timeout=max(0.0, min(end - time.monotonic(), 0.5)))
                except queue.Empty:
                    if time.monotonic() >= end:
                        return "validation worker timed out"
                    continue
                if line is None:
                    break
                try:
                    msg = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if not isinstance(msg, dict):
                    continue
                if msg.get("event") == "row":
                    on_row(msg)
                elif msg.get("event") == "error":
                    error = msg.get("error")
            proc.wait(timeout=max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            return "validation worker timed out"
        finally:
            if proc.poll() is None:  # timed out, or Ctrl-C: never leave it running
                proc.kill()
                proc.wait()
            reader.join(timeout=1)
            if not reader.is_alive():
                proc.stdout.close()
        if proc.returncode != 0 and not error:
            log.seek(0)
            tail = log.read().strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
            error = tail[0]
    return error


def summarize_op(backend: str, op: str, rows: list[dict[str, Any]], tolerance: float = TOLERANCE) -> dict[str, Any]:
    """Per-engine paired ratios to the plain loop (grouped by process), intervals and verdicts."""
    by_process: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_process.setdefault(row["process"], []).append(row)
    groups = list(by_process.values())
    plain = statistics.median(r["plain"]["per_call_s"] for r in rows)
    out: dict[str, Any] = {"backend": backend, "op": op, "plain_s": plain, "held": plain >= HELD_ABOVE_S,
                           "rounds": len(rows), "processes": len(groups), "engines": {}}
    for engine in ENGINES:
        medians = paired_ratio([[r[engine]["median_s"] / r["plain"]["per_call_s"] for r in g] for g in groups])
        means = paired_ratio([[r[engine]["mean_s"] / r["plain"]["per_call_s"] for r in g] for g in groups])
        overhead = None
        if engine == "benchbench":
            overhead = statistics.median(r[engine]["overhead_s"] / r[engine]["block_s"] for r in rows
                                         if r[engine]["block_s"] > 0)
        verdict = judge(engine, medians, means, plain, overhead, tolerance)
        out["engines"][engine] = {
            "median_s": statistics.median(r[engine]["median_s"] for r in rows),
            "ratio": medians.to_dict(), "mean_ratio": means.to_dict(),
            "status": verdict.status, "verdict": verdict.text,
        }
    out["agrees"] = all(e["status"] == "agrees" for e in out["engines"].values())
    return out


def validate(backends: list[Any], profile: str = "quick", processes: int = 5, rounds: int = 3,
             ops: str | None = None, seed: int | None = None, plain_s: float = PLAIN_LOOP_S,
             on_progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the three-way comparison in `processes` fresh worker processes, one after another."""
    from benchbench.measure.engine import measure_overhead

    seed = random.randrange(2**31) if seed is None else seed
    out: dict[str, Any] = {"clock": clock_resolution(), "backends": [], "tolerance": TOLERANCE,
                           "held_above_s": HELD_ABOVE_S, "profile": profile, "processes": processes,
                           "rounds": rounds, "plain_loop_s": plain_s, "seed": seed, "errors": [], "ops": []}
    for backend in backends:
        timer = backend.timer()
        out["backends"].append({"backend": backend.name, "timing_method": timer.method,
                                "timer_resolution_s": timer.resolution,
                                "sync_cost_s": measure_overhead(timer, repeats=101)})
    out["machine"] = {"cpus": os.cpu_count(), "torch_threads": _torch_threads(), "load_start": _load()}
    rows: list[dict[str, Any]] = []
    for p in range(processes):
        config = {"backends": [b.name for b in backends], "profile": profile, "rounds": rounds, "ops": ops,
                  "seed": seed + p, "plain_s": plain_s}

        def on_row(row: dict[str, Any], p: int = p) -> None:
            rows.append({**row, "process": p})
            if on_progress:
                on_progress(f"process {p + 1}/{processes}, round {row['round'] + 1}/{rounds}: "
                            f"{row['backend']} {row['op']}")

        error = _run_worker(config, on_row)
        if error:
            out["errors"].append(f"process {p + 1}: {error}")
    out["machine"]["load_end"] = _load()
    keys = list(dict.fromkeys((r["backend"], r["op"]) for r in rows))
    out["ops"] = [summarize_op(b, op, [r for r in rows if (r["backend"], r["op"]) == (b, op)]) for b, op in keys]
    out["samples"] = rows
    out["all_agree"] = bool(out["ops"]) and not out["errors"] and all(
        op["agrees"] for op in out["ops"] if op["held"])
    return out


def _load() -> float | None:
    """The 1-minute load average (runnable processes), where the OS reports one."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()
