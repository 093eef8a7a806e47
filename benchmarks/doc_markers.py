"""Where the scripts under benchmarks/ put their tables: between two marker comments of a Markdown page.

    from doc_markers import markers, write_between
    write_between(Path("docs/ab.md"), *markers("ab-calibration"), text, create=True)

Everything outside the markers is kept. The page is replaced atomically (a temporary file beside it,
then a rename), so an interrupted script never leaves half a page.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    """The begin and end comments of a named table: `<!-- NAME:begin -->`, `<!-- NAME:end -->`."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def write_between(doc: Path, begin: str, end: str, text: str, create: bool = False) -> None:
    """Put `text` between `begin` and `end` in `doc`. Markers (or the page) that are missing are added at the
    end when `create`; otherwise the script stops with a message naming them."""
    doc = Path(doc)
    old = doc.read_text() if doc.exists() else ""
    if begin not in old or end not in old.partition(begin)[2]:
        if not create:
            raise SystemExit(f"{doc}: the markers {begin!r} and {end!r} are missing")
        old = f"{old}{'' if not old or old.endswith(chr(10)) else chr(10)}{begin}\n{end}\n"
    head, _, rest = old.partition(begin)
    _, _, tail = rest.partition(end)
    fd, tmp = tempfile.mkstemp(dir=doc.parent, prefix=f".{doc.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{head}{begin}\n{text}\n{end}{tail}")
    os.replace(tmp, doc)
