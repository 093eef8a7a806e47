"""The report page (`benchbench report --html`): one or more reports, and optionally their comparison
and a gate decision, as one self-contained HTML file.

Top: the runs, the gate's verdict (when there is one), the machine, which backends ran, the
environment checks with their verdicts, and the comparison summary (geometric means). Then one
section per suite: throughput bars with their intervals (grouped per report when there are
several), % of the measured ceiling (tensor ops), what the suite itself contributes (benchbench/page.py:
e.g. eager vs compiled in training, throughput against `num_workers` in dataloader), and a table of
every case. Failed,
skipped, timed-out and missing cases are shown as such in the charts and tables, never dropped.
Takes data (reports, a Comparison, a GateResult), returns a string; decides and measures nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchbench import page
from benchbench._version import __version__
from benchbench.analysis.ceilings import ceiling_fraction
from benchbench.analysis.compare import Comparison, Row, geomeans, summary_of, verdict_counts
from benchbench.analysis.gate import GateResult
from benchbench.environment.checks import VERDICTS
from benchbench.model.report import CaseKey, Report, Result, report_fact
from benchbench.output import html
from benchbench.output.charts import Bar, Entry, bars, forest, lines
from benchbench.output.comparison import env_lines, fmt_median, fmt_pct, metric_table_rows, quantity
from benchbench.output.gate import headline, policy_text
from benchbench.output.html import Raw, Section, badge, esc
from benchbench.output.percentiles import percentile_table
from benchbench.output.units import fmt_si, fmt_speed, fmt_time
from benchbench.page import case_label

MACHINE_KEYS = ("cpu", "cuda_device", "mps_device", "xpu_device", "gpu_count", "driver_version", "power_limit_w",
                "torch", "cuda", "hip", "python", "os", "threads", "usable_cpus", "float32_matmul_precision",
                "hostname")
_WORK_UNITS = {"flops": "FLOP/s", "bytes": "B/s"}


# --- numbers from results -------------------------------------------------------------------------
@dataclass(frozen=True)
class Rate:
    """Work per second at the median time, with the interval from the median's confidence interval."""

    value: float
    low: float | None
    high: float | None
    unit: str


def rate(result: Result | None, prefer: Sequence[str] = ("flops", "bytes", "items")) -> Rate | None:
    """The result's throughput in the first declared kind of work of `prefer` (calls/s without any)."""
    s = summary_of(result)
    if result is None or s is None or s.median <= 0:
        return None
    kind = next((k for k in prefer if result.work.get(k)), None)
    amount = float(result.work[kind]) if kind else 1.0
    unit = _WORK_UNITS.get(kind or "", f"{result.work.get('items_unit', 'items')}/s" if kind == "items" else "calls/s")
    st = result.stats
    low = amount / st.ci_high if st is not None and st.ci_high > 0 else None
    high = amount / st.ci_low if st is not None and st.ci_low > 0 else None
    return Rate(amount / s.median, low, high, unit)


def _status(result: Result | None) -> str:
    return "missing" if result is None else result.status


def _scale(values: Sequence[float], unit: str) -> tuple[float, str]:
    top = max(values)
    for prefix, factor in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if top >= factor:
            return factor, prefix + unit
    return 1.0, unit


# --- sections ----------------------------------------------------------------------------------------
def _runs(reports: Sequence[Report], names: Sequence[str], base: str | None) -> str:
    rows = []
    for name, rep in zip(names, reports, strict=True):
        counts: dict[str, int] = {}
        for r in rep.results:
            counts[r.status] = counts.get(r.status, 0) + 1
        status = Raw(" ".join(badge(f"{n} {s}", s) for s, n in sorted(counts.items())) or "no results")
        commit = report_fact(rep, "git_commit")
        rows.append({"report": name + (" (baseline)" if name == base else ""), "run": rep.run_id,
                     "created": rep.created_at, "label": rep.label or "", "profile": rep.profile or "",
                     "commit": str(commit)[:10] if commit else "", "cases": status,
                     "complete": "PARTIAL (interrupted)" if rep.partial else "yes"})
        side = getattr(rep, "side", None)  # what measured it (ab: baseline or current side)
        if isinstance(side, dict) and side:
            rows[-1]["side"] = ", ".join(f"{k}={v}" for k, v in side.items() if v not in (None, "", [], {}))
    if any("side" in row for row in rows):
        rows = [{**row, "side": row.get("side", "")} for row in rows]
    return html.table(rows)


