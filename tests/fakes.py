"""Fakes shared by tests: a deterministic clock + timer, and a backend that uses them."""

from __future__ import annotations

from collections.abc import Callable

from benchbench.backends import Backend
from benchbench.measure import Budget


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class FakeTimer:
    """Each call 'takes' per_call(i) seconds (i counts calls); an empty block costs `overhead`."""

    method = "fake"

    def __init__(self, clock: FakeClock, per_call: Callable[[int], float], overhead: float = 0.0,
                 resolution: float = 1e-9) -> None:
        self.clock = clock
        self.per_call = per_call
        self.overhead = overhead
        self._resolution = resolution
        self.calls = 0
        self.blocks: list[int] = []

    @property
    def resolution(self) -> float:
        return self._resolution

    def block(self, fn, loops: int) -> float:
        dt = self.overhead + sum(self.per_call(self.calls + i) for i in range(loops))
        self.calls += loops
        self.blocks.append(loops)
        self.clock.t += dt
        return dt


class FakeBackend(Backend):
    """A CPU-like backend whose timer is a FakeTimer (set .fake_timer before use)."""

    def __init__(self, name: str = "cpu", timer: FakeTimer | None = None, dtype_reasons: dict | None = None):
        super().__init__(name=name, available=True, device="cpu", device_name="Fake Device")
        self.fake_timer = timer
        self.dtype_reasons = dtype_reasons or {}
        self.syncs = 0

    def synchronize(self) -> None:
        self.syncs += 1

    def timer(self):
        return self.fake_timer

    def dtype_reason(self, dtype):
        return self.dtype_reasons.get(dtype)


# A budget that times almost nothing: for tests that run a suite's setups, not measure them.
TINY_BUDGET = Budget(warmup_calls=1, warmup_min_s=0.0, warmup_max_s=0.1, block_min_s=0.0, min_samples=3,
                     max_samples=3, max_time_s=0.1, target_rel_ci=1.0, timeout_s=60)


def steady_backend(name: str = "cpu", dtype_reasons: dict | None = None) -> FakeBackend:
    """A fake backend on which every call 'takes' 1 ms."""
    return FakeBackend(name=name, timer=FakeTimer(FakeClock(), lambda i: 1e-3), dtype_reasons=dtype_reasons)
