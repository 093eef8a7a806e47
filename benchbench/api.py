"""The public benchmark API, used by the built-in suites and by users' own suite files.

A suite is a Python module (or file) holding functions decorated with `@benchmark`::

    import torch
    from benchbench import Case, Skip, benchmark

    SUITE = "my_suite"          # optional; defaults to the file's name

    @benchmark(params={"n": [256, 1024]}, dtypes=["float32", "bfloat16"])
    def matmul(ctx, n):
        a = torch.randn(n, n, device=ctx.device, dtype=ctx.dtype)
        b = torch.randn(n, n, device=ctx.device, dtype=ctx.dtype)
        return Case(lambda: a @ b, flops=2 * n**3, bytes=3 * n * n * a.element_size())

The decorated function is the *setup*: it builds the state for one case and returns a `Case` with
the callable to time and what one call does. The harness warms up, calibrates, times, synchronises
the device and derives the rates. Raise `Skip("why")` when the case cannot run here.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchbench.errors import Skip
from benchbench.kinds import is_gpu
from benchbench.measure.cpus import usable_cpus  # part of the suite API
from benchbench.measure.engine import PROFILE_NAMES as PROFILES
from benchbench.model.report import CaseFields, CaseKey, typed_fields

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from benchbench.measure.backends import Backend

__all__ = ["Case", "Context", "Benchmark", "Skip", "benchmark", "usable_cpus", "cpu_limit_reason",
           "skip_if_too_much_for_a_cpu"]


@dataclass
class Case(CaseFields):
    """What a benchmark's setup returns for one case.

    `items`, `flops` and `bytes` are *per call of fn*; the harness turns them into items/s, FLOP/s and
    GB/s from the median time per call. `metrics` holds anything the setup measured itself (e.g. a
    compile time), `finish` is called once after timing and may return more metrics.

    What the harness reads of a case is a keyword field of its own (benchbench.model.report.CaseFields): `bound`
    ("compute", "memory", "link", "overhead"), `round_statistic` ("median" for samples that are not
    repeated calls of the same work), `world_size` and `nnodes` (a distributed job's shape), `note` (one
    line for the results table). The result carries them as they are.
    """

    fn: Callable[[], Any] | None
    items: float | None = None
    flops: float | None = None
    bytes: float | None = None
    items_unit: str = "items"
    metrics: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    check_output: bool = True  # check the first call's output for NaN/Inf
    finish: Callable[[], dict[str, Any] | None] | None = None
    # Measured elsewhere: a benchmark that must time itself (e.g. inside torchrun ranks) passes
    # fn=None with its raw samples (seconds per call) and how it timed them.
    samples: list[float] | None = None
    timing_method: str | None = None
    # Which device memory counter the peak is read from: "allocated" (live tensors) or "reserved"
    # (all the allocator holds; CUDA-graph replays use a private pool only this one sees).
    memory_counter: str = "allocated"

    def __post_init__(self) -> None:
        if self.fn is None and not self.samples:
            raise ValueError("Case needs fn to time, or samples measured by the benchmark itself")
        if self.memory_counter not in ("allocated", "reserved"):
            raise ValueError(f"memory_counter must be 'allocated' or 'reserved', not {self.memory_counter!r}")
        moved = [k for k in self.metrics if k in {f.name for f in typed_fields(CaseFields)}]
        if moved:  # since report schema 3 the harness no longer reads them among the metrics
            raise ValueError(f"Case: pass {', '.join(f'{k}=' for k in moved)} as a keyword of Case, not in metrics")

    def work(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("items", "flops", "bytes"):
            value = getattr(self, name)
            if value:
                out[name] = float(value)
        if self.items:
            out["items_unit"] = self.items_unit
        return out


@dataclass
class Context:
    """What a setup receives: the backend it runs on and the case's coordinates."""

    backend: Backend
    key: CaseKey
    profile: str = "default"
    scratch_dir: Path | None = None  # an empty folder private to this case (e.g. for compile caches)
    # cold compiles a compiled case makes in each round (benchbench/measure/cold_compile.py): the benchmark's
    # `compile_repeats`, else the profile's
    compile_repeats: int = 1

    @property
    def device(self) -> torch.device:
        return self.backend.torch_device()

    @property
    def params(self) -> dict[str, Any]:
        return self.key.params_dict

    @property
    def dtype_name(self) -> str | None:
        return self.key.dtype

    @property
    def dtype(self) -> torch.dtype | None:
        from benchbench.measure.dtypes import torch_dtype

        return torch_dtype(self.key.dtype) if self.key.dtype else None

    @property
    def mode(self) -> str | None:
        return self.key.mode

    def synchronize(self) -> None:
        self.backend.synchronize()

    def time_once(self, fn: Callable[[], Any]) -> tuple[float, Any]:
        """Wall time of one call, device work included (for one-off costs such as compilation)."""
        self.backend.synchronize()
        t0 = time.perf_counter()
        out = fn()
        self.backend.synchronize()
        return time.perf_counter() - t0, out