def _machine(reports: Sequence[Report], names: Sequence[str]) -> str:
    keys = [k for k in MACHINE_KEYS if any(rep.fingerprint.get(k) not in (None, "") for rep in reports)]
    rows, classes = [], []
    for k in keys:
        values = [rep.fingerprint.get(k) for rep in reports]
        rows.append({"": k, **{n: "-" if v is None else v for n, v in zip(names, values, strict=True)}})
        classes.append("differs" if len({str(v) for v in values}) > 1 else "")
    note = '<p class="note">Rows that differ between reports are highlighted.</p>' if len(reports) > 1 else ""
    return html.table(rows, row_class=classes, empty="no fingerprint in these reports") + note


def _backends(reports: Sequence[Report], names: Sequence[str]) -> str:
    rows = []
    for name, rep in zip(names, reports, strict=True):
        ran: dict[str, dict[str, int]] = {}
        for r in rep.results:
            ran.setdefault(r.key.backend, {}).setdefault(r.status, 0)
            ran[r.key.backend][r.status] += 1
        known = [b.get("name") for b in rep.backends]
        for b in rep.backends + [{"name": n, "available": True} for n in ran if n not in known]:
            counts = ran.get(b.get("name"), {})
            rows.append({"report": name, "backend": b.get("name"),
                         "usable": badge("yes", "pass") if b.get("available") else badge("no", "skipped"),
                         "device / reason": b.get("device_name") or "" if b.get("available") else b.get("reason") or "",
                         "cases run": Raw(" ".join(badge(f"{n} {s}", s) for s, n in sorted(counts.items()))
                                          or "none")})
    return html.table(rows)


def _checks(reports: Sequence[Report], names: Sequence[str]) -> str:
    out = []
    for name, rep in zip(names, reports, strict=True):
        checks = rep.environment.get("checks") or []
        if len(reports) > 1:
            out.append(f"<h3>{esc(name)}</h3>")
        if not checks:
            out.append('<p class="note">This report holds no environment checks.</p>')
            continue
        order = {v: i for i, v in enumerate(VERDICTS)}
        shown = sorted((c for c in checks if c.get("verdict") != "pass"), key=lambda c: order.get(c.get("verdict"), 9))
        counts = {v: sum(1 for c in checks if c.get("verdict") == v) for v in VERDICTS}
        out.append("<p>" + " ".join(badge(f"{n} {v}", v) for v, n in counts.items() if n) + "</p>")
        out.append(html.table([{"verdict": badge(c.get("verdict", "?")), "check": c.get("title") or c.get("id"),
                                "advice": c.get("advice") or ""} for c in shown], empty="every check passed"))
        passed = [c.get("id", "?") for c in checks if c.get("verdict") == "pass"]
        if passed:
            out.append(f'<p class="note">Passed: {esc(", ".join(passed))}.</p>')
    return "".join(out)


def _mde_text(row: Row) -> str:
    """The smallest slowdown this row could have detected (one-sided), when the comparison carries one."""
    mde = getattr(row, "mde", None)
    if mde is None:
        return ""
    if math.isfinite(mde):
        return f"≥{100 * mde:.1f}%"  # a slowdown: one-sided
    return "∞"


def _gate(result: GateResult) -> str:
    colour = html.STATUS_COLOURS.get(result.verdict, "#2e7d32")
    out = [f'<div class="verdict" style="background:{colour}">{esc(headline(result))}</div>']
    comp, pair = result.comparison, result.pair
    p = result.policy
    out.append(f'<p class="note">Current <b>{esc(pair.name)}</b> against baseline <b>{esc(comp.base_name)}</b>. '
               f"{esc(policy_text(result))} Inconclusive: the data cannot tell (noisy, incomparable, missing).</p>")
    order = {"regression": 0, "inconclusive": 1, "ignored": 3, "ok": 2}
    findings = sorted(result.findings, key=lambda f: (order.get(f.outcome, 9), f.row.key.sort_key()))
    with_mde = any(getattr(f.row, "mde", None) is not None for f in findings)
    rows, classes = [], []
    for f in findings:
        row = {"outcome": badge(f.outcome), "case": f.row.key.label, "baseline": fmt_median(f.row.base),
               "current": fmt_median(f.row.other), "change [interval]": fmt_pct(f.row.change),
               "verdict": f.row.verdict}
        if with_mde:
            row["detectable effect"] = _mde_text(f.row)
        row["why"] = f.why if f.outcome != "ok" else ""
        rows.append(row)
        classes.append(f.outcome if f.outcome in ("regression", "inconclusive") else "")
    plotted = [(case_label(f.row.key), f.row.change.ratio, f.row.change.ci_low, f.row.change.ci_high, f.outcome)
               for f in findings if f.row.change is not None]
    if plotted:
        out.append(html.chart(forest(plotted, p.threshold, f"median time ratio {pair.name} / {comp.base_name} "
                                     "(below 1 is faster)"),
                              "Each case's ratio with its interval; dashed lines at the threshold. Red: regression, "
                              "amber: inconclusive."))
    out.append(html.table(rows, row_class=classes))
    return "".join(out)


