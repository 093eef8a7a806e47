"""The report data model and its JSON file format.

A report is what one run measured. Every consumer (compare, gate, the output layer, frame) reads
`Report` objects loaded from JSON, so a report from another machine or month behaves exactly like
one just measured. Data classes here never print; renderers live in `benchbench.output`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

from benchbench.errors import ReportError, UserError
from benchbench.model.stats import Stats, summarize_rounds
from benchbench.model.validation import Fields, check_tree, loads

SCHEMA = "benchbench.report"
# Format history (bump on any change readers must know about, and add a migration below):
#   1  benchbench 0.1: first format. Results carry raw samples (seconds per call), the declared
#      work per call, measured extra metrics and flags; `stats` and `derived` are caches.
#   2  rounds: a result's samples are kept per round (`rounds`: a list of {"round", "position",
#      "samples", "loops", ...}; the flat `samples` list is gone from the file), the report lists its
#      rounds (`rounds`: seed, order, worker, canary) and the side that measured it (`side`).
#      Version-1 files read as one round.
#      Additions readers without them may ignore (no bump): a block-interleaved `ab` report carries
#      `sequential` (the plan its rounds were decided by), and its results' round records `windows`
#      (the round's samples cut into that many equal windows pair with the other side's: blocks.py).
#      A result's metrics may carry `energy` (what was read, or "unavailable: why"), `energy_j_per_call`
#      and `power_w` (benchbench/measure/energy.py).
#   3  typed result fields: what the harness reads of a result is a field of its own, no longer a key of
#      `metrics`: `bound`, `round_statistic`, `world_size`, `nnodes`, `note` (declared by the case),
#      `memory_kind`, `recommendation`, `imported_stats` (set by the harness or a suite's derive). A field
#      is written only when set. Version-2 files (and the answers of an older benchbench's workers) read
#      with those keys moved out of `metrics` (`V3_FIELDS`). `metrics` keeps the free-form numbers and
#      the keys a metric owns (`METRIC_KEYS`).
SCHEMA_VERSION = 3

STATUSES = ("ok", "skipped", "failed", "timeout")

ParamValue = Any  # str | int | float | bool | None


def _freeze_params(params: dict[str, ParamValue] | Iterable[tuple[str, ParamValue]]) -> tuple:
    items = params.items() if isinstance(params, dict) else params
    return tuple(sorted((str(k), v) for k, v in items))


@dataclass(frozen=True)
class CaseKey:
    """Identity of a case apart from its data: matches results across reports."""

    suite: str
    benchmark: str
    params: tuple[tuple[str, ParamValue], ...] = ()
    backend: str = "cpu"
    dtype: str | None = None
    mode: str | None = None

    @classmethod
    def make(cls, suite: str, benchmark: str, params: dict | None = None, backend: str = "cpu",
             dtype: str | None = None, mode: str | None = None) -> CaseKey:
        return cls(suite, benchmark, _freeze_params(params or {}), backend, dtype, mode)

    @property
    def params_dict(self) -> dict[str, ParamValue]:
        return dict(self.params)

    @property
    def params_label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.params)

    @property
    def name(self) -> str:
        """Benchmark with parameters, e.g. `matmul[n=1024]`."""
        return f"{self.benchmark}[{self.params_label}]" if self.params else self.benchmark

    @property
    def label(self) -> str:
        """Human-readable, unique within a report: `tensor_ops/matmul[n=1024] cpu float32`."""
        parts = [f"{self.suite}/{self.name}", self.backend]
        if self.dtype:
            parts.append(self.dtype)
        if self.mode:
            parts.append(self.mode)
        return " ".join(parts)

    def sort_key(self) -> tuple:
        """A total order over keys, also of a report whose fields are not all strings (a backend of None
        in a hand-edited or damaged file: every field is compared as its text)."""
        return (str(self.suite), str(self.benchmark), str(self.backend), str(self.dtype), str(self.mode),
                tuple((k, str(v)) for k, v in self.params))

    def to_dict(self) -> dict:
        return {"suite": self.suite, "benchmark": self.benchmark, "params": dict(self.params),
                "backend": self.backend, "dtype": self.dtype, "mode": self.mode}

    @classmethod
    def from_dict(cls, d: dict) -> CaseKey:
        return cls.make(d["suite"], d["benchmark"], d.get("params") or {}, d.get("backend", "cpu"),
                        d.get("dtype"), d.get("mode"))


def typed(kind: type) -> Any:
    """A typed result field (schema 3): unset (None) by default, written only when set, its JSON type
    (`str`, `int`: a positive integer, `dict`) checked by the report validator."""
    return field(default=None, metadata={"typed": kind})


def typed_fields(cls: type) -> list[Any]:
    """The typed fields of a dataclass (CaseFields, Result), in their order."""
    return [f for f in fields(cls) if "typed" in f.metadata]


@dataclass(kw_only=True)
class CaseFields:
    """What a case declares about itself that the harness reads: a benchmark's setup passes them to its
    `Case` (benchbench.api), the harness copies them into the Result, a suite's `derive` may set them on
    results. A new field is one line here (or in Result, when the harness or a derive sets it) plus, when
    an older schema held it elsewhere, its migration."""

    # what limits the case: "compute" (held against the matmul ceiling), "memory" (the copy ceiling),
    # "link" (a host<->device transfer: the PCIe link), "overhead" or anything else (no ceiling)
    bound: str | None = typed(str)
    # which sample stands for a round in compare and ab: "fastest" (the default) or "median" (samples
    # that are not repeated calls of the same work, e.g. windows of a DataLoader's stream)
    round_statistic: str | None = typed(str)
    world_size: int | None = typed(int)  # ranks of a distributed job: results that differ compare as incomparable
    nnodes: int | None = typed(int)  # machines of a distributed job, likewise
    note: str | None = typed(str)  # one line for the results table


@dataclass
class Result(CaseFields):
    """One case's outcome. `samples` (seconds per call) are the truth; `stats` derives from them.

    `samples` holds every round's samples, round after round; `rounds` describes each round (its
    index, the case's position in that round's order, how many samples it gave, calls per sample,
    warm-up, first call, peak memory). No `rounds` means the samples are one round.

    `to_dict`/`from_dict` follow the dataclass fields: a new field needs no code there. The typed fields
    (`typed`, here and in CaseFields) are what the harness reads; `metrics` holds free-form numbers it
    shows and passes on, and the keys a metric owns (`METRIC_KEYS`).
    """

    key: CaseKey
    status: str
    reason: str | None = None
    definition_hash: str | None = None
    timing_method: str | None = None
    samples: list[float] = field(default_factory=list)
    loops_per_sample: int = 1
    warmup: dict[str, float] = field(default_factory=dict)  # {"calls": n, "seconds": s}
    first_call_s: float | None = None
    rounds: list[dict[str, Any]] = field(default_factory=list)  # per round: round, position, n, loops, ...
    work: dict[str, float] = field(default_factory=dict)  # per call: items, flops, bytes
    metrics: dict[str, Any] = field(default_factory=dict)  # measured extras, e.g. compile_s
    flags: list[str] = field(default_factory=list)
    peak_memory_bytes: int | None = None
    duration_s: float | None = None  # wall time of the whole case, setup included
    details: str | None = None  # traceback or worker log tail of a failed case
    # which counter the peak memory was read from ("rss-peak", "cuda-max-allocated", ...: docs/reports.md):
    # peaks read from different counters do not compare
    memory_kind: str | None = typed(str)
    # the setting a suite recommends, on the result measured with it (the dataloader's num_workers and
    # knobs: {"num_workers", "label", "setting", "speedup", ...})
    recommendation: dict[str, Any] | None = typed(dict)
    # a summary without samples (a pytest-benchmark import): {"n", "median", "iqr", ...}
    imported_stats: dict[str, Any] | None = typed(dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown result status {self.status!r}")
        if not self.rounds and self.samples:  # samples without round records are one round
            self.rounds = [{"round": 0, "n": len(self.samples), "loops": self.loops_per_sample}]
        if sum(int(r.get("n", 0)) for r in self.rounds) != len(self.samples):
            raise ValueError("rounds do not add up to the samples")

    @property
    def round_samples(self) -> list[list[float]]:
        """The samples split by round (one list when the result has no round records)."""
        if not self.rounds:
            return [list(self.samples)] if self.samples else []
        out, i = [], 0
        for r in self.rounds:
            n = int(r.get("n", 0))
            out.append(list(self.samples[i:i + n]))
            i += n
        return out

    @property
    def n_rounds(self) -> int:
        return len([r for r in self.round_samples if r])

    @cached_property
    def stats(self) -> Stats | None:
        return summarize_rounds(self.round_samples) if self.samples else None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def derived(self) -> dict[str, float]:
        """Rates per second from the declared work per call and the median time per call."""
        st = self.stats
        if st is None or st.median <= 0:
            return {}
        out = {}
        for name, unit in (("items", "items_per_s"), ("flops", "flops_per_s"), ("bytes", "bytes_per_s")):
            amount = self.work.get(name)
            if amount:
                out[unit] = amount / st.median
        return out

    def typed_values(self) -> dict[str, Any]:
        """The typed fields that are set, by name."""
        return {f.name: getattr(self, f.name) for f in typed_fields(Result) if getattr(self, f.name) is not None}

    def to_dict(self) -> dict:
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "samples" or "typed" in f.metadata:  # samples go into their rounds; typed fields last
                continue
            out[f.name] = getattr(self, f.name)
        out["key"] = self.key.to_dict()
        out["rounds"] = [{**{k: v for k, v in meta.items() if k != "n"}, "samples": samples}
                         for meta, samples in zip(self.rounds, self.round_samples, strict=True)]
        return {
            **out,
            **self.typed_values(),
            # caches, recomputed on load:
            "stats": self.stats.to_dict() if self.stats else None,
            "derived": self.derived(),
        }

    @classmethod
    def from_dict(cls, d: dict, migrated: bool = False) -> Result:
        """A result from its JSON. `migrated`: part of a report already migrated to this schema, whose
        metrics are free-form; otherwise `d` may be a worker's answer from an older benchbench (a baseline
        tree in `ab`), whose typed fields are still among its metrics and move out of them."""
        if not migrated:
            d = typed_from_metrics(d)
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = d.get(f.name)
            if f.default_factory is not MISSING:  # a list or dict: a fresh copy, empty when absent
                value = type(f.default_factory())(value or ())
            elif value is None and f.default is not MISSING:
                value = f.default
            values[f.name] = value
        rounds = d.get("rounds")
        if rounds is None:  # a worker's answer: one round, flat samples
            values["samples"], values["rounds"] = [float(x) for x in d.get("samples") or []], []
        else:
            values["samples"] = [float(x) for r in rounds for x in r.get("samples") or []]
            values["rounds"] = [{**{k: v for k, v in r.items() if k != "samples"}, "n": len(r.get("samples") or [])}
                                for r in rounds]
        values["key"] = CaseKey.from_dict(d["key"])
        values["status"] = d["status"]
        values["loops_per_sample"] = int(d.get("loops_per_sample") or 1)
        return cls(**values)


# The keys of `metrics` that became typed fields in schema 3; frozen with that schema (a later field
# that leaves `metrics` is moved by its own migration).
V3_FIELDS = ("bound", "round_statistic", "world_size", "nnodes", "note", "memory_kind", "recommendation",
             "imported_stats")


def typed_from_metrics(d: dict) -> dict:
    """A result document with the schema-3 typed fields moved out of `metrics` where it still holds them: a
    version-2 file (the migration), or the answer of an older benchbench's worker (`Result.from_dict`). A
    field already set keeps its value; the old key then stays among the free-form metrics."""
    metrics = d.get("metrics")
    if not isinstance(metrics, dict) or not any(k in metrics and d.get(k) is None for k in V3_FIELDS):
        return d
    metrics = dict(metrics)
    d = {**d, "metrics": metrics}
    for name in V3_FIELDS:
        if name in metrics and d.get(name) is None:
            d[name] = metrics.pop(name)
    return d


@dataclass
class Report:
    run_id: str
    created_at: str
    label: str | None = None
    command: list[str] = field(default_factory=list)
    profile: str | None = None
    partial: bool = False
    finished_at: str | None = None
    benchbench_version: str = ""
    environment: dict[str, Any] = field(default_factory=dict)  # {"fingerprint", "facts", "checks"}
    backends: list[dict[str, Any]] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION
    # per round: {"round", "seed", "order" (case labels in the order visited), "started_at", ...}
    rounds: list[dict[str, Any]] = field(default_factory=list)
    side: dict[str, Any] | None = None  # what measured it (ab: "baseline"/"current", python, env, ref)
    # block-interleaved ab: the sequential plan its rounds were decided by (benchbench/analysis/sequential.py)
    sequential: dict[str, Any] | None = None

    @property
    def fingerprint(self) -> dict[str, Any]:
        return self.environment.get("fingerprint", {})

    def backend(self, name: str) -> dict[str, Any] | None:
        return next((b for b in self.backends if b.get("name") == name), None)

    def result(self, key: CaseKey) -> Result | None:
        return next((r for r in self.results if r.key == key), None)

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "schema_version": self.schema_version,
            "benchbench_version": self.benchbench_version,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "label": self.label,
            "command": self.command,
            "profile": self.profile,
            "partial": self.partial,
            "environment": self.environment,
            "backends": self.backends,
            "rounds": self.rounds,
            "side": self.side,
            **({"sequential": self.sequential} if self.sequential is not None else {}),
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Report:
        return cls(
            run_id=d["run_id"],
            created_at=d["created_at"],
            label=d.get("label"),
            command=list(d.get("command") or []),
            profile=d.get("profile"),
            partial=bool(d.get("partial", False)),
            finished_at=d.get("finished_at"),
            benchbench_version=d.get("benchbench_version", ""),
            environment=d.get("environment") or {},
            backends=list(d.get("backends") or []),
            results=[Result.from_dict(r, migrated=True) for r in d.get("results") or []],
            schema_version=SCHEMA_VERSION,
            rounds=list(d.get("rounds") or []),
            side=d.get("side"),
            sequential=d.get("sequential") if isinstance(d.get("sequential"), dict) else None,
        )


# --- migrations -------------------------------------------------------------------------------
# MIGRATIONS[v] turns a version-v document into a version-(v+1) document. Chained on load, so
# every older file keeps loading; tests/data/ holds a golden file of every version.
def _v1_to_v2(doc: dict) -> dict:
    """Version 1 measured every case in one process: its samples become one round."""
    results = []
    for r in doc.get("results") or []:
        r = dict(r)
        samples = r.pop("samples", None) or []
        r["rounds"] = [{"round": 0, "samples": samples, "loops": r.get("loops_per_sample") or 1}] if samples else []
        results.append(r)
    doc["results"] = results
    doc.setdefault("rounds", [{"round": 0}])
    return doc


def _v2_to_v3(doc: dict) -> dict:
    """Version 2 kept what the harness reads of a result among its metrics: it moves to typed fields."""
    doc["results"] = [typed_from_metrics(r) if isinstance(r, dict) else r for r in doc.get("results") or []]
    return doc


MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2, 2: _v2_to_v3}


def migrate(doc: dict, source: str = "report") -> dict:
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ReportError(f"{source}: invalid schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise ReportError(
            f"{source}: written by a newer benchbench (report schema {version}, this version reads up to "
            f"{SCHEMA_VERSION}); upgrade benchbench to read it"
        )
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ReportError(f"{source}: no migration from report schema {version}")
        doc = step(dict(doc))
        version += 1
        doc["schema_version"] = version
    return doc


# --- files ------------------------------------------------------------------------------------
def _json_default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    return str(obj)


def _clean_floats(obj: Any) -> Any:
    """JSON has no NaN/Infinity: store them as null so every reader can parse the file."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_floats(v) for v in obj]
    return obj


