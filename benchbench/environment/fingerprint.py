"""The comparability fingerprint: a flat, JSON-able dict with stable keys, and which differences matter.

Two results are comparable when the fingerprint keys that matter for their backend are equal. A key
that matters names something that changes what the hardware or the kernels do (device model, driver,
torch/CUDA/cuDNN versions, precision flags, thread count, power limit); the others (hostname, Python,
OS, benchbench version) are recorded to explain a difference, not to forbid a comparison.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from benchbench.environment.facts import get

FINGERPRINT_VERSION = 1
ALL = "all"

# key -> the backends whose results it matters for (ALL: every backend; empty: recorded only).
# The order here is the order of the fingerprint and of fingerprint_diff's answer.
MATTERS: dict[str, frozenset[str] | str] = {
    "fingerprint_version": frozenset(),
    "torch": ALL,
    "torch_debug": ALL,
    "cuda": frozenset({"cuda"}),
    "hip": frozenset({"cuda"}),
    "cudnn": frozenset({"cuda"}),
    "cpu": frozenset({"cpu"}),
    "cuda_device": frozenset({"cuda"}),
    "mps_device": frozenset({"mps"}),
    "xpu_device": frozenset({"xpu"}),
    "gpu_count": frozenset(),
    "driver_version": frozenset({"cuda"}),
    "macos_version": frozenset({"mps"}),
    "power_limit_w": frozenset({"cuda"}),
    "float32_matmul_precision": ALL,
    "cuda_matmul_tf32": frozenset({"cuda"}),
    "cudnn_tf32": frozenset({"cuda"}),
    "cudnn_benchmark": frozenset({"cuda"}),
    "cudnn_deterministic": frozenset({"cuda"}),
    "deterministic_algorithms": ALL,
    "nvidia_tf32_override": frozenset({"cuda"}),
    "threads": frozenset({"cpu"}),
    "usable_cpus": frozenset(),
    "python": frozenset(),
    "os": frozenset(),
    "hostname": frozenset(),
    "benchbench": frozenset(),
}
KEYS = tuple(MATTERS)


def _device(facts: dict[str, Any], backend: str) -> Any:
    return get(facts, f"backends.{backend}.device_name") if get(facts, f"backends.{backend}.available") else None


def _power_limit(facts: dict[str, Any]) -> float | None:
    """Power limit of the GPU torch measures (matched by UUID), else of the first NVML device visible to it.

    NVML counts in PCI order and CUDA fastest-first: the first visible NVML device is only a fallback.
    """
    devices = get(facts, "gpu.nvml.devices")
    if not isinstance(devices, list):
        return None
    ordered = [d for d in devices if d.get("measured")] + [d for d in devices if d.get("visible", True)]
    for d in ordered:
        w = d.get("power_limit_w")
        return round(float(w), 1) if isinstance(w, (int, float)) else None
    return None


def from_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint of a facts dict (see facts.collect_facts). Unknown values are None."""
    gpus = get(facts, "gpu.nvidia_gpus")
    cuda_count = get(facts, "backends.cuda.properties.device_count")
    return {
        "fingerprint_version": FINGERPRINT_VERSION,
        "torch": get(facts, "torch.version"),
        "torch_debug": get(facts, "torch.debug"),
        "cuda": get(facts, "torch.cuda"),
        "hip": get(facts, "torch.hip"),
        "cudnn": get(facts, "torch.cudnn"),
        "cpu": get(facts, "cpu.model"),
        "cuda_device": _device(facts, "cuda"),
        "mps_device": _device(facts, "mps"),
        "xpu_device": _device(facts, "xpu"),
        "gpu_count": cuda_count if isinstance(cuda_count, int) else (gpus or None),
        "driver_version": get(facts, "gpu.driver_version"),
        "macos_version": get(facts, "mps.macos_version"),
        "power_limit_w": _power_limit(facts),
        "float32_matmul_precision": get(facts, "precision.float32_matmul_precision"),
        "cuda_matmul_tf32": get(facts, "precision.cuda_matmul_allow_tf32"),
        "cudnn_tf32": get(facts, "precision.cudnn_allow_tf32"),
        "cudnn_benchmark": get(facts, "precision.cudnn_benchmark"),
        "cudnn_deterministic": get(facts, "precision.cudnn_deterministic"),
        "deterministic_algorithms": get(facts, "precision.deterministic_algorithms"),
        "nvidia_tf32_override": get(facts, "env.NVIDIA_TF32_OVERRIDE"),
        "threads": get(facts, "threads.torch_threads"),
        "usable_cpus": get(facts, "cpu.usable_cpus"),
        "python": get(facts, "python.version"),
        "os": get(facts, "host.os"),
        "hostname": get(facts, "hostname"),
        "benchbench": get(facts, "benchbench_version"),
    }


def matters(key: str, backends: Iterable[str] | None = None) -> bool:
    """Whether a difference in `key` makes results of these backends incomparable (None: any backend)."""
    scope = MATTERS.get(key, frozenset())
    if scope == ALL:
        return True
    if backends is None:
        return bool(scope)
    return bool(set(scope) & set(backends))


def fingerprint_diff(a: dict[str, Any], b: dict[str, Any],
                     backends: Iterable[str] | None = None) -> list[tuple[str, Any, Any, bool]]:
    """The keys whose values differ, as (key, a_value, b_value, matters), in a stable order.

    A difference matters when the key matters for `backends` (default: for any backend) and both values
    are known: None (not measured, e.g. no NVML on one machine) or a key one side lacks (written by an
    older benchbench) cannot prove a difference, so it is listed but does not matter.
    """
    scope = None if backends is None else list(backends)
    keys = [k for k in KEYS if k in a or k in b] + sorted((set(a) | set(b)) - set(KEYS))
    out = []
    for key in keys:
        va, vb = a.get(key), b.get(key)
        if va == vb:
            continue
        known = key in a and key in b and va is not None and vb is not None
        out.append((key, va, vb, known and matters(key, scope)))
    return out