def _comparison(comp: Comparison) -> str:
    out = []
    env = env_lines(comp)
    if env:
        out.append("<p><b>Environment differences</b></p><ul>" + "".join(f"<li>{esc(x)}</li>" for x in env)
                   + "</ul>")
    rows = []
    speedups: list[tuple[str, Entry]] = []
    what = quantity([r for p in comp.pairs for r in p.rows])
    column = f"geometric mean {what} ratio"
    for pair in comp.pairs:
        gms = geomeans(pair.rows)
        overall = gms.pop(None, None)
        counts = verdict_counts(pair.rows)
        rows.append({"report": pair.name, column: f"{overall.ratio:.3f}" if overall else "-",
                     "speed": fmt_speed(overall.ratio) if overall else "no case measured on both sides",
                     "cases": overall.n if overall else 0,
                     "per suite": "; ".join(f"{s}: {g.ratio:.3f} ({g.n})" for s, g in sorted(gms.items())),
                     "verdicts": Raw(" ".join(badge(f"{n} {v}", _verdict_kind(v)) for v, n in counts.items()))})
        speedups.append((pair.name, Bar(overall.speedup, note=fmt_speed(overall.ratio)) if overall else "no overlap"))
    out.append(f'<p class="note">Against <b>{esc(comp.base_name)}</b>: geometric mean over the cases measured on '
               f"both sides of the median-{what.replace(' ', '-')} ratio (below 1 is faster).</p>")
    out.append(html.table(rows, numeric=(column, "cases")))
    if speedups:
        out.append(html.chart(bars([s[0] for s in speedups], [("speed-up", [s[1] for s in speedups])],
                                   f"speed-up over {comp.base_name} (geometric mean; 1 = same)", ref=1.0)))
    return "".join(out)


def _metrics_beside_time(comp: Comparison, gate: GateResult | None) -> str:
    """The metrics recorded beside the time (peak memory, compile time, energy, latency percentiles, ...), case
    by case, with each metric's own verdict (and the gate's outcome); the note states the rules of those shown."""
    from benchbench import metrics as metrics_registry

    outcome = {(f.row.metric, f.row.key): f.outcome for f in gate.metric_findings} if gate is not None else {}
    out, shown = [], []
    for pair in comp.pairs:
        if not pair.metric_rows:
            continue
        rows, classes = [], []
        for mrow, cells in zip(pair.metric_rows, metric_table_rows(pair.metric_rows, comp.base_name, pair.name),
                               strict=True):
            got = outcome.get((mrow.metric, mrow.key))
            rows.append({**({"outcome": badge(got)} if got else {}), **cells})
            classes.append(got if got in ("regression", "inconclusive") else
                           "regression" if mrow.verdict == "worse" else "")
            shown.append(mrow.metric)
        title = f"<h3>{esc(pair.name)} against {esc(comp.base_name)}</h3>" if len(comp.pairs) > 1 else ""
        out.append(title + html.table(rows, row_class=classes))
    if not out:
        return ""
    rules = [m.rule_text for name in dict.fromkeys(shown) if (m := metrics_registry.ALL.get(name)) and m.rule_text]
    return ('<p class="note">Recorded by every timed run beside the time and compared by each metric\'s own rule. '
            + esc(" ".join(rules)) + "</p>" + "".join(out))


