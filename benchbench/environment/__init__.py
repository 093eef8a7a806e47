"""Environment diagnostics: facts, checks with verdicts and advice, and the comparability fingerprint
embedded in every report.

    collect(backends, context=None) -> {"fingerprint": {...}, "facts": {...}, "checks": [...]}

`collect()` never raises and stays fast (it runs at the start of every `run`): a fact that cannot be
read says "unavailable: why", a check that crashes becomes a warn result. Modules: `facts` reads,
`nvml` reads the NVIDIA driver, `checks` judges, `fingerprint` decides comparability; their text
for `benchbench env` is in `benchbench.output.environment`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from benchbench.environment.fingerprint import KEYS as FINGERPRINT_KEYS
from benchbench.environment.fingerprint import MATTERS, fingerprint_diff, from_facts
from benchbench.environment.fingerprint import matters as fingerprint_matters

if TYPE_CHECKING:
    from benchbench.environment.checks import VERDICTS, Context, run_checks
    from benchbench.measure.backends import Backend


def __getattr__(name: str) -> Any:
    """The checks load on first use: reading a report's fingerprint (compare, history) needs none of them."""
    if name in ("VERDICTS", "Context", "run_checks"):
        from benchbench.environment import checks

        return getattr(checks, name)
    raise AttributeError(f"module 'benchbench.environment' has no attribute {name!r}")

__all__ = ["FINGERPRINT_KEYS", "MATTERS", "VERDICTS", "Context", "collect", "collect_facts", "fingerprint",
           "fingerprint_diff", "fingerprint_matters", "run_checks"]


def collect_facts(backends: list[Backend]) -> dict[str, Any]:
    from benchbench.environment import facts

    return facts.collect_facts(backends)


def fingerprint(backends: list[Backend]) -> dict[str, Any]:
    """What must match for two results to be comparable (besides the benchmark definition)."""
    return from_facts(collect_facts(backends))


def collect(backends: list[Backend], context: Context | None = None) -> dict[str, Any]:
    """Facts, fingerprint and checks for these backends (benchbench.measure.backends.discover()). Never raises."""
    t0 = time.perf_counter()
    try:
        facts = collect_facts(backends)
    except Exception as exc:  # noqa: BLE001 - the per-field guards should make this unreachable
        facts = {"error": f"unavailable: {type(exc).__name__}: {exc}"}
    try:
        fp = from_facts(facts)
    except Exception as exc:  # noqa: BLE001
        fp = {"error": f"unavailable: {type(exc).__name__}: {exc}"}
    from benchbench.environment.checks import run_checks

    checks = run_checks(facts, context)
    facts["collect_seconds"] = round(time.perf_counter() - t0, 3)
    return {"fingerprint": fp, "facts": facts, "checks": checks}
