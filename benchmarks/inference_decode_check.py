"""Check the inference suite's decode tokens/s against an independent plain loop; regenerate its docs table.

For each decoder size and batch, in this one process, three decoders decode side by side, in short blocks
that take turns (each block of one is followed by one of each other, the order rotating through all six
orders so that none always runs first or on a warmer cache):

- suite: the `decode` case (eager, float32) as the suite builds it (its `decode` benchmark's setup, up to
  and including the guard's first call and the warm-up calls), then timed as the suite times it: the
  suite's own `per_call_samples` through the backend's timer, one timed call per decode step, inside the
  scope the case holds around its steps (inference mode); its rate is
  tokens made over the total time of the block's calls, as `derive` writes `decode_tokens_per_s`;
- plain: greedy decoding in a bare `for` loop under `torch.inference_mode()`, one `time.perf_counter()`
  pair (and a device synchronize) around the block's steps: batch x steps / elapsed. It decodes on the
  suite's own model object (the weights and KV cache the case built: `--models shared`, the default), with
  its own tokens and positions and none of the suite's code in the loop;
- plain again (a second plain loop on the same model): plain / plain is an A/A ratio, what the machine's
  noise alone does.

Why one model for all three: two instances of one model, built alike, ran up to 13% apart here (plain /
plain of separate instances 0.859 to 1.128 per instance pair, tiny decoder), a property of where each
instance's tensors landed, not of the loop timing it. With separate models that instance effect is as large
as the 5% target and no number of blocks averages it away (`--models separate` measures it). Sharing the
model compares what the check is about, the suite's timing and its step's code against a bare loop, on the
same memory. The three are still built afresh `--instances` times per row (the blocks shared among them),
and the table shows each instance's median.

A block is as many steps as take about `--block-s` seconds (at least 3). Why short blocks: this machine's
speed moves by 10-40% over seconds and by several percent within a second, so the three must take turns
quickly to see the same machine. With blocks of 0.25 s a block's suite / plain ratio spread by 5-10% either
way (quartiles) for the tiny decoder, and 96 blocks left an interval of +-4%; with blocks of 0.02 s (a tiny
decoder's 15-20 steps; the model shared, so taking turns does not evict its weights) the A/A interval
narrows to 1-2% either way. The ratio is the median of the blocks' suite / plain ratios, with its
distribution-free 95% interval; the target is within 5%. The collector's time (gc.callbacks) and the
per-call timer's (an empty call timed as the suite times a step) are shares of the suite's timed seconds.
`--write` replaces the table between the markers in docs/inference.md; without it
the table is printed.

    PYTHONPATH=. OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/inference_decode_check.py --write
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchbench.api import Context  # noqa: E402
from benchbench.measure.backends import get as get_backend  # noqa: E402
from benchbench.model.report import CaseKey  # noqa: E402
from benchbench.model.stats import median_ci_ranks  # noqa: E402
from benchbench.run import registry  # noqa: E402

DOC = ROOT / "docs" / "inference.md"
BEGIN, END = "<!-- decode check: begin (benchmarks/inference_decode_check.py) -->", "<!-- decode check: end -->"
TARGET = 0.05
ORDERS = list(itertools.permutations(("suite", "plain", "again")))


class GcClock:
    """Seconds spent in the garbage collector while it is installed (gc.callbacks): the suite leaves the
    collector on during per-call samples, the plain loop too."""

    def __init__(self) -> None:
        self.seconds, self._t0 = 0.0, 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._t0

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def timer_overhead(backend, calls: int = 2000) -> float:
    """The median time the backend's timer reports for an empty call: what per-call timing adds to each sample."""
    timer = backend.timer()
    return statistics.median(timer.block(lambda: None, 1) for _ in range(calls))


