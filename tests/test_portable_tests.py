"""The test suite runs where macOS users run it: no test calls what macOS lacks.

macOS has no `os.sched_getaffinity` (benchbench.usable_cpus() answers there) and no /proc, so a test that
reads a process's state from /proc/<pid> finds nothing there and quietly checks nothing (psutil works on
both). Read from the test files' syntax, so it holds on Linux too, where both exist.
"""

import ast

import pytest
from conftest import ROOT

TEST_FILES = sorted((ROOT / "tests").rglob("test_*.py"))


def _sched_getaffinity(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "sched_getaffinity"


def _per_process_proc_path(node: ast.AST) -> bool:
    """An f-string that starts with /proc/ and puts a value right after it: /proc/{pid}/..."""
    if not isinstance(node, ast.JoinedStr) or len(node.values) < 2:
        return False
    head, after = node.values[0], node.values[1]
    return isinstance(head, ast.Constant) and str(head.value).endswith("/proc/") and \
        isinstance(after, ast.FormattedValue)


@pytest.mark.parametrize("name, uses, instead", [
    ("os.sched_getaffinity", _sched_getaffinity, "benchbench.usable_cpus()"),
    ("/proc/<pid> paths", _per_process_proc_path, "psutil.Process(pid)"),
])
def test_no_test_uses_what_macos_lacks(name, uses, instead):
    found = [f"{path.relative_to(ROOT)}:{node.lineno}" for path in TEST_FILES
             for node in ast.walk(ast.parse(path.read_text())) if uses(node)]
    assert not found, f"{name} (macOS has none; use {instead}): {', '.join(found)}"


def test_the_scan_sees_both_on_the_old_forms():
    old = ('n = len(os.sched_getaffinity(0))\n'
           'alive = Path(f"/proc/{pid}").exists()\n'
           'fh = open(f"/proc/{pid}/status")\n'
           'fine = open("/proc/self/status")\n')
    nodes = list(ast.walk(ast.parse(old)))
    assert sum(map(_sched_getaffinity, nodes)) == 1 and sum(map(_per_process_proc_path, nodes)) == 2
