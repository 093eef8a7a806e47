"""Backends: the device kinds benchbench can measure on, and the one place that synchronises them.

Every timing path goes through `Backend.timer()`: CUDA (and ROCm, which torch exposes as CUDA) times
with device events; MPS and XPU synchronise and read `perf_counter_ns`; the CPU reads it directly.
Adding a backend means its `Kind` in kinds.py, one class here and its probe in `_PROBES`.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchbench.measure.peaks as peaks
from benchbench.errors import UserError
from benchbench.kinds import KINDS, KNOWN  # noqa: F401  (KNOWN: re-exported for callers)
from benchbench.measure.dtypes import float32_precision


class Timer:
    """Times `loops` calls of fn as one block and returns seconds. Subclasses own device sync."""

    method = "perf_counter"

    def __init__(self, sync: Callable[[], None] | None = None) -> None:
        self._sync = sync

    def block(self, fn: Callable[[], Any], loops: int) -> float:
        sync = self._sync
        if sync is not None:
            sync()
        t0 = time.perf_counter_ns()
        for _ in range(loops):
            fn()
        if sync is not None:
            sync()
        return (time.perf_counter_ns() - t0) * 1e-9

    @property
    def resolution(self) -> float:
        return time.get_clock_info("perf_counter").resolution


class SyncTimer(Timer):
    method = "sync+perf_counter"


class CudaEventTimer(Timer):
    """CUDA events bracket the block on the stream; only the end is waited for."""

    method = "cuda-events"

    def __init__(self, torch_mod: Any, device: Any) -> None:
        super().__init__()
        self._torch = torch_mod
        self._device = device

    def block(self, fn: Callable[[], Any], loops: int) -> float:
        cuda = self._torch.cuda
        start = cuda.Event(enable_timing=True)
        end = cuda.Event(enable_timing=True)
        cuda.synchronize(self._device)  # nothing earlier may leak into the block
        start.record()
        for _ in range(loops):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) * 1e-3

    @property
    def resolution(self) -> float:
        return 0.5e-6  # CUDA documents event resolution of around half a microsecond


@dataclass
class Backend:
    """A device kind. `available` says whether it can run; `reason` says why not, in one line."""

    name: str
    available: bool
    reason: str | None = None
    device: str | None = None
    device_name: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    peak_kind = "gpu"  # which rows of the datasheet table describe this device (a class constant)

    # --- device work ---------------------------------------------------------------------------
    def torch_device(self) -> Any:
        import torch

        return torch.device(self.device or self.name)

    def synchronize(self) -> None:
        """Wait for all queued work on the device. The CPU is synchronous: nothing to wait for."""

    def timer(self) -> Timer:
        return Timer()

    def reset_peak_memory(self) -> None:
        pass

    def peak_memory(self, counter: str = "allocated") -> tuple[int | None, str]:
        """(bytes, which counter was read). Subclasses read the device's allocator.

        `counter` is what the case asked for: "allocated" (memory held by live tensors) or "reserved"
        (everything the allocator holds, e.g. CUDA-graph pools). Backends without that distinction
        read what they have; the second element always names the counter actually read.
        """
        return None, "unavailable"

    def memory_baseline(self) -> int | None:
        """Bytes the peak counter already held when it was last reset, where that counter is the whole process's
        (the CPU's resident set: the interpreter, torch, the case's setup), so that the case's own growth is the
        peak less this. None where the counter is the allocator's own (GPUs): it counts tensors only."""
        return None

    def dtype_reason(self, dtype: str | None) -> str | None:
        """Why this backend cannot run a dtype, or None when it can."""
        return None

    def emulates(self, dtype: str | None) -> bool:
        """Whether this backend runs a dtype it can run (see dtype_reason) without native units for it, so
        that its matmuls are far slower (a CPU without AVX512-BF16/AMX/FP16 emulates half precision)."""
        return False

    def peaks(self) -> dict[str, Any] | None:
        return peaks.lookup(self.device_name, kind=self.peak_kind)

    def info(self) -> dict[str, Any]:
        timer = self.timer() if self.available else None
        return {
            "name": self.name,
            "available": self.available,
            "reason": self.reason,
            "device": self.device,
            "device_name": self.device_name,
            "properties": self.properties,
            "timing_method": timer.method if timer else None,
            "timer_resolution_s": timer.resolution if timer else None,
            "peaks": self.peaks() if self.available else None,
        }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            import subprocess

            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                 text=True, timeout=5).stdout.strip()
            if out:
                return out
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _read_status_kib(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _malloc_trim() -> None:
    """glibc's malloc_trim(0): free heap pages go back to the system (nothing where the libc has none)."""
    try:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("c")
        libc = ctypes.CDLL(name) if name else None
        trim = getattr(libc, "malloc_trim", None)
        if trim is not None:
            trim(0)
    except (OSError, AttributeError):
        pass


class CpuBackend(Backend):
    peak_kind = "cpu"  # never a GPU row: on a Mac the CPU's name is the chip's ("Apple M2 Pro")

    def __init__(self) -> None:
        import torch

        from benchbench.measure.cpus import usable_cpus

        cores = os.cpu_count()
        usable = usable_cpus()
        super().__init__(
            name="cpu", available=True, device="cpu", device_name=_cpu_model(),
            properties={"logical_cpus": cores, "usable_cpus": usable, "torch_threads": torch.get_num_threads(),
                        "machine": platform.machine()},
        )

    def reset_peak_memory(self) -> None:
        # Freed heap memory that earlier calls left resident would hide the case's temporaries from the
        # resident set (glibc keeps blocks below its mmap threshold, up to 32 MiB): hand it back first.
        _malloc_trim()
        # Linux: writing 5 to clear_refs resets the peak resident set size (VmHWM) of this process.
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass
        self._rss_at_reset = _read_status_kib("VmRSS")  # the high-water mark starts here again

    def memory_baseline(self) -> int | None:
        return getattr(self, "_rss_at_reset", None)

    def peak_memory(self, counter: str = "allocated") -> tuple[int | None, str]:
        hwm = _read_status_kib("VmHWM")
        if hwm is not None:
            return hwm, "rss-peak"
        try:
            import psutil

            return psutil.Process().memory_info().rss, "rss"
        except Exception:  # noqa: BLE001 - memory is a nice-to-have, never a failure
            return None, "unavailable"

    def dtype_reason(self, dtype: str | None) -> str | None:
        if dtype == "tf32":
            return "TF32 is a GPU tensor-core format; the CPU has none"
        return None

    def emulates(self, dtype: str | None) -> bool:
        """bfloat16/float16 without the units oneDNN multiplies them natively with (older torch, or no
        oneDNN: assumed emulated)."""
        import torch

        try:
            if dtype == "bfloat16":
                return not torch.ops.mkldnn._is_mkldnn_bf16_supported()
            if dtype == "float16":
                return not torch.ops.mkldnn._is_mkldnn_fp16_supported()
        except (AttributeError, RuntimeError):
            return True
        return False


class CudaBackend(Backend):
    """NVIDIA CUDA, and AMD ROCm (torch exposes HIP as torch.cuda)."""

    def __init__(self, torch_mod: Any, index: int = 0) -> None:
        cuda = torch_mod.cuda
        props = cuda.get_device_properties(index)
        hip = getattr(torch_mod.version, "hip", None)
        properties = {
            "platform": "rocm" if hip else "cuda",
            "runtime_version": hip or torch_mod.version.cuda,
            "compute_capability": f"{props.major}.{props.minor}",
            "total_memory_bytes": int(props.total_memory),
            "multiprocessors": int(getattr(props, "multi_processor_count", 0)),
            "device_count": cuda.device_count(),
            # never raises: with torch's new fp32_precision API set, the legacy allow_tf32 read does
            "tf32_matmul": float32_precision(torch_mod)["cuda_matmul_tf32"],
            "uuid": _gpu_uuid(props),
            "visible_uuids": _visible_uuids(cuda),
        }
        super().__init__(name="cuda", available=True, device=f"cuda:{index}", device_name=props.name,
                         properties=properties)
        self._torch = torch_mod
        self._index = index

    def synchronize(self) -> None:
        self._torch.cuda.synchronize(self._index)

    def timer(self) -> Timer:
        return CudaEventTimer(self._torch, self._index)

    def reset_peak_memory(self) -> None:
        # Cached blocks of earlier work would count as "reserved": hand them back first. Blocks that
        # live CUDA graphs hold stay reserved, which is what a graph's memory is.
        cuda = self._torch.cuda
        cuda.synchronize(self._index)
        cuda.empty_cache()
        cuda.reset_peak_memory_stats(self._index)

    def peak_memory(self, counter: str = "allocated") -> tuple[int | None, str]:
        # Replays of CUDA graphs use a private pool: max_memory_allocated never sees them, reserved does.
        if counter == "reserved":
            return int(self._torch.cuda.max_memory_reserved(self._index)), "cuda-max-reserved"
        return int(self._torch.cuda.max_memory_allocated(self._index)), "cuda-max-allocated"

    def dtype_reason(self, dtype: str | None) -> str | None:
        major = int(self.properties["compute_capability"].split(".")[0])
        if self.properties["platform"] == "cuda":
            if dtype == "bfloat16" and major < 8:
                return f"bfloat16 needs compute capability 8.0+, this GPU has {self.properties['compute_capability']}"
            if dtype == "tf32" and major < 8:
                return f"TF32 needs compute capability 8.0+, this GPU has {self.properties['compute_capability']}"
        return None


class MpsBackend(Backend):
    """Apple's Metal Performance Shaders. No events API to rely on: synchronise, then read the clock."""

    def __init__(self, torch_mod: Any) -> None:
        super().__init__(name="mps", available=True, device="mps", device_name=_apple_chip_name(),
                         properties={"macos": platform.mac_ver()[0] or None})
        self._torch = torch_mod
        self._peak_counter = False  # whether torch.accelerator's peak counter works on MPS here

    def synchronize(self) -> None:
        self._torch.mps.synchronize()

    def timer(self) -> Timer:
        return SyncTimer(self.synchronize)

    def reset_peak_memory(self) -> None:
        # driver_allocated_memory() includes the Metal allocator's cache and only grows across cases
        # in a shared worker: empty the cache so every case starts from what is really in use.
        self.synchronize()
        self._torch.mps.empty_cache()
        accel = getattr(self._torch, "accelerator", None)
        try:
            accel.reset_peak_memory_stats()
            self._peak_counter = True
        except Exception:  # noqa: BLE001 - no accelerator API, or MPS does not implement its stats
            self._peak_counter = False

    def peak_memory(self, counter: str = "allocated") -> tuple[int | None, str]:
        mps = self._torch.mps
        try:
            if counter == "reserved":
                return int(mps.driver_allocated_memory()), "mps-driver-allocated"
            current = int(mps.current_allocated_memory())
        except (AttributeError, RuntimeError):
            return None, "unavailable"
        if self._peak_counter:
            try:
                peak = int(self._torch.accelerator.max_memory_allocated())
            except Exception:  # noqa: BLE001
                peak = 0
            if peak >= current and peak > 0:
                return peak, "mps-max-allocated"
        # No peak counter: what live tensors hold after the case, named as such (not a peak).
        return current, "mps-current-allocated"

    def dtype_reason(self, dtype: str | None) -> str | None:
        if dtype == "float64":
            return "MPS does not support float64"
        if dtype == "tf32":
            return "TF32 is an NVIDIA tensor-core format"
        return None


class XpuBackend(Backend):
    def __init__(self, torch_mod: Any) -> None:
        xpu = torch_mod.xpu
        super().__init__(name="xpu", available=True, device="xpu:0", device_name=xpu.get_device_name(0),
                         properties={"device_count": xpu.device_count()})
        self._torch = torch_mod

    def synchronize(self) -> None:
        self._torch.xpu.synchronize()

    def timer(self) -> Timer:
        return SyncTimer(self.synchronize)

    def reset_peak_memory(self) -> None:
        self._torch.xpu.reset_peak_memory_stats()

    def peak_memory(self, counter: str = "allocated") -> tuple[int | None, str]:
        if counter == "reserved":
            return int(self._torch.xpu.max_memory_reserved()), "xpu-max-reserved"
        return int(self._torch.xpu.max_memory_allocated()), "xpu-max-allocated"


def _gpu_uuid(props: Any) -> str | None:
    """The device's UUID as NVML spells it ("GPU-..."); torch prints it without the prefix."""
    raw = getattr(props, "uuid", None)
    text = str(raw).strip() if raw is not None else ""
    if not text:
        return None
    return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"


def _visible_uuids(cuda: Any) -> list[str | None] | None:
    """UUIDs of the devices torch sees, in torch's (CUDA's) order; None when they cannot be read."""
    try:
        return [_gpu_uuid(cuda.get_device_properties(i)) for i in range(cuda.device_count())]
    except Exception:  # noqa: BLE001
        return None


def _apple_chip_name() -> str:
    name = _cpu_model()
    return name if name.startswith("Apple") else f"Apple GPU ({name})"


def _unavailable(name: str, reason: str, **props: Any) -> Backend:
    return Backend(name=name, available=False, reason=reason, properties=props)


def _probe_cuda(torch_mod: Any) -> Backend:
    hip = getattr(torch_mod.version, "hip", None)
    if not torch_mod.version.cuda and not hip:
        return _unavailable("cuda", "torch was built without CUDA or ROCm (a CPU-only wheel)")
    try:
        available = torch_mod.cuda.is_available()
    except Exception as exc:  # noqa: BLE001 - a broken driver raises all sorts
        return _unavailable("cuda", f"CUDA initialisation failed: {str(exc).splitlines()[0]}")
    if not available:
        if hip:
            why = "no ROCm device found (is the amdgpu driver loaded and /dev/kfd accessible?)"
        elif os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
            why = f"CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r} hides every GPU"
        elif not Path("/proc/driver/nvidia").exists() and sys.platform.startswith("linux"):
            why = "no NVIDIA driver found (no /proc/driver/nvidia)"
        elif sys.platform == "darwin":
            why = "CUDA does not run on macOS"
        else:
            why = "no CUDA device visible to torch (driver too old for this torch's CUDA?)"
        built = f"ROCm {hip}" if hip else f"CUDA {torch_mod.version.cuda}"
        return _unavailable("cuda", f"{why}; torch is built with {built}")
    try:
        index = torch_mod.cuda.current_device()
        return CudaBackend(torch_mod, index)
    except Exception as exc:  # noqa: BLE001
        return _unavailable("cuda", f"CUDA device query failed: {str(exc).splitlines()[0]}")


def _macos_version() -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in platform.mac_ver()[0].split(".") if p)
    except ValueError:
        return ()


