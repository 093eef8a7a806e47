"""Energy counters read around a measured interval, giving joules per call and average watts.

Readers, each returning a `Meter` or a one-line reason why it cannot read:
- NVIDIA GPUs: NVML's total-energy counter (`nvmlDeviceGetTotalEnergyConsumption`, millijoules since the
  driver loaded; Volta and newer) through the optional `nvidia-ml-py`, loaded as `benchbench.environment.nvml`
  loads it.
- CPUs: RAPL through the powercap tree (`/sys/class/powercap/intel-rapl:*`: package and DRAM zones, the
  same names on AMD Zen since Linux 5.8), each counter rolling over at `max_energy_range_uj`; else AMD's
  `amd_energy` hwmon driver (socket counters, already accumulated to 64 bits by the kernel).
- AMD GPUs: `amdsmi_get_energy_count` through the optional `amdsmi` package.

Joules come from these counters only: never from a TDP or a power limit. Nothing here raises while a
case is measured; a counter that fails turns the case's energy into "unavailable: why".
The seams tests replace are the `root` folders and `import_module`.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchbench.environment import nvml

POWERCAP_ROOT = "/sys/class/powercap"
HWMON_ROOT = "/sys/class/hwmon"
# RAPL zones that add up without overlap: the package (cores, caches, uncore) and the DRAM beside it.
# "core"/"uncore" lie inside the package and "psys" contains it, so they are left out.
RAPL_ZONES = ("package", "dram")

# the metrics a case's result carries (benchbench.report.METRIC_KEYS types them)
SOURCE = "energy"  # what was read ("rapl: package-0, dram"), or "unavailable: why"
J_PER_CALL = "energy_j_per_call"
WATTS = "power_w"


def import_module(name: str) -> Any:
    """The seam for optional packages (amdsmi); NVML goes through `nvml.import_pynvml`."""
    return importlib.import_module(name)


def unavailable(why: str) -> str:
    return nvml.unavailable(why)


@dataclass(frozen=True)
class Counter:
    """One cumulative energy counter: `read()` gives joules since some origin; past `wrap_j` joules it
    starts again from 0 (None: it does not wrap in practice)."""

    name: str
    read: Callable[[], float]
    wrap_j: float | None = None

    def delta(self, before: float, after: float) -> float:
        """Joules between two readings, across at most one rollover."""
        if after >= before:
            return after - before
        if self.wrap_j:
            return after + self.wrap_j - before
        raise ValueError(f"{self.name}: the counter went backwards ({before:.6g} J -> {after:.6g} J)")


@dataclass
class Meter:
    """The counters that describe one backend's work (a GPU, or the CPU packages and their DRAM), read
    together. Their joules add up: they measure parts that do not overlap."""

    source: str  # "nvml", "rapl", "amd_energy", "amdsmi"
    counters: list[Counter]
    clock: Callable[[], float] = time.perf_counter

    @property
    def label(self) -> str:
        return f"{self.source}: {', '.join(c.name for c in self.counters)}"

    def read(self) -> tuple[float, list[float]]:
        """(clock, one reading per counter)."""
        values = [c.read() for c in self.counters]
        return self.clock(), values

    def since(self, start: tuple[float, list[float]]) -> tuple[float, float]:
        """(joules, seconds) from `start` (a `read()`) to now."""
        now, values = self.read()
        joules = sum(c.delta(a, b) for c, a, b in zip(self.counters, start[1], values, strict=True))
        return joules, now - start[0]


@dataclass
class Tally:
    """A case's energy, summed over the intervals it was timed in (one per sampling phase, or one per
    interleaved block), then turned into the result's metrics. With no meter it holds the reason."""

    meter: Meter | None
    reason: str | None = None
    joules: float = 0.0
    seconds: float = 0.0
    calls: int = 0
    _start: tuple[float, list[float]] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, meter: Meter | str | None) -> Tally | None:
        """A tally for this meter, one that holds the reason none could be opened, or None (no energy asked)."""
        if meter is None:
            return None
        return cls(meter=meter) if isinstance(meter, Meter) else cls(meter=None, reason=meter)

    def start(self) -> None:
        if self.meter is None or self.reason:
            return
        try:
            self._start = self.meter.read()
        except Exception as exc:  # noqa: BLE001 - a counter that fails is a fact about the case
            self._fail(exc)

    def stop(self, calls: int) -> None:
        if self._start is None:
            return
        start, self._start = self._start, None
        try:
            joules, seconds = self.meter.since(start)  # type: ignore[union-attr]
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return
        self.joules += joules
        self.seconds += seconds
        self.calls += calls

    def _fail(self, exc: BaseException) -> None:
        self.reason = f"reading {self.meter.label if self.meter else 'the counter'} failed: " \
                      f"{str(exc).strip() or type(exc).__name__}"
        self._start = None

    def metrics(self) -> dict[str, Any]:
        """{"energy": source, "energy_j_per_call": J, "power_w": W}, or {"energy": "unavailable: why"}."""
        if self.reason:
            return {SOURCE: unavailable(self.reason)}
        if self.meter is None or self.calls <= 0 or self.seconds <= 0:
            return {SOURCE: unavailable("no timed calls to measure")}
        if self.joules <= 0:
            return {SOURCE: unavailable(f"{self.meter.label} did not advance in {self.seconds:.3g} s of timed "
                                        "calls (the counter updates too coarsely for this case)")}
        return {SOURCE: self.meter.label, J_PER_CALL: self.joules / self.calls, WATTS: self.joules / self.seconds}


