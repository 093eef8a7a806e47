"""Checked reading of untrusted documents: the boundary that every file benchbench reads goes through.

A report, a pytest-benchmark file, a page's embedded data, a history line or a rules file may come
from another machine, another tool, a crashed run or an attacker. The readers parse them here and
check the fields that the analysis relies on, so that past the reader the analysis may trust its
input. Every refusal is a `ReportError` (exit 2) of one line naming the file and the field, e.g.
`base.json: results[3].rounds[0].samples[2]: not a finite number (NaN)`.

What is checked everywhere: the text parses as JSON (numbers too long for Python's int parser, and
documents nested deeper than Python's recursion, are refused, not raised); the document is at most
`MAX_DEPTH` containers deep; every number is finite and within +-MAX_MAGNITUDE (so that squares and
sums of samples stay finite), unless the format allows other values in that place (`allow_nonfinite`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from benchbench.errors import ReportError

MAX_DEPTH = 64  # containers within containers: far more than any benchbench or pytest-benchmark file has
# No time, count, rate or size comes near this; beyond it squares and sums of samples overflow a float.
MAX_MAGNITUDE = 1e100
_ABSENT = object()


def loads(text: str, source: str) -> Any:
    """`json.loads`, turning every way it can fail into one line naming `source`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{source}: not valid JSON (truncated or corrupt?): {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise ReportError(f"{source}: not readable JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. Python's limit on the digits of an integer
        raise ReportError(f"{source}: not readable JSON: {exc}") from None


def path_text(path: tuple[Any, ...]) -> str:
    """('results', 3, 'samples') -> 'results[3].samples'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def number_problem(value: Any) -> str | None:
    """Why `value` is not a usable number (None when it is a finite int or float within MAX_MAGNITUDE)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected a number, got {type_name(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"not a finite number ({value})"
    if not -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:
        return f"out of range (beyond {MAX_MAGNITUDE:g})"
    return None


def type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def check_tree(doc: Any, source: str, allow_nonfinite: Callable[[tuple[Any, ...]], bool] | None = None) -> None:
    """Refuse a document nested deeper than MAX_DEPTH or holding a number that is not finite or beyond
    MAX_MAGNITUDE (except
    where `allow_nonfinite(path)` says the format allows it). Iterative, and linear in the document's size:
    a path is built only for containers and for the value refused."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), doc)]
    while stack:
        path, container = stack.pop()
        if len(path) >= MAX_DEPTH:
            raise ReportError(f"{source}: {path_text(path)}: nested deeper than {MAX_DEPTH} levels")
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for k, v in items:
            kind = type(v)
            if kind is float:
                if -MAX_MAGNITUDE <= v <= MAX_MAGNITUDE:  # finite and in range (False for NaN)
                    continue
            elif kind is dict or kind is list:
                stack.append(((*path, k), v))
                continue
            elif kind is not int or -MAX_MAGNITUDE <= v <= MAX_MAGNITUDE:
                continue
            problem = number_problem(v)
            if problem and not (allow_nonfinite and allow_nonfinite((*path, k))):
                raise ReportError(f"{source}: {path_text((*path, k))}: {problem}")
    if type(doc) in (int, float):
        problem = number_problem(doc)
        if problem:
            raise ReportError(f"{source}: (top level): {problem}")


class Fields:
    """Typed access to one object of a document; every wrong type is a one-line ReportError naming the field."""

    def __init__(self, doc: Any, source: str, path: tuple[Any, ...] = ()) -> None:
        if not isinstance(doc, dict):
            raise ReportError(f"{source}: {path_text(path)}: expected an object, got {type_name(doc)}")
        self.doc, self.source, self.path = doc, source, path

    def fail(self, name: Any, problem: str) -> ReportError:
        return ReportError(f"{self.source}: {path_text((*self.path, name))}: {problem}")

    def raw(self, name: str, required: bool = False) -> Any:
        value = self.doc.get(name, _ABSENT)
        if value is _ABSENT:
            if required:
                raise self.fail(name, "missing")
            return None
        return value

    def str(self, name: str, required: bool = False) -> str | None:
        value = self.raw(name, required)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise self.fail(name, f"expected a string, got {type_name(value)}")
        return value

    def bool(self, name: str) -> bool | None:
        value = self.raw(name)
        if value is not None and not isinstance(value, bool):
            raise self.fail(name, f"expected true or false, got {type_name(value)}")
        return value

    def number(self, name: str, minimum: float | None = None, integer: bool = False,
               required: bool = False) -> float | int | None:
        value = self.raw(name, required)
        if value is None and not required:
            return None
        return check_number(value, self.source, (*self.path, name), minimum, integer)

    def obj(self, name: str) -> Fields:
        value = self.raw(name)
        return Fields({} if value is None else value, self.source, (*self.path, name))

    def list(self, name: str) -> list[Any]:
        value = self.raw(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(name, f"expected a list, got {type_name(value)}")
        return value

    def objects(self, name: str) -> list[Fields]:
        return [Fields(v, self.source, (*self.path, name, i)) for i, v in enumerate(self.list(name))]

    def strings(self, name: str) -> list[str]:
        values = self.list(name)
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise ReportError(f"{self.source}: {path_text((*self.path, name, i))}: expected a string, "
                                  f"got {type_name(v)}")
        return values

    def numbers(self, name: str, minimum: float | None = None) -> list[float]:
        return [float(check_number(v, self.source, (*self.path, name, i), minimum))
                for i, v in enumerate(self.list(name))]

    def scalars(self, name: str) -> dict[str, Any]:
        """An object whose values are strings, finite numbers, true/false or null (parameters, a fingerprint)."""
        f = self.obj(name)
        for k, v in f.doc.items():
            if isinstance(v, (dict, list)):
                raise f.fail(k, f"expected a string, number, true/false or null, got {type_name(v)}")
        return f.doc


def check_number(value: Any, source: str, path: tuple[Any, ...], minimum: float | None = None,
                 integer: bool = False) -> float | int:
    problem = number_problem(value)
    if problem is None and integer and not (isinstance(value, int) or float(value).is_integer()):
        problem = f"expected a whole number, got {value}"
    if problem is None and minimum is not None and value < minimum:
        problem = f"must be at least {minimum:g}, got {value}"
    if problem:
        raise ReportError(f"{source}: {path_text(path)}: {problem}")
    return int(value) if integer else value
