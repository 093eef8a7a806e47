"""The worker's address-space cap: CPU cases only, only where /proc exists, and said when skipped."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT
from fakes import TINY_BUDGET

from benchbench import worker
from benchbench.model.report import CaseKey

GiB = 2**30


class FakeRlimit:
    """resource.getrlimit/setrlimit for RLIMIT_AS, so the tests never cap their own process."""

    def __init__(self, soft=-1, hard=-1):
        self.limits = (soft, hard)
        self.calls = []

    def getrlimit(self, which):
        return self.limits

    def setrlimit(self, which, limits):
        self.calls.append(limits)
        self.limits = limits


@pytest.fixture
def rlimit(monkeypatch):
    import resource

    fake = FakeRlimit()
    monkeypatch.setattr(resource, "getrlimit", fake.getrlimit)
    monkeypatch.setattr(resource, "setrlimit", fake.setrlimit)
    return fake


@pytest.fixture
def proc_status(tmp_path, monkeypatch):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmSize:\t  1000 kB\nVmRSS:\t 500 kB\n")
    monkeypatch.setattr(worker, "PROC_STATUS", str(status))
    return status


def test_a_cpu_case_is_capped_above_the_size_after_start_up(rlimit, proc_status):
    cap = worker._MemoryCap(f"+{GiB}")
    assert cap.before_case("cpu") == f"address space capped at {1000 * 1024 + GiB} bytes"
    assert rlimit.limits == (1000 * 1024 + GiB, -1)  # the soft limit only: it can be lifted again


def test_a_gpu_case_is_never_capped_and_says_so(rlimit, proc_status):
    cap = worker._MemoryCap(str(64 * GiB))
    note = cap.before_case("cuda")
    assert "not applied" in note and "cuda" in note
    assert rlimit.calls == []


def test_the_cap_is_lifted_before_the_first_gpu_case_of_a_shared_worker(rlimit, proc_status):
    cap = worker._MemoryCap(str(64 * GiB))
    cap.before_case("cpu")
    assert rlimit.limits == (64 * GiB, -1)
    assert "not applied" in cap.before_case("mps")
    assert rlimit.limits == (-1, -1)
    assert "not applied" in cap.before_case("cpu")  # not again: the GPU may hold address space now
    assert rlimit.limits == (-1, -1)


def test_no_cap_without_proc_and_it_says_so(rlimit, tmp_path, monkeypatch):
    monkeypatch.setattr(worker, "PROC_STATUS", str(tmp_path / "no-proc" / "status"))  # macOS
    cap = worker._MemoryCap(f"+{GiB}")
    assert "no /proc" in cap.before_case("cpu")
    assert rlimit.calls == []


def test_no_setting_no_cap_no_note(rlimit, proc_status):
    assert worker._MemoryCap(None).before_case("cpu") is None
    assert worker._MemoryCap("").before_case("cuda") is None
    assert rlimit.calls == []


PROBE = '''
import resource
from benchbench import Case, benchmark

AT_IMPORT = resource.getrlimit(resource.RLIMIT_AS)[0]

@benchmark
def probe(ctx):
    return Case(lambda: None, metrics={"at_import": AT_IMPORT, "now": resource.getrlimit(resource.RLIMIT_AS)[0]})
'''


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="the cap needs /proc (Linux)")
def test_a_worker_that_runs_a_gpu_case_first_is_never_capped(tmp_path):
    """The worker starts before it knows its cases: capping at start-up broke the first CUDA case."""
    suite = tmp_path / "probe_suite.py"
    suite.write_text(textwrap.dedent(PROBE))
    env = {**os.environ, "PYTHONPATH": str(ROOT), worker.MEMORY_LIMIT_ENV: f"+{2 * GiB}"}
    requests = [{"source": {"path": str(suite)}, "benchmark": "probe", "budget": TINY_BUDGET.to_dict(),
                 "key": CaseKey.make("probe_suite", "probe", backend=b).to_dict()} for b in ("cuda", "cpu")]
    stdin = "".join(json.dumps(r) + "\n" for r in requests) + json.dumps({"op": "exit"}) + "\n"
    proc = subprocess.run([sys.executable, "-m", "benchbench.worker"], input=stdin, env=env, capture_output=True,
                          text=True, timeout=120)
    results = [json.loads(line)["result"] for line in proc.stdout.splitlines() if '"event": "result"' in line]
    assert len(results) == 2, proc.stdout + proc.stderr
    assert "not applied" in results[0]["metrics"]["memory_cap"]
    assert results[1]["status"] == "ok", results[1]
    import resource

    unlimited = resource.getrlimit(resource.RLIMIT_AS)[0]  # what this process (the worker's parent) has
    assert results[1]["metrics"]["at_import"] == results[1]["metrics"]["now"] == unlimited
    assert "not applied" in proc.stderr
