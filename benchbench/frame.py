"""pandas views of reports and comparisons, for notebooks. pandas is imported only here.

    import benchbench
    from benchbench.frame import compare_frame, report_frame
    df = report_frame(benchbench.load("reports/a.json"))  # one row per result
    cf = compare_frame("a.json", "b.json", "c.json")      # one row per key and report compared with a.json
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from benchbench.analysis.compare import Comparison, Criteria, compare
from benchbench.model.formats import load_any
from benchbench.model.report import Report
from benchbench.output.comparison import RECORD_FIELDS, comparison_records

REPORT_COLUMNS = ["suite", "benchmark", "params", "backend", "dtype", "mode", "status", "reason", "n", "median_s",
                  "iqr_s", "ci_low_s", "ci_high_s", "mean_s", "min_s", "max_s", "rel_spread", "items_per_s",
                  "flops_per_s", "bytes_per_s", "peak_memory_bytes", "timing_method", "flags"]


def report_frame(report: Report) -> pd.DataFrame:
    """One row per result: key columns, status, statistics in seconds, derived rates, and one `param_NAME`
    column per benchmark parameter. Results without raw samples (imported pytest-benchmark statistics)
    fill median/IQR/n from those statistics."""
    records = []
    for r in sorted(report.results, key=lambda r: r.key.sort_key()):
        st = r.stats
        imported = r.imported_stats or {}
        d = r.derived()
        rec: dict[str, Any] = {
            "suite": r.key.suite, "benchmark": r.key.benchmark, "params": r.key.params_label,
            "backend": r.key.backend, "dtype": r.key.dtype, "mode": r.key.mode, "status": r.status,
            "reason": r.reason,
            "n": st.n if st else imported.get("n"),
            "median_s": st.median if st else imported.get("median"),
            "iqr_s": st.iqr if st else imported.get("iqr"),
            "ci_low_s": st.ci_low if st else None, "ci_high_s": st.ci_high if st else None,
            "mean_s": st.mean if st else imported.get("mean"),
            "min_s": st.min if st else imported.get("min"), "max_s": st.max if st else imported.get("max"),
            "rel_spread": st.rel_spread if st else None,
            "items_per_s": d.get("items_per_s"), "flops_per_s": d.get("flops_per_s"),
            "bytes_per_s": d.get("bytes_per_s"), "peak_memory_bytes": r.peak_memory_bytes,
            "timing_method": r.timing_method, "flags": ";".join(r.flags),
        }
        for name, value in r.key.params:
            rec[f"param_{name}"] = value
        records.append(rec)
    df = pd.DataFrame.from_records(records)
    if df.empty:
        return pd.DataFrame(columns=REPORT_COLUMNS)
    for col in ("n", "median_s", "iqr_s", "ci_low_s", "ci_high_s", "mean_s", "min_s", "max_s", "rel_spread",
                "items_per_s", "flops_per_s", "bytes_per_s", "peak_memory_bytes"):
        df[col] = pd.to_numeric(df[col])
    return df


def samples_frame(report: Report) -> pd.DataFrame:
    """Long format, one row per raw sample (seconds per call): for distribution plots."""
    records = [{"suite": r.key.suite, "benchmark": r.key.benchmark, "params": r.key.params_label,
                "backend": r.key.backend, "dtype": r.key.dtype, "mode": r.key.mode, "sample": i, "seconds": x}
               for r in sorted(report.results, key=lambda r: r.key.sort_key()) for i, x in enumerate(r.samples)]
    return pd.DataFrame.from_records(records, columns=["suite", "benchmark", "params", "backend", "dtype", "mode",
                                                       "sample", "seconds"])


def comparison_frame(comp: Comparison) -> pd.DataFrame:
    """One row per key and compared report: both medians, the ratio with its interval, p-value, verdict."""
    df = pd.DataFrame.from_records(comparison_records(comp), columns=RECORD_FIELDS)
    numeric = ["base_median_s", "base_iqr_s", "base_n", "other_median_s", "other_iqr_s", "other_n", "ratio",
               "ratio_ci_low", "ratio_ci_high", "ci_level", "p_value", "noise", "df", "mde"]
    for col in numeric:
        df[col] = pd.to_numeric(df[col])
    return df


def compare_frame(*reports: Report | str | os.PathLike, threshold: float = 0.05, alpha: float = 0.05) -> pd.DataFrame:
    """Compare reports (objects or paths to benchbench or pytest-benchmark files) against the first."""
    loaded = [r if isinstance(r, Report) else load_any(r) for r in reports]
    hints = [None if isinstance(r, Report) else Path(r).stem for r in reports]
    return comparison_frame(compare(loaded, hints, Criteria(threshold=threshold, alpha=alpha)))
