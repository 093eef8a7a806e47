"""`benchbench history`: series and change points as console / Markdown tables, JSON, and an HTML page."""

from __future__ import annotations

import json
from typing import Any

from tabulate import tabulate

from benchbench import metrics
from benchbench.analysis.history import CODE_OR_UNKNOWN, ENVIRONMENT_CHANGE, Change, History, Series
from benchbench.output.safe_text import md_code
from benchbench.output.units import fmt_value

STATUSES = ("failed", "timeout", "skipped", "missing")


def _run_text(run: Any, index: int | None = None, previous: Any = None) -> str:
    """A run as `run 5 <time> <label> <id> commit <sha>`; with the run before, the commit range to bisect."""
    parts = [f"run {index}" if index is not None else "", run.created_at, run.label or "", run.run_id]
    if run.git_commit and previous is not None and previous.git_commit and previous.git_commit != run.git_commit:
        parts.append(f"commits {previous.git_commit[:10]}..{run.git_commit[:10]}")
    elif run.git_commit:
        parts.append(f"commit {run.git_commit[:10]}")
    return " ".join(p for p in parts if p)


def series_name(s: Series) -> str:
    """The case, and the metric when it is not the time: `ops/matmul[n=8] cpu (peak memory)`."""
    return s.key.label + ("" if s.metric == metrics.TIME.name else f" ({metrics.get(s.metric).title})")


def _step_text(c: Change, metric: str = "time") -> str:
    if metric == metrics.TIME.name:
        direction = "slower" if c.ratio > 1 else "faster"
    else:
        direction = "up" if c.ratio > 1 else "down"
    return f"x{c.ratio:.3f} [{c.ratio_low:.3f}, {c.ratio_high:.3f}] ({abs(c.ratio - 1):.1%} {direction})"


def _value(v: Any) -> str:
    return "-" if v is None else str(v)


def env_text(c: Change, limit: int = 4) -> str:
    """The environment keys that changed near a change point, those that matter first."""
    items = sorted(c.environment, key=lambda e: not e.matters)
    text = [f"{e.key}: {_value(e.before)} -> {_value(e.after)}" for e in items[:limit]]
    if len(items) > limit:
        text.append(f"+{len(items) - limit} more")
    return "; ".join(text)


def run_number(history: History, run_id: str) -> int | None:
    """1-based position of a run in the history (ordered by created_at)."""
    return next((i for i, r in enumerate(history.runs, 1) if r.run_id == run_id), None)


def _counts(s: Series) -> str:
    found = [f"{sum(p.status == st for p in s.points)} {st}" for st in STATUSES
             if any(p.status == st for p in s.points)]
    return f"{len(s.ok_points)}/{len(s.points)}" + (f" ({', '.join(found)})" if found else "")


def series_rows(history: History) -> list[dict[str, Any]]:
    rows = []
    for s in history.series:
        ok = s.ok_points
        rows.append({
            "benchmark": series_name(s),
            "machine": s.machine,
            "runs ok": _counts(s),
            "first": fmt_value(ok[0].median, metrics.get(s.metric).unit) if ok else "-",
            "latest": fmt_value(ok[-1].median, metrics.get(s.metric).unit) if ok else "-",
            "change points": len(s.changes) if s.note is None else s.note,
        })
    return rows


def change_rows(history: History) -> list[dict[str, Any]]:
    rows = []
    for s, c in history.changes:
        rows.append({
            "benchmark": series_name(s),
            "machine": s.machine,
            "from": _run_text(c.run, run_number(history, c.run.run_id), c.previous),
            "step (after/before)": _step_text(c, s.metric),
            "p": f"{c.pvalue:.1e}",
            "cause": c.cause + (f" ({', '.join(c.keys)})" if c.cause == ENVIRONMENT_CHANGE else ""),
            "environment": env_text(c),
        })
    return rows


def bisect_command(s: Series, c: Change) -> str | None:
    """The `benchbench bisect` command line for a slowdown between two commits (none for an environment
    change, a speed-up, or runs that do not name their commits)."""
    import re
    import shlex

    before, after = c.previous.git_commit, c.run.git_commit
    if c.ratio <= 1 or c.cause != CODE_OR_UNKNOWN or not before or not after or before == after:
        return None
    return (f"benchbench bisect {before[:12]} {after[:12]} --suite {shlex.quote(s.key.suite)} "
            f"--backend {shlex.quote(s.key.backend)} --filter {shlex.quote('^' + re.escape(s.key.label) + '$')}")


def bisect_lines(history: History) -> list[str]:
    return [f"{s.key.label} ({s.machine}): {cmd}" for s, c in history.changes if (cmd := bisect_command(s, c))]


