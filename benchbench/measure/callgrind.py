"""Instruction counts under Valgrind's Callgrind: a CPU-side measure that does not move with the machine.

A worker started under `valgrind --tool=callgrind --collect-atstart=no` (see `command_prefix`) runs
every case of the run. For each case, `Collector.measure` switches collection on around `n` calls of
the case's callable only, through the toggles torch already exposes (`torch._C._valgrind_toggle`,
`torch._C._valgrind_toggle_and_dump_stats`), and reads the dump Callgrind writes for that region.
Before counting, the callable runs uncounted regions of the same `n` calls, so that caches, lazy
initialisation and allocator pools are in their steady state. Each sample is then one region:
(Ir(n calls) - Ir(no call)) / n, the empty region being the toggles' and the loop's own cost. (A
difference of two regions, (Ir(2n) - Ir(n)) / n, doubles the jitter of a single region instead.)

The memory allocators' internals (ALLOCATOR_FUNCTIONS) execute a number of instructions that depends
on the heap's history, not on the code: their own instructions are counted apart and left out of the
samples. What remains is exact up to small interpreter jitter, so counts compare with a tolerance
rule of their own (`benchbench.metrics.instructions`), not with the statistics used for times.

Valgrind is an optional system dependency; `valgrind_status()` says whether it is usable here.
"""

from __future__ import annotations

import gc
import itertools
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchbench.kinds import is_gpu
from benchbench.metrics.instructions import METHOD  # the results' timing_method

OUT_ENV = "BENCHBENCH_CALLGRIND_OUT"  # set for a worker started under Callgrind: where its dumps go
KEEP_ENV = "BENCHBENCH_CALLGRIND_KEEP"  # a folder: keep every dump there (for callgrind_annotate, KCachegrind)
# How much slower everything runs under Callgrind; the runner stretches its timeouts by this much.
# Importing torch takes minutes: the worker's start-up timeout becomes 300 s x 10.
SLOWDOWN = 10.0
INSTALL_HINT = ("install Valgrind: `apt-get install valgrind` (Debian/Ubuntu) or `dnf install valgrind` "
                "(Fedora); there is none for macOS on Apple silicon")
TOP_FUNCTIONS = 15
TARGET_INSTRUCTIONS = 2e7  # per region of n calls: long against the toggles' cost, short under Valgrind
CALL_LADDER = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
REPEATS = 5
WARMUP_REGIONS = 2  # uncounted regions of n calls before the counted ones
# Under Callgrind the worker runs single-threaded: an OpenMP pool's spin-waits would add instructions
# that depend on scheduling, not on the code. A fixed hash seed makes CPython's dict and set probes,
# and so their instructions, the same in every run. A deep per-thread cache and fixed mmap and trim
# thresholds keep most of glibc's small allocations on the same cheap path.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
              "GLIBC_TUNABLES": "glibc.malloc.tcache_count=65535:glibc.malloc.mmap_threshold=4194304:"
                                "glibc.malloc.trim_threshold=1073741824"}
# The memory allocators' internals: glibc malloc's free-list searches, consolidation and splitting, and
# CPython's small-object allocator (pymalloc). How many instructions they execute depends on the heap's
# history (which chunks happen to be free, and where), not on the code being measured: in one process
# they moved a case of 100 small autograd ops by 1-2% from one region to the next, while everything
# else stayed exact. They are counted apart (metrics.instructions.allocator) and left out of the samples.
# Their callers (an allocation's wrapper, the object it creates) stay in.
ALLOCATOR_FUNCTIONS = re.compile(
    r"^(?:_int_malloc|_int_free|_int_realloc|_int_memalign|malloc_consolidate|unlink_chunk(?:\..*)?|sysmalloc"
    r"|systrim(?:\..*)?|alloc_perturb|tcache_init(?:\..*)?|munmap_chunk|mremap_chunk"
    r"|_PyObject_Malloc|_PyObject_Calloc|_PyObject_Realloc|_PyObject_Free|allocate_from_new_pool"
    r"|insert_to_usedpool|insert_to_freepool|new_arena|_PyObject_ArenaMmap|_PyObject_ArenaMunmap)$")


