"""The gate's verdict as text: a headline, a PR-comment-sized Markdown summary, terminal text, and JSON."""

from __future__ import annotations

import json
import sys
from typing import Any

from tabulate import tabulate

from benchbench import metrics
from benchbench.analysis.gate import Finding, GateResult, MetricFinding, counts_instructions
from benchbench.model.report import report_fact
from benchbench.output.comparison import (
    case_name,
    comparison_doc,
    comparison_text,
    disagreement_lines,
    env_lines,
    fmt_mde,
    fmt_median,
    fmt_pct,
    geomean_lines,
    machine_text,
    markdown_list,
)
from benchbench.output.safe_text import md_code, md_text

_ICON = {"pass": "✅", "regression": "❌", "inconclusive": "⚠️"}
_ROW_ICON = {"regression": "❌", "inconclusive": "⚠️", "ignored": "➖", "ok": ""}


def headline(result: GateResult) -> str:
    counts = {o: len(result.by_outcome(o)) for o in ("regression", "inconclusive", "ok", "ignored")}
    parts = [f"{counts['regression']} regression{'s' if counts['regression'] != 1 else ''}",
             f"{counts['inconclusive']} inconclusive", f"{counts['ok']} ok"]
    if counts["ignored"]:
        parts.append(f"{counts['ignored']} ignored")
    text = f"{result.verdict.upper()}: " + ", ".join(parts)
    for name in dict.fromkeys(f.row.metric for f in result.metric_findings):
        found = [f for f in result.metric_findings if f.row.metric == name]
        bad = {o: sum(f.outcome == o for f in found) for o in ("regression", "inconclusive")}
        if any(bad.values()):
            text += (f"; {metrics.get(name).title}: " +
                     ", ".join(f"{n} {o}{'s' if o == 'regression' and n != 1 else ''}" for o, n in bad.items() if n))
    return text


def reason(f: Finding, result: GateResult) -> str:
    """Why a case decided what it did, in words: the gate's reason, the machine's speed when the canary
    moved, and what the data could have detected when it cannot tell."""
    if f.cause == "machine":
        return machine_text(f.row.machine, result.comparison.base_name, result.pair.name)
    if f.cause == "noisy" and f.row.mde is not None:
        sequential = result.pair.paired and bool(result.pair.report.sequential)
        more = "a larger --budget" if sequential else "add rounds (--rounds)"
        why = f"{f.why}; can detect >= {fmt_mde(f.row.mde)} here: {more} or use a quieter machine"
        if "pairs-disagree" in f.row.flags:
            why += " (the process pairs disagree far beyond their own windows: a per-process effect)"
        return why
    return f.why


def policy_text(result: GateResult) -> str:
    """The gate's rule in one paragraph of plain text, as this result's policy applied it."""
    p = result.policy
    level = f"{100 * (1 - p.alpha):g}%"
    if result.pair.paired and result.pair.report.sequential:
        unit = ("the t interval of the process pairs' time ratios (both sides alive together, taking turns block by "
                "block; each pair's ratio the median of its windows'), at the level its sequential look allows "
                f"({100 * p.alpha:g}% spent over the planned looks)")
    elif result.pair.paired:
        unit = (f"the {level} t interval of the paired rounds' time ratios (each round by its fastest sample; both sides measured "
                "back to back)")
    else:
        unit = f"the {level} Welch t interval of the time ratio, each round standing by its fastest sample"
    text = (f"A case regresses when it broke, or when {unit} lies entirely above +{100 * p.threshold:g}% "
            f"(one round per side: Mann-Whitney p < {p.alpha:g}, the bootstrap interval above the threshold and "
            f"the change beyond the noise). \"can detect\": the slowdown this data would catch with "
            f"{100 * p.criteria.power:g}% power.")
    if any(counts_instructions(f.row) for f in result.findings):
        text += (f" Instruction counts (Callgrind) regress beyond +{100 * p.instructions_tolerance:g}%, without a "
                 "significance test: they are exact up to interpreter jitter.")
    for name in dict.fromkeys(f.row.metric for f in result.metric_findings):
        text += " " + metrics.get(name).rule_text
    if p.rules:
        text += f" {len(p.rules)} per-case rule{'s' if len(p.rules) != 1 else ''} from {p.source}."
    return text


def _report_desc(name: str, report: Any) -> str:
    bits = [f"`{md_code(name)}`"]
    commit = report_fact(report, "git_commit")
    if commit:
        bits.append(f"commit `{md_code(str(commit)[:10])}`")
    if report.created_at:
        bits.append(md_text(report.created_at))
    return " ".join(bits)


MAX_MD_ROWS = 200  # a PR comment holds 65536 characters


