"""Fakes shared by tests: a deterministic clock + timer, and a backend that uses them."""

from __future__ import annotations

from collections.abc import Callable

from benchbench.measure.backends import Backend
from benchbench.measure.engine import Budget


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


# --- fake device runtimes: the slices of torch.cuda / torch.mps benchbench reads, with the same
# counter semantics as the real allocators (so a wrong counter gives a wrong figure here too) ------
class FakeCudaAllocator:
    """torch.cuda's caching allocator as its counters see it.

    `allocated` counts live tensor blocks, `reserved` every segment the allocator holds: live blocks,
    freed blocks kept in its cache, and the private pool of recorded CUDA graphs. Recording a graph
    allocates inside that pool and frees back into it (the pool keeps the memory); a replay calls no
    allocator at all, so it moves neither counter although it uses the whole pool. Peaks follow
    reset_peak_memory_stats(), which resets them to the current values, as torch's does.
    """

    def __init__(self) -> None:
        self.live = self.cached = self.graph_pool = 0
        self.peak_allocated = self.peak_reserved = 0
        self.replays = 0

    @property
    def reserved(self) -> int:
        return self.live + self.cached + self.graph_pool

    def _peaks(self) -> None:
        self.peak_allocated = max(self.peak_allocated, self.live)
        self.peak_reserved = max(self.peak_reserved, self.reserved)

    def alloc(self, n: int) -> None:
        take = min(self.cached, n)
        self.cached -= take
        self.live += n
        self._peaks()

    def free(self, n: int) -> None:
        self.live -= n
        self.cached += n

    def record_graph(self, workspace: int) -> None:
        """Capture: the graph's intermediates are allocated in its private pool, then freed back into it."""
        self.live += workspace
        self.graph_pool += workspace
        self._peaks()
        self.live -= workspace

    def replay(self) -> None:
        self.replays += 1  # the pool's memory is used; no counter moves

    # torch.cuda functions
    def reset_peak_memory_stats(self, device=None) -> None:
        self.peak_allocated, self.peak_reserved = self.live, self.reserved

    def empty_cache(self) -> None:
        self.cached = 0  # a graph's private pool stays: the graph still holds it

    def max_memory_allocated(self, device=None) -> int:
        return self.peak_allocated

    def max_memory_reserved(self, device=None) -> int:
        return self.peak_reserved


class FakeMpsAllocator:
    """torch.mps as its counters see it: driver_allocated_memory() is what Metal holds for the process,
    the allocator's cache of freed buffers included, so it only grows until empty_cache();
    current_allocated_memory() counts live tensors only. MPS has no peak counter of its own."""

    def __init__(self) -> None:
        self.live = self.cached = 0
        self.syncs = 0

    def alloc(self, n: int) -> None:
        take = min(self.cached, n)
        self.cached -= take
        self.live += n

    def free(self, n: int) -> None:
        self.live -= n
        self.cached += n

    def synchronize(self) -> None:
        self.syncs += 1

    def empty_cache(self) -> None:
        self.cached = 0

    def current_allocated_memory(self) -> int:
        return self.live

    def driver_allocated_memory(self) -> int:
        return self.live + self.cached


class FakeEvent:
    log: list = []

    def __init__(self, enable_timing=False):
        assert enable_timing
        self.t = None

    def record(self):
        FakeEvent.log.append("record")
        self.t = len(FakeEvent.log)

    def synchronize(self):
        FakeEvent.log.append("event-sync")

    def elapsed_time(self, other):
        return 2.5  # ms


def gpu_props(name: str = "NVIDIA H100 80GB HBM3", uuid: str = "aaaaaaaa-0000-0000-0000-000000000000",
              major: int = 9, minor: int = 0):
    """torch.cuda.get_device_properties(i): its uuid prints without NVML's "GPU-" prefix."""
    from types import SimpleNamespace

    return SimpleNamespace(name=name, major=major, minor=minor, total_memory=80 * 2**30, multi_processor_count=132,
                           uuid=uuid)


class _FlagsFrom:
    """torch.backends of a real torch (its precision flags, as they really behave) with a fake MPS."""

    def __init__(self, real, mps) -> None:
        self._real, self.mps = real, mps

    def __getattr__(self, name):
        return getattr(self._real, name)