# --- is Valgrind usable here ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ValgrindStatus:
    usable: bool
    path: str | None = None
    version: str | None = None
    reason: str | None = None  # why not usable
    install: str = INSTALL_HINT

    def to_dict(self) -> dict[str, Any]:
        return {"usable": self.usable, "path": self.path, "version": self.version, "reason": self.reason,
                "install": None if self.usable else self.install}


def valgrind_status(which: Callable[[str], str | None] = shutil.which,
                    run: Callable[..., Any] = subprocess.run) -> ValgrindStatus:
    """Whether `valgrind --tool=callgrind` can run here, and if not, why and how to install it."""
    if not sys.platform.startswith("linux"):
        return ValgrindStatus(False, reason=f"instruction counts need Valgrind on Linux; this is {sys.platform} "
                              f"({platform.machine()})")
    path = which("valgrind")
    if not path:
        return ValgrindStatus(False, reason="valgrind is not installed (not on PATH)")
    try:
        proc = run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return ValgrindStatus(False, path, reason=f"`valgrind --version` failed: {exc}")
    out = (proc.stdout or "").strip()
    if proc.returncode != 0 or not out.startswith("valgrind-"):
        return ValgrindStatus(False, path, reason=f"`valgrind --version` failed (exit {proc.returncode}): "
                              f"{(proc.stderr or out).strip()[:200]}")
    return ValgrindStatus(True, path, out.removeprefix("valgrind-"))


def command_prefix(out_file: str | os.PathLike, valgrind: str = "valgrind") -> list[str]:
    """What goes before `python -m benchbench.worker`: Callgrind with collection off until a case asks.

    Dumps go to `<out_file>.1`, `<out_file>.2`, ... in the order the worker asks for them.
    """
    return [valgrind, "--tool=callgrind", f"--callgrind-out-file={out_file}", "--dump-line=yes",
            "--dump-instr=yes", "--instr-atstart=yes", "--collect-atstart=no", "--quiet"]


def worker_env(out_file: str | os.PathLike) -> dict[str, str]:
    return {**WORKER_ENV, OUT_ENV: str(out_file)}


# --- the output file -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FunctionCost:
    name: str
    file: str
    object: str
    self: int  # instructions executed in this function's own code
    inclusive: int  # ... plus those of the functions it called

    def to_dict(self) -> dict[str, Any]:
        return {"function": self.name, "file": self.file, "object": self.object, "self": self.self,
                "inclusive": self.inclusive}


@dataclass
class Profile:
    """One Callgrind dump: total Ir and the cost per function."""

    total: int
    functions: list[FunctionCost] = field(default_factory=list)
    events: tuple[str, ...] = ("Ir",)
    command: str = ""

    def top(self, n: int = TOP_FUNCTIONS, by: str = "self") -> list[FunctionCost]:
        return sorted(self.functions, key=lambda f: (-getattr(f, by), f.name))[:n]

    def self_cost(self, pattern: re.Pattern[str]) -> int:
        """The own instructions of the functions whose name matches `pattern` (e.g. ALLOCATOR_FUNCTIONS)."""
        return sum(f.self for f in self.functions if pattern.match(f.name))


_NAME = re.compile(r"^\((\d+)\)(?:\s+(.*))?$")
_NAMED = ("ob", "fl", "fi", "fe", "fn", "cob", "cfi", "cfl", "cfn")


class CallgrindFormatError(ValueError):
    pass


