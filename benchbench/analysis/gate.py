"""The CI gate: a comparison of CURRENT against a BASELINE plus a policy gives pass / regression / inconclusive.

A case is a regression when it was ok in the baseline and failed now (`broke`), or when compare.py's
rule calls it `slower`: with rounds on both sides, the whole (1 - alpha) interval of the change,
built from each round's fastest sample (Welch t; for `ab`, paired t on block-interleaved process pairs at its sequential look's level), above 1 + threshold; with one round per
side (old reports, pytest-benchmark files), Mann-Whitney significant, the bootstrap interval of the
ratio of medians above 1 + threshold, and the change larger than the noise in the samples.

Everything the data cannot settle makes the gate inconclusive (exit 3) rather than pass, unless the
policy says to ignore it:
- the machine itself changed speed (the canary, see compare.py) by more than the threshold between
  the two runs or during one: every timed case is inconclusive, whatever its numbers say, and no
  policy turns that into a pass or a regression.
- `noisy`: the interval straddles the threshold, or the change is within the noise.
- `incomparable`: the benchmark's definition or timing method changed, or the environment differs in
  a way that matters (another GPU, torch version, thread count, ...).
- `missing`: ok in the baseline, absent or skipped now (a partial run, a removed benchmark).
- `slower` without raw samples (pytest-benchmark files saved without --benchmark-save-data): a
  significance test is impossible, so it is a suspected regression, not a proven one.
Instruction counts (`run --metric instructions`) have their own rule: more instructions per call than
the tolerance allows (default 0.5%, `instructions_tolerance` in the rules file) is a regression, and
counts whose repeats spread by more than the tolerance are `noisy` (benchbench/metrics/instructions.py).
Peak memory, compile time and energy, recorded by every timed run, are judged beside the time by their own
rules (benchbench/metrics/memory.py, benchbench/metrics/compile_time.py, benchbench/metrics/energy.py; settings
`memory_tolerance`, `memory_floor`, `compile_threshold` and `energy_threshold` in the rules file): `worse` is a regression, `noisy` follows the `noisy` action,
`incomparable` never decides.
Regression wins over inconclusive, inconclusive over pass. New cases, `fixed`, and cases that were
not ok in the baseline either never fail the gate; they are listed.

Policy sources, later wins: built-in defaults < the rules file < the command line (`--fail-on`,
`--alpha`); inside the rules file, per-case `[[rules]]` are applied in order and later ones win.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchbench import metrics
from benchbench.analysis.compare import Change, Comparison, Criteria, Pair, Row, compare
from benchbench.errors import ExitCode, UserError
from benchbench.metrics.base import MetricRow
from benchbench.metrics.instructions import DEFAULT_TOLERANCE, check_tolerance
from benchbench.model.report import Report

EXIT_CODES = {"pass": ExitCode.OK, "regression": ExitCode.REGRESSION, "inconclusive": ExitCode.INCONCLUSIVE}
ACTIONS = ("ignore", "inconclusive", "regression")  # what a noisy / incomparable / missing case does
TIMING_VERDICTS = ("slower", "faster", "same", "noisy")  # verdicts that rest on the timings alone

_FAIL_ON = re.compile(r"^(?:(?P<field>[a-z_]+):)?(?P<value>[0-9]*\.?[0-9]+)%$")


def parse_threshold(text: str, what: str = "--fail-on") -> float:
    """`median:5%` or `5%` -> 0.05. Only the median is gated: it is what the statistics are about."""
    m = _FAIL_ON.match(str(text).strip())
    if not m:
        raise UserError(f"{what} {text!r}: expected a percentage such as median:5%")
    if m["field"] not in (None, "median"):
        raise UserError(f"{what} {text!r}: only the median can be gated (benchbench tests the ratio of medians "
                        "on the raw samples); use median:N%")
    value = float(m["value"]) / 100
    if not 0 < value < 10:
        raise UserError(f"{what} {text!r}: the threshold must be above 0% and below 1000%")
    return value


def parse_tolerance(text: Any, what: str = "instructions_tolerance") -> float:
    """`0.5%` -> 0.005: how much an instruction count may move and still be `same`."""
    m = _FAIL_ON.match(str(text).strip())
    if not m or m["field"] is not None:
        raise UserError(f"{what} {text!r}: expected a percentage such as 0.5%")
    return check_tolerance(float(m["value"]) / 100, what)


def parse_alpha(value: Any, what: str = "--alpha") -> float:
    try:
        alpha = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{what} {value!r}: expected a number such as 0.05") from None
    if not 0 < alpha < 0.5:
        raise UserError(f"{what} {value!r}: must be between 0 and 0.5")
    return alpha


def _glob(pattern: str) -> re.Pattern[str]:
    """Only `*` and `?` are wildcards, so `matmul[n=1024]` matches itself (fnmatch would read a class)."""
    return re.compile("^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$")


@dataclass(frozen=True)
class Rule:
    """Per-case settings. `match` is a glob on `suite/benchmark[params]`; backend/dtype/mode globs narrow it."""

    match: str = "*"
    backend: str | None = None
    dtype: str | None = None
    mode: str | None = None
    threshold: float | None = None
    ignore: bool | None = None  # None: this rule leaves the decision of earlier rules alone
    reason: str | None = None
    instructions_tolerance: float | None = None  # for instruction counts (benchbench/metrics/instructions.py)
    # settings of the metrics recorded beside the time (memory_tolerance, compile_threshold, ...): (name, value)
    settings: tuple[tuple[str, Any], ...] = ()

    def applies(self, key: Any) -> bool:
        checks = [(self.match, f"{key.suite}/{key.name}"), (self.backend, key.backend), (self.dtype, key.dtype or ""),
                  (self.mode, key.mode or "")]
        return all(pat is None or _glob(pat).match(value) for pat, value in checks)


@dataclass(frozen=True)
class Policy:
    threshold: float = 0.05
    alpha: float = 0.05
    noisy: str = "inconclusive"
    incomparable: str = "inconclusive"
    missing: str = "inconclusive"
    rules: tuple[Rule, ...] = field(default_factory=tuple)
    source: str | None = None  # the rules file, for messages
    instructions_tolerance: float = DEFAULT_TOLERANCE
    settings: tuple[tuple[str, Any], ...] = ()  # top-level settings of the metrics beside the time

    def metric_settings(self, key: Any) -> dict[str, Any]:
        """The settings of the metrics beside the time for this case: the rules file's, then every matching rule."""
        out = dict(self.settings)
        for rule in self.rules:
            if rule.settings and rule.applies(key):
                out.update(rule.settings)
        return out

    @property
    def criteria(self) -> Criteria:
        return Criteria(threshold=self.threshold, alpha=self.alpha, instructions_tolerance=self.instructions_tolerance)

    def tolerance_for(self, key: Any) -> float:
        """The instruction-count tolerance for this case: the default, then every matching rule in order."""
        tolerance = self.instructions_tolerance
        for rule in self.rules:
            if rule.instructions_tolerance is not None and rule.applies(key):
                tolerance = rule.instructions_tolerance
        return tolerance

    def settings_for(self, key: Any) -> tuple[float, Rule | None]:
        """(threshold, the rule that ignores this case or None) after applying every matching rule."""
        threshold, ignored = self.threshold, None
        for rule in self.rules:
            if rule.applies(key):
                if rule.threshold is not None:
                    threshold = rule.threshold
                if rule.ignore is not None:
                    ignored = rule if rule.ignore else None
        return threshold, ignored

    def threshold_for(self, key: Any) -> float:
        return self.settings_for(key)[0]


