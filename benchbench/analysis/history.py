"""History: every run of a folder, one series per benchmark and machine, with change points.

Reads the benchbench reports of a folder (`*.json`) and the append-only index that
`run --history DIR` writes (`DIR/history.jsonl`: one compact report per line), orders the runs by
`created_at`, and builds one series per case key, timing method and machine. The machine is the
hardware the backend ran on (CPU model for `cpu`, GPU model and count for `cuda`, ...): different
machines are separate series. Software and settings (torch, CUDA, driver, thread count, precision
flags, CPU governor) may change along a series; a change point that coincides with such a change is
labelled `environment change` and names the keys, so it is not mistaken for a code regression.

Change points come from `benchbench.analysis.changepoint.detect` on the per-run medians, with the calibrated
defaults. Everything here returns data; `benchbench.output.history` renders it.
"""

from __future__ import annotations

import fcntl
import fnmatch
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchbench import metrics
from benchbench.environment.facts import get
from benchbench.environment.fingerprint import fingerprint_diff
from benchbench.errors import ReportError, UserError
from benchbench.kinds import KINDS, is_gpu
from benchbench.model.report import (
    CaseKey,
    Report,
    _clean_floats,
    _json_default,
    check_output_folder,
    parse,
    read_json,
)
from benchbench.model.validation import loads

INDEX = "history.jsonl"
NEARBY = 2  # an environment change this many runs from a change point still explains it

ENVIRONMENT_CHANGE = "environment change"
BENCHMARK_CHANGE = "benchmark changed"
CODE_OR_UNKNOWN = "code or unknown"

# the fingerprint key naming the hardware a backend runs on: results on different hardware are
# separate series, everything else in the fingerprint may change along a series
DEVICE_KEYS = {k.name: (k.device_fact,) + ((k.count_fact,) if k.count_fact else ()) for k in KINDS.values()}
NOT_ENVIRONMENT = frozenset({"hostname", "benchbench", "fingerprint_version"})  # recorded, never a cause


# --- the index file ---------------------------------------------------------------------------
def append(report: Report, folder: str | os.PathLike) -> Path:
    """Append `report` as one compact JSON line to `folder`/history.jsonl.

    One `write` on a descriptor opened with O_APPEND, under an exclusive `fcntl` lock: concurrent runs
    appending to the same index never interleave their lines. A crash leaves at most one truncated
    last line, which `load_folder` skips with a note; the next append starts on a fresh line, so the
    truncated fragment never swallows a whole run.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / INDEX
    line = json.dumps(_clean_floats(report.to_dict()), separators=(",", ":"), default=_json_default,
                      allow_nan=False) + "\n"
    data = line.encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # the last line was cut short: ours starts on a line of its own
        written = os.write(fd, data)
        while written < len(data):  # a regular file takes the whole write; be correct anyway
            written += os.write(fd, data[written:])
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def check_folder(folder: str | os.PathLike) -> Path:
    """Fail now, in one line, if `append` could not write to `folder` (before a run, not after it)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--history {folder}: is a file; give a folder (its {INDEX} holds one line per run)")
    if (folder / INDEX).is_dir():
        raise UserError(f"--history {folder}: {folder / INDEX} is a folder, not the index file")
    return check_output_folder(folder, "--history")


