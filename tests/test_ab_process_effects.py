"""The tables of benchmarks/ab_process_effects.py, from seeded synthetic records with a known spread."""

from __future__ import annotations

import importlib.util
import math
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("ab_process_effects", ROOT / "benchmarks" / "ab_process_effects.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic(m, sds: dict[tuple[str, str], float], pairs: int = 400, seed: int = 3) -> dict:
    """Records of `pairs` pairs per design whose pair log ratios have standard deviation sds[(design, variant)]
    (default 1%), centred on 0; the reference variant's case time drifts by 10% sd, its ratio by 2%."""
    rng = random.Random(seed)
    out = []
    for p in range(2 * pairs):
        design = ("spawn", "fork")[p % 2]
        results = {}
        for case in m.CASES:
            for variant in [*m.LAYOUTS, "ref"]:
                if variant == "ref" and design != "spawn":
                    continue
                sd = 0.02 if variant == "ref" else sds.get((design, variant), 0.01)
                t = 1e-3 * math.exp(rng.gauss(0, 0.10))
                results[f"{case}/{variant}"] = {"round_log": rng.gauss(0, sd), "within_se": 0.005,
                                                "median": [t, t], "windows": 6, "blocks": 8, "resetups": 0}
        out.append({"pair": p, "design": design, "start_s": 3.0 if design == "spawn" else 0.1, "pair_s": 10.0,
                    "t": 1000.0 + 30 * p, "first": 0, "results": results, "load": [1.0, 2.0], "threads": "1",
                    "cpus": [0], "cpu_count": 2})
    return {"pairs": out, "state": {}}


def row(text: str, *cells: str) -> str:
    found = [line for line in text.splitlines() if line.startswith("| " + " | ".join(cells) + " |")]
    assert len(found) == 1, (cells, text)
    return found[0]


def test_tables_report_each_designs_spread_and_the_start_up():
    m = load_script()
    text = m.tables(synthetic(m, {("fork", "never"): 0.03}))
    spawn = row(text, "sum", "spawn").split(" | ")
    fork = row(text, "sum", "fork").split(" | ")
    assert abs(float(spawn[4].rstrip("%")) - 1.0) < 0.15  # between-pair sd, in %
    assert abs(float(fork[4].rstrip("%")) - 3.0) < 0.4
    assert float(fork[6]) < 0.001  # Levene: the spreads differ
    assert spawn[3].startswith("1.00") or spawn[3].startswith("0.99")  # A/A centre near 1
    assert row(text, "spawn", "400").endswith("| 3.00 s, 3.00 s |")
    assert row(text, "fork", "400").endswith("| 0.10 s, 0.10 s |")


def test_tables_compare_each_resetup_with_never_in_the_same_design():
    m = load_script()
    text = m.tables(synthetic(m, {("spawn", "k2"): 0.002}))
    k2 = row(text, "layer_norm", "every 2 blocks", "spawn").split(" | ")
    k8 = row(text, "layer_norm", "every 8 blocks", "spawn").split(" | ")
    assert abs(float(k2[5].rstrip("%")) - 0.2) < 0.05
    assert float(k2[7]) < 0.001 and float(k8[7]) > 0.001


def test_tables_normalize_by_the_reference_kernel():
    m = load_script()
    text = m.tables(synthetic(m, {}))
    cells = row(text, "sort", "ref_compute").split(" | ")
    raw, norm = float(cells[3].rstrip("%")), float(cells[4].rstrip("%"))
    assert abs(raw - 10.0) < 1.5 and abs(norm - 2.0) < 0.3