def metrics_section_title(comp: Comparison) -> str:
    """"Peak memory, compile time and energy", or whichever metrics beside the time the comparison holds."""
    from benchbench import metrics as metrics_registry

    names = dict.fromkeys(r.metric for pair in comp.pairs for r in pair.metric_rows)
    titles = [metrics_registry.ALL[n].title if n in metrics_registry.ALL else n for n in names]
    if not titles:
        return "Other metrics"
    text = titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " and " + titles[-1]
    return text[:1].upper() + text[1:]


def _verdict_kind(verdict: str) -> str:
    return {"slower": "regression", "broke": "regression", "faster": "pass", "fixed": "pass", "same": "ok",
            "noisy": "inconclusive", "incomparable": "inconclusive", "new": "info", "failed": "failed"}.get(
        verdict, verdict)


def _entry(result: Result | None, prefer: Sequence[str] = ("flops", "bytes", "items"),
           unit: str | None = None) -> Entry:
    r = rate(result, prefer)
    if r is None or (unit is not None and r.unit != unit):
        return _status(result) if result is None or not result.ok else "no timing"
    return Bar(r.value, r.low, r.high)


def _scaled(entries: Sequence[Entry], factor: float) -> list[Entry]:
    return [Bar(e.value / factor, e.low / factor if e.low else None, e.high / factor if e.high else None, e.note)
            if isinstance(e, Bar) else e for e in entries]


def _throughput(keys: Sequence[CaseKey], by_report: Sequence[dict[CaseKey, Result]], names: Sequence[str],
                backend: bool) -> str:
    """One chart per unit of throughput (FLOP/s, B/s, images/s, ...), grouped bars per report."""
    units: dict[str, list[CaseKey]] = {}
    for key in keys:
        r = next((rate(m.get(key)) for m in by_report if rate(m.get(key)) is not None), None)
        units.setdefault(r.unit if r else "", []).append(key)
    out = []
    never = units.pop("", [])
    if never:  # no report measured them, so they have no unit to be drawn in: the table below says why
        out.append(f'<p class="note">Not measured in any report, so not drawn: '
                   f'{esc(", ".join(case_label(k, backend) for k in never))}.</p>')
    for unit, ks in units.items():
        series = [(name, [_entry(m.get(k), unit=unit) for k in ks]) for name, m in zip(names, by_report, strict=True)]
        values = [e.value for _, es in series for e in es if isinstance(e, Bar)]
        if not values:
            continue
        factor, label = _scale(values, unit)
        log = min(values) > 0 and max(values) / min(values) > 50
        out.append(html.chart(bars([case_label(k, backend) for k in ks], [(n, _scaled(es, factor)) for n, es in series],
                                   label + (" (log scale)" if log else ""), log=log),
                              f"Throughput in {unit} at the median time; whiskers: the median's confidence interval."))
    return "".join(out)


def _ceilings(keys: Sequence[CaseKey], reports: Sequence[Report], by_report: Sequence[dict[CaseKey, Result]],
              names: Sequence[str], backend: bool) -> str:
    fractions = {k: [ceiling_fraction(rep.results, m[k]) if k in m else None for rep, m in
                     zip(reports, by_report, strict=True)] for k in keys}
    shown = [k for k in keys if any(f is not None for f in fractions[k]) and not _is_ceiling(k)]
    if not shown:
        return ""
    series = [(name, [Bar(100 * fractions[k][j]) if fractions[k][j] is not None else _status(by_report[j].get(k))
                      if by_report[j].get(k) is None or not by_report[j][k].ok else "no ceiling" for k in shown])
              for j, name in enumerate(names)]
    return html.chart(bars([case_label(k, backend) for k in shown], series, "% of the measured ceiling", ref=100.0),
                      "Rate as a share of this device's own measured ceiling (matmul for compute-bound cases, copy "
                      "for memory-bound ones, same backend and dtype); 100% dashed.")


def _is_ceiling(key: CaseKey) -> bool:
    return key.benchmark.startswith("ceiling_")


def _suite_blocks(blocks: Sequence[page.Block]) -> str:
    """What a suite contributes to its section (benchbench/page.py), drawn as the page draws its own."""
    out = []
    for block in blocks:
        if isinstance(block, page.Heading):
            out.append(f"<h3>{esc(block.text)}</h3>")
        elif isinstance(block, page.Note):
            out.append(f'<p class="note">{esc(block.text)}</p>')
        elif isinstance(block, page.Table):
            rows = [{c: badge(v.status) if isinstance(v, page.Status) else v for c, v in row.items()}
                    for row in block.rows]
            out.append(html.table(rows, numeric=block.numeric))
        elif isinstance(block, page.Bars):
            out.append(_suite_bars(block))
        elif isinstance(block, page.Lines):
            out.append(_suite_lines(block))
    return "".join(out)


