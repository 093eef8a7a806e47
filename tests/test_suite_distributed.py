"""The distributed suite: nccl-tests bandwidth arithmetic, launch flags, rank placement (the nccl path
with fakes), failure naming, cross-case metrics; and, marked slow, real torchrun launches with gloo:
one that completes, one whose rank dies and one whose rank hangs, with no process left behind.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
from conftest import run_cli

from benchbench import usable_cpus
from benchbench.errors import Skip
from benchbench.model.report import CaseKey, Result
from benchbench.run import registry

ROOT = Path(__file__).resolve().parent.parent
RANK_PROGRAM = ROOT / "suites" / "_distributed_rank.py"


@pytest.fixture(scope="module")
def dist_suite():
    return registry.load_source({"path": str(ROOT / "suites" / "distributed.py")}).module


@pytest.fixture(scope="module")
def rank_program():
    import importlib.util

    spec = importlib.util.spec_from_file_location("benchbench_test_distributed_rank", RANK_PROGRAM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- bandwidth: nccl-tests doc/PERFORMANCE.md, by hand --------------------------------------------
@pytest.mark.parametrize(("op", "n", "factor"), [
    ("all_reduce", 2, 1.0), ("all_reduce", 4, 1.5), ("all_reduce", 8, 1.75),  # 2(n-1)/n
    ("all_gather", 2, 0.5), ("all_gather", 4, 0.75), ("all_gather", 8, 0.875),  # (n-1)/n
    ("reduce_scatter", 2, 0.5), ("reduce_scatter", 4, 0.75), ("reduce_scatter", 8, 0.875),
    ("all_to_all", 2, 0.5), ("all_to_all", 4, 0.75), ("all_to_all", 8, 0.875),
    ("broadcast", 2, 1.0), ("broadcast", 4, 1.0), ("broadcast", 8, 1.0),
])
def test_bus_factor_matches_nccl_tests(dist_suite, op, n, factor):
    assert dist_suite.bus_factor(op, n) == pytest.approx(factor)


def test_algbw_and_busbw_by_hand(dist_suite):
    # 256 MiB all_reduce on 8 ranks in 10 ms: algbw = S/t = 26.84 GB/s; busbw = algbw * 14/8 = 46.97 GB/s
    s, t = 268435456, 0.010
    assert dist_suite.algbw(s, t) == pytest.approx(26.8435456e9)
    assert dist_suite.busbw("all_reduce", s, t, 8) == pytest.approx(26.8435456e9 * 1.75)
    # all_gather's S is the total array: 4 ranks x 1 MB chunks = 4 MB in 2 ms -> algbw 2 GB/s, busbw 1.5 GB/s
    assert dist_suite.busbw("all_gather", 4e6, 0.002, 4) == pytest.approx(1.5e9)
    # reduce_scatter on 2 ranks: half the algorithm bandwidth
    assert dist_suite.busbw("reduce_scatter", 1e9, 1.0, 2) == pytest.approx(0.5e9)
    # broadcast: the root sends everything, busbw == algbw
    assert dist_suite.busbw("broadcast", 1e6, 1e-3, 8) == pytest.approx(1e9)
    # one rank: an all_reduce moves nothing between ranks
    assert dist_suite.busbw("all_reduce", 1e6, 1e-3, 1) == 0.0


def test_bandwidth_rejects_nonsense(dist_suite):
    with pytest.raises(ValueError, match="unknown collective"):
        dist_suite.bus_factor("all_dance", 2)
    with pytest.raises(ValueError):
        dist_suite.bus_factor("all_reduce", 0)
    with pytest.raises(ValueError):
        dist_suite.algbw(1.0, 0.0)


def test_collective_bytes_follow_the_convention(rank_program):
    import torch

    # S of all_gather / reduce_scatter / all_to_all is the total array, whole elements divisible by n
    _, nbytes = rank_program.collective_buffers(torch, "all_gather", 4096, 3, torch.device("cpu"))
    assert nbytes == (1024 // 3) * 3 * 4
    _, nbytes = rank_program.collective_buffers(torch, "all_reduce", 1 << 20, 2, torch.device("cpu"))
    assert nbytes == 1 << 20
    with pytest.raises(ValueError):
        rank_program.collective_buffers(torch, "gossip", 4096, 2, torch.device("cpu"))


def test_slowest_rank_per_iteration(dist_suite):
    assert dist_suite.slowest([[1.0, 5.0, 2.0], [3.0, 1.0, 2.5]]) == [3.0, 5.0, 2.5]
    with pytest.raises(ValueError):
        dist_suite.slowest([[1.0, 2.0], [1.0]])


def test_profiles_and_overview(dist_suite):
    collective = dist_suite.collective
    assert [k.name for k in collective.cases("cpu", overview=True)] == ["collective[op=all_reduce,size=1048576]"]
    quick = {k.params_dict["size"] for k in collective.cases("cpu", "quick")}
    assert quick == set(dist_suite.COLLECTIVE_SIZES["quick"]) and max(quick) <= 1 << 20
    full = {k.params_dict["size"] for k in collective.cases("cpu", "full")}
    assert min(full) == 4096 and max(full) == 256 << 20  # 4 KB .. 256 MB
    assert [k.params_dict for k in dist_suite.ddp_buckets.cases("cpu", "quick")] == [
        {"bucket_cap_mb": 1, "model": "mlp-wide"}]


# --- where the job runs ---------------------------------------------------------------------------
def test_launch_defaults(dist_suite):
    cfg = dist_suite.launch_config
    assert cfg({}, "cpu", 0, 2).nproc_per_node == 2
    assert cfg({}, "cpu", 0, 64).nproc_per_node == 2
    assert cfg({}, "cpu", 0, 1).nproc_per_node == 1  # capped at the usable CPUs
    assert cfg({}, "cuda", 4, 64).nproc_per_node == 4  # every visible GPU
    assert cfg({dist_suite.NPROC_ENV: "3"}, "cpu", 0, 2).nproc_per_node == 3


def test_launch_refuses_what_cannot_run(dist_suite):
    cfg = dist_suite.launch_config
    with pytest.raises(Skip, match="rdzv-endpoint"):
        cfg({dist_suite.NNODES_ENV: "2"}, "cpu", 0, 2)
    with pytest.raises(Skip, match="needs 2 GPUs, 1 visible"):
        cfg({dist_suite.NPROC_ENV: "2"}, "cuda", 1, 8)
    with pytest.raises(Skip, match="whole number"):
        cfg({dist_suite.NPROC_ENV: "two"}, "cpu", 0, 2)


def test_torchrun_flags(dist_suite):
    Launch = dist_suite.Launch
    one = Launch(2).torchrun_args("job")
    assert one[0] == "--standalone" and one[one.index("--nproc-per-node") + 1] == "2"
    assert one[one.index("--max-restarts") + 1] == "0"
    c10d = Launch(4, nnodes=2, rdzv_endpoint="head:29400").torchrun_args("job")
    assert "--standalone" not in c10d
    assert c10d[c10d.index("--rdzv-backend") + 1] == "c10d" and c10d[c10d.index("--rdzv-endpoint") + 1] == "head:29400"
    assert c10d[c10d.index("--rdzv-id") + 1] == "job" and c10d[c10d.index("--nnodes") + 1] == "2"
    static = Launch(4, nnodes=2, node_rank=1, rdzv_endpoint="head:29400").torchrun_args("job")
    assert static[static.index("--rdzv-backend") + 1] == "static" and static[static.index("--node-rank") + 1] == "1"
    assert Launch(4, nnodes=2).world_size == 8


def test_cli_hands_placement_to_the_suite(dist_suite):
    from benchbench.commands.run import distributed_env

    args = SimpleNamespace(nproc_per_node=4, nnodes=2, node_rank=1, rdzv_endpoint="head:29400")
    env = distributed_env(args)
    where = dist_suite.launch_config(env, "cpu", 0, 8)
    assert (where.nproc_per_node, where.nnodes, where.node_rank, where.rdzv_endpoint) == (4, 2, 1, "head:29400")
    assert distributed_env(SimpleNamespace(nproc_per_node=None, nnodes=None, node_rank=None, rdzv_endpoint=None)) == {}


@pytest.mark.parametrize(("flags", "message"), [
    (["--nproc-per-node", "0"], "--nproc-per-node must be at least 1"),
    (["--nnodes", "2"], "needs --rdzv-endpoint"),
    (["--nnodes", "2", "--node-rank", "2", "--rdzv-endpoint", "h:1"], "--node-rank must be between 0 and"),
])
def test_cli_rejects_bad_placement(flags, message):
    proc = run_cli("run", "--suite", "distributed", "--quick", *flags, check_rc=2)
    assert message in proc.stderr and "Traceback" not in proc.stderr


# --- the rank's placement: the nccl path with fakes -----------------------------------------------
class FakeCuda:
    def __init__(self) -> None:
        self.current = None

    def set_device(self, index: int) -> None:
        self.current = index


class FakeTorch:
    def __init__(self) -> None:
        self.cuda = FakeCuda()

    @staticmethod
    def device(kind: str, index: int | None = None):
        return SimpleNamespace(type=kind, index=index)


def test_nccl_path_places_each_rank_on_its_gpu(rank_program):
    fake = FakeTorch()
    assert rank_program.process_group_backend("cuda") == "nccl"
    device = rank_program.rank_device(fake, "cuda", 3)
    assert (device.type, device.index, fake.cuda.current) == ("cuda", 3, 3)
    timer = rank_program.rank_timer(fake, device)
    assert timer.method == "cuda-events"
    assert timer._device == 3  # events and synchronisation on the rank's own GPU, not cuda:0


def test_gloo_path_on_the_cpu(rank_program):
    fake = FakeTorch()
    assert rank_program.process_group_backend("cpu") == "gloo"
    device = rank_program.rank_device(fake, "cpu", 1)
    assert device.type == "cpu" and fake.cuda.current is None
    assert rank_program.rank_timer(fake, device).method == "perf_counter"
    assert [rank_program.threads_per_rank(c, n) for c, n in ((2, 2), (16, 4), (1, 2), (7, 2))] == [1, 4, 1, 3]


def test_iteration_budget(rank_program):
    budget = {"min_samples": 5, "max_samples": 50, "max_time_s": 1.0}
    assert rank_program.iterations(0.1, budget) == 10
    assert rank_program.iterations(1.0, budget) == 5
    assert rank_program.iterations(1e-6, budget) == 50


# --- failures -------------------------------------------------------------------------------------
def test_failures_name_the_rank_that_caused_them(dist_suite):
    failures = [
        {"rank": 0, "exitcode": 1, "signal": None, "first": True,
         "error": "RuntimeError: [gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:5678"},
        {"rank": 1, "exitcode": 17, "signal": None, "first": False, "error": ""},
    ]
    line = dist_suite.describe_failures(failures)
    assert line.startswith("rank 1 exited with status 17")
    assert "then rank 0" in line
    killed = dist_suite.describe_failures([{"rank": 2, "exitcode": -9, "signal": "SIGKILL", "error": ""}])
    assert killed == "rank 2 killed by SIGKILL"
    # torchrun's teardown (SIGTERM to the survivors) is a consequence; a raised error is the cause
    torn = dist_suite.describe_failures([
        {"rank": 0, "exitcode": 1, "signal": None, "error": "ValueError: bad batch"},
        {"rank": 1, "exitcode": -15, "signal": "SIGTERM", "error": "", "first": True}])
    assert torn == "rank 0 exited with status 1: ValueError: bad batch (then rank 1 killed by SIGTERM)"


def test_failure_summary_reads_recorded_errors(rank_program):
    recorded = SimpleNamespace(exitcode=1, local_rank=1, pid=42, error_file="/x/error.json",
                               message={"message": "ValueError: bad batch", "extraInfo": {}},
                               signal_name=lambda: "")
    bare = SimpleNamespace(exitcode=-15, local_rank=0, pid=41, error_file="<N/A>", message="Signal 15",
                           signal_name=lambda: "SIGTERM")
    out = rank_program.failure_summary({1: recorded, 0: bare}, first=1)
    assert out[0] == {"rank": 0, "local_rank": 0, "pid": 41, "exitcode": -15, "signal": "SIGTERM", "error": "",
                      "first": False}
    assert out[1]["error"] == "ValueError: bad batch" and out[1]["first"]


# --- cross-case metrics ---------------------------------------------------------------------------
def _ddp(ranks: str, step_s: float, world: int, shared: bool = True) -> Result:
    key = CaseKey.make("distributed", "ddp", {"model": "mlp-wide", "ranks": ranks}, "cpu")
    per_s = world * 128 / step_s
    return Result(key=key, status="ok", samples=[step_s] * 5,
                  world_size=world, note="",
                  metrics={"samples_per_s_total": per_s, "ranks_share_cpu_cores": shared,
                           "usable_cpus": 2, "threads_per_rank": 1, "batch_per_rank": 128, "ddp_overhead": 0.25})


def test_scaling_efficiency_is_flagged_when_ranks_share_cores(dist_suite):
    one, two = _ddp("one", 0.010, 1), _ddp("all", 0.016, 2)
    dist_suite.derive([one, two])
    # 2 x 128 / 0.016 = 16000 samples/s against 2 x 12800: 62.5%
    assert two.metrics["scaling_efficiency"] == pytest.approx(0.625)
    assert "compute-confounded" in two.flags and "divide 2 CPU cores" in two.metrics["scaling_note"]
    assert "scaling_efficiency" not in one.metrics
    dist_suite.derive([one, two])  # derive runs after every case: nothing is added twice
    assert two.flags == ["compute-confounded"]
    assert two.note == "DDP +25% vs no DDP on 2 rank(s), scaling efficiency 62% vs one rank"


def test_bandwidth_follows_the_estimate_over_rounds(dist_suite):
    key = CaseKey.make("distributed", "collective", {"op": "all_reduce", "size": 1 << 20}, "cpu")
    r = Result(key=key, status="ok", samples=[0.001, 0.002, 0.004],
               world_size=4, metrics={"bytes": 1 << 20, "busbw_GBps": 123.0, "algbw_GBps": 99.0})
    dist_suite.derive([r])
    assert r.metrics["algbw_GBps"] == pytest.approx((1 << 20) / r.stats.median / 1e9)
    assert r.metrics["busbw_GBps"] == pytest.approx(1.5 * r.metrics["algbw_GBps"])
    assert r.note.startswith("busbw ") and r.note.endswith("n=4")


def test_scaling_on_separate_devices_is_not_flagged(dist_suite):
    one, two = _ddp("one", 0.010, 1, shared=False), _ddp("all", 0.011, 2, shared=False)
    dist_suite.derive([one, two])
    assert two.metrics["scaling_efficiency"] == pytest.approx(10 / 11)
    assert "compute-confounded" not in two.flags


def test_mfu_only_against_a_known_peak(dist_suite):
    assert dist_suite.mfu(1e12, None, "float32") == {}
    assert dist_suite.mfu(1e12, {"flops": {"bfloat16": 1e15}}, "float32") == {}
    assert dist_suite.mfu(1e12, {"flops": {"float32": 4e12}}, "float32")["mfu"] == pytest.approx(0.25)
    over = dist_suite.mfu(5e12, {"flops": {"float32": 4e12}}, "float32")
    assert "mfu" not in over and "not reported" in over["mfu_note"]


def test_one_gpu_says_scaling_needs_more(dist_suite):
    rank = {"started_at": 1.0, "initialized_at": 1.5, "init_s": 0.5}
    doc = {"launched_at": 0.0, "world_size": 1, "local_world_size": 1, "backend": "nccl", "usable_cpus": 16,
           "threads_per_rank": None, "ranks": [rank]}
    one_gpu = dist_suite.job_metrics(doc, dist_suite.Launch(1))
    assert "scaling needs more GPUs" in one_gpu["scaling_note"] and not one_gpu["ranks_share_cpu_cores"]
    assert "scaling_note" not in dist_suite.job_metrics(doc, dist_suite.Launch(1), baseline=True)


def test_startup_metrics_from_rank_clocks(dist_suite):
    doc = {"launched_at": 100.0, "ranks": [
        {"spawned_at": 101.0, "started_at": 103.0, "initialized_at": 104.5, "init_s": 1.5},
        {"spawned_at": 101.2, "started_at": 104.0, "initialized_at": 104.6, "init_s": 0.6}]}
    m = dist_suite.startup_metrics(doc)
    assert m["torchrun_start_and_rendezvous_s"] == pytest.approx(1.0)  # until the first rank was spawned
    assert m["rank_start_s"] == pytest.approx(2.8)  # the slowest rank's interpreter and imports
    assert m["launch_to_init_s"] == pytest.approx(4.0)  # until the last rank reached init
    assert m["init_process_group_s"] == pytest.approx(0.6)  # from the last arrival to everyone ready
    assert m["launch_to_ready_s"] == pytest.approx(4.6)


def test_cases_of_one_job_share_its_launch(dist_suite, monkeypatch, tmp_path):
    from benchbench.measure.backends import get as get_backend

    launched = []

    def fake_launch(spec, where, folder, deadline_s, job_id, threads=None):
        launched.append(spec)
        return {"world_size": where.world_size}

    monkeypatch.setattr(dist_suite, "launch", fake_launch)
    monkeypatch.setattr(dist_suite, "_JOBS", {})
    monkeypatch.setattr(dist_suite, "usable_cpus", lambda: 4)  # two ranks; one CPU would give one rank anyway
    monkeypatch.delenv(dist_suite.NPROC_ENV, raising=False)

    def ctx(size: int, profile: str = "quick"):
        key = CaseKey.make("distributed", "collective", {"op": "all_reduce", "size": size}, "cpu")
        return SimpleNamespace(backend=get_backend("cpu"), key=key, profile=profile, scratch_dir=tmp_path)

    sizes = {"op": "all_reduce", "sizes": [4096, 65536]}
    first, _ = dist_suite.run_job(ctx(4096), "collective", sizes, 100)
    again, _ = dist_suite.run_job(ctx(65536), "collective", sizes, 100)
    assert len(launched) == 1 and again is first and first["launched_by"].endswith("size=4096] cpu")
    assert launched[0]["pg_timeout_s"] < 0.8 * 100  # a hung peer raises before the launch's deadline
    dist_suite.run_job(ctx(4096, "default"), "collective", sizes, 100)  # another budget: another job
    dist_suite.run_job(ctx(4096), "collective", sizes, 100, one_rank=True)  # another world: another job
    assert len(launched) == 3
    assert launched[2]["threads"] == launched[0]["threads"]  # the baseline gets what each rank got


# --- real launches (gloo, two ranks) --------------------------------------------------------------
def _survivors(token: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get("BENCHBENCH_TEST_TOKEN") == token:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _no_survivors(token: str, grace_s: float = 3.0) -> list[psutil.Process]:
    end = time.monotonic() + grace_s
    while True:
        left = _survivors(token)
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.2)


@pytest.mark.slow
def test_collective_and_ddp_end_to_end(tmp_path):
    out = tmp_path / "report.json"
    token = uuid.uuid4().hex
    run_cli("run", "--suite", "distributed", "--backend", "cpu", "--quick", "--rounds", "1", "--nproc-per-node", "2",
            "-o", str(out),
            "--filter", r"collective\[op=all_reduce,size=4096\]|ddp\[model=mlp-wide,ranks=all\]",
            env={"BENCHBENCH_TEST_TOKEN": token}, timeout=600, check_rc=0)
    results = {r["key"]["benchmark"]: r for r in json.loads(out.read_text())["results"]}
    coll, ddp = results["collective"], results["ddp"]
    for r in (coll, ddp):
        assert r["status"] == "ok" and r["timing_method"] == "perf_counter"
        m = r["metrics"]
        assert r["world_size"] == 2 and r["nnodes"] == 1 and m["process_group_backend"] == "gloo"
        assert m["threads_per_rank"] == max(1, usable_cpus() // 2)  # no sched_getaffinity on macOS
        assert len(m["samples_per_rank"]) == 2 and m["init_process_group_s"] > 0
        # each sample is the slowest rank's time of that iteration
        (one_round,) = r["rounds"]
        assert one_round["samples"] == [max(a, b) for a, b in zip(*m["samples_per_rank"], strict=True)]
    assert coll["metrics"]["busbw_GBps"] == pytest.approx(coll["metrics"]["algbw_GBps"])  # all_reduce, n=2
    assert ddp["metrics"]["ddp_overhead"] > -1 and ddp["work"]["items"] == 256
    assert not _no_survivors(token)


@pytest.mark.slow
@pytest.mark.parametrize("fault, says", [
    ("exit", "RankFailed: rank 1 exited with status 17"),  # the process vanishes
    ("raise", "RankFailed: rank 1 "),  # an exception in the rank: its traceback, not only its exit status
])
def test_a_dead_rank_fails_the_case_by_name_and_the_run_finishes(tmp_path, fault, says):
    out = tmp_path / "report.json"
    token = uuid.uuid4().hex
    proc = run_cli("run", "--suite", "distributed", "--backend", "cpu", "--quick", "--rounds", "1",
                   "--nproc-per-node", "2", "-o", str(out),
                   "--filter", r"collective\[op=broadcast,size=4096\]",
                   env={"BENCHBENCH_TEST_TOKEN": token, "BENCHBENCH_DISTRIBUTED_FAULT": f"{fault}:1"}, timeout=600)
    assert proc.returncode == 4, proc.stderr  # a failed case, not a crashed run
    report = json.loads(out.read_text())
    assert not report["partial"]
    (result,) = report["results"]
    assert result["status"] == "failed"
    assert result["reason"].startswith(says), result["reason"]
    assert f"rank 1 at injected-{fault} 2" in result["reason"]
    if fault == "raise":
        assert "fault injected on rank 1" in result["reason"] + (result.get("details") or ""), result
    assert not _no_survivors(token)


@pytest.mark.slow
def test_a_hung_rank_ends_at_the_deadline_with_nothing_left(dist_suite, tmp_path, monkeypatch):
    token = uuid.uuid4().hex
    monkeypatch.setenv("BENCHBENCH_TEST_TOKEN", token)
    monkeypatch.setenv("BENCHBENCH_DISTRIBUTED_FAULT", "hang:1")
    spec = {"kind": "collective", "device": "cpu", "params": {"ops": ["all_reduce"], "sizes": [4096], "repeats": 1},
            "budget": dist_suite.BUDGETS["quick"], "pg_timeout_s": 600}
    t0 = time.monotonic()
    with pytest.raises(dist_suite.LaunchTimedOut, match=r"no result within 40 s: .*rank 1 at injected-hang"):
        dist_suite.launch(spec, dist_suite.Launch(2), tmp_path / "job", deadline_s=40, job_id="t", threads=1)
    assert time.monotonic() - t0 < 60
    assert not _no_survivors(token)


@pytest.mark.slow
def test_killing_the_worker_group_leaves_no_rank(tmp_path):
    """What the runner does on a case timeout: SIGKILL to the worker's process group. torchrun starts
    each rank in a session of its own, out of that group's reach; the ranks follow their agent."""
    import signal
    import subprocess
    import sys

    token = uuid.uuid4().hex
    script = tmp_path / "worker.py"
    script.write_text(f"""
from pathlib import Path
from benchbench.run import registry
m = registry.load_source({{"path": {str(ROOT / "suites" / "distributed.py")!r}}}).module
spec = {{"kind": "collective", "device": "cpu", "params": {{"ops": ["all_reduce"], "sizes": [4096], "repeats": 1}},
         "budget": m.BUDGETS["quick"], "pg_timeout_s": 600}}
m.launch(spec, m.Launch(2), Path({str(tmp_path / "job")!r}), deadline_s=600, job_id="k", threads=1)
""")
    env = {**os.environ, "BENCHBENCH_TEST_TOKEN": token, "BENCHBENCH_DISTRIBUTED_FAULT": "hang:1",
           "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen([sys.executable, str(script)], env=env, start_new_session=True)
    try:
        hung = tmp_path / "job" / "rank-1.progress"
        end = time.monotonic() + 240
        while not (hung.is_file() and "injected-hang" in hung.read_text()):
            assert worker.poll() is None and time.monotonic() < end, "the job never reached the injected hang"
            time.sleep(0.5)
        assert len(_survivors(token)) >= 4  # worker, torchrun, two ranks
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    assert not _no_survivors(token, grace_s=5.0)