# --- CPU: RAPL through powercap, or amd_energy hwmon -------------------------------------------
def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


def _zone_counter(zone: Path) -> Counter | str:
    """A powercap zone's counter, or why it cannot be read (root-only since Linux 5.10)."""
    name = zone.joinpath("name").read_text().strip()
    energy = zone / "energy_uj"
    try:
        _read_int(energy)
    except PermissionError:
        return (f"RAPL counters are readable by root only ({energy}); to allow it: "
                f"sudo chmod a+r {zone.parent}/intel-rapl:*/energy_uj {zone.parent}/intel-rapl:*/*/energy_uj")
    except (OSError, ValueError) as exc:
        return f"cannot read {energy}: {exc}"
    try:
        wrap: float | None = _read_int(zone / "max_energy_range_uj") * 1e-6
    except (OSError, ValueError):
        wrap = None
    socket = zone.name.split(":")[1]
    label = name if name[-1:].isdigit() else f"{name}-{socket}"  # "package-0"; "dram" -> "dram-0"
    return Counter(label, lambda: _read_int(energy) * 1e-6, wrap)


def rapl_meter(root: str = POWERCAP_ROOT) -> Meter | str:
    """Package and DRAM zones of every CPU socket under the powercap tree."""
    base = Path(root)
    try:
        zones = sorted(p for p in base.iterdir() if p.name.startswith("intel-rapl:"))
    except OSError:
        return f"no RAPL counters: {root} is absent (no powercap driver, or a VM that hides it)"
    counters: list[Counter] = []
    for zone in zones:
        try:
            name = zone.joinpath("name").read_text().strip()
        except OSError:
            continue
        if not name.startswith(RAPL_ZONES):
            continue
        got = _zone_counter(zone)
        if isinstance(got, str):
            return got
        counters.append(got)
    if not counters:
        return f"no RAPL counters: {root} has no package or DRAM zone"
    return Meter("rapl", counters)


def amd_energy_meter(root: str = HWMON_ROOT) -> Meter | str:
    """Socket counters of AMD's amd_energy hwmon driver (microjoules, accumulated to 64 bits)."""
    base = Path(root)
    try:
        hwmons = sorted(base.iterdir())
    except OSError:
        return f"no amd_energy counters: {root} is absent"
    counters: list[Counter] = []
    for hw in hwmons:
        try:
            if hw.joinpath("name").read_text().strip() != "amd_energy":
                continue
        except OSError:
            continue
        for label_file in sorted(hw.glob("energy*_label")):
            label = label_file.read_text().strip()
            if not label.startswith("Esocket"):
                continue  # core counters lie inside their socket's
            value = hw / label_file.name.replace("_label", "_input")
            try:
                _read_int(value)
            except PermissionError:
                return f"amd_energy counters are readable by root only ({value})"
            except (OSError, ValueError) as exc:
                return f"cannot read {value}: {exc}"
            counters.append(Counter(label, lambda v=value: _read_int(v) * 1e-6))
    if not counters:
        return "no amd_energy counters: the amd_energy hwmon driver is not loaded"
    return Meter("amd_energy", counters)