def fake_torch(cuda_version="12.4", hip=None, available=True, mps_built=False, mps_available=False,
               devices=None, flags_from=None, version="2.14.1"):
    """A torch module for backend probes. `devices`: get_device_properties results in CUDA order.
    `flags_from`: a real torch whose precision flags (torch.backends.*, get_float32_matmul_precision) the
    fake reads, to test what real flag settings do to a probe."""
    from types import SimpleNamespace

    devices = devices or [gpu_props()]
    syncs = []
    alloc = FakeCudaAllocator()
    cuda = SimpleNamespace(
        is_available=lambda: available, device_count=lambda: len(devices), current_device=lambda: 0,
        get_device_properties=lambda i: devices[i], Event=FakeEvent,
        synchronize=lambda i=None: syncs.append(("cuda", i)),
        reset_peak_memory_stats=alloc.reset_peak_memory_stats, empty_cache=alloc.empty_cache,
        max_memory_allocated=alloc.max_memory_allocated, max_memory_reserved=alloc.max_memory_reserved,
        allocator=alloc,
    )
    mps_alloc = FakeMpsAllocator()
    mps_mod = SimpleNamespace(synchronize=lambda: syncs.append(("mps", None)),
                              empty_cache=mps_alloc.empty_cache,
                              current_allocated_memory=mps_alloc.current_allocated_memory,
                              driver_allocated_memory=mps_alloc.driver_allocated_memory, allocator=mps_alloc)
    mps_flags = SimpleNamespace(is_built=lambda: mps_built, is_available=lambda: mps_available)
    if flags_from is not None:
        backends = _FlagsFrom(flags_from.backends, mps_flags)
        precision = flags_from.get_float32_matmul_precision
    else:  # a torch before 2.9: legacy flags only
        backends = SimpleNamespace(cuda=SimpleNamespace(matmul=SimpleNamespace(allow_tf32=False)),
                                   cudnn=SimpleNamespace(allow_tf32=True), mps=mps_flags)
        precision = lambda: "highest"  # noqa: E731
    return SimpleNamespace(
        __version__=version, version=SimpleNamespace(cuda=cuda_version, hip=hip), cuda=cuda, mps=mps_mod,
        backends=backends, device=lambda d: d, get_float32_matmul_precision=precision,
    ), syncs


# --- a GPU-shaped session: `pytest --fake-backend cuda|mps` makes one of these the usable backend of its
# kind for the whole run, so tests that quietly assume "the CPU is the only usable backend" fail here
# and not first on a machine with a GPU. The work itself runs on the CPU.
class _GpuShapedOnTheCpu:
    """A usable GPU backend of this kind's class that computes on the CPU device: no device runtime is
    touched (synchronize waits for nothing, memory reads as unavailable), the timer is sync + clock."""

    def torch_device(self):
        import torch

        return torch.device("cpu")

    def synchronize(self) -> None:
        pass

    def timer(self):
        from benchbench.measure.backends import SyncTimer

        return SyncTimer(self.synchronize)

    def reset_peak_memory(self) -> None:
        pass

    def peak_memory(self, counter: str = "allocated"):
        return None, "unavailable"


def gpu_shaped_backend(kind: str) -> Backend:
    """A usable `kind` backend (cuda or mps) that runs on the CPU; see _GpuShapedOnTheCpu."""
    from benchbench.measure import backends as bk

    if kind == "cuda":
        class FakeSessionCuda(_GpuShapedOnTheCpu, bk.CudaBackend):
            pass

        torch_mod, _ = fake_torch()
        backend = FakeSessionCuda(torch_mod)
    elif kind == "mps":
        class FakeSessionMps(_GpuShapedOnTheCpu, bk.MpsBackend):
            pass

        torch_mod, _ = fake_torch(mps_built=True, mps_available=True)
        backend = FakeSessionMps(torch_mod)
        backend.device_name = "Apple M2 Pro"
        backend.properties = {"macos": "15.1"}
    else:
        raise ValueError(f"no GPU-shaped fake for {kind!r}")
    backend.device = "cpu"
    return backend


def install_gpu_shaped_backend(kind: str) -> None:
    """Make `kind` usable for every later backends.discover()/get() in this process."""
    from benchbench.measure import backends as bk

    bk._PROBES[kind] = lambda torch_mod: gpu_shaped_backend(kind)
