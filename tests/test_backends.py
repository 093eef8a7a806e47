"""Backend discovery and device-correct timing, with fake torch modules for CUDA and MPS."""

from types import SimpleNamespace

import pytest

from benchbench import backends as bk
from benchbench import peaks


class FakeEvent:
    log: list = []

    def __init__(self, enable_timing=False):
        assert enable_timing
        self.t = None

    def record(self):
        FakeEvent.log.append("record")
        self.t = len(FakeEvent.log)

    def synchronize(self):
        FakeEvent.log.append("event-sync")

    def elapsed_time(self, other):
        return 2.5  # ms


def fake_torch(cuda_version="12.4", hip=None, available=True, mps_built=False, mps_available=False):
    props = SimpleNamespace(name="NVIDIA H100 80GB HBM3", major=9, minor=0, total_memory=80 * 2**30,
                            multi_processor_count=132)
    syncs = []
    cuda = SimpleNamespace(
        is_available=lambda: available, device_count=lambda: 1, current_device=lambda: 0,
        get_device_properties=lambda i: props, Event=FakeEvent,
        synchronize=lambda i=None: syncs.append(("cuda", i)),
        reset_peak_memory_stats=lambda i=None: None, max_memory_allocated=lambda i=None: 1234,
    )
    mps_mod = SimpleNamespace(synchronize=lambda: syncs.append(("mps", None)),
                              driver_allocated_memory=lambda: 4321)
    return SimpleNamespace(
        version=SimpleNamespace(cuda=cuda_version, hip=hip), cuda=cuda, mps=mps_mod,
        backends=SimpleNamespace(cuda=SimpleNamespace(matmul=SimpleNamespace(allow_tf32=False)),
                                 mps=SimpleNamespace(is_built=lambda: mps_built, is_available=lambda: mps_available)),
        device=lambda d: d,
    ), syncs


def test_cpu_backend_is_always_available():
    cpu = bk.get("cpu")
    assert cpu.available and cpu.reason is None
    assert cpu.timer().method == "perf_counter"
    cpu.reset_peak_memory()
    peak, kind = cpu.peak_memory()
    assert peak and peak > 0 and kind in ("rss-peak", "rss")
    assert cpu.dtype_reason("tf32")
    assert cpu.info()["timer_resolution_s"] > 0


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
    torch_mod, _ = fake_torch(mps_built=True, mps_available=False)
    monkeypatch.setattr(bk.platform, "mac_ver", lambda: ("12.1", ("", "", ""), "arm64"))
    assert "12.1 < 12.3" in bk._probe_mps(torch_mod).reason


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
    assert b.peak_memory() == (4321, "mps-driver-allocated")
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
