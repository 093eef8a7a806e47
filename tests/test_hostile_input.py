"""Hostile and unlucky input, generated with Hypothesis, through every reader and every command that reads.

Each property: whatever a file holds, the command ends with no traceback and with exit 0 or 2 (gate
also 1 or 3 when the file still reads as a report and the comparison decides so): exit 1 must mean a
regression, never a broken input. Mutations take a valid document and put a hostile value (NaN,
Infinity, huge or long numbers, deep nesting, a value of the wrong type) at one of its fields, or cut
or corrupt its bytes. The settings keep this file to seconds: few examples, derandomized, no deadline.
`test_shrunk_*` keep the failures Hypothesis found (shrunk) as plain regression tests.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchbench.cli import main

DATA = Path(__file__).parent / "data"
# BENCHBENCH_FUZZ_EXAMPLES=500 for a longer hunt on a developer's machine; CI keeps the default
EXAMPLES = int(os.environ.get("BENCHBENCH_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SLOW_FUZZ = settings(FUZZ, max_examples=max(8, EXAMPLES // 3))  # the HTML page renders charts: fewer examples
PER_COMMAND_S = 60  # bounded time: generous for a loaded CI machine, tiny against a quadratic blow-up


def _small_report(scale: float = 1.0) -> dict:
    """The golden v2 report cut down to two results and a few environment entries, samples scaled."""
    doc = json.loads((DATA / "report_v2.json").read_text())
    doc["results"] = doc["results"][:2]
    env = doc["environment"]
    env["facts"] = {k: env["facts"][k] for k in list(env["facts"])[:4]}
    env["checks"] = env["checks"][:2]
    for res in doc["results"]:
        for rnd in res.get("rounds") or []:
            rnd["samples"] = [x * scale for x in rnd["samples"]]
    if scale != 1.0:
        doc["run_id"] += "-current"
    return doc


BASE = _small_report()
CURRENT = _small_report(1.07)
PB = json.loads((DATA / "pytest_benchmark_current.json").read_text())


def _paths(doc: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:3]):
            out += _paths(v, (*path, i))
    return out


def _deep(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


HOSTILE = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, -1.0, 0, 10**400, True, None, "", "x",
                     "$\\alpha$", "=HYPERLINK(1)", "<b>|</b>", [], {}, [None], {"": None}]),
    st.builds(_deep, st.integers(70, 3000)),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                 max_leaves=6),
)


def _mutate(doc: Any, path: tuple, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    if not path:
        return value
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return doc


def mutated(doc: Any) -> st.SearchStrategy[Any]:
    return st.builds(_mutate, st.just(doc), st.sampled_from(_paths(doc)), HOSTILE)


def _dump(doc: Any) -> str:
    """JSON text, NaN and Infinity included (as a careless writer produces), deep nesting included."""
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)
    try:
        return json.dumps(doc)
    finally:
        sys.setrecursionlimit(limit)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    start = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    assert time.monotonic() - start < PER_COMMAND_S
    return rc, out.getvalue(), err.getvalue()


def assert_refused_or_read(result: tuple[int, str, str], ok: tuple[int, ...] = (0,)) -> None:
    rc, _, err = result
    assert "Traceback" not in err, err
    assert rc in (*ok, 2), (rc, err)
    if rc == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("benchbench: error: "), err


GATE_CODES = (0, 1, 3)


# --- benchbench reports through every command --------------------------------------------------------
@FUZZ
@given(doc=mutated(CURRENT))
def test_a_hostile_report_through_show_compare_and_gate(tmp_path, doc):
    base, cur = tmp_path / "base.json", tmp_path / "cur.json"
    base.write_text(_dump(BASE))
    cur.write_text(_dump(doc))
    for fmt in ("table", "csv", "markdown", "json"):
        assert_refused_or_read(run("show", str(cur), "--format", fmt))
    for fmt in ("table", "markdown", "csv", "json"):
        assert_refused_or_read(run("compare", str(base), str(cur), "--format", fmt))
    result = run("gate", str(cur), "--baseline", str(base), "--summary", str(tmp_path / "s.md"))
    assert_refused_or_read(result, GATE_CODES)


@FUZZ
@given(doc=mutated(BASE))
def test_a_hostile_baseline_never_reads_as_a_regression(tmp_path, doc):
    base, cur = tmp_path / "base.json", tmp_path / "cur.json"
    base.write_text(_dump(doc))
    cur.write_text(_dump(CURRENT))
    assert_refused_or_read(run("gate", str(cur), "--baseline", str(base)), GATE_CODES)


@SLOW_FUZZ
@given(doc=mutated(CURRENT))
def test_a_hostile_report_through_the_html_page(tmp_path, doc):
    base, cur = tmp_path / "base.json", tmp_path / "cur.json"
    base.write_text(_dump(BASE))
    cur.write_text(_dump(doc))
    assert_refused_or_read(run("report", str(base), str(cur), "--html", str(tmp_path / "page.html")))


@FUZZ
@given(doc=mutated(CURRENT), tail=st.sampled_from(["", "{", '{"schema": "benchbench.report"', "\x00\xff"]))
def test_history_skips_a_hostile_file_and_line_and_reads_the_rest(tmp_path, doc, tail):
    folder = Path(tempfile.mkdtemp(dir=tmp_path))  # tmp_path is shared by the examples
    (folder / "a.json").write_text(_dump(BASE))
    (folder / "bad.json").write_text(_dump(doc))
    (folder / "history.jsonl").write_text(_dump(doc).replace("\n", " ") + "\n" + json.dumps(CURRENT) + "\n" + tail)
    rc, out, err = run("history", str(folder), "--format", "json")
    assert "Traceback" not in err, err
    assert rc == 0, err
    runs = {r["run_id"] for r in json.loads(out)["runs"]}
    assert {BASE["run_id"], CURRENT["run_id"]} <= runs  # one bad file or line aborts nothing


# --- pytest-benchmark files ----------------------------------------------------------------------------
@FUZZ
@given(doc=mutated(PB))
def test_a_hostile_pytest_benchmark_file_through_show_compare_and_gate(tmp_path, doc):
    base, cur = DATA / "pytest_benchmark_base.json", tmp_path / "cur.json"
    cur.write_text(_dump(doc))
    assert_refused_or_read(run("show", str(cur), "--format", "csv"))
    assert_refused_or_read(run("compare", str(base), str(cur)))
    assert_refused_or_read(run("gate", str(cur), "--baseline", str(base)), GATE_CODES)


# --- bytes: truncated, corrupted, not text -------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_cut_or_corrupted_bytes_are_refused_in_one_line(tmp_path, data):
    text = _dump(CURRENT).encode()
    cut = data.draw(st.integers(0, len(text)))
    junk = data.draw(st.binary(max_size=8))
    at = data.draw(st.integers(0, cut))
    path = tmp_path / "cur.json"
    path.write_bytes(text[:at] + junk + text[at:cut])
    base = tmp_path / "base.json"
    base.write_text(_dump(BASE))
    assert_refused_or_read(run("gate", str(path), "--baseline", str(base)), GATE_CODES)


# --- HTML pages ----------------------------------------------------------------------------------------
PAGE_OPEN = '<script type="application/json" id="benchbench-data">'


@FUZZ
@given(doc=mutated({"format": "benchbench.page", "reports": [CURRENT]}),
       prefix=st.sampled_from(["<!doctype html><html>", "<html>" + PAGE_OPEN * 3]))
def test_a_hostile_page_is_refused_or_read(tmp_path, doc, prefix):
    page = tmp_path / "page.html"
    page.write_text(f"{prefix}{PAGE_OPEN}{_dump(doc)}</script></html>")
    assert_refused_or_read(run("show", str(page)))


def test_a_10mb_crafted_page_is_refused_quickly(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<!doctype html><html>" + PAGE_OPEN * (10_000_000 // len(PAGE_OPEN)))
    start = time.monotonic()
    rc, _, err = run("show", str(page))
    assert rc == 2 and "without benchbench data" in err
    assert time.monotonic() - start < 10  # the old regex took minutes on this page


# --- rules files ---------------------------------------------------------------------------------------
TOML = st.one_of(
    st.binary(max_size=40).map(lambda b: b"fail_on = '5%'\n" + b),
    st.integers(1, 5000).map(lambda d: b"x = " + b"[" * d + b"]" * d + b"\n"),
    st.sampled_from([b"\xff\xfe\x00", b"fail_on = 5\n", b"alpha = nan\n", b"alpha = inf\n", b"[[rules]]\nmatch=1\n",
                     b"rules = 3\n", b"[[rules]]\nthreshold = '1e400%'\n", b"fail_on = 'median:nan%'\n",
                     b"instructions_tolerance = -1e999\n", b"noisy = []\n"]),
)


@FUZZ
@given(text=TOML)
def test_a_hostile_rules_file_is_refused_in_one_line(tmp_path, text):
    rules = tmp_path / "rules.toml"
    rules.write_bytes(text)
    base, cur = tmp_path / "base.json", tmp_path / "cur.json"
    base.write_text(_dump(BASE))
    cur.write_text(_dump(CURRENT))
    assert_refused_or_read(run("gate", str(cur), "--baseline", str(base), "--rules", str(rules)), GATE_CODES)


# --- shrunk failures, kept as regression tests ----------------------------------------------------------
SHRUNK = [
    (("results", 0, "rounds", 0, "samples", 0), math.nan),
    (("results", 0, "rounds", 0, "samples", 0), math.inf),
    (("results", 0, "rounds", 0, "samples", 0), 10**400),
    (("results", 0, "key", "params"), {"n": [1]}),
    (("results", 0, "key", "suite"), 3),
    (("results", 0, "flags"), [None]),
    (("environment", "fingerprint"), []),
    (("backends",), [{"name": 1}]),
    (("results", 0, "loops_per_sample"), 0.5),
    (("results",), _deep(5000)),
    (("command",), "benchbench run"),
    # found by Hypothesis (BENCHBENCH_FUZZ_EXAMPLES=400), shrunk:
    (("environment", "canary"), 0.0),  # the canary read .get() of a number
    (("results", 0, "rounds", 0, "samples", 0), 1e308),  # finite, but its square overflowed in stats
]


@pytest.mark.parametrize(("path", "value"), SHRUNK)
def test_shrunk_report_failures_are_refused_naming_the_field(tmp_path, path, value):
    cur, base = tmp_path / "cur.json", tmp_path / "base.json"
    cur.write_text(_dump(_mutate(CURRENT, path, value)))
    base.write_text(_dump(BASE))
    rc, _, err = run("gate", str(cur), "--baseline", str(base))
    assert rc == 2, err
    assert str(cur) in err and "Traceback" not in err
