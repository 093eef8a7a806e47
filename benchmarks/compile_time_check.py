"""Is a +30% compile-time change caught by a real `benchbench ab`, and is a new graph break named?

Compile time is compared over rounds (benchbench/metrics/compile_time.py: Welch's t on the logs of the rounds'
compile times, `worse` when the 95% interval lies above +10%). This script checks that rule end to end on
this machine, with real `torch.compile` in real `ab` runs:

    ratio: the variant's cold compile against the plain model's, measured directly (fresh processes)
    A/B:   CTCAL_EXTRA=1 on the current side (`ab --current-env`): the model gets more layers, ~30% more
           compile work; the case key and the benchmark's definition hash stay the same, because the
           change lives in library code outside the suite file (as with memory_aa.py's MEMCAL_EXTRA)
    A/A:   both sides alike: any compile-time regression is false
    break: CTCAL_BREAK=1 on the current side: a graph break in the model's forward, named in the row

The suite (`ctcal/stack`, one compiled case, each round in a fresh worker) is written into a temporary
folder. Its setup first compiles a throw-away function, so that the measured compile holds the model's
own compile work, not Dynamo's and Inductor's first-use costs in the process (imports, the C++ toolchain
probe), which are the same on both sides; every round compiles cold, into an Inductor cache folder of
its own.

    PYTHONPATH=. python benchmarks/compile_time_check.py --tries 10 --aa-tries 10 --rounds 5

prints Markdown tables for docs/metrics.md.
"""

from __future__ import annotations

import argparse
import json
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
DEPTH = 6  # blocks of the plain model

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
    torch._dynamo.reset()
'''

SUITE = '''
"""Compile-time check: one compiled model, cold in every round (library: ctcal_lib)."""
import os
import statistics
import tempfile

import torch

import ctcal_lib
from benchbench import Case, benchmark
from benchbench.metrics import compile_time

SUITE = "ctcal"


@benchmark(params={"width": [64]}, dtypes=["float32"], modes=["compile"], isolate=True, timeout=600)
def stack(ctx, width):
    cache = tempfile.mkdtemp(prefix="ctcal-inductor-")  # a cold compile: no cached graphs or kernels
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    model, x = ctcal_lib.build(width)
    ctcal_lib.warm_compiler()
    before, breaks = compile_time.snapshot(), compile_time.break_counts()
    compiled = torch.compile(model, backend=ctcal_lib.BACKEND)
    with torch.no_grad():
        first, _ = ctx.time_once(lambda: compiled(x))
        steady = [ctx.time_once(lambda: compiled(x))[0] for _ in range(5)]
    reasons = compile_time.graph_break_reasons(breaks)
    now = compile_time.break_counts()
    metrics = {"compile_s": first - statistics.median(steady), **compile_time.phases(before),
               "graph_breaks": sum(n - breaks.get(r, 0) for r, n in now.items()), "graph_break_reasons": reasons}

    def call():
        with torch.no_grad():
            return compiled(x)

    return Case(call, metrics=metrics, check_output=False)
'''


def write_suite(workdir: Path, extra_depth: int, backend: str = "inductor") -> Path:
    (workdir / "ctcal_lib.py").write_text(textwrap.dedent(LIBRARY.format(
        depth=DEPTH, extra_depth=extra_depth, extra=EXTRA_ENV, brk=BREAK_ENV, backend=backend)))
    path = workdir / "ctcal_suite.py"
    path.write_text(textwrap.dedent(SUITE))
    return path


def _env(suite: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(suite.parent)])}
    for k in (EXTRA_ENV, BREAK_ENV):
        env.pop(k, None)
    return env


PROBE = '''
import statistics, sys, tempfile, os, time
os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="ctcal-probe-")
import torch
import ctcal_lib
model, x = ctcal_lib.build(64)
ctcal_lib.warm_compiler()
compiled = torch.compile(model, backend=ctcal_lib.BACKEND)
with torch.no_grad():
    t = time.perf_counter(); compiled(x); first = time.perf_counter() - t
    steady = []
    for _ in range(5):
        t = time.perf_counter(); compiled(x); steady.append(time.perf_counter() - t)
