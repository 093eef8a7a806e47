"""End to end: a crashing, raising, hanging or memory-hungry case fails alone; the run goes on."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import ROOT, run_cli

from benchbench.model.report import load

FAULTY = '''
import os, time
import torch
from benchbench import Case, Skip, benchmark

SUITE = "faulty"

@benchmark(params={"n": [64]})
def first_ok(ctx, n):
    x = torch.ones(n)
    return Case(lambda: x + 1, items=n)

@benchmark
def raises(ctx):
    raise RuntimeError("the benchmark broke\\nsecond line")

@benchmark
def aborts(ctx):
    os.abort()

@benchmark(timeout=4)
def hangs(ctx):
    import subprocess
    child = subprocess.Popen(["sleep", "600"])  # like a DataLoader worker or a torchrun launch
    with open(os.environ["CHILD_PID_FILE"], "w") as fh:
        fh.write(str(child.pid))
    time.sleep(600)

@benchmark
def eats_memory(ctx):
    big = torch.empty(8 * 2**30, dtype=torch.uint8)
    return Case(lambda: big.sum())

@benchmark
def skips(ctx):
    raise Skip("not on this machine")

@benchmark(params={"n": [128]})
def last_ok(ctx, n):
    x = torch.ones(n)
    return Case(lambda: x * 2, items=n)
'''


@pytest.mark.slow
def test_faults_fail_their_case_and_the_run_goes_on(write_suite, tmp_path):
    suite = write_suite(FAULTY)
    out = tmp_path / "r.json"
    proc = run_cli("run", "--suite-path", str(suite), "--profile", "quick", "--backend", "cpu", "-o", str(out),
                   env={"BENCHBENCH_WORKER_MEMORY_LIMIT": f"+{2 * 2**30}",
                        "CHILD_PID_FILE": str(tmp_path / "child.pid")})
    assert proc.returncode == 4, proc.stderr  # finished, with failed cases
    assert "Traceback" not in proc.stderr
    report = load(out)
    assert not report.partial
    by_name = {r.key.benchmark: r for r in report.results}
    assert by_name["first_ok"].status == "ok" and by_name["first_ok"].samples
    assert by_name["last_ok"].status == "ok" and by_name["last_ok"].samples
    assert by_name["raises"].status == "failed"
    assert by_name["raises"].reason == "RuntimeError: the benchmark broke"
    assert "Traceback" in by_name["raises"].details
    assert by_name["aborts"].status == "failed"
    assert "SIGABRT" in by_name["aborts"].reason
    assert by_name["hangs"].status == "timeout"
    assert "4 s" in by_name["hangs"].reason
    assert not _alive(int((tmp_path / "child.pid").read_text())), "the hung case's child process survived"
    if os.path.exists("/proc/self/status"):  # the worker's memory cap needs /proc
        assert by_name["eats_memory"].status == "failed"
        assert by_name["eats_memory"].reason.startswith("out of memory")
    else:
        assert "no /proc" in by_name["first_ok"].metrics["memory_cap"]
    assert by_name["skips"].status == "skipped" and by_name["skips"].reason == "not on this machine"


def _alive(pid: int) -> bool:
    """Through psutil, so it can fail on macOS too (which has no /proc)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # a zombie is dead, only not yet reaped
    except psutil.NoSuchProcess:
        return False


def test_alive_tells_a_running_process_from_a_finished_or_zombie_one():
    assert _alive(os.getpid())
    reaped = subprocess.Popen([sys.executable, "-c", "pass"])
    reaped.wait()
    assert not _alive(reaped.pid)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while _alive(zombie.pid) and time.monotonic() < deadline:  # exits, and stays a zombie until waited for
        time.sleep(0.05)
    assert not _alive(zombie.pid)
    zombie.wait()


SLOW = '''
import time
import torch
from benchbench import Case, benchmark

@benchmark(params={"i": list(range(50))})
def slow(ctx, i):
    x = torch.ones(8)
    def step():
        time.sleep(0.02)
        return x + 1
    return Case(step)
'''


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_leaves_a_valid_partial_report(write_suite, tmp_path, sig):
    suite = write_suite(SLOW)
    out = tmp_path / "partial.json"
    env = {"PYTHONPATH": str(ROOT)}
    # The child starts with SIGINT ignored, as a shell's background job does (and as this test process
    # may have inherited): benchbench must catch Ctrl-C whatever disposition it inherits.
    proc = subprocess.Popen([sys.executable, "-m", "benchbench", "run", "--suite-path", str(suite), "--profile",
                             "quick", "--backend", "cpu", "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**__import__("os").environ, **env},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if out.exists():
            try:
                if len(json.loads(out.read_text())["results"]) >= 2:
                    break
            except (json.JSONDecodeError, KeyError):
                pass
        time.sleep(0.2)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "partial report written" in stderr
    assert "Traceback" not in stderr
    report = load(out)
    assert report.partial
    assert 2 <= len(report.results) < 50
    assert all(r.status == "ok" and r.samples for r in report.results)


HANGS_ISOLATED = '''
import json, os, subprocess, sys, time
from benchbench import Case, benchmark

@benchmark(isolate=True)
def hangs(ctx):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    with open(os.environ["HANG_MARKER"] + ".tmp", "w") as fh:
        json.dump({"worker": os.getpid(), "child": child.pid, "scratch": str(ctx.scratch_dir)}, fh)
    os.replace(os.environ["HANG_MARKER"] + ".tmp", os.environ["HANG_MARKER"])
    time.sleep(300)
    return Case(lambda: None)
'''


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_an_interrupted_isolated_case_leaves_no_process_and_no_scratch_folder(write_suite, tmp_path, sig):
    suite = write_suite(HANGS_ISOLATED)
    marker, scratch_tmp = tmp_path / "marker.json", tmp_path / "tmp"
    scratch_tmp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HANG_MARKER": str(marker), "TMPDIR": str(scratch_tmp)}
    proc = subprocess.Popen([sys.executable, "-m", "benchbench", "run", "--suite-path", str(suite), "--profile",
                             "quick", "--backend", "cpu", "-o", str(tmp_path / "r.json")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    pids = json.loads(marker.read_text())
    assert Path(pids["scratch"]).is_dir() and _alive(pids["worker"]) and _alive(pids["child"])
    sent = time.monotonic()
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    try:
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr
        # about 2 s on an idle machine; the old runner waited 10 s for the busy worker (SIGINT) or left it
        # running (SIGTERM, SIGHUP)
        assert took < 6, took
        deadline = time.monotonic() + 5
        while (_alive(pids["worker"]) or _alive(pids["child"])) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pids["worker"]) and not _alive(pids["child"])
        assert not Path(pids["scratch"]).exists()
        assert not list(scratch_tmp.glob("benchbench-*"))
    finally:
        for pid in (pids["worker"], pids["child"]):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_worker_that_never_starts_is_killed_with_its_pipes_closed(tmp_path):
    from benchbench.run.runner import Worker, WorkerTimeout

    before = set(psutil.Process().children(recursive=True))
    start = time.monotonic()
    with pytest.raises(WorkerTimeout, match="did not start within 1 s"):
        # `sh -c 'sleep 60' ...` stands for a worker that hangs before it says it is ready
        Worker(tmp_path, command_prefix=["sh", "-c", "sleep 60", "never-ready"], start_timeout=1)
    assert time.monotonic() - start < 30
    left = [p for p in set(psutil.Process().children(recursive=True)) - before if _alive(p.pid)]
    assert not left
    assert not list(tmp_path.glob("scratch-*")) and not list(tmp_path.glob("worker-*.log"))
