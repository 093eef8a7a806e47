"""The README stays short and the docs stay complete: every relative link resolves, every command and
option of the command line is documented, and the README's exit-code table is `ExitCode`."""

import argparse
import re
from pathlib import Path

import pytest
from conftest import ROOT

from benchbench.cli import build_parser
from benchbench.errors import ExitCode

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans, where links and headings live."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(lines)


def anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens, -1, -2 for repeats."""
    found: set[str] = set()
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        match = None if fenced else re.match(r"#{1,6} +(.*?) *#*$", line)
        if match:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).replace("`", "").lower()).replace(" ", "-")
            anchor, n = slug, 0
            while anchor in found:
                n += 1
                anchor = f"{slug}-{n}"
            found.add(anchor)
    return found


def relative_links(page: Path) -> list[tuple[str, str]]:
    """(path, anchor) of every link on a page that is not to another site."""
    links = []
    for target in LINK.findall(_prose(page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        links.append((path, anchor))
    return links


def test_anchors_follow_github():
    text = "# Title\n## `benchbench validate`: both engines\n## % of peak\n```\n# not a heading\n```\n## Title\n"
    assert anchors(text) == {"title", "benchbench-validate-both-engines", "-of-peak", "title-1"}


def test_links_are_read_from_prose_only(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[a](usage.md#exit-codes) [b](https://x.org) `[c](code.md)`\n```\n[d](fenced.md)\n```\n[e](#top)\n")
    assert relative_links(page) == [("usage.md", "exit-codes"), ("", "top")]


def test_readme_fits_on_a_few_screens():
    assert len(README.read_text().splitlines()) <= 250


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    for path, anchor in relative_links(page):
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.name}: {path} does not exist"
        if anchor:
            assert target.suffix == ".md", f"{page.name}: #{anchor} on a file that is not Markdown"
            assert anchor in anchors(target.read_text()), f"{page.name}: no heading #{anchor} in {target.name}"


def test_every_page_is_listed_in_the_readme_and_the_index():
    readme = {(ROOT / path).resolve() for path, _ in relative_links(README)}
    index = {(ROOT / "docs" / path).resolve() for path, _ in relative_links(ROOT / "docs" / "index.md")}
    for page in PAGES[1:]:
        assert page.resolve() in readme, f"the README does not link {page.name}"
        assert page.name == "index.md" or page.resolve() in index, f"docs/index.md does not link {page.name}"


def test_every_command_and_option_is_documented():
    docs = "\n".join(page.read_text() for page in PAGES)
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, parser in commands.choices.items():
        if f"benchbench {name}" not in docs and f"`{name}`" not in docs:
            missing.append(name)
        missing += [f"{name} {option}" for action in parser._actions for option in action.option_strings
                    if option.startswith("--") and option != "--help" and option not in docs]
    assert missing == []


def test_readme_exit_codes_are_the_exit_codes():
    rows = re.findall(r"^\| (\d+) \|", README.read_text(), flags=re.MULTILINE)
    assert sorted(int(code) for code in rows) == sorted(int(code) for code in ExitCode)