def mps_min_macos(torch_version: str | None) -> tuple[int, int]:
    """The oldest macOS on which this torch runs MPS: 14.0 from torch 2.9, 13.0 from 2.5, else 12.3."""
    try:
        major, minor = (int(p) for p in str(torch_version).split("+")[0].split(".")[:2])
    except ValueError:
        return (14, 0)  # unknown: assume a recent torch
    if (major, minor) >= (2, 9):
        return (14, 0)
    if (major, minor) >= (2, 5):
        return (13, 0)
    return (12, 3)


def _probe_mps(torch_mod: Any) -> Backend:
    mps = getattr(torch_mod.backends, "mps", None)
    if mps is None or not mps.is_built():
        if sys.platform == "darwin" and platform.machine() == "x86_64":
            return _unavailable("mps", "torch was built without MPS: an x86-64 Python (Rosetta?) or wheel; "
                                       "install an arm64 Python and torch")
        if sys.platform == "darwin":
            return _unavailable("mps", "torch was built without MPS support")
        return _unavailable("mps", "MPS needs macOS on Apple silicon")
    if not mps.is_available():
        version = _macos_version()
        need = mps_min_macos(getattr(torch_mod, "__version__", None))
        if version and version < need:
            return _unavailable("mps", f"macOS {'.'.join(map(str, version))} < {need[0]}.{need[1]}, the oldest "
                                       f"this torch ({getattr(torch_mod, '__version__', '?')}) runs MPS on")
        if platform.machine() != "arm64":
            return _unavailable("mps", "no Apple-silicon GPU (MPS needs an arm64 Mac)")
        return _unavailable("mps", "torch is built with MPS but no Metal device is available")
    return MpsBackend(torch_mod)


def _probe_xpu(torch_mod: Any) -> Backend:
    xpu = getattr(torch_mod, "xpu", None)
    if xpu is None or not hasattr(xpu, "is_available"):
        return _unavailable("xpu", "this torch has no XPU support")
    try:
        if not xpu.is_available():
            return _unavailable("xpu", "no Intel GPU visible to torch (or torch built without XPU)")
        return XpuBackend(torch_mod)
    except Exception as exc:  # noqa: BLE001
        return _unavailable("xpu", f"XPU initialisation failed: {str(exc).splitlines()[0]}")


_PROBES: dict[str, Callable[[Any], Backend]] = {
    "cpu": lambda torch_mod: CpuBackend(),
    "cuda": _probe_cuda,
    "mps": _probe_mps,
    "xpu": _probe_xpu,
}


def discover(names: list[str] | None = None) -> list[Backend]:
    """Probe backends (all known ones by default). Never raises: a broken one is unavailable, with why."""
    import torch

    out = []
    for name in names or list(KNOWN):
        probe = _PROBES.get(name)
        if probe is None:
            raise UserError(f"unknown backend {name!r} (known: {', '.join(KNOWN)})")
        out.append(probe(torch))
    return out


def get(name: str) -> Backend:
    return discover([name])[0]
