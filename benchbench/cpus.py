"""How many CPUs this process may use: a leaf module, so that backends and the suite API both read it
without importing each other."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one (a container or `taskset`
    may allow fewer than the machine has), else the CPU count."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)