def suite_decoder(suite, backend, size: str, batch: int, context: int, window: int, profile: str
                  ) -> tuple[Callable[[int], tuple[float, float]], torch.nn.Module]:
    """The suite's decode case, set up by its own benchmark (guard, first call and warm-up included); returns
    `block(steps) -> (tokens/s, seconds)`, timing `steps` calls as the suite's `per_call_samples` does, and
    the model the case built (its weights and KV cache)."""
    module = suite.module
    params = {"size": size, "batch": batch, "context": context, "window": window, "sdpa": "auto"}
    key = CaseKey.make("inference", "decode", params, backend.name, "float32", "eager")
    bench = next(b for b in suite.benchmarks if b.name == "decode")
    sample, build, timed = module.per_call_samples, module._decoder, module.timed_case
    kept: dict = {}

    def keep(timer, fn, calls, *args, **kwargs):  # the suite hands its timer and call to the sampler here
        kept.update(timer=timer, fn=fn)
        return [1.0]

    def built(*args, **kwargs):  # and its model is the one the suite's helper builds
        kept["model"] = build(*args, **kwargs)
        return kept["model"]

    def case(*args, **kwargs):  # and the scope it holds around its timed steps
        kept["within"] = kwargs.get("within", contextlib.nullcontext)
        return timed(*args, **kwargs)

    module.per_call_samples, module._decoder, module.timed_case = keep, built, case
    try:
        bench.setup(Context(backend=backend, key=key, profile=profile), **params)
    finally:
        module.per_call_samples, module._decoder, module.timed_case = sample, build, timed
    timer, fn, within = kept["timer"], kept["fn"], kept["within"]

    def block(steps: int) -> tuple[float, float]:
        with within():
            seconds = sum(sample(timer, fn, (steps, steps, 0.0)))
        return batch * steps / seconds, seconds

    return block, kept["model"]


def plain_decoder(module, backend, size: str, batch: int, context: int, window: int,
                  model: torch.nn.Module | None = None) -> Callable[[int], tuple[float, float]]:
    """Greedy decoding in a bare loop (the position wraps after `window` steps, as the suite's does): no
    benchbench code involved. Returns `block(steps) -> (tokens/s, seconds)`, the block timed as a whole.
    With `model` (the suite's, its KV cache set up for this batch), the loop decodes on those very weights
    and cache; without, on a model of its own."""
    device = backend.torch_device()
    if model is None:
        torch.manual_seed(0)
        model = module.Decoder(module.DECODER_SIZES[size]).eval().to(device)
        model.setup_cache(batch, context + window, torch.float32, device)
    vocab = model.size.vocab
    prompt = torch.randint(0, vocab, (batch, context), generator=torch.Generator().manual_seed(1)).to(device)
    state = {"token": torch.randint(0, vocab, (batch, 1), generator=torch.Generator().manual_seed(2)).to(device),
             "i": 0}
    positions = [torch.tensor([p], device=device) for p in range(context, context + window)]

    def block(steps: int) -> tuple[float, float]:
        token, i = state["token"], state["i"]
        with torch.inference_mode():
            backend.synchronize()
            t0 = time.perf_counter()
            for _ in range(steps):
                token = model(token, positions[i], decode=True).argmax(-1, keepdim=True)
                i = (i + 1) % window
            backend.synchronize()
            elapsed = time.perf_counter() - t0
        state.update(token=token, i=i)
        return batch * steps / elapsed, elapsed

    with torch.inference_mode():
        model(prompt, torch.arange(context, device=device))
    block(5)  # warm-up, as many calls as the suite's default profile
    return block


def median_interval(xs: list[float]) -> tuple[float, float, float]:
    """The median and its distribution-free 95% interval (order statistics)."""
    s = sorted(xs)
    lo, hi = median_ci_ranks(len(s))
    return statistics.median(s), s[lo], s[hi]


