"""The programs of a distributed launch (see suites/distributed.py), run by path so that they work from
a source tree and from an installed package alike:

- `_distributed_rank.py --torchrun FAILURES_JSON TORCHRUN_ARGS...`: torchrun itself
  (`torch.distributed.run.main`), which also writes the failed ranks it reports as JSON;
- `_distributed_rank.py SPEC_JSON`: one rank, started by torchrun N times.

Each rank:

- sets its device (cuda:LOCAL_RANK with nccl, else the CPU with gloo) and, on the CPU, its torch
  threads to usable CPUs / local world size, so the ranks of one machine do not fight over cores;
- times process-group init, then its own work: every timed iteration starts on a barrier and is timed
  by benchbench's timer for the device (CUDA events on a GPU, perf_counter on the CPU);
- after the work, every rank's samples are gathered to all ranks and local rank 0 of each node writes
  them to `out` (one JSON file), so every node's report holds the whole job.

Progress (phase and iteration) goes to `rank-R.progress` beside `out`, so a launcher that gives up on
a hung job can say which rank stopped where. `BENCHBENCH_DISTRIBUTED_FAULT=exit:R|raise:R|hang:R` makes
rank R die, raise or hang at its third timed iteration (for the suite's fault tests).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchbench.api import usable_cpus

FAULT_ENV = "BENCHBENCH_DISTRIBUTED_FAULT"
FAULT_AT = 2  # the timed iteration at which an injected fault fires


# --- placement: pure functions, unit-tested with fakes ------------------------------------------------
def process_group_backend(device_type: str) -> str:
    """nccl for CUDA devices (ROCm's RCCL answers to the same name), gloo for the CPU."""
    return "nccl" if device_type == "cuda" else "gloo"


def threads_per_rank(cpus: int, local_world_size: int) -> int:
    """The CPU threads each rank may use so that the ranks of one machine share its cores evenly."""
    return max(1, cpus // max(1, local_world_size))


def rank_device(torch_mod: Any, device_type: str, local_rank: int) -> Any:
    """This rank's device: one GPU per local rank on CUDA, the CPU otherwise."""
    if device_type == "cuda":
        torch_mod.cuda.set_device(local_rank)
        return torch_mod.device("cuda", local_rank)
    return torch_mod.device("cpu")


def rank_timer(torch_mod: Any, device: Any) -> Any:
    """benchbench's timer for this rank's device: CUDA events on a GPU, perf_counter on the CPU."""
    from benchbench.measure.backends import CudaEventTimer, Timer

    if device.type == "cuda":
        return CudaEventTimer(torch_mod, device.index)
    return Timer()


def iterations(per_iter_s: float, budget: dict[str, Any]) -> int:
    """Timed iterations for a budget: enough to fill max_time_s, within [min_samples, max_samples]."""
    lo, hi = int(budget["min_samples"]), int(budget["max_samples"])
    if per_iter_s <= 0:
        return hi
    return max(lo, min(hi, int(budget["max_time_s"] / per_iter_s)))


def _accepts_device_id() -> bool:
    """init_process_group binds a device eagerly (torch >= 2.3), so nccl connects at init, not later."""
    import inspect

    import torch.distributed as dist

    return "device_id" in inspect.signature(dist.init_process_group).parameters


# --- collectives ----------------------------------------------------------------------------------
def collective_buffers(torch_mod: Any, op: str, size: int, world: int, device: Any) -> tuple[Callable, int]:
    """(a call of the collective, bytes S of the nccl-tests convention) for a message of `size` bytes.

    S is the buffer of all_reduce and broadcast, and the *total* array of all_gather, reduce_scatter
    and all_to_all (per-rank chunk x n), rounded down to whole float32 elements divisible by n.
    """
    import torch.distributed as dist

    count = max(world, (size // 4) // world * world)
    full = torch_mod.ones(count, dtype=torch_mod.float32, device=device)
    chunk = count // world
    if op == "all_reduce":
        return (lambda: dist.all_reduce(full)), count * 4
    if op == "broadcast":
        return (lambda: dist.broadcast(full, src=0)), count * 4
    if op == "all_gather":
        mine = torch_mod.ones(chunk, dtype=torch_mod.float32, device=device)
        gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
        return (lambda: gather(full, mine)), count * 4
    if op == "reduce_scatter":
        mine = torch_mod.empty(chunk, dtype=torch_mod.float32, device=device)
        scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
        return (lambda: scatter(mine, full)), count * 4
    if op == "all_to_all":
        out = torch_mod.empty_like(full)
        return (lambda: dist.all_to_all_single(out, full)), count * 4
    raise ValueError(f"unknown collective {op!r}")


# --- DDP models: the training suite's MLP and MNIST CNN, mirrored (suites are loaded by path) ----------
MLP_WIDTH = {"small": 64, "wide": 1024}


def build_model(torch_mod: Any, name: str, batch: int) -> tuple[Any, tuple[Any, Any], float]:
    """(network, (inputs, targets), FLOPs of one training step on this batch: 3 x forward matmuls)."""
    nn = torch_mod.nn
    g = torch_mod.Generator().manual_seed(0)
    if name.startswith("mlp"):
        w = MLP_WIDTH[name.split("-", 1)[1]]
        net = nn.Sequential(nn.Linear(50, w), nn.ReLU(), nn.Linear(w, w), nn.ReLU(), nn.Linear(w, 3))
        x, y = torch_mod.randn(batch, 50, generator=g), torch_mod.randint(0, 3, (batch,), generator=g)
        macs = 50 * w + w * w + w * 3
    elif name == "cnn":  # the two-conv MNIST net of pytorch/examples, without its dropout layers
        net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Linear(128, 10))
        x, y = torch_mod.randn(batch, 1, 28, 28, generator=g), torch_mod.randint(0, 10, (batch,), generator=g)
        macs = 26 * 26 * 32 * 9 + 24 * 24 * 64 * 32 * 9 + 9216 * 128 + 128 * 10
    else:
        raise ValueError(f"unknown model {name!r}")
    return net, (x, y), 3 * 2 * macs * batch  # forward 2*MACs; backward twice the forward


# --- the rank -------------------------------------------------------------------------------------
class Rank:
    def __init__(self, spec: dict[str, Any]) -> None:
        import torch

        self.torch = torch
        self.spec = spec
        self.rank = int(os.environ["RANK"])
        self.world = int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ["LOCAL_RANK"])
        self.local_world = int(os.environ["LOCAL_WORLD_SIZE"])
        self.out = Path(spec["out"])
        self.fault = self._fault()
        self.threads = None
        if spec["device"] != "cuda":
            # the launcher may fix the count (a one-rank baseline gets what each of N ranks gets)
            self.threads = int(spec.get("threads") or threads_per_rank(usable_cpus(), self.local_world))
            torch.set_num_threads(self.threads)
        self.device = rank_device(torch, spec["device"], self.local_rank)
        self.timer = rank_timer(torch, self.device)
        self.backend = process_group_backend(spec["device"])

    def _fault(self) -> str | None:
        raw = os.environ.get(FAULT_ENV, "")
        kind, _, who = raw.partition(":")
        return kind if raw and who.strip() == str(self.rank) else None

    def progress(self, phase: str, step: int = 0) -> None:
        try:
            (self.out.parent / f"rank-{self.rank}.progress").write_text(f"{phase} {step}\n")
        except OSError:
            pass

    def init(self) -> float:
        """Create the process group; seconds this rank spent in init_process_group plus a barrier."""
        import torch.distributed as dist

        timeout = timedelta(seconds=float(self.spec["pg_timeout_s"]))
        t0 = time.perf_counter()
        extra = {"device_id": self.device} if self.backend == "nccl" and _accepts_device_id() else {}
        dist.init_process_group(self.backend, timeout=timeout, **extra)
        self.barrier()
        return time.perf_counter() - t0

    def barrier(self) -> None:
        import torch.distributed as dist

        if self.backend == "nccl":
            dist.barrier(device_ids=[self.local_rank])
        else:
            dist.barrier()

    def inject(self, i: int) -> None:
        if self.fault is None or i != FAULT_AT:
            return
        self.progress(f"injected-{self.fault}", i)
        if self.fault == "exit":
            os._exit(17)
        if self.fault == "hang":
            while True:
                time.sleep(60)
        raise RuntimeError(f"fault injected on rank {self.rank}")

    def timed(self, phase: str, fn: Callable[[], Any]) -> list[float]:
        """Warm up, agree on rank 0's counts, then time barrier-aligned iterations.

        Every count is rank 0's, broadcast: ranks that decided for themselves would run different
        numbers of collectives and wait for each other forever.
        """
        import torch.distributed as dist

        budget = self.spec["budget"]
        self.progress(f"{phase}:warmup")
        warm = []
        for _ in range(max(1, int(budget["warmup_calls"]))):
            self.barrier()
            warm.append(self.timer.block(fn, 1))
        per_iter = sorted(warm)[len(warm) // 2]
        spent = sum(warm)
        extra = 0
        if spent < float(budget["warmup_min_s"]) and per_iter > 0:
            room = min(float(budget["warmup_min_s"]), float(budget["warmup_max_s"])) - spent
            extra = min(1000, max(0, int(room / per_iter)))
        counts = self.torch.tensor([extra, iterations(per_iter, budget)], dtype=self.torch.int64,
                                   device=self.device)
        dist.broadcast(counts, src=0)
        extra, n = (int(v) for v in counts.tolist())
        for _ in range(extra):
            self.barrier()
            self.timer.block(fn, 1)
        samples = []
        for i in range(n):
            self.inject(i)
            self.progress(phase, i)
            self.barrier()
            samples.append(self.timer.block(fn, 1))
        return samples

    # --- kinds of work -------------------------------------------------------------------------
    def run_collective(self) -> dict[str, Any]:
        """Start-up groups, then each collective at every size, smallest first (as nccl-tests sweeps)."""
        p = self.spec["params"]
        out = self.run_startup()
        for op in p["ops"]:
            for size in sorted(int(s) for s in p["sizes"]):
                fn, out["bytes"][f"{op}@{size}"] = collective_buffers(self.torch, op, size, self.world, self.device)
                out["phases"][f"{op}@{size}"] = self.timed(f"{op}@{size}", fn)
                del fn  # free this size's buffers before the next
        return out

    def run_startup(self) -> dict[str, Any]:
        """Process groups made after the first: new_group over every rank plus a barrier on it.

        A new group, not a second init_process_group: after destroy_process_group a re-init reuses the
        store keys of the first and may read a peer's stale address (gloo: connection refused).
        """
        import torch.distributed as dist

        made = []
        for i in range(int(self.spec["params"]["repeats"])):
            self.inject(i)
            self.progress("new_group", i)
            self.barrier()
            t0 = time.perf_counter()
            group = dist.new_group(list(range(self.world)))
            if self.backend == "nccl":
                dist.barrier(group=group, device_ids=[self.local_rank])
            else:
                dist.barrier(group=group)
            made.append(time.perf_counter() - t0)
            dist.destroy_process_group(group)
        return {"bytes": {}, "phases": {"new_group": made}}

    def run_ddp(self) -> dict[str, Any]:
        import copy

        from torch.nn.parallel import DistributedDataParallel as DDP

        torch, p = self.torch, self.spec["params"]
        torch.manual_seed(0)
        net, (x, y), flops = build_model(torch, p["model"], int(p["batch"]))
        net = net.to(self.device).train()
        x, y = x.to(self.device), y.to(self.device)
        loss_fn = torch.nn.functional.cross_entropy

        def step_of(model: Any) -> Callable[[], Any]:
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

            def step() -> Any:
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
                return loss

            return step

        phases = {"plain": self.timed("plain", step_of(copy.deepcopy(net)))}
        for bucket in p["buckets"]:  # the same initial weights under DDP, once per bucket size
            ddp_model = DDP(copy.deepcopy(net), device_ids=[self.local_rank] if self.device.type == "cuda" else None,
                            bucket_cap_mb=float(bucket))
            phases[f"ddp@{bucket:g}"] = self.timed(f"ddp@{bucket:g}", step_of(ddp_model))
            del ddp_model
        return {"flops_per_step": flops, "parameters": sum(t.numel() for t in net.parameters()), "phases": phases}

    def main(self) -> None:
        import torch.distributed as dist

        started = time.time()
        self.progress("init")
        init_s = self.init()
        kind = self.spec["kind"]
        work = {"collective": self.run_collective, "ddp": self.run_ddp}[kind]()
        self.progress("gather")
        mine = {"rank": self.rank, "local_rank": self.local_rank, "host": socket.gethostname(), "pid": os.getpid(),
                "spawned_at": _created_at(), "started_at": started, "init_s": init_s, "initialized_at": started + init_s, **work}
        everyone: list[Any] = [None] * self.world
        dist.all_gather_object(everyone, mine)
        if self.local_rank == 0:
            doc = {"world_size": self.world, "local_world_size": self.local_world,
                   "backend": self.backend, "device": str(self.device), "threads_per_rank": self.threads,
                   "usable_cpus": usable_cpus(), "timing_method": self.timer.method,
                   "torch": self.torch.__version__, "ranks": sorted(everyone, key=lambda r: r["rank"])}
            tmp = self.out.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, self.out)
        self.progress("done")
        dist.destroy_process_group()


def _created_at() -> float | None:
    """When torchrun's agent started this process (wall clock): the end of its own start and rendezvous."""
    try:
        import psutil

        return psutil.Process().create_time()
    except Exception:  # noqa: BLE001 - a figure we can do without
        return None


def _watch_parent() -> None:
    """Exit when torchrun's agent is gone. The agent starts each rank in a session of its own, so a
    SIGKILL to the agent's process group (a case timeout) would otherwise leave the ranks running."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.2)
            if os.getppid() != parent:
                os._exit(70)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _one_line(message: Any) -> str:
    if isinstance(message, dict):  # what @record writes: {"message": "...", "extraInfo": {...}}
        message = message.get("message", "")
    lines = [ln.strip() for ln in str(message).strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    # a Python traceback ends with the exception; anything else starts with what matters
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def failure_summary(failures: dict[int, Any], first: int | None = None) -> list[dict[str, Any]]:
    """torchrun's ProcessFailure objects as plain data: rank, exit status or signal, one-line error."""
    out = []
    for rank, f in sorted(failures.items()):
        exitcode = int(f.exitcode)
        has_file = bool(f.error_file) and f.error_file != "<N/A>"
        out.append({"rank": int(rank), "local_rank": int(f.local_rank), "pid": int(f.pid), "exitcode": exitcode,
                    "signal": f.signal_name() if exitcode < 0 else None,
                    "error": _one_line(f.message) if has_file else "", "first": rank == first})
    return out


def torchrun_main(argv: list[str]) -> int:
    """torchrun (torch.distributed.run.main) that also writes its workers' failures as JSON.

    argv: FAILURES_JSON followed by torchrun's own arguments.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    failures_path, args = Path(argv[0]), argv[1:]
    try:
        torchrun(args)
    except ChildFailedError as exc:
        first, _ = exc.get_first_failure()
        failures_path.write_text(json.dumps(failure_summary(exc.failures, first)))
        return 1
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--torchrun"]:
        return torchrun_main(argv[1:])
    from torch.distributed.elastic.multiprocessing.errors import record

    _watch_parent()
    # record: an exception in a rank reaches torchrun's agent (and the report) with its message
    record(lambda: Rank(json.loads(argv[0])).main())()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
