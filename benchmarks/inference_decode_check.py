"""Check the inference suite's decode tokens/s against an independent plain loop; regenerate its docs table.

For each decoder size and batch, in turns (suite, plain, suite, plain, ...) in this one process:

- suite: the `decode` case (eager, float32) through benchbench's harness (`execute.run_case`: per-call
  samples through the backend's timer), its `decode_tokens_per_s` as `derive` writes it: tokens made
  over the total time of all timed calls;
- plain: the same model and cache built from the suite's `Decoder`, greedy decoding in a bare
  `for` loop under `torch.inference_mode()` for as many steps as the suite's turn timed, one
  `time.perf_counter()` pair (and a device synchronize) around all of them: batch x steps / elapsed.

The ratio is the median of the per-turn ratios; the target is within 5%. Turns alternate which of the two
goes first (ABBA). Each turn also runs the plain loop a second time (plain / plain: an A/A ratio, what the
machine's noise alone gives), and records what the collector (gc.callbacks) and the per-call timer (an
empty call timed as the suite times a step) took, as shares of the suite's timed seconds. `--write`
replaces the table between the markers in docs/inference.md; without it the table is printed.

    PYTHONPATH=. nice -n 19 python benchmarks/inference_decode_check.py --write
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchbench.measure.backends import get as get_backend  # noqa: E402
from benchbench.model.report import CaseKey  # noqa: E402
from benchbench.run import execute, registry  # noqa: E402

DOC = ROOT / "docs" / "inference.md"
BEGIN, END = "<!-- decode check: begin (benchmarks/inference_decode_check.py) -->", "<!-- decode check: end -->"
TARGET = 0.05


class GcClock:
    """Seconds spent in the garbage collector while it is installed (gc.callbacks), and collections per
    generation: the suite leaves the collector on during per-call samples, the plain loop too."""

    def __init__(self) -> None:
        self.seconds, self.collections, self._t0 = 0.0, [0, 0, 0], 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._t0
            self.collections[info["generation"]] += 1

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def timer_overhead(backend, calls: int = 2000) -> float:
    """The median time the backend's timer reports for an empty call: what per-call timing adds to each sample."""
    timer = backend.timer()
    return statistics.median(timer.block(lambda: None, 1) for _ in range(calls))


def suite_rate(suite, backend, size: str, batch: int, context: int, window: int, profile: str
               ) -> tuple[float, int, float]:
    """(the suite's decode tokens/s, how many decode steps it timed, the seconds of those steps)."""
    params = {"size": size, "batch": batch, "context": context, "window": window, "sdpa": "auto"}
    key = CaseKey.make("inference", "decode", params, backend.name, "float32", "eager")
    bench = next(b for b in suite.benchmarks if b.name == "decode")
    result = execute.run_case(bench, key, backend, budget=None, profile=profile)
    if not result.ok:
        raise SystemExit(f"{key.label}: {result.status}: {result.reason}")
    suite.module.derive([result])
    return float(result.metrics["decode_tokens_per_s"]), len(result.samples), sum(result.samples)


def plain_rate(module, backend, size: str, batch: int, context: int, window: int, steps: int) -> float:
    """Greedy decoding in a bare loop, `steps` steps timed as a whole (the position wraps after `window`
    steps, as the suite's does): no benchbench timing code involved."""
    device = backend.torch_device()
    torch.manual_seed(0)
    model = module.Decoder(module.DECODER_SIZES[size]).eval().to(device)
    vocab = model.size.vocab
    prompt = torch.randint(0, vocab, (batch, context), generator=torch.Generator().manual_seed(1)).to(device)
    token = torch.randint(0, vocab, (batch, 1), generator=torch.Generator().manual_seed(2)).to(device)
    positions = [torch.tensor([p], device=device) for p in range(context, context + window)]
    model.setup_cache(batch, context + window, torch.float32, device)
    with torch.inference_mode():
        model(prompt, torch.arange(context, device=device))
        for pos in positions[:5]:  # warm-up
            token = model(token, pos, decode=True).argmax(-1, keepdim=True)
        backend.synchronize()
        t0 = time.perf_counter()
        for i in range(steps):
            token = model(token, positions[i % window], decode=True).argmax(-1, keepdim=True)
        backend.synchronize()
        elapsed = time.perf_counter() - t0
    return batch * steps / elapsed