# What a case may ask of a CPU per call before it is skipped as too slow to time (seconds per call): a
# 2048^3 float32 matmul, and for half precision the CPU emulates (Backend.emulates) a 256^3 one.
CPU_FLOP_LIMIT = 2 * 2048**3
CPU_EMULATED_HALF_FLOP_LIMIT = 2**27


def cpu_limit_reason(backend: str, dtype_name: str | None, flops: float, emulated: bool,
                     limit: float = CPU_FLOP_LIMIT, emulated_limit: float = CPU_EMULATED_HALF_FLOP_LIMIT) -> str | None:
    """Why a case is too much work per call to time on a CPU, or None; other backends: never. `emulated`: the
    CPU has no native units for the case's dtype (`ctx.backend.emulates(ctx.dtype_name)`), whose budget is
    `emulated_limit`."""
    if is_gpu(backend):
        return None
    if emulated:
        limit, why = emulated_limit, f"this CPU has no native {dtype_name} matmul units (emulated)"
    else:
        why = "too slow on a CPU"
    if flops > limit:
        return (f"{flops / 1e9:.3g} GFLOP per call is over the {limit / 1e9:.2g} GFLOP limit for CPU cases "
                f"({why}); seconds per call")
    return None


def skip_if_too_much_for_a_cpu(ctx: Context, flops: float, emulated_limit: float = CPU_EMULATED_HALF_FLOP_LIMIT) -> None:
    """Raise Skip when a case is too much work per call for this CPU (see cpu_limit_reason)."""
    reason = cpu_limit_reason(ctx.backend.name, ctx.dtype_name, flops, ctx.backend.emulates(ctx.dtype_name),
                              emulated_limit=emulated_limit)
    if reason:
        raise Skip(reason)


def _plain(value: Any) -> bool:
    """A constant whose value can be written the same way in every process (no object addresses)."""
    if isinstance(value, (int, float, str, bytes, bool, type(None))):
        return True
    if isinstance(value, (tuple, list, set, frozenset)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    return False


def _stable_repr(value: Any, home: tuple[str, ...] = ()) -> str:
    """repr of a plain constant that is the same in every process and every folder: set elements in
    sorted order (a set's own order follows PYTHONHASHSEED), and the suite file's folder written as
    `<suite dir>` (a path built from `__file__` must not make a moved copy of the suite a new definition)."""
    if isinstance(value, str):
        for folder in home:
            value = value.replace(folder, "<suite dir>")
        return repr(value)
    if isinstance(value, (set, frozenset)):
        items = sorted(_stable_repr(v, home) for v in value)
        return f"{type(value).__name__}({{{', '.join(items)}}})"
    if isinstance(value, (tuple, list)):
        items = [_stable_repr(v, home) for v in value]
        if isinstance(value, tuple):
            return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
        return f"[{', '.join(items)}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_stable_repr(k, home)}: {_stable_repr(v, home)}" for k, v in value.items()) + "}"
    return repr(value)


def _code_names(code: Any) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):  # nested functions, lambdas, comprehensions
            names |= _code_names(const)
    return names


def _definition_sources(fn: Callable[..., Any]) -> list[str]:
    """The source texts a benchmark's definition hash covers, in a fixed order. Nothing in them depends
    on where the suite lives: a user suite's module name is built from its path, so entries are keyed
    by qualified name within the module (code) and by plain name (constants), never by module name.

    Besides the suite's own module it follows the suite's private helper modules (`_helpers.py` beside
    the suite file, or a `_name/` package there: see `_helper_place`). Their entries are keyed the same
    way, so a helper moved out of the suite file into a helper module leaves the hash as it was; where
    two modules use one name, the entry holds both texts (sorted, so the order of the walk never shows)."""
    module = getattr(fn, "__module__", None)
    home = _suite_dir(fn)
    places: dict[str | None, str | None] = {module: ""}

    def place(mod: str | None) -> str | None:
        if mod not in places:
            places[mod] = _helper_place(mod, home)
        return places[mod]

    entries: dict[tuple[int, str], set[str]] = {}
    visited: set[tuple[str, str]] = set()
    stack: list[Any] = [fn]
    while stack:
        obj = stack.pop()
        name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
        where = place(getattr(obj, "__module__", None)) or ""
        if (where, name) in visited:
            continue
        visited.add((where, name))
        try:
            entries.setdefault((0, name), set()).add(inspect.getsource(obj))
        except (OSError, TypeError):
            entries.setdefault((0, name), set()).add(name)
        functions = [obj] if inspect.isfunction(obj) else [
            v for v in vars(obj).values() if inspect.isfunction(v)] if inspect.isclass(obj) else []
        for func in functions:
            names = _code_names(func.__code__)
            for ref in names:
                value = func.__globals__.get(ref)
                if inspect.ismodule(value) and place(value.__name__) is not None:
                    # a helper module used as `helpers.name`: what it holds under the names the code reads
                    stack.extend(v for n in names if (inspect.isfunction(v := getattr(value, n, None))
                                                      or inspect.isclass(v)) and v.__module__ == value.__name__)
                elif (inspect.isfunction(value) or inspect.isclass(value)) and place(value.__module__) is not None:
                    stack.append(value)
                elif not ref.startswith("__") and _plain(value):
                    entries.setdefault((1, ref), set()).add(f"{ref} = {_stable_repr(value, home)}")
    return ["".join(sorted(entries[k])) for k in sorted(entries)]


