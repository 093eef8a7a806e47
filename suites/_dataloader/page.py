"""The dataloader suite's part of the report page: throughput against num_workers, one line per benchmark
and its other parameters, with the recommended setting starred."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from benchbench.model.report import CaseKey, Result
from benchbench.page import Block, Heading, Lines, Run, case_label


def recommendation_of(result: Result) -> Any:
    """The recommendation `derive` put on a result (on the recommended setting's result only)."""
    return result.recommendation


def recommendation(results: Iterable[Result]) -> dict[str, Any] | None:
    """The recommendation some result carries, with the key of that result as `_on`."""
    for r in results:
        rec = recommendation_of(r)
        if isinstance(rec, dict) and isinstance(rec.get("num_workers"), int):
            return {**rec, "_on": r.key}
    return None


def recommended(rec: dict[str, Any], key: CaseKey) -> bool:
    """Is this case the recommended setting? By its name when the recommendation gives one (`label`),
    else by num_workers and whichever other parameters the recommendation names."""
    if isinstance(rec.get("label"), str) and rec["label"]:
        return rec["label"] == key.name
    params = key.params_dict
    return params.get("num_workers") == rec["num_workers"] and all(
        params[n] == rec[n] for n in params if n in rec and n != "num_workers")


def page_blocks(runs: Sequence[Run], backend: bool) -> list[Block]:
    """Throughput against num_workers per report: a line per benchmark and its other parameters (those
    measured at more than one num_workers), the recommended setting starred."""
    keys = sorted({k for run in runs for k in run.results}, key=CaseKey.sort_key)
    swept = [k for k in keys if "num_workers" in k.params_dict and isinstance(k.params_dict["num_workers"], int)]
    groups: dict[tuple, list[CaseKey]] = {}
    for k in swept:
        rest = tuple((n, v) for n, v in k.params if n != "num_workers")
        groups.setdefault((k.benchmark, rest, k.backend, k.dtype, k.mode), []).append(k)
    groups = {g: ks for g, ks in groups.items() if len({k.params_dict["num_workers"] for k in ks}) > 1}
    blocks: list[Block] = []
    for run in runs:
        if not any(r.ok for k in swept if (r := run.results.get(k)) is not None):
            continue
        rec = recommendation(run.results.values())
        series, marks = [], []
        for (bench, rest, *_), ks in groups.items():
            points = []
            for k in ks:
                r, x = run.results.get(k), float(k.params_dict["num_workers"])
                points.append((x, case_label(k), r))
                if rec and r is not None and r.ok and recommended(rec, k):
                    marks.append((x, r, "recommended" + (f": {rec['setting']}" if rec.get("setting") else "")
                                  + (f" ({rec['speedup']:.2f}x the default)"
                                     if isinstance(rec.get("speedup"), (int, float)) else "")))
            series.append((bench + (f"[{','.join(f'{n}={v}' for n, v in rest)}]" if rest else ""), points))
        caption = ((f"{run.name}: " if len(runs) > 1 else "") + "throughput at the median with its interval"
                   + ("; the star marks the recommended setting." if marks else "; no recommendation in this report."))
        blocks.append(Lines(series, "num_workers", caption, marks))
    return [Heading("Throughput against num_workers"), *blocks] if blocks else []

