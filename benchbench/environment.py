"""Environment facts and the comparability fingerprint embedded in every report.

`collect()` never raises: a fact that cannot be read says "unavailable: why".
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchbench._version import __version__


def _git_commit(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=cwd or Path.cwd())
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def fingerprint(backends: list[Any]) -> dict[str, Any]:
    """What must match for two results to be comparable (besides the benchmark definition)."""
    import torch

    devices = {b.name: b.device_name for b in backends if b.available}
    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "hip": getattr(torch.version, "hip", None),
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "devices": devices,
        "cpu": next((b.device_name for b in backends if b.name == "cpu"), None),
        "threads": torch.get_num_threads(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def collect(backends: list[Any]) -> dict[str, Any]:
    facts = {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python_executable": sys.executable,
        "benchbench": __version__,
        "git_commit": _git_commit(),
        "cpu_count": os.cpu_count(),
    }
    return {"fingerprint": fingerprint(backends), "facts": facts, "checks": []}
