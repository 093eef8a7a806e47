"""The report command end to end, and its page in a real browser (headless Chromium, when installed)."""

import re
from pathlib import Path

import chromium
import numpy as np
import pytest
from conftest import run_cli

from benchbench.model.formats import load_any, load_reports
from benchbench.model.report import load, save
from benchbench.output.html import PALETTE

REFERENCE = Path(__file__).parent.parent / "reports" / "reference"
TENSOR_OPS = str(REFERENCE / "cpu-epyc-2core_tensor_ops-autograd_quick.json")
TRAINING = str(REFERENCE / "cpu-epyc-2core_training_quick.json")

needs_chromium = pytest.mark.skipif(
    chromium.find() is None,
    reason="chromium is not installed (apt-get install chromium): report pages are not checked in a browser")


def slowed_copy(tmp_path, factor=1.3, case="matmul"):
    """The tensor_ops reference report with one benchmark's samples made slower: a real regression to show."""
    rep = load(TENSOR_OPS)
    for r in rep.results:
        if r.key.benchmark == case and r.ok:
            r.samples = [x * factor for x in r.samples]
            r.__dict__.pop("stats", None)
    rep.run_id = "slowed"
    path = tmp_path / "current.json"
    save(rep, path)
    return str(path)


def test_report_html_writes_one_page_that_loads_back(tmp_path):
    out = tmp_path / "out" / "page.html"
    proc = run_cli("report", TENSOR_OPS, "--html", str(out), check_rc=0)
    assert re.search(r"page written to .*page.html \(\d+ KiB\)", proc.stderr)
    assert load_any(out).run_id == load(TENSOR_OPS).run_id
    proc = run_cli("report", str(out), "--format", "table", check_rc=0)  # a page is an input like any report
    assert "ceiling_matmul" in proc.stdout


def test_report_with_a_baseline_shows_the_gate(tmp_path):
    current = slowed_copy(tmp_path)
    out = tmp_path / "gate.html"
    run_cli("report", current, "--baseline", TENSOR_OPS, "--html", str(out), check_rc=0)
    page = out.read_text()
    assert "Gate: regression" in page and '<tr class="regression">' in page
    assert [r.run_id for r in load_reports(out)] == [load(TENSOR_OPS).run_id, "slowed"]
    md = run_cli("report", current, "--baseline", TENSOR_OPS, "--format", "markdown", check_rc=0).stdout
    assert "### benchbench gate: ❌ REGRESSION" in md and md.startswith("## cpu-epyc-2core_tensor_ops-autograd_quick")


def test_reports_without_common_cases_still_make_a_page_that_says_so(tmp_path):
    proc = run_cli("report", TENSOR_OPS, TRAINING, check_rc=0)
    assert "cpu-epyc-2core_training_quick has no case in common with cpu-epyc-2core_tensor_ops" in proc.stdout
    proc = run_cli("report", TRAINING, "--baseline", TENSOR_OPS)
    assert proc.returncode == 2 and "no report has a case in common with the baseline" in proc.stderr


def test_bad_inputs_are_one_line_errors(tmp_path):
    proc = run_cli("report", str(tmp_path / "missing.json"), "--html", str(tmp_path / "x.html"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no such file" in proc.stderr
    assert not (tmp_path / "x.html").exists()


# --- in a browser -------------------------------------------------------------------------------------------
def bar_pixels(png: Path) -> int:
    """Pixels in the first series colour: how much of the screenshot is bars."""
    from PIL import Image

    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    target = np.array([int(PALETTE[0][i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(rgb - target).sum(axis=2) < 30).sum())


@needs_chromium
def test_page_loads_in_headless_chromium_with_no_errors_no_requests_and_charts(tmp_path):
    current = slowed_copy(tmp_path)
    out = tmp_path / "page.html"
    run_cli("report", current, TRAINING, "--baseline", TENSOR_OPS, "--html", str(out), check_rc=0)
    shot = tmp_path / "page.png"
    loaded = chromium.load(out, shot, width=1280, height=900)
    assert loaded.loaded and loaded.problems == []
    assert loaded.height > 5000  # the whole page laid out: tables and charts
    assert bar_pixels(shot) > 20_000  # bars drawn (inline SVG rendered), not an empty page


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def training_page():
    from benchbench.output.report_html import report_page

    return report_page([load(TRAINING)], ["training"])


@needs_chromium
@pytest.mark.parametrize("inject", ['<img src="http://192.0.2.1/pixel.png">',
                                    '<script>throw new Error("boom")</script>'])
@pytest.mark.parametrize("keep_csp", [True, False])
def test_the_browser_check_catches_network_loads_and_script_errors(tmp_path, training_page, inject, keep_csp):
    out = tmp_path / "page.html"
    text = training_page
    if not keep_csp:  # the check must not rely on the page's own policy
        text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
    assert "</body>" in text
    problems = chromium.load(_write(out, text.replace("</body>", inject + "</body>"))).problems
    assert problems, "an external load or a script error went unnoticed"


@needs_chromium
@pytest.mark.slow
def test_a_fresh_run_on_this_cpu_makes_a_page_chromium_shows(tmp_path):
    report = tmp_path / "run.json"
    run_cli("run", "--suite", "tensor_ops", "--backend", "cpu", "--filter", r"tensor_ops/(add|copy)\[", "--profile", "quick",
            "--rounds", "2", "--quiet", "-o", str(report), check_rc=0, cwd=tmp_path)
    out = tmp_path / "run.html"
    run_cli("report", str(report), "--html", str(out), check_rc=0)
    shot = tmp_path / "run.png"
    loaded = chromium.load(out, shot)
    assert loaded.loaded and loaded.problems == []
    assert bar_pixels(shot) > 2_000