def _md_table(findings: list[Finding], base_name: str, name: str, result: GateResult) -> str:
    more = len(findings) - MAX_MD_ROWS
    findings = findings[:MAX_MD_ROWS]
    # every cell escaped: case names, reasons and report names come from the files read
    rows = [{"": _ROW_ICON[f.outcome], "case": case_name(f.row.key), base_name: fmt_median(f.row.base),
             name: fmt_median(f.row.other), "change [CI]": fmt_pct(f.row.change),
             "p": f"{f.row.change.p_value:.2g}" if f.row.change and f.row.change.p_value is not None else "-",
             "can detect": fmt_mde(f.row.mde), "verdict": f.row.verdict,
             "why": reason(f, result) if f.outcome != "ok" else ""} for f in findings]
    rows = [{md_text(k): md_text(v) for k, v in row.items()} for row in rows]
    table = tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True)
    return table + (f"\n\n…and {more} more (the full table: `benchbench gate --json`)" if more > 0 else "")


def _md_metric_table(findings: list[MetricFinding], base_name: str, name: str) -> str:
    from benchbench.output.comparison import metric_table_rows

    rows = [{"": _ROW_ICON[f.outcome], **r} for f, r in zip(findings, metric_table_rows([f.row for f in findings],
                                                                                       base_name, name), strict=True)]
    rows = [{md_text(k): md_text(v) for k, v in row.items()} for row in rows[:MAX_MD_ROWS]]
    return tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True)


def markdown_summary(result: GateResult) -> str:
    """A PR-comment-sized Markdown summary: verdict first, then the cases that need a look."""
    comp, pair = result.comparison, result.pair
    title = "benchbench ab" if pair.paired else "benchbench gate"
    out = [f"### {title}: {_ICON[result.verdict]} {headline(result)}", "",
           f"Baseline {_report_desc(comp.base_name, comp.base)} · current {_report_desc(pair.name, pair.report)}",
           ""]
    attention = [f for f in result.findings if f.outcome in ("regression", "inconclusive")]
    if attention:
        out += [_md_table(attention, comp.base_name, pair.name, result), ""]
    flagged = [f for f in result.metric_findings if f.outcome in ("regression", "inconclusive")]
    if flagged:
        out += [_md_metric_table(flagged, comp.base_name, pair.name), ""]
    rest = [f for f in result.findings if f.outcome not in ("regression", "inconclusive")]
    if rest:
        out += [f"<details><summary>{len(rest)} other case{'s' if len(rest) != 1 else ''} (ok or ignored)</summary>",
                "", _md_table(rest, comp.base_name, pair.name, result), "", "</details>", ""]
    out += markdown_list([md_text(line) for line in geomean_lines(pair, comp.base_name)])
    env = env_lines(comp)
    if env:
        out += ["", "**Environment differences**", *("- " + md_text(line) for line in env)]
    counts = bool(result.findings) and all(counts_instructions(f.row) for f in result.findings)
    what = "median instructions per call" if counts else "median time"
    out += ["", f"<sub>{md_text(policy_text(result))} Change = {what} {pair.name} / {comp.base_name} - 1.</sub>", ""]
    return "\n".join(out)


def terminal_text(result: GateResult) -> str:
    """The comparison table, the cases that decided, and the verdict line."""
    out = [comparison_text(result.comparison), ""]
    decided = [f for f in result.findings if f.outcome in ("regression", "inconclusive")]
    if decided or any(f.outcome in ("regression", "inconclusive") for f in result.metric_findings):
        out.append(tabulate([{"": f.outcome, "case": f.row.key.label, "can detect": fmt_mde(f.row.mde),
                              "why": reason(f, result)} for f in decided] +
                            [{"": f.outcome, "case": f"{f.row.key.label} ({metrics.get(f.row.metric).title})",
                              "can detect": "-", "why": f.why}
                             for f in result.metric_findings if f.outcome in ("regression", "inconclusive")],
                            headers="keys", tablefmt="simple", disable_numparse=True))
        out.append("")
    out.append(f"gate: {headline(result)} (exit {result.exit_code})")
    return "\n".join(out)


def gate_json(result: GateResult) -> str:
    """The comparison document plus the gate's verdict and every case's part in it."""
    return json.dumps(gate_doc(result), indent=1, default=str)


def gate_doc(result: GateResult) -> dict[str, Any]:
    doc = comparison_doc(result.comparison)
    doc["gate"] = {"verdict": result.verdict, "exit_code": result.exit_code,
                   "threshold": result.policy.threshold, "alpha": result.policy.alpha,
                   "power": result.policy.criteria.power, "paired": result.pair.paired,
                   "cases": [{"case": f.row.key.label, "key": f.row.key.to_dict(), "verdict": f.row.verdict,
                              "outcome": f.outcome, "why": reason(f, result), "cause": f.cause, "mde": f.row.mde,
                              "machine": [{"where": w, "ratio": r} for w, r in f.row.machine]}
                             for f in result.findings],
                   "metric_cases": [{**f.row.to_dict(), "outcome": f.outcome, "why": f.why}
                                    for f in result.metric_findings]}
    return doc


