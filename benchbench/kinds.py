"""The backend kinds, declared once: every list of kinds elsewhere (probing, history's series, the
pytest-benchmark import, the environment fingerprint, help texts) derives from `KINDS`.

A leaf module of plain data, so that analysis code can ask about kinds without importing the
backends (which probe devices). Adding a kind: one `Kind` here, one probe and `Backend` class in
backends.py.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str  # the backend's name in case keys and on the command line
    description: str  # for help texts
    device_fact: str  # the fingerprint key that names this kind's device (what separates history series)
    count_fact: str | None = None  # the fingerprint key that counts its devices, where there can be several
    timer: str = "events"  # "host" (the CPU: the host clock), "sync+host" (synchronise, then the host clock),
    #                        "events" (device events: CUDA, and ROCm through it)
    counters: str | None = None  # where energy (and, for GPUs, link) readings come from: "rapl" (the host's
    #                              powercap zones), "nvml" (NVIDIA's driver; ROCm devices read amdsmi), None


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("cpu", "the host CPU", device_fact="cpu", timer="host", counters="rapl"),
    Kind("cuda", "NVIDIA GPUs, and AMD GPUs through ROCm", device_fact="cuda_device", count_fact="gpu_count",
         counters="nvml"),
    Kind("mps", "Apple GPUs (Metal)", device_fact="mps_device", timer="sync+host"),
    Kind("xpu", "Intel GPUs", device_fact="xpu_device", timer="sync+host"),
)}
KNOWN: tuple[str, ...] = tuple(KINDS)
DEVICE_FACTS: tuple[str, ...] = tuple(k.device_fact for k in KINDS.values())


def listed(conjunction: str = "or") -> str:
    """'cpu, cuda, mps or xpu': the kinds for a help text."""
    return f"{', '.join(KNOWN[:-1])} {conjunction} {KNOWN[-1]}"


def counters(name: str) -> str | None:
    """Where a kind's energy readings come from ("rapl", "nvml"), None for none or an unknown kind."""
    return KINDS[name].counters if name in KINDS else None


def is_gpu(name: str) -> bool:
    """A device other than the host CPU (its work is asynchronous, and happens where Valgrind cannot see it)."""
    return name in KINDS and KINDS[name].timer != "host"
