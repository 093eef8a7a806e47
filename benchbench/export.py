"""Formats in and out: pytest-benchmark JSON both ways, any-format loading, comparison renderers.

Renderers take data and return strings; nothing here measures or prints.

pytest-benchmark files map onto benchbench keys as: suite = the benchmark's group (or
"pytest-benchmark"), benchmark = the test name without its parameter id, params = its "params",
backend = a "backend"/"device" parameter naming cpu/cuda/mps/xpu, else "cpu". Their per-round
timings ("data", seconds per call) become samples. `--benchmark-json` always writes them;
`--benchmark-save` only with `--benchmark-save-data`; without them the statistics are imported into
`metrics["imported_stats"]` and the result is flagged `no-samples` (compare then approximates the
interval from median and IQR, and the gate never calls such a change a regression).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from collections import Counter
from typing import Any

from benchbench.canary import drift_lines
from benchbench.compare import (
    VERDICT_HELP,
    Change,
    Comparison,
    Pair,
    Row,
    geomeans,
    summary_of,
    verdict_counts,
)
from benchbench.errors import ReportError
from benchbench.instructions import METHOD as INSTRUCTIONS
from benchbench.render import fmt_per_call
from benchbench.report import SCHEMA, CaseKey, Report, Result, parse, read_json

PB_SUITE = "pytest-benchmark"
_BACKENDS = ("cpu", "cuda", "mps", "xpu")


# --- loading either format --------------------------------------------------------------------------
def is_pytest_benchmark(doc: Any) -> bool:
    return (isinstance(doc, dict) and "schema" not in doc and isinstance(doc.get("benchmarks"), list)
            and ("machine_info" in doc or "version" in doc))


def load_any(path: str | os.PathLike) -> Report:
    """A benchbench report or a pytest-benchmark JSON file, told apart by content."""
    doc = read_json(path)
    if isinstance(doc, dict) and doc.get("schema") == SCHEMA:
        return parse(doc, str(path))
    if is_pytest_benchmark(doc):
        return from_pytest_benchmark(doc, str(path))
    raise ReportError(f"{path}: neither a benchbench report (\"schema\": \"{SCHEMA}\") nor a pytest-benchmark "
                      "JSON file (\"benchmarks\" list)")


# --- pytest-benchmark -> Report ---------------------------------------------------------------------
def _scalar(v: Any) -> Any:
    """Key parameters must be hashable scalars; anything else is kept as its JSON text."""
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return json.dumps(v, sort_keys=True, default=str)


def _pb_backend(params: dict[str, Any]) -> str:
    for name in ("backend", "device"):
        value = params.get(name)
        if isinstance(value, str) and value.split(":")[0] in _BACKENDS:
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


def from_pytest_benchmark(doc: dict[str, Any], source: str = "pytest-benchmark file") -> Report:
    try:
        return _from_pytest_benchmark(doc, source)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
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
            result.metrics["imported_stats"] = {
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


def report_fact(report: Report, name: str) -> Any:
    """hostname or git_commit, wherever this report's version of the environment put it."""
    facts = report.environment.get("facts") or {}
    for where in (report.fingerprint, facts, facts.get("host") or {}, facts.get("benchbench") or {}):
        if isinstance(where, dict) and where.get(name):
            return where[name]
    return None


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
    elif r.metrics.get("imported_stats"):
        imp = r.metrics["imported_stats"]
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


# --- comparison renderers ---------------------------------------------------------------------------
def fmt_median(result: Result | None) -> str:
    s = summary_of(result)
    if s is None:
        return result.status if result is not None else "-"
    return f"{fmt_per_call(s.median, result.timing_method)} ±{100 * s.rel_noise:.1f}%"


def fmt_ratio(change: Change | None) -> str:
    if change is None:
        return "-"
    return f"{change.ratio:.3f} [{change.ci_low:.3f}, {change.ci_high:.3f}]"


def fmt_pct(change: Change | None) -> str:
    if change is None:
        return "-"

    def pct(r: float) -> str:
        return f"{100 * (r - 1):+.1f}%"

    return f"{pct(change.ratio)} [{pct(change.ci_low)}, {pct(change.ci_high)}]"


def fmt_speed(ratio: float) -> str:
    """A time ratio as words: 0.37 -> '2.70x faster'."""
    if ratio <= 0 or not math.isfinite(ratio):
        return "-"
    return f"{1 / ratio:.2f}x faster" if ratio < 1 else f"{ratio:.2f}x slower" if ratio > 1 else "same speed"


