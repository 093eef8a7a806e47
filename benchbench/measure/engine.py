"""The timing engine: warm up, calibrate an inner loop, sample adaptively.

Device-agnostic: it only sees a `Timer` (which owns device synchronisation) and a `clock` for
budgets. Both are injectable, so warm-up, calibration and stopping are unit-tested with a seeded
fake timer and no hardware.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from benchbench.errors import UserError
from benchbench.model.stats import NEAR_RESOLUTION, summarize


class TimerLike(Protocol):
    method: str

    def block(self, fn: Callable[[], Any], loops: int) -> float: ...

    @property
    def resolution(self) -> float: ...


@dataclass(frozen=True)
class Budget:
    """How long to spend on one case. Profiles pick one; a case may not go below the minimums."""

    warmup_calls: int  # at least this many warm-up calls ...
    warmup_min_s: float  # ... and at least this long ...
    warmup_max_s: float  # ... and at most this long, even if times are still falling
    block_min_s: float  # a timed block (inner loop) lasts at least this long
    min_samples: int
    max_samples: int
    max_time_s: float  # sampling stops once this is spent (after min_samples)
    target_rel_ci: float  # ... or earlier, once the median's CI half-width / median is below this
    timeout_s: float  # the runner kills a case that takes longer than this in total

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Profile:
    """How much to measure: the rounds of a run and the budget of one case in one round.

    Defined once, here; the CLI, the runner, `gate --rerun` and `validate` read it from PROFILES.
    A run spends about `rounds` times the per-round budget on a case, plus one worker start per
    round: the per-round budgets are small so that a run of R rounds takes about as long as one
    long burst did, but spreads its samples over R processes.
    """

    name: str
    budget: Budget  # per case, per round
    rounds: int
    larger: str | None  # the next larger profile (gate --rerun measures suspects with it)
    # block-interleaved `ab` (benchbench/run/interleave.py): at most this many rounds (the sequential
    # plan's last look), at most this long in all (checked before each round after the first look),
    # and at most this long of timed blocks per case and round, both sides together
    ab_max_rounds: int = 12
    ab_budget_s: float = 180.0
    ab_case_round_s: float = 2.0
    # cold compiles per round of a compiled case (benchbench/measure/cold_compile.py). Measured on a loaded
    # 2-core machine the process's own effect dominates a compile's noise, so more rounds help and more
    # compiles per round do not (docs/metrics.md, "Compile time"): one, except in `full`
    compile_repeats: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rounds": self.rounds, "larger": self.larger, "budget": self.budget.to_dict(),
                "ab_max_rounds": self.ab_max_rounds, "ab_budget_s": self.ab_budget_s,
                "ab_case_round_s": self.ab_case_round_s, "compile_repeats": self.compile_repeats}


PROFILES: dict[str, Profile] = {
    "quick": Profile("quick", Budget(warmup_calls=2, warmup_min_s=0.03, warmup_max_s=0.5, block_min_s=0.002,
                                     min_samples=5, max_samples=30, max_time_s=0.15, target_rel_ci=0.02,
                                     timeout_s=180), rounds=3, larger="default",
                     ab_max_rounds=8, ab_budget_s=90.0, ab_case_round_s=1.0),
    "default": Profile("default", Budget(warmup_calls=3, warmup_min_s=0.1, warmup_max_s=2.0, block_min_s=0.005,
                                         min_samples=7, max_samples=100, max_time_s=0.5, target_rel_ci=0.01,
                                         timeout_s=600), rounds=5, larger="full",
                       ab_max_rounds=12, ab_budget_s=180.0, ab_case_round_s=2.0),
    "full": Profile("full", Budget(warmup_calls=5, warmup_min_s=0.3, warmup_max_s=5.0, block_min_s=0.01,
                                   min_samples=10, max_samples=300, max_time_s=1.5, target_rel_ci=0.005,
                                   timeout_s=1800), rounds=10, larger=None,
                    ab_max_rounds=24, ab_budget_s=600.0, ab_case_round_s=4.0, compile_repeats=3),
}
PROFILE_NAMES = tuple(PROFILES)


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UserError(f"unknown profile {name!r} (known: {', '.join(PROFILES)})") from None


def budget_for(profile: str) -> Budget:
    """The per-round budget of a case under this profile."""
    return get_profile(profile).budget


@dataclass
class Measurement:
    samples: list[float]  # seconds per call, one per timed block
    loops: int  # calls per timed block
    warmup_calls: int
    warmup_s: float
    overhead_s: float  # cost of an empty timed block (sync, events, clock reads)
    stopped: str  # "ci", "budget" or "max-samples"

    @property
    def block_s(self) -> float:
        return statistics.median(self.samples) * self.loops


def _settled(times: list[float]) -> bool:
    """The last window of warm-up calls is no longer clearly faster than the one before it."""
    w = max(3, min(50, len(times) // 4))
    if len(times) < 2 * w:
        return False
    last = statistics.median(times[-w:])
    prev = statistics.median(times[-2 * w:-w])
    return last >= 0.95 * prev


def measure_overhead(timer: TimerLike, repeats: int = 11) -> float:
    """Median cost of an empty timed block: the floor under every sample."""
    return statistics.median(timer.block(_noop, 0) for _ in range(repeats))


def _noop() -> None:
    return None


def _timed(timer: TimerLike, fn: Callable[[], Any], loops: int) -> float:
    """One timed block with Python's cyclic GC paused (as timeit does): a collection landing in one
    block would be an outlier caused by the harness, not the benchmark. It runs between blocks."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return timer.block(fn, loops)
    finally:
        if enabled:
            gc.enable()


