"""Building blocks of benchbench's self-contained HTML pages: charts as inline SVG, tables, one page.

A page is one file that needs nothing else: no network, no scripts, no fonts or images from
elsewhere (a Content-Security-Policy in the page itself forbids them), charts drawn by matplotlib as
inline SVG, and the data the page was made from embedded as JSON so `benchbench.load` can read the
page back (see `benchbench.model.formats`). Every function returns a string; nothing here prints.

Making another page (e.g. a history page) from these parts:

    from benchbench.output import html
    from benchbench.output.charts import lines

    fig, ax = html.figure(6.5, 2.5)               # a matplotlib Figure (Agg canvas, no pyplot state)
    ax.plot(xs, ys)
    body = html.chart(html.svg(fig), "caption")    # svg() returns <svg>...</svg>, ids unique in the page
    body += html.chart(lines([("matmul", points)], [(x, y, "change point: +9%")], "run", "ms"))
    text = html.page("title", [html.Section("Trends", body)], data={"series": [...]})

`data` is any JSON-able document; a page whose data holds `"reports"` (a list of report documents,
as `Report.to_dict()` gives) can be loaded back as reports.
"""

from __future__ import annotations

import hashlib
import html as _html
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import matplotlib.text
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchbench.model.formats import PAGE_DATA_ID, PAGE_FORMAT

# Lean SVG: text stays text (no glyph outlines), ids are stable, no metadata.
RC = {
    # labels are case names, file names and notes: a `$` in them is text, never math (an unbalanced
    # one would stop the page with a parse error)
    "text.parse_math": False,
    "svg.fonttype": "none",
    "svg.hashsalt": "benchbench",
    "font.size": 8,
    "font.family": "sans-serif",
    # Metrics come from DejaVu Sans (shipped with matplotlib); a browser without it falls back to a
    # narrower face, so labels never outgrow the space laid out for them.
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "path.simplify": True,
}
PALETTE = ("#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5", "#9c6b4e",
           "#9498a0")  # one colour per report / series, colour-blind friendly (Observable 10)
STATUS_COLOURS = {"pass": "#2e7d32", "ok": "#2e7d32", "info": "#546e7a", "warn": "#b26a00", "inconclusive": "#b26a00",
                  "fail": "#c62828", "regression": "#c62828", "failed": "#c62828", "timeout": "#c62828",
                  "skipped": "#757575", "missing": "#6a1b9a", "ignored": "#757575"}

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CSS = """
:root { --fg: #1d2330; --muted: #5f6b7a; --line: #d9dee5; --bg-alt: #f5f7fa; --accent: #4269d0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--fg); margin: 0 auto; max-width: 1180px; padding: 20px 28px 60px; }
h1 { font-size: 22px; margin: 0 0 2px; }
h2 { font-size: 18px; margin: 34px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 6px; }
p { margin: 6px 0; }
.sub, .note, figcaption { color: var(--muted); }
.note { font-size: 12.5px; }
nav { font-size: 13px; margin: 10px 0 0; }
nav a { color: var(--accent); text-decoration: none; margin-right: 12px; white-space: nowrap; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 12.5px; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 9px 3px 0; text-align: left; vertical-align: top; }
th { font-weight: 600; border-bottom: 1.5px solid #aab3bf; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.regression td { background: #fdecea; }
tr.inconclusive td { background: #fff6e0; }
tr.differs td { background: #fff6e0; }
a.badge { text-decoration: none; }
.badge { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 11.5px; font-weight: 600;
         color: #fff; white-space: nowrap; }
.verdict { font-size: 17px; font-weight: 700; padding: 8px 12px; border-radius: 6px; color: #fff; margin: 8px 0; }
figure { margin: 10px 0 16px; }
figure svg { max-width: 100%; height: auto; }
.scroll { overflow-x: auto; }
code { font-size: 12px; background: var(--bg-alt); padding: 0 3px; border-radius: 3px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  nav { display: none; }
  h2 { break-after: avoid; }
  figure, tr { break-inside: avoid; }
  .scroll { overflow: visible; }
  .badge, .verdict, tr.regression td, tr.inconclusive td, tr.differs td {
    -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


class Raw(str):
    """HTML that is already safe to insert as it is (cells of `table` are escaped unless Raw)."""


def esc(value: Any) -> str:
    return _html.escape("" if value is None else str(value), quote=True)


@dataclass(frozen=True)
class Section:
    """One `<h2>` part of a page; `body` is HTML. `anchor` defaults to a slug of the title."""

    title: str
    body: str
    anchor: str | None = None

    @property
    def id(self) -> str:
        return self.anchor or "s-" + (re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") or "section")


def badge(text: str, kind: str | None = None) -> Raw:
    colour = STATUS_COLOURS.get(kind or text, "#546e7a")
    return Raw(f'<span class="badge" style="background:{colour}">{esc(text)}</span>')


def table(rows: Sequence[dict[str, Any]], numeric: Iterable[str] = (), row_class: Sequence[str] | None = None,
          empty: str = "(none)") -> str:
    """An HTML table from dicts with the same keys; values are escaped unless they are `Raw`."""
    if not rows:
        return f'<p class="note">{esc(empty)}</p>'
    numeric = set(numeric)
    cols = list(rows[0])

    def cell(tag: str, col: str, value: Any) -> str:
        cls = ' class="num"' if col in numeric else ""
        return f"<{tag}{cls}>{value if isinstance(value, Raw) else esc(value)}</{tag}>"

    head = "".join(cell("th", c, c) for c in cols)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{esc(row_class[i])}"' if row_class and row_class[i] else ""
        body.append(f"<tr{cls}>" + "".join(cell("td", c, row.get(c, "")) for c in cols) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def figure(width_in: float, height_in: float) -> tuple[Figure, Any]:
    """A matplotlib Figure with one Axes, drawn by the Agg canvas: no pyplot, so no global figure state."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width_in, height_in), dpi=72)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
    return fig, ax


