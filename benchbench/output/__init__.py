"""The output layer: every text, table, document and page benchbench shows or writes.

Modules here only read the data model (reports, comparisons, gate results) and return `str` (or
`bytes`); they never print, measure or decide. Analysis modules (compare, gate, ceilings, canary,
history, changepoint) never import this package.

    units.py        numbers with units (times, rates, bytes, speed ratios)
    tables.py       one report as a console / Markdown / CSV table
    comparison.py   comparisons as console / Markdown / CSV tables and as a JSON document
    gate.py         the gate's headline, Markdown summary, terminal text and JSON
    environment.py  `benchbench env`: facts, checks and the fingerprint as text
    html.py         building blocks of self-contained HTML pages (figure, svg, tables, page)
    charts.py       the charts pages draw: bars with intervals, lines with marked points, forest plots
    report_html.py  the `report --html` page
    validate.py     `benchbench validate`: both engines against the plain loop, as text
    history.py      `benchbench history`: series and change points as tables, JSON and a page
"""
