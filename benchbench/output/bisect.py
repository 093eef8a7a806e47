"""A bisect's answer as text: the first bad commit, its ratio and interval, and the steps taken (Markdown and JSON)."""

from __future__ import annotations

import json
from typing import Any

from benchbench.output.safe_text import md_code, md_text
from benchbench.output.units import fmt_duration
from benchbench.run.bisect import BisectResult, StepRecord, Trial

_ICON = {"bad": "❌", "good": "✅", "unclear": "⚠️", "skipped": "⏭️"}


def fmt_change(trial: Trial) -> str:
    """ratio [low, high] as a percentage change: "+38.2% [+31.0%, +45.9%]"."""
    if trial.ratio is None:
        return "-"
    text = f"{100 * (trial.ratio - 1):+.1f}%"
    if trial.ci_low is not None and trial.ci_high is not None:
        text += f" [{100 * (trial.ci_low - 1):+.1f}%, {100 * (trial.ci_high - 1):+.1f}%]"
    return text


def headline(result: BisectResult) -> str:
    rng = f"{result.good_ref}..{result.bad_ref}"
    n = len(result.commits)
    steps = f"{len(result.steps)} step{'s' if len(result.steps) != 1 else ''}"
    if result.outcome == "found":
        c = result.first_bad
        return f"first bad commit: {c.short} {c.subject} ({steps} over {n} commits of {rng})"
    if result.outcome == "no-regression":
        return f"no regression between {result.good_ref} and {result.bad_ref} ({steps}: {result.bad_ref} is not slower)"
    if result.outcome == "only-skipped":
        return (f"cannot tell which of {len(result.suspects)} commits is the first bad one: the others between could "
                f"not be measured ({steps})")
    return (f"bisect stopped: a step stayed inconclusive after its retries; the first bad commit is one of "
            f"{len(result.open_range)} ({steps})")


def _answer_lines(result: BisectResult, md: bool) -> list[str]:
    def code(x: str) -> str:
        return md_code(x) if md else x

    lines = []
    step = result.decisive
    if step is not None:
        t = step.trial
        level = f"{100 * t.level:g}% " if t.level is not None else ""
        lines.append(f"{code(result.first_bad.sha)} {md_text(result.first_bad.subject) if md else result.first_bad.subject}")
        lines.append(f"against {code(result.good_ref)}: {code(t.case or '-')} {fmt_change(t)}"
                     f"{f' ({level}interval)' if t.ci_low is not None else ''}")
    listed = result.suspects or result.open_range
    if listed:
        lines.append("one of: " + ", ".join(f"{code(c.short)} {md_text(c.subject) if md else c.subject}"
                                             for c in listed))
    return lines


def _step_row(s: StepRecord, md: bool) -> list[str]:
    t = s.trial
    note = t.reason or ""
    if s.attempts > 1:
        note = f"{s.attempts} attempts" + (f"; {note}" if note else "")
    subject = md_text(s.commit.subject) if md else s.commit.subject
    return [str(s.number), md_code(s.commit.short) if md else s.commit.short, subject, f"{s.position}",
            f"{_ICON[s.outcome]} {s.outcome}" if md else s.outcome, md_code(t.case) if md and t.case else (t.case or "-"),
            fmt_change(t), str(t.rounds) if t.rounds is not None else "-", md_text(note) if md else note]


_HEADERS = ["step", "commit", "subject", "position", "outcome", "case", "change vs GOOD", "rounds", "note"]


def _table(result: BisectResult, md: bool) -> str:
    from tabulate import tabulate

    rows = [_step_row(s, md) for s in result.steps]
    return tabulate(rows, headers=_HEADERS, tablefmt="github" if md else "simple", disable_numparse=True)


def bisect_text(result: BisectResult) -> str:
    lines = [f"bisect: {headline(result)}", *(f"  {line}" for line in _answer_lines(result, False)), "",
             _table(result, False), "",
             f"{len(result.steps)} steps, {sum(s.outcome != 'skipped' for s in result.steps)} of them measured (at "
             f"most ceil(log2 {len(result.commits)}) + 1 = {result.max_steps} without skips), in "
             f"{fmt_duration(result.elapsed_s)}"]
    return "\n".join(lines) + "\n"


def bisect_markdown(result: BisectResult) -> str:
    icon = {"found": "❌", "no-regression": "✅"}.get(result.outcome, "⚠️")
    lines = [f"### benchbench bisect: {icon} {md_text(headline(result))}", ""]
    lines += [f"- {line}" for line in _answer_lines(result, True)]
    lines += ["", _table(result, True), ""]
    return "\n".join(lines)


def _commit_doc(c: Any) -> dict[str, str] | None:
    return None if c is None else {"sha": c.sha, "subject": c.subject}


def _trial_doc(t: Trial) -> dict[str, Any]:
    return {"verdict": t.verdict, "reason": t.reason, "case": t.case, "ratio": t.ratio, "ci": [t.ci_low, t.ci_high]
            if t.ci_low is not None else None, "level": t.level, "rounds": t.rounds, "elapsed_s": t.elapsed_s,
            "reports": t.output}


def bisect_doc(result: BisectResult) -> dict[str, Any]:
    step = result.decisive
    return {
        "outcome": result.outcome,
        "message": headline(result),
        "good": {"ref": result.good_ref, **_commit_doc(result.good)},
        "bad": {"ref": result.bad_ref, **_commit_doc(result.bad)},
        "commits": len(result.commits),
        "max_steps": result.max_steps,
        "first_bad": _commit_doc(result.first_bad),
        "change": _trial_doc(step.trial) if step is not None else None,
        "suspects": [_commit_doc(c) for c in result.suspects],
        "open_range": [_commit_doc(c) for c in result.open_range],
        "steps": [{"step": s.number, "commit": _commit_doc(s.commit), "position": s.position, "outcome": s.outcome,
                   "attempts": s.attempts, **_trial_doc(s.trial)} for s in result.steps],
        "elapsed_s": result.elapsed_s,
    }


def bisect_json(result: BisectResult) -> str:
    return json.dumps({"bisect": bisect_doc(result)}, indent=2) + "\n"


def step_line(s: StepRecord) -> str:
    """One progress line per step, for stderr."""
    return (f"bisect: step {s.number}: {s.commit.short} {s.commit.subject[:60]}: {s.outcome}"
            f"{f' ({fmt_change(s.trial)})' if s.trial.ratio is not None else ''}"
            f"{f': {s.trial.reason}' if s.outcome == 'skipped' and s.trial.reason else ''}")