@dataclass
class Calibration:
    """What warm-up and calibration found: the warm-up calls, the inner loop, the empty block's cost."""

    warmup_calls: int
    warmup_s: float
    loops: int
    overhead_s: float
    per_call_s: float  # the settled warm-up calls' median time, less the overhead


def warm_up_and_calibrate(
    fn: Callable[[], Any],
    timer: TimerLike,
    budget: Budget,
    clock: Callable[[], float] = time.perf_counter,
    on_phase: Callable[[str], None] | None = None,
) -> Calibration:
    """Warm fn up until its times settle (within the budget's bounds), then size the inner loop."""
    phase = on_phase or (lambda _p: None)

    phase("warmup")
    times: list[float] = []
    w0 = clock()
    while True:
        times.append(_timed(timer, fn, 1))
        if len(times) < budget.warmup_calls:
            continue  # the minimum count holds even for slow calls
        elapsed = clock() - w0
        if elapsed >= budget.warmup_max_s or (elapsed >= budget.warmup_min_s and _settled(times)):
            break
    warmup_s = clock() - w0

    # Calibrate: one block must be long against the timer's resolution and the sync/event overhead.
    # The overhead is not subtracted from samples (an estimate would add noise); at >= 100x the
    # overhead per block it biases a sample by 1% at most.
    overhead = measure_overhead(timer)
    per_call = statistics.median(times[-max(3, len(times) // 4):]) - overhead
    target = max(budget.block_min_s, NEAR_RESOLUTION * timer.resolution, 100 * overhead)
    loops = max(1, math.ceil(target / per_call - 1e-9)) if per_call > 0 else 1000
    return Calibration(len(times), warmup_s, loops, overhead, per_call)


def timed_block(timer: TimerLike, fn: Callable[[], Any], loops: int) -> float:
    """Seconds per call of one timed block of `loops` calls (GC paused, device work synchronised)."""
    return _timed(timer, fn, loops) / loops


def measure(
    fn: Callable[[], Any],
    timer: TimerLike,
    budget: Budget,
    clock: Callable[[], float] = time.perf_counter,
    on_phase: Callable[[str], None] | None = None,
) -> Measurement:
    """Time fn: warm up, calibrate the inner loop, then sample until precise enough or out of budget."""
    phase = on_phase or (lambda _p: None)
    cal = warm_up_and_calibrate(fn, timer, budget, clock, phase)
    loops = cal.loops

    phase("measure")
    samples: list[float] = []
    s0 = clock()
    stopped = "budget"
    while True:
        samples.append(timed_block(timer, fn, loops))
        n = len(samples)
        if n < budget.min_samples:
            continue
        if summarize(samples).rel_ci <= budget.target_rel_ci:
            stopped = "ci"
            break
        if clock() - s0 >= budget.max_time_s:
            stopped = "budget"
            break
        if n >= budget.max_samples:
            stopped = "max-samples"
            break
    return Measurement(samples=samples, loops=loops, warmup_calls=cal.warmup_calls, warmup_s=cal.warmup_s,
                       overhead_s=cal.overhead_s, stopped=stopped)
