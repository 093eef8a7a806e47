"""NVIDIA GPU facts: NVML through the optional `nvidia-ml-py` package, then `/proc/driver/nvidia` and
`libcuda` as fallbacks, so that "is there a GPU, and which driver" is known even without NVML.

Nothing here raises: a field that cannot be read holds "unavailable: why". The seams tests replace are
`import_pynvml`, `read_text`, `list_dir` and `libcuda_driver_version`.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Bits of nvmlDeviceGetCurrentClocksEventReasons (formerly ...ThrottleReasons); stable NVML API values.
CLOCK_EVENT_BITS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
# Reasons that mean the GPU runs slower than it should; the others are policy or idleness.
SLOWDOWN_REASONS = ("hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown")

_NVML_MISSING = ("nvidia-ml-py is not installed (pip install 'benchbench[nvml]' reads clocks, power, "
                 "PCIe and throttling)")


def unavailable(why: Any) -> str:
    text = str(why).strip().splitlines()[0] if str(why).strip() else type(why).__name__
    return f"unavailable: {text}"


def is_unavailable(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("unavailable")


# --- seams ------------------------------------------------------------------------------------
def import_pynvml() -> Any:
    import pynvml

    return pynvml


def read_text(path: str) -> str:
    return Path(path).read_text(errors="replace")


def list_dir(path: str) -> list[str]:
    return sorted(os.listdir(path))


def libcuda_driver_version() -> int | None:
    """cuDriverGetVersion from the CUDA driver library: needs no device and no cuInit."""
    name = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
    lib = ctypes.CDLL(name)
    version = ctypes.c_int(0)
    if lib.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return None
    return version.value or None


# --- helpers ----------------------------------------------------------------------------------
def cuda_version_text(value: Any) -> str | None:
    """NVML and the driver API encode CUDA versions as 1000*major + 10*minor (12040 -> "12.4")."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return None
    return f"{value // 1000}.{(value % 1000) // 10}"


def _get(fn: Callable[..., Any] | None, *args: Any) -> Any:
    if fn is None:
        return unavailable("not in this nvidia-ml-py version")
    try:
        value = fn(*args)
    except Exception as exc:  # noqa: BLE001 - NVMLError_NotSupported and friends are facts, not failures
        return unavailable(exc)
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _num(value: Any, scale: float = 1.0) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value * scale if scale != 1.0 else value
    return value


def decode_clock_events(mask: int) -> list[str]:
    return [name for bit, name in CLOCK_EVENT_BITS.items() if mask & bit]


def _processes(nv: Any, handle: Any, own_pid: int) -> Any:
    procs: dict[int, dict[str, Any]] = {}
    errors = []
    for fn_name in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        found = _get(getattr(nv, fn_name, None), handle)
        if is_unavailable(found):
            errors.append(found)
            continue
        for p in found or []:
            pid = int(getattr(p, "pid", -1))
            used = getattr(p, "usedGpuMemory", None)
            entry = procs.setdefault(pid, {"pid": pid, "used_memory_bytes": None, "self": pid == own_pid})
            if isinstance(used, int):
                entry["used_memory_bytes"] = max(entry["used_memory_bytes"] or 0, used)
    if errors and not procs and len(errors) == 2:
        return errors[0]
    for entry in procs.values():
        name = _get(getattr(nv, "nvmlSystemGetProcessName", None), entry["pid"])
        entry["name"] = os.path.basename(name) if isinstance(name, str) and not is_unavailable(name) else None
    return sorted(procs.values(), key=lambda e: e["pid"])