def row_note(row: Row) -> str:
    parts = list(row.reasons)
    if row.env:
        parts.append("environment: " + "; ".join(row.env))
        if row.statistical:
            parts.append(f"numbers say {row.statistical}")
    for side, res in (("now", row.other), ("before", row.base)):
        if res is not None and not res.ok and res.reason:
            parts.append(f"{res.status} {side}: {res.reason}")
    parts += row.flags
    return "; ".join(parts)


def case_name(key: CaseKey) -> str:
    return " ".join(p for p in (f"{key.suite}/{key.name}", key.backend, key.dtype, key.mode) if p)


def table_rows(comp: Comparison, pct: bool = False, max_note: int | None = 60) -> list[dict[str, str]]:
    """One row per key, with the base's median and, per other report, its median, ratio and verdict."""
    by_pair = [{row.key: row for row in pair.rows} for pair in comp.pairs]
    rows = []
    for key in comp.keys:
        base = next((m[key].base for m in by_pair if key in m and m[key].base is not None), None)
        out = {"case": case_name(key), comp.base_name: fmt_median(base)}
        notes = []
        for pair, rows_by_key in zip(comp.pairs, by_pair, strict=True):
            row = rows_by_key.get(key)
            suffix = f" ({pair.name})" if len(comp.pairs) > 1 else ""
            out[pair.name] = fmt_median(row.other) if row else "-"
            out[("change" if pct else "ratio") + suffix] = (fmt_pct if pct else fmt_ratio)(row.change if row else None)
            out["verdict" + suffix] = row.verdict if row else "-"
            if row and row_note(row):
                notes.append(row_note(row))
        note = " | ".join(notes)
        if max_note and len(note) > max_note:
            note = note[: max_note - 1] + "…"
        out["note"] = note
        rows.append(out)
    return rows


def _tabulate(rows: list[dict[str, str]], fmt: str) -> str:
    from tabulate import tabulate

    if not rows:
        return "(no results)"
    if not any(r.get("note") for r in rows):
        rows = [{k: v for k, v in r.items() if k != "note"} for r in rows]
    return tabulate(rows, headers="keys", tablefmt=fmt, disable_numparse=True)


def env_lines(comp: Comparison) -> list[str]:
    """Environment differences between the base and each other report, those that matter first."""
    lines = []
    for pair in comp.pairs:
        for k, va, vb, matters in sorted(pair.env_diff, key=lambda d: (not d[3], d[0])):
            mark = "differs (results affected are incomparable)" if matters else "differs"
            lines.append(f"{k}: {_short(va)} ({comp.base_name}) vs {_short(vb)} ({pair.name}) - {mark}")
    timed = any(r.ok and r.timing_method != INSTRUCTIONS for rep in [comp.base] + [p.report for p in comp.pairs]
                for r in rep.results)
    if timed:  # a busy or throttled machine does not change instruction counts
        lines += drift_lines(comp.base_name, comp.base.environment, [(p.name, p.report.environment) for p in comp.pairs])
    for name, rep in [(comp.base_name, comp.base)] + [(p.name, p.report) for p in comp.pairs]:
        if rep.partial:
            lines.append(f"{name} is a partial report (the run was interrupted)")
    return lines


def _short(v: Any, width: int = 60) -> str:
    text = json.dumps(v, sort_keys=True, default=str) if isinstance(v, (dict, list)) else str(v)
    return text if len(text) <= width else text[: width - 1] + "…"


def geomean_lines(pair: Pair, base_name: str) -> list[str]:
    gms = geomeans(pair.rows)
    if not gms:
        return [f"{pair.name} vs {base_name}: no case measured on both sides"]
    overall = gms.pop(None)
    lines = [f"{pair.name} vs {base_name}: geometric mean time ratio {overall.ratio:.3f} "
             f"({fmt_speed(overall.ratio)}) over {_cases(overall.n)}"]
    if len(gms) > 1:
        lines += [f"  {suite}: {g.ratio:.3f} ({fmt_speed(g.ratio)}), {_cases(g.n)}" for suite, g in sorted(gms.items())]
    return lines


def markdown_list(lines: list[str]) -> list[str]:
    """Text lines, indented ones nested one level, as a Markdown list."""
    return [("  - " + line.lstrip()) if line.startswith(" ") else "- " + line for line in lines]


