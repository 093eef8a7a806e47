"""`benchbench list`: suites, benchmarks, their axes and how many cases each profile runs."""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", action="append", metavar="NAME", help="only this suite (repeatable)")
    p.add_argument("--suite-path", action="append", metavar="FILE_OR_DIR", help="also load suites from here")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def main(args: argparse.Namespace) -> int:
    from benchbench.run import registry

    suites = registry.discover(args.suite_path, args.suite)
    data = []
    for s in suites:
        benches = []
        for b in s.benchmarks:
            benches.append({
                "name": b.name, "description": b.description, "params": {k: list(v) for k, v in b.params.items()},
                "dtypes": [d for d in b.dtypes if d], "modes": [m for m in b.modes if m],
                "backends": list(b.backends) if b.backends else "all", "isolate": b.isolate if isinstance(b.isolate, bool) else "per case",
                "cases": {p: len(b.cases("cpu", p)) for p in ("quick", "default", "full")},
                "overview_cases": len(b.cases("cpu", overview=True)),
            })
        data.append({"suite": s.name, "description": s.description, "source": s.source, "benchmarks": benches})
    if args.json:
        print(json.dumps(data, indent=1))
        return 0
    for s in data:
        print(f"{s['suite']}: {s['description']}")
        for b in s["benchmarks"]:
            axes = [f"{k}={','.join(map(str, v))}" for k, v in b["params"].items()]
            if b["dtypes"]:
                axes.append("dtype=" + ",".join(b["dtypes"]))
            if b["modes"]:
                axes.append("mode=" + ",".join(b["modes"]))
            counts = "/".join(str(b["cases"][p]) for p in ("quick", "default", "full"))
            print(f"  {b['name']:<24} {b['description']}")
            print(f"  {'':<24} {' '.join(axes) or '(no parameters)'}  cases per backend quick/default/full: {counts}"
                  + (f"  backends: {','.join(b['backends'])}" if b["backends"] != "all" else ""))
        print()
    return 0
