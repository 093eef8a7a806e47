"""Environment diagnostics: checks planted through fact dicts and faked readers, never real hardware."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import psutil
import pytest
import torch
from fakes import fake_torch, gpu_props

from benchbench.environment import (
    FINGERPRINT_KEYS,
    Context,
    collect,
    fingerprint,
    fingerprint_diff,
    run_checks,
)
from benchbench.environment import checks as ck
from benchbench.environment import facts as fx
from benchbench.environment.fingerprint import from_facts, matters
from benchbench.measure import backends as bk
from benchbench.measure import cpus, nvml

GiB = 1 << 30
CHECK_IDS = ["gpu-cpu-only-build", "gpu-driver-too-old", "gpu-not-usable", "mps-not-usable", "debug-switches",
             "gpu-throttled", "gpu-power-limit", "gpu-busy", "gpu-pcie-link", "cpu-threads", "openmp-runtimes",
             "shm-size", "open-files-limit", "torch-debug-build", "precision-flags", "cpu-governor", "on-battery",
             "system-load", "valgrind"]


def gpu_device(**over):
    d = {"index": 0, "name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-aaaa", "compute_capability": "9.0",
         "memory_total_bytes": 80 * GiB, "memory_used_bytes": GiB // 2, "temperature_c": 35, "utilization_pct": 0,
         "power_limit_w": 700.0, "power_default_limit_w": 700.0, "power_enforced_limit_w": 700.0,
         "power_draw_w": 70.0, "clock_sm_mhz": 1980, "clock_sm_max_mhz": 1980, "clock_mem_mhz": 2619,
         "clock_mem_max_mhz": 2619, "clock_event_mask": 1, "clock_event_reasons": ["gpu_idle"],
         "pcie_gen": 5, "pcie_gen_max": 5, "pcie_width": 16, "pcie_width_max": 16, "processes": [], "visible": True}
    d.update(over)
    return d


def healthy():
    """A well set-up Linux machine with one H100, NVML, and a CUDA build of torch."""
    return {
        "hostname": "box", "git_commit": "abc", "benchbench_version": "0.1.0",
        "host": {"os": "Linux 6.8", "platform": "Linux", "machine": "x86_64", "libc": "glibc 2.39",
                 "container": False},
        "python": {"version": "3.11.7", "implementation": "CPython", "executable": "/usr/bin/python3",
                   "machine": "x86_64"},
        "torch": {"version": "2.5.1+cu124", "debug": False, "cuda": "12.4", "hip": None, "cudnn": "9.1.0",
                  "build_type": "Release", "blas": "mkl"},
        "precision": {"float32_matmul_precision": "highest", "cuda_matmul_allow_tf32": False,
                      "cudnn_allow_tf32": True, "cudnn_benchmark": False, "cudnn_deterministic": False,
                      "deterministic_algorithms": False},
        "debug": {"anomaly_detection": False},
        "threads": {"torch_threads": 8, "interop_threads": 8,
                    "openmp_runtimes": [{"runtime": "GNU libgomp", "path": "/torch/lib/libgomp-a34b3233.so.1"}]},
        "cpu": {"model": "AMD EPYC 9654", "logical_cpus": 16, "physical_cores": 8, "affinity_cpus": 8,
                "cgroup_cpu_quota": None, "usable_cpus": 8, "governors": ["performance"],
                "frequency_mhz": {"current": 3500, "min": 1500, "max": 3700}, "load_average": [0.5, 0.4, 0.3]},
        "memory": {"total_bytes": 256 * GiB, "available_bytes": 200 * GiB},
        "power": {"battery": False, "on_battery": False},
        "limits": {"open_files_soft": 65536, "open_files_hard": 1048576, "shm_total_bytes": 64 * GiB,
                   "shm_free_bytes": 64 * GiB},
        "gpu": {"nvidia_gpus": 1, "driver_version": "550.54.15", "cuda_driver_version": "12.4",
                "nvml": {"available": True, "reason": None, "driver_version": "550.54.15",
                         "cuda_driver_version": "12.4", "devices": [gpu_device()]},
                "proc_driver_nvidia": {"present": True, "driver_version": "550.54.15",
                                       "gpus": ["NVIDIA H100 80GB HBM3"]},
                "amd_kfd": False},
        "backends": {"cpu": {"available": True, "reason": None, "device_name": "AMD EPYC 9654", "properties": {}},
                     "cuda": {"available": True, "reason": None, "device_name": "NVIDIA H100 80GB HBM3",
                              "properties": {"device_count": 1}},
                     "mps": {"available": False, "reason": "MPS needs macOS on Apple silicon"}},
        "mps": {"is_built": False, "is_available": False, "os": "linux", "python_machine": "x86_64",
                "macos_version": None, "hardware_arm64": None, "rosetta": None},
        "env": {},
    }


def verdicts(facts, context=None):
    return {c["id"]: c["verdict"] for c in run_checks(facts, context)}


def one(facts, check_id, context=None):
    return next(c for c in run_checks(facts, context) if c["id"] == check_id)


# --- the clean machine ------------------------------------------------------------------------------
def test_clean_fake_environment_gives_no_warnings():
    results = run_checks(healthy())
    assert [c["id"] for c in results] == CHECK_IDS
    bad = {c["id"]: c["title"] for c in results if c["verdict"] in ("warn", "fail")}
    assert bad == {}
    assert verdicts(healthy())["precision-flags"] == "info"


def test_every_result_has_the_documented_shape():
    for c in run_checks(healthy()):
        assert set(c) == {"id", "verdict", "title", "evidence", "advice"}
        assert c["verdict"] in ck.VERDICTS
        assert isinstance(c["evidence"], dict) and c["evidence"]
        assert "\n" not in c["advice"] and "\n" not in c["title"]


def mutate(**paths):
    f = healthy()
    for path, value in paths.items():
        node = f
        *head, last = path.split("__")
        for part in head:
            node = node[part]
        node[last] = value
    return f


def with_device(**over):
    f = healthy()
    f["gpu"]["nvml"]["devices"] = [gpu_device(**over)]
    return f


# --- each misconfiguration, planted ---------------------------------------------------------------------
PLANTED = [
    # 1. a GPU, but torch is a CPU-only build
    ("cpu build, NVML sees a GPU", mutate(torch__cuda=None, backends__cuda={"available": False}),
     "gpu-cpu-only-build", "fail"),
    ("cpu build, only /proc/driver/nvidia", mutate(
        torch__cuda=None, gpu={"nvidia_gpus": 0, "nvml": {"available": False, "reason": "not installed"},
                               "proc_driver_nvidia": {"present": True, "driver_version": "550.54.15", "gpus": []},
                               "amd_kfd": False}),
     "gpu-cpu-only-build", "fail"),
    ("AMD GPU, CUDA build", mutate(gpu={"nvidia_gpus": 0, "nvml": {"available": False},
                                        "proc_driver_nvidia": {"present": False}, "amd_kfd": True}),
     "gpu-cpu-only-build", "fail"),
    # 2. the driver is older than torch's CUDA
    ("driver a major behind", mutate(gpu__cuda_driver_version="11.8"), "gpu-driver-too-old", "fail"),
    ("driver a minor behind, CUDA works", mutate(gpu__cuda_driver_version="12.2"), "gpu-driver-too-old", "warn"),
    ("driver a minor behind, CUDA broken", mutate(gpu__cuda_driver_version="12.2",
                                                  backends__cuda={"available": False, "reason": "too old"}),
     "gpu-driver-too-old", "fail"),
    ("GPU present, torch cannot use it", mutate(backends__cuda={"available": False, "reason": "driver too old"}),
     "gpu-not-usable", "fail"),
    # 3. MPS on Apple silicon
    ("MPS not built", mutate(mps={"os": "darwin", "python_machine": "arm64", "hardware_arm64": True,
                                  "rosetta": False, "is_built": False, "is_available": False}),
     "mps-not-usable", "fail"),
    ("x86 Python under Rosetta", mutate(mps={"os": "darwin", "python_machine": "x86_64", "hardware_arm64": True,
                                             "rosetta": True, "is_built": False, "is_available": False}),
     "mps-not-usable", "fail"),
    ("MPS built, unavailable", mutate(mps={"os": "darwin", "python_machine": "arm64", "hardware_arm64": True,
                                           "rosetta": False, "is_built": True, "is_available": False,
                                           "macos_version": "12.1"}),
     "mps-not-usable", "fail"),
    # 4. debug switches
    ("CUDA_LAUNCH_BLOCKING", mutate(env={"CUDA_LAUNCH_BLOCKING": "1"}), "debug-switches", "fail"),
    ("no CUDA caching", mutate(env={"PYTORCH_NO_CUDA_MEMORY_CACHING": "1"}), "debug-switches", "fail"),
    ("TORCH_COMPILE_DEBUG", mutate(env={"TORCH_COMPILE_DEBUG": "1"}), "debug-switches", "fail"),
    ("anomaly detection", mutate(debug={"anomaly_detection": True}), "debug-switches", "fail"),
    ("TORCH_LOGS", mutate(env={"TORCH_LOGS": "+dynamo"}), "debug-switches", "warn"),
    # 5. throttling
    ("thermal slowdown", with_device(clock_event_reasons=["hw_thermal_slowdown"]), "gpu-throttled", "fail"),
    ("power brake", with_device(clock_event_reasons=["hw_power_brake_slowdown"]), "gpu-throttled", "fail"),
    ("power cap", with_device(clock_event_reasons=["sw_power_cap"]), "gpu-throttled", "warn"),
    ("low clocks under load", with_device(clock_event_reasons=[], utilization_pct=95, clock_sm_mhz=900),
     "gpu-throttled", "warn"),
    # 6. power limit
    ("power limit lowered", with_device(power_limit_w=400.0), "gpu-power-limit", "warn"),
    # 7. someone else on the GPU
    ("other process", with_device(processes=[{"pid": 4242, "used_memory_bytes": 8 * GiB, "self": False,
                                              "name": "python"}]), "gpu-busy", "warn"),
    ("memory in use, processes hidden", with_device(memory_used_bytes=20 * GiB), "gpu-busy", "warn"),
    # 8. PCIe
    ("PCIe downtrained under load", with_device(pcie_gen=3, utilization_pct=90), "gpu-pcie-link", "warn"),
    # 9. threads
    ("torch threads above cgroup quota", mutate(cpu__usable_cpus=2, cpu__cgroup_cpu_quota=2.0),
     "cpu-threads", "warn"),
    ("OMP_NUM_THREADS oversubscribes", mutate(env={"OMP_NUM_THREADS": "64"}), "cpu-threads", "warn"),
    # 10. OpenMP
    ("two OpenMP runtimes", mutate(threads__openmp_runtimes=[
        {"runtime": "GNU libgomp", "path": "/torch/lib/libgomp.so.1"},
        {"runtime": "Intel libiomp5", "path": "/conda/lib/libiomp5.so"}]), "openmp-runtimes", "warn"),
    # 11-13
    ("small /dev/shm", mutate(limits__shm_total_bytes=64 << 20), "shm-size", "warn"),
    ("low ulimit -n", mutate(limits__open_files_soft=1024), "open-files-limit", "warn"),
    ("debug build", mutate(torch__debug=True, torch__build_type="Debug"), "torch-debug-build", "warn"),
    # 15
    ("powersave governor", mutate(cpu__governors=["powersave"]), "cpu-governor", "warn"),
    ("on battery", mutate(power={"battery": True, "on_battery": True, "percent": 50}), "on-battery", "warn"),
    ("busy machine", mutate(cpu__load_average=[14.0, 12.0, 9.0]), "system-load", "warn"),
]


@pytest.mark.parametrize(("facts", "check_id", "verdict"), [p[1:] for p in PLANTED], ids=[p[0] for p in PLANTED])
def test_planted_misconfiguration_is_caught(facts, check_id, verdict):
    c = one(facts, check_id)
    assert c["verdict"] == verdict, c
    assert c["advice"], "a warning or failure needs advice"
    # only what was planted goes wrong (a second check may confirm the same cause)
    others = {k: v for k, v in verdicts(facts).items() if v in ("warn", "fail") and k != check_id}
    assert set(others) <= {"gpu-not-usable", "gpu-driver-too-old", "gpu-cpu-only-build"}, others


def test_debug_switch_off_values_are_not_switches():
    assert verdicts(mutate(env={"CUDA_LAUNCH_BLOCKING": "0", "TORCH_COMPILE_DEBUG": "", "CUDNN_LOGINFO_DBG": "0"})
                    )["debug-switches"] == "pass"


def test_debug_switch_outside_benchmark_mode_only_warns():
    f = mutate(env={"CUDA_LAUNCH_BLOCKING": "1"})
    assert one(f, "debug-switches", Context(benchmark=False))["verdict"] == "warn"
    assert one(f, "debug-switches")["evidence"]["active"]["CUDA_LAUNCH_BLOCKING"]["value"] == "1"


def test_cuda_only_switch_is_harmless_without_a_usable_gpu():
    f = mutate(env={"CUDA_LAUNCH_BLOCKING": "1"}, backends__cuda={"available": False})
    assert one(f, "debug-switches")["verdict"] == "info"


def test_workload_context_scopes_the_verdict():
    small_shm = mutate(limits__shm_total_bytes=64 << 20)
    assert one(small_shm, "shm-size", Context(suites=("tensor_ops",)))["verdict"] == "info"
    assert one(small_shm, "shm-size", Context(suites=("dataloader",)))["verdict"] == "warn"
    governor = mutate(cpu__governors=["powersave"])
    assert one(governor, "cpu-governor", Context(backends=("cuda",)))["verdict"] == "info"
    hot = with_device(clock_event_reasons=["hw_thermal_slowdown"])
    assert one(hot, "gpu-throttled", Context(backends=("cpu",)))["verdict"] == "info"
    cpu_build = mutate(torch__cuda=None, backends__cuda={"available": False})
    assert one(cpu_build, "gpu-cpu-only-build", Context(backends=("cpu",)))["verdict"] == "info"


def test_idle_throttle_reasons_and_idle_pcie_are_not_problems():
    assert one(with_device(clock_event_reasons=["gpu_idle"], clock_sm_mhz=345), "gpu-throttled")["verdict"] == "pass"
    idle = one(with_device(pcie_gen=1, utilization_pct=0), "gpu-pcie-link")
    assert idle["verdict"] == "info" and "idle" in idle["title"]


def test_own_process_on_the_gpu_is_not_another_process():
    own = with_device(processes=[{"pid": 1, "used_memory_bytes": 3 * GiB, "self": True, "name": "python"}],
                      memory_used_bytes=3 * GiB + GiB // 2)
    assert one(own, "gpu-busy")["verdict"] == "pass"


def test_gpu_hidden_by_cuda_visible_devices_is_not_judged():
    f = healthy()
    f["gpu"]["nvml"]["devices"] = [gpu_device(), gpu_device(index=1, visible=False,
                                                            clock_event_reasons=["hw_thermal_slowdown"])]
    assert one(f, "gpu-throttled")["verdict"] == "pass"
    f["gpu"]["nvml"]["devices"][1]["visible"] = True
    c = one(f, "gpu-throttled")
    assert c["verdict"] == "fail" and c["title"].startswith("GPU 1:")
    assert set(c["evidence"]) == {"gpu0", "gpu1"}


def test_gpu_without_nvml_says_it_could_not_check():
    f = mutate(gpu__nvml={"available": False, "reason": "nvidia-ml-py is not installed"})
    for cid in ("gpu-throttled", "gpu-power-limit", "gpu-busy", "gpu-pcie-link"):
        c = one(f, cid)
        assert c["verdict"] == "info" and "nvidia-ml-py" in c["evidence"]["nvml"], c


def test_unreadable_driver_cuda_version_is_info():
    f = mutate(gpu__cuda_driver_version="unavailable: no CUDA driver library")
    c = one(f, "gpu-driver-too-old")
    assert c["verdict"] == "info" and c["evidence"]["driver_cuda_version"].startswith("unavailable")


def test_single_threaded_torch_is_worth_knowing():
    assert verdicts(mutate(threads__torch_threads=1))["cpu-threads"] == "info"


def test_open_files_advice_depends_on_the_hard_limit():
    assert "ulimit -n 65536" in one(mutate(limits__open_files_soft=1024), "open-files-limit")["advice"]
    stuck = one(mutate(limits__open_files_soft=1024, limits__open_files_hard=1024), "open-files-limit")
    assert "hard limit" in stuck["advice"]


def test_shm_too_small_for_one_dataloader_worker_per_cpu_is_named():
    # 1.5 GiB is above the general floor, but 64 CPUs x prefetch 2 x an 18 MiB batch need about 2.3 GiB
    f = mutate(limits__shm_total_bytes=3 << 29, limits__shm_free_bytes=3 << 29, cpu__usable_cpus=64)
    c = one(f, "shm-size", Context(suites=("dataloader",)))
    assert c["verdict"] == "warn"
    assert "64 DataLoader workers" in c["title"] and "2352 MiB" in c["title"]
    assert c["evidence"]["dataloader_shm_need_bytes"] == 64 * 2 * 32 * 3 * 224 * 224 * 4
    assert one(f, "shm-size", Context(suites=("training",)))["verdict"] == "info"
    assert one(mutate(cpu__usable_cpus=64), "shm-size", Context(suites=("dataloader",)))["verdict"] == "pass"


def test_shm_mostly_used_up_is_named_by_its_free_space():
    f = mutate(limits__shm_free_bytes=100 << 20)  # 64 GiB in all, 100 MiB left; 8 workers need 294 MiB
    c = one(f, "shm-size", Context(suites=("dataloader",)))
    assert c["verdict"] == "warn" and c["title"].startswith("/dev/shm has 100 MiB free")


def test_small_shm_in_a_container_suggests_docker_flags():
    c = one(mutate(limits__shm_total_bytes=64 << 20, host__container=True), "shm-size")
    assert "--ipc=host" in c["advice"] and "--shm-size" in c["advice"]


def test_checks_survive_missing_and_unreadable_facts():
    assert [c["id"] for c in run_checks({})] == CHECK_IDS
    broken = {k: "unavailable: boom" for k in healthy()}
    results = run_checks(broken)
    assert [c["id"] for c in results] == CHECK_IDS
    assert all(c["title"] != "check crashed (a benchbench bug)" for c in results), results


def test_a_crashing_check_becomes_a_warning(monkeypatch):
    def boom(f, ctx):
        raise RuntimeError("bug")

    monkeypatch.setattr(ck, "CHECKS", [boom])
    (c,) = run_checks(healthy())
    assert c["verdict"] == "warn" and "RuntimeError: bug" in c["evidence"]["error"]


# --- readers --------------------------------------------------------------------------------------
class NVMLError(Exception):
    pass


class FakeNvml:
    """The slice of the pynvml API benchbench reads, answering from plain dicts."""

    NVML_TEMPERATURE_GPU, NVML_CLOCK_SM, NVML_CLOCK_MEM = 0, 1, 2

    def __init__(self, devices, init_error=None):
        self.devices = devices
        self.init_error = init_error
        self.shutdowns = 0

    def nvmlInit(self):
        if self.init_error:
            raise self.init_error

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self):
        return "550.54.15"

    def nvmlSystemGetCudaDriverVersion(self):
        return 12040

    def nvmlDeviceGetCount(self):
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, i):
        return self.devices[i]

    def nvmlDeviceGetName(self, h):
        return h["name"].encode()  # old pynvml versions return bytes

    def nvmlDeviceGetUUID(self, h):
        return h["uuid"]

    def nvmlDeviceGetCudaComputeCapability(self, h):
        return (9, 0)

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(total=80 * GiB, used=h.get("used", GiB // 2), free=0)

    def nvmlDeviceGetTemperature(self, h, sensor):
        return 40

    def nvmlDeviceGetUtilizationRates(self, h):
        return SimpleNamespace(gpu=h.get("util", 0), memory=0)

    def nvmlDeviceGetPowerManagementLimit(self, h):
        return h.get("limit_mw", 700000)

    def nvmlDeviceGetPowerManagementDefaultLimit(self, h):
        return 700000

    def nvmlDeviceGetEnforcedPowerLimit(self, h):
        return h.get("limit_mw", 700000)

    def nvmlDeviceGetPowerUsage(self, h):
        raise NVMLError("Not Supported")

    def nvmlDeviceGetClockInfo(self, h, clock):
        return {1: 1980, 2: 2619}[clock]

    def nvmlDeviceGetMaxClockInfo(self, h, clock):
        return {1: 1980, 2: 2619}[clock]

    def nvmlDeviceGetCurrentClocksEventReasons(self, h):
        return h.get("reasons", 0x1)

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h):
        return h.get("gen", 5)

    def nvmlDeviceGetMaxPcieLinkGeneration(self, h):
        return 5

    def nvmlDeviceGetCurrPcieLinkWidth(self, h):
        return 16

    def nvmlDeviceGetMaxPcieLinkWidth(self, h):
        return 16

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [SimpleNamespace(pid=pid, usedGpuMemory=mem) for pid, mem in h.get("procs", [])]

    def nvmlDeviceGetGraphicsRunningProcesses(self, h):
        raise NVMLError("Not Supported")

    def nvmlSystemGetProcessName(self, pid):
        return "/usr/bin/python3"


def test_nvml_reader_decodes_units_reasons_and_processes(monkeypatch):
    fake = FakeNvml([{"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-1", "reasons": 0x4 | 0x40, "limit_mw": 450000,
                      "procs": [(os.getpid(), GiB), (999999, 2 * GiB)]}])
    monkeypatch.setattr(nvml, "import_pynvml", lambda: fake)
    out = nvml.read_nvml()
    assert out["available"] and out["driver_version"] == "550.54.15" and out["cuda_driver_version"] == "12.4"
    (d,) = out["devices"]
    assert d["name"] == "NVIDIA H100 80GB HBM3" and d["compute_capability"] == "9.0"
    assert d["clock_event_reasons"] == ["sw_power_cap", "hw_thermal_slowdown"]
    assert d["power_limit_w"] == pytest.approx(450.0) and d["power_default_limit_w"] == pytest.approx(700.0)
    assert d["power_draw_w"].startswith("unavailable: Not Supported")
    assert [(p["pid"], p["self"], p["name"]) for p in d["processes"]] == [(os.getpid(), True, "python3"),
                                                                          (999999, False, "python3")]
    assert fake.shutdowns == 1


def _function_not_found(handle):
    raise NVMLError("Function Not Found")


@pytest.mark.parametrize("event_fn", [None, _function_not_found], ids=["old pynvml", "old driver"])
def test_nvml_reader_falls_back_to_throttle_reasons(monkeypatch, event_fn):
    fake = FakeNvml([{"name": "A100", "uuid": "GPU-1"}])
    fake.nvmlDeviceGetCurrentClocksEventReasons = event_fn
    fake.nvmlDeviceGetCurrentClocksThrottleReasons = lambda h: 0x8
    monkeypatch.setattr(nvml, "import_pynvml", lambda: fake)
    assert nvml.read_nvml()["devices"][0]["clock_event_reasons"] == ["hw_slowdown"]


def test_nvml_missing_or_broken_is_a_reason_not_a_crash(monkeypatch):
    def missing():
        raise ImportError("No module named 'pynvml'")

    monkeypatch.setattr(nvml, "import_pynvml", missing)
    out = nvml.read_nvml()
    assert out == {"available": False, "reason": out["reason"]} and "nvidia-ml-py" in out["reason"]
    monkeypatch.setattr(nvml, "import_pynvml", lambda: FakeNvml([], init_error=NVMLError("Driver Not Loaded")))
    assert nvml.read_nvml() == {"available": False, "reason": "NVML did not start: Driver Not Loaded"}


def fake_backends(cuda_available=True):
    cpu = bk.Backend(name="cpu", available=True, device="cpu", device_name="Fake CPU")
    if cuda_available:
        cuda = bk.Backend(name="cuda", available=True, device="cuda:0", device_name="NVIDIA H100 80GB HBM3",
                          properties={"device_count": 1})
    else:
        cuda = bk.Backend(name="cuda", available=False, reason="torch was built without CUDA")
    return [cpu, cuda]


@pytest.fixture
def quiet_machine(monkeypatch):
    """Readers answer like a healthy Linux box with no GPU, whatever machine the tests run on."""
    monkeypatch.setattr(nvml, "import_pynvml", lambda: (_ for _ in ()).throw(ImportError("no pynvml")))
    monkeypatch.setattr(nvml, "read_proc_driver", lambda: {"present": False})
    monkeypatch.setattr(fx, "statvfs", lambda p: SimpleNamespace(f_blocks=8 * GiB // 4096, f_bavail=8 * GiB // 4096,
                                                                   f_frsize=4096))
    monkeypatch.setattr(fx, "open_files_limit", lambda: (65536, 65536))
    monkeypatch.setattr(fx, "loaded_libraries", lambda: ["/x/torch/lib/libgomp.so.1", "/usr/lib/libc.so.6"])
    monkeypatch.setattr(fx, "affinity", lambda: set(range(4)))
    monkeypatch.setattr(fx, "cgroup_cpu_quota", lambda: None)
    monkeypatch.setattr(fx.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    monkeypatch.setattr(fx.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(fx, "_governors", lambda cpus: ["performance"])
    monkeypatch.setattr(psutil, "sensors_battery", lambda: None)
    import torch

    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    for k in fx.ENV_ALLOWLIST:
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


def collected_verdicts(backends=None, context=None):
    env = collect(backends or fake_backends(cuda_available=False), context)
    return {c["id"]: c["verdict"] for c in env["checks"]}, env


def test_collect_on_a_quiet_machine_has_no_warnings(quiet_machine):
    got, env = collected_verdicts()
    assert {k: v for k, v in got.items() if v in ("warn", "fail")} == {}
    assert env["facts"]["cpu"]["usable_cpus"] == 4
    assert env["facts"]["limits"]["shm_total_bytes"] == 8 * GiB


def test_collect_catches_planted_reader_answers(quiet_machine):
    quiet_machine.setattr(fx, "statvfs", lambda p: SimpleNamespace(f_blocks=16384, f_bavail=16384, f_frsize=4096))
    quiet_machine.setattr(fx, "open_files_limit", lambda: (1024, 4096))
    quiet_machine.setattr(fx, "loaded_libraries", lambda: ["/x/torch/lib/libgomp-a34b3233.so.1",
                                                           "/opt/conda/lib/libiomp5.so"])
    quiet_machine.setattr(fx, "cgroup_cpu_quota", lambda: 1.5)  # torch still uses 4 threads
    quiet_machine.setattr(psutil, "sensors_battery", lambda: SimpleNamespace(percent=40, power_plugged=False,
                                                                             secsleft=100))
    quiet_machine.setenv("CUDA_LAUNCH_BLOCKING", "1")
    got, env = collected_verdicts(fake_backends(cuda_available=True))
    assert got["shm-size"] == "warn"
    assert got["open-files-limit"] == "warn"
    assert got["openmp-runtimes"] == "warn"
    assert got["cpu-threads"] == "warn" and env["facts"]["cpu"]["usable_cpus"] == 2
    assert got["on-battery"] == "warn"
    assert got["debug-switches"] == "fail"


def test_collect_with_fake_nvml_gpu_and_cpu_only_torch(quiet_machine):
    import torch

    fake = FakeNvml([{"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-1", "reasons": 0x20, "limit_mw": 300000,
                      "gen": 3, "util": 80, "procs": [(999999, 4 * GiB)]}])
    quiet_machine.setattr(nvml, "import_pynvml", lambda: fake)
    quiet_machine.setattr(torch.version, "cuda", None)
    got, env = collected_verdicts(fake_backends(cuda_available=False))
    assert got["gpu-cpu-only-build"] == "fail"
    assert env["facts"]["gpu"]["nvidia_gpus"] == 1
    # torch cannot use the GPU, so its state is only worth knowing until the build is fixed
    assert {got[k] for k in ("gpu-throttled", "gpu-power-limit", "gpu-busy", "gpu-pcie-link")} == {"info"}


def test_collect_with_fake_nvml_and_old_driver(quiet_machine):
    import torch

    fake = FakeNvml([{"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-1", "reasons": 0x20, "limit_mw": 300000,
                      "gen": 3, "util": 80, "procs": [(999999, 4 * GiB)]}])
    quiet_machine.setattr(nvml, "import_pynvml", lambda: fake)
    quiet_machine.setattr(torch.version, "cuda", "13.0")
    got, env = collected_verdicts(fake_backends(cuda_available=True))
    assert got["gpu-driver-too-old"] == "fail"
    assert got["gpu-throttled"] == "fail"
    assert got["gpu-power-limit"] == "warn"
    assert got["gpu-busy"] == "warn"
    assert got["gpu-pcie-link"] == "warn"
    assert env["fingerprint"]["power_limit_w"] == 300.0 and env["fingerprint"]["driver_version"] == "550.54.15"


def test_collect_never_raises_when_readers_break(quiet_machine):
    def boom(*a, **k):
        raise RuntimeError("reader exploded")

    for target, name in ((fx, "statvfs"), (fx, "open_files_limit"), (fx, "loaded_libraries"), (fx, "affinity"),
                         (fx, "cgroup_cpu_quota"), (fx, "_git_commit"), (psutil, "virtual_memory"),
                         (psutil, "sensors_battery"), (nvml, "read_nvml"), (fx, "_governors")):
        quiet_machine.setattr(target, name, boom)
    env = collect(fake_backends())
    assert env["facts"]["limits"]["shm_total_bytes"] == "unavailable: RuntimeError: reader exploded"
    assert env["facts"]["gpu"].startswith("unavailable")
    assert [c["id"] for c in env["checks"]] == CHECK_IDS
    assert all(c["title"] != "check crashed (a benchbench bug)" for c in env["checks"])
    json.dumps(env, allow_nan=False)


def test_environment_variables_come_only_from_the_allow_list(quiet_machine):
    quiet_machine.setenv("GITHUB_TOKEN", "ghp_s3cret")
    quiet_machine.setenv("AWS_SECRET_ACCESS_KEY", "s3cret2")
    quiet_machine.setenv("OMP_NUM_THREADS", "4")
    env = collect(fake_backends())
    text = json.dumps(env)
    assert "s3cret" not in text and "GITHUB_TOKEN" not in text
    assert env["facts"]["env"] == {"OMP_NUM_THREADS": "4"}


def test_collect_is_fast_and_json_able():
    env = collect(bk.discover())
    assert set(env) == {"fingerprint", "facts", "checks"}
    assert env["facts"]["collect_seconds"] < 2.0  # runs before every `run`; well under 1 s on a quiet machine
    assert json.loads(json.dumps(env, allow_nan=False))["fingerprint"] == env["fingerprint"]


# --- parsers ------------------------------------------------------------------------------------
def test_parse_config_and_parallel_info():
    cfg = fx.parse_config("PyTorch built with:\n  - GCC 9.3\n  - Intel(R) oneAPI Math Kernel Library Version 2024\n"
                          "  - Intel(R) MKL-DNN v3.5.3\n  - OpenMP 201511 (a.k.a. OpenMP 4.5)\n"
                          "  - CPU capability usage: AVX512\n  - Build settings: BLAS_INFO=mkl, BUILD_TYPE=Debug, "
                          "CUDA_FLAGS=-Xfatbin -compress-all,--diag_suppress=x, USE_CUDA=ON, USE_ROCM=OFF, \n")
    assert cfg["build_type"] == "Debug" and cfg["blas"] == "mkl" and cfg["cpu_capability"] == "AVX512"
    assert cfg["use"] == {"USE_CUDA": "ON", "USE_ROCM": "OFF"}
    assert cfg["onednn"].startswith("Intel(R) MKL-DNN") and cfg["openmp"].startswith("OpenMP")
    info = fx.parse_parallel_info("ATen/Parallel:\n\tat::get_num_threads() : 8\n\tomp_get_max_threads() : 8\n"
                                  "\tstd::thread::hardware_concurrency() : 16\nATen parallel backend: OpenMP\n")
    assert info == {"get_num_threads": "8", "omp_get_max_threads": "8", "hardware_concurrency": "16",
                    "parallel_backend": "OpenMP"}


def test_openmp_runtime_names():
    libs = ["/a/libgomp.so.1", "/a/libgomp.so.1", "/b/torch/lib/libgomp-a34b3233.so.1", "/c/libiomp5.so",
            "/d/libomp.dylib", "/e/libompitrace.so", "/f/libgomp_plugin.so", "/g/libc.so.6"]
    got = fx.openmp_runtimes(libs)
    assert [r["path"] for r in got] == ["/a/libgomp.so.1", "/b/torch/lib/libgomp-a34b3233.so.1", "/c/libiomp5.so",
                                        "/d/libomp.dylib"]
    assert [r["runtime"] for r in got][2:] == ["Intel libiomp5", "LLVM libomp"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="cgroups are Linux-only")
def test_cgroup_quota_v2_and_v1(monkeypatch):
    files = {"/proc/self/cgroup": "0::/job\n", "/sys/fs/cgroup/job/cpu.max": "150000 100000\n"}

    def read(path):
        if path in files:
            return files[path]
        raise FileNotFoundError(path)

    monkeypatch.setattr(cpus, "read_text", read)
    assert fx.cgroup_cpu_quota() == pytest.approx(1.5)
    monkeypatch.setattr(cpus, "affinity_cpus", lambda: 8)
    assert cpus.usable_cpus() == 2  # 1.5 CPUs of quota: two threads may run, each part of the time
    files.update({"/sys/fs/cgroup/job/cpu.max": "max 100000\n"})
    assert fx.cgroup_cpu_quota() is None
    files.clear()
    files.update({"/proc/self/cgroup": "4:cpu,cpuacct:/docker/x\n",
                  "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "400000",
                  "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000"})
    assert fx.cgroup_cpu_quota() == pytest.approx(4.0)
    assert cpus.usable_cpus() == 4
    files.clear()  # no cgroup file readable: the affinity mask alone
    assert cpus.usable_cpus() == 8


def test_usable_cpus_combines_affinity_count_and_quota():
    assert cpus.combine(affinity=8, logical=64, quota=None) == 8
    assert cpus.combine(affinity=None, logical=64, quota=None) == 64  # no affinity call (macOS)
    assert cpus.combine(affinity=8, logical=64, quota=2.0) == 2
    assert cpus.combine(affinity=2, logical=64, quota=16.0) == 2
    assert cpus.combine(affinity=8, logical=64, quota=0.5) == 1
    assert cpus.combine(affinity=None, logical=None, quota=None) == 1


def test_proc_driver_nvidia_without_nvml(monkeypatch):
    files = {"/proc/driver/nvidia/version": "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  "
                                            "Release Build  (dvs-builder@U16)\nGCC version: gcc 12",
             "/proc/driver/nvidia/gpus/0000:01:00.0/information": "Model: \t\t NVIDIA A100-SXM4-80GB\nIRQ: 1\n"}

    def read(path):
        if path in files:
            return files[path]
        raise FileNotFoundError(path)

    monkeypatch.setattr(nvml, "read_text", read)
    monkeypatch.setattr(nvml, "list_dir", lambda p: ["0000:01:00.0"])
    assert nvml.read_proc_driver() == {"present": True, "driver_version": "550.54.15",
                                       "gpus": ["NVIDIA A100-SXM4-80GB"]}
    files["/proc/driver/nvidia/version"] = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug"
    assert nvml.read_proc_driver()["driver_version"] == "535.104.05"


def test_cuda_version_and_visible_devices():
    assert nvml.cuda_version_text(12040) == "12.4" and nvml.cuda_version_text(11080) == "11.8"
    assert nvml.cuda_version_text(0) is None and nvml.cuda_version_text("x") is None
    devs = [{"index": 0, "uuid": "GPU-aaa"}, {"index": 1, "uuid": "GPU-bbb"}]
    assert nvml.visible_indices(None, devs) == {0, 1}
    assert nvml.visible_indices("1", devs) == {1}
    assert nvml.visible_indices("GPU-bb", devs) == {1}
    assert nvml.visible_indices("", devs) == set()
    assert nvml.visible_indices("0,-1,1", devs) == {0}
    assert nvml.visible_indices("MIG-xyz", devs) == {0, 1}


def test_git_commit_read_from_dot_git(tmp_path):
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text("a" * 40 + "\n")
    sub = tmp_path / "src" / "pkg"
    sub.mkdir(parents=True)
    assert fx._git_commit(sub) == "a" * 40
    (git / "refs" / "heads" / "main").unlink()
    (git / "packed-refs").write_text(f"# pack-refs\n{'b' * 40} refs/heads/main\n")
    assert fx._git_commit(sub) == "b" * 40
    (git / "HEAD").write_text("c" * 40 + "\n")
    assert fx._git_commit(sub) == "c" * 40


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_commit_of_a_real_repository_its_worktree_and_packed_refs(tmp_path):
    """What git itself writes: a main checkout, a linked worktree on another branch (a .git file, the
    branch ref in the common dir), and refs packed by `git pack-refs`; checked against `git rev-parse`."""
    def git(cwd, *args):
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
        return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                              text=True).stdout.strip()

    main = tmp_path / "main"
    main.mkdir()
    git(main, "init", "-q", "-b", "main")
    for i in (1, 2):
        (main / "f").write_text(str(i))
        git(main, "add", "f")
        git(main, "commit", "-q", "-m", f"c{i}")
    linked = tmp_path / "linked"
    git(main, "worktree", "add", "-q", "-b", "side", str(linked), "HEAD~1")
    (linked / "sub").mkdir()
    assert (linked / ".git").is_file()
    assert fx._git_commit(main) == git(main, "rev-parse", "HEAD")
    assert fx._git_commit(linked / "sub") == git(linked, "rev-parse", "HEAD") != fx._git_commit(main)
    git(main, "pack-refs", "--all")
    assert not (main / ".git" / "refs" / "heads" / "side").exists()
    assert fx._git_commit(linked / "sub") == git(linked, "rev-parse", "HEAD")
    assert fx._git_commit(main) == git(main, "rev-parse", "HEAD")
    git(linked, "checkout", "-q", "--detach")
    assert fx._git_commit(linked) == git(linked, "rev-parse", "HEAD")


# --- fingerprint ------------------------------------------------------------------------------------
def test_fingerprint_is_flat_with_stable_keys():
    fp = from_facts(healthy())
    assert tuple(fp) == FINGERPRINT_KEYS
    assert all(not isinstance(v, (dict, list)) for v in fp.values())
    assert fp["cuda_device"] == "NVIDIA H100 80GB HBM3" and fp["power_limit_w"] == 700.0
    assert fp["torch"] == "2.5.1+cu124" and fp["cudnn"] == "9.1.0" and fp["driver_version"] == "550.54.15"
    assert fp["float32_matmul_precision"] == "highest" and fp["cudnn_tf32"] is True and fp["threads"] == 8


def test_fingerprint_of_this_machine():
    import torch

    fp = fingerprint(bk.discover())
    assert tuple(fp) == FINGERPRINT_KEYS and fp["torch"] == torch.__version__
    assert fp["threads"] == torch.get_num_threads()


def test_fingerprint_diff_says_what_matters():
    a = from_facts(healthy())
    assert fingerprint_diff(a, copy.deepcopy(a)) == []
    b = dict(a, hostname="other", python="3.12.1", cuda_device="NVIDIA A100-SXM4-80GB", torch="2.6.0",
             float32_matmul_precision="high", power_limit_w=500.0)
    diff = fingerprint_diff(a, b)
    assert [(k, m) for k, _, _, m in diff] == [("torch", True), ("cuda_device", True), ("power_limit_w", True),
                                               ("float32_matmul_precision", True), ("python", False),
                                               ("hostname", False)]
    assert diff[0][1:3] == ("2.5.1+cu124", "2.6.0")


def test_fingerprint_diff_scoped_by_backend():
    a = from_facts(healthy())
    b = dict(a, cudnn="9.5.0", cpu="Intel Xeon 8480")
    assert [(k, m) for k, _, _, m in fingerprint_diff(a, b, backends=["cpu"])] == [("cudnn", False), ("cpu", True)]
    assert [(k, m) for k, _, _, m in fingerprint_diff(a, b, backends=["cuda"])] == [("cudnn", True), ("cpu", False)]
    assert matters("torch", ["mps"]) and not matters("hostname") and not matters("no-such-key")


def test_fingerprint_diff_unknown_values_do_not_prove_a_difference():
    a = from_facts(healthy())
    b = dict(a, power_limit_w=None, extra_key="x")
    del b["cudnn"]
    assert [(k, m) for k, _, _, m in fingerprint_diff(a, b)] == [("cudnn", False), ("power_limit_w", False),
                                                                 ("extra_key", False)]


# --- TF32 set through torch's new fp32_precision API (the real torch) -------------------------------------
def test_env_reports_tf32_set_the_new_way(quiet_machine, tf32_the_new_way):
    cuda = bk._probe_cuda(fake_torch(flags_from=torch)[0])  # a faked GPU, the real precision flags
    assert cuda.available, cuda.reason
    env = collect([bk.Backend(name="cpu", available=True, device="cpu", device_name="Fake CPU"), cuda])
    p = env["facts"]["precision"]
    assert p["cuda_matmul_allow_tf32"] is True and p["cuda_matmul_fp32_precision"] == "tf32"
    assert p["float32_matmul_precision"] == "high"
    assert env["facts"]["backends"]["cuda"]["available"] is True
    title = next(c["title"] for c in env["checks"] if c["id"] == "precision-flags")
    assert "TF32 matmul on" in title
    assert env["fingerprint"]["cuda_matmul_tf32"] is True


# --- the measured GPU, matched by UUID ----------------------------------------------------------------------
# NVML counts GPUs in PCI order; CUDA (and so torch) fastest-first. On this node the A100 sits first on
# the bus, throttled and used by another tenant; torch's cuda:0 is the H100.
A100_BUSY = {"name": "NVIDIA A100-SXM4-80GB", "uuid": "GPU-aaaa", "reasons": 0x40, "limit_mw": 300000,
             "util": 90, "procs": [(999999, 30 * GiB)], "used": 31 * GiB}
H100_IDLE = {"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-bbbb"}
GPU_CHECKS = ("gpu-throttled", "gpu-power-limit", "gpu-busy")


def _cuda_backend(*props):
    return bk._probe_cuda(fake_torch(devices=list(props))[0])


def test_cuda_visible_devices_counts_in_cuda_order_not_nvml_order(quiet_machine):
    quiet_machine.setattr(nvml, "import_pynvml", lambda: FakeNvml([A100_BUSY, H100_IDLE]))
    quiet_machine.setenv("CUDA_VISIBLE_DEVICES", "0")  # CUDA's device 0: the H100, NVML's index 1
    cpu = bk.Backend(name="cpu", available=True, device="cpu", device_name="Fake CPU")
    env = collect([cpu, _cuda_backend(gpu_props("NVIDIA H100 80GB HBM3", "bbbb"))])
    devices = env["facts"]["gpu"]["nvml"]["devices"]
    assert [(d["index"], d["visible"], d["measured"]) for d in devices] == [(0, False, False), (1, True, True)]
    got = {c["id"]: c for c in env["checks"]}
    assert {cid: got[cid]["verdict"] for cid in GPU_CHECKS} == {cid: "pass" for cid in GPU_CHECKS}


def test_only_the_measured_gpu_is_judged_the_others_are_listed(quiet_machine):
    quiet_machine.setattr(nvml, "import_pynvml", lambda: FakeNvml([A100_BUSY, H100_IDLE]))
    cpu = bk.Backend(name="cpu", available=True, device="cpu", device_name="Fake CPU")
    cuda = _cuda_backend(gpu_props("NVIDIA H100 80GB HBM3", "bbbb"), gpu_props("NVIDIA A100-SXM4-80GB", "aaaa"))
    env = collect([cpu, cuda])
    got = {c["id"]: c for c in env["checks"]}
    for cid in GPU_CHECKS:
        assert got[cid]["verdict"] == "pass", got[cid]
        assert set(got[cid]["evidence"]) == {"gpu1", "other_gpus"}
        assert got[cid]["evidence"]["other_gpus"]["gpu0"]["verdict"] in ("info", "pass")
    assert got["gpu-throttled"]["evidence"]["other_gpus"]["gpu0"]["verdict"] == "info"
    assert got["gpu-throttled"]["title"].startswith("measured GPU 1:")


def test_fingerprint_power_limit_is_the_measured_gpus(quiet_machine):
    quiet_machine.setattr(nvml, "import_pynvml", lambda: FakeNvml([A100_BUSY, H100_IDLE]))
    cpu = bk.Backend(name="cpu", available=True, device="cpu", device_name="Fake CPU")
    cuda = _cuda_backend(gpu_props("NVIDIA H100 80GB HBM3", "bbbb"), gpu_props("NVIDIA A100-SXM4-80GB", "aaaa"))
    assert collect([cpu, cuda])["fingerprint"]["power_limit_w"] == 700.0  # the H100's, not the A100's 300 W


def test_integer_visible_devices_are_not_guessed_across_models_without_uuids():
    devs = [{"index": 0, "name": "NVIDIA A100-SXM4-80GB"}, {"index": 1, "name": "NVIDIA H100 80GB HBM3"}]
    assert nvml.visible_indices("0", devs) == {0, 1}  # CUDA's 0 is the fastest: cannot tell which from NVML
    assert nvml.visible_indices("0", devs, device_order="PCI_BUS_ID") == {0}


# --- MPS on a macOS too old for this torch -------------------------------------------------------------------
def test_mps_on_macos_13_with_a_recent_torch_advises_macos_14():
    f = mutate(mps={"is_built": True, "is_available": False, "os": "darwin", "python_machine": "arm64",
                    "macos_version": "13.6.1", "hardware_arm64": True, "rosetta": False})
    f["torch"]["version"] = "2.14.1"
    c = one(f, "mps-not-usable", Context(backends=("mps",)))
    assert c["verdict"] == "fail" and "too old" in c["title"]
    assert "14.0" in c["advice"] and "12.3" not in c["advice"]
    f["torch"]["version"] = "2.4.1"
    f["mps"]["macos_version"] = "12.1"
    assert "12.3" in one(f, "mps-not-usable", Context(backends=("mps",)))["advice"]
