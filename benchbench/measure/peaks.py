"""Datasheet peak rates, for "% of peak" next to measured rates.

Dense (no structured sparsity) tensor-core rates in FLOP/s per dtype, and memory bandwidth in
bytes/s, as published by the vendors. "float32" is the non-tensor-core FP32 rate; "tf32" the TF32
tensor-core rate. A GPU not listed simply has no datasheet peak: results still show "% of the
measured ceiling" (the tensor_ops suite measures it on the device itself).

Every row here is a GPU's: a CPU never gets one, even where its name matches (on a Mac the CPU and
the GPU share the chip's name). A MIG slice gets none: it has a fraction of the GPU's units and
memory bandwidth, in proportions the name does not tell exactly. Rates are per device as torch sees
it: an MI250X package is two devices, so its row holds half the package's figures.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from benchbench.kinds import counters

if TYPE_CHECKING:  # pragma: no cover
    from benchbench.model.report import Report, Result

T = 1e12
G = 1e9

# (regex on the device name, entry). First match wins, so more specific names come first.
_TABLE: list[tuple[str, dict[str, Any]]] = [
    # NVIDIA data centre
    (r"GH200", {"flops": {"float64": 67 * T, "float32": 67 * T, "tf32": 494.7 * T, "bfloat16": 989.4 * T,
                          "float16": 989.4 * T}, "bandwidth": 4.0e12}),
    (r"H200.*NVL", {"flops": {"float64": 60 * T, "float32": 60 * T, "tf32": 417.5 * T, "bfloat16": 835.5 * T,
                              "float16": 835.5 * T, "int8": 1670.5 * T}, "bandwidth": 4.8e12}),
    (r"(?<!G)H200", {"flops": {"float64": 67 * T, "float32": 67 * T, "tf32": 494.7 * T, "bfloat16": 989.4 * T,
                               "float16": 989.4 * T, "int8": 1978.9 * T}, "bandwidth": 4.8e12}),
    (r"H100.*(PCIe|PCI-E)", {"flops": {"float64": 51 * T, "float32": 51 * T, "tf32": 378 * T,
                                       "bfloat16": 756 * T, "float16": 756 * T, "int8": 1513 * T},
                             "bandwidth": 2.0e12}),
    (r"H100.*NVL", {"flops": {"float64": 60 * T, "float32": 60 * T, "tf32": 417.5 * T, "bfloat16": 835 * T,
                              "float16": 835 * T, "int8": 1670 * T}, "bandwidth": 3.9e12}),
    (r"H100", {"flops": {"float64": 67 * T, "float32": 67 * T, "tf32": 494.7 * T, "bfloat16": 989.4 * T,
                         "float16": 989.4 * T, "int8": 1978.9 * T}, "bandwidth": 3.35e12}),
    (r"A100.*(80GB.*PCI|PCI.*80GB)", {"flops": {"float64": 19.5 * T, "float32": 19.5 * T, "tf32": 156 * T,
                                                "bfloat16": 312 * T, "float16": 312 * T, "int8": 624 * T},
                                      "bandwidth": 1.935e12}),
    (r"A100.*80GB", {"flops": {"float64": 19.5 * T, "float32": 19.5 * T, "tf32": 156 * T, "bfloat16": 312 * T,
                               "float16": 312 * T, "int8": 624 * T}, "bandwidth": 2.039e12}),
    (r"A100", {"flops": {"float64": 19.5 * T, "float32": 19.5 * T, "tf32": 156 * T, "bfloat16": 312 * T,
                         "float16": 312 * T, "int8": 624 * T}, "bandwidth": 1.555e12}),
    (r"L40S", {"flops": {"float32": 91.6 * T, "tf32": 183 * T, "bfloat16": 362 * T, "float16": 362 * T},
               "bandwidth": 864 * G}),
    (r"L40", {"flops": {"float32": 90.5 * T, "tf32": 90.5 * T, "bfloat16": 181 * T, "float16": 181 * T},
              "bandwidth": 864 * G}),
    (r"\bL4\b", {"flops": {"float32": 30.3 * T, "tf32": 60 * T, "bfloat16": 121 * T, "float16": 121 * T},
                 "bandwidth": 300 * G}),
    (r"A10G", {"flops": {"float32": 31.2 * T, "tf32": 62.5 * T, "bfloat16": 125 * T, "float16": 125 * T},
               "bandwidth": 600 * G}),
    (r"\bA10\b", {"flops": {"float32": 31.2 * T, "tf32": 62.5 * T, "bfloat16": 125 * T, "float16": 125 * T},
                  "bandwidth": 600 * G}),
    (r"T4\b", {"flops": {"float32": 8.1 * T, "float16": 65 * T, "int8": 130 * T}, "bandwidth": 320 * G}),
    (r"V100", {"flops": {"float64": 7.8 * T, "float32": 15.7 * T, "float16": 125 * T}, "bandwidth": 900 * G}),
    # NVIDIA workstation / consumer (FP16/BF16 tensor rate with FP32 accumulation, dense)
    (r"RTX 6000 Ada", {"flops": {"float32": 91.1 * T, "tf32": 182.1 * T, "bfloat16": 364.2 * T,
                                 "float16": 364.2 * T}, "bandwidth": 960 * G}),
    (r"RTX A6000", {"flops": {"float32": 38.7 * T, "tf32": 77.4 * T, "bfloat16": 154.8 * T,
                              "float16": 154.8 * T}, "bandwidth": 768 * G}),
    (r"RTX 5090", {"flops": {"float32": 104.8 * T, "tf32": 104.8 * T, "bfloat16": 209.5 * T,
                             "float16": 209.5 * T}, "bandwidth": 1792 * G}),
    (r"RTX 4090", {"flops": {"float32": 82.6 * T, "tf32": 82.6 * T, "bfloat16": 165.2 * T,
                             "float16": 165.2 * T}, "bandwidth": 1008 * G}),
    (r"RTX 4080", {"flops": {"float32": 48.7 * T, "tf32": 48.7 * T, "bfloat16": 97.5 * T,
                             "float16": 97.5 * T}, "bandwidth": 717 * G}),
    (r"RTX 3090", {"flops": {"float32": 35.6 * T, "tf32": 35.6 * T, "bfloat16": 71 * T, "float16": 71 * T},
                   "bandwidth": 936 * G}),
    (r"RTX 3080", {"flops": {"float32": 29.8 * T, "tf32": 29.8 * T, "bfloat16": 59.5 * T,
                             "float16": 59.5 * T}, "bandwidth": 760 * G}),
    # AMD Instinct (ROCm shows up as the cuda backend)
    (r"MI300X", {"flops": {"float64": 163.4 * T, "float32": 163.4 * T, "tf32": 653.7 * T,
                           "bfloat16": 1307.4 * T, "float16": 1307.4 * T}, "bandwidth": 5.3e12}),
    # one MI250X package is two GCDs, each its own torch device: half the package's datasheet figures
    (r"MI250X", {"flops": {"float64": 47.85 * T, "float32": 47.85 * T, "bfloat16": 191.5 * T,
                           "float16": 191.5 * T}, "bandwidth": 1.6e12}),
    # Apple silicon GPUs (Apple publishes FP32 TFLOPS for M1/M2 and memory bandwidth)
    (r"Apple M1 Ultra", {"flops": {"float32": 21 * T}, "bandwidth": 800 * G}),
    (r"Apple M1 Max", {"flops": {"float32": 10.4 * T}, "bandwidth": 400 * G}),
    (r"Apple M1 Pro", {"flops": {"float32": 5.2 * T}, "bandwidth": 200 * G}),
    (r"Apple M1\b", {"flops": {"float32": 2.6 * T}, "bandwidth": 68.25 * G}),
    (r"Apple M2 Ultra", {"flops": {"float32": 27.2 * T}, "bandwidth": 800 * G}),
    (r"Apple M2 Max", {"flops": {"float32": 13.6 * T}, "bandwidth": 400 * G}),
    (r"Apple M2 Pro", {"flops": {"float32": 6.8 * T}, "bandwidth": 200 * G}),
    (r"Apple M2\b", {"flops": {"float32": 3.6 * T}, "bandwidth": 100 * G}),
    (r"Apple M3 Max", {"bandwidth": 400 * G}),
    (r"Apple M3 Pro", {"bandwidth": 150 * G}),
    (r"Apple M3\b", {"bandwidth": 100 * G}),
    (r"Apple M4 Max", {"bandwidth": 546 * G}),
    (r"Apple M4 Pro", {"bandwidth": 273 * G}),
    (r"Apple M4\b", {"bandwidth": 120 * G}),
]


_MIG = re.compile(r"\bMIG\b|\b\d+g\.\d+gb\b", flags=re.IGNORECASE)


def lookup(device_name: str | None, kind: str = "gpu") -> dict[str, Any] | None:
    """Datasheet peaks for a device name: {"flops": {dtype: FLOP/s}, "bandwidth": bytes/s}, or None.

    `kind` is the backend's kind of device; the table holds GPUs only, so a "cpu" never matches.
    """
    if not device_name or kind != "gpu" or _MIG.search(device_name):
        return None
    for pattern, entry in _TABLE:
        if re.search(pattern, device_name, flags=re.IGNORECASE):
            return {"source": "datasheet", "match": pattern, **entry}
    return None


# PCIe payload bandwidth per lane and direction, bytes/s, after line encoding (8b/10b up to gen 2,
# 128b/130b for gen 3-5, FLIT for gen 6).
_PCIE_LANE = {1: 0.25e9, 2: 0.5e9, 3: 0.985e9, 4: 1.969e9, 5: 3.938e9, 6: 7.563e9}


def pcie_bandwidth(generation: Any, width: Any) -> float | None:
    """One direction of a PCIe link of this generation and lane count, bytes/s; None when unknown."""
    if isinstance(generation, bool) or isinstance(width, bool):
        return None
    if not isinstance(generation, int) or not isinstance(width, int) or width <= 0:
        return None
    lane = _PCIE_LANE.get(generation)
    return lane * width if lane else None


def link_bandwidth(report: Report, backend: str) -> float | None:
    """One direction of the measured GPU's PCIe link, from the report's NVML facts; None when unknown."""
    if counters(backend) != "nvml":
        return None
    gpu = (report.environment.get("facts") or {}).get("gpu")
    nvml = gpu.get("nvml") if isinstance(gpu, dict) else None
    devices = nvml.get("devices") if isinstance(nvml, dict) else None
    if not isinstance(devices, list):
        return None
    measured = [d for d in devices if isinstance(d, dict) and d.get("measured")]
    if not measured:
        measured = [d for d in devices if isinstance(d, dict) and d.get("visible", True)]
    if len(measured) != 1:
        return None
    return pcie_bandwidth(measured[0].get("pcie_gen_max"), measured[0].get("pcie_width_max"))


def peak_fraction(result: Result, report: Report) -> dict[str, float]:
    """Measured rate / datasheet peak for this result's backend, where the report holds that peak.

    A host<->device transfer (bound "link") is limited by the link, not the device's memory: it is
    compared with the PCIe link's speed where NVML told it, never with the memory bandwidth.
    """
    backend = report.backend(result.key.backend) or {}
    peaks = backend.get("peaks") or {}
    derived = result.derived()
    out = {}
    if result.bound == "link":
        link = link_bandwidth(report, result.key.backend)
        if derived.get("bytes_per_s") and link:
            out["link"] = derived["bytes_per_s"] / link
        return out
    flops = derived.get("flops_per_s")
    if flops and peaks.get("flops"):
        peak = peaks["flops"].get(result.key.dtype or "float32")
        if peak:
            out["flops"] = flops / peak
    bw = derived.get("bytes_per_s")
    if bw and peaks.get("bandwidth") and not flops:
        out["bandwidth"] = bw / peaks["bandwidth"]
    return out
