"""`python -m benchbench.profile_worker CONFIG_JSON`: one torch.profiler run of one case, in a process of its own.

Started by benchbench/run/profiling.py once per side and case, after `ab` has decided: the timed numbers
were taken by other workers and nothing here changes them. The case is set up and called as a timing
worker would (execute.prepare_case: setup, first call), warmed up, then profiled over enough calls
to fill about `seconds` (CPU, and CUDA/XPU where the case runs there; shapes recorded; memory on CPU).
The Chrome trace is written atomically (a temporary file in the same folder, then a rename); the
operator table goes back on stdout as one JSON line `{"event": "profile", ...}` (or `"error"`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from benchbench.kinds import is_gpu

WARMUP_CALLS = 3
MAX_ITERATIONS = 200


def activities(backend: str) -> list[Any]:
    """CPU always; the device's own activity where the case runs on CUDA or XPU and torch can record it."""
    from torch.profiler import ProfilerActivity

    out = [ProfilerActivity.CPU]
    extra = {"cuda": "CUDA", "xpu": "XPU"}.get(backend)
    if extra and hasattr(ProfilerActivity, extra):
        out.append(getattr(ProfilerActivity, extra))
    return out


def profile_case(config: dict[str, Any]) -> dict[str, Any]:
    """Set the case up, warm it up, profile it; write the trace to config["trace"]; return the table."""
    import torch  # noqa: F401 - before the case, as in a timing worker
    from torch.profiler import profile

    from benchbench.analysis.profile_diff import Profile, from_key_averages
    from benchbench.measure import backends
    from benchbench.model.report import CaseKey
    from benchbench.run import registry
    from benchbench.run.execute import Prepared, prepare_case

    suite = registry.load_source(config["source"])
    bench = suite.benchmark(config["benchmark"])
    key = CaseKey.from_dict(config["key"])
    backend = backends.get(key.backend)
    scratch = Path(tempfile.mkdtemp(prefix="benchbench-profile-"))
    try:
        prepared = prepare_case(bench, key, backend, profile=config.get("profile", "default"), scratch_dir=scratch)
        if not isinstance(prepared, Prepared):
            return {"event": "error", "error": prepared.reason or prepared.status}
        if prepared.self_timed:
            return {"event": "error", "error": "the benchmark times itself: there is no callable to profile"}
        fn = prepared.case.fn
        backend.synchronize()
        t0 = time.perf_counter()
        for _ in range(WARMUP_CALLS):
            fn()
        backend.synchronize()
        per_call = (time.perf_counter() - t0) / WARMUP_CALLS
        iterations = max(1, min(MAX_ITERATIONS, round(float(config.get("seconds", 0.3)) / max(per_call, 1e-9))))
        on_cpu = not is_gpu(key.backend)
        with profile(activities=activities(key.backend), record_shapes=True, profile_memory=on_cpu) as prof:
            for _ in range(iterations):
                fn()
            backend.synchronize()
        trace = Path(config["trace"])
        trace.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=trace.parent, prefix=f".{trace.name}.", suffix=".tmp")
        os.close(fd)
        try:
            prof.export_chrome_trace(tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, trace)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        table = Profile(iterations, from_key_averages(prof.key_averages()))
        return {"event": "profile", **table.to_dict(), "trace": str(trace)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str]) -> int:
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # what the case prints goes to stderr, never into the answer
    sys.stdout = sys.stderr
    try:
        answer = profile_case(json.loads(argv[0]))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as data
        traceback.print_exc()
        answer = {"event": "error", "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    out.write(json.dumps(answer) + "\n")
    out.flush()
    return 0 if answer.get("event") == "profile" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
