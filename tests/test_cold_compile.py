"""cold_compile.py: several cold compiles in one process, each from a reset Dynamo and empty Inductor caches."""

import math
import os
from pathlib import Path

import pytest
import torch

from benchbench.measure import cold_compile


def test_each_repeat_starts_from_a_reset_dynamo_and_an_empty_cache_folder(tmp_path, monkeypatch):
    resets, seen = [], []
    real_reset = torch.compiler.reset
    monkeypatch.setattr(torch.compiler, "reset", lambda: (resets.append(len(seen)), real_reset()))
    old = os.environ.get("TORCHINDUCTOR_CACHE_DIR")

    def compile_once() -> float:
        folder = Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
        seen.append((folder, sorted(folder.iterdir())))
        (folder / "fxgraph").mkdir()  # what a compile leaves behind for the next one
        return 2.0 + len(seen)

    assert cold_compile.repeat(compile_once, 3, tmp_path) == [3.0, 4.0, 5.0]
    folders = [f for f, _ in seen]
    assert len(set(folders)) == 3 and all(f.parent == tmp_path for f in folders)
    assert all(contents == [] for _, contents in seen)  # nothing from the compile before
    assert not any(f.exists() for f in folders)  # removed after each compile
    assert resets == [0, 1, 2]  # Dynamo reset before every compile
    assert os.environ.get("TORCHINDUCTOR_CACHE_DIR") == old


def test_repeat_needs_at_least_one():
    with pytest.raises(ValueError, match="at least 1"):
        cold_compile.repeat(lambda: 1.0, 0)


def test_a_rounds_metrics_are_every_compile_and_their_geometric_mean():
    got = cold_compile.round_metrics([2.0, 8.0, 4.0])
    assert got["compile_runs_s"] == [2.0, 8.0, 4.0]
    assert got["compile_s"] == pytest.approx(4.0)
    assert cold_compile.round_metrics([0.0, 1.0])["compile_s"] == 0.5  # a zero has no logarithm: the median
    with pytest.raises(ValueError):
        cold_compile.round_metrics([])
    assert math.isclose(cold_compile.round_metrics([3.0])["compile_s"], 3.0)
