"""Several cold compiles in one process: the samples of compile time in a round.

One cold compile per round is too few samples against a compile's noise at the scale of seconds
(docs/metrics.md, "Compile time"), so a compiled case compiles `ctx.compile_repeats` times in each round
(the benchmark's `compile_repeats`, else the profile's), each one as cold as a fresh process's. What a
later compile in the same process would otherwise reuse, and what clears it:

- Dynamo's compiled code, guards and frame counters: `torch.compiler.reset()` (= `torch._dynamo.reset()`),
  which leaves the file-system caches alone;
- Inductor's caches on disk, all under `TORCHINDUCTOR_CACHE_DIR`: the FX graph cache, the AOTAutograd
  cache, the autotune cache and the compiled kernels (Triton's under `TRITON_CACHE_DIR`);
- Inductor's caches in memory (loaded kernel modules and the like, each registered with
  `clear_on_fresh_cache`).

`fresh()` takes all three: `torch.compiler.reset()`, then `torch._inductor.utils.fresh_cache()`, which
points both cache folders at a new temporary folder and clears the in-memory caches on entry and exit.
What stays warm is the process itself (imports, the C++ toolchain probe): the same for every compile after
the process's first, so a suite compiles something small first (or times its first compile and its later
ones alike on both sides of a comparison).

The repeats run in the setup, before the harness's first call, warm-up and timed samples, so the time
metric's samples do not see them. Each repeat's seconds go into the round's record as `compile_runs_s`,
and `compile_s` is their geometric mean (the rule compares logarithms: benchbench/metrics/compile_time.py).
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

RUNS = "compile_runs_s"  # every cold compile of the round, in seconds
ENV = ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")  # where Inductor's and Triton's disk caches go


@contextlib.contextmanager
def fresh(root: Path | str | None = None) -> Iterator[Path]:
    """Dynamo reset and empty Inductor caches (on disk, in a new folder under `root`, and in memory) for the
    compile inside; yields the cache folder, removed afterwards. What was compiled inside stays callable
    (it holds its kernels), so the last repeat's compiled model is the one a case times."""
    saved = {k: os.environ.get(k) for k in ENV}
    import torch

    torch.compiler.reset()
    try:
        from torch._inductor.utils import fresh_cache
    except ImportError:  # pragma: no cover - torch before 2.6 called it fresh_inductor_cache
        from torch._inductor.utils import fresh_inductor_cache as fresh_cache
    if root is not None:
        Path(root).mkdir(parents=True, exist_ok=True)
    try:
        with fresh_cache(dir=None if root is None else str(root)):
            yield Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    finally:  # torch may leave its default folder set where none was
        _restore(saved)


def clear() -> None:
    """Dynamo reset and Inductor's in-memory caches cleared, for a compile whose cache folder the caller
    sets itself (a new, empty one: the disk caches are in it). Torch may set its default cache folder in the
    environment on the way (its cache_dir() does on first use); that setting is undone."""
    import torch

    saved = {k: os.environ.get(k) for k in ENV}
    torch.compiler.reset()
    try:
        from torch._inductor.utils import clear_caches
    except ImportError:  # pragma: no cover - torch before 2.6
        from torch._inductor.utils import clear_inductor_caches as clear_caches
    try:
        clear_caches()
    finally:
        _restore(saved)


def _restore(saved: dict[str, str | None]) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def repeat(compile_once: Callable[[], float], repeats: int, root: Path | str | None = None) -> list[float]:
    """Call `compile_once` (it compiles from nothing and returns the seconds that count) `repeats` times, each
    inside `fresh()`: the round's cold compiles."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    out = []
    for _ in range(repeats):
        with fresh(root):
            out.append(float(compile_once()))
    return out


def round_metrics(seconds: Sequence[float]) -> dict[str, Any]:
    """A round's compile metrics from its cold compiles: `compile_s` (their geometric mean; the value itself
    where one is not above 0) and every compile (`compile_runs_s`)."""
    values = [float(s) for s in seconds]
    if not values:
        raise ValueError("no compile times")
    positive = all(v > 0 for v in values)
    mean = math.exp(statistics.fmean(math.log(v) for v in values)) if positive else statistics.median(values)
    return {"compile_s": mean, RUNS: values}
