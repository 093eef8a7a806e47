"""output/html.py: charts as lean inline SVG, escaped tables, one self-contained page with its data."""

import json
import re

from benchbench.model.formats import PAGE_DATA_ID
from benchbench.output import html


def test_svg_is_inline_text_without_prologue_glyphs_or_stray_ids():
    fig, ax = html.figure(4, 2)
    ax.plot([1, 2, 3], [3, 1, 2], label="a<b")
    ax.set_title("matmul & friends")
    text = html.svg(fig)
    assert text.startswith("<svg") and text.endswith("</svg>")
    assert "<?xml" not in text and "DOCTYPE" not in text and "<metadata" not in text
    assert "matmul &amp; friends" in text  # text stays text (svg.fonttype none): searchable and small
    assert "glyph" not in text.lower() and "font-family: 'DejaVu Sans', 'Arial', 'Helvetica', sans-serif" in text
    ids = re.findall(r' id="([^"]+)"', text)
    refs = set(re.findall(r'(?:url\(#|href="#)([^")]+)', text))
    assert refs and set(ids) == refs  # only referenced ids remain, and each is defined
    prefix = {i.split("-", 1)[0] for i in ids}
    assert len(prefix) == 1  # one prefix per chart keeps ids unique within a page


def test_two_different_charts_never_share_an_id():
    def one(ys):
        fig, ax = html.figure(3, 2)
        ax.bar(range(len(ys)), ys)
        return html.svg(fig)

    a, b = one([1, 2]), one([2, 1, 3])
    ids_a, ids_b = (set(re.findall(r' id="([^"]+)"', t)) for t in (a, b))
    assert ids_a and ids_b and not ids_a & ids_b


def test_table_escapes_cells_unless_raw():
    text = html.table([{"case": "<script>x</script>", "status": html.badge("failed")}], numeric=["case"])
    assert "&lt;script&gt;" in text and "<script>" not in text
    assert '<span class="badge" style="background:#c62828">failed</span>' in text
    assert '<td class="num">' in text
    assert "(none)" in html.table([])


def test_page_is_self_contained_and_carries_its_data_safely():
    data = {"reports": [], "note": "</script><script>alert(1)</script> & <!--"}
    text = html.page("t <1>", [html.Section("One", "<p>x</p>"), html.Section("Two & more", "<p>y</p>")], data,
                     subtitle="sub")
    assert text.startswith("<!DOCTYPE html>")
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert text.count("<script") == 1 and text.count("</script>") == 1  # only the data block
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "@media print" in text
    assert '<a href="#s-two-more">Two &amp; more</a>' in text and '<section id="s-two-more">' in text
    block = re.search(r'<script type="application/json" id="' + PAGE_DATA_ID + r'">(.*?)</script>', text, re.S)
    doc = json.loads(block[1])
    assert doc["format"] == "benchbench.page" and doc["note"] == data["note"]