def check(sizes: list[str], batches: list[int], blocks: int, block_s: float, context: int, window: int,
          profile: str, backend_name: str, instances: int = 4, shared: bool = True) -> list[dict]:
    suite = registry.load_source({"path": str(ROOT / "suites" / "inference.py")})
    backend = get_backend(backend_name)
    overhead = timer_overhead(backend)
    rows = []
    for size in sizes:
        for batch in batches:
            rates: dict[str, list[float]] = {name: [] for name in ("suite", "plain", "again")}
            suite_s, gc_s, steps, per_instance = 0.0, 0.0, 0, []
            for _ in range(instances):  # fresh decoders: each lands on its own memory
                timed, model = suite_decoder(suite, backend, size, batch, context, window, profile)
                own = model if shared else None
                run = {"suite": timed,
                       "plain": plain_decoder(suite.module, backend, size, batch, context, window, own),
                       "again": plain_decoder(suite.module, backend, size, batch, context, window, own)}
                if not steps:
                    step_s = min(run["plain"](3)[1], run["again"](3)[1]) / 3
                    steps = max(3, round(block_s / step_s))
                first = len(rates["suite"])
                for b in range(blocks // instances):
                    for name in ORDERS[b % len(ORDERS)]:
                        if name == "suite":
                            with GcClock() as clock:
                                rate, seconds = run[name](steps)
                            suite_s, gc_s = suite_s + seconds, gc_s + clock.seconds
                        else:
                            rate, seconds = run[name](steps)
                        rates[name].append(rate)
                per_instance.append(statistics.median(
                    s / p for s, p in zip(rates["suite"][first:], rates["plain"][first:], strict=True)))
                del run, timed, model, own
                gc.collect()
            ratios = [s / p for s, p in zip(rates["suite"], rates["plain"], strict=True)]
            aa = [q / p for q, p in zip(rates["again"], rates["plain"], strict=True)]
            rows.append({"size": size, "batch": batch, "steps": steps, "blocks": len(ratios),
                         "suite": statistics.median(rates["suite"]), "plain": statistics.median(rates["plain"]),
                         "ratio": median_interval(ratios), "aa": median_interval(aa), "instances": per_instance,
                         "gc_share": gc_s / suite_s, "timer_share": overhead * steps * len(ratios) / suite_s})
            print(f"{size} batch {batch}: {len(ratios)} blocks of {steps} steps; suite/plain "
                  f"{rows[-1]['ratio'][0]:.3f} (per instance {', '.join(f'{x:.3f}' for x in per_instance)}), "
                  f"plain/plain {rows[-1]['aa'][0]:.3f}", file=sys.stderr)
    return rows


def table(rows: list[dict], header: str) -> str:
    out = [header, "", "| decoder | batch | blocks x steps | suite tokens/s | plain loop tokens/s | suite / plain "
           "[95%] | per instance | within 5% | plain / plain, A/A [95%] | GC, timer (share of the suite's time) |",
           "| --- | ---: | --- | ---: | ---: | --- | --- | --- | --- | --- |"]
    for r in rows:
        ratio, low, high = r["ratio"]
        ok = "yes" if low >= 1 - TARGET and high <= 1 + TARGET else \
            "**no**" if high < 1 - TARGET or low > 1 + TARGET else "unresolved"
        aa = f"{r['aa'][0]:.3f} [{r['aa'][1]:.3f}, {r['aa'][2]:.3f}]"
        out.append(f"| {r['size']} | {r['batch']} | {r['blocks']} x {r['steps']} | {r['suite']:,.0f} | "
                   f"{r['plain']:,.0f} | {ratio:.3f} [{low:.3f}, {high:.3f}] | "
                   f"{', '.join(f'{x:.3f}' for x in r.get('instances', [])) or '-'} | {ok} | {aa} | "
                   f"{100 * r['gc_share']:.2f}%, {100 * r['timer_share']:.3f}% |")
    return "\n".join(out)


def write(doc: Path, text: str) -> None:
    from doc_markers import write_between

    write_between(doc, BEGIN, END, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="tiny,small", help="decoder sizes, comma separated")
    ap.add_argument("--batches", default="1,8", help="batch sizes, comma separated")
    ap.add_argument("--blocks", type=int, default=480, help="blocks per decoder and row (default 480)")
    ap.add_argument("--instances", type=int, default=12,
                    help="fresh sets of decoders per row, the blocks shared among them (default 12)")
    ap.add_argument("--block-s", type=float, default=0.02,
                    help="seconds per block, about (default 0.02; at least 3 steps a block)")
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--profile", default="default", help="the suite's profile (its warm-up calls)")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--models", choices=("shared", "separate"), default="shared",
                    help="shared (default): the plain loops decode on the suite's own model and KV cache; "
                         "separate: each loop builds its own (instance effects included)")
    ap.add_argument("--write", action="store_true", help=f"replace the table in {DOC.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    t0 = time.time()
    rows = check(args.sizes.split(","), [int(b) for b in args.batches.split(",")], args.blocks, args.block_s,
                 args.context, args.window, args.profile, args.backend, args.instances, args.models == "shared")
    load1 = os.getloadavg()[0]
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    header = (f"Measured {time.strftime('%Y-%m-%d', time.gmtime(t0))} on {get_backend(args.backend).device_name} "
              f"({args.backend}, {torch.get_num_threads()} torch thread{'s' if torch.get_num_threads() > 1 else ''}"
              f", CPUs {','.join(map(str, cpus)) or '?'} of {os.cpu_count()}), torch {torch.__version__}, "
              f"context {args.context}, window {args.window}, {args.models} models, blocks of about {args.block_s:g} s, in "
              f"{time.time() - t0:.0f} s at niceness {os.nice(0)}; load average {load0:.1f} at the start, "
              f"{load1:.1f} at the end.")
    text = table(rows, header)
    if args.write:
        write(DOC, text)
    print(text)
    return 0 if all(abs(r["ratio"][0] - 1) <= TARGET for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
