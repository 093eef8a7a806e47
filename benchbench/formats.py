"""Every file benchbench reads as a report: its own JSON, and pytest-benchmark JSON, told apart by content."""

from __future__ import annotations

import os

from benchbench.errors import ReportError
from benchbench.pytest_benchmark import from_pytest_benchmark, is_pytest_benchmark
from benchbench.report import SCHEMA, Report, parse, read_json


def load_any(path: str | os.PathLike) -> Report:
    """A benchbench report or a pytest-benchmark JSON file (raises ReportError with a one-line message)."""
    doc = read_json(path)
    if isinstance(doc, dict) and doc.get("schema") == SCHEMA:
        return parse(doc, str(path))
    if is_pytest_benchmark(doc):
        return from_pytest_benchmark(doc, str(path))
    raise ReportError(f"{path}: neither a benchbench report (\"schema\": \"{SCHEMA}\") nor a pytest-benchmark "
                      "JSON file (\"benchmarks\" list)")