def check(sizes: list[str], batches: list[int], turns: int, context: int, window: int, profile: str,
          backend_name: str, with_aa: bool = True) -> list[dict]:
    suite = registry.load_source({"path": str(ROOT / "suites" / "inference.py")})
    backend = get_backend(backend_name)
    rows = []
    for size in sizes:
        for batch in batches:
            s_rates, p_rates, aa, gc_share, timer_share = [], [], [], [], []
            steps = None
            for turn in range(turns):
                # ABBA: the suite goes first in even turns, the plain loop in odd ones (it then times as many
                # steps as the suite's previous turn), so neither always runs on a warmer or busier machine
                first_plain = turn % 2 == 1 and steps is not None
                if first_plain:
                    p_rates.append(plain_rate(suite.module, backend, size, batch, context, window, steps))
                with GcClock() as clock:
                    rate, steps, seconds = suite_rate(suite, backend, size, batch, context, window, profile)
                s_rates.append(rate)
                gc_share.append(clock.seconds / seconds)
                timer_share.append(timer_overhead(backend) * steps / seconds)
                if not first_plain:
                    p_rates.append(plain_rate(suite.module, backend, size, batch, context, window, steps))
                if with_aa:  # the plain loop against itself: what this machine's noise alone does to a ratio
                    aa.append(plain_rate(suite.module, backend, size, batch, context, window, steps) / p_rates[-1])
            ratios = [s / p for s, p in zip(s_rates, p_rates, strict=True)]
            rows.append({"size": size, "batch": batch, "suite": statistics.median(s_rates),
                         "plain": statistics.median(p_rates), "ratio": statistics.median(ratios),
                         "ratios": ratios, "aa": aa, "gc_share": max(gc_share), "timer_share": max(timer_share)})
            print(f"{size} batch {batch}: ratios {', '.join(f'{r:.3f}' for r in ratios)}"
                  + (f"; plain/plain {', '.join(f'{r:.3f}' for r in aa)}" if aa else ""), file=sys.stderr)
    return rows


def table(rows: list[dict], header: str) -> str:
    out = [header, "", "| decoder | batch | suite tokens/s | plain loop tokens/s | suite / plain (per turn) | "
           "within 5% | plain / plain, A/A (per turn) | GC, timer (share of the suite's time, worst turn) |",
           "| --- | ---: | ---: | ---: | --- | --- | --- | --- |"]
    for r in rows:
        turns = ", ".join(f"{x:.3f}" for x in r["ratios"])
        ok = "yes" if abs(r["ratio"] - 1) <= TARGET else "**no**"
        aa = (f"{statistics.median(r['aa']):.3f} ({', '.join(f'{x:.3f}' for x in r['aa'])})" if r.get("aa") else "-")
        shares = (f"{100 * r['gc_share']:.2f}%, {100 * r['timer_share']:.3f}%"
                  if r.get("gc_share") is not None and r.get("timer_share") is not None else "-")
        out.append(f"| {r['size']} | {r['batch']} | {r['suite']:,.0f} | {r['plain']:,.0f} | {r['ratio']:.3f} "
                   f"({turns}) | {ok} | {aa} | {shares} |")
    return "\n".join(out)


def write(doc: Path, text: str) -> None:
    from doc_markers import write_between

    write_between(doc, BEGIN, END, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="tiny,small", help="decoder sizes, comma separated")
    ap.add_argument("--batches", default="1,8", help="batch sizes, comma separated")
    ap.add_argument("--turns", type=int, default=5, help="suite/plain pairs per row")
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--profile", default="default", help="the suite's sampling profile")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--no-aa", action="store_true", help="leave out the plain loop's A/A against itself")
    ap.add_argument("--write", action="store_true", help=f"replace the table in {DOC.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    t0 = time.time()
    rows = check(args.sizes.split(","), [int(b) for b in args.batches.split(",")], args.turns, args.context,
                 args.window, args.profile, args.backend, not args.no_aa)
    load1 = os.getloadavg()[0]
    header = (f"Measured {time.strftime('%Y-%m-%d', time.gmtime(t0))} on {get_backend(args.backend).device_name} "
              f"({args.backend}, {torch.get_num_threads()} torch threads), torch {torch.__version__}, "
              f"`{args.profile}` sampling, context {args.context}, window {args.window}, {args.turns} turns per row, "
              f"in {time.time() - t0:.0f} s at niceness {os.nice(0)}; load average {load0:.1f} at the start, "
              f"{load1:.1f} at the end, on {os.cpu_count()} CPUs.")
    text = table(rows, header)
    if args.write:
        write(DOC, text)
    print(text)
    return 0 if all(abs(r["ratio"] - 1) <= TARGET for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
