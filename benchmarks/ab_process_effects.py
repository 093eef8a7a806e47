"""Where do `ab`'s per-process effects come from, and what removes them? Measure it and write the tables.

    PYTHONPATH=. python benchmarks/ab_process_effects.py --pairs 32 --work /tmp/abpe --doc docs/ab.md

Three questions about block-interleaved `ab` (benchbench/run/interleave.py), answered on A/A pairs (both
sides the same code, so every log ratio away from 0 is noise):

1. **Forked workers.** Does a zygote that imported torch and the suite, forking one child per side
   per round, give the same distribution of pair log ratios as fresh interpreters (`python -m
   benchbench.worker`, as `ab` starts them)? And how much start-up time per round does it save?
   Spawned and forked pairs alternate pair by pair in one run, on the same ops.
2. **Layout as a randomized factor.** Re-running a case's setup every k blocks (fresh inputs, so
   fresh allocations) inside a round samples many memory layouts per process pair. Does it shrink the
   between-pair spread (notably of a cache-resident 4 MB sum, and of a layer norm) without changing
   what the case measures (its time per call)? k = never, 8 and 2 blocks per side, in every pair.
3. **A reference kernel for stored reports.** `gate` on two stored reports compares runs minutes
   apart. Does dividing each case by a reference kernel of its kind (memory-bound: a 64 MB add;
   compute-bound: a matmul), timed block by block alternately with the case, shrink the spread of
   its time across rounds minutes apart? (The case and its reference run in the pair's two workers.)

Both sides of a pair are real benchbench workers answering `prepare`/`block` requests (the forked
ones are `benchbench.worker.main` in a child of the zygote); the turns, windows and a round's log
ratio are `benchbench.analysis.blocks`' and the layout per case `interleave.Layout`'s. Re-setup is a second
`prepare` of the same case with a minimal warm-up; the loop count stays the one fixed in the first pair.
The cases are defined in this file (it is also the suite the workers load). Records are saved after
every pair (`--work`/records.json; a rerun resumes), `--table-only` redraws the tables.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from benchbench import Case, benchmark

SUITE = "process_effects"
HERE = Path(__file__).resolve()
CASES = {"sum": "memory", "layer_norm": "memory", "sort": "compute"}  # case: the kind of its reference kernel
REFERENCES = {"memory": "ref_memory", "compute": "ref_compute"}
LAYOUTS = {"never": None, "k8": 8, "k2": 2}  # re-run setup every k blocks per side (None: never)


# --- the cases (this file is also the suite the workers load) ----------------------------------------
@benchmark(name="sum", params={"n": [2**20]})
def total(ctx, n):  # 4 MB of float32: cache-resident on a server CPU's L2+L3
    x = torch.randn(n)
    return Case(lambda: x.sum())


@benchmark(params={"rows": [1024], "cols": [1024]})
def layer_norm(ctx, rows, cols):
    x = torch.randn(rows, cols)
    return Case(lambda: F.layer_norm(x, (cols,)))


@benchmark(params={"n": [2**16]})
def sort(ctx, n):
    x = torch.randn(n)
    return Case(lambda: torch.sort(x))


@benchmark(params={"n": [2**22]})
def ref_memory(ctx, n):  # 3 x 16 MB streamed: beyond the caches, memory-bound
    a, b = torch.randn(n), torch.randn(n)
    out = torch.empty(n)
    return Case(lambda: torch.add(a, b, out=out))


@benchmark(params={"n": [192]})
def ref_compute(ctx, n):
    a, b = torch.randn(n, n), torch.randn(n, n)
    return Case(lambda: a @ b)


# --- workers -------------------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def zygote() -> int:
    """Import what a worker imports (torch, the engine, this suite), then fork one worker per request.

    A request is a JSON line {"fifo_in", "fifo_out", "log", "scratch"}; the child runs
    `benchbench.worker.main` with its stdin, stdout and stderr on the first three paths and its cases'
    scratch folders under the last. The answer is the child's pid."""
    from benchbench import worker
    from benchbench.run import execute, registry  # noqa: F401 - imported once, shared by every child

    registry.load_source({"path": str(HERE)})
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                fd_in = os.open(req["fifo_in"], os.O_RDONLY)
                fd_out = os.open(req["fifo_out"], os.O_WRONLY)
                fd_log = os.open(req["log"], os.O_WRONLY | os.O_APPEND)
                for fd, target in ((fd_in, 0), (fd_out, 1), (fd_log, 2)):
                    os.dup2(fd, target)
                    os.close(fd)
                sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - the zygote's buffer is not ours
                os.environ[execute.SCRATCH_ENV] = req["scratch"]
                code = worker.main()
            except BaseException:  # noqa: BLE001 - a child must never return into the zygote's loop
                code = 1
            os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)
    return 0


