"""Backend discovery and device-correct timing, with fake torch modules for CUDA and MPS."""

import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT
from fakes import TINY_BUDGET, FakeEvent, fake_torch, gpu_props, gpu_shaped_backend

from benchbench import Case, benchmark
from benchbench.measure import backends as bk
from benchbench.measure import peaks
from benchbench.model.report import CaseKey
from benchbench.run.execute import run_case


def test_cpu_backend_is_always_available():
    cpu = bk.get("cpu")
    assert cpu.available and cpu.reason is None
    assert cpu.timer().method == "perf_counter"
    cpu.reset_peak_memory()
    peak, kind = cpu.peak_memory()
    assert peak and peak > 0 and kind in ("rss-peak", "rss")
    assert cpu.dtype_reason("tf32")
    assert cpu.info()["timer_resolution_s"] > 0


class _Mkldnn:
    def __init__(self, bf16, fp16=None):
        self._is_mkldnn_bf16_supported = lambda: bf16
        if fp16 is not None:
            self._is_mkldnn_fp16_supported = lambda: fp16


def test_the_cpu_says_which_half_precision_it_emulates(monkeypatch):
    """The one home of the CPU half-precision check: oneDNN's answer, and emulated where torch cannot tell."""
    cpu = bk.get("cpu")
    monkeypatch.setattr(torch.ops, "mkldnn", _Mkldnn(bf16=False, fp16=True))
    assert (cpu.emulates("bfloat16"), cpu.emulates("float16"), cpu.emulates("float32")) == (True, False, False)
    monkeypatch.setattr(torch.ops, "mkldnn", _Mkldnn(bf16=True))  # an older torch without the fp16 query
    assert (cpu.emulates("bfloat16"), cpu.emulates("float16")) == (False, True)
    assert not bk.Backend("mps", True).emulates("bfloat16")  # other backends run what they run natively


def test_unknown_backend_is_a_user_error():
    from benchbench.errors import UserError

    with pytest.raises(UserError, match="unknown backend 'tpu'"):
        bk.discover(["tpu"])


def test_cuda_reasons_when_unusable(monkeypatch, tmp_path):
    torch_mod, _ = fake_torch(cuda_version=None)
    assert "built without CUDA" in bk._probe_cuda(torch_mod).reason
    torch_mod, _ = fake_torch(available=False)
    monkeypatch.setattr(bk.sys, "platform", "linux")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(bk, "Path", lambda p: tmp_path / "no-such-driver")
    b = bk._probe_cuda(torch_mod)
    assert not b.available and "no NVIDIA driver found" in b.reason and "CUDA 12.4" in b.reason
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert "hides every GPU" in bk._probe_cuda(torch_mod).reason
    torch_mod, _ = fake_torch(cuda_version=None, hip="6.1", available=False)
    b = bk._probe_cuda(torch_mod)
    assert "ROCm" in b.reason


def test_cuda_backend_times_with_events_and_syncs_through_itself():
    torch_mod, syncs = fake_torch()
    b = bk._probe_cuda(torch_mod)
    assert b.available and b.device == "cuda:0" and b.device_name == "NVIDIA H100 80GB HBM3"
    assert b.properties["compute_capability"] == "9.0"
    timer = b.timer()
    assert timer.method == "cuda-events"
    FakeEvent.log = []
    calls = []
    seconds = timer.block(lambda: calls.append(1), 3)
    assert seconds == pytest.approx(2.5e-3)
    assert calls == [1, 1, 1]
    assert syncs == [("cuda", 0)]  # drained before the block
    assert FakeEvent.log == ["record", "record", "event-sync"]  # start, end, wait for end
    torch_mod.cuda.allocator.alloc(1234)
    assert b.peak_memory() == (1234, "cuda-max-allocated")
    assert b.peaks()["flops"]["bfloat16"] == pytest.approx(989.4e12)


def test_rocm_shows_up_as_cuda():
    torch_mod, _ = fake_torch(cuda_version=None, hip="6.1")
    b = bk._probe_cuda(torch_mod)
    assert b.name == "cuda" and b.available
    assert b.properties["platform"] == "rocm" and b.properties["runtime_version"] == "6.1"


