"""Reports in, decisions out: compare, gate, history and its change points, ceilings, cost per result,
the machine canary's reading, block pairing, the sequential rule and profile diffs.

Analysis returns data; `benchbench.output` turns it into text. Importing this package, or any module in
it, loads no torch and nothing of `measure` (tests/test_imports.py checks both).
"""