def _suite_bars(block: page.Bars) -> str:
    series = []
    for name, cells in block.series:
        entries = []
        for r, note in cells:
            e = _entry(r, block.prefer)
            entries.append(Bar(e.value, e.low, e.high, note) if isinstance(e, Bar) and note else e)
        series.append((name, entries))
    values = [e.value for _, es in series for e in es if isinstance(e, Bar)]
    if not values:
        return ""
    unit = next((rt.unit for _, cells in block.series for r, _ in cells if (rt := rate(r, block.prefer))), "items/s")
    factor, label = _scale(values, unit)
    log = min(values) > 0 and max(values) / min(values) > 50
    return html.chart(bars(list(block.labels), [(name, _scaled(es, factor)) for name, es in series],
                           label + (" (log scale)" if log else ""), log=log), block.caption)


def _suite_lines(block: page.Lines) -> str:
    series, unit, missing = [], None, []
    for name, points in block.series:
        drawn = []
        for x, label, r in points:
            rt = rate(r, block.prefer)
            if rt is None:
                missing.append(f"{label}: {_status(r)}")
                continue
            unit = unit or rt.unit
            drawn.append((x, rt.value, rt.low, rt.high))
        if drawn:
            series.append((name, drawn))
    if not series:
        return ""
    marks = [(x, rt.value, text) for x, r, text in block.marks if (rt := rate(r, block.prefer))]
    out = html.chart(lines(series, marks, block.xlabel, unit or "items/s"), block.caption)
    return out + (f'<p class="note">Not measured: {esc("; ".join(missing))}.</p>' if missing else "")


def _note(r: Result, hook: Any) -> str:
    """A result's note: the suite's (`page_note`) where it gives one, else the stored one."""
    own = hook(r) if hook is not None else None
    return str(r.note) if own is None else own


def _cases_table(keys: Sequence[CaseKey], by_report: Sequence[dict[CaseKey, Result]], names: Sequence[str],
                 backend: bool, note: Any = None) -> str:
    rows, classes = [], []
    for k in keys:
        row: dict[str, Any] = {"case": case_label(k, backend)}
        bad = False
        for name, m in zip(names, by_report, strict=True):
            r = m.get(k)
            s = summary_of(r)
            if s is not None:
                rt = rate(r)
                row[name] = fmt_time(s.median) + f" ±{100 * s.rel_noise:.1f}%" + (
                    f" · {fmt_si(rt.value, rt.unit.removesuffix('/s'))}/s" if rt and rt.unit != "calls/s" else "")
            else:
                bad = True
                status = _status(r)
                row[name] = Raw(badge(status) + (f" {esc(r.reason)}" if r is not None and r.reason else ""))
        notes = [_note(m[k], note) for m in by_report if k in m and m[k].note]
        flags = sorted({f for m in by_report if k in m for f in m[k].flags})
        row["note"] = "; ".join(dict.fromkeys(notes + flags))
        rows.append(row)
        classes.append("inconclusive" if bad else "")
    return "<h3>Every case</h3>" + html.table(rows, row_class=classes)


def _suite(suite: str, keys: Sequence[CaseKey], reports: Sequence[Report], by_report: Sequence[dict[CaseKey, Result]],
           names: Sequence[str], backend: bool, hooks: Any = None) -> str:
    """The suite's section: throughput, ceilings, what the suite contributes (`page_blocks`), every case."""
    own = getattr(hooks, "page_blocks", None)
    runs = [page.Run(name, {k: m[k] for k in keys if k in m}) for name, m in zip(names, by_report, strict=True)]
    parts = [_throughput(keys, by_report, names, backend), _ceilings(keys, reports, by_report, names, backend),
             _suite_blocks(own(runs, backend)) if own is not None else "",
             _cases_table(keys, by_report, names, backend, getattr(hooks, "page_note", None))]
    return "".join(parts)