print(first - statistics.median(steady))
'''


def probe(suite: Path, extra: bool) -> float:
    """One cold compile of the plain model or the variant, in a fresh process, outside benchbench."""
    env = _env(suite)
    if extra:
        env[EXTRA_ENV] = "1"
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, cwd=suite.parent)
    if proc.returncode != 0:
        raise SystemExit(f"probe failed:\n{proc.stderr[-3000:]}")
    return float(proc.stdout.strip().splitlines()[-1])


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
            "high": d.get("high")}


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tries", type=int, default=10, help="A/B runs of ab with the larger model (default 10)")
    ap.add_argument("--aa-tries", type=int, default=10, help="A/A runs of ab (default 10)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="rounds of process pairs per ab (default 5; 0: ab's own, sequential)")
    ap.add_argument("--extra-depth", type=int, default=8, help=f"blocks of the variant (the plain model: {DEPTH})")
    ap.add_argument("--backend", default="inductor",
                    help="torch.compile's backend (default inductor; aot_eager skips Inductor's C++ codegen, for a "
                         "slow or busy machine)")
    ap.add_argument("--probes", type=int, default=5, help="direct cold compiles of each model (default 5)")
    ap.add_argument("--break-rounds", type=int, default=2,
                    help="rounds of the graph-break try (a new break is worse at any number of rounds; default 2)")
    ap.add_argument("--minutes", type=float, default=None,
                    help="start no new try after this many minutes (the tables hold the tries done)")
    ap.add_argument("--earlier", nargs="*", default=[], metavar="JSON",
                    help="--json files of earlier calls: their tries are counted with this call's")
    ap.add_argument("--json", metavar="PATH", help="write every decision here (after every try)")
    args = ap.parse_args()
    started = time.time()
    loads = [load_average()]
    rows: dict[str, list[dict]] = {"A/B (+30% compile work)": [], "A/A": [], "graph break added": []}
    plain: list[float] = []
    extra: list[float] = []
    for path in args.earlier:
        doc = json.loads(Path(path).read_text())
        plain += doc["plain_s"]
        extra += doc["variant_s"]
        for name, got in doc["decisions"].items():
            rows[name] += got

    def save() -> None:
        if args.json:
            ratio = statistics.median(extra) / statistics.median(plain) if plain and extra else None
            Path(args.json).write_text(json.dumps({"settings": vars(args), "plain_s": plain, "variant_s": extra,
                                                   "ratio": ratio, "decisions": rows, "load_average": loads},
                                                  indent=1))

    with tempfile.TemporaryDirectory(prefix="compile-check-") as tmp:
        suite = write_suite(Path(tmp), args.extra_depth, args.backend)
        for _ in range(args.probes):  # alternated, so that load changes fall on both
            plain.append(probe(suite, False))
            extra.append(probe(suite, True))
            save()
        plan = [("A/B (+30% compile work)", args.tries, {EXTRA_ENV: "1"}, args.rounds),
                ("A/A", args.aa_tries, {}, args.rounds), ("graph break added", 1 if args.break_rounds else 0,
                                                         {BREAK_ENV: "1"}, args.break_rounds)]
        done = {name: 0 for name, *_ in plan}
        i = 0
        while any(done[name] < n for name, n, *_ in plan):  # interleaved, so that load changes fall on all
            if args.minutes is not None and time.time() - started > 60 * args.minutes:
                break
            for name, n, env, rounds in plan:
                if done[name] >= n or (args.minutes is not None and time.time() - started > 60 * args.minutes):
                    continue
                got = decision(run_ab(suite, Path(tmp) / f"ab-{i}", rounds or None, env))
                i += 1
                done[name] += 1
                rows[name].append(got)
                loads.append(load_average())
                save()
                print(f"{name} {done[name]}/{n}: {got['verdict']} ({got['why']}) "
                      f"[{time.time() - started:.0f} s]", file=sys.stderr)
    ratio = statistics.median(extra) / statistics.median(plain) if plain and extra else float("nan")
    if plain:
        print(f"direct cold compiles: plain {', '.join(f'{x:.2f}' for x in plain)} s; variant "
              f"{', '.join(f'{x:.2f}' for x in extra)} s", file=sys.stderr)
    if plain:
        print(f"Direct cold compiles (fresh processes, {len(plain)} of each, alternated): the plain model ({DEPTH} "
              f"blocks) {statistics.median(plain):.2f} s, the variant ({args.extra_depth} blocks) "
              f"{statistics.median(extra):.2f} s (medians): ratio **{ratio:.3f}**.\n")
    print(table(rows))
    breaks = rows["graph break added"]
    for n, got in enumerate(breaks, 1):
        print(f"\nGraph break added, try {n}: `{got['verdict']}`, \"{got['why']}\"")
    print(f"\n`ab --profile quick --rounds {args.rounds}` (the graph-break try: `--rounds {args.break_rounds}`) on the "
          f"CPU, torch.compile backend `{args.backend}`, {time.time() - started:.0f} s in this call; load average "
          f"(1, 5, 15 min) before and after each ab of this call: {'; '.join(loads)}")
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
