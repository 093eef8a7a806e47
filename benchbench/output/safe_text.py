"""Text from reports (case names, reasons, file names, environment values) made safe for where it goes.

A report may come from anyone: its strings must not turn into a spreadsheet formula, into HTML or
table structure in a Markdown summary that GitHub renders, or into matplotlib math (see `html.RC`).
"""

from __future__ import annotations

from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text, never runs: a string starting with = + - @ (or a tab or
    carriage return) gets a leading apostrophe (OWASP's CSV injection advice). Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: csv_cell(v) for k, v in row.items()}


def md_text(value: Any) -> str:
    """Text for a Markdown (GitHub) table cell or line: raw HTML shown as text, `|` that cannot end a cell,
    one line."""
    text = str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    return " ".join(text.splitlines())


def md_code(value: Any) -> str:
    """Text for a Markdown code span: no backtick that could end it, one line, no `|`."""
    return " ".join(str(value).replace("`", "'").replace("|", "/").splitlines())
