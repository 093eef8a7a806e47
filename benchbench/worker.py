"""Worker process: runs cases on request and answers in the report's own JSON.

Started by the runner as `python -m benchbench.worker`. Requests arrive one JSON line at a time on
stdin; events and results go back as JSON lines on a private copy of the original stdout, while
fd 1 is pointed at stderr, so nothing a benchmark prints (from Python or C) can corrupt the channel.
The runner sends the worker's stderr to a log file and shows its tail when a case fails.

Requests: `run` (the default: one case, set up, timed and returned as a result), and, for
block-interleaved A/B (benchbench/run/interleave.py), `prepare` (set up, first call, warm-up and
calibration; answers the loop count), `block` (one timed block of N calls; answers seconds per call)
and `finish` (the case's result from the blocks timed), then `exit`.
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
# where this worker makes its cases' scratch folders, so that whoever closes it removes them (runner.Worker)


def _channel() -> TextIO:
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "w", buffering=1, encoding="utf-8")


PROC_STATUS = "/proc/self/status"


class _MemoryCap:
    """The worker's address-space cap, from MEMORY_LIMIT_ENV: "BYTES", or "+BYTES" on top of what the
    worker maps after start-up.

    A capped worker turns a runaway allocation into an out-of-memory failure of one case instead of
    the kernel's OOM killer taking the machine's biggest process. Only for CPU cases and only where
    /proc exists (Linux): GPU drivers map far more address space than they use (RLIMIT_AS breaks
    CUDA initialisation), and macOS has no /proc to size "+BYTES" from. The cap is the soft limit, so
    it can be lifted (once, for good) before the first GPU case of a shared worker.
    """

    def __init__(self, raw: str | None) -> None:
        self.raw = (raw or "").strip()
        self.limit: int | None = None
        self.saved: int = -1  # the soft limit before the cap (RLIM_INFINITY is -1)
        self.state = "off" if not self.raw else "pending"
        self.note: str | None = None
        if self.raw and os.path.exists(PROC_STATUS):
            base = 0
            if self.raw.startswith("+"):
                with open(PROC_STATUS) as fh:
                    base = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
            self.limit = base + int(self.raw.lstrip("+"))
        elif self.raw:
            self._skip(f"{MEMORY_LIMIT_ENV} ignored: no /proc on this OS, so no address-space cap")

    def _skip(self, why: str) -> None:
        self.state, self.note = "skipped", why
        print(f"benchbench worker: {why}", file=sys.stderr, flush=True)

    def before_case(self, backend: str) -> str | None:
        """Apply or lift the cap for a case on `backend`; returns what the case's result should say."""
        if self.state == "off":
            return None
        import resource

        from benchbench.kinds import is_gpu

        if not is_gpu(backend) and self.state == "pending" and self.limit is not None:
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            self.saved = soft
            limit = self.limit if hard == resource.RLIM_INFINITY else min(self.limit, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
            self.state, self.note = "applied", f"address space capped at {self.limit} bytes"
        elif is_gpu(backend) and self.state in ("pending", "applied"):
            if self.state == "applied":
                resource.setrlimit(resource.RLIMIT_AS, (self.saved, resource.getrlimit(resource.RLIMIT_AS)[1]))
            self._skip(f"{MEMORY_LIMIT_ENV} not applied in a worker that runs {backend} cases: GPU drivers "
                       "map far more address space than they use")
        return self.note


def main() -> int:
    # Ctrl-C on a terminal reaches the whole process group: the runner decides, the worker obeys it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = _channel()

    def send(msg: dict[str, Any]) -> None:
        out.write(json.dumps(msg, default=str) + "\n")
        out.flush()

    try:
        import torch  # noqa: F401 - imported before any memory cap, and before the case clock starts

        from benchbench.errors import UserError
        from benchbench.measure import backends
        from benchbench.measure.callgrind import collector_from_env
        from benchbench.measure.energy import open_meter
        from benchbench.measure.engine import Budget
        from benchbench.model.report import CaseKey
        from benchbench.run import registry
        from benchbench.run.execute import SCRATCH_ENV, Prepared, prepare_case, run_case
        counter = collector_from_env()  # started under Callgrind: count instructions instead of timing
    except Exception as exc:  # noqa: BLE001
        send({"event": "fatal", "error": f"{type(exc).__name__}: {exc}", "details": traceback.format_exc()})
        return 1
    try:
        cap = _MemoryCap(os.environ.get(MEMORY_LIMIT_ENV))
    except (OSError, ValueError, StopIteration) as exc:
        send({"event": "fatal", "error": f"{MEMORY_LIMIT_ENV}: {exc}", "details": traceback.format_exc()})
        return 1
    send({"event": "ready", "pid": os.getpid()})

    suites: dict[str, Any] = {}
    backend_cache: dict[str, Any] = {}
    meters: dict[str, Any] = {}  # per backend: an energy Meter, or why there is none
    # block-interleaved A/B (benchbench/run/interleave.py): one case prepared at a time, timed block by block
    held: dict[str, Any] = {"case": None, "scratch": None}

    def locate(req: dict[str, Any]) -> tuple[Any, Any, Any, str | None]:
        source = req["source"]
        skey = json.dumps(source, sort_keys=True)
        if skey not in suites:
            suites[skey] = registry.load_source(source)
        bench = suites[skey].benchmark(req["benchmark"])
        key = CaseKey.from_dict(req["key"])
        cap_note = cap.before_case(key.backend)
        if key.backend not in backend_cache:
            backend_cache[key.backend] = backends.get(key.backend)
        if key.backend not in meters and counter is None:
            try:
                meters[key.backend] = open_meter(backend_cache[key.backend])
            except Exception as exc:  # noqa: BLE001 - energy is a fact about the case, never its failure
                meters[key.backend] = f"opening the energy counters failed: {type(exc).__name__}: {exc}"
        return bench, key, backend_cache[key.backend], cap_note

    def drop_held() -> None:
        held["case"] = None
        if held["scratch"] is not None:
            shutil.rmtree(held["scratch"], ignore_errors=True)
            held["scratch"] = None

    def phase(p: str) -> None:
        send({"event": "phase", "phase": p})

    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        op = req.get("op", "run")
        if op == "exit":
            break
        try:
            if op == "block":
                send({"event": "block", "s": held["case"].block(int(req["loops"]))})
                continue
            if op == "finish":
                prepared, note = held["case"], held.get("note")
                result = prepared.result()
                drop_held()
                if note:
                    result.metrics["memory_cap"] = note
                send({"event": "result", "result": result.to_dict()})
                continue
            bench, key, backend, cap_note = locate(req)
            if op == "prepare":
                drop_held()
                held["scratch"] = Path(tempfile.mkdtemp(prefix="benchbench-case-", dir=os.environ.get(SCRATCH_ENV)))
                prepared = prepare_case(bench, key, backend, profile=req.get("profile", "default"),
                                        scratch_dir=held["scratch"], on_phase=phase,
                                        meter=meters.get(key.backend))
                if not isinstance(prepared, Prepared):
                    drop_held()
                    send({"event": "result", "result": prepared.to_dict()})
                    continue
                held["case"], held["note"] = prepared, cap_note
                cal = None if prepared.self_timed else prepared.calibrate(Budget(**req["budget"]), phase)
                send({"event": "prepared", "self_timed": prepared.self_timed,
                      "loops": cal.loops if cal else None, "per_call_s": cal.per_call_s if cal else None})
                continue
            scratch = Path(tempfile.mkdtemp(prefix="benchbench-case-", dir=os.environ.get(SCRATCH_ENV)))
            try:
                result = run_case(
                    bench, key, backend, Budget(**req["budget"]),
                    profile=req.get("profile", "default"), scratch_dir=scratch,
                    on_phase=phase, counter=counter, meter=meters.get(key.backend),
                )
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            if cap_note:
                result.metrics["memory_cap"] = cap_note
            send({"event": "result", "result": result.to_dict()})
        except UserError as exc:  # e.g. the suite no longer imports
            drop_held()
            send({"event": "error", "error": str(exc), "details": traceback.format_exc()})
        except Exception as exc:  # noqa: BLE001
            drop_held()
            send({"event": "error", "error": f"{type(exc).__name__}: {exc}", "details": traceback.format_exc()})
    drop_held()
    return 0


if __name__ == "__main__":
    sys.exit(main())
