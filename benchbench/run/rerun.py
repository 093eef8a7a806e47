"""The gate's re-run policy: measure a gate's suspected regressions again, on this machine, in more rounds
added to CURRENT's (evidence accumulates; nothing is replaced), then decide again.

The baseline is never re-measured: it usually comes from another commit. Re-running refuses when this
machine's fingerprint differs from CURRENT's in a way that matters, and skips (with a note) a case whose
benchmark code no longer matches the definition CURRENT measured. `benchbench gate --rerun` calls
`gate_with_rerun`; a notebook can too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchbench.analysis.gate import gate
from benchbench.errors import UserError

if TYPE_CHECKING:
    from benchbench.analysis.compare import Row
    from benchbench.analysis.gate import GateResult, Policy
    from benchbench.model.report import CaseKey, Report, Result
    from benchbench.run.registry import Suite
    from benchbench.run.runner import PlannedCase


def suspects(result: GateResult) -> list[Row]:
    """Rows worth re-measuring: timed on both sides with raw samples, and slower or possibly slower."""
    out = []
    for f in result.findings:
        row = f.row
        if f.outcome not in ("regression", "inconclusive") or row.change is None or not row.change.from_samples \
                or row.reasons or row.env:
            continue
        if row.verdict == "slower" or (row.verdict == "noisy" and row.change.ratio > 1):
            out.append(row)
    return out


def find_cases(wanted: list[tuple[CaseKey, Result | None]], suite_paths: list[str] | None,
               ) -> tuple[dict[CaseKey, PlannedCase | str], dict[str, Suite], dict[str, Any]]:
    """The planned case of each stored (key, result) on this machine, or why there is none (one line):
    the suite or benchmark is not found, the backend is not usable here, or the benchmark's code differs
    from the definition the result was measured with. Also the suites and usable backends found."""
    from benchbench.run import registry, session
    from benchbench.run.execute import skip_reason
    from benchbench.run.runner import PlannedCase

    available = {s.name: s for s in registry.discover(suite_paths)}
    all_backends, _ = session.select_backends(None)
    backends = {b.name: b for b in all_backends if b.name in {key.backend for key, _ in wanted}}
    out: dict[CaseKey, PlannedCase | str] = {}
    for key, old in wanted:
        suite = available.get(key.suite)
        bench = next((b for b in suite.benchmarks if b.name == key.benchmark), None) if suite else None
        backend = backends.get(key.backend)
        if bench is None:
            out[key] = "suite or benchmark not found (use --suite-path)"
        elif backend is None or not backend.available:
            out[key] = f"backend {key.backend} is not usable here"
        elif old is not None and old.definition_hash and bench.definition_hash != old.definition_hash:
            out[key] = "the benchmark's code differs from what CURRENT measured"
        elif reason := skip_reason(bench, key, backend):
            out[key] = reason
        else:
            out[key] = PlannedCase(suite, bench, key, None)
    return out, available, {k: b for k, b in backends.items() if b.available}


def rerun(current: Report, rows: list[Row], suite_paths: list[str] | None, out_path: Path,
          command: list[str], progress: Any = None) -> list[str]:
    """Measure these rows' cases in more rounds and add them to `current`; returns notes for the user.
    `progress` receives the session's progress events (benchbench.output.progress.Progress; None: none)."""
    import random

    from benchbench.environment import collect, fingerprint_diff
    from benchbench.measure.engine import get_profile
    from benchbench.run import session
    from benchbench.run.runner import Side

    notes: list[str] = []
    found, available, backends = find_cases([(row.key, row.other) for row in rows], suite_paths)
    notes += [f"not re-run: {key.label}: {got}" for key, got in found.items() if isinstance(got, str)]
    env = collect(list(backends.values()))
    clash = [f"{k}: {a} vs {b}" for k, a, b, m in fingerprint_diff(current.fingerprint, env["fingerprint"],
                                                                      sorted(backends)) if m]
    if clash:
        raise UserError("--rerun must run on the machine (and setup) that measured CURRENT; differences: "
                        + "; ".join(clash))
    cases = [got for got in found.values() if not isinstance(got, str)]
    if not cases:
        return notes
    profile = get_profile(current.profile or "default")
    sess = session.Session(suites=list(available.values()), all_backends=list(backends.values()),
                           backends=list(backends.values()), profile=profile, budget=profile.budget,
                           rounds=profile.rounds, seed=random.randrange(2**31), cases=cases,
                           environment=env)
    # More rounds of the same budget, added to the suspects' results: evidence accumulates, nothing is replaced.
    session.measure(sess, [session.Target(Side(), current, out_path)], progress)
    current.command = [*current.command, "+", *command]
    from benchbench.model.report import save

    save(current, out_path)
    notes.append(f"measured {len(cases)} suspected regression{'s' if len(cases) != 1 else ''} in "
                 f"{profile.rounds} more rounds; updated report: {out_path}")
    return notes


def gate_with_rerun(baseline: Report, current: Report, policy: Policy, names: tuple[str, str], out_path: Path,
                    suite_paths: list[str] | None, command: list[str], progress: Any = None,
                    ) -> tuple[GateResult, list[str]]:
    """`gate`, and when it does not pass, re-measure its suspects into `current` (saved to `out_path`)
    and decide again. Returns the final result and notes for the user."""
    result = gate(baseline, current, policy, names)
    if result.verdict == "pass":
        return result, []
    rows = suspects(result)
    if not rows:
        return result, ["--rerun: nothing to re-measure (no slower or possibly slower case with raw samples)"]
    notes = rerun(current, rows, suite_paths, out_path, command, progress)
    return gate(baseline, current, policy, names), notes
