"""Check the inference suite's decode tokens/s against an independent plain loop; regenerate its docs table.

For each decoder size and batch, in turns (suite, plain, suite, plain, ...) in this one process:

- suite: the `decode` case (eager, float32) through benchbench's harness (`execute.run_case`: per-call
  samples through the backend's timer), its `decode_tokens_per_s` as `derive` writes it: tokens made
  over the total time of all timed calls;
- plain: the same model and cache built from the suite's `Decoder`, greedy decoding in a bare
  `for` loop under `torch.inference_mode()` for as many steps as the suite's turn timed, one
  `time.perf_counter()` pair (and a device synchronize) around all of them: batch x steps / elapsed.

The ratio is the median of the per-turn ratios; the target is within 5%. `--write` replaces the table
between the markers in docs/inference.md; without it the table is printed.

    PYTHONPATH=. nice -n 19 python benchmarks/inference_decode_check.py --write
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchbench import execute, registry  # noqa: E402
from benchbench.backends import get as get_backend  # noqa: E402
from benchbench.report import CaseKey  # noqa: E402

DOC = ROOT / "docs" / "inference.md"
BEGIN, END = "<!-- decode check: begin (benchmarks/inference_decode_check.py) -->", "<!-- decode check: end -->"
TARGET = 0.05


def suite_rate(suite, backend, size: str, batch: int, context: int, window: int, profile: str) -> tuple[float, int]:
    """(the suite's decode tokens/s, how many decode steps it timed)."""
    params = {"size": size, "batch": batch, "context": context, "window": window, "sdpa": "auto"}
    key = CaseKey.make("inference", "decode", params, backend.name, "float32", "eager")
    bench = next(b for b in suite.benchmarks if b.name == "decode")
    result = execute.run_case(bench, key, backend, budget=None, profile=profile)
    if not result.ok:
        raise SystemExit(f"{key.label}: {result.status}: {result.reason}")
    suite.module.derive([result])
    return float(result.metrics["decode_tokens_per_s"]), len(result.samples)


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
          backend_name: str) -> list[dict]:
    suite = registry.load_source({"path": str(ROOT / "suites" / "inference.py")})
    backend = get_backend(backend_name)
    rows = []
    for size in sizes:
        for batch in batches:
            s_rates, p_rates = [], []
            for _ in range(turns):
                rate, steps = suite_rate(suite, backend, size, batch, context, window, profile)
                s_rates.append(rate)
                p_rates.append(plain_rate(suite.module, backend, size, batch, context, window, steps))
            ratios = [s / p for s, p in zip(s_rates, p_rates, strict=True)]
            rows.append({"size": size, "batch": batch, "suite": statistics.median(s_rates),
                         "plain": statistics.median(p_rates), "ratio": statistics.median(ratios),
                         "ratios": ratios})
            print(f"{size} batch {batch}: ratios {', '.join(f'{r:.3f}' for r in ratios)}", file=sys.stderr)
    return rows


def table(rows: list[dict], header: str) -> str:
    out = [header, "", "| decoder | batch | suite tokens/s | plain loop tokens/s | suite / plain (per turn) | "
           "within 5% |", "| --- | ---: | ---: | ---: | --- | --- |"]
    for r in rows:
        turns = ", ".join(f"{x:.3f}" for x in r["ratios"])
        ok = "yes" if abs(r["ratio"] - 1) <= TARGET else "**no**"
        out.append(f"| {r['size']} | {r['batch']} | {r['suite']:,.0f} | {r['plain']:,.0f} | {r['ratio']:.3f} "
                   f"({turns}) | {ok} |")
    return "\n".join(out)


def write(doc: Path, text: str) -> None:
    source = doc.read_text()
    if BEGIN not in source or END not in source:
        raise SystemExit(f"{doc}: the markers {BEGIN!r} and {END!r} are missing")
    head, rest = source.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    doc.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="tiny,small", help="decoder sizes, comma separated")
    ap.add_argument("--batches", default="1,8", help="batch sizes, comma separated")
    ap.add_argument("--turns", type=int, default=5, help="suite/plain pairs per row")
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--profile", default="default", help="the suite's sampling profile")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--write", action="store_true", help=f"replace the table in {DOC.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    t0 = time.time()
    rows = check(args.sizes.split(","), [int(b) for b in args.batches.split(",")], args.turns, args.context,
                 args.window, args.profile, args.backend)
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