class _ForkedProc:
    """What `runner.Worker` needs of a process, for a child of the zygote (not our child: no waitpid)."""

    def __init__(self, pid: int, stdin: Any, stdout: Any) -> None:
        self.pid, self.stdin, self.stdout, self.returncode = pid, stdin, stdout, None

    def poll(self) -> int | None:
        try:
            with open(f"/proc/{self.pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    self.returncode = 0
        except OSError:
            self.returncode = 0
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        import subprocess

        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired("forked worker", timeout or 0)
            time.sleep(0.01)
        return 0


def forked_worker(zyg: Any, log_dir: Path) -> Any:
    """A `runner.Worker` whose process is a fork of the zygote, talking over two FIFOs."""
    import queue
    import threading

    from benchbench.run.runner import WORKER_START_TIMEOUT, Worker

    w = Worker.__new__(Worker)
    w.log_path = Path(tempfile.mkstemp(prefix="worker-", suffix=".log", dir=log_dir)[1])
    w._log = open(w.log_path, "ab")  # noqa: SIM115 - closed by Worker.close
    w.scratch_root = Path(tempfile.mkdtemp(prefix="scratch-", dir=log_dir))
    fifo_in, fifo_out = Path(tempfile.mktemp(dir=log_dir)), Path(tempfile.mktemp(dir=log_dir))
    os.mkfifo(fifo_in)
    os.mkfifo(fifo_out)
    zyg.stdin.write(json.dumps({"fifo_in": str(fifo_in), "fifo_out": str(fifo_out), "log": str(w.log_path),
                                "scratch": str(w.scratch_root)}) + "\n")
    zyg.stdin.flush()
    pid = json.loads(zyg.stdout.readline())["pid"]
    stdin = open(fifo_in, "w", encoding="utf-8", buffering=1)  # noqa: SIM115 - the same order as the child
    stdout = open(fifo_out, encoding="utf-8")  # noqa: SIM115
    fifo_in.unlink()
    fifo_out.unlink()
    w.proc = _ForkedProc(pid, stdin, stdout)
    w._lines = queue.Queue()
    threading.Thread(target=w._read, daemon=True).start()
    w.start_timeout = WORKER_START_TIMEOUT
    return w


def start_pair(design: str, zyg: Any, log_dir: Path, env: dict[str, str]) -> tuple[list[Any], float]:
    """Two workers started together and ready; the seconds that took."""
    from benchbench.run.runner import Worker

    t0 = time.perf_counter()
    if design == "spawn":
        workers = [Worker(log_dir, env, wait=False) for _ in range(2)]
    else:
        workers = [forked_worker(zyg, log_dir) for _ in range(2)]
    for w in workers:
        w.wait_ready()
    return workers, time.perf_counter() - t0


# --- one measurement: two prepared cases taking turns block by block -------------------------------
QUICK_SETUP = {"warmup_calls": 2, "warmup_min_s": 0.0, "warmup_max_s": 0.05}


_KEYS: dict[str, dict[str, Any]] = {}


def _key(name: str) -> dict[str, Any]:
    """The CPU case key of benchmark `name` of this suite (one case each)."""
    if name not in _KEYS:
        from benchbench.run.registry import load_source

        _KEYS[name] = load_source({"path": str(HERE)}).benchmark(name).cases("cpu")[0].to_dict()
    return _KEYS[name]


def _prepare(w: Any, name: str, budget: dict[str, Any]) -> dict[str, Any]:
    msg = w.run({"op": "prepare", "source": {"path": str(HERE)}, "benchmark": name, "key": _key(name),
                 "budget": budget, "profile": "quick"}, 600, lambda _m: None)
    if msg.get("event") != "prepared":
        raise RuntimeError(f"{name}: {msg.get('error') or msg.get('result', {}).get('reason') or msg}")
    return msg


def interleaved(workers: list[Any], names: list[str], loops: list[int], layout: tuple[int, int], k: int | None,
                budget: dict[str, Any], first: int) -> dict[str, Any]:
    """Side i prepares `names[i]`, then the sides take turns (ABBA, `blocks.turn_order`) for the windows of
    `layout`; with `k`, both sides re-run the case's setup after every k blocks of each side."""
    from benchbench.analysis import blocks

    for i in (first, 1 - first):
        _prepare(workers[i], names[i], budget)
    windows, per_window = layout
    samples: list[list[float]] = [[], []]
    done_pairs, total_pairs = 0, windows * per_window
    resetups = 0
    for _ in range(windows):
        order = blocks.turn_order(per_window, first)
        for j in range(0, len(order), 2):
            for i in order[j:j + 2]:
                msg = workers[i].run({"op": "block", "loops": loops[i]}, 600, lambda _m: None)
                samples[i].append(float(msg["s"]))
            done_pairs += 1
            if k is not None and done_pairs % k == 0 and done_pairs < total_pairs:
                for i in (first, 1 - first):
                    _prepare(workers[i], names[i], {**budget, **QUICK_SETUP})
                resetups += 1
    logs = blocks.window_logs(samples[0], samples[1], windows)
    return {"round_log": blocks.round_log(logs), "within_se": blocks.within_se(logs),
            "median": [statistics.median(s) for s in samples], "windows": windows, "blocks": per_window,
            "resetups": resetups}


# --- the run ---------------------------------------------------------------------------------------
def settings() -> dict[str, Any]:
    return {"threads": os.environ.get("OMP_NUM_THREADS", "unset"), "cpus": sorted(os.sched_getaffinity(0)),
            "cpu_count": os.cpu_count()}


def calibrate(state: dict[str, Any], workers: list[Any], budget: dict[str, Any], case_round_s: float,
              calibrations: int = 1) -> None:
    """The loop count and layout per op, fixed once (the first pair), as `ab` fixes them in a case's first round."""
    from benchbench.run.interleave import Layout

    for name in [*CASES, *REFERENCES.values()]:
        if name in state["loops"]:
            continue
        # the fastest of several calibrations on both sides: one taken while the process was starved of
        # CPU would fix a thin layout (few blocks) for every pair
        cal = min((_prepare(w, name, budget) for _ in range(calibrations) for w in workers),
                  key=lambda c: float(c["per_call_s"]))
        loops, per_call = int(cal["loops"]), float(cal["per_call_s"])
        state["loops"][name], state["block_s"][name] = loops, per_call * loops
    lay = Layout(case_round_s=case_round_s)
    for name in CASES:
        state["layout"][name] = lay.fit(state["block_s"][name])
        ref = REFERENCES[CASES[name]]
        state["layout"][f"{name}/{ref}"] = lay.fit(max(state["block_s"][name], state["block_s"][ref]))


def measure(args: argparse.Namespace, work: Path, data: dict[str, Any]) -> None:
    import subprocess

    from benchbench.measure.engine import get_profile
    from benchbench.run.interleave import IDLE_ENV

    profile = get_profile(args.profile)
    budget = profile.budget.to_dict()
    env = {**IDLE_ENV, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    os.environ.update(IDLE_ENV)
    log_dir = Path(tempfile.mkdtemp(prefix="abpe-"))
    zyg = subprocess.Popen([sys.executable, str(HERE), "--zygote"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True, bufsize=1, env={**os.environ, **env})
    json.loads(zyg.stdout.readline())  # the zygote has imported torch and the suite
    try:
        designs = [d for i in range(args.pairs) for d in ("spawn", "fork")]
        rng = random.Random(args.seed)
        done = len(data["pairs"])
        for p, design in enumerate(designs):
            if p < done:
                continue
            t0 = time.perf_counter()
            load0 = os.getloadavg()[0]
            workers, start_s = start_pair(design, zyg, log_dir, env)
            try:
                if not data["state"]["loops"]:
                    calibrate(data["state"], workers, budget, profile.ab_case_round_s, args.calibrations)
                st = data["state"]
                first = p // 2 % 2  # side order alternates over pairs of pairs (each design gets both)
                jobs = [(c, v) for c in CASES for v in LAYOUTS] + \
                    [(c, "ref") for c in CASES if design == "spawn"]
                rng.shuffle(jobs)
                out: dict[str, Any] = {}
                for case, variant in jobs:
                    t1 = time.perf_counter()
                    if variant == "ref":
                        ref = REFERENCES[CASES[case]]
                        r = interleaved(workers, [ref, case], [st["loops"][ref], st["loops"][case]],
                                        tuple(st["layout"][f"{case}/{ref}"]), None, budget, first)
                    else:
                        r = interleaved(workers, [case, case], [st["loops"][case]] * 2, tuple(st["layout"][case]),
                                        LAYOUTS[variant], budget, first)
                    out[f"{case}/{variant}"] = {**r, "s": time.perf_counter() - t1}
            finally:
                for w in workers:
                    w.close()
            data["pairs"].append({"pair": p, "design": design, "start_s": start_s, "pair_s": time.perf_counter() - t0,
                                  "t": time.time(), "first": first, "results": out, "load": [load0, os.getloadavg()[0]],
                                  **settings()})
            save(data, work)
            log(f"pair {p + 1}/{len(designs)} {design}: start {start_s:.2f} s, pair {time.perf_counter() - t0:.1f} s")
    finally:
        import shutil

        zyg.stdin.close()
        zyg.wait(timeout=30)
        shutil.rmtree(log_dir, ignore_errors=True)


def save(data: dict[str, Any], work: Path) -> None:
    tmp = work / "records.json.tmp"
    tmp.write_text(json.dumps(data))
    tmp.replace(work / "records.json")


# --- tables ------------------------------------------------------------------------------------------
def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _centre(logs: list[float]) -> str:
    """Geometric-mean ratio with its 95% t interval."""
    from scipy.stats import t

    m, se = statistics.fmean(logs), statistics.stdev(logs) / math.sqrt(len(logs))
    h = float(t.ppf(0.975, len(logs) - 1)) * se
    return f"{math.exp(m):.4f} [{math.exp(m - h):.4f}, {math.exp(m + h):.4f}]"


def _var_p(a: list[float], b: list[float]) -> float:
    """Two-sided F test p-value of equal variances (Brown-Forsythe/Levene on medians, robust to tails)."""
    from scipy.stats import levene

    return float(levene(a, b, center="median").pvalue)


def _us(s: float) -> str:
    return f"{s * 1e6:.0f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms"


def tables(data: dict[str, Any]) -> str:
    pairs = data["pairs"]
    by = {d: [p for p in pairs if p["design"] == d] for d in ("spawn", "fork")}

    def logs(design: str, key: str) -> list[float]:
        return [p["results"][key]["round_log"] for p in by[design] if key in p["results"]]

    def within(design: str, key: str) -> float:
        return statistics.median(p["results"][key]["within_se"] for p in by[design] if key in p["results"])

    def per_call(design: str, key: str) -> float:
        return statistics.median(p["results"][key]["median"][0] for p in by[design] if key in p["results"])

    loads = [x for p in pairs for x in p["load"]]
    seen = {(p["threads"], str(p["cpus"]), p["cpu_count"]) for p in pairs}
    t_span = (max(p["t"] for p in pairs) - min(p["t"] for p in pairs)) / 60
    out = [f"{len(pairs)} process pairs ({len(by['spawn'])} spawned, {len(by['fork'])} forked, alternating) over "
           f"{t_span:.0f} minutes, {time.strftime('%Y-%m-%d', time.gmtime(pairs[0]['t']))}. Measured with "
           f"(OMP_NUM_THREADS, CPUs used, CPUs in the machine): {'; '.join(', '.join(map(str, s)) for s in sorted(seen))}; "
           f"the 1-minute load average: {min(loads):.1f}-{max(loads):.1f}. Every pair is A/A (the same code on "
           "both sides); a pair's log ratio is the median of its windows' (as in `ab`).", "",
           "**Forked against spawned workers** (setup once per round, as `ab` does today):", "",
           "| case | workers | pairs | A/A centre, 95% CI | between-pair sd | median within-pair se "
           "| spread equal? (Levene p) | median time per call |", "|" + " --- |" * 8]
    for case in CASES:
        key = f"{case}/never"
        a, b = logs("spawn", key), logs("fork", key)
        p = _var_p(a, b) if len(a) > 2 and len(b) > 2 else float("nan")
        for design, lg in (("spawn", a), ("fork", b)):
            if len(lg) < 2:
                continue
            out.append(f"| {case} | {design} | {len(lg)} | {_centre(lg)} | {_pct(statistics.stdev(lg))} "
                       f"| {_pct(within(design, key))} | {p:.2f} | {_us(per_call(design, key))} |")
    starts = {d: [p["start_s"] for p in by[d]] for d in by}
    out += ["", "| workers | pairs | both workers ready (median, max) |", "| --- | --- | --- |"]
    for d in by:
        if starts[d]:
            out.append(f"| {d} | {len(starts[d])} | {statistics.median(starts[d]):.2f} s, {max(starts[d]):.2f} s |")
    out += ["", "**Re-running the setup every k blocks** (fresh inputs, so fresh allocations; both sides at the "
            "same moments), in the same pairs:", "",
            "| case | re-setup | workers | pairs | A/A centre, 95% CI | between-pair sd | median within-pair se "
            "| spread vs never (Levene p) | median time per call (vs never) |", "|" + " --- |" * 9]
    for case in CASES:
        for design in ("spawn", "fork"):
            base = logs(design, f"{case}/never")
            t_base = per_call(design, f"{case}/never") if base else None
            for variant, k in LAYOUTS.items():
                key = f"{case}/{variant}"
                lg = logs(design, key)
                if len(lg) < 2:
                    continue
                p = _var_p(base, lg) if variant != "never" and len(base) > 2 else None
                tc = per_call(design, key)
                rel = f" ({tc / t_base - 1:+.1%})" if t_base and variant != "never" else ""
                out.append(f"| {case} | {'never' if k is None else f'every {k} blocks'} | {design} | {len(lg)} "
                           f"| {_centre(lg)} | {_pct(statistics.stdev(lg))} | {_pct(within(design, key))} "
                           f"| {'-' if p is None else f'{p:.2f}'} | {_us(tc)}{rel} |")
    out += ["", "**A reference kernel for stored reports** (spawned pairs, one per round, rounds "
            f"{t_span / max(1, len(by['spawn']) - 1):.1f} minutes apart on average): the spread across rounds of a "
            "case's own median time (what two stored reports compare), against that of its time divided by a "
            "reference kernel timed alternately with it, block by block (the same windows and medians as `ab`), "
            "and against the A/A pair of the case with itself:", "",
            "| case | reference | rounds | sd of log time | sd of log(time / reference) | sd of log(A/A pair) |",
            "| --- | --- | --- | --- | --- | --- |"]
    for case, kind in CASES.items():
        ref = REFERENCES[kind]
        rs = [p["results"][f"{case}/ref"] for p in by["spawn"] if f"{case}/ref" in p["results"]]
        if len(rs) < 3:
            continue
        raw = [math.log(r["median"][1]) for r in rs]
        norm = [r["round_log"] for r in rs]
        aa = logs("spawn", f"{case}/never")
        out.append(f"| {case} | {ref} | {len(rs)} | {_pct(statistics.stdev(raw))} | {_pct(statistics.stdev(norm))} "
                   f"| {_pct(statistics.stdev(aa))} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=16, help="process pairs per design (spawned, forked)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calibrations", type=int, default=1,
                    help="calibrate each op this many times per side in the first pair and keep the fastest")
    ap.add_argument("--profile", default="quick", help="the profile whose budget and case round the pairs use")
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for every worker (default 1)")
    ap.add_argument("--cpus", default="0", help="pin this process and its workers to these CPUs (default 0)")
    ap.add_argument("--work", default="/tmp/benchbench-ab-process-effects")
    ap.add_argument("--doc", default=None, help="write the tables into this Markdown file (between markers)")
    ap.add_argument("--marker", default="ab-process-effects")
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--zygote", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.zygote:
        return zygote()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    path = work / "records.json"
    data = json.loads(path.read_text()) if path.exists() else \
        {"pairs": [], "state": {"loops": {}, "block_s": {}, "layout": {}}}
    if not args.table_only:
        measure(args, work, data)
    text = tables(data)
    print(text)
    if args.doc:
        from doc_markers import markers, write_between

        write_between(Path(args.doc), *markers(args.marker), text, create=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