def dumps(report: Report) -> str:
    return json.dumps(_clean_floats(report.to_dict()), indent=1, default=_json_default, allow_nan=False)


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write via a temporary file in the same folder and rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a report is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def check_writable(path: str | os.PathLike) -> Path:
    """Fail now, with one line, if a report cannot be written to `path` (its parent is a file, a
    folder that cannot be written, ...): before measuring, not after. Creates missing parent folders,
    as saving would, and tries a temporary file beside the report."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"cannot write the report to {path}: it is a folder")
    existing = next((p for p in path.absolute().parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UserError(f"cannot write the report to {path}: {existing} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise UserError(f"cannot write the report to {path}: {exc.strerror or exc}") from None
    return path


def check_output_folder(folder: str | os.PathLike, option: str) -> Path:
    """Fail now, in one line naming `option`, if files cannot be written into `folder`: it (or a parent)
    is a file, it cannot be created, or it is not writable. Creates it when missing."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{option} {folder}: is a file, not a folder")
    existing = next((p for p in folder.absolute().parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UserError(f"{option} {folder}: {existing} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{option} {folder}: cannot create: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK):
        raise UserError(f"{option} {folder}: not writable")
    return folder


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_not_input(output: str | os.PathLike | None, inputs: Iterable[str | os.PathLike | None],
                    what: str = "--output") -> None:
    """Refuse, before any work, an output path that names one of the command's input files: writing it
    would replace what the user gave to be read."""
    if not output:
        return
    out = Path(output)
    for given in inputs:
        if given and (_same_file(out, Path(given)) or out.absolute() == Path(given).absolute()):
            raise UserError(f"{what} {output}: is one of the inputs; writing it would replace that file "
                            "(choose another path)")


def save(report: Report, path: str | os.PathLike) -> Path:
    return write_atomic(path, dumps(report) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, turning every way it can be unreadable into a one-line ReportError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ReportError(f"{p}: is a directory, not a report file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{p}: cannot read: {exc}") from None
    return loads(text, str(p))


# The keys of a result's `metrics` that a metric owns and reads, with their JSON types and the owner (the
# metric's name in benchbench/metrics/__init__.py): the one place that says so; the validator checks them. Every
# other key of `metrics` is free-form, shown or passed on as it is. (The latency metrics read the
# percentile summary `{prefix}_calls`/`{prefix}_max_s` of any prefix: benchbench/model/percentiles.py.)
METRIC_KEYS: dict[str, tuple[type, str]] = {
    "memory_baseline_bytes": (float, "memory"),  # the process's memory when the peak was reset (CPU)
    "compile_s": (float, "compile"), "compile_warm_s": (float, "compile"), "graph_breaks": (float, "compile"),
    "recompiles": (float, "compile"), "graph_break_reasons": (list, "compile"),
    "energy": (str, "energy"),  # what was read, or "unavailable: why" (benchbench/measure/energy.py)
    "energy_j_per_call": (float, "energy"), "power_w": (float, "energy"),
    "instructions": (dict, "instructions"),  # Callgrind's own figures (benchbench/measure/callgrind.py)
}


def check_metrics(metrics: Fields) -> None:
    for name, (kind, _) in METRIC_KEYS.items():
        if kind is float:
            metrics.number(name)
        elif kind is dict:
            metrics.obj(name)
        elif kind is list:
            metrics.list(name)
        elif not isinstance(metrics.raw(name), (str, type(None))):
            metrics.str(name)  # raises, naming the field


def check_typed_fields(res: Fields) -> None:
    """A result's typed fields (Result, CaseFields): each absent, null, or of its declared type."""
    for f in typed_fields(Result):
        kind = f.metadata["typed"]
        if kind is int:
            res.number(f.name, minimum=1, integer=True)
        elif kind is dict:
            res.obj(f.name)
        else:
            res.str(f.name)
    if res.raw("imported_stats") is not None:
        imported = res.obj("imported_stats")
        imported.number("n", minimum=1, integer=True, required=True)
        imported.number("median", minimum=0, required=True)
        imported.number("iqr", minimum=0, required=True)
        for name in ("q1", "q3", "mean", "stdev", "min", "max"):
            imported.number(name)


def check_key(key: Fields) -> None:
    """A case key's fields: the strings and scalar parameters that CaseKey.from_dict expects."""
    key.str("suite", required=True)
    key.str("benchmark", required=True)
    key.scalars("params")
    key.str("backend")
    key.str("dtype")
    key.str("mode")


def check_document(doc: Any, source: str = "report") -> dict:
    """Refuse, with one line naming the field, a report document (current schema) that the analysis could
    not trust: wrong types, numbers that are not finite, samples below zero, nesting beyond reason."""
    check_tree(doc, source)
    top = Fields(doc, source)
    for name in ("run_id", "created_at"):
        top.str(name, required=True)
    for name in ("finished_at", "label", "profile", "benchbench_version"):
        top.str(name)
    top.strings("command")
    top.bool("partial")
    env = top.obj("environment")
    env.obj("fingerprint")
    env.obj("facts")
    canary = env.obj("canary")  # the machine's speed at the run's start and end: {"python_loop_s": ...}
    for name in ("start", "end"):
        canary.obj(name)
    for check in env.objects("checks"):
        check.obj("evidence")
        for name in ("id", "verdict", "title", "message", "advice", "detail", "area"):
            if not isinstance(check.raw(name), (str, type(None))):
                check.str(name)  # raises, naming the field
    for b in top.objects("backends"):
        b.str("name", required=True)
        b.bool("available")
        for name in ("device", "device_name", "reason"):
            if not isinstance(b.raw(name), (str, type(None))):
                b.str(name)
    for r in top.objects("rounds"):
        r.obj("canary")
        r.number("round", integer=True)
        r.number("seed", integer=True)
        r.strings("order")
    if top.raw("side") is not None:
        side = top.obj("side")
        side.str("name")
        side.scalars("env")
    for res in top.objects("results"):
        check_key(res.obj("key"))
        status = res.str("status", required=True)
        if status not in STATUSES:
            raise res.fail("status", f"expected one of {', '.join(STATUSES)}, got {status!r}")
        for name in ("reason", "definition_hash", "timing_method", "details"):
            res.str(name)
        res.number("loops_per_sample", minimum=1, integer=True)
        for name in ("first_call_s", "duration_s"):
            res.number(name)
        res.number("peak_memory_bytes", minimum=0)
        res.scalars("warmup")
        res.scalars("work")
        work = res.obj("work")
        for name in ("items", "flops", "bytes"):  # per call: rates divide them by the time
            work.number(name)
        check_metrics(res.obj("metrics"))
        check_typed_fields(res)
        res.strings("flags")
        for i, r in enumerate(res.objects("rounds")):
            r.number("round", integer=True)
            r.number("position", integer=True)
            r.number("loops", minimum=1, integer=True)
            r.numbers("samples", minimum=0)
            if i > 10_000:
                raise r.fail("round", "more than 10000 rounds")
    return doc


def parse(doc: Any, source: str = "report") -> Report:
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ReportError(f"{source}: not a benchbench report (no \"schema\": \"{SCHEMA}\" field)")
    check_tree(doc, source)
    if not isinstance(doc.get("results", []), (list, type(None))) or not all(
            isinstance(r, dict) for r in doc.get("results") or []):
        Fields(doc, source).objects("results")  # raises, naming the entry
    doc = check_document(migrate(doc, source), source)
    try:
        return Report.from_dict(doc)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise ReportError(f"{source}: malformed report: {type(exc).__name__}: {exc}") from None


def load(path: str | os.PathLike) -> Report:
    return parse(read_json(path), str(path))


def report_fact(report: Report, name: str) -> Any:
    """hostname or git_commit, wherever this report's version of the environment put it."""
    facts = report.environment.get("facts") or {}
    for where in (report.fingerprint, facts, facts.get("host") or {}, facts.get("benchbench") or {}):
        if isinstance(where, dict) and where.get(name):
            return where[name]
    return None