def test_mps_reasons(monkeypatch):
    torch_mod, _ = fake_torch(mps_built=False)
    monkeypatch.setattr(bk.sys, "platform", "linux")
    assert bk._probe_mps(torch_mod).reason == "MPS needs macOS on Apple silicon"
    monkeypatch.setattr(bk.sys, "platform", "darwin")
    monkeypatch.setattr(bk.platform, "machine", lambda: "x86_64")
    assert "Rosetta" in bk._probe_mps(torch_mod).reason
    torch_mod, _ = fake_torch(mps_built=True, mps_available=False, version="2.4.1")
    monkeypatch.setattr(bk.platform, "mac_ver", lambda: ("12.1", ("", "", ""), "arm64"))
    assert "12.1 < 12.3" in bk._probe_mps(torch_mod).reason


@pytest.mark.parametrize(("torch_version", "macos", "needed"), [("2.14.1", "13.6.1", "14.0"), ("2.9.0", "13.0", "14.0"),
                                                                ("2.6.0", "12.7.6", "13.0"), ("2.4.1", "12.1", "12.3")])
def test_mps_on_a_macos_too_old_for_this_torch_says_so(monkeypatch, torch_version, macos, needed):
    """torch >= 2.9 runs MPS on macOS 14+ only: macOS 13 is "too old", not "no Metal device"."""
    monkeypatch.setattr(bk.sys, "platform", "darwin")
    monkeypatch.setattr(bk.platform, "machine", lambda: "arm64")
    monkeypatch.setattr(bk.platform, "mac_ver", lambda: (macos, ("", "", ""), "arm64"))
    torch_mod, _ = fake_torch(mps_built=True, mps_available=False, version=torch_version)
    reason = bk._probe_mps(torch_mod).reason
    assert f"macOS {macos} < {needed}" in reason and torch_version in reason
    assert "no Metal device" not in reason


def test_mps_backend_synchronises_around_every_timed_block(monkeypatch):
    torch_mod, syncs = fake_torch(mps_built=True, mps_available=True)
    monkeypatch.setattr(bk, "_cpu_model", lambda: "Apple M2 Max")
    monkeypatch.setattr(bk.platform, "mac_ver", lambda: ("14.5", ("", "", ""), "arm64"))
    b = bk._probe_mps(torch_mod)
    assert b.available and b.name == "mps" and b.device_name == "Apple M2 Max"
    timer = b.timer()
    assert timer.method == "sync+perf_counter"
    order = []
    monkeypatch.setattr(torch_mod.mps, "synchronize", lambda: order.append("sync"))
    timer.block(lambda: order.append("call"), 2)
    assert order == ["sync", "call", "call", "sync"]
    b.reset_peak_memory()
    assert b.peak_memory() == (0, "mps-current-allocated")
    assert b.dtype_reason("float64")
    assert b.peaks()["bandwidth"] == pytest.approx(400e9)


def test_datasheet_peaks_lookup():
    assert peaks.lookup("NVIDIA H100 PCIe")["bandwidth"] == pytest.approx(2.0e12)
    assert peaks.lookup("NVIDIA H100 80GB HBM3")["bandwidth"] == pytest.approx(3.35e12)
    assert peaks.lookup("NVIDIA H200")["bandwidth"] == pytest.approx(4.8e12)
    assert peaks.lookup("NVIDIA A100-SXM4-80GB")["flops"]["tf32"] == pytest.approx(156e12)
    assert peaks.lookup("Apple M1")["flops"]["float32"] == pytest.approx(2.6e12)
    assert peaks.lookup("Apple M1 Max")["flops"]["float32"] == pytest.approx(10.4e12)
    assert peaks.lookup("Some Future Accelerator") is None
    assert peaks.lookup(None) is None


# --- precision flags: torch's new fp32_precision API ------------------------------------------------------
def test_tf32_set_the_new_way_leaves_cuda_usable(tf32_the_new_way):
    with pytest.raises(RuntimeError, match="legacy and new"):  # the real torch: legacy reads now raise
        _ = torch.backends.cuda.matmul.allow_tf32
    with pytest.raises(RuntimeError, match="legacy and new"):
        torch.get_float32_matmul_precision()
    torch_mod, _ = fake_torch(flags_from=torch)  # a faked GPU, the real precision flags
    b = bk._probe_cuda(torch_mod)
    assert b.available, b.reason
    assert b.properties["tf32_matmul"] is True