def history_text(history: History, fmt: str = "simple") -> str:
    """Console (`simple`) or Markdown (`github`) text: a summary, the series, then the change points."""
    md = fmt == "github"
    s = history.settings
    head = (f"{len(history.runs)} runs, {len(history.series)} series, {len(history.changes)} change points "
            f"({s.get('method')}, p <= {s.get('max_pvalue')}, at least {s.get('min_size')} runs per level)")
    out = [f"## History of {history.folder}\n\n{head}\n" if md else head + "\n"]
    out.append(tabulate(series_rows(history), headers="keys", tablefmt=fmt) if history.series
               else "no results matched")
    rows = change_rows(history)
    out.append("\n### Change points\n" if md else "\nchange points:" )
    out.append(tabulate(rows, headers="keys", tablefmt=fmt) if rows else "none")
    found = bisect_lines(history)
    if found:  # a slowdown between two known commits: which commit did it?
        out.append("\n### Find the commit\n" if md else "\nfind the commit (each step an ab against the older one):")
        out += [f"- {md_code(line)}" if md else f"  {line}" for line in found]
    if history.skipped:
        out.append("\n### Not read\n" if md else "\nnot read:")
        out += [f"- {note}" for note in history.skipped]
    return "\n".join(out) + "\n"


def history_json(history: History) -> str:
    doc = history.to_dict()
    doc["bisect"] = [{"benchmark": s.key.label, "machine": s.machine, "command": cmd}
                     for s, c in history.changes if (cmd := bisect_command(s, c))]
    return json.dumps(doc, indent=1, allow_nan=False, default=str) + "\n"


def trend_svg(history: History, s: Series) -> str:
    """One series over the runs: medians with their intervals, failed/missing runs as marks at the
    bottom, each change point a vertical line with the step's size."""
    from benchbench.output import html

    fig, ax = html.figure(7.0, 2.2)
    index = {r.run_id: i for i, r in enumerate(history.runs, 1)}
    ok = s.ok_points
    if ok:
        xs = [index[p.run.run_id] for p in ok]
        ys = [p.median for p in ok]
        unit = max(ys)
        scale, name = next(((f, u) for f, u in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns"))
                            if unit >= f), (1e-9, "ns"))
        if metrics.get(s.metric).unit == "bytes":
            scale, name = 2.0**20, "MiB"
        elif metrics.get(s.metric).unit == "per_second":
            scale, name = 1.0, "per s"
        lo = [(p.median - (p.ci_low if p.ci_low is not None else p.median)) / scale for p in ok]
        hi = [((p.ci_high if p.ci_high is not None else p.median) - p.median) / scale for p in ok]
        ax.errorbar(xs, [y / scale for y in ys], yerr=[lo, hi], fmt="o-", ms=2.5, lw=0.8, elinewidth=0.6,
                    color=html.PALETTE[0])
        ax.set_ylabel(f"median ({name})")
    bad = [p for p in s.points if p.status != "ok"]
    if bad:
        y0 = ax.get_ylim()[0]
        for status in STATUSES:
            marks = [index[p.run.run_id] for p in bad if p.status == status]
            if marks:
                ax.plot(marks, [y0] * len(marks), "x", ms=5, color=html.STATUS_COLOURS[status], label=status,
                        clip_on=False)
        ax.legend(loc="upper left", frameon=False, fontsize=7.5)
    for c in s.changes:
        x = index[c.run.run_id] - 0.5
        colour = html.STATUS_COLOURS["warn" if c.cause == ENVIRONMENT_CHANGE else "regression"]
        ax.axvline(x, color=colour, lw=1.2, ls="--")
        ax.annotate(f"x{c.ratio:.3f}" + (" env" if c.cause == ENVIRONMENT_CHANGE else ""), (x, 1), xytext=(3, -9),
                    xycoords=("data", "axes fraction"), textcoords="offset points", color=colour, fontsize=7.5)
    ax.set_xlim(0.5, max(len(history.runs), 1) + 0.5)
    ax.set_xlabel("run (ordered by time)")
    return html.svg(fig)


def history_html(history: History) -> str:
    """A self-contained page: the change points, then one trend chart per series."""
    from benchbench.output import html

    s = history.settings
    changes = html.table(change_rows(history), empty="no change points")
    charts = []
    for series in history.series:
        caption = f"{series.machine}; runs ok {_counts(series)}" + (f"; {series.note}" if series.note else "")
        charts.append(f"<h3>{html.esc(series_name(series))}</h3>" + html.chart(trend_svg(history, series), caption))
    runs = html.table([{"#": i, "created": r.created_at, "label": r.label or "", "run": r.run_id,
                        "commit": (r.git_commit or "")[:10], "source": r.source}
                       for i, r in enumerate(history.runs, 1)], numeric=["#"])
    sections = [
        html.Section("Change points", changes + f'<p class="note">{html.esc(s.get("method"))}, p &lt;= '
                     f'{html.esc(s.get("max_pvalue"))}, at least {html.esc(s.get("min_size"))} runs per level; '
                     "a step within "
                     f'{html.esc(s.get("nearby_runs"))} runs of an environment change is labelled as one.</p>'),
        html.Section("Trends", "".join(charts) or '<p class="note">no results</p>'),
        html.Section("Runs", runs + "".join(f'<p class="note">not read: {html.esc(n)}</p>' for n in history.skipped)),
    ]
    subtitle = f"{len(history.runs)} runs, {len(history.series)} series, {len(history.changes)} change points"
    return html.page(f"benchbench history: {history.folder}", sections, {"history": history.to_dict()}, subtitle)