def parse(text: str, source: str = "callgrind output") -> Profile:
    """Parse a Callgrind output file (format version 1, name compression included) into a Profile.

    Self cost: every cost line of a function. Inclusive cost: self plus the cost lines that follow its
    `calls=` lines; a function calling itself is not counted twice (as callgrind_annotate does).
    """
    events: list[str] = []
    npos = 1
    header_total: int | None = None
    command = ""
    names: dict[tuple[str, str], str] = {}
    cur = {"ob": "???", "fl": "???", "fn": None}
    callee = {"cob": None, "cfi": None, "cfn": None}
    selfc: dict[tuple[str, str, str], int] = {}
    incl: dict[tuple[str, str, str], int] = {}
    after_call = False
    summed = 0
    ir = 0

    def name_of(kind: str, raw: str) -> str:
        space = {"cob": "ob", "cfn": "fn", "cfi": "fl", "cfl": "fl", "fi": "fl", "fe": "fl"}.get(kind, kind)
        m = _NAME.match(raw.strip())
        if not m:
            return raw.strip()
        ident, name = m.group(1), m.group(2)
        if name is not None:
            names[(space, ident)] = name.strip()
            return name.strip()
        return names.get((space, ident), f"({ident})")

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head = line[0]
        if head.isdigit() or head in "+-*" or line.startswith("0x"):
            if cur["fn"] is None:
                raise CallgrindFormatError(f"{source}:{lineno}: cost line before any fn= line")
            if not events:
                raise CallgrindFormatError(f"{source}:{lineno}: cost line before the events: header")
            parts = line.split()
            counts = parts[npos:]
            value = int(counts[ir]) if len(counts) > ir else 0
            key = (cur["ob"], cur["fl"], cur["fn"])
            if after_call:
                if callee["cfn"] != cur["fn"]:  # recursion: already in the caller's own cost
                    incl[key] = incl.get(key, 0) + value
                after_call = False
            else:
                selfc[key] = selfc.get(key, 0) + value
                incl[key] = incl.get(key, 0) + value
                summed += value
            continue
        if "=" in line and line.split("=", 1)[0] in (*_NAMED, "calls", "jump", "jcnd"):
            kind, value = line.split("=", 1)
            if kind == "calls":
                after_call = True
            elif kind in ("jump", "jcnd"):
                continue
            elif kind in ("ob", "fl", "fn"):
                cur[kind] = name_of(kind, value)
                if kind == "fn":
                    callee.update(cob=None, cfi=None, cfn=None)
            elif kind in ("fi", "fe"):
                name_of(kind, value)  # inlined code: its cost stays with the current function
            else:
                callee["cfi" if kind == "cfl" else kind] = name_of(kind, value)
            continue
        if ":" in line:
            key_, _, value = line.partition(":")
            key_, value = key_.strip(), value.strip()
            if key_ == "events":
                events = value.split()
                if "Ir" not in events:
                    raise CallgrindFormatError(f"{source}: no Ir event (events: {value})")
                ir = events.index("Ir")
            elif key_ == "positions":
                npos = len(value.split())
            elif key_ in ("totals", "summary") and value:
                try:
                    header_total = int(value.split()[ir if events else 0])
                except (ValueError, IndexError):
                    raise CallgrindFormatError(f"{source}:{lineno}: bad {key_} line: {line}") from None
            elif key_ == "cmd":
                command = value
            continue
        raise CallgrindFormatError(f"{source}:{lineno}: unrecognised line: {line[:80]}")
    if not events:
        raise CallgrindFormatError(f"{source}: not a Callgrind output file (no events: header)")
    functions = [FunctionCost(fn, fl, os.path.basename(ob), selfc.get(k, 0), incl.get(k, 0))
                 for k in incl for ob, fl, fn in [k]]
    return Profile(total=header_total if header_total is not None else summed, functions=functions,
                   events=tuple(events), command=command)


def parse_file(path: str | os.PathLike) -> Profile:
    p = Path(path)
    return parse(p.read_text(errors="replace"), str(p))


def breakdown(base: Profile, bigger: Profile, calls: int, n: int = TOP_FUNCTIONS) -> list[dict[str, Any]]:
    """Per-call instructions of the top functions: (bigger - base) / calls, by self cost, with inclusive cost."""
    def index(p: Profile) -> dict[tuple[str, str, str], FunctionCost]:
        return {(f.object, f.file, f.name): f for f in p.functions}

    a, b = index(base), index(bigger)
    rows = []
    for k, fb in b.items():
        fa = a.get(k)
        self_ = (fb.self - (fa.self if fa else 0)) / calls
        inclusive = (fb.inclusive - (fa.inclusive if fa else 0)) / calls
        if self_ > 0 or inclusive > 0:
            rows.append({"function": fb.name, "file": fb.file, "object": fb.object, "self": round(self_, 1),
                         "inclusive": round(inclusive, 1)})
    rows.sort(key=lambda r: (-r["self"], r["function"]))
    return rows[:n]