def _helper_place(module: str | None, home: tuple[str, ...]) -> str | None:
    """Where a module lives relative to the suite's folder, as `_helpers.py:` or `_name/part.py:`, when it is
    one of the suite's private helper modules (a file whose name starts with "_" beside the suite, or any
    module inside a folder there whose name starts with "_"); None for every other module."""
    file = getattr(sys.modules.get(module or ""), "__file__", None)
    if not isinstance(file, str) or not home:
        return None
    path = Path(file).resolve()
    for folder in home:
        try:
            rel = path.relative_to(Path(folder).resolve())
        except ValueError:
            continue
        first = rel.parts[0] if rel.parts else ""
        installed = {"site-packages", "dist-packages"} & set(rel.parts)  # a virtualenv in a `_venv/` folder
        if first.startswith("_") and not first.startswith("__") and rel.suffix == ".py" and not installed:
            return rel.as_posix() + ":"
        return None
    return None


def _suite_dir(fn: Callable[..., Any]) -> tuple[str, ...]:
    """The folder of the file that defines fn, as its `__file__` spells it and resolved (longest first)."""
    file = getattr(fn, "__globals__", {}).get("__file__")
    if not isinstance(file, str):
        return ()
    folders = {os.path.dirname(file), str(Path(file).resolve().parent)}
    return tuple(sorted((f for f in folders if len(f) > 1), key=len, reverse=True))


def _as_grid(params: Mapping[str, Sequence[Any]] | None, what: str) -> dict[str, tuple]:
    grid: dict[str, tuple] = {}
    for name, values in (params or {}).items():
        if name in ("dtype", "mode", "backend"):
            raise ValueError(f"{what}: '{name}' is an axis of its own; use the {name}s= argument")
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            values = [values]
        values = tuple(values)
        for v in values:
            if not isinstance(v, (str, int, float, bool, type(None))):
                raise ValueError(f"{what}: parameter {name}={v!r} must be a str, int, float, bool or None")
        if not values:
            raise ValueError(f"{what}: parameter {name} has no values")
        grid[name] = values
    return grid


