"""The browser check itself (tests/chromium.py): it sees what a page does wrong however long the page's own
work after its load event takes, with no wall-clock wait that a slow machine could outlast."""

import chromium
import pytest

# Its own marker, not one from the helper: benchmarks/audit_check.py runs this file against older versions of
# tests/chromium.py, which have only find() and load().
needs_chromium = pytest.mark.skipif(
    chromium.find() is None,
    reason="chromium is not installed (apt-get install chromium): the browser check is not checked")

# After its load event the page is busy for 3 s (as a loaded machine makes any page's work slow), then meets
# a problem in a task it queued then. A check that read Chromium's messages until they had been silent for
# 2 s stopped before it; one that waits on the page's own task queue sees it.
LATE = """<!doctype html><html><head><meta charset="utf-8"><title>late</title></head><body><p>late</p>
<script>
window.addEventListener('load', () => setTimeout(() => {
  const end = Date.now() + 3000;
  while (Date.now() < end) {}
  setTimeout(() => { throw new Error('late problem'); }, 0);
}, 0));
</script></body></html>
"""


@needs_chromium
def test_the_browser_check_sees_what_a_page_does_wrong_after_a_long_task(tmp_path):
    page = tmp_path / "late.html"
    page.write_text(LATE)
    loaded = chromium.load(page)
    assert loaded.loaded
    assert any("late problem" in p for p in loaded.problems), loaded.problems


@needs_chromium
def test_the_browser_check_passes_the_same_page_when_it_does_nothing_wrong(tmp_path):
    page = tmp_path / "calm.html"
    page.write_text(LATE.replace("throw new Error('late problem');", "document.title = 'done';"))
    loaded = chromium.load(page)
    assert loaded.loaded and loaded.problems == []