def _device(nv: Any, index: int, own_pid: int) -> dict[str, Any]:
    handle = nv.nvmlDeviceGetHandleByIndex(index)
    dev: dict[str, Any] = {"index": index, "name": _get(nv.nvmlDeviceGetName, handle),
                           "uuid": _get(getattr(nv, "nvmlDeviceGetUUID", None), handle)}
    cc = _get(getattr(nv, "nvmlDeviceGetCudaComputeCapability", None), handle)
    dev["compute_capability"] = f"{cc[0]}.{cc[1]}" if isinstance(cc, tuple) and len(cc) == 2 else cc
    mem = _get(nv.nvmlDeviceGetMemoryInfo, handle)
    if is_unavailable(mem):
        dev["memory_total_bytes"] = dev["memory_used_bytes"] = mem
    else:
        dev["memory_total_bytes"] = int(mem.total)
        dev["memory_used_bytes"] = int(mem.used)
    dev["temperature_c"] = _get(getattr(nv, "nvmlDeviceGetTemperature", None), handle,
                                getattr(nv, "NVML_TEMPERATURE_GPU", 0))
    util = _get(getattr(nv, "nvmlDeviceGetUtilizationRates", None), handle)
    dev["utilization_pct"] = util if is_unavailable(util) else int(util.gpu)
    for key, fn_name in (("power_limit_w", "nvmlDeviceGetPowerManagementLimit"),
                         ("power_default_limit_w", "nvmlDeviceGetPowerManagementDefaultLimit"),
                         ("power_enforced_limit_w", "nvmlDeviceGetEnforcedPowerLimit"),
                         ("power_draw_w", "nvmlDeviceGetPowerUsage")):
        dev[key] = _num(_get(getattr(nv, fn_name, None), handle), 1e-3)  # NVML reports milliwatts
    sm, mem_clock = getattr(nv, "NVML_CLOCK_SM", 1), getattr(nv, "NVML_CLOCK_MEM", 2)
    dev["clock_sm_mhz"] = _get(getattr(nv, "nvmlDeviceGetClockInfo", None), handle, sm)
    dev["clock_sm_max_mhz"] = _get(getattr(nv, "nvmlDeviceGetMaxClockInfo", None), handle, sm)
    dev["clock_mem_mhz"] = _get(getattr(nv, "nvmlDeviceGetClockInfo", None), handle, mem_clock)
    dev["clock_mem_max_mhz"] = _get(getattr(nv, "nvmlDeviceGetMaxClockInfo", None), handle, mem_clock)
    # ...EventReasons is the current name; older drivers only have ...ThrottleReasons (same bits).
    mask = _get(getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None), handle)
    if not isinstance(mask, int):
        mask = _get(getattr(nv, "nvmlDeviceGetCurrentClocksThrottleReasons", None), handle)
    dev["clock_event_mask"] = mask
    dev["clock_event_reasons"] = decode_clock_events(mask) if isinstance(mask, int) else mask
    for key, fn_name in (("pcie_gen", "nvmlDeviceGetCurrPcieLinkGeneration"),
                         ("pcie_gen_max", "nvmlDeviceGetMaxPcieLinkGeneration"),
                         ("pcie_width", "nvmlDeviceGetCurrPcieLinkWidth"),
                         ("pcie_width_max", "nvmlDeviceGetMaxPcieLinkWidth")):
        dev[key] = _get(getattr(nv, fn_name, None), handle)
    dev["processes"] = _processes(nv, handle, own_pid)
    return dev


def read_nvml(own_pid: int | None = None) -> dict[str, Any]:
    """Driver and per-GPU facts from NVML; {"available": False, "reason": ...} when it cannot be read."""
    own_pid = os.getpid() if own_pid is None else own_pid
    try:
        nv = import_pynvml()
    except ImportError:
        return {"available": False, "reason": _NVML_MISSING}
    except Exception as exc:  # noqa: BLE001
        return {"available": False, "reason": f"pynvml failed to import: {exc}"}
    try:
        nv.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return {"available": False, "reason": f"NVML did not start: {str(exc) or type(exc).__name__}"}
    try:
        out: dict[str, Any] = {
            "available": True, "reason": None,
            "driver_version": _get(nv.nvmlSystemGetDriverVersion),
            "cuda_driver_version": cuda_version_text(_get(getattr(nv, "nvmlSystemGetCudaDriverVersion", None)))
            or unavailable("nvmlSystemGetCudaDriverVersion gave no version"),
        }
        count = _get(nv.nvmlDeviceGetCount)
        if is_unavailable(count):
            out["devices"] = count
        else:
            devices = []
            for i in range(int(count)):
                try:
                    devices.append(_device(nv, i, own_pid))
                except Exception as exc:  # noqa: BLE001 - a lost GPU must not hide the others
                    devices.append({"index": i, "name": unavailable(exc)})
            out["devices"] = devices
        return out
    except Exception as exc:  # noqa: BLE001
        return {"available": False, "reason": f"NVML query failed: {exc}"}
    finally:
        try:
            nv.nvmlShutdown()
        except Exception:  # noqa: BLE001, S110
            pass


