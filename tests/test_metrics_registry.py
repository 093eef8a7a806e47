"""The metrics registry finds every metric in its own module: adding a metric touches nothing else."""

from __future__ import annotations

import sys

import pytest

from benchbench import metrics
from benchbench.metrics.base import Metric

NEW_METRIC = '''
from benchbench.metrics.base import Metric

CYCLES = Metric(name="cycles", title="cycles", quantity="cycle count", unit="count", rule="tolerance", order=15)
METRICS = (CYCLES,)
'''


@pytest.fixture
def extra_module(tmp_path, monkeypatch):
    """A folder that the metrics package also reads modules from, and a way to put one there."""
    monkeypatch.setattr(metrics, "__path__", [*metrics.__path__, str(tmp_path)])

    def add(name: str, text: str) -> None:
        (tmp_path / f"{name}.py").write_text(text)
        monkeypatch.delitem(sys.modules, f"benchbench.metrics.{name}", raising=False)

    yield add
    for name in [m for m in sys.modules if m.startswith("benchbench.metrics.") and m.split(".")[-1].startswith("zz_")]:
        del sys.modules[name]


def test_every_metric_module_is_found_in_its_order():
    assert list(metrics.ALL)[:2] == ["time", "instructions"]
    assert [m.order for m in metrics.ALL.values()] == sorted(m.order for m in metrics.ALL.values())
    assert metrics.RUNNABLE == ("time", "instructions")
    assert {"memory", "compile", "energy", "tokens_per_s", "latency_p99"} <= {m.name for m in metrics.BESIDE_TIME}
    assert all(isinstance(m, Metric) for m in metrics.ALL.values())


def test_a_new_module_with_metrics_joins_the_registry_in_its_order(extra_module):
    extra_module("zz_cycles", NEW_METRIC)
    found = metrics._discover()
    assert list(found)[:3] == ["time", "instructions", "cycles"]  # order 15: after instructions (10)
    assert set(found) == set(metrics.ALL) | {"cycles"}


def test_a_module_without_metrics_adds_none(extra_module):
    extra_module("zz_helpers", "HELPER = 1\n")
    assert list(metrics._discover()) == list(metrics.ALL)


def test_two_metrics_of_one_name_are_refused(extra_module):
    extra_module("zz_again", NEW_METRIC.replace('"cycles"', '"memory"'))
    with pytest.raises(RuntimeError, match="two metrics of one name"):
        metrics._discover()