def test_tf32_flag_read_from_the_legacy_api_on_older_torch():
    torch_mod, _ = fake_torch()  # no fp32_precision attributes: a torch before 2.9
    assert bk._probe_cuda(torch_mod).properties["tf32_matmul"] is False


# --- memory counters ------------------------------------------------------------------------------------
MiB = 2**20


def test_cuda_graph_replays_are_seen_by_the_reserved_counter_only():
    """Graphs recorded before the reset replay from a private pool: max_memory_allocated misses it."""
    torch_mod, _ = fake_torch()
    b = bk._probe_cuda(torch_mod)
    alloc = torch_mod.cuda.allocator
    alloc.alloc(100 * MiB)  # weights, gradients, optimizer state
    alloc.record_graph(400 * MiB)  # warm-up and recording happen in setup, before the reset
    alloc.alloc(50 * MiB)
    alloc.free(50 * MiB)  # a cached block from earlier work
    b.reset_peak_memory()
    for _ in range(3):
        alloc.replay()
    assert b.peak_memory() == (100 * MiB, "cuda-max-allocated")  # blind to the pool
    assert b.peak_memory("reserved") == (500 * MiB, "cuda-max-reserved")  # pool counted, stale cache not


def test_a_case_asking_for_reserved_memory_gets_the_graph_pool():
    torch_mod, _ = fake_torch()
    b = bk._probe_cuda(torch_mod)
    alloc = torch_mod.cuda.allocator

    @benchmark
    def graphed(ctx):
        alloc.alloc(100 * MiB)
        alloc.record_graph(400 * MiB)
        return Case(alloc.replay, memory_counter="reserved")

    r = run_case(graphed, CaseKey.make("t", "graphed", backend="cuda"), b, TINY_BUDGET)
    assert r.status == "ok", r.details
    assert alloc.replays > 0
    assert r.peak_memory_bytes == 500 * MiB and r.memory_kind == "cuda-max-reserved"


def test_mps_memory_is_what_the_case_holds_not_the_growing_driver_cache(monkeypatch):
    """driver_allocated_memory() keeps every earlier case's cached buffers; a case must not be charged."""
    torch_mod, _ = fake_torch(mps_built=True, mps_available=True)
    monkeypatch.setattr(bk, "_cpu_model", lambda: "Apple M2 Max")
    b = bk._probe_mps(torch_mod)
    alloc = torch_mod.mps.allocator
    alloc.alloc(3000 * MiB)
    alloc.free(3000 * MiB)  # an earlier case in the same worker, its buffers cached by Metal
    readings = []
    for _ in range(2):
        b.reset_peak_memory()
        alloc.alloc(200 * MiB)
        readings.append(b.peak_memory())
        alloc.free(200 * MiB)
    assert readings == [(200 * MiB, "mps-current-allocated")] * 2
    assert b.peak_memory("reserved")[1] == "mps-driver-allocated"


def test_mps_uses_the_accelerator_peak_counter_where_it_works(monkeypatch):
    from types import SimpleNamespace

    torch_mod, _ = fake_torch(mps_built=True, mps_available=True)
    monkeypatch.setattr(bk, "_cpu_model", lambda: "Apple M2 Max")
    alloc = torch_mod.mps.allocator
    peak = {"v": 0}
    torch_mod.accelerator = SimpleNamespace(reset_peak_memory_stats=lambda: peak.update(v=alloc.live),
                                            max_memory_allocated=lambda: peak["v"])
    b = bk._probe_mps(torch_mod)
    b.reset_peak_memory()
    alloc.alloc(300 * MiB)
    peak["v"] = max(peak["v"], alloc.live)
    alloc.free(100 * MiB)
    assert b.peak_memory() == (300 * MiB, "mps-max-allocated")


