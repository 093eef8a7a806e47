"""Is a +30% compile-time change caught by a real `benchbench ab`, and is a new graph break named?

Compile time is compared over rounds (benchbench/metrics/compile_time.py: each round's value is the mean of the
logs of its cold compiles, `ctx.compile_repeats` of them; in `ab` a paired t over the rounds' differences,
`worse` when the 95% interval lies above +10%). This script checks that rule end to end on this machine, with real
`torch.compile` in real `ab` runs:

    ratio: the variant's cold compile against the plain model's, measured directly (fresh processes, the
           same repeats per process as a round makes; also the noise of one compile within a process and
           between processes, which decide how many compiles per round pay)
    A/B:   CTCAL_EXTRA=1 on the current side (`ab --current-env`): the model gets more layers, ~30% more
           compile work; the case key and the benchmark's definition hash stay the same, because the
           change lives in library code outside the suite file (as with memory_aa.py's MEMCAL_EXTRA)
    A/A:   both sides alike: any compile-time regression is false
    break: CTCAL_BREAK=1 on the current side: a graph break in the model's forward, named in the row

The suite (`ctcal/stack`, one compiled case, each round in a fresh worker) is written into a temporary
folder. Its setup first compiles a throw-away function, so that the measured compiles hold the model's
own compile work, not Dynamo's and Inductor's first-use costs in the process (imports, the C++ toolchain
probe), which are the same on both sides; then it compiles the model `ctx.compile_repeats` times, each
cold (`benchbench.measure.cold_compile.fresh`: Dynamo reset, empty Inductor caches on disk and in memory).

    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/compile_time_check.py --tries 10 --aa-tries 10 --write

prints the Markdown for docs/metrics.md and, with --write, puts it there (between the
`compile-time-check` markers); `--earlier` adds the tries of earlier calls' `--json` files.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EXTRA_ENV = "CTCAL_EXTRA"
BREAK_ENV = "CTCAL_BREAK"
DEPTH = 2  # blocks of the plain model (the variant's: --extra-depth)
DOC = ROOT / "docs" / "metrics.md"
MARKERS = "compile-time-check"

# Library code outside the suite file: the benchmark's definition (its hash) is the same on both sides.
LIBRARY = '''
"""The model of the compile-time check: {depth} blocks, {extra_depth} with {extra}=1; a graph break with {brk}=1."""
import os

import torch
from torch import nn

DEPTH = {extra_depth} if os.environ.get("{extra}") == "1" else {depth}
BACKEND = "{backend}"  # torch.compile's backend, the same on both sides
BREAK = os.environ.get("{brk}") == "1"


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.a, self.b, self.norm = nn.Linear(width, 2 * width), nn.Linear(2 * width, width), nn.LayerNorm(width)

    def forward(self, x):
        return self.norm(x + self.b(torch.nn.functional.gelu(self.a(x))).tanh() * torch.sigmoid(x))


class Stack(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.blocks = nn.ModuleList(Block(width) for _ in range(DEPTH))

    def forward(self, x):
        x = self.blocks[0](x)
        if BREAK:  # outside the loop: a break inside a for loop makes Dynamo skip the whole frame
            print("", end="")  # a graph break: Dynamo does not trace print
        for block in self.blocks[1:]:
            x = block(x)
        return x


def build(width):
    torch.manual_seed(0)
    return Stack(width).eval(), torch.randn(64, width)


def warm_compiler():
    """Dynamo's and Inductor's first use in this process (imports, toolchain probe), outside the measurement."""
    f = torch.compile(lambda t: (t * 2).sin(), backend=BACKEND)
    f(torch.randn(8))
'''

SUITE = '''
"""Compile-time check: one compiled model, cold compiles in every round (library: ctcal_lib)."""
import statistics

import torch

import ctcal_lib
from benchbench import Case, benchmark
from benchbench.metrics import compile_time
from benchbench.measure import cold_compile

SUITE = "ctcal"


@benchmark(params={"width": [64]}, dtypes=["float32"], modes=["compile"], isolate=True, timeout=1800)
def stack(ctx, width):
    model, x = ctcal_lib.build(width)
    with cold_compile.fresh(ctx.scratch_dir):
        ctcal_lib.warm_compiler()
    first = {}
    compiled = None

    def compile_once():
        nonlocal compiled
        before, breaks = compile_time.snapshot(), compile_time.break_counts()
        compiled = torch.compile(model, backend=ctcal_lib.BACKEND)
        with torch.no_grad():
            seconds, _ = ctx.time_once(lambda: compiled(x))
            steady = [ctx.time_once(lambda: compiled(x))[0] for _ in range(3)]
        if not first:  # the first compile's split and graph breaks stand for the round
            now = compile_time.break_counts()
            first.update(compile_time.phases(before), graph_breaks=sum(n - breaks.get(r, 0) for r, n in now.items()),
                         graph_break_reasons=compile_time.graph_break_reasons(breaks, now))
        return seconds - statistics.median(steady)

    seconds = cold_compile.repeat(compile_once, ctx.compile_repeats, ctx.scratch_dir)

    def call():
        with torch.no_grad():
            return compiled(x)

    return Case(call, metrics={**cold_compile.round_metrics(seconds), **first}, check_output=False)
'''


def write_suite(workdir: Path, extra_depth: int, backend: str = "inductor", repeats: int = 3) -> Path:
    (workdir / "ctcal_lib.py").write_text(textwrap.dedent(LIBRARY.format(
        depth=DEPTH, extra_depth=extra_depth, extra=EXTRA_ENV, brk=BREAK_ENV, backend=backend)))
    path = workdir / "ctcal_suite.py"
    path.write_text(textwrap.dedent(SUITE).replace("timeout=1800)", f"timeout=1800, compile_repeats={repeats})"))
    return path


def _env(suite: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(suite.parent)])}
    for k in (EXTRA_ENV, BREAK_ENV):
        env.pop(k, None)
    return env


PROBE = '''
import json, statistics, sys, time
import torch
import ctcal_lib
from benchbench.measure import cold_compile
model, x = ctcal_lib.build(64)
with cold_compile.fresh():
    ctcal_lib.warm_compiler()
spent = []

def once():
    t0 = time.perf_counter()
    compiled = torch.compile(model, backend=ctcal_lib.BACKEND)
    with torch.no_grad():
        t = time.perf_counter(); compiled(x); first = time.perf_counter() - t
        steady = []
        for _ in range(3):
            t = time.perf_counter(); compiled(x); steady.append(time.perf_counter() - t)
    spent.append(time.perf_counter() - t0)
    return first - statistics.median(steady)

runs = cold_compile.repeat(once, int(sys.argv[1]))
print(json.dumps({"runs": runs, "spent": sum(spent)}))
'''


def probe(suite: Path, extra: bool, repeats: int) -> dict:
    """`repeats` cold compiles of the plain model or the variant in one fresh process, outside benchbench:
    {"runs": seconds of each, "overhead": what the process took beyond its compiles (start, imports, the
    first-use compile)}."""
    env = _env(suite)
    if extra:
        env[EXTRA_ENV] = "1"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PROBE, str(repeats)], env=env, capture_output=True, text=True,
                          cwd=suite.parent)
    if proc.returncode != 0:
        raise SystemExit(f"probe failed:\n{proc.stderr[-3000:]}")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"runs": got["runs"], "overhead": time.perf_counter() - t0 - got["spent"]}


def noise(*groups: list[dict]) -> dict:
    """Two levels of noise in the logs of cold compiles, each group (one model) apart: within a process (pooled
    variance) and between processes (the process effect: the pooled variance of process means about their
    group's mean, less what the within-noise explains, floored at 0); the per-process overhead and a compile's
    cost; and the compiles per round that minimise a round's variance for its time (two-stage sampling):
    sqrt(overhead / compile * within^2 / between^2)."""
    logs = [[[math.log(v) for v in p["runs"]] for p in g if len(p["runs"]) >= 2] for g in groups]
    logs = [g for g in logs if len(g) >= 2]
    if not logs:
        return {}
    flat = [p for g in logs for p in g]
    n = statistics.fmean(len(p) for p in flat)
    within = statistics.fmean(statistics.variance(p) for p in flat)
    means = [[statistics.fmean(p) for p in g] for g in logs]
    spread = sum(sum((m - statistics.fmean(g)) ** 2 for m in g) for g in means) / sum(len(g) - 1 for g in means)
    between = max(0.0, spread - within / n)
    processes = [p for g in groups for p in g]
    overhead = statistics.median(p["overhead"] for p in processes)
    cost = statistics.median(v for p in processes for v in p["runs"])
    best = math.sqrt(overhead / cost * within / between) if between > 0 else math.inf
    return {"within": math.sqrt(within), "between": math.sqrt(between), "overhead_s": overhead,
            "compile_s": cost, "best_repeats": best, "processes": len(flat), "per_process": n}


def run_ab(suite: Path, out: Path, rounds: int | None, current_env: dict[str, str]) -> dict:
    """One `benchbench ab --json` on the check suite: its gate document."""
    cmd = [sys.executable, "-m", "benchbench", "ab", "--suite-path", str(suite), "--suite", "ctcal",
           "--backend", "cpu", "--profile", "quick", "-o", str(out), "--json", "--quiet", "--force",
           "--timeout", "1800",  # a cold compile on a busy machine: well beyond the quick profile's timeout
           *(["--rounds", str(rounds)] if rounds else [])]
    for key, value in current_env.items():
        cmd += ["--current-env", f"{key}={value}"]
    proc = subprocess.run(cmd, env=_env(suite), capture_output=True, text=True)
    if proc.returncode not in (0, 1, 3):
        raise SystemExit(f"ab failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def decision(doc: dict) -> dict:
    """The compile-time decision of one ab (its one case); `failed` with the case's reason where it has none."""
    found = [c for c in doc["gate"].get("metric_cases", []) if c["metric"] == "compile"]
    if not found:
        why = "; ".join(f"{c['case']}: {c.get('verdict')} {c.get('why', '')}" for c in doc["gate"].get("cases", []))
        return {"base": None, "other": None, "ratio": None, "verdict": "failed", "outcome": "failed", "why": why,
                "rounds": None, "low": None, "high": None}
    [c] = found
    d = c.get("details") or {}
    return {"base": c["base"], "other": c["other"], "ratio": c["ratio"], "verdict": c["verdict"],
            "outcome": c["outcome"], "why": c["why"], "rounds": d.get("rounds"), "low": d.get("low"),
            "high": d.get("high"), "paired": d.get("paired")}


def round_pairs(out: Path) -> list[list[list[float]]]:
    """The compiles of each round both sides of one ab measured, [[base's, current's], ...] by round index."""
    from benchbench.metrics import compile_time
    from benchbench.model.report import load

    sides = []
    for name in ("baseline.json", "current.json"):
        path = out / name
        results = [r for r in load(path).results if r.ok] if path.exists() else []
        if len(results) != 1:
            return []
        [r] = results
        sides.append(dict(zip(compile_time.round_indices(r), compile_time.round_compiles(r), strict=False)))
    return [[sides[0][i], sides[1][i]] for i in sorted(set(sides[0]) & set(sides[1]))]


def paired_noise(tries: list[dict]) -> tuple[float, int] | None:
    """The spread of one round's paired difference (log of current's geometric mean over baseline's), pooled
    about each try's own mean (which holds the change, if any): (sd, degrees of freedom)."""
    ss, df = 0.0, 0
    for got in tries:
        d = [statistics.fmean(math.log(v) for v in b) - statistics.fmean(math.log(v) for v in a)
             for a, b in got.get("pairs") or []]
        if len(d) >= 2:
            m = statistics.fmean(d)
            ss += sum((x - m) ** 2 for x in d)
            df += len(d) - 1
    return (math.sqrt(ss / df), df) if df else None


def catch_rate(sd: float, rounds: int, ratio: float = 1.3, threshold: float = 0.10, draws: int = 4000,
               seed: int = 0) -> float:
    """How often the paired rule (benchbench/metrics/compile_time.py) calls a true `ratio` worse, at `rounds` rounds
    whose paired differences spread by `sd` (normal, seeded)."""
    import numpy as np

    from benchbench.metrics import compile_time

    rng = np.random.default_rng(seed)
    d = math.log(ratio) + sd * rng.standard_normal((draws, rounds))
    return sum(compile_time.paired_interval(row.tolist())[1] > 1 + threshold for row in d) / draws


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def table(rows: dict[str, list[dict]]) -> str:
    lines = ["| experiment | tries | compile-time regressions | worse | noisy | same | better | rounds per side "
             "| failed | median ratio | ratio range |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, got in rows.items():
        if not got:
            continue
        ratios = [r["ratio"] for r in got if r["ratio"] is not None]
        rounds = sorted({tuple(r["rounds"]) for r in got if r["rounds"]})
        lines.append(f"| {name} | {len(got)} | {sum(r['outcome'] == 'regression' for r in got)} | "
                     + " | ".join(str(sum(r["verdict"] == v for r in got)) for v in ("worse", "noisy", "same", "better"))
                     + f" | {', '.join('/'.join(map(str, r)) for r in rounds)} | "
                     + f"{sum(r['verdict'] == 'failed' for r in got)} | "
                     + (f"{statistics.median(ratios):.3f} | {min(ratios):.3f}-{max(ratios):.3f} |" if ratios else "- | - |"))
    return "\n".join(lines)


def _all(processes: list[dict]) -> list[float]:
    return [v for p in processes for v in p["runs"]]


def report(rows: dict[str, list[dict]], plain: list[dict], extra: list[dict], args: argparse.Namespace,
           notes: list[str]) -> str:
    """The Markdown for docs/metrics.md: the direct ratio and noise, the tries' table, the graph break."""
    out = []
    if plain and extra:
        ratio = statistics.median(_all(extra)) / statistics.median(_all(plain))
        out.append(f"Direct cold compiles ({len(plain)} fresh processes of each model, alternated, "
                   f"{args.repeats} compiles each): the plain model ({DEPTH} blocks) "
                   f"{statistics.median(_all(plain)):.2f} s, the variant ({args.extra_depth} blocks) "
                   f"{statistics.median(_all(extra)):.2f} s (medians): ratio **{ratio:.3f}**.")
        got = noise(plain, extra)
        if got:
            out.append(f"\nNoise of one cold compile (logs, both models): {100 * got['within']:.1f}% within a process, "
                       f"{100 * got['between']:.1f}% between processes (the process effect); a process costs "
                       f"{got['overhead_s']:.1f} s beyond its compiles (start, imports, the first-use compile), a "
                       f"compile {got['compile_s']:.1f} s, so the compiles per round that buy the most precision for "
                       f"the time are about {got['best_repeats']:.1f}.")
    out.append("\n" + table(rows))
    tries = rows["A/B (+30% compile work)"] + rows["A/A"]
    spread = paired_noise(tries)
    if spread:
        sd, df = spread
        rates = {n: catch_rate(sd, n) for n in (args.rounds, 5, 8, 12)}
        need = next((n for n in range(2, 41) if catch_rate(sd, n) >= 0.9), None)
        out.append(f"\nNoise of a round in these tries: the paired difference of one round (log of the current "
                   f"side's geometric mean over the baseline's) spreads by {100 * sd:.1f}% (sd, {df} degrees of "
                   f"freedom, pooled about each try's mean). At that noise the paired rule catches +30% in "
                   + ", ".join(f"{100 * r:.0f}% of tries at {n} rounds" for n, r in rates.items())
                   + f" (seeded simulation); 90% needs {need if need else 'more than 40'} rounds.")
    for n, got in enumerate(rows["graph break added"], 1):
        out.append(f"\nGraph break added, try {n}: `{got['verdict']}`, \"{got['why']}\"")
    out.append(f"\n`ab --profile quick --rounds {args.rounds}` (the graph-break try: `--rounds {args.break_rounds}`), "
               f"{args.repeats} cold compiles per round (`compile_repeats`), on the CPU, torch.compile backend "
               f"`{args.backend}`. " + " ".join(notes))
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tries", type=int, default=10, help="A/B runs of ab with the larger model (default 10)")
    ap.add_argument("--aa-tries", type=int, default=10, help="A/A runs of ab (default 10)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of process pairs per ab (default 3, the quick profile's; 0: ab's own, sequential)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="cold compiles per round (the benchmark's compile_repeats; default 3)")
    ap.add_argument("--extra-depth", type=int, default=7, help=f"blocks of the variant (the plain model: {DEPTH})")
    ap.add_argument("--backend", default="inductor",
                    help="torch.compile's backend (default inductor; aot_eager skips Inductor's C++ codegen, for a "
                         "slow or busy machine)")
    ap.add_argument("--probes", type=int, default=3,
                    help="fresh processes of each model compiling --repeats times directly (default 3)")
    ap.add_argument("--break-rounds", type=int, default=2,
                    help="rounds of the graph-break try (a new break is worse at any number of rounds; default 2)")
    ap.add_argument("--break-tries", type=int, default=1, help="tries with the graph break (default 1)")
    ap.add_argument("--minutes", type=float, default=None,
                    help="start no new try after this many minutes (the tables hold the tries done)")
    ap.add_argument("--earlier", nargs="*", default=[], metavar="JSON",
                    help="--json files of earlier calls: their probes and tries are counted with this call's")
    ap.add_argument("--json", metavar="PATH", help="write every decision here (after every try)")
    ap.add_argument("--write", action="store_true", help=f"put the Markdown into {DOC.relative_to(ROOT)}")
    ap.add_argument("--note", action="append", default=[], help="a sentence to add under the table (e.g. the load)")
    args = ap.parse_args()
    started = time.time()
    loads: list[str] = []
    rows: dict[str, list[dict]] = {"A/B (+30% compile work)": [], "A/A": [], "graph break added": []}
    plain: list[dict] = []
    extra: list[dict] = []
    for path in args.earlier:
        doc = json.loads(Path(path).read_text())
        plain += doc["plain"]
        extra += doc["variant"]
        for name, got in doc["decisions"].items():
            rows[name] += got
        loads += doc.get("load_average", [])

    def save() -> None:
        if args.json:
            Path(args.json).write_text(json.dumps({"settings": vars(args), "plain": plain, "variant": extra,
                                                   "decisions": rows, "load_average": loads}, indent=1))

    if args.probes or args.tries or args.aa_tries or args.break_tries:  # else: only the tables of --earlier
        loads.append(load_average())
    with tempfile.TemporaryDirectory(prefix="compile-check-") as tmp:
        suite = write_suite(Path(tmp), args.extra_depth, args.backend, args.repeats)
        for _ in range(args.probes):  # alternated, so that load changes fall on both
            plain.append(probe(suite, False, args.repeats))
            extra.append(probe(suite, True, args.repeats))
            print(f"probe: plain {plain[-1]['runs']}, variant {extra[-1]['runs']}", file=sys.stderr)
            save()
        plan = [("A/B (+30% compile work)", args.tries, {EXTRA_ENV: "1"}, args.rounds),
                ("A/A", args.aa_tries, {}, args.rounds), ("graph break added", args.break_tries if args.break_rounds else 0,
                                                         {BREAK_ENV: "1"}, args.break_rounds)]
        done = {name: 0 for name, *_ in plan}
        i = 0
        while any(done[name] < n for name, n, *_ in plan):  # interleaved, so that load changes fall on all
            if args.minutes is not None and time.time() - started > 60 * args.minutes:
                break
            for name, n, env, rounds in plan:
                if done[name] >= n or (args.minutes is not None and time.time() - started > 60 * args.minutes):
                    continue
                out = Path(tmp) / f"ab-{i}"
                got = {**decision(run_ab(suite, out, rounds or None, env)), "pairs": round_pairs(out)}
                i += 1
                done[name] += 1
                rows[name].append(got)
                loads.append(load_average())
                save()
                print(f"{name} {done[name]}/{n}: {got['verdict']} ({got['why']}) "
                      f"[{time.time() - started:.0f} s]", file=sys.stderr)
    notes = [*args.note, f"Load average (1, 5, 15 min) at the start and after each ab: {'; '.join(loads)}."]
    text = report(rows, plain, extra, args, notes)
    print(text)
    if args.write:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from doc_markers import markers, write_between

        write_between(DOC, *markers(MARKERS), text)
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
