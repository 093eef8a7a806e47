"""How many CPUs this process may use: its affinity mask and its cgroup's CPU quota. A leaf module, so that
backends, the suite API and `env` all read the same answer without importing each other."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path


def read_text(path: str) -> str:
    return Path(path).read_text(errors="replace")


def _cgroup_paths() -> dict[str, str]:
    """controller -> path of this process's cgroup ("" key for cgroup v2)."""
    out = {}
    for line in read_text("/proc/self/cgroup").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for ctrl in (parts[1].split(",") if parts[1] else [""]):
                out[ctrl] = parts[2]
    return out


def cgroup_file(controller: str, name: str) -> str | None:
    """Content of a cgroup control file for this process, trying its own cgroup then the mount root."""
    try:
        paths = _cgroup_paths()
    except OSError:
        return None
    candidates = []
    if "" in paths:  # v2
        candidates += [f"/sys/fs/cgroup{paths['']}/{name}".replace("//", "/"), f"/sys/fs/cgroup/{name}"]
    if controller in paths:
        for mount in (controller, "cpu,cpuacct", "cpuacct,cpu"):
            candidates += [f"/sys/fs/cgroup/{mount}{paths[controller]}/{name}".replace("//", "/"),
                           f"/sys/fs/cgroup/{mount}/{name}"]
    for c in dict.fromkeys(candidates):
        try:
            return read_text(c).strip()
        except OSError:
            continue
    return None


def cgroup_cpu_quota() -> float | None:
    """CPUs this cgroup may use (quota / period), None when unlimited or not limited by a cgroup."""
    if not sys.platform.startswith("linux"):
        return None
    v2 = cgroup_file("", "cpu.max")
    if v2:
        quota, _, period = v2.partition(" ")
        return None if quota == "max" else int(quota) / int(period or 100000)
    quota_us = cgroup_file("cpu", "cpu.cfs_quota_us")
    if quota_us is not None and int(quota_us) > 0:
        period = cgroup_file("cpu", "cpu.cfs_period_us")
        return int(quota_us) / int(period or 100000)
    return None


def affinity_cpus() -> int | None:
    """CPUs in this process's affinity mask, None where the OS has no such call (macOS, Windows)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return None


def combine(affinity: int | None, logical: int | None, quota: float | None) -> int:
    """Usable CPUs from the three facts: the affinity mask (else the CPU count), capped by the cgroup quota
    rounded up (a quota of 1.5 CPUs lets two threads run, each part of the time)."""
    usable = affinity if affinity else (logical or 1)
    if quota is not None and quota > 0:
        usable = min(usable, math.ceil(quota))
    return max(1, usable)


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one (a container or `taskset`
    may allow fewer than the machine has), else the CPU count, capped by the cgroup's CPU quota (a
    container limited to 2 CPUs on a 64-core host)."""
    try:
        quota = cgroup_cpu_quota()
    except (OSError, ValueError):
        quota = None
    return combine(affinity_cpus(), os.cpu_count(), quota)