# --- datasheet peaks ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "bandwidth", "bf16"), [
    ("NVIDIA H200", 4.8e12, 989.4e12),
    ("NVIDIA H200 NVL", 4.8e12, 835.5e12),
    ("NVIDIA GH200 480GB", 4.0e12, 989.4e12),
    ("NVIDIA H100 80GB HBM3", 3.35e12, 989.4e12),
    ("NVIDIA H100 PCIe", 2.0e12, 756e12),
    ("NVIDIA H100 NVL", 3.9e12, 835e12),
    ("NVIDIA A100-SXM4-80GB", 2.039e12, 312e12),
    ("NVIDIA A100 80GB PCIe", 1.935e12, 312e12),
    ("NVIDIA A100-PCIE-40GB", 1.555e12, 312e12),
    ("AMD Instinct MI250X", 1.6e12, 191.5e12),  # one of the package's two dies: what torch calls a device
    ("AMD Instinct MI300X", 5.3e12, 1307.4e12),
])
def test_datasheet_rows_per_device_name(name, bandwidth, bf16):
    p = peaks.lookup(name)
    assert p["bandwidth"] == pytest.approx(bandwidth)
    assert p["flops"]["bfloat16"] == pytest.approx(bf16)


@pytest.mark.parametrize("name", ["NVIDIA A100-SXM4-40GB MIG 1g.5gb", "NVIDIA H100 80GB HBM3 MIG 3g.40gb",
                                  "NVIDIA H100 MIG 7g.80gb"])
def test_a_mig_slice_has_no_datasheet_peak(name):
    assert peaks.lookup(name) is None


def test_the_cpu_never_gets_a_gpu_row(monkeypatch):
    """On a Mac the CPU's name is the chip's: "Apple M2 Pro" must not give the CPU the GPU's TFLOP/s."""
    monkeypatch.setattr(bk, "_cpu_model", lambda: "Apple M2 Pro")
    cpu = bk.CpuBackend()
    assert cpu.device_name == "Apple M2 Pro"
    assert cpu.peaks() is None and cpu.info()["peaks"] is None
    torch_mod, _ = fake_torch(mps_built=True, mps_available=True)
    assert bk._probe_mps(torch_mod).peaks()["flops"]["float32"] == pytest.approx(6.8e12)


def test_pcie_link_bandwidth():
    assert peaks.pcie_bandwidth(5, 16) == pytest.approx(63.0e9, rel=1e-3)
    assert peaks.pcie_bandwidth(4, 16) == pytest.approx(31.5e9, rel=1e-3)
    assert peaks.pcie_bandwidth("unavailable: x", 16) is None and peaks.pcie_bandwidth(4, None) is None


# --- which GPU torch measures ---------------------------------------------------------------------------
def test_cuda_backend_records_its_uuid_as_nvml_spells_it():
    devices = [gpu_props("NVIDIA H100 80GB HBM3", "bbbb"), gpu_props("NVIDIA A100-SXM4-80GB", "aaaa")]
    b = bk._probe_cuda(fake_torch(devices=devices)[0])
    assert b.properties["uuid"] == "GPU-bbbb"
    assert b.properties["visible_uuids"] == ["GPU-bbbb", "GPU-aaaa"]


@pytest.mark.parametrize("kind", ["cuda", "mps"])
def test_the_gpu_shaped_session_makes_its_kind_usable_here_and_in_subprocesses(kind):
    """`pytest --fake-backend KIND`: a usable KIND backend that computes on the CPU, in this process and,
    through tests/fake_backend_site, in every Python process a test starts (the CLI and its workers)."""

    @benchmark
    def double(ctx):
        x = torch.ones(8, device=ctx.device)
        return Case(lambda: x * 2)

    fake = gpu_shaped_backend(kind)
    assert fake.name == kind and fake.available and fake.torch_device() == torch.device("cpu")
    r = run_case(double, CaseKey.make("s", "double", {}, kind), fake, TINY_BUDGET)
    assert r.ok and r.timing_method == "sync+perf_counter"
    script = "from benchbench.measure import backends; print(' '.join(b.name for b in backends.discover() if b.available))"
    env = {**os.environ, "BENCHBENCH_TEST_FAKE_BACKEND": kind,
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fake_backend_site"), str(ROOT)])}
    usable = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True,
                            timeout=300).stdout.split()
    assert usable[0] == "cpu" and kind in usable
