"""Worker process: runs cases on request and answers in the report's own JSON.

Started by the runner as `python -m benchbench.worker`. Requests arrive one JSON line at a time on
stdin; events and results go back as JSON lines on a private copy of the original stdout, while
fd 1 is pointed at stderr, so nothing a benchmark prints (from Python or C) can corrupt the channel.
The runner sends the worker's stderr to a log file and shows its tail when a case fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, TextIO

MEMORY_LIMIT_ENV = "BENCHBENCH_WORKER_MEMORY_LIMIT"  # bytes of address space (RLIMIT_AS), CPU only


def _channel() -> TextIO:
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "w", buffering=1, encoding="utf-8")


def _apply_memory_limit() -> None:
    """Cap the worker's address space: "BYTES", or "+BYTES" on top of what it maps after start-up.

    A capped worker turns a runaway allocation into an out-of-memory failure of one case instead
    of the kernel's OOM killer taking the machine's biggest process. Not for CUDA workers, whose
    driver maps far more address space than it uses.
    """
    raw = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if not raw:
        return
    import resource

    limit = int(raw.lstrip("+"))
    if raw.startswith("+"):
        with open("/proc/self/status") as fh:
            vm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
        limit += vm
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> int:
    # Ctrl-C on a terminal reaches the whole process group: the runner decides, the worker obeys it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = _channel()

    def send(msg: dict[str, Any]) -> None:
        out.write(json.dumps(msg, default=str) + "\n")
        out.flush()

    try:
        import torch  # noqa: F401 - imported before any memory cap, and before the case clock starts

        from benchbench import backends, registry
        from benchbench.callgrind import collector_from_env
        from benchbench.errors import UserError
        from benchbench.execute import run_case
        from benchbench.measure import Budget
        from benchbench.report import CaseKey
        counter = collector_from_env()  # started under Callgrind: count instructions instead of timing
    except Exception as exc:  # noqa: BLE001
        send({"event": "fatal", "error": f"{type(exc).__name__}: {exc}", "details": traceback.format_exc()})
        return 1
    _apply_memory_limit()
    send({"event": "ready", "pid": os.getpid()})

    suites: dict[str, Any] = {}
    backend_cache: dict[str, Any] = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if req.get("op") == "exit":
            break
        try:
            source = req["source"]
            skey = json.dumps(source, sort_keys=True)
            if skey not in suites:
                suites[skey] = registry.load_source(source)
            bench = suites[skey].benchmark(req["benchmark"])
            key = CaseKey.from_dict(req["key"])
            if key.backend not in backend_cache:
                backend_cache[key.backend] = backends.get(key.backend)
            scratch = Path(tempfile.mkdtemp(prefix="benchbench-case-"))
            try:
                result = run_case(
                    bench, key, backend_cache[key.backend], Budget(**req["budget"]),
                    profile=req.get("profile", "default"), scratch_dir=scratch,
                    on_phase=lambda p: send({"event": "phase", "phase": p}), counter=counter,
                )
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            send({"event": "result", "result": result.to_dict()})
        except UserError as exc:  # e.g. the suite no longer imports
            send({"event": "error", "error": str(exc), "details": traceback.format_exc()})
        except Exception as exc:  # noqa: BLE001
            send({"event": "error", "error": f"{type(exc).__name__}: {exc}", "details": traceback.format_exc()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