def _cases(n: int) -> str:
    return f"{n} case" if n == 1 else f"{n} cases"


def comparison_text(comp: Comparison, fmt: str = "simple") -> str:
    """The terminal table (fmt="simple") or Markdown (fmt="github"), with environment and geometric means."""
    md = fmt == "github"
    out = []
    env = env_lines(comp)
    if env:
        out.append("Environment differences:" if not md else "**Environment differences**")
        out += [("- " if md else "  ") + line for line in env]
        out.append("")
    out.append(_tabulate(table_rows(comp, max_note=None if md else 60), fmt))
    out.append("")
    for pair in comp.pairs:
        lines = geomean_lines(pair, comp.base_name)
        out += markdown_list(lines) if md else lines
        counts = verdict_counts(pair.rows)
        out.append(("- " if md else "") + f"{pair.name}: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    c = comp.criteria
    out.append("")
    out.append(f"ratio = median time {'/'.join(p.name for p in comp.pairs)} / {comp.base_name} with its "
               f"{100 * c.level:g}% bootstrap interval; below 1 is faster. slower/faster: Mann-Whitney p < "
               f"{c.alpha:g}, the interval beyond ±{100 * c.threshold:g}% and the change beyond the noise.")
    return "\n".join(out)


RECORD_FIELDS = ["suite", "benchmark", "params", "backend", "dtype", "mode", "base", "other", "base_status",
                 "other_status", "base_median_s", "base_iqr_s", "base_n", "other_median_s", "other_iqr_s", "other_n",
                 "ratio", "ratio_ci_low", "ratio_ci_high", "ci_level", "p_value", "noise", "verdict", "statistical",
                 "reasons", "flags"]


def comparison_records(comp: Comparison) -> list[dict[str, Any]]:
    """Flat records, one per key and compared report, with raw numbers (seconds, ratios)."""
    recs = []
    for pair in comp.pairs:
        for row in pair.rows:
            sa, sb, ch = summary_of(row.base), summary_of(row.other), row.change
            recs.append({
                "suite": row.key.suite, "benchmark": row.key.benchmark, "params": row.key.params_label,
                "backend": row.key.backend, "dtype": row.key.dtype, "mode": row.key.mode,
                "base": comp.base_name, "other": pair.name,
                "base_status": row.base.status if row.base else None,
                "other_status": row.other.status if row.other else None,
                "base_median_s": sa.median if sa else None, "base_iqr_s": sa.iqr if sa else None,
                "base_n": sa.n if sa else None,
                "other_median_s": sb.median if sb else None, "other_iqr_s": sb.iqr if sb else None,
                "other_n": sb.n if sb else None,
                "ratio": ch.ratio if ch else None, "ratio_ci_low": ch.ci_low if ch else None,
                "ratio_ci_high": ch.ci_high if ch else None, "ci_level": ch.level if ch else None,
                "p_value": ch.p_value if ch else None, "noise": ch.noise if ch else None,
                "verdict": row.verdict, "statistical": row.statistical,
                "reasons": "; ".join(row.reasons + row.env), "flags": ";".join(row.flags),
            })
    return recs


def comparison_csv(comp: Comparison) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=RECORD_FIELDS, lineterminator="\n")
    w.writeheader()
    for rec in comparison_records(comp):
        w.writerow({k: "" if v is None else v for k, v in rec.items()})
    return buf.getvalue()


def comparison_doc(comp: Comparison) -> dict[str, Any]:
    """The comparison as plain JSON-able data (what `--format json` prints)."""
    c = comp.criteria
    return {
        "base": comp.base_name,
        "others": [p.name for p in comp.pairs],
        "criteria": {"threshold": c.threshold, "alpha": c.alpha, "ci_level": c.level, "n_boot": c.n_boot},
        "environment_differences": {p.name: [{"key": k, "base": a, "other": b, "matters": m}
                                             for k, a, b, m in p.env_diff] for p in comp.pairs},
        "geomeans": {p.name: {(s if s is not None else "overall"): {"ratio": g.ratio, "speedup": g.speedup, "n": g.n}
                              for s, g in geomeans(p.rows).items()} for p in comp.pairs},
        "verdicts": {p.name: verdict_counts(p.rows) for p in comp.pairs},
        "verdict_help": VERDICT_HELP,
        "rows": comparison_records(comp),
    }


def comparison_json(comp: Comparison) -> str:
    return json.dumps(comparison_doc(comp), indent=1, default=str)
