"""torch.distributed: collective bandwidth, process-group start-up and DDP overhead, launched by torchrun.

Every case's setup launches one job with torchrun (`torch.distributed.run`) from benchbench's worker:
gloo on the CPU, nccl on CUDA (one GPU per rank). The ranks time themselves (suites/_distributed_rank.py):
each timed iteration starts on a barrier, and the case's sample for it is the slowest rank's time,
which is what the job waits for; every rank's samples are kept in the result's metrics.

- `collective[op, size]`: all_reduce, all_gather, reduce_scatter, broadcast, all_to_all; time per
  op, algorithm and bus bandwidth by the nccl-tests conventions (`algbw`, `busbw` below).
- `startup`: process-group init time (cold, after torchrun's rendezvous) and re-init samples.
- `ddp[model, ranks]`: a training step of a model from the training suite wrapped in
  DistributedDataParallel, against the same step without DDP (the overhead), on one rank and on all;
  `ddp_buckets[model, bucket_cap_mb]`: the same on all ranks with other gradient bucket sizes.

World size: `run --nproc-per-node N` (default: 2 on the CPU, capped at the usable CPUs; every visible
GPU on CUDA), `--nnodes`, `--node-rank`, `--rdzv-endpoint` for several machines; the CLI hands them to
the worker as BENCHBENCH_* environment variables. On the CPU each rank uses usable CPUs / ranks per
node threads. Ranks of one machine that share its CPU cores cannot scale like a cluster: scaling
efficiency measured so is flagged `compute-confounded`.

A case ends within its timeout whatever the ranks do: the launch has a deadline below the case
timeout, after which the launcher kills torchrun and every rank; a rank that dies or raises fails the
case with that rank's number and error.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchbench import Case, Skip, benchmark, usable_cpus

if TYPE_CHECKING:  # pragma: no cover
    from benchbench import Context, Result

SUITE = "distributed"
RANK_PROGRAM = Path(__file__).resolve().with_name("_distributed_rank.py")
# Part of every benchmark's definition hash (a plain constant its setup uses): a changed rank program
# makes results incomparable, as a changed setup does.
RANK_PROGRAM_SHA256 = hashlib.sha256(RANK_PROGRAM.read_bytes()).hexdigest()

NPROC_ENV = "BENCHBENCH_NPROC_PER_NODE"
NNODES_ENV = "BENCHBENCH_NNODES"
NODE_RANK_ENV = "BENCHBENCH_NODE_RANK"
RDZV_ENDPOINT_ENV = "BENCHBENCH_RDZV_ENDPOINT"

OPS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "all_to_all")
KiB, MiB = 1024, 1024 * 1024
SIZES = (4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB, 16 * MiB, 64 * MiB, 256 * MiB)
DDP_BATCH = {"mlp-wide": 128, "cnn": 64}
DEFAULT_BUCKET_MB = 25  # DistributedDataParallel's default bucket_cap_mb

# Iteration budgets inside the ranks, per profile (the harness's own budget does not reach them).
BUDGETS: dict[str, dict[str, float]] = {  # per job, i.e. per round: the profiles' per-round budgets
    "quick": {"warmup_calls": 2, "warmup_min_s": 0.03, "warmup_max_s": 0.5, "min_samples": 5, "max_samples": 30,
              "max_time_s": 0.15},
    "default": {"warmup_calls": 3, "warmup_min_s": 0.1, "warmup_max_s": 2.0, "min_samples": 7,
                "max_samples": 100, "max_time_s": 0.5},
    "full": {"warmup_calls": 5, "warmup_min_s": 0.3, "warmup_max_s": 5.0, "min_samples": 10,
             "max_samples": 300, "max_time_s": 1.5},
}
STARTUP_REPEATS = {"quick": 3, "default": 5, "full": 10}
# Rounds (fresh workers) per case at most: every round relaunches each job, and a launch costs 10-20 s
# of interpreter and torch start-up per process on a busy 2-core machine; every launch starts fresh
# rank processes anyway.
ROUNDS = 2
LAUNCH_SHARE = 0.8  # the launch's own deadline, as a share of the case timeout
GB = 1e9  # nccl-tests report GB/s in units of 1e9 bytes


# --- bandwidth by the nccl-tests conventions (NVIDIA/nccl-tests, doc/PERFORMANCE.md) ---------------
def bus_factor(op: str, n: int) -> float:
    """busbw / algbw for a collective over n ranks: what turns the algorithm bandwidth into the speed
    of the hardware bottleneck, comparable across rank counts."""
    if n < 1:
        raise ValueError(f"rank count must be at least 1, got {n}")
    if op == "all_reduce":
        return 2 * (n - 1) / n
    if op in ("all_gather", "reduce_scatter", "all_to_all"):
        return (n - 1) / n
    if op in ("broadcast", "reduce"):
        return 1.0
    raise ValueError(f"unknown collective {op!r}")


def algbw(nbytes: float, seconds: float) -> float:
    """Algorithm bandwidth S / t in bytes/s. S is the buffer of all_reduce and broadcast and the total
    array (per-rank chunk x n) of all_gather, reduce_scatter and all_to_all."""
    if seconds <= 0:
        raise ValueError("time must be positive")
    return nbytes / seconds


def busbw(op: str, nbytes: float, seconds: float, n: int) -> float:
    """Bus bandwidth in bytes/s: algbw x bus_factor(op, n)."""
    return algbw(nbytes, seconds) * bus_factor(op, n)


# --- where the job runs ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Launch:
    """torchrun's placement flags: processes per node, nodes, this node's rank, rendezvous endpoint."""

    nproc_per_node: int
    nnodes: int = 1
    node_rank: int | None = None
    rdzv_endpoint: str | None = None

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes

    def torchrun_args(self, job_id: str) -> list[str]:
        """Flags for `python -m torch.distributed.run`. One node: --standalone (a local c10d
        rendezvous on a free port). Several: c10d rendezvous at the endpoint, or the static one when
        the node rank is given (torchrun reads --node-rank only there)."""
        args = ["--nproc-per-node", str(self.nproc_per_node), "--max-restarts", "0", "--monitor-interval", "0.1"]
        if self.nnodes == 1 and not self.rdzv_endpoint:
            return ["--standalone", *args]
        args += ["--nnodes", str(self.nnodes), "--rdzv-id", job_id, "--rdzv-endpoint", str(self.rdzv_endpoint)]
        if self.node_rank is not None:
            return [*args, "--rdzv-backend", "static", "--node-rank", str(self.node_rank)]
        return [*args, "--rdzv-backend", "c10d"]


def launch_config(env: dict[str, str], device: str, gpus: int, cpus: int) -> Launch:
    """The launch the environment asks for (the CLI's --nproc-per-node and friends), else the default:
    every visible GPU on CUDA, two ranks on the CPU (one if there is a single usable CPU)."""

    def number(name: str) -> int | None:
        raw = env.get(name, "").strip()
        if not raw:
            return None
        try:
            return int(raw)
        except ValueError:
            raise Skip(f"{name}={raw!r} is not a whole number") from None

    nproc = number(NPROC_ENV) or (gpus if device == "cuda" else min(2, max(1, cpus)))
    nnodes = number(NNODES_ENV) or 1
    node_rank = number(NODE_RANK_ENV)
    endpoint = env.get(RDZV_ENDPOINT_ENV, "").strip() or None
    if nproc < 1 or nnodes < 1:
        raise Skip(f"--nproc-per-node and --nnodes must be at least 1 (got {nproc} and {nnodes})")
    if nnodes > 1 and not endpoint:
        raise Skip("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the same on every node)")
    if device == "cuda" and nproc > gpus:
        raise Skip(f"--nproc-per-node {nproc} needs {nproc} GPUs, {gpus} visible (nccl: one GPU per rank)")
    return Launch(nproc, nnodes, node_rank, endpoint)


def threads_per_rank(cpus: int, local_world_size: int) -> int:
    return max(1, cpus // max(1, local_world_size))


# --- running one job ------------------------------------------------------------------------------
class RankFailed(RuntimeError):
    """A rank of the job died or raised; the first line names it (it becomes the result's reason)."""


class LaunchTimedOut(RuntimeError):
    """The job did not finish before its deadline; the first line says where each rank was."""


class LaunchFailed(RuntimeError):
    """torchrun itself failed (bad flags, rendezvous), before or without a failed rank."""


# how gloo and nccl say that the other side of a collective went away
_PEER_ERRORS = ("connection closed by peer", "connection reset", "connection refused", "broken pipe", "timed out",
                "read error", "recv operation", "send operation", "communicator was aborted", "remote process exited")
_TEARDOWN = ("SIGTERM", "SIGKILL", "SIGINT")


def _blame(failure: dict[str, Any]) -> int:
    """0: failed on its own (an error, an exit status, a crash signal); 1: lost a peer (its collective
    failed because another rank went away); 2: stopped by torchrun tearing the job down."""
    if failure.get("signal") in _TEARDOWN:
        return 2
    text = (failure.get("error") or "").lower()
    if text and any(s in text for s in _PEER_ERRORS):
        return 1
    return 0


def describe_failures(failures: list[dict[str, Any]]) -> str:
    """One line naming the rank(s) that failed first and why, then the others. torchrun's own "first"
    (by timestamps in whole seconds) cannot tell a cause from its consequences; their kind can."""

    def what(f: dict[str, Any]) -> str:
        how = f"killed by {f['signal']}" if f.get("signal") else f"exited with status {f['exitcode']}"
        return f"rank {f['rank']} {how}" + (f": {f['error']}" if f.get("error") else "")

    best = min(_blame(f) for f in failures)
    causes = [f for f in failures if _blame(f) == best]
    others = [f for f in failures if _blame(f) != best]
    line = "; ".join(what(f) for f in causes)
    if others:
        line += " (then " + "; ".join(what(f) for f in others) + ")"
    return line


def _progress(folder: Path) -> dict[int, str]:
    out = {}
    for path in sorted(folder.glob("rank-*.progress")):
        try:
            out[int(path.stem.split("-", 1)[1].split(".")[0])] = path.read_text().strip()
        except (OSError, ValueError):
            continue
    return out


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL torchrun and every process under it (each rank runs in a session of its own)."""
    import psutil

    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    for p in [*family]:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    proc.wait()
    psutil.wait_procs(family, timeout=5)


def launch(spec: dict[str, Any], where: Launch, folder: Path, deadline_s: float, job_id: str,
           threads: int | None = None) -> dict[str, Any]:
    """Run one job under torchrun and return what its ranks wrote (plus `launched_at`, wall clock).

    Raises RankFailed, LaunchTimedOut or LaunchFailed with a one-line reason; never leaves a process.
    """
    folder.mkdir(parents=True, exist_ok=True)
    out, failures_path = folder / "result.json", folder / "failures.json"
    spec = {**spec, "out": str(out)}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # ranks import benchbench
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)  # torchrun would otherwise set 1 (and warn)
    cmd = [sys.executable, str(RANK_PROGRAM), "--torchrun", str(failures_path), *where.torchrun_args(job_id),
           str(RANK_PROGRAM), json.dumps(spec)]
    launched_at = time.time()
    with open(folder / "torchrun.log", "wb") as log:
        # torchrun stays in the worker's process group: a case timeout (the runner kills that group)
        # ends it, and the ranks follow their agent (they watch it).
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            code = proc.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            where_now = _progress(folder)
            _kill_tree(proc)
            states = ", ".join(f"rank {r} at {s}" for r, s in sorted(where_now.items())) or "no rank started"
            raise LaunchTimedOut(f"no result within {deadline_s:.0f} s: {states}") from None
        except BaseException:
            _kill_tree(proc)
            raise
    if code != 0:
        if failures_path.is_file():
            failures = json.loads(failures_path.read_text())
            # where every rank was tells a hung rank apart from the ranks that timed out waiting for it
            states = ", ".join(f"rank {r} at {s}" for r, s in sorted(_progress(folder).items()))
            raise RankFailed(describe_failures(failures) + (f"; last progress: {states}" if states else "")
                             + "\n" + _log_tail(folder))
        raise LaunchFailed(f"torchrun exited with status {code}: {_last_line(folder)}\n" + _log_tail(folder))
    if not out.is_file():
        raise LaunchFailed("torchrun finished but no rank wrote results (local rank 0 writes them)")
    doc = json.loads(out.read_text())
    doc["launched_at"] = launched_at
    return doc


def _log_tail(folder: Path, lines: int = 30) -> str:
    try:
        return "\n".join((folder / "torchrun.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _last_line(folder: Path) -> str:
    tail = [ln for ln in _log_tail(folder).splitlines() if ln.strip()]
    return tail[-1][:200] if tail else "no output"


# --- what every case shares -----------------------------------------------------------------------
def slowest(per_rank: list[list[float]]) -> list[float]:
    """Per iteration, the slowest rank's time: what the job waits for."""
    if not per_rank or any(len(s) != len(per_rank[0]) for s in per_rank):
        raise ValueError("every rank must have the same number of samples")
    return [max(col) for col in zip(*per_rank, strict=True)]


def startup_metrics(doc: dict[str, Any]) -> dict[str, Any]:
    """Start-up figures of a job, from the ranks' clocks (one machine: one clock): torchrun's own start
    and rendezvous (until it spawned the first rank), the ranks' interpreter and imports, torchrun to the
    last rank's init, and process-group init itself. Several machines: this machine's ranks only."""
    ranks = [r for r in doc["ranks"] if r.get("host") == socket.gethostname()] or doc["ranks"]
    init_begin = max(r["started_at"] for r in ranks)  # the last rank to arrive
    init_end = max(r["initialized_at"] for r in ranks)
    spawned = [r["spawned_at"] for r in ranks if r.get("spawned_at")]
    out = {}
    if len(spawned) == len(ranks):  # process creation times (psutil; 10 ms resolution)
        out["torchrun_start_and_rendezvous_s"] = min(spawned) - doc["launched_at"]
        out["rank_start_s"] = max(r["started_at"] - r["spawned_at"] for r in ranks)
    return {
        **out,
        "launch_to_init_s": max(r["started_at"] for r in ranks) - doc["launched_at"],
        "init_process_group_s": init_end - init_begin,
        "init_process_group_s_per_rank": [r["init_s"] for r in ranks],
        "launch_to_ready_s": init_end - doc["launched_at"],
    }


def job_shape(doc: dict[str, Any], where: Launch) -> dict[str, int]:
    """The job's ranks and machines, as the Case's typed fields: results of jobs that differ in them
    compare as incomparable."""
    return {"world_size": int(doc["world_size"]), "nnodes": int(where.nnodes)}


def job_metrics(doc: dict[str, Any], where: Launch, baseline: bool = False) -> dict[str, Any]:
    """What every case of a job reports beside its shape (`job_shape`): placement, threads, start-up.
    `baseline`: a deliberate one-rank job (the DDP scaling baseline), which needs no note that one rank
    cannot scale."""
    local = doc["local_world_size"]
    shared = doc["backend"] == "gloo" and local > 1
    out = {"nproc_per_node": local,
           "process_group_backend": doc["backend"], "usable_cpus": doc["usable_cpus"],
           "threads_per_rank": doc["threads_per_rank"], "ranks_share_cpu_cores": shared,
           "torch_distributed": doc.get("torch"), **startup_metrics(doc)}
    if doc["threads_per_rank"] is not None:
        out["threads_note"] = (f"{local} rank(s) on this node with {doc['threads_per_rank']} torch thread(s) each, "
                               f"of {doc['usable_cpus']} usable CPUs")
    if doc["world_size"] == 1 and not baseline:
        more = "more GPUs (one rank per GPU) or --nnodes" if doc["backend"] == "nccl" else "--nproc-per-node 2 or more"
        out["scaling_note"] = f"one rank: collectives move nothing between ranks and scaling needs {more}"
    return out


def run_job(ctx: Context, kind: str, params: dict[str, Any], timeout: float, one_rank: bool = False
            ) -> tuple[dict[str, Any], Launch]:
    """What the ranks of a job wrote, and where it ran: launched now, or earlier in this worker process
    by a case that shares the job (see `_JOBS`)."""
    import torch

    device = ctx.backend.name
    gpus = torch.cuda.device_count() if device == "cuda" else 0
    cpus = usable_cpus()
    where = launch_config(dict(os.environ), device, gpus, cpus)
    # on the CPU every job uses the threads each rank of the full job gets, the one-rank baseline too
    threads = threads_per_rank(cpus, where.nproc_per_node) if device != "cuda" else None
    if one_rank:
        if where.nnodes > 1:
            raise Skip("the one-rank baseline is measured in a single-node run")
        where = replace(where, nproc_per_node=1)
    budget = BUDGETS.get(ctx.profile, BUDGETS["default"])
    deadline = LAUNCH_SHARE * timeout
    spec = {"kind": kind, "device": device, "params": params, "budget": budget, "program": RANK_PROGRAM_SHA256,
            "threads": threads,
            "pg_timeout_s": max(10.0, deadline / 2)}  # a hung peer makes the others raise, before the deadline
    # the same on every node of a job (--node-rank left out): c10d rendezvous matches nodes by this id
    memo = json.dumps([spec, replace(where, node_rank=None).torchrun_args("")], sort_keys=True)
    job_id = "benchbench-" + hashlib.sha1(memo.encode()).hexdigest()[:12]
    if job_id in _JOBS:
        return _JOBS[job_id], where
    own = None
    if ctx.scratch_dir is None:
        own = tempfile.TemporaryDirectory(prefix="benchbench-distributed-")
    try:
        folder = Path(own.name if own else ctx.scratch_dir) / "job"
        doc = launch(spec, where, folder, deadline, job_id, threads)
    finally:
        if own is not None:
            own.cleanup()
    doc["job_id"], doc["launched_by"] = job_id, ctx.key.label
    _JOBS[job_id] = doc
    return doc, where


# Jobs this worker process has run, by what they measured. A job sweeps every size of a collective
# (every bucket size of a DDP model) in one launch, as nccl-tests sweeps sizes in one process: each
# torchrun launch costs seconds of interpreter and torch start-up per process (10-20 s on a busy
# 2-core machine), which a launch per case would pay 25 times in the default profile. The first case
# of a job launches it (and carries its cost and timeout); the others read their samples from it.
# The runner replaces the worker after a failed case, so a failed job is launched afresh.
_JOBS: dict[str, dict[str, Any]] = {}


def per_rank(doc: dict[str, Any], phase: str) -> list[list[float]]:
    return [r["phases"][phase] for r in doc["ranks"]]


def shared(doc: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return {"job_id": doc["job_id"], "job_launched_by": doc["launched_by"],
            "job_launched_here": doc["launched_by"] == ctx.key.label}


# --- the benchmarks -------------------------------------------------------------------------------
COLLECTIVE_TIMEOUT = 900
DDP_TIMEOUT = 600
COLLECTIVE_SIZES = {"quick": (4 * KiB, 64 * KiB, 1 * MiB), "default": (4 * KiB, 64 * KiB, 1 * MiB, 16 * MiB, 256 * MiB),
                    "full": SIZES}
BUCKETS = {"quick": (1,), "default": (1, 100), "full": (1, 5, 100)}


def collective_job(ctx: Context, op: str, size: int | None = None) -> tuple[dict[str, Any], Launch]:
    """The job that measures `op` at `size` in this profile: every op at every size in the quick
    profile (one launch), one op at every size in the others (a job per op keeps its first case within
    the timeout). Each job also measures start-up first, so the startup case launches nothing."""
    sizes = set(COLLECTIVE_SIZES.get(ctx.profile, SIZES)) | ({size} if size else set())
    ops = list(OPS) if ctx.profile == "quick" else [op]
    repeats = STARTUP_REPEATS.get(ctx.profile, STARTUP_REPEATS["default"])
    return run_job(ctx, "collective", {"ops": ops, "sizes": sorted(sizes), "repeats": repeats}, COLLECTIVE_TIMEOUT)


@benchmark(params={"op": OPS, "size": SIZES}, backends=["cpu", "cuda"], rounds=ROUNDS,
           profiles={"quick": {"size": COLLECTIVE_SIZES["quick"]}, "default": {"size": COLLECTIVE_SIZES["default"]}},
           overview={"op": ["all_reduce"], "size": [1 * MiB]}, timeout=COLLECTIVE_TIMEOUT)
def collective(ctx: Context, op: str, size: int) -> Case:
    """One collective over every rank on a float32 message of `size` bytes (nccl-tests' S)."""
    doc, where = collective_job(ctx, op, size)
    ranks = per_rank(doc, f"{op}@{size}")
    samples = slowest(ranks)
    n, nbytes = doc["world_size"], doc["ranks"][0]["bytes"][f"{op}@{size}"]
    t = statistics.median(samples)
    metrics = {**job_metrics(doc, where), **shared(doc, ctx), "op": op, "bytes": nbytes, "samples_per_rank": ranks,
               "algbw_GBps": algbw(nbytes, t) / GB, "busbw_GBps": busbw(op, nbytes, t, n) / GB,
               "bus_factor": bus_factor(op, n)}
    return Case(None, samples=samples, timing_method=doc["timing_method"], metrics=metrics,
                items=1, items_unit="ops", note=_note("collective", metrics, n), **job_shape(doc, where))


@benchmark(backends=["cpu", "cuda"], rounds=ROUNDS, timeout=COLLECTIVE_TIMEOUT)
def startup(ctx: Context) -> Case:
    """Process-group start-up: init_process_group + a barrier after torchrun's rendezvous (cold, in the
    metrics), and creating another group over every rank + a barrier on it (the samples). Measured at
    the start of the all_reduce job, which the collective cases share."""
    doc, where = collective_job(ctx, "all_reduce")
    ranks = per_rank(doc, "new_group")
    metrics = {**job_metrics(doc, where), **shared(doc, ctx), "samples_per_rank": ranks}
    return Case(None, samples=slowest(ranks), timing_method="perf_counter", metrics=metrics,
                note=_note("startup", metrics, doc["world_size"]), **job_shape(doc, where))


def ddp_case(ctx: Context, model: str, bucket_cap_mb: float, one_rank: bool) -> Case:
    batch = DDP_BATCH[model]
    buckets = [DEFAULT_BUCKET_MB] if one_rank else [DEFAULT_BUCKET_MB, *BUCKETS.get(ctx.profile, BUCKETS["default"])]
    if bucket_cap_mb not in buckets:
        buckets.append(bucket_cap_mb)
    doc, where = run_job(ctx, "ddp", {"model": model, "batch": batch, "buckets": buckets}, DDP_TIMEOUT,
                         one_rank=one_rank)
    n = doc["world_size"]
    ddp_ranks, plain_ranks = per_rank(doc, f"ddp@{float(bucket_cap_mb):g}"), per_rank(doc, "plain")
    samples, plain = slowest(ddp_ranks), slowest(plain_ranks)
    t_ddp, t_plain = statistics.median(samples), statistics.median(plain)
    metrics: dict[str, Any] = {
        **job_metrics(doc, where, baseline=one_rank), **shared(doc, ctx), "model": model, "batch_per_rank": batch,
        "bucket_cap_mb": bucket_cap_mb, "parameters": doc["ranks"][0]["parameters"],
        "samples_per_s_total": n * batch / t_ddp, "samples_per_s_per_rank": batch / t_ddp,
        "step_s_without_ddp": t_plain, "ddp_overhead": t_ddp / t_plain - 1,
        "samples_per_rank": ddp_ranks, "samples_per_rank_without_ddp": plain_ranks,
    }
    flops = doc["ranks"][0]["flops_per_step"]
    metrics["flops_per_step_per_rank"] = flops
    metrics.update(mfu(flops / t_ddp, ctx.backend.peaks(), "float32"))
    return Case(None, samples=samples, timing_method=doc["timing_method"], metrics=metrics,
                items=n * batch, items_unit="samples", note=_note("ddp", metrics, n), **job_shape(doc, where))


def mfu(flops_per_s: float, peaks: dict[str, Any] | None, dtype: str) -> dict[str, Any]:
    """Model FLOP utilisation of one rank against its device's datasheet peak, only where the peak is
    known; a figure above 100% means the FLOP count or the peak is wrong, and is not reported."""
    peak = ((peaks or {}).get("flops") or {}).get(dtype)
    if not peak:
        return {}
    fraction = flops_per_s / peak
    if fraction > 1.0:
        return {"mfu_note": f"model FLOP/s {flops_per_s:.3g} above the {dtype} peak {peak:.3g}: not reported"}
    return {"mfu": fraction, "mfu_peak_flops": peak}


@benchmark(params={"model": ["mlp-wide", "cnn"], "ranks": ["one", "all"]}, backends=["cpu", "cuda"],
           rounds=ROUNDS,
           profiles={"quick": {"model": ["mlp-wide"]}}, timeout=DDP_TIMEOUT)
def ddp(ctx: Context, model: str, ranks: str) -> Case:
    """Training step of the training suite's wide MLP or MNIST CNN under DistributedDataParallel,
    on one rank or all; one timed call = one step of every rank (items: samples of all ranks)."""
    return ddp_case(ctx, model, DEFAULT_BUCKET_MB, one_rank=ranks == "one")


@benchmark(params={"model": ["mlp-wide", "cnn"], "bucket_cap_mb": BUCKETS["full"]}, backends=["cpu", "cuda"],
           rounds=ROUNDS,
           profiles={"quick": {"model": ["mlp-wide"], "bucket_cap_mb": BUCKETS["quick"]},
                     "default": {"bucket_cap_mb": BUCKETS["default"]}}, timeout=DDP_TIMEOUT)
def ddp_buckets(ctx: Context, model: str, bucket_cap_mb: int) -> Case:
    """The ddp case on all ranks with another bucket_cap_mb than DDP's default 25 MB."""
    return ddp_case(ctx, model, float(bucket_cap_mb), one_rank=False)


# --- cross-case metrics ---------------------------------------------------------------------------
def scaling_efficiency(total_n: float, total_1: float, n: int) -> float:
    """Throughput on n ranks / (n x throughput on one rank): 1.0 is perfect scaling."""
    return total_n / (n * total_1)


def _note(benchmark: str, m: dict[str, Any], world_size: int) -> str:
    """The table's note for a result, from its metrics (numeric ones are medians over the rounds)."""
    if benchmark == "collective":
        return f"busbw {m['busbw_GBps']:.3g} GB/s, algbw {m['algbw_GBps']:.3g} GB/s, n={world_size}"
    if benchmark == "startup":
        return (f"cold init {m['init_process_group_s'] * 1e3:.0f} ms after the last rank arrived; "
                f"launch to ready {m['launch_to_ready_s']:.1f} s")
    note = f"DDP {100 * m['ddp_overhead']:+.0f}% vs no DDP on {world_size} rank(s)"
    if "scaling_efficiency" in m:
        note += f", scaling efficiency {100 * m['scaling_efficiency']:.0f}% vs one rank"
    if "step_vs_default_bucket" in m:
        note += f", step {m['step_vs_default_bucket']:.2f}x the {DEFAULT_BUCKET_MB} MB bucket's"
    return note


def derive(results: list[Result]) -> None:
    """Rates from each result's estimate over its rounds (bandwidths, samples/s), scaling efficiency
    (ddp on all ranks vs one) and bucket sensitivity (vs the default bucket), and the notes from them.
    Called again after every case: everything it writes is recomputed, nothing appended twice."""
    ok = [r for r in results if r.ok and r.key.suite == SUITE and r.stats]
    for r in ok:
        m, t = r.metrics, r.stats.median
        if r.key.benchmark == "collective":
            op, n = r.key.params_dict["op"], int(r.world_size or 1)
            m["algbw_GBps"], m["busbw_GBps"] = algbw(m["bytes"], t) / GB, busbw(op, m["bytes"], t, n) / GB
        elif r.key.benchmark in ("ddp", "ddp_buckets"):
            m["samples_per_s_total"] = (r.world_size or 1) * m["batch_per_rank"] / t
            m["samples_per_s_per_rank"] = m["batch_per_rank"] / t
    one = {r.key.params_dict["model"]: r for r in ok if r.key.benchmark == "ddp" and r.key.params_dict["ranks"] == "one"}
    full = {r.key.params_dict["model"]: r for r in ok if r.key.benchmark == "ddp" and r.key.params_dict["ranks"] == "all"}
    for model, r in full.items():
        n = int(r.world_size or 1)
        base = one.get(model)
        if base is None or n < 2:
            continue
        eff = scaling_efficiency(r.metrics["samples_per_s_total"], base.metrics["samples_per_s_total"], n)
        r.metrics["scaling_efficiency"] = eff
        r.metrics["speedup_vs_one_rank"] = r.metrics["samples_per_s_total"] / base.metrics["samples_per_s_total"]
        if r.metrics.get("ranks_share_cpu_cores"):
            if "compute-confounded" not in r.flags:
                r.flags.append("compute-confounded")
            r.metrics["scaling_note"] = (
                f"{n} ranks divide {r.metrics['usable_cpus']} CPU cores ({r.metrics['threads_per_rank']} thread(s) "
                f"each, as the one-rank baseline had) and share this machine's memory bandwidth and caches: this "
                f"says how DDP divides one machine, not what {n} machines or GPUs would do")
    for r in ok:
        base = full.get(r.key.params_dict.get("model"))
        if r.key.benchmark == "ddp_buckets" and base is not None:
            r.metrics["step_vs_default_bucket"] = r.stats.median / base.stats.median
    for r in ok:
        r.note = _note("ddp" if r.key.benchmark.startswith("ddp") else r.key.benchmark, r.metrics, r.world_size or 1)
