"""Every file benchbench reads as reports: its own JSON, pytest-benchmark JSON, and its own HTML pages,
told apart by content.

An HTML page (`benchbench report --html`) embeds the reports it shows as JSON in
`<script type="application/json" id="benchbench-data">`; the block holds `{"format":
"benchbench.page", "reports": [report documents, ...], ...}`.
"""

from __future__ import annotations

import os
from typing import Any

from benchbench.errors import ReportError
from benchbench.model.pytest_benchmark import from_pytest_benchmark, is_pytest_benchmark
from benchbench.model.report import SCHEMA, Report, parse, read_json
from benchbench.model.validation import loads

PAGE_DATA_ID = "benchbench-data"
PAGE_FORMAT = "benchbench.page"
_PAGE_DATA_OPEN = f'<script type="application/json" id="{PAGE_DATA_ID}">'
_PAGE_DATA_CLOSE = "</script>"


def _is_html(path: str | os.PathLike) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(512).lstrip().lower()
    except OSError:
        return False  # read_json says why, in one line
    return head.startswith((b"<!doctype html", b"<html"))


def page_data(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON document embedded in a benchbench HTML page."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read: {exc}") from None
    # Two plain searches, each once over the text: linear in the size of the page, however many
    # opening tags it holds (a regular expression rescans to the end from every one of them).
    start = text.find(_PAGE_DATA_OPEN)
    end = text.find(_PAGE_DATA_CLOSE, start + len(_PAGE_DATA_OPEN)) if start >= 0 else -1
    if end < 0:
        raise ReportError(f"{path}: an HTML file without benchbench data (not written by `benchbench report --html`)")
    doc = loads(text[start + len(_PAGE_DATA_OPEN):end], f"{path}: the page's embedded data")
    if not isinstance(doc, dict) or doc.get("format") != PAGE_FORMAT:
        raise ReportError(f"{path}: the page's embedded data is not a benchbench page document")
    return doc


def load_reports(path: str | os.PathLike) -> list[Report]:
    """Every report a file holds: one for a report or pytest-benchmark file, all of them for an HTML page."""
    if _is_html(path):
        docs = page_data(path).get("reports")
        if not isinstance(docs, list) or not docs:
            raise ReportError(f"{path}: the page holds no reports")
        return [parse(d, f"{path} (report {i + 1})") for i, d in enumerate(docs)]
    return [_load_json(path)]


def load_any(path: str | os.PathLike) -> Report:
    """A benchbench report, a pytest-benchmark JSON file, or a benchbench HTML page that shows one report
    (raises ReportError with a one-line message)."""
    reports = load_reports(path)
    if len(reports) > 1:
        raise ReportError(f"{path}: the page holds {len(reports)} reports; read them with "
                          "benchbench.model.formats.load_reports")
    return reports[0]


def _load_json(path: str | os.PathLike) -> Report:
    doc = read_json(path)
    if isinstance(doc, dict) and doc.get("schema") == SCHEMA:
        return parse(doc, str(path))
    if is_pytest_benchmark(doc):
        return from_pytest_benchmark(doc, str(path))
    raise ReportError(f"{path}: neither a benchbench report (\"schema\": \"{SCHEMA}\") nor a pytest-benchmark "
                      "JSON file (\"benchmarks\" list)")
