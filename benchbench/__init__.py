"""benchbench: how fast is this machine for PyTorch, and did it just get slower?

The public API for suites is `benchmark`, `Case` and `Skip`; `load` reads a report. Importing this
package imports nothing else: each name below loads its module on first use, so `import
benchbench.analysis` does not pull in the suite API and its backends (and nothing imports torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from benchbench._version import __version__
from benchbench.errors import Skip, UserError

if TYPE_CHECKING:
    from benchbench.api import Benchmark, Case, Context, benchmark, usable_cpus
    from benchbench.model.report import CaseKey, Report, Result

_LAZY = {"Benchmark": "benchbench.api", "Case": "benchbench.api", "Context": "benchbench.api",
         "benchmark": "benchbench.api", "usable_cpus": "benchbench.api", "CaseKey": "benchbench.model.report",
         "Report": "benchbench.model.report", "Result": "benchbench.model.report"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'benchbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def load(path: str) -> Report:
    """Read a benchbench report, or a pytest-benchmark JSON file as a report (raises ReportError,
    a UserError, with a one-line message)."""
    from benchbench.model.formats import load_any

    return load_any(path)


__all__ = ["__version__", "Benchmark", "Case", "CaseKey", "Context", "Report", "Result", "Skip", "UserError",
           "benchmark", "load", "usable_cpus"]
