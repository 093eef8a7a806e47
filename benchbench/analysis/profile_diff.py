"""Which operator got slower: two profiles' operator tables, diffed per call of the benchmark.

A profile here is plain data: how many calls of the case were profiled, and per operator (or device
kernel) how often it ran and its self time over those calls, as torch.profiler's `key_averages()`
gives them (`from_key_averages` turns that into this form; nothing else here touches torch). The diff
puts both sides per call of the case, so that a side profiled over more iterations does not look
slower, and ranks the operators by their change in self time per call, largest increase first: the
reader sees "aten::layer_norm +38 us, 1 -> 2 calls" at the top.

Self time, not total time: an operator's total includes its children, so one slower kernel would
raise every operator above it; self time puts the change where it happens. CPU self time and device
(CUDA/XPU kernel) self time are separate rows, since they add up on different clocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

WHERE = ("cpu", "device", "instructions")


@dataclass(frozen=True)
class OpStat:
    """One operator's row of a profile: `calls` and `self_us` (microseconds) over the whole profiled run.

    `where`: "cpu" (self CPU time), "device" (self time of a CUDA/XPU kernel), or "instructions": a
    function's own instructions under Callgrind, held in `self_us` (and its diff's `*_us` fields) as a
    count, not a time; Callgrind's per-function table has no call counts (0)."""

    name: str
    calls: int
    self_us: float
    where: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "calls": self.calls, "self_us": self.self_us, "where": self.where}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OpStat:
        return cls(str(d["name"]), int(d["calls"]), float(d["self_us"]), str(d.get("where", "cpu")))


@dataclass(frozen=True)
class Profile:
    """What one side's profiled run saw: `iterations` calls of the case, and its operators."""

    iterations: int
    ops: tuple[OpStat, ...]

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError("a profile covers at least one call of the case")

    def to_dict(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "ops": [o.to_dict() for o in self.ops]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        return cls(int(d["iterations"]), tuple(OpStat.from_dict(o) for o in d.get("ops", [])))


@dataclass(frozen=True)
class OpDiff:
    """One operator, both sides, per call of the case."""

    name: str
    where: str
    base_calls: float
    current_calls: float
    base_us: float  # self time per call of the case
    current_us: float

    @property
    def delta_us(self) -> float:
        return self.current_us - self.base_us

    @property
    def ratio(self) -> float | None:
        return self.current_us / self.base_us if self.base_us > 0 else None

    @property
    def change(self) -> str:
        """new / gone / more calls / fewer calls / slower / faster / same (instructions: more / fewer)."""
        if self.where == "instructions":  # no call counts: new and gone by the cost itself
            if self.base_us == 0 or self.current_us == 0:
                return "new" if self.base_us == 0 else "gone"
            return "more" if self.delta_us > 0 else "fewer" if self.delta_us < 0 else "same"
        if self.base_calls == 0:
            return "new"
        if self.current_calls == 0:
            return "gone"
        if self.current_calls != self.base_calls:
            return "more calls" if self.current_calls > self.base_calls else "fewer calls"
        return "slower" if self.delta_us > 0 else "faster" if self.delta_us < 0 else "same"


def _per_call(profile: Profile) -> dict[tuple[str, str], tuple[float, float]]:
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for op in profile.ops:
        key = (op.name, op.where)
        calls, us = out.get(key, (0.0, 0.0))
        out[key] = (calls + op.calls / profile.iterations, us + op.self_us / profile.iterations)
    return out


def diff(base: Profile, current: Profile) -> list[OpDiff]:
    """Every operator of either side, ranked by the change in self time per call of the case, largest
    increase first (ties: the larger current time, then the name)."""
    a, b = _per_call(base), _per_call(current)
    rows = []
    for key in sorted(set(a) | set(b)):
        (ca, ua), (cb, ub) = a.get(key, (0.0, 0.0)), b.get(key, (0.0, 0.0))
        rows.append(OpDiff(key[0], key[1], ca, cb, ua, ub))
    rows.sort(key=lambda r: (-r.delta_us, -r.current_us, r.name, r.where))
    return rows


def top(rows: Sequence[OpDiff], n: int = 10, min_us: float = 0.0) -> list[OpDiff]:
    """The first `n` rows whose self time per call moved by more than `min_us` either way, the largest
    increases first and then the largest decreases."""
    moved = [r for r in rows if abs(r.delta_us) > min_us]
    up = [r for r in moved if r.delta_us > 0]
    down = sorted((r for r in moved if r.delta_us < 0), key=lambda r: r.delta_us)
    return (up + down)[:n]


def _number(event: Any, *names: str) -> float:
    for name in names:
        value = getattr(event, name, None)
        if value is not None:
            try:
                return float(value)
            except (TypeError, ValueError):
                continue
    return 0.0


def from_key_averages(events: Iterable[Any]) -> tuple[OpStat, ...]:
    """torch.profiler's `prof.key_averages()` as OpStats: a CPU row per event with CPU self time, a device
    row per event with device self time (kernels). Times there are in microseconds."""
    out = []
    for e in events:
        name, calls = str(getattr(e, "key", "?")), int(getattr(e, "count", 0) or 0)
        cpu = _number(e, "self_cpu_time_total")
        device = _number(e, "self_device_time_total", "self_cuda_time_total")
        if cpu > 0 or device == 0:
            out.append(OpStat(name, calls, cpu, "cpu"))
        if device > 0:
            out.append(OpStat(name, calls, device, "device"))
    return tuple(out)


def from_top_functions(rows: Iterable[dict[str, Any]]) -> Profile:
    """Callgrind's top functions of one case (a result's `metrics["instructions"]["top_functions"]`: own
    instructions per call of the case, the top ones by that) as a Profile of one call. Only the top
    functions are kept there, so a function can look new or gone when it only crossed that line."""
    return Profile(1, tuple(OpStat(str(r.get("function", "?")), 0, float(r.get("self") or 0.0), "instructions")
                            for r in rows))
