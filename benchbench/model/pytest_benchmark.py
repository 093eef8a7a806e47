"""pytest-benchmark interop: its JSON files read as benchbench reports, and reports written as its files.

pytest-benchmark files map onto benchbench keys as: suite = the benchmark's group (or
"pytest-benchmark"), benchmark = the test name without its parameter id, params = its "params",
backend = a "backend"/"device" parameter naming cpu/cuda/mps/xpu, else "cpu". Their per-round
timings ("data", seconds per call) become samples. `--benchmark-json` always writes them;
`--benchmark-save` only with `--benchmark-save-data`; without them the statistics are imported into
the result's `imported_stats` and the result is flagged `no-samples` (compare then approximates the
interval from median and IQR, and the gate never calls such a change a regression).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from benchbench.errors import ReportError
from benchbench.kinds import KNOWN
from benchbench.model.report import CaseKey, Report, Result, check_key, report_fact
from benchbench.model.validation import Fields, check_tree

PB_SUITE = "pytest-benchmark"


def is_pytest_benchmark(doc: Any) -> bool:
    """A pytest-benchmark JSON document (as opposed to a benchbench report), told apart by content."""
    return (isinstance(doc, dict) and "schema" not in doc and isinstance(doc.get("benchmarks"), list)
            and ("machine_info" in doc or "version" in doc))


# --- pytest-benchmark -> Report ---------------------------------------------------------------------
def _scalar(v: Any) -> Any:
    """Key parameters must be hashable scalars; anything else is kept as its JSON text."""
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return json.dumps(v, sort_keys=True, default=str)


def _pb_backend(params: dict[str, Any]) -> str:
    for name in ("backend", "device"):
        value = params.get(name)
        if isinstance(value, str) and value.split(":")[0] in KNOWN:
            return value.split(":")[0]
    return "cpu"


def _pb_key(bench: dict[str, Any], qualified: bool) -> CaseKey:
    saved = (bench.get("extra_info") or {}).get("benchbench") or {}
    if isinstance(saved.get("key"), dict):  # written by to_pytest_benchmark: the exact key
        return CaseKey.from_dict(saved["key"])
    params = {str(k): _scalar(v) for k, v in (bench.get("params") or {}).items()}
    name = bench["fullname"] if qualified else bench["name"]
    if params:
        name = name.split("[", 1)[0]
    return CaseKey.make(bench.get("group") or PB_SUITE, name, params, _pb_backend(params))


# statistics pytest-benchmark may write as Infinity/NaN (e.g. ops of a zero mean) and benchbench never reads
_UNUSED_STATS = frozenset({"ops", "total", "outliers", "ld15iqr", "hd15iqr", "iqr_outliers", "stddev_outliers"})


def _nonfinite_allowed(path: tuple[Any, ...]) -> bool:
    return len(path) == 4 and path[0] == "benchmarks" and path[2] == "stats" and path[3] in _UNUSED_STATS


def check_document(doc: Any, source: str) -> None:
    """Refuse, with one line naming the field, a pytest-benchmark document whose fields have the wrong
    types or whose timings are not finite numbers."""
    check_tree(doc, source, _nonfinite_allowed)
    top = Fields(doc, source)
    top.str("datetime")
    if not isinstance(top.raw("version"), (str, type(None))):
        top.str("version")
    machine = top.obj("machine_info")
    for name in ("python_version", "system", "release", "node"):
        machine.str(name)
    if isinstance(machine.raw("cpu"), dict):
        machine.obj("cpu").str("brand_raw")
    else:
        machine.str("cpu")
    saved = machine.obj("benchbench")
    saved.obj("fingerprint")
    for name in ("run_id", "label", "benchbench_version"):
        saved.str(name)
    commit = top.obj("commit_info")
    for name in ("id", "branch"):
        commit.str(name)
    commit.bool("dirty")
    for b in top.objects("benchmarks"):
        b.str("name", required=True)
        b.str("fullname")
        b.str("group")
        b.obj("params")
        extra = b.obj("extra_info").obj("benchbench")
        if extra.raw("key") is not None:
            check_key(extra.obj("key"))
        extra.str("definition_hash")
        extra.str("timing_method")
        extra.strings("flags")
        b.obj("options").str("timer")
        b.raw("stats", required=True)
        stats = b.obj("stats")
        stats.number("iterations", minimum=1, integer=True)
        if stats.numbers("data", minimum=0):
            continue
        stats.number("rounds", minimum=1, integer=True, required=True)
        stats.number("median", minimum=0, required=True)
        stats.number("iqr", minimum=0, required=True)
        for name in ("q1", "q3", "mean", "stddev", "min", "max"):
            stats.number(name)


def from_pytest_benchmark(doc: dict[str, Any], source: str = "pytest-benchmark file") -> Report:
    check_document(doc, source)
    try:
        return _from_pytest_benchmark(doc, source)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise ReportError(f"{source}: malformed pytest-benchmark file: {type(exc).__name__}: {exc}") from None


def _from_pytest_benchmark(doc: dict[str, Any], source: str) -> Report:
    benches = doc["benchmarks"]
    machine = doc.get("machine_info") or {}
    commit = doc.get("commit_info") or {}
    # Two tests of the same name in different files: tell them apart by their full name.
    names = Counter((b.get("group"), b["name"]) for b in benches)
    results = []
    for b in benches:
        stats = b["stats"]
        key = _pb_key(b, names[(b.get("group"), b["name"])] > 1)
        saved = (b.get("extra_info") or {}).get("benchbench") or {}
        data = [float(x) for x in stats.get("data") or []]
        result = Result(key=key, status="ok", definition_hash=saved.get("definition_hash"),
                        timing_method=saved.get("timing_method") or (b.get("options") or {}).get("timer"),
                        samples=data, loops_per_sample=int(stats.get("iterations") or 1),
                        flags=list(saved.get("flags") or []))
        if not data:
            result.imported_stats = {
                "n": int(stats["rounds"]), "median": float(stats["median"]), "iqr": float(stats["iqr"]),
                "q1": stats.get("q1"), "q3": stats.get("q3"), "mean": stats.get("mean"),
                "stdev": stats.get("stddev"), "min": stats.get("min"), "max": stats.get("max")}
            result.flags.append("no-samples")
        results.append(result)
    keys = [r.key for r in results]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"two benchmarks map to the same key {dup.label}")
    saved_env = machine.get("benchbench") or {}
    cpu = machine.get("cpu")
    fingerprint = saved_env.get("fingerprint") or {  # keys as in benchbench.environment's fingerprint
        "cpu": cpu.get("brand_raw") if isinstance(cpu, dict) else cpu,
        "python": machine.get("python_version"),
        "os": f"{machine.get('system', '')} {machine.get('release', '')}".strip() or None,
        "hostname": machine.get("node"),
    }
    created = str(doc.get("datetime") or "")
    run_id = saved_env.get("run_id") or "pb-" + hashlib.sha256(
        f"{created}|{machine.get('node')}|{source}".encode()).hexdigest()[:12]
    return Report(
        run_id=run_id, created_at=created, label=saved_env.get("label"), command=[], profile=None,
        benchbench_version=str(saved_env.get("benchbench_version") or ""),
        environment={"fingerprint": fingerprint,
                     "facts": {"source": f"pytest-benchmark {doc.get('version', '?')}", "hostname": machine.get("node"),
                               "git_commit": commit.get("id"), "git_branch": commit.get("branch"),
                               "git_dirty": commit.get("dirty")},
                     "checks": []},
        backends=[{"name": n, "available": True} for n in sorted({k.backend for k in keys})],
        results=results,
    )


# --- Report -> pytest-benchmark ---------------------------------------------------------------------
def _pb_stats(samples: list[float]) -> dict[str, Any]:
    from pytest_benchmark.stats import Stats  # its own quartile and outlier definitions

    st = Stats()
    for x in samples:
        st.update(x)
    return st.as_dict()


def _pb_entry(r: Result) -> dict[str, Any] | None:
    k = r.key
    if r.samples:
        stats = _pb_stats(r.samples)
        stats["data"] = list(r.samples)
    elif r.imported_stats:
        imp = r.imported_stats
        stats = {"min": imp.get("min"), "max": imp.get("max"), "mean": imp.get("mean"), "stddev": imp.get("stdev"),
                 "rounds": imp["n"], "median": imp["median"], "iqr": imp["iqr"], "q1": imp.get("q1"),
                 "q3": imp.get("q3"), "iqr_outliers": 0, "stddev_outliers": 0, "outliers": "0;0",
                 "ld15iqr": imp.get("min"), "hd15iqr": imp.get("max"),
                 "ops": 1 / imp["mean"] if imp.get("mean") else 0, "total": (imp.get("mean") or 0) * imp["n"]}
    else:
        return None
    stats["iterations"] = r.loops_per_sample
    axes = [("backend", k.backend), ("dtype", k.dtype), ("mode", k.mode)]
    params = {**k.params_dict, **{n: v for n, v in axes if v is not None}}
    param_id = "-".join([f"{n}={v}" for n, v in k.params] + [str(v) for _, v in axes if v is not None])
    name = f"{k.benchmark}[{param_id}]"
    return {
        "group": k.suite, "name": name, "fullname": f"{k.suite}::{name}", "params": params, "param": param_id,
        "extra_info": {**r.derived(), "benchbench": {"key": k.to_dict(), "definition_hash": r.definition_hash,
                                                     "timing_method": r.timing_method, "flags": r.flags}},
        "options": {"disable_gc": False, "timer": r.timing_method or "perf_counter", "min_rounds": len(r.samples),
                    "max_time": None, "min_time": None, "warmup": bool(r.warmup.get("calls"))},
        "stats": stats,
    }


def to_pytest_benchmark(report: Report) -> dict[str, Any]:
    """A pytest-benchmark JSON document (what `--benchmark-json` writes), readable by `pytest-benchmark compare`.

    Only results with timings are written: pytest-benchmark files have no place for failed or
    skipped cases. The benchbench key, definition hash and fingerprint ride along in extra_info and
    machine_info, so reading the file back gives the same keys and stays comparable.
    """
    import platform

    try:
        from pytest_benchmark import __version__ as pb_version
    except ImportError:  # pragma: no cover - a declared dependency
        pb_version = "5.0.0"
    fp = report.fingerprint
    os_name = str(fp.get("os") or f"{platform.system()} {platform.release()}")
    system, _, release = os_name.partition(" ")
    benchmarks = [e for e in (_pb_entry(r) for r in sorted(report.results, key=lambda r: r.key.sort_key())
                              if r.ok) if e is not None]
    return {
        "machine_info": {
            "node": report_fact(report, "hostname") or "", "processor": "", "machine": platform.machine(),
            "python_implementation": platform.python_implementation(),
            "python_version": str(fp.get("python") or platform.python_version()),
            "system": system, "release": release, "cpu": {"brand_raw": fp.get("cpu") or ""},
            "benchbench": {"fingerprint": fp, "run_id": report.run_id, "label": report.label,
                           "benchbench_version": report.benchbench_version},
        },
        "commit_info": {"id": report_fact(report, "git_commit"), "time": None, "author_time": None, "dirty": None,
                        "project": "benchbench", "branch": None},
        "benchmarks": benchmarks,
        "datetime": report.created_at,
        "version": pb_version,
    }


def pytest_benchmark_json(report: Report) -> str:
    return json.dumps(to_pytest_benchmark(report), indent=1, allow_nan=False,
                      default=lambda o: o.item() if hasattr(o, "item") else str(o))


