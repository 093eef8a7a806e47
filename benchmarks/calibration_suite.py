"""Six everyday CPU ops for the gate calibration (`benchmarks/gate_calibration.py`).

Every op takes 50 us or more per call on one core of a 2-core server CPU (the calibration runs
with OMP_NUM_THREADS=1); each case runs it 20 times per timed call through
`calibration_ops.repeated`, which is where a slowdown can be injected (see there).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from benchbench import Case, benchmark

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibration_ops import repeated  # noqa: E402

SUITE = "calibration"


@benchmark(params={"n": [2**17]})
def add(ctx, n):
    a, b = torch.rand(n), torch.rand(n)
    out = torch.empty(n)
    return Case(repeated(lambda: torch.add(a, b, out=out)))


@benchmark(name="sum", params={"n": [2**19]})
def total(ctx, n):
    x = torch.rand(n)
    return Case(repeated(lambda: x.sum()))


@benchmark(params={"rows": [64], "cols": [1024]})
def layer_norm(ctx, rows, cols):
    x = torch.rand(rows, cols)
    return Case(repeated(lambda: F.layer_norm(x, (cols,))))


@benchmark(params={"rows": [64], "cols": [1024]})
def softmax(ctx, rows, cols):
    x = torch.rand(rows, cols)
    return Case(repeated(lambda: torch.softmax(x, dim=-1)))


@benchmark(params={"n": [2**12]})
def sort(ctx, n):
    x = torch.rand(n)
    return Case(repeated(lambda: torch.sort(x)))


@benchmark(params={"n": [160]})
def matmul(ctx, n):
    a, b = torch.rand(n, n), torch.rand(n, n)
    return Case(repeated(lambda: a @ b))
