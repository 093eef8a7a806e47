"""The backend kinds are declared once (benchbench/kinds.py); everything else derives from that table."""

from __future__ import annotations

import re
from pathlib import Path

from benchbench import kinds
from benchbench.analysis import history
from benchbench.environment.fingerprint import MATTERS
from benchbench.measure import backends

PACKAGE = Path(backends.__file__).resolve().parent


def test_every_kind_has_a_probe_and_nothing_else_does():
    assert tuple(backends._PROBES) == kinds.KNOWN
    assert backends.KNOWN == kinds.KNOWN


def test_each_kinds_device_facts_are_fingerprint_keys_that_matter_for_it():
    for kind in kinds.KINDS.values():
        assert MATTERS[kind.device_fact] == frozenset({kind.name})
        if kind.count_fact:
            assert kind.count_fact in MATTERS
        assert history.DEVICE_KEYS[kind.name][0] == kind.device_fact


def test_only_the_cpu_is_timed_on_the_host_without_a_sync():
    assert [k for k in kinds.KNOWN if not kinds.is_gpu(k)] == ["cpu"]
    assert not kinds.is_gpu("tpu")  # unknown names are not GPUs either
    assert kinds.listed() == "cpu, cuda, mps or xpu"


def test_no_other_module_lists_the_kinds():
    """A literal sequence naming three or more kinds outside kinds.py is a second list to keep in step."""
    names = "|".join(kinds.KNOWN)
    literal = re.compile(rf"""[(\[{{]\s*(["'](?:{names})["']\s*,\s*){{2,}}""")
    offenders = [f"{path.relative_to(PACKAGE)}:{n}" for path in PACKAGE.rglob("*.py") if path.name != "kinds.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1) if literal.search(line)]
    assert offenders == []


def test_no_module_outside_the_registries_tests_a_backend_kind_or_metric_by_name():
    """A new kind or metric is declared in one place (benchbench/kinds.py and the backend classes; the metric
    registry): code elsewhere asks the declaration, never compares a name with a literal."""
    import ast

    from conftest import ROOT

    from benchbench import metrics

    names = set(kinds.KINDS) | set(metrics.ALL)
    about = re.compile(r"backend|metric|\bname\b|device")  # what the compared expression must be about
    homes = {ROOT / "benchbench" / "kinds.py", ROOT / "benchbench" / "measure" / "backends.py"}
    found = []
    for path in sorted((ROOT / "benchbench").rglob("*.py")):
        if path in homes or path.parent.name == "metrics":
            continue
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.Compare) or not about.search(ast.get_source_segment(text, node) or ""):
                continue
            literals = []
            for side in [node.left, *node.comparators]:
                if isinstance(side, ast.Constant):
                    literals.append(side.value)
                elif isinstance(side, (ast.Tuple, ast.List, ast.Set)):
                    literals += [e.value for e in side.elts if isinstance(e, ast.Constant)]
            hits = [v for v in literals if isinstance(v, str) and v in names]
            if hits:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {hits}")
    assert found == []