def load_folder(folder: str | os.PathLike) -> tuple[list[tuple[Report, str]], list[str]]:
    """Every report in `folder`: (report, where it came from) pairs, and a note for each file or line skipped.

    A file that is not a benchbench report, or an index line that cannot be parsed (e.g. the last
    line of a crashed run), is skipped with a note rather than stopping the whole history. The same
    run found twice (a report file and its index line) counts once.
    """
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"{root}: not a folder (history reads the reports in a folder)")
    found: list[tuple[Report, str]] = []
    skipped: list[str] = []
    for path in sorted(root.glob("*.json")):
        try:
            found.append((parse(read_json(path), str(path)), path.name))
        except ReportError as exc:
            skipped.append(str(exc))
    for path in sorted(root.glob("*.jsonl")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            skipped.append(f"{path}: cannot read: {exc}")
            continue
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                found.append((parse(loads(line, f"{path}:{number}"), f"{path}:{number}"), where))
            except ReportError as exc:
                skipped.append(str(exc))
    seen: set[str] = set()
    unique = []
    for report, where in found:
        if report.run_id not in seen:
            seen.add(report.run_id)
            unique.append((report, where))
    return unique, skipped


# --- data -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    run_id: str
    created_at: str
    label: str | None
    git_commit: str | None
    source: str  # file name, or index file and line


@dataclass(frozen=True)
class Point:
    """One run of one series: its median and interval when the case ran, else only its status."""

    run: Run
    status: str  # ok / failed / skipped / timeout / missing
    median: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class EnvChange:
    key: str
    before: Any
    after: Any
    matters: bool  # changes what the hardware or the kernels do for this backend
    run_id: str  # the first run with the new value


@dataclass(frozen=True)
class Change:
    """A change point: the level of the series moved at `run` (the first run of the new level)."""

    run: Run
    previous: Run  # the last run of the old level
    ratio: float  # median after / median before: > 1 is slower for a time
    ratio_low: float
    ratio_high: float
    pvalue: float
    runs_before: int
    runs_after: int
    cause: str  # ENVIRONMENT_CHANGE, BENCHMARK_CHANGE or CODE_OR_UNKNOWN
    environment: tuple[EnvChange, ...] = ()

    @property
    def keys(self) -> list[str]:
        """The environment keys that explain the change (those that matter)."""
        return list(dict.fromkeys(e.key for e in self.environment if e.matters))


@dataclass(frozen=True)
class Series:
    key: CaseKey
    machine: str
    timing_method: str | None
    points: tuple[Point, ...]
    changes: tuple[Change, ...]
    note: str | None = None  # why no change points could be looked for
    metric: str = "time"  # or a metric every timed run records beside the time (benchbench/metrics/__init__.py)

    @property
    def ok_points(self) -> list[Point]:
        return [p for p in self.points if p.status == "ok"]


@dataclass
class History:
    folder: str
    runs: list[Run]
    series: list[Series]
    skipped: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def changes(self) -> list[tuple[Series, Change]]:
        return [(s, c) for s in self.series for c in s.changes]

    def to_dict(self) -> dict:
        def series(s: Series) -> dict:
            return {"key": s.key.to_dict(), "label": s.key.label, "machine": s.machine,
                    "timing_method": s.timing_method, "metric": s.metric, "note": s.note,
                    "points": [asdict(p) for p in s.points],
                    "changes": [{**asdict(c), "keys": c.keys} for c in s.changes]}

        return _clean_floats({"folder": self.folder, "settings": self.settings,
                              "runs": [asdict(r) for r in self.runs], "skipped": self.skipped,
                              "series": [series(s) for s in self.series]})


# --- analysis ---------------------------------------------------------------------------------
def _time(created_at: str) -> datetime:
    try:
        t = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return datetime.min.replace(tzinfo=timezone.utc)
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def machine_of(report: Report, backend: str) -> str:
    """The hardware `backend` ran on in `report`, e.g. `cpu: AMD EPYC` (what separates series)."""
    fp = report.fingerprint
    parts = [str(fp.get(k)) for k in DEVICE_KEYS.get(backend, ()) if fp.get(k) is not None]
    if len(parts) == 2:  # the device and how many of it
        parts = [f"{parts[0]} x{parts[1]}"]
    if not parts:
        device = (report.backend(backend) or {}).get("device_name")
        parts = [str(device)] if device else ["unknown"]
    return f"{backend}: {parts[0]}"


def environment_of(report: Report) -> dict[str, Any]:
    """The fingerprint, plus what it leaves out that can move a timing: the CPU frequency governor."""
    env = dict(report.fingerprint)
    facts = report.environment.get("facts") or {}
    governors = get(facts, "cpu.governors")
    if isinstance(governors, list) and governors:
        env["cpu_governor"] = ",".join(sorted(set(map(str, governors))))
    return env


def _env_changes(before: Report, after: Report, backend: str) -> list[EnvChange]:
    a, b = environment_of(before), environment_of(after)
    out = []
    for key, va, vb, matters in fingerprint_diff(a, b, [backend]):
        if key in NOT_ENVIRONMENT:
            continue
        if key == "cpu_governor":
            matters = va is not None and vb is not None and not is_gpu(backend)
        out.append(EnvChange(key, va, vb, matters, after.run_id))
    return out


def _matches(key: CaseKey, patterns: Iterable[str] | None) -> bool:
    if not patterns:
        return True
    names = (key.label, f"{key.suite}/{key.name}", key.name, key.benchmark, f"{key.suite}/{key.benchmark}")
    return any(fnmatch.fnmatchcase(n, pat) for pat in patterns for n in names)


def analyse(reports: list[tuple[Report, str]] | list[Report], *, patterns: Iterable[str] | None = None,
            folder: str = "", skipped: list[str] | None = None, max_pvalue: float | None = None,
            min_size: int | None = None, seed: int = 0) -> History:
    """The history of these reports: one series per (case key, timing method, machine), with change points."""
    from benchbench.analysis import changepoint as cp

    max_pvalue = cp.MAX_PVALUE if max_pvalue is None else max_pvalue
    min_size = cp.MIN_SIZE if min_size is None else min_size
    pairs = [(r, getattr(r, "run_id", "")) if isinstance(r, Report) else r for r in reports]
    pairs.sort(key=lambda p: (_time(p[0].created_at), p[0].created_at, p[0].run_id))
    runs = [Run(r.run_id, r.created_at, r.label, get(r.environment.get("facts") or {}, "git_commit"), src)
            for r, src in pairs]

    # series: (case key, machine) -> the timing methods its successful results used
    methods: dict[tuple[CaseKey, str], set[str | None]] = {}
    for report, _ in pairs:
        for res in report.results:
            if _matches(res.key, patterns):
                found = methods.setdefault((res.key, machine_of(report, res.key.backend)), set())
                if res.ok and res.stats is not None:
                    found.add(res.timing_method)
    series = []
    for (key, machine), used in sorted(methods.items(), key=lambda g: (g[0][0].sort_key(), g[0][1])):
        # every run on this machine that ran this backend is a point: ok, failed, skipped or missing
        members = [(i, report) for i, (report, _) in enumerate(pairs)
                   if machine_of(report, key.backend) == machine and any(r.key.backend == key.backend
                                                                         for r in report.results)]
        for method in sorted(used, key=str) or [None]:
            points, reps, defs = [], [], []
            for i, report in members:
                res = report.result(key)
                if res is not None and res.ok and res.stats is not None and res.timing_method != method:
                    continue  # the same case timed another way belongs to another series
                reps.append(report)
                defs.append(res.definition_hash if res is not None else None)
                if res is None:
                    points.append(Point(runs[i], "missing"))
                elif res.ok and res.stats is not None:
                    st = res.stats
                    points.append(Point(runs[i], "ok", st.median, st.ci_low, st.ci_high))
                else:
                    points.append(Point(runs[i], "failed" if res.ok else res.status,
                                        reason=res.reason or ("no samples" if res.ok else None)))
            series.append(_with_changes(key, machine, method, points, reps, defs, max_pvalue, min_size, seed))
            if metrics.of_method(method).rule == "rounds":  # timed runs record peak memory, compile time
                series += _beside_time(key, machine, method, points, reps, defs, max_pvalue, min_size, seed)
    settings = {"method": "t scan on log values + binary segmentation", "max_pvalue": max_pvalue, "min_size": min_size,
                "nearby_runs": NEARBY}
    return History(folder, runs, series, list(skipped or []), settings)


def _beside_time(key: CaseKey, machine: str, method: str | None, points: list[Point], reports: list[Report],
                 definitions: list[str | None], max_pvalue: float, min_size: int, seed: int) -> list[Series]:
    """The series of the metrics recorded beside the time, on the same runs: one per metric that some run holds."""
    out = []
    for metric in metrics.BESIDE_TIME:
        values = [metric.value(rep.result(key)) if p.status == "ok" else None for p, rep in zip(points, reports,
                                                                                             strict=True)]
        if all(v is None for v in values):
            continue
        own = [Point(p.run, "ok", v) if v is not None and v > 0 else
               (p if p.status != "ok" else Point(p.run, "missing", reason=_missing(metric, rep.result(key))))
               for p, v, rep in zip(points, values, reports, strict=True)]
        series = _with_changes(key, machine, method, own, reports, definitions, max_pvalue, min_size, seed)
        out.append(replace(series, metric=metric.name))
    return out


def _missing(metric: metrics.Metric, result: Any) -> str:
    """Why a run has no value of this metric: the metric's own reason where it knows one."""
    return (metric.missing(result) if metric.missing is not None else None) or f"no {metric.title} recorded"


def _with_changes(key: CaseKey, machine: str, method: str | None, points: list[Point], reports: list[Report],
                  definitions: list[str | None], max_pvalue: float, min_size: int, seed: int) -> Series:
    from benchbench.analysis import changepoint as cp

    ok = [i for i, p in enumerate(points) if p.status == "ok"]
    if len(ok) < 2 * min_size:
        note = f"{len(ok)} successful runs; change points need at least {2 * min_size}"
        return Series(key, machine, method, tuple(points), (), note)
    values = [points[i].median for i in ok]
    changes = []
    # unweighted: the calibrated scan (outliers left out, so one disturbed run cannot make a step on its own)
    for c in cp.detect(values, max_pvalue=max_pvalue, min_size=min_size, seed=seed):
        at, prev = ok[c.index], ok[c.index - 1]
        # environment changes between consecutive successful runs near the change point
        lo, hi = max(1, c.index - NEARBY), min(len(ok) - 1, c.index + NEARBY)
        env: list[EnvChange] = []
        bench_changed = False
        for j in range(lo, hi + 1):
            a, b = ok[j - 1], ok[j]
            env += _env_changes(reports[a], reports[b], key.backend)
            bench_changed |= definitions[a] != definitions[b] and None not in (definitions[a], definitions[b])
        if any(e.matters for e in env):
            cause = ENVIRONMENT_CHANGE
        elif bench_changed:
            cause = BENCHMARK_CHANGE
        else:
            cause = CODE_OR_UNKNOWN
        changes.append(Change(points[at].run, points[prev].run, c.ratio, c.ratio_low, c.ratio_high, c.pvalue,
                              c.before, c.after, cause, tuple(env)))
    return Series(key, machine, method, tuple(points), tuple(changes))


def history(folder: str | os.PathLike, patterns: Iterable[str] | None = None, **detector: Any) -> History:
    """Read `folder` and analyse it: what `python -m benchbench history DIR` shows."""
    reports, skipped = load_folder(folder)
    if not reports:
        why = f" ({len(skipped)} files or lines could not be read: {skipped[0]})" if skipped else ""
        raise UserError(f"{folder}: no benchbench reports found{why}")
    return analyse(reports, patterns=patterns, folder=str(folder), skipped=skipped, **detector)