def read_proc_driver() -> dict[str, Any]:
    """What the kernel module says, without NVML: driver version and GPU models."""
    try:
        text = read_text("/proc/driver/nvidia/version")
    except OSError:
        return {"present": False}
    m = re.search(r"Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)", text)
    gpus: list[str] = []
    try:
        for entry in list_dir("/proc/driver/nvidia/gpus"):
            model = "unknown NVIDIA GPU"
            try:
                for line in read_text(f"/proc/driver/nvidia/gpus/{entry}/information").splitlines():
                    if line.startswith("Model:"):
                        model = line.split(":", 1)[1].strip()
            except OSError:
                pass
            gpus.append(model)
    except OSError:
        pass
    return {"present": True, "driver_version": m.group(1) if m else unavailable("unrecognised /proc format"),
            "gpus": gpus}


def visible_indices(cuda_visible_devices: str | None, devices: list[dict[str, Any]],
                    device_order: str | None = None) -> set[int]:
    """NVML indices that CUDA_VISIBLE_DEVICES lets torch see (NVML ignores that variable).

    A fallback for when torch cannot list its devices' UUIDs (see `read_gpu`). Integer entries are CUDA
    indices, and CUDA orders fastest-first unless CUDA_DEVICE_ORDER=PCI_BUS_ID, while NVML counts in
    PCI order: they are taken as NVML indices only in PCI order or when all GPUs are the same model
    (ties go in PCI order). UUID prefixes match exactly. Anything else (MIG ids) counts as all.
    """
    all_idx = {d["index"] for d in devices}
    if cuda_visible_devices is None:
        return all_idx
    pci_order = device_order == "PCI_BUS_ID" or len({str(d.get("name")) for d in devices}) <= 1
    out: set[int] = set()
    for raw in cuda_visible_devices.split(","):
        item = raw.strip()
        if not item:
            break
        if item.lstrip("-").isdigit():
            if int(item) < 0:
                break  # CUDA stops at the first invalid entry
            if not pci_order:
                return all_idx  # which GPU CUDA numbers this way cannot be told from NVML alone
            out.add(int(item))
        elif item.startswith("GPU-"):
            out.update(d["index"] for d in devices
                       if isinstance(d.get("uuid"), str) and d["uuid"].startswith(item))
        else:
            return all_idx
    return out & all_idx


def read_gpu(env: dict[str, str], cuda_uuids: list[str | None] | None = None,
             measured_uuid: str | None = None) -> dict[str, Any]:
    """GPU facts. `cuda_uuids` are the UUIDs of the devices torch sees and `measured_uuid` the one it
    measures (from the cuda backend): they decide which NVML devices are visible and which is measured,
    exactly, whatever CUDA_VISIBLE_DEVICES and CUDA's device order say."""
    nvml = read_nvml()
    proc = read_proc_driver() if sys.platform.startswith("linux") else {"present": False}
    driver = nvml.get("driver_version") if nvml.get("available") else None
    if driver is None or is_unavailable(driver):
        driver = proc.get("driver_version") if proc.get("present") else None
    cuda_driver = nvml.get("cuda_driver_version") if nvml.get("available") else None
    if (cuda_driver is None or is_unavailable(cuda_driver)) and (proc.get("present") or sys.platform == "win32"):
        try:
            cuda_driver = cuda_version_text(libcuda_driver_version()) or unavailable("cuDriverGetVersion failed")
        except OSError as exc:
            cuda_driver = unavailable(f"no CUDA driver library: {exc}")
    devices = nvml.get("devices") if nvml.get("available") else None
    if isinstance(devices, list):
        by_uuid = {d.get("uuid"): d["index"] for d in devices if isinstance(d.get("uuid"), str)}
        if cuda_uuids and all(u in by_uuid for u in cuda_uuids):
            visible = {by_uuid[u] for u in cuda_uuids if u is not None}
        else:  # MIG instances (no NVML device of their own here) or torch could not tell
            visible = visible_indices(env.get("CUDA_VISIBLE_DEVICES"), devices, env.get("CUDA_DEVICE_ORDER"))
        for d in devices:
            d["visible"] = d["index"] in visible
            d["measured"] = measured_uuid is not None and d.get("uuid") == measured_uuid
    if isinstance(devices, list):
        count = len(devices)
    elif proc.get("present"):
        count = len(proc.get("gpus") or [])
    else:
        count = 0
    return {
        "nvidia_gpus": count,
        "driver_version": driver,
        "cuda_driver_version": cuda_driver,
        "nvml": nvml,
        "proc_driver_nvidia": proc,
        "amd_kfd": os.path.exists("/dev/kfd"),
    }
