"""benchbench: how fast is this machine for PyTorch, and did it just get slower?

The public API for suites is `benchmark`, `Case` and `Skip`; `load` reads a report. Importing this
package does not import torch.
"""

from benchbench._version import __version__
from benchbench.api import Benchmark, Case, Context, benchmark, usable_cpus
from benchbench.errors import Skip, UserError
from benchbench.formats import load_any
from benchbench.report import CaseKey, Report, Result


def load(path: str) -> Report:
    """Read a benchbench report, or a pytest-benchmark JSON file as a report (raises ReportError,
    a UserError, with a one-line message)."""
    return load_any(path)


__all__ = ["__version__", "Benchmark", "Case", "CaseKey", "Context", "Report", "Result", "Skip", "UserError",
           "benchmark", "load", "usable_cpus"]
