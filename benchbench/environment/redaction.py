"""What of the environment a shareable file may hold: the rule `env` applies, for values a user gives.

`benchbench env` records only the variables in `facts.ENV_ALLOWLIST` (they change how fast PyTorch
runs, and hold no secrets); any other variable may hold one. The same rule for the environment a
side runs with (`ab --baseline-env KEY=VALUE`, `--current-env`) and for the command line stored in a
report: an allow-listed variable keeps its value, any other is stored by its name only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from benchbench.environment.facts import ENV_ALLOWLIST

REDACTED = "(redacted)"
ENV_OPTIONS = ("--baseline-env", "--current-env")  # options whose argument is KEY=VALUE


def redact_value(key: str, value: str) -> str:
    return value if key in ENV_ALLOWLIST else REDACTED


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    """Allow-listed variables with their values, every other one by its name only."""
    return {k: redact_value(k, v) for k, v in env.items()}


def _redact_assignment(text: str) -> str:
    key, sep, value = text.partition("=")
    return f"{key}={redact_value(key, value)}" if sep else text


def redact_command(argv: Sequence[str]) -> list[str]:
    """A command line with the values of KEY=VALUE arguments of ENV_OPTIONS redacted by the same rule."""
    out: list[str] = []
    after_option = False
    for arg in argv:
        if after_option:
            out.append(_redact_assignment(arg))
            after_option = False
            continue
        option, eq, rest = arg.partition("=")
        if _env_option(option) and eq:
            out.append(f"{option}={_redact_assignment(rest)}")
        else:
            out.append(arg)
            after_option = _env_option(arg)
    return out


def _env_option(arg: str) -> bool:
    """One of ENV_OPTIONS, also as the unambiguous abbreviation argparse accepts (`--baseline-e`)."""
    return any(opt.startswith(arg) and len(arg) >= len(opt) - 2 for opt in ENV_OPTIONS)
