"""Time and peak memory of `benchbench compare` on two pytest-benchmark files of N samples each.

A pytest-benchmark file holds one round per benchmark, so the comparison bootstraps the raw samples
(benchbench.analysis.compare.bootstrap_medians). Usage:

    python benchmarks/large_pytest_benchmark_compare.py [N]   # default 1,000,000

Writes the two files into a temporary folder, runs `python -m benchbench compare` on them in a child
process and prints its wall time, CPU time and peak resident memory (the child's ru_maxrss).

Measured (2-core shared VM, other work running, under `nice -n 19`), N = 1,000,000 (22.5 MB files):
see docs/hostile-input.md for the numbers and the method.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def pb_file(path: Path, n: int, scale: float, seed: int) -> None:
    rng = random.Random(seed)
    data = [rng.lognormvariate(-9.0, 0.2) * scale for _ in range(n)]
    doc = {"machine_info": {"node": "bench", "cpu": {"brand_raw": "cpu"}, "python_version": "3"},
           "commit_info": {}, "datetime": "2026-12-06T00:00:00", "version": "5.1.0",
           "benchmarks": [{"group": None, "name": "test_op", "fullname": "t.py::test_op", "params": None,
                           "stats": {"data": data, "iterations": 1, "rounds": n}}]}
    path.write_text(json.dumps(doc))


def measure(n: int) -> dict:
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        base, cur = Path(tmp) / "base.json", Path(tmp) / "cur.json"
        pb_file(base, n, 1.0, 1)
        pb_file(cur, n, 1.03, 2)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "benchbench", "compare", str(base), str(cur)], env=env,
                              capture_output=True, text=True)
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        return {"n": n, "file_mb": round(base.stat().st_size / 2**20, 1), "rc": proc.returncode,
                "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
                "stdout": proc.stdout, "stderr": proc.stderr[-2000:]}


if __name__ == "__main__":
    result = measure(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
    print(result.pop("stdout"))
    print(json.dumps(result, indent=1))