@dataclass(frozen=True)
class Benchmark:
    """A named, parametrised benchmark. Built by `@benchmark`; the registry finds it on its module."""

    name: str
    setup: Callable[..., Case]
    params: dict[str, tuple] = field(default_factory=dict)
    dtypes: tuple[str | None, ...] = (None,)
    modes: tuple[str | None, ...] = (None,)
    backends: tuple[str, ...] | None = None  # None: every backend
    profiles: dict[str, dict[str, tuple]] = field(default_factory=dict)  # per-profile axis overrides
    overview: dict[str, tuple] | None = None  # axis overrides for the default overview run; None: not in it
    isolate: bool | Callable[[CaseKey], bool] = False  # run in a fresh worker process of its own
    timeout: float | None = None  # seconds; None: the profile's default
    rounds: int | None = None  # at most this many rounds (a costly case); None: the profile's
    compile_repeats: int | None = None  # cold compiles per round (ctx.compile_repeats); None: the profile's
    description: str = ""
    suite: str = ""  # filled in by the registry

    def isolates(self, key: CaseKey) -> bool:
        """Whether this case gets a fresh worker process of its own (`isolate` may decide per case)."""
        return bool(self.isolate(key)) if callable(self.isolate) else bool(self.isolate)

    @cached_property
    def definition_hash(self) -> str:
        """Hash of what the benchmark runs: its setup's source and, transitively, the source of the
        functions and classes and the values of plain constants it uses from its own module. A
        changed model or size table changes the hash (results compare as incomparable); an edit
        to another benchmark in the same file does not."""
        digest = hashlib.sha256()
        for part in _definition_sources(self.setup):
            digest.update(part.encode())
        return "sha256:" + digest.hexdigest()[:16]

    def _axes(self, overrides: Mapping[str, tuple] | None) -> tuple[dict[str, tuple], tuple, tuple]:
        grid = dict(self.params)
        dtypes, modes = self.dtypes, self.modes
        for name, values in (overrides or {}).items():
            values = tuple(values) if isinstance(values, (list, tuple)) else (values,)
            if name == "dtype":
                dtypes = values
            elif name == "mode":
                modes = values
            else:
                grid[name] = values
        return grid, dtypes, modes

    def cases(self, backend: str, profile: str = "default", overview: bool = False) -> list[CaseKey]:
        """Every case of this benchmark on `backend` for a profile (or the overview selection)."""
        if overview:
            if self.overview is None:
                return []
            grid, dtypes, modes = self._axes(self.overview)
        else:
            grid, dtypes, modes = self._axes(self.profiles.get(profile))
        names = list(grid)
        keys = []
        for combo in itertools.product(*(grid[n] for n in names)):
            for dtype in dtypes:
                for mode in modes:
                    keys.append(CaseKey.make(self.suite, self.name, dict(zip(names, combo, strict=True)), backend, dtype, mode))
        return keys

    def unsupported_reason(self, backend: str) -> str | None:
        if self.backends is not None and backend not in self.backends:
            return f"{self.name} runs on {', '.join(self.backends)} only"
        return None


def benchmark(
    fn: Callable[..., Case] | None = None,
    *,
    name: str | None = None,
    params: Mapping[str, Sequence[Any]] | None = None,
    dtypes: Sequence[str | None] | None = None,
    modes: Sequence[str | None] | None = None,
    backends: Sequence[str] | None = None,
    profiles: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
    overview: Mapping[str, Sequence[Any]] | bool = False,
    isolate: bool | Callable[[CaseKey], bool] = False,
    timeout: float | None = None,
    rounds: int | None = None,
    compile_repeats: int | None = None,
) -> Any:
    """Declare a benchmark. The decorated setup is called as `setup(ctx, **params)` for each case.

    params: the grid, name -> values. dtypes/modes: axes of their own, part of the result's key
    (`ctx.dtype`, `ctx.mode`). backends: where it can run (others are skipped with a reason).
    profiles: per-profile overrides of any axis, e.g. `{"quick": {"n": [256]}}`. overview: include in
    the default `python -m benchbench` run, with axis overrides (True: the first value of each axis).
    isolate: run in a worker process of its own (compile caches, allocator state); a callable
    `(CaseKey) -> bool` decides per case (e.g. compiled modes only). timeout: seconds. rounds: at most
    this many rounds, for a case too costly to repeat as often as the profile asks (fewer rounds give a
    wider interval, and the gate says what it can still detect). compile_repeats: how many cold compiles
    a compiled case makes in each round (`ctx.compile_repeats`, see benchbench/measure/cold_compile.py); None: the
    profile's.
    """

    for what, value in (("rounds", rounds), ("compile_repeats", compile_repeats)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{what} must be a positive integer, got {value!r}")

    def wrap(setup: Callable[..., Case]) -> Benchmark:
        bname = name or setup.__name__
        grid = _as_grid(params, bname)
        prof = {}
        for pname, overrides in (profiles or {}).items():
            if pname not in PROFILES:
                raise ValueError(f"{bname}: unknown profile {pname!r} (known: {', '.join(PROFILES)})")
            prof[pname] = {k: tuple(v) if isinstance(v, (list, tuple)) else (v,) for k, v in overrides.items()}
        if overview is True:
            ov: dict[str, tuple] | None = {k: (v[0],) for k, v in grid.items()}
            ov["dtype"] = (tuple(dtypes)[0],) if dtypes else (None,)
            ov["mode"] = (tuple(modes)[0],) if modes else (None,)
        elif overview:
            ov = {k: tuple(v) if isinstance(v, (list, tuple)) else (v,) for k, v in overview.items()}
        else:
            ov = None
        doc = inspect.getdoc(setup) or ""
        return Benchmark(
            name=bname,
            setup=setup,
            params=grid,
            dtypes=tuple(dtypes) if dtypes else (None,),
            modes=tuple(modes) if modes else (None,),
            backends=tuple(backends) if backends else None,
            profiles=prof,
            overview=ov,
            isolate=isolate,
            timeout=timeout,
            rounds=rounds,
            compile_repeats=compile_repeats,
            description=doc.splitlines()[0] if doc else "",
        )

    return wrap(fn) if fn is not None else wrap