_ID = re.compile(r'\sid="([^"]+)"')
_REF = re.compile(r'(?:url\(#|href="#)([^")]+)')


def svg(fig: Figure) -> str:
    """The figure as an inline `<svg>` element: text as text, no XML prologue or metadata, and ids made
    unique within the page (several charts share one document) while unreferenced ids are dropped."""
    buf = io.StringIO()
    for text_artist in fig.findobj(matplotlib.text.Text):  # also those made outside RC (legends, notes)
        text_artist.set_parse_math(False)
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="svg", bbox_inches="tight", pad_inches=0.05,
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r"<!--.*?-->\s*", "", text, flags=re.S)
    prefix = "c" + hashlib.sha1(text.encode()).hexdigest()[:8] + "-"
    referenced = set(_REF.findall(text))
    text = _ID.sub(lambda m: f' id="{prefix}{m[1]}"' if m[1] in referenced else "", text)
    text = _REF.sub(lambda m: m[0][: -len(m[1])] + prefix + m[1], text)
    return re.sub(r">\s+<", "><", text).strip()


def chart(svg_text: str, caption: str = "") -> str:
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f"<figure>{svg_text}{cap}</figure>"


def data_block(data: Any) -> str:
    """`data` as a JSON block the browser never runs; `<`, `>` and `&` are escaped so no text in it can
    close the element early."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False, default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{PAGE_DATA_ID}">{text}</script>'


def page(title: str, sections: Sequence[Section], data: dict[str, Any], subtitle: str = "") -> str:
    """The whole page: title, a table of contents, the sections, and the embedded data."""
    doc = {"format": PAGE_FORMAT, **data}
    nav = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{esc(title)}</h1>" + (f'<p class="sub">{esc(subtitle)}</p>' if subtitle else "")
        + (f"<nav>{nav}</nav>" if len(sections) > 1 else "") + "</header>",
    ]
    parts += [f'<section id="{esc(s.id)}"><h2>{esc(s.title)}</h2>{s.body}</section>' for s in sections]
    parts += [data_block(doc), "</body></html>"]
    return "\n".join(parts) + "\n"
