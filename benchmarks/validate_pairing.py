"""Does `validate`'s pairing pay? Its three measurements of an op are taken back to back in one round (a
shuffled order), and each engine is compared with the plain loop *of the same round*. This script runs
`benchbench.measure.validate.validate` (the library call behind `benchbench validate`) and asks how much wider
the engine/plain ratio would spread if the two came from different moments instead:

- paired: log(engine / plain) of the same round (what validate uses);
- other round: the engine of one round against the plain loop of another round of the same process
  (the same process, seconds apart);
- other process: against the plain loop of another process (what two separate runs compare).

    PYTHONPATH=. python benchmarks/validate_pairing.py --processes 6 --rounds 5 --doc docs/measuring.md

The spread is the standard deviation of the log ratios (about the coefficient of variation of a ratio).
Pairing pays where the paired spread is well below the unpaired ones. The raw validate result is kept
(`--work`/validate.json) and `--table-only` redraws the table from it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import sys
from pathlib import Path


def spreads(rows: list[dict], engine: str) -> dict[str, float | int]:
    """The standard deviations of log(engine / plain): same round, other round of the process, other process."""
    def lr(a: dict, b: dict) -> float:
        return math.log(a[engine]["median_s"] / b["plain"]["per_call_s"])

    paired = [lr(r, r) for r in rows]
    other_round = [lr(a, b) for a, b in itertools.permutations(rows, 2) if a["process"] == b["process"]]
    other_process = [lr(a, b) for a, b in itertools.permutations(rows, 2) if a["process"] != b["process"]]
    out: dict[str, float | int] = {"rounds": len(rows), "paired": statistics.stdev(paired) if len(paired) > 1 else math.nan}
    for name, xs in (("other_round", other_round), ("other_process", other_process)):
        out[name] = statistics.stdev(xs) if len(xs) > 1 else math.nan
    return out


def table(result: dict) -> str:
    from benchbench.measure.validate import ENGINE_NAMES, ENGINES

    rows = result["samples"]
    ops = list(dict.fromkeys((r["backend"], r["op"]) for r in rows))
    lines = ["| op | engine | rounds | spread paired (same round) | other round, same process | other process "
             "| paired / other process |", "|" + " --- |" * 7]
    gains = []
    for backend, op in ops:
        mine = [r for r in rows if (r["backend"], r["op"]) == (backend, op)]
        for engine in ENGINES:
            s = spreads(mine, engine)
            ratio = s["paired"] / s["other_process"] if s["other_process"] else math.nan
            gains.append(ratio)
            lines.append(f"| {backend} {op} | {ENGINE_NAMES[engine]} | {s['rounds']} | {100 * s['paired']:.1f}% "
                         f"| {100 * s['other_round']:.1f}% | {100 * s['other_process']:.1f}% | {ratio:.2f} |")
    m = result.get("machine", {})

    def load(x: float | None) -> str:
        return "unknown" if x is None else f"{x:.1f}"

    head = (f"`validate` with {result['processes']} processes x {result['rounds']} rounds, profile "
            f"`{result['profile']}`, plain loops of {result['plain_loop_s']:g} s, seed {result['seed']}; "
            f"{m.get('cpus')} CPUs, torch threads {m.get('torch_threads')}, 1-minute load average "
            f"{load(m.get('load_start'))} at the start and {load(m.get('load_end'))} at the end.")
    finite = [g for g in gains if math.isfinite(g)]
    tail = (f"Median over ops and engines of paired spread / other-process spread: "
            f"{statistics.median(finite):.2f}." if finite else "")
    return "\n".join([head, "", *lines, "", tail])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--processes", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", default="/tmp/benchbench-validate-pairing")
    ap.add_argument("--doc", default=None, help="write the table into this Markdown file (between markers)")
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    path = work / "validate.json"
    if not args.table_only:
        from benchbench.measure import backends as bk
        from benchbench.measure.validate import validate

        result = validate([bk.get("cpu")], processes=args.processes, rounds=args.rounds, seed=args.seed,
                          on_progress=lambda msg: print(msg, file=sys.stderr, flush=True))
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, default=str))
        os.replace(tmp, path)
    text = table(json.loads(path.read_text()))
    print(text)
    if args.doc:
        from doc_markers import markers, write_between

        write_between(Path(args.doc), *markers("validate-pairing"), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