_TOP_KEYS = {"fail_on", "alpha", "noisy", "incomparable", "missing", "rules", "instructions_tolerance",
             *metrics.setting_names()}
_RULE_KEYS = {"match", "backend", "dtype", "mode", "threshold", "ignore", "reason", "instructions_tolerance",
              *metrics.setting_names()}


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise UserError(f"{path}: reading a rules file on Python 3.10 needs `pip install tomli`") from None
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise UserError(f"{path}: no such rules file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise UserError(f"{path}: not valid TOML: nested too deeply") from None


def parse_rules(doc: dict[str, Any], source: str = "rules") -> Policy:
    """A rules document (parsed TOML) -> Policy. Unknown keys are errors: a typo must not silently do nothing.

        fail_on = "median:5%"        # default threshold
        alpha = 0.05
        noisy = "inconclusive"       # or "ignore" / "regression"; same for incomparable and missing

        [[rules]]
        match = "training/*"         # glob on suite/benchmark[params]; also backend, dtype, mode
        threshold = "10%"

        [[rules]]
        match = "dataloader/*"
        ignore = true
        reason = "I/O bound, too noisy on shared runners"
    """
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise UserError(f"{source}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(_TOP_KEYS))})")
    policy = Policy(source=source)
    if "fail_on" in doc:
        policy = replace(policy, threshold=parse_threshold(doc["fail_on"], f"{source}: fail_on"))
    if "alpha" in doc:
        policy = replace(policy, alpha=parse_alpha(doc["alpha"], f"{source}: alpha"))
    if "instructions_tolerance" in doc:
        policy = replace(policy, instructions_tolerance=parse_tolerance(doc["instructions_tolerance"],
                                                                        f"{source}: instructions_tolerance"))
    policy = replace(policy, settings=_metric_settings(doc, source))
    for name in ("noisy", "incomparable", "missing"):
        if name in doc:
            if doc[name] not in ACTIONS:
                raise UserError(f"{source}: {name} = {doc[name]!r}: expected one of {', '.join(ACTIONS)}")
            policy = replace(policy, **{name: doc[name]})
    raw_rules = doc.get("rules", [])
    if not isinstance(raw_rules, list) or not all(isinstance(r, dict) for r in raw_rules):
        raise UserError(f"{source}: rules must be a list of tables ([[rules]] sections)")
    rules = []
    for i, raw in enumerate(raw_rules, 1):
        where = f"{source}: rule {i}"
        unknown = set(raw) - _RULE_KEYS
        if unknown:
            raise UserError(f"{where}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(_RULE_KEYS))})")
        for name in ("match", "backend", "dtype", "mode", "reason"):
            if name in raw and not isinstance(raw[name], str):
                raise UserError(f"{where}: {name} must be a string")
        if "ignore" in raw and not isinstance(raw["ignore"], bool):
            raise UserError(f"{where}: ignore must be true or false")
        if not {"threshold", "ignore", "instructions_tolerance", *metrics.setting_names()} & set(raw):
            raise UserError(f"{where}: sets neither threshold, instructions_tolerance nor ignore (nor a metric's "
                            f"setting: {', '.join(metrics.setting_names())})")
        rules.append(Rule(match=raw.get("match", "*"), backend=raw.get("backend"), dtype=raw.get("dtype"),
                          mode=raw.get("mode"), ignore=raw.get("ignore"), reason=raw.get("reason"),
                          threshold=parse_threshold(raw["threshold"], f"{where}: threshold")
                          if "threshold" in raw else None,
                          instructions_tolerance=parse_tolerance(raw["instructions_tolerance"],
                                                                 f"{where}: instructions_tolerance")
                          if "instructions_tolerance" in raw else None,
                          settings=_metric_settings(raw, where)))
    return replace(policy, rules=tuple(rules))


def _metric_settings(doc: dict[str, Any], where: str) -> tuple[tuple[str, Any], ...]:
    """The settings of metrics recorded beside the time that this table sets, each parsed by its metric."""
    return tuple((name, metrics.parse_setting(name, doc[name], where)) for name in metrics.setting_names()
                 if name in doc)


def load_policy(rules_path: str | None = None, fail_on: str | None = None,
                alpha: float | str | None = None) -> Policy:
    """Defaults, then the rules file, then the command line's --fail-on and --alpha."""
    policy = parse_rules(_read_toml(Path(rules_path)), rules_path) if rules_path else Policy()
    if fail_on is not None:
        policy = replace(policy, threshold=parse_threshold(fail_on))
    if alpha is not None:
        policy = replace(policy, alpha=parse_alpha(alpha))
    return policy


# --- the decision ---------------------------------------------------------------------------------
@dataclass
class Finding:
    row: Row
    outcome: str  # regression / inconclusive / ok / ignored
    why: str
    # What decided it, for the output layer: "machine" (the canary moved: row.machine says how), "noisy"
    # (the data cannot tell: row.mde says what it could have seen), or None.
    cause: str | None = None


@dataclass
class MetricFinding:
    """A metric recorded beside the time (peak memory, compile time): its row's part in the gate."""

    row: MetricRow
    outcome: str  # regression / inconclusive / ok / ignored
    why: str


@dataclass
class GateResult:
    verdict: str  # pass / regression / inconclusive
    findings: list[Finding]
    comparison: Comparison  # the baseline against exactly one current report
    policy: Policy
    metric_findings: list[MetricFinding] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return int(EXIT_CODES[self.verdict])

    @property
    def pair(self) -> Pair:
        return self.comparison.pairs[0]

    def by_outcome(self, outcome: str) -> list[Finding]:
        return [f for f in self.findings if f.outcome == outcome]


def judge(row: Row, policy: Policy) -> Finding:
    """One row's part in the gate: regression, inconclusive, ok or ignored, and why."""
    threshold, ignored = policy.settings_for(row.key)
    if ignored is not None:
        return Finding(row, "ignored", ignored.reason or f"ignored by rule match={ignored.match!r}")
    v = row.verdict
    limit = f"+{100 * threshold:g}%"
    if v in ("slower", "noisy") and row.change is not None and counts_instructions(row):
        return _judge_counts(row, row.change, policy)
    if v == "broke":
        # compare_pair calls a row broke only when the current result is there and failed or timed out
        return Finding(row, "regression", f"ok in the baseline, {row.other.status} now")
    if row.machine and v in TIMING_VERDICTS:
        return Finding(row, "inconclusive", "the machine's own speed changed", "machine")
    if v == "slower":
        if row.change is not None and not row.change.from_samples:
            return Finding(row, "inconclusive", f"slower than {limit} by the statistics, but without raw samples "
                           "no significance test is possible (pytest-benchmark: --benchmark-save-data)")
        return Finding(row, "regression", f"significantly slower, beyond {limit} and beyond the noise")
    if v == "noisy" and row.change is not None and "few-samples" not in row.flags \
            and row.change.ci_high < 1 + threshold:
        return Finding(row, "ok", f"noisy, but confidently not slower than {limit}")
    if v == "missing" and not (row.base is not None and row.base.ok):
        return Finding(row, "ok", "missing, but not ok in the baseline either")
    action = {"noisy": policy.noisy, "incomparable": policy.incomparable, "missing": policy.missing}.get(v)
    if action is not None:
        why = {"noisy": f"too few samples to tell (fewer than {policy.criteria.min_samples})"
               if "few-samples" in row.flags else f"cannot tell whether it is slower than {limit}",
               "incomparable": "; ".join(row.reasons + row.env) or "not comparable",
               "missing": "ok in the baseline, " + ("skipped now" if row.other is not None else "absent now")}[v]
        outcome = {"ignore": "ok", "inconclusive": "inconclusive", "regression": "regression"}[action]
        return Finding(row, outcome, why + (f" ({v} = ignore)" if action == "ignore" else ""),
                       "noisy" if v == "noisy" else None)
    return Finding(row, "ok", v)


def counts_instructions(row: Row) -> bool:
    """Whether the row compares values of a tolerance-rule metric run on its own (instruction counts)."""
    return metrics.of_results(row.base, row.other).rule == "tolerance"


def _judge_counts(row: Row, change: Change, policy: Policy) -> Finding:
    """Instruction counts: beyond the tolerance is a regression, no significance test (instructions.py)."""
    tolerance = policy.tolerance_for(row.key)
    if row.verdict == "slower":
        return Finding(row, "regression", f"{100 * (change.ratio - 1):+.2f}% instructions per call, beyond the "
                       f"{100 * tolerance:g}% tolerance")
    why = (f"{100 * (change.ratio - 1):+.2f}% instructions per call, but the repeats of the two sides overlap "
           f"(they vary by up to {100 * change.noise:.2f}%): not deterministic enough to call it")
    outcome = {"ignore": "ok", "inconclusive": "inconclusive", "regression": "regression"}[policy.noisy]
    return Finding(row, outcome, why + (" (noisy = ignore)" if policy.noisy == "ignore" else ""))


def decide(comparison: Comparison, policy: Policy) -> GateResult:
    """The gate's verdict on a comparison of one current report against the baseline."""
    if len(comparison.pairs) != 1:
        raise ValueError("the gate compares exactly one report against the baseline")
    findings = [judge(row, policy) for row in comparison.pairs[0].rows]
    extra = [judge_metric(row, policy) for row in comparison.pairs[0].metric_rows]
    outcomes = {f.outcome for f in [*findings, *extra]}
    verdict = "regression" if "regression" in outcomes else "inconclusive" if "inconclusive" in outcomes else "pass"
    return GateResult(verdict, findings, comparison, policy, extra)


def judge_metric(row: MetricRow, policy: Policy) -> MetricFinding:
    """A metric beside the time: `worse` is a regression, `noisy` follows the policy's noisy action, and a
    metric that cannot be compared (recorded on one side only, another memory counter) is listed, never
    decisive: the time row already says what differs."""
    _, ignored = policy.settings_for(row.key)
    if ignored is not None:
        return MetricFinding(row, "ignored", ignored.reason or f"ignored by rule match={ignored.match!r}")
    if row.verdict == "worse":
        return MetricFinding(row, "regression", row.why)
    if row.verdict == "noisy":
        outcome = {"ignore": "ok", "inconclusive": "inconclusive", "regression": "regression"}[policy.noisy]
        return MetricFinding(row, outcome, row.why + (" (noisy = ignore)" if policy.noisy == "ignore" else ""))
    return MetricFinding(row, "ok", row.why)


def gate(baseline: Report, current: Report, policy: Policy | None = None,
         names: tuple[str | None, str | None] = (None, None), paired: bool | None = None) -> GateResult:
    """Compare `current` against `baseline` under `policy` (per-case thresholds included) and decide.

    `paired`: pair the rounds by index (True for `ab`); None pairs them when the reports say they were
    measured together (compare.paired_reports)."""
    policy = policy or Policy()
    criteria = replace(policy.criteria, paired=paired)
    comp = compare([baseline, current], list(names), criteria, threshold_for=policy.threshold_for,
                   tolerance_for=policy.tolerance_for, settings_for=policy.metric_settings)
    return decide(comp, policy)
