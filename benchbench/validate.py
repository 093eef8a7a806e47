"""Measurement validation: is benchbench's engine trustworthy on this machine?

Reports the timer's resolution, each backend's sync cost (an empty timed block), and times a few
reference ops with benchbench's engine and with `torch.utils.benchmark.Timer`, interleaved in
rounds so that drifts in machine load hit both alike. The ratio of medians should be close to 1.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from benchbench.backends import Backend
from benchbench.measure import Budget, budget_for, measure, measure_overhead

TOLERANCE = 0.05  # a reference op agrees when the medians differ by less than this


@dataclass
class OpCheck:
    backend: str
    op: str
    benchbench_median_s: float
    torch_median_s: float
    benchbench_rounds: list[float] = field(default_factory=list)
    torch_rounds: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Median of the per-round ratios: each round times both engines back to back, so a drift
        in machine load between rounds cancels out instead of landing on one side."""
        pairs = [a / b for a, b in zip(self.benchbench_rounds, self.torch_rounds, strict=True) if b > 0]
        return statistics.median(pairs) if pairs else self.benchbench_median_s / self.torch_median_s

    @property
    def agrees(self) -> bool:
        return abs(self.ratio - 1) <= TOLERANCE

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "agrees": self.agrees}


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


def reference_ops(backend: Backend) -> dict[str, Callable[[], Any]]:
    import torch

    dev = backend.torch_device()
    n = 512 if backend.name == "cpu" else 4096
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    numel = 2**20 if backend.name == "cpu" else 2**26
    x = torch.randn(numel, device=dev)
    y = torch.randn(numel, device=dev)
    one = torch.ones(1, device=dev)
    return {
        f"matmul {n}x{n} float32": lambda: a @ b,
        f"add {numel} float32": lambda: x + y,
        "tiny op (1-element add)": lambda: one + one,
    }


def _torch_timer_median(fn: Callable[[], Any], backend: Backend, min_run_time: float) -> float:
    import torch
    from torch.utils.benchmark import Timer

    # Timer defaults to one thread; benchbench measures with torch's configured thread count.
    kwargs: dict[str, Any] = {"num_threads": torch.get_num_threads()}
    if backend.name in ("mps", "xpu"):
        # torch.utils.benchmark synchronises CUDA itself but not MPS: give it a timer that does.
        def synced() -> float:
            backend.synchronize()
            return time.perf_counter()

        kwargs["timer"] = synced
    # `_f` is bound in setup, which timeit runs inside its timing function: a local, as fn is in
    # benchbench's loop. stmt="fn()" would add a global lookup per call (~2% of a 1.5 us op).
    timer = Timer(stmt="_f()", setup="_f = fn", globals={"fn": fn}, **kwargs)
    return timer.blocked_autorange(min_run_time=min_run_time).median


def compare_op(backend: Backend, op: str, fn: Callable[[], Any], budget: Budget, rounds: int = 11) -> OpCheck:
    ours, theirs = [], []
    timer = backend.timer()
    for _ in range(rounds):
        ours.append(statistics.median(measure(fn, timer, budget).samples))
        theirs.append(_torch_timer_median(fn, backend, min_run_time=max(0.2, budget.max_time_s)))
    return OpCheck(backend=backend.name, op=op, benchbench_median_s=statistics.median(ours),
                   torch_median_s=statistics.median(theirs), benchbench_rounds=ours, torch_rounds=theirs)


def validate(backends: list[Backend], profile: str = "quick", rounds: int = 11,
             on_progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    budget = budget_for(profile)
    out: dict[str, Any] = {"clock": clock_resolution(), "backends": [], "ops": [], "tolerance": TOLERANCE}
    for backend in backends:
        timer = backend.timer()
        out["backends"].append({"backend": backend.name, "timing_method": timer.method,
                                "timer_resolution_s": timer.resolution,
                                "sync_cost_s": measure_overhead(timer, repeats=101)})
        for op, fn in reference_ops(backend).items():
            if on_progress:
                on_progress(f"{backend.name}: {op}")
            out["ops"].append(compare_op(backend, op, fn, budget, rounds).to_dict())
    out["all_agree"] = all(op["agrees"] for op in out["ops"])
    return out