def cpu_meter(powercap_root: str | None = None, hwmon_root: str | None = None) -> Meter | str:
    """RAPL through powercap, else amd_energy; both reasons when neither can be read."""
    rapl = rapl_meter(powercap_root or POWERCAP_ROOT)
    if isinstance(rapl, Meter):
        return rapl
    amd = amd_energy_meter(hwmon_root or HWMON_ROOT)
    if isinstance(amd, Meter):
        return amd
    return f"{rapl}; {amd}"


# --- NVIDIA: NVML ------------------------------------------------------------------------------
def nvml_meter(uuid: str | None, index: int = 0) -> Meter | str:
    """NVML's total-energy counter of the GPU with this UUID (as torch reports it), else NVML index `index`."""
    try:
        nv = nvml.import_pynvml()
    except ImportError:
        return "nvidia-ml-py is not installed (pip install 'benchbench[nvml]' reads NVML's energy counter)"
    except Exception as exc:  # noqa: BLE001
        return f"pynvml failed to import: {exc}"
    try:
        nv.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return f"NVML did not start: {str(exc) or type(exc).__name__}"
    try:
        handle = nv.nvmlDeviceGetHandleByUUID(uuid) if uuid else nv.nvmlDeviceGetHandleByIndex(index)
        name = nv.nvmlDeviceGetName(handle)
        name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
    except Exception as exc:  # noqa: BLE001 - a MIG instance has no NVML device of its own here
        return f"NVML has no device {uuid or index}: {str(exc) or type(exc).__name__}"
    try:
        nv.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception as exc:  # noqa: BLE001 - NVMLError_NotSupported before Volta
        return f"NVML's energy counter is not supported on {name} (needs Volta or newer): " \
               f"{str(exc) or type(exc).__name__}"
    return Meter("nvml", [Counter(name, lambda: nv.nvmlDeviceGetTotalEnergyConsumption(handle) * 1e-3)])


# --- AMD GPUs: amdsmi ---------------------------------------------------------------------------
def _amdsmi_joules(amdsmi: Any, handle: Any) -> float:
    got = amdsmi.amdsmi_get_energy_count(handle)
    # the accumulator is "energy_accumulator" in recent amdsmi, "power" in older releases
    raw = got.get("energy_accumulator", got.get("power"))
    return float(raw) * float(got["counter_resolution"]) * 1e-6  # counter units of `resolution` microjoules


def amdsmi_meter(index: int = 0) -> Meter | str:
    try:
        amdsmi = import_module("amdsmi")
    except ImportError:
        return "amdsmi is not installed (AMD GPU energy is read through ROCm's amdsmi package)"
    except Exception as exc:  # noqa: BLE001
        return f"amdsmi failed to import: {exc}"
    try:
        amdsmi.amdsmi_init()
        handle = amdsmi.amdsmi_get_processor_handles()[index]
        _amdsmi_joules(amdsmi, handle)
    except Exception as exc:  # noqa: BLE001 - not supported on VM guests, among others
        return f"amdsmi cannot read GPU {index}'s energy counter: {str(exc) or type(exc).__name__}"
    return Meter("amdsmi", [Counter(f"GPU {index}", lambda: _amdsmi_joules(amdsmi, handle))])


# --- per backend ------------------------------------------------------------------------------
def _device_index(device: str | None) -> int:
    try:
        return int(str(device).rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return 0


def open_meter(backend: Any) -> Meter | str:
    """The meter for the device a backend measures on, or why there is none (one line)."""
    name = getattr(backend, "name", None)
    if not getattr(backend, "available", True):
        return f"backend {name} unavailable"
    props = getattr(backend, "properties", None) or {}
    if name == "cpu":
        return cpu_meter()
    if name == "cuda":
        index = _device_index(getattr(backend, "device", None))
        if props.get("platform") == "rocm":
            return amdsmi_meter(_visible_index(index))
        return nvml_meter(props.get("uuid"), index)
    return f"no energy counter is read for {name} devices"


def _visible_index(index: int) -> int:
    """HIP_VISIBLE_DEVICES/ROCR_VISIBLE_DEVICES renumber torch's devices, not amdsmi's."""
    for var in ("HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
        items = [s.strip() for s in (os.environ.get(var) or "").split(",") if s.strip()]
        if items and index < len(items) and items[index].isdigit():
            return int(items[index])
    return index
