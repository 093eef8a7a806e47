"""Strings from reports are text wherever they go: CSV cells, the Markdown summary, chart labels."""

import contextlib
import csv
import io
import json
from pathlib import Path

from benchbench.cli import main
from benchbench.output.safe_text import csv_cell, md_code, md_text

DATA = Path(__file__).parent / "data"


def test_csv_cells_that_a_spreadsheet_would_run_get_an_apostrophe():
    for text in ("=1+1", "+1", "-2", "@SUM(A1)", "\t=1"):
        assert csv_cell(text) == "'" + text
    assert csv_cell("matmul") == "matmul" and csv_cell(-2.5) == -2.5


def test_markdown_text_shows_html_and_pipes_as_text():
    assert md_text("<img src=x onerror=alert(1)>|x") == "&lt;img src=x onerror=alert(1)&gt;\\|x"
    assert md_text("a\nb") == "a b"
    assert md_code("a`b|c") == "a'b/c"


def _reports(tmp_path: Path, benchmark: str, names=("base", "cur")) -> tuple[Path, Path]:
    paths = []
    for i, name in enumerate(names):
        doc = json.loads((DATA / "report_v2.json").read_text())
        doc["run_id"] += str(i)
        for res in doc["results"]:
            res["key"]["benchmark"] = benchmark + res["key"]["benchmark"]
            for rnd in res.get("rounds") or []:
                rnd["samples"] = [x * (1 + 0.5 * i) for x in rnd["samples"]]
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(doc))
        paths.append(path)
    return paths[0], paths[1]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def test_csv_exports_neutralize_formulas(tmp_path):
    base, cur = _reports(tmp_path, "=HYPERLINK(\"http://x\")")
    for argv in (["show", str(cur), "--format", "csv"], ["compare", str(base), str(cur), "--format", "csv"]):
        rc, out, err = run(*argv)
        assert rc == 0, err
        cells = [c for row in csv.reader(io.StringIO(out)) for c in row]
        assert not any(c.startswith(("=", "+", "@")) for c in cells)
        assert any(c.startswith("'=HYPERLINK") for c in cells)


def test_the_gate_summary_escapes_raw_html_and_pipes(tmp_path):
    base, cur = _reports(tmp_path, "<script>alert(1)</script>|")
    summary = tmp_path / "summary.md"
    rc, _, err = run("gate", str(cur), "--baseline", str(base), "--summary", str(summary))
    assert rc in (0, 1, 3), err
    text = summary.read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text
    table = [line for line in text.splitlines() if "&lt;script&gt;" in line and line.startswith("|")]
    header = next(line for line in text.splitlines() if line.startswith("|"))
    assert table and all(line.count(" | ") == header.count(" | ") for line in table)  # no extra cell


def test_dollar_signs_in_labels_are_text_on_the_html_page(tmp_path):
    base, cur = _reports(tmp_path, "a$\\frac{$x^$", names=("base$x^$", "cur$\\frac{"))
    page = tmp_path / "page.html"
    rc, _, err = run("report", str(base), str(cur), "--html", str(page))
    assert rc == 0, err
    assert "x^$" in page.read_text()