# --- measuring in the worker ----------------------------------------------------------------------------
def read_total(path: str | os.PathLike) -> int:
    """The total Ir of a Callgrind dump from its `totals:`/`summary:` line, without parsing every function."""
    events: list[str] = []
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split(":", 1)[1].split()
            elif line.startswith(("totals:", "summary:")) and events and "Ir" in events:
                return int(line.split(":", 1)[1].split()[events.index("Ir")])
    return parse_file(path).total  # no header total: sum the cost lines


class Collector:
    """Runs toggled regions in a worker started under Callgrind and reads their dumps.

    `toggle` and `toggle_and_dump` default to torch's bindings; tests pass fakes with a fake dump.
    """

    method = METHOD

    def __init__(self, out_file: str | os.PathLike, toggle: Callable[[], None] | None = None,
                 toggle_and_dump: Callable[[], None] | None = None, repeats: int = REPEATS,
                 target: float = TARGET_INSTRUCTIONS, keep_dir: str | os.PathLike | None = None,
                 warmup_regions: int = WARMUP_REGIONS,
                 exclude: re.Pattern[str] | None = ALLOCATOR_FUNCTIONS) -> None:
        self.out_file = Path(out_file)
        self.keep_dir = Path(keep_dir) if keep_dir else None
        if toggle is None or toggle_and_dump is None:
            import torch

            if not torch._C._valgrind_supported_platform():
                raise RuntimeError("this torch build has no Valgrind support (built with NVALGRIND)")
            toggle, toggle_and_dump = torch._C._valgrind_toggle, torch._C._valgrind_toggle_and_dump_stats
        self._toggle = toggle
        self._toggle_and_dump = toggle_and_dump
        self.repeats = repeats
        self.target = target
        self.warmup_regions = warmup_regions
        self.exclude = exclude  # functions whose own instructions stay out of the samples

    def _dumps(self) -> set[Path]:
        return set(self.out_file.parent.glob(self.out_file.name + ".*"))

    def _loop(self, fn: Callable[[], Any], calls: int, count: bool) -> None:
        """`calls` calls of fn with GC paused (as when timing), counted or not: the same code either way."""
        loop = itertools.repeat(None, calls)
        toggle, toggle_and_dump = (self._toggle, self._toggle_and_dump) if count else (_nothing, _nothing)
        enabled = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            toggle()
            for _ in loop:
                fn()
            toggle_and_dump()
        finally:
            if enabled:
                gc.enable()

    def region(self, fn: Callable[[], Any], calls: int, full: bool = True) -> Profile:
        """Collection on around `calls` calls of fn, then the dump: parsed per function (`full`), or
        only its total (a Profile without functions)."""
        before = self._dumps()
        self._loop(fn, calls, count=True)
        new = sorted(self._dumps() - before, key=lambda p: (len(p.name), p.name))
        if not new:
            raise RuntimeError(f"no Callgrind dump appeared next to {self.out_file}: is the worker running under "
                               "`valgrind --tool=callgrind`?")
        path = new[-1]
        try:
            return parse_file(path) if full else Profile(total=read_total(path))
        finally:
            if self.keep_dir is not None:
                self.keep_dir.mkdir(parents=True, exist_ok=True)
                shutil.move(str(path), self.keep_dir / f"{path.name}.n{calls}")
            else:
                path.unlink(missing_ok=True)

    def measure(self, fn: Callable[[], Any], on_phase: Callable[[str], None] | None = None) -> tuple[Any, dict]:
        """Instructions per call: `repeats` regions of n calls each, after `warmup_regions` uncounted ones;
        each sample is (Ir(n calls) - Ir(no call)) / n, without the allocators' internals (`exclude`).

        Returns a Measurement (samples in instructions per call) and the metrics to store with it.
        """
        from benchbench.measure.engine import Measurement

        phase = on_phase or (lambda _p: None)
        t0 = time.perf_counter()
        phase("calibrate")
        first = self.region(fn, 1, full=False)
        calls = pick_calls(first.total, self.target)
        for _ in range(self.warmup_regions):  # caches, lazy initialisation and allocator pools settle
            self._loop(fn, calls, count=False)
        warmup_s = time.perf_counter() - t0
        phase("count")

        def apart(p: Profile) -> int:
            return p.self_cost(self.exclude) if self.exclude is not None else 0

        empty = self.region(fn, 0)  # the toggles and the loop's set-up, without a call
        samples, allocator, totals = [], [], []
        last = empty
        for _ in range(self.repeats):
            last = self.region(fn, calls)
            kept = (last.total - apart(last)) - (empty.total - apart(empty))
            samples.append(kept / calls)
            allocator.append((apart(last) - apart(empty)) / calls)
            totals.append((last.total - empty.total) / calls)
        metrics = {
            "instructions": {
                "calls_per_region": calls,
                "regions": self.repeats,
                "warmup_calls": 1 + self.warmup_regions * calls,
                "toggle_overhead": empty.total,
                # per call, median over the regions: inside the allocators (not in the samples), and everything
                "allocator": statistics.median(allocator),
                "with_allocator": statistics.median(totals),
                "allocator_functions": sorted({f.name for f in last.functions
                                               if self.exclude is not None and self.exclude.match(f.name)}),
                "top_functions": breakdown(empty, last, calls),
                "threads": _threads(),
            },
            "stopped": "repeats",
        }
        m = Measurement(samples=samples, loops=calls, warmup_calls=1 + self.warmup_regions * calls,
                        warmup_s=warmup_s, overhead_s=0.0, stopped="repeats")
        return m, metrics