# --- ab: one metric, or time and instruction counts side by side -------------------------------------------


def outcome_line(outcome: Any) -> str:
    """How the block-interleaved rounds went: how many, why they stopped, how long the decision took."""
    from benchbench.output.units import fmt_duration

    why = {"decided": "every case decided", "max-rounds": f"the plan's last look ({outcome.plan.max_rounds} rounds)",
           "budget": "the time budget"}[outcome.stopped]
    per_case = sorted(outcome.rounds_of.values())
    spread = f"{per_case[0]}" if per_case and per_case[0] == per_case[-1] else \
        f"{per_case[0]}-{per_case[-1]}" if per_case else "0"
    decided = sum(1 for lk in outcome.looks.values() if lk.decision != "undecided")
    return (f"ab: {decided} of {len(outcome.rounds_of)} cases decided in {fmt_duration(outcome.elapsed_s)}; "
            f"{outcome.rounds} round{'s' if outcome.rounds != 1 else ''} of process pairs ({spread} per case), "
            f"stopped by {why}")


def _part_text(part: Any) -> str:
    text = terminal_text(part.gate)
    return text + ("\n" + outcome_line(part.outcome) if part.outcome is not None else "")


def ab_text(result: Any) -> str:
    """`ab`'s terminal output: each metric's comparison and verdict, then where time and counts disagree."""
    parts = result.parts
    if len(parts) == 1:
        return _part_text(result)
    out = []
    for part in parts:
        out += [f"== {metrics.get(part.metric).title} ==", _part_text(part), ""]
    lines = disagreement_lines(result.disagreements)
    if lines:
        out += ["time and instruction counts disagree:", *(f"  {line}" for line in lines), ""]
    out.append(f"ab: {result.verdict.upper()} (exit {result.exit_code}; the worse of the two gates)")
    return "\n".join(out)


def ab_markdown(result: Any) -> str:
    """`ab`'s PR-comment summary: one gate summary per metric, then where time and counts disagree."""
    parts = result.parts
    if len(parts) == 1:
        return markdown_summary(result.gate)
    out = [f"## benchbench ab: {_ICON[result.verdict]} {result.verdict.upper()} (time and instruction counts)", ""]
    for part in parts:
        out += [f"#### {metrics.get(part.metric).title}", markdown_summary(part.gate)]
    lines = disagreement_lines(result.disagreements)
    if lines:
        out += ["**Time and instruction counts disagree**", *markdown_list([md_text(line) for line in lines]), ""]
    return "\n".join(out)


def outcome_doc(outcome: Any) -> dict[str, Any]:
    """The block-interleaved rounds as data: the plan, rounds run, why they stopped, each case's last look."""
    return {"plan": outcome.plan.to_dict(), "rounds": outcome.rounds, "stopped": outcome.stopped,
            "elapsed_s": outcome.elapsed_s,
            "cases": [{"case": key.label, "rounds": outcome.rounds_of.get(key),
                       **({"decision": lk.decision, "ratio": lk.ratio, "low": lk.low, "high": lk.high,
                           "alpha": lk.alpha} if (lk := outcome.looks.get(key)) is not None else {})}
                      for key in outcome.rounds_of]}


def _part_doc(part: Any) -> dict[str, Any]:
    doc = gate_doc(part.gate)
    if part.outcome is not None:
        doc["ab"] = outcome_doc(part.outcome)
    return doc


def ab_json(result: Any) -> str:
    """One metric: the gate's JSON (with `ab`: how the rounds went). Both: {verdict, exit_code, time,
    instructions, disagreements}."""
    parts = result.parts
    if len(parts) == 1:
        return json.dumps(_part_doc(result), indent=1, default=str)
    doc = {"verdict": result.verdict, "exit_code": result.exit_code,
           **{part.metric: _part_doc(part) for part in parts},
           "disagreements": [d.to_dict() for d in result.disagreements]}
    return json.dumps(doc, indent=1, default=str)


def ab_sides_text(sides: list[Any]) -> str:
    """What each side of an `ab` run differs by, one line per side."""
    lines = []
    for side in sides:
        bits = []
        if side.ref:
            bits.append(f"ref {side.ref} (worktree {side.cwd})")
        if side.python != sys.executable:
            bits.append(f"python {side.python}")
        if side.env:
            bits.append("env " + " ".join(f"{k}={v}" for k, v in side.env))
        lines.append(f"  {side.name}: " + (", ".join(bits) or "this interpreter, environment and tree"))
    return "\n".join(lines)