def _not_measured(keys: Sequence[CaseKey], by_report: Sequence[dict[CaseKey, Result]], names: Sequence[str]) -> str:
    rows = []
    for k in keys:
        for name, m in zip(names, by_report, strict=True):
            r = m.get(k)
            if r is None or not r.ok:
                rows.append({"case": k.label, "report": name, "status": badge(_status(r)),
                             "reason": (r.reason or "") if r is not None else "not in this report"})
    return html.table(rows, empty="Every case was measured in every report.")


def _page_doc(report: Report) -> dict[str, Any]:
    """The report as its JSON document, without the caches (`stats`, `derived`) that loading recomputes."""
    doc = report.to_dict()
    for r in doc["results"]:
        r.pop("stats", None)
        r.pop("derived", None)
    return doc


def report_page(reports: Sequence[Report], names: Sequence[str], comparison: Comparison | None = None,
                gate: GateResult | None = None, notes: Sequence[str] = (), title: str | None = None,
                suites: Mapping[str, Any] | None = None) -> str:
    """The page for these reports. With a comparison (of some or all of them), `reports[0]` is its base;
    a gate result is that comparison's decision. `notes` are shown under the list of runs. `suites` maps a
    suite's name to its module (or any object) whose `page_blocks`/`page_note` hooks add to its section
    (benchbench/page.py); suites not in it get the page's own charts and tables only."""
    if len(reports) != len(names) or not reports:
        raise ValueError("one name per report, and at least one report")
    base = names[0] if comparison is not None or gate is not None else None
    keys = sorted({r.key for rep in reports for r in rep.results}, key=CaseKey.sort_key)
    by_report = [{r.key: r for r in rep.results} for rep in reports]
    backend = len({k.backend for k in keys}) > 1
    verdict = ""
    if gate is not None:  # the verdict up front; its cases follow the machine, backends and checks
        verdict = (f'<p><a href="#s-gate" class="badge" style="background:'
                   f'{html.STATUS_COLOURS.get(gate.verdict, "#2e7d32")}">gate: {esc(headline(gate))}</a></p>')
    sections = [Section("Runs", verdict + _runs(reports, names, base)
                        + "".join(f'<p class="note">{esc(n)}</p>' for n in notes)),
                Section("Machine", _machine(reports, names)), Section("Backends", _backends(reports, names)),
                Section("Environment checks", _checks(reports, names))]
    if gate is not None:
        sections.append(Section(f"Gate: {gate.verdict}", _gate(gate), "s-gate"))
    if comparison is not None and gate is None:
        sections.append(Section("Comparison", _comparison(comparison)))
    elif comparison is not None:
        sections.append(Section("Geometric means", _comparison(comparison)))
    beside = _metrics_beside_time(comparison, gate) if comparison is not None else ""
    if beside:
        sections.append(Section(metrics_section_title(comparison), beside, "s-metrics"))
    tails = percentile_table(reports, names)
    if tails:
        sections.append(Section("Latency percentiles", tails, "s-percentiles"))
    for suite in dict.fromkeys(k.suite for k in keys):
        # Reports that did not run this suite at all stay out of its charts, and the section says so.
        ran = [i for i, rep in enumerate(reports) if any(r.key.suite == suite for r in rep.results)]
        absent = [names[i] for i in range(len(reports)) if i not in ran]
        note = (f'<p class="note">Not run in {esc(", ".join(absent))}.</p>' if absent else "")
        suite_keys = [k for k in keys if k.suite == suite]
        sections.append(Section(f"Suite {suite}", note + _suite(suite, suite_keys, [reports[i] for i in ran],
                                                                [by_report[i] for i in ran], [names[i] for i in ran],
                                                                backend, (suites or {}).get(suite)),
                                "s-suite-" + suite))
    sections.append(Section("Not measured", _not_measured(keys, by_report, names)))
    machines = list(dict.fromkeys(str(rep.fingerprint.get("cpu") or report_fact(rep, "hostname") or "")
                                  for rep in reports))
    machine = machines[0] if len(machines) == 1 else f"{len(machines)} machines"
    title = title or ("benchbench: " + (", ".join(names) if len(names) <= 3 else f"{len(names)} reports"))
    subtitle = f"{len(reports)} report{'s' if len(reports) != 1 else ''}, {len(keys)} cases" + (
        f" · {machine}" if machine else "") + f" · written by benchbench {__version__}"
    data = {"reports": [_page_doc(r) for r in reports], "names": list(names), "base": base}
    return html.page(title, sections, data, subtitle)
