"""Human-readable text for `benchbench env`: facts grouped, then checks grouped by verdict. Returns strings."""

from __future__ import annotations

import json
from typing import Any

from benchbench.environment.checks import VERDICTS

GROUP_TITLES = {
    "host": "Host", "python": "Python", "torch": "PyTorch build",
    "precision": "Precision flags", "debug": "Debug modes", "threads": "Threads", "cpu": "CPU",
    "memory": "Memory", "power": "Power", "limits": "Limits", "gpu": "NVIDIA GPU / driver",
    "backends": "Backends", "mps": "MPS (Apple)", "env": "Environment variables (allow-listed)",
}


def _bytes(n: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def value_text(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key.endswith("_bytes") and isinstance(value, (int, float)):
        return _bytes(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)) and all(not isinstance(v, (dict, list)) for v in value):
        return ", ".join(str(v) for v in value) or "(none)"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def _lines(key: str, value: Any, indent: int) -> list[str]:
    pad = "  " * indent
    if isinstance(value, dict) and value:
        out = [f"{pad}{key}:"]
        for k, v in value.items():
            out += _lines(str(k), v, indent + 1)
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = [f"{pad}{key}:"]
        for i, item in enumerate(value):
            label = item.get("index", item.get("pid", i)) if isinstance(item, dict) else i
            out += _lines(f"[{label}]", item, indent + 1)
        return out
    if isinstance(value, dict):
        return [f"{pad}{key}: (none)"]
    return [f"{pad}{key}: {value_text(key, value)}"]


def facts_text(facts: dict[str, Any]) -> str:
    """Top-level scalars first (under "Run"), then one section per group."""
    out = []
    scalars = {k: v for k, v in facts.items() if not isinstance(v, dict)}
    if scalars:
        out.append("== Run ==")
        for k, v in scalars.items():
            out += _lines(str(k), v, 1)
        out.append("")
    for group, body in facts.items():
        if group in scalars:
            continue
        out.append(f"== {GROUP_TITLES.get(group, group)} ==")
        if not body:
            out.append("  (none)")
        for k, v in body.items():
            out += _lines(str(k), v, 1)
        out.append("")
    return "\n".join(out).rstrip()


def _compact(key: str, value: Any) -> str:
    """One-line form of a nested value, with units: {name=H100, memory_used_bytes=8.0 GiB}."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_compact(str(k), v)}" for k, v in value.items()) + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return "[" + ", ".join(_compact(key, v) for v in value) + "]"
    return value_text(key, value)


def evidence_text(evidence: dict[str, Any]) -> str:
    return "; ".join(f"{k}={_compact(str(k), v)}" for k, v in evidence.items()) or "(none)"


def checks_text(checks: list[dict[str, Any]]) -> str:
    out = []
    for verdict in VERDICTS:
        group = [c for c in checks if c.get("verdict") == verdict]
        if not group:
            continue
        out.append(f"== {verdict.upper()} ({len(group)}) ==")
        for c in group:
            out.append(f"  [{c['id']}] {c.get('title', '')}")
            out.append(f"      evidence: {evidence_text(c.get('evidence') or {})}")
            if c.get("advice"):
                out.append(f"      advice: {c['advice']}")
        out.append("")
    return "\n".join(out).rstrip()


def summary_line(checks: list[dict[str, Any]]) -> str:
    counts = {v: sum(1 for c in checks if c.get("verdict") == v) for v in VERDICTS}
    return ", ".join(f"{n} {v}" for v, n in counts.items())


def fingerprint_text(fp: dict[str, Any]) -> str:
    return "\n".join(["== Comparability fingerprint =="] + [f"  {k}: {value_text(k, v)}" for k, v in fp.items()])


def environment_text(env: dict[str, Any]) -> str:
    """The whole `benchbench env` page for one collect() result."""
    parts = [facts_text(env.get("facts") or {}), fingerprint_text(env.get("fingerprint") or {}),
             checks_text(env.get("checks") or []), f"checks: {summary_line(env.get('checks') or [])}"]
    return "\n\n".join(p for p in parts if p)
