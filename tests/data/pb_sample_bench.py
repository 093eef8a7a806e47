"""Generator of the pytest-benchmark fixtures in this folder (not collected by the test run).

The pytest_benchmark_*.json files next to it were written by real runs of this file:

    cd tests/data
    O="-p no:cacheprovider pb_sample_bench.py --benchmark-storage=/tmp/pbs --benchmark-max-time=0.02 --benchmark-min-rounds=30"
    pytest $O --benchmark-json=pytest_benchmark_base.json
    pytest $O --benchmark-json=pytest_benchmark_current.json
    pytest $O --benchmark-save=nodata && cp /tmp/pbs/*/0001_nodata.json pytest_benchmark_nodata.json

`--benchmark-json` always stores the raw per-round timings ("data"); `--benchmark-save` stores them
only with `--benchmark-save-data`, so pytest_benchmark_nodata.json holds statistics alone.
"""

import pytest


def _work(n: int) -> int:
    return sum(i * i for i in range(n))


@pytest.mark.parametrize("n", [1000, 10000])
def test_sum_squares(benchmark, n):
    assert benchmark(_work, n) == sum(i * i for i in range(n))


@pytest.mark.benchmark(group="strings")
def test_join(benchmark):
    words = [str(i) for i in range(2000)]
    assert benchmark(" ".join, words).startswith("0 1 2")