def _nothing() -> None:
    pass


def pick_calls(first_call_instructions: float, target: float = TARGET_INSTRUCTIONS,
               ladder: Sequence[int] = CALL_LADDER) -> int:
    """Calls per region: the largest step of a fixed ladder within `target` instructions.

    A ladder, not an exact quotient: the same case lands on the same n in every run, so runs compare
    like for like even when the first call's count jitters a little.
    """
    per_call = max(float(first_call_instructions), 1.0)
    fitting = [n for n in ladder if n * per_call <= target]
    return fitting[-1] if fitting else ladder[0]


def _threads() -> int | None:
    try:
        import torch

        return int(torch.get_num_threads())
    except Exception:  # noqa: BLE001 - informational only
        return None


def collector_from_env(environ: dict[str, str] | None = None) -> Collector | None:
    """The worker's collector when it was started for instruction counts (OUT_ENV set), else None."""
    env = os.environ if environ is None else environ
    out = env.get(OUT_ENV)
    return Collector(out.replace("%p", str(os.getpid())), keep_dir=env.get(KEEP_ENV) or None) if out else None


# --- a run that counts instructions ---------------------------------------------------------------------
def require(status: ValgrindStatus | None = None) -> ValgrindStatus:
    """The Valgrind status, or a one-line UserError saying why it is unusable and how to install it."""
    from benchbench.errors import UserError

    status = status or valgrind_status()
    if not status.usable:
        raise UserError(f"--metric instructions needs Valgrind: {status.reason}; {status.install}")
    return status


def plan(cases: list[Any]) -> list[Any]:
    """Planned cases (benchbench.run.runner.PlannedCase) with those Callgrind cannot count skipped, and why."""
    from dataclasses import replace

    out = []
    for case in cases:
        if case.skip:
            out.append(case)
        elif is_gpu(case.key.backend):
            out.append(replace(case, skip=f"instruction counts run on the CPU backend only ({case.key.backend} "
                                          "work happens on the device, where Callgrind cannot see it)"))
        elif case.isolate:
            out.append(replace(case, skip="needs a worker process of its own (compile or launch isolation); "
                                          "one worker under Valgrind serves every instruction-count case"))
        else:
            out.append(case)
    return out


def runner_options(dump_dir: str | os.PathLike, status: ValgrindStatus | None = None) -> dict[str, Any]:
    """Runner keyword arguments: the worker under Callgrind, its environment, the stretched timeouts."""
    status = status or valgrind_status()
    out_file = Path(dump_dir) / "callgrind.%p.out"
    return {"command_prefix": command_prefix(out_file, status.path or "valgrind"),
            "worker_env": worker_env(out_file), "slowdown": SLOWDOWN}
