"""Checks: pure functions of a facts dict (see `facts.py`) and a workload `Context`.

Each returns one result {"id", "verdict", "title", "evidence", "advice"}; the id is stable, the title
describes what was found. Verdicts: "fail" (results would be wrong or meaningless), "warn" (results
would be slower or noisier than this machine can do), "info" (worth knowing, or could not tell),
"pass". Checks that only matter for some workloads ask the context, and say "info" instead of
warn/fail when that workload is not about to run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from benchbench.environment.facts import DATALOADER_MIN_SHM, get
from benchbench.measure.backends import mps_min_macos
from benchbench.measure.nvml import SLOWDOWN_REASONS, is_unavailable
from benchbench.workloads import IMAGE_BATCH_BYTES

VERDICTS = ("fail", "warn", "info", "pass")  # worst first
DATALOADER_SUITES = frozenset({"dataloader"})
# What the dataloader suite's workers hold in /dev/shm at once, at most: one worker per usable CPU, each
# with DataLoader's default prefetch_factor=2 of the suite's batches (benchbench.workloads).
DATALOADER_PREFETCH = 2
DATALOADER_BATCH_BYTES = IMAGE_BATCH_BYTES
OPEN_FILES_MIN = 4096
GPU_BUSY_BYTES = 1 << 30
LOADED_UTILIZATION_PCT = 50


@dataclass(frozen=True)
class Context:
    """What is about to run. None means "not known": assume it may run."""

    benchmark: bool = True  # measuring: debug switches that slow everything are failures
    suites: tuple[str, ...] | None = None
    backends: tuple[str, ...] | None = None
    available: tuple[str, ...] | None = None  # usable backends; run_checks fills it in from the facts

    def wants(self, backend: str) -> bool:
        """The user has not ruled this backend out (installation checks: why is it unusable?)."""
        return self.backends is None or backend in self.backends

    def runs(self, backend: str) -> bool:
        """This backend will be measured (state checks: is it in shape?)."""
        return self.wants(backend) and (self.available is None or backend in self.available)

    @property
    def dataloader_workers(self) -> bool:
        return self.suites is None or bool(DATALOADER_SUITES & set(self.suites))

    def as_dict(self) -> dict[str, Any]:
        def listed(x: tuple[str, ...] | None) -> list[str] | None:
            return list(x) if x is not None else None

        return {"benchmark": self.benchmark, "suites": listed(self.suites), "backends": listed(self.backends),
                "available": listed(self.available)}


def result(check_id: str, verdict: str, title: str, evidence: dict[str, Any], advice: str = "") -> dict[str, Any]:
    if verdict not in VERDICTS:
        raise ValueError(f"bad verdict {verdict!r}")
    return {"id": check_id, "verdict": verdict, "title": title, "evidence": evidence, "advice": advice}


def worst(verdicts: list[str]) -> str:
    return min(verdicts, key=VERDICTS.index) if verdicts else "pass"


def scoped(verdict: str, applies: bool) -> str:
    """A problem for a workload that is not about to run is only worth knowing."""
    return "info" if not applies and verdict in ("warn", "fail") else verdict


def _raw(f: dict[str, Any], group: str, key: str) -> Any:
    """A fact as stored, "unavailable: why" included (for evidence)."""
    node = f.get(group)
    return node.get(key) if isinstance(node, dict) else node


def _env(f: dict[str, Any]) -> dict[str, str]:
    env = f.get("env")
    return env if isinstance(env, dict) else {}


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false", "no", "off")


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _version(text: Any) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in str(text).split(".")[:2])
    except ValueError:
        return None


CHECKS: list[Callable[[dict[str, Any], Context], dict[str, Any]]] = []


def _register(fn: Callable[[dict[str, Any], Context], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    CHECKS.append(fn)
    return fn


# --- GPU presence and build ---------------------------------------------------------------------
def _gpu_presence(f: dict[str, Any]) -> dict[str, Any]:
    return {
        "nvidia_gpus": get(f, "gpu.nvidia_gpus", 0),
        "proc_driver_nvidia": bool(get(f, "gpu.proc_driver_nvidia.present", False)),
        "amd_kfd": bool(get(f, "gpu.amd_kfd", False)),
        "torch.version.cuda": get(f, "torch.cuda"),
        "torch.version.hip": get(f, "torch.hip"),
    }


def _nvidia(ev: dict[str, Any]) -> bool:
    return bool(ev["nvidia_gpus"]) or ev["proc_driver_nvidia"]


@_register
def gpu_cpu_only_build(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    ev = _gpu_presence(f)
    ev["torch"] = get(f, "torch.version")
    cid = "gpu-cpu-only-build"
    if _nvidia(ev) and not ev["torch.version.cuda"]:
        drv = get(f, "gpu.cuda_driver_version")
        up_to = f" (a CUDA version up to {drv}, which the driver supports)" if drv else ""
        what = "a ROCm build" if ev["torch.version.hip"] else "a CPU-only build"
        return result(cid, scoped("fail", ctx.wants("cuda")), f"NVIDIA GPU present but torch is {what}", ev,
                      f"install a CUDA build of torch{up_to}: pip install torch --index-url "
                      "https://download.pytorch.org/whl/cuXYZ (see pytorch.org/get-started)")
    if ev["amd_kfd"] and not _nvidia(ev) and not ev["torch.version.hip"]:
        return result(cid, scoped("fail", ctx.wants("cuda")),
                      "AMD GPU present (/dev/kfd) but torch is not a ROCm build", ev,
                      "install a ROCm build: pip install torch --index-url https://download.pytorch.org/whl/rocmX.Y")
    if _nvidia(ev) or ev["amd_kfd"]:
        return result(cid, "pass", "torch is built for the GPU present", ev)
    return result(cid, "pass", "no GPU found; a CPU-only torch build is fine here", ev)


@_register
def gpu_driver_too_old(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    cid = "gpu-driver-too-old"
    build = get(f, "torch.cuda")
    drv_raw = _raw(f, "gpu", "cuda_driver_version")
    ev = {"torch.version.cuda": build, "driver_version": get(f, "gpu.driver_version"),
          "driver_cuda_version": drv_raw, "cuda_available": get(f, "backends.cuda.available")}
    if not build or get(f, "torch.hip"):
        return result(cid, "pass", "torch is not a CUDA build: no driver requirement", ev)
    if not _nvidia(_gpu_presence(f)):
        return result(cid, "pass", "no NVIDIA driver or GPU: nothing to compare", ev)
    need, have = _version(build), _version(drv_raw) if not is_unavailable(drv_raw) else None
    if not have or not need:
        return result(cid, "info", "could not read which CUDA version the driver supports", ev,
                      "pip install 'benchbench[nvml]' (nvidia-ml-py) so the driver can be queried")
    if have >= need:
        return result(cid, "pass", f"driver supports CUDA {drv_raw}, torch needs {build}", ev)
    advice = (f"update the NVIDIA driver to one that supports CUDA {build}, or install a torch built for "
              f"CUDA {drv_raw} or older")
    if have[0] < need[0] or ev["cuda_available"] is False:
        return result(cid, scoped("fail", ctx.wants("cuda")),
                      f"driver supports CUDA {drv_raw}, older than torch's CUDA {build}", ev, advice)
    return result(cid, scoped("warn", ctx.wants("cuda")),
                  f"driver supports CUDA {drv_raw} < {build}: runs by minor-version compatibility only", ev,
                  advice + " (PTX JIT and the newest CUDA features will fail)")


@_register
def gpu_not_usable(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    cid = "gpu-not-usable"
    ev = _gpu_presence(f)
    ev["cuda_available"] = get(f, "backends.cuda.available")
    ev["reason"] = get(f, "backends.cuda.reason")
    ev["CUDA_VISIBLE_DEVICES"] = get(f, "env.CUDA_VISIBLE_DEVICES")
    built = (_nvidia(ev) and ev["torch.version.cuda"]) or (ev["amd_kfd"] and ev["torch.version.hip"])
    if not built:
        return result(cid, "pass", "no GPU with a matching torch build to use", ev)
    if ev["cuda_available"] is not False:
        return result(cid, "pass", "torch can use the GPU", ev)
    if ev["CUDA_VISIBLE_DEVICES"] is not None and ev["CUDA_VISIBLE_DEVICES"].strip() in ("", "-1"):
        return result(cid, "info", "CUDA_VISIBLE_DEVICES hides every GPU", ev,
                      "unset CUDA_VISIBLE_DEVICES to measure the GPU")
    return result(cid, scoped("fail", ctx.wants("cuda")), "a GPU is present but torch cannot use it", ev,
                  f"fix what the reason says: {ev['reason'] or 'see torch.cuda.is_available()'}")


@_register
def mps_not_usable(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    cid = "mps-not-usable"
    m = f.get("mps") if isinstance(f.get("mps"), dict) else {}
    ev = {k: m.get(k) for k in ("os", "python_machine", "hardware_arm64", "rosetta", "is_built", "is_available",
                                 "macos_version")}
    if ev["os"] != "darwin":
        return result(cid, "pass", "not macOS: MPS does not apply", ev)
    apple_silicon = ev["hardware_arm64"] is True or ev["python_machine"] == "arm64"
    if not apple_silicon:
        return result(cid, "pass", "Intel Mac: no Apple-silicon GPU", ev)
    verdict = scoped("fail", ctx.wants("mps"))
    if ev["rosetta"] is True or ev["python_machine"] == "x86_64":
        return result(cid, verdict, "x86-64 Python under Rosetta on Apple silicon: no MPS, slow CPU", ev,
                      "install an arm64 (native) Python, e.g. from python.org or `conda` for osx-arm64, then torch")
    if ev["is_built"] is False:
        return result(cid, verdict, "torch was built without MPS", ev,
                      "reinstall torch from the official macOS arm64 wheel: pip install --force-reinstall torch")
    if ev["is_available"] is False:
        torch_version = get(f, "torch.version")
        need = ".".join(map(str, mps_min_macos(torch_version)))
        ev["torch"], ev["macos_needed"] = torch_version, need
        macos = _version(ev["macos_version"]) if ev["macos_version"] else None
        if macos and macos < mps_min_macos(torch_version):
            return result(cid, verdict, f"macOS {ev['macos_version']} is too old for MPS with torch {torch_version}",
                          ev, f"torch {torch_version} runs MPS on macOS {need} or newer: update macOS, or "
                              "install an older torch")
        return result(cid, verdict, "torch is built with MPS but MPS is not available", ev,
                      f"this torch needs macOS {need} or newer for MPS; check `sw_vers` and that no virtual "
                      "machine hides the GPU")
    return result(cid, "pass", "MPS is built and available", ev)


# --- switches that slow everything ----------------------------------------------------------------
# name, backend it slows (None: all), verdict when measuring, what it does
DEBUG_SWITCHES: list[tuple[str, str | None, str, str]] = [
    ("CUDA_LAUNCH_BLOCKING", "cuda", "fail", "every CUDA launch waits for the GPU to finish"),
    ("HIP_LAUNCH_BLOCKING", "cuda", "fail", "every HIP launch waits for the GPU to finish"),
    ("AMD_SERIALIZE_KERNEL", "cuda", "fail", "ROCm serialises every kernel"),
    ("PYTORCH_NO_CUDA_MEMORY_CACHING", "cuda", "fail", "every allocation goes to cudaMalloc/cudaFree"),
    ("TORCH_COMPILE_DEBUG", None, "fail", "torch.compile writes debug traces for every graph"),
    ("anomaly_detection", None, "fail", "autograd anomaly detection checks every backward op"),
    ("TORCH_LOGS", None, "warn", "torch logging adds overhead to compilation"),
    ("DNNL_VERBOSE", "cpu", "warn", "oneDNN logs every primitive"),
    ("ONEDNN_VERBOSE", "cpu", "warn", "oneDNN logs every primitive"),
    ("CUDNN_LOGINFO_DBG", "cuda", "warn", "cuDNN API logging"),
    ("CUDNN_LOGLEVEL_DBG", "cuda", "warn", "cuDNN API logging"),
    ("CUBLAS_LOGINFO_DBG", "cuda", "warn", "cuBLAS API logging"),
    ("CUDA_CACHE_DISABLE", "cuda", "warn", "the CUDA JIT cache is off: kernels recompile every run"),
    ("TORCHINDUCTOR_FORCE_DISABLE_CACHES", None, "warn", "inductor caches are off: compile time inflates"),
]


@_register
def debug_switches(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    cid = "debug-switches"
    env = _env(f)
    active: dict[str, Any] = {}
    verdicts = []
    for name, backend, severity, what in DEBUG_SWITCHES:
        if name == "anomaly_detection":
            on = get(f, "debug.anomaly_detection") is True
            value: Any = True
        else:
            value = env.get(name)
            on = _truthy(value) and not (name.endswith("_DBG") and value.strip() == "0")
        if not on:
            continue
        active[name] = {"value": value, "effect": what}
        verdict = severity if ctx.benchmark else "warn"
        verdicts.append(scoped(verdict, backend is None or ctx.runs(backend)))
    ev = {"active": active, "checked": [s[0] for s in DEBUG_SWITCHES], "benchmark_mode": ctx.benchmark}
    if not active:
        return result(cid, "pass", "no debug switch that slows PyTorch is on", ev)
    names = ", ".join(active)
    return result(cid, worst(verdicts), f"debug switches on: {names}", ev,
                  f"unset {names} before measuring (they make every result slower than the machine is)")


# --- NVIDIA GPU state (NVML) ----------------------------------------------------------------------
def _nvml_devices(f: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, dict[str, Any] | None]:
    """(visible NVML devices, None) or (None, a pass/info result body when they cannot be checked)."""
    ev = _gpu_presence(f)
    nvml_facts = get(f, "gpu.nvml", {}) or {}
    if not _nvidia(ev):
        return None, {"verdict": "pass", "title": "no NVIDIA GPU", "evidence": {"nvidia_gpus": ev["nvidia_gpus"]}}
    devices = nvml_facts.get("devices") if nvml_facts.get("available") else None
    if not isinstance(devices, list):
        reason = nvml_facts.get("reason") or (devices if isinstance(devices, str) else "NVML gave no devices")
        return None, {"verdict": "info", "title": "not checked: NVML unavailable", "evidence": {"nvml": reason},
                      "advice": "pip install 'benchbench[nvml]' (nvidia-ml-py) to check clocks, power and PCIe"}
    return [d for d in devices if d.get("visible", True)], None


def _gpu_check(cid: str, f: dict[str, Any], ctx: Context,
               per_device: Callable[[dict[str, Any]], tuple[str, str, dict[str, Any], str]]) -> dict[str, Any]:
    """Judge the GPU torch measures (matched by UUID); other visible GPUs are listed, as info only.

    When the measured GPU is not known (torch cannot use CUDA, or gave no UUID), every visible GPU is
    judged and the worst one speaks.
    """
    devices, skip = _nvml_devices(f)
    if skip is not None:
        return result(cid, skip["verdict"], skip["title"], skip["evidence"], skip.get("advice", ""))
    findings = [(d, *per_device(d)) for d in devices or []]
    if not findings:
        return result(cid, "pass", "no GPU visible to torch", {"devices": []})
    judged = [x for x in findings if x[0].get("measured")] or findings
    verdict = worst([v for _, v, _, _, _ in judged])
    first = next(x for x in judged if x[1] == verdict)
    ev = {f"gpu{d['index']}": e for d, _, _, e, _ in judged}
    others = [x for x in findings if x not in judged]
    if others:
        ev["other_gpus"] = {f"gpu{d['index']}": {"verdict": scoped(v, False), "title": t, **e}
                            for d, v, t, e, _ in others}
    title = first[2] if len(judged) == 1 else f"GPU {first[0]['index']}: {first[2]}"
    if len(judged) == 1 and others:
        title = f"measured GPU {first[0]['index']}: {first[2]}"
    return result(cid, scoped(verdict, ctx.runs("cuda")), title, ev, first[4])


def _throttle(d: dict[str, Any]) -> tuple[str, str, dict[str, Any], str]:
    reasons = d.get("clock_event_reasons")
    ev = {k: d.get(k) for k in ("name", "clock_event_reasons", "clock_sm_mhz", "clock_sm_max_mhz",
                                "utilization_pct", "temperature_c", "power_draw_w", "power_limit_w")}
    if not isinstance(reasons, list):
        return "info", "clock event reasons unreadable", ev, ""
    slow = [r for r in reasons if r in SLOWDOWN_REASONS]
    if slow:
        return "fail", f"GPU is throttled: {', '.join(slow)}", ev, (
            "cool the GPU (airflow, fans, ambient) or fix its power delivery; results now understate it")
    if "sw_power_cap" in reasons:
        return "warn", "GPU clocks are held down by its power cap", ev, (
            "the GPU is at its power limit: check gpu-power-limit and whether something else loads it")
    sm, sm_max, util = d.get("clock_sm_mhz"), d.get("clock_sm_max_mhz"), d.get("utilization_pct")
    if (isinstance(sm, int) and isinstance(sm_max, int) and isinstance(util, int) and sm_max > 0
            and util >= LOADED_UTILIZATION_PCT and sm < 0.7 * sm_max and "applications_clocks_setting" not in reasons):
        return "warn", f"SM clock {sm} MHz is far below its {sm_max} MHz maximum under load", ev, (
            "look for thermal or power limits, or locked clocks (nvidia-smi -q -d PERFORMANCE)")
    return "pass", "GPU is not throttled", ev, ""


@_register
def gpu_throttled(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return _gpu_check("gpu-throttled", f, ctx, _throttle)


def _power(d: dict[str, Any]) -> tuple[str, str, dict[str, Any], str]:
    limit, default = d.get("power_limit_w"), d.get("power_default_limit_w")
    ev = {"name": d.get("name"), "power_limit_w": limit, "power_default_limit_w": default,
          "power_enforced_limit_w": d.get("power_enforced_limit_w")}
    if not isinstance(limit, (int, float)) or not isinstance(default, (int, float)):
        return "info", "power limits unreadable", ev, ""
    if limit < default - 1:
        return "warn", f"power limit {limit:.0f} W is below the default {default:.0f} W", ev, (
            f"restore it: sudo nvidia-smi -i {d.get('index', 0)} -pl {default:.0f} (or expect slower results)")
    return "pass", f"power limit {limit:.0f} W (default {default:.0f} W)", ev, ""


@_register
def gpu_power_limit(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return _gpu_check("gpu-power-limit", f, ctx, _power)


def _busy(d: dict[str, Any]) -> tuple[str, str, dict[str, Any], str]:
    procs = d.get("processes")
    used, total = d.get("memory_used_bytes"), d.get("memory_total_bytes")
    others = [p for p in procs if not p.get("self")] if isinstance(procs, list) else []
    own = sum(p.get("used_memory_bytes") or 0 for p in procs if p.get("self")) if isinstance(procs, list) else 0
    ev = {"name": d.get("name"), "other_processes": others, "memory_used_bytes": used, "memory_total_bytes": total,
          "memory_used_by_this_process_bytes": own, "utilization_pct": d.get("utilization_pct")}
    if isinstance(procs, str):
        ev["processes"] = procs
    threshold = max(GPU_BUSY_BYTES, 0.05 * total) if isinstance(total, int) else GPU_BUSY_BYTES
    foreign = used - own if isinstance(used, int) else 0
    if others:
        pids = ", ".join(f"{p['pid']}" + (f" ({p['name']})" if p.get("name") else "") for p in others[:5])
        return "warn", f"{len(others)} other process(es) use the GPU: {pids}", ev, (
            "stop them or use another GPU (CUDA_VISIBLE_DEVICES): shared GPUs give slower, noisier results")
    if foreign > threshold:
        return "warn", f"{foreign / 2**30:.1f} GiB of GPU memory is already in use", ev, (
            "something else holds GPU memory (another container?): results will be slower and noisier")
    return "pass", "no other process uses the GPU", ev, ""


@_register
def gpu_busy(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return _gpu_check("gpu-busy", f, ctx, _busy)


def _pcie(d: dict[str, Any]) -> tuple[str, str, dict[str, Any], str]:
    ev = {k: d.get(k) for k in ("name", "pcie_gen", "pcie_gen_max", "pcie_width", "pcie_width_max",
                                "utilization_pct")}
    gen, gen_max, width, width_max = (d.get(k) for k in ("pcie_gen", "pcie_gen_max", "pcie_width", "pcie_width_max"))
    if not all(isinstance(x, int) for x in (gen, gen_max, width, width_max)):
        return "info", "PCIe link unreadable (NVLink-only or virtualised GPU?)", ev, ""
    if gen >= gen_max and width >= width_max:
        return "pass", f"PCIe gen {gen} x{width} at its maximum", ev, ""
    title = f"PCIe link gen {gen} x{width}, below its maximum gen {gen_max} x{width_max}"
    util = d.get("utilization_pct")
    if isinstance(util, int) and util >= LOADED_UTILIZATION_PCT:
        return "warn", title + " under load", ev, (
            "reseat the GPU or check the slot/riser and BIOS PCIe settings: host-device copies will be slow")
    return "info", title + " (idle GPUs lower their link speed)", ev, (
        "normal while idle; if it stays low while busy, check the slot, riser and BIOS PCIe settings")


@_register
def gpu_pcie_link(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return _gpu_check("gpu-pcie-link", f, ctx, _pcie)


# --- CPU ------------------------------------------------------------------------------------------
@_register
def cpu_threads(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    cid = "cpu-threads"
    usable = _int(get(f, "cpu.usable_cpus"))
    tt = _int(get(f, "threads.torch_threads"))
    env = _env(f)
    ev = {"torch_threads": tt, "interop_threads": get(f, "threads.interop_threads"), "usable_cpus": usable,
          "logical_cpus": get(f, "cpu.logical_cpus"), "affinity_cpus": get(f, "cpu.affinity_cpus"),
          "cgroup_cpu_quota": get(f, "cpu.cgroup_cpu_quota"),
          **{k: env[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in env}}
    if usable is None or tt is None:
        return result(cid, "info", "could not compare thread counts with usable CPUs", ev)
    over = []
    if tt > usable:
        over.append(f"torch uses {tt} threads")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        n = _int(env.get(var))
        if n is not None and n > usable:
            over.append(f"{var}={n}")
    if over:
        return result(cid, scoped("warn", ctx.runs("cpu")),
                      f"{' and '.join(over)} on {usable} usable CPUs (oversubscribed)", ev,
                      f"set OMP_NUM_THREADS={usable} (torch counts the host's cores, not affinity or "
                      "container quota); oversubscribed threads wait on each other")
    if tt == 1 and usable > 1:
        return result(cid, "info", f"torch runs single-threaded on {usable} usable CPUs", ev,
                      "OMP_NUM_THREADS=1 (set by torchrun and some launchers) makes CPU results single-core")
    return result(cid, "pass", f"torch uses {tt} threads on {usable} usable CPUs", ev)


@_register
def openmp_runtimes(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    cid = "openmp-runtimes"
    runtimes = get(f, "threads.openmp_runtimes")
    if not isinstance(runtimes, list):
        return result(cid, "info", "could not list loaded OpenMP runtimes",
                      {"openmp_runtimes": _raw(f, "threads", "openmp_runtimes")})
    ev = {"openmp_runtimes": runtimes}
    if len(runtimes) > 1:
        kinds = ", ".join(r["runtime"] for r in runtimes)
        return result(cid, scoped("warn", ctx.runs("cpu")), f"{len(runtimes)} OpenMP runtimes loaded: {kinds}", ev,
                      "two thread pools fight over the cores: install numpy/scipy/torch from one source (all pip "
                      "or all conda); MKL_THREADING_LAYER=GNU helps with MKL+libgomp")
    return result(cid, "pass", f"{len(runtimes)} OpenMP runtime loaded", ev)


@_register
def shm_size(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    cid = "shm-size"
    total = get(f, "limits.shm_total_bytes")
    ev = {"shm_total_bytes": total, "shm_free_bytes": get(f, "limits.shm_free_bytes"),
          "container": get(f, "host.container"), "dataloader_workers": ctx.dataloader_workers}
    if not isinstance(total, int):
        ev["shm_total_bytes"] = _raw(f, "limits", "shm_total_bytes")
        return result(cid, "info", "/dev/shm size unknown", ev)
    workers = _int(get(f, "cpu.usable_cpus"))
    need = workers * DATALOADER_PREFETCH * DATALOADER_BATCH_BYTES if workers else None
    free = ev["shm_free_bytes"] if isinstance(ev["shm_free_bytes"], int) else total
    ev["dataloader_shm_need_bytes"] = need
    if need and min(total, free) < need:
        advice = ("run the container with --ipc=host or a larger --shm-size" if ev["container"]
                  else "free or enlarge /dev/shm: sudo mount -o remount,size=8G /dev/shm")
        what = "free" if free < total else "in all"
        return result(cid, "warn" if ctx.dataloader_workers else "info",
                      f"/dev/shm has {min(total, free) / 2**20:.0f} MiB {what}, less than the {need / 2**20:.0f} MiB "
                      f"that {workers} DataLoader workers (one per usable CPU, prefetch_factor={DATALOADER_PREFETCH}, "
                      f"{DATALOADER_BATCH_BYTES / 2**20:.0f} MiB batches) hold at once", ev, advice)
    if total < DATALOADER_MIN_SHM:
        if ev["container"]:
            advice = ("run the container with --ipc=host or --shm-size=8g (Kubernetes: an emptyDir with "
                      "medium: Memory at /dev/shm)")
        else:
            advice = "remount /dev/shm larger: sudo mount -o remount,size=8G /dev/shm"
        return result(cid, "warn" if ctx.dataloader_workers else "info",
                      f"/dev/shm is {total / 2**20:.0f} MiB: DataLoader workers will fail or crawl", ev, advice)
    return result(cid, "pass", f"/dev/shm is {total / 2**30:.1f} GiB", ev)


@_register
def open_files_limit(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    cid = "open-files-limit"
    soft, hard = get(f, "limits.open_files_soft"), get(f, "limits.open_files_hard")
    ev = {"open_files_soft": soft, "open_files_hard": hard}
    if is_unavailable(_raw(f, "limits", "open_files_soft")):
        ev["open_files_soft"] = _raw(f, "limits", "open_files_soft")
        return result(cid, "info", "open-file limit unknown", ev)
    if isinstance(soft, int) and soft < OPEN_FILES_MIN:
        if hard is None or (isinstance(hard, int) and hard >= OPEN_FILES_MIN):
            advice = f"raise it before running: ulimit -n {min(hard or 65536, 65536)}"
        else:
            advice = "raise the hard limit (docker --ulimit nofile=65536:65536, or /etc/security/limits.conf)"
        return result(cid, "warn", f"open-file limit {soft} is below {OPEN_FILES_MIN}", ev,
                      advice + "; DataLoader workers and compiled kernels open many files")
    return result(cid, "pass", f"open-file limit {soft if soft is not None else 'unlimited'}", ev)


@_register
def torch_debug_build(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    cid = "torch-debug-build"
    ev = {"torch.version.debug": get(f, "torch.debug"), "build_type": get(f, "torch.build_type"),
          "torch": get(f, "torch.version")}
    if ev["torch.version.debug"] is True or ev["build_type"] == "Debug":
        return result(cid, "warn", "torch is a Debug build", ev,
                      "install a Release build (the official wheels are); Debug builds are many times slower")
    return result(cid, "pass", f"torch is a {ev['build_type'] or 'release'} build", ev)


@_register
def precision_flags(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    p = f.get("precision") if isinstance(f.get("precision"), dict) else {}
    ev = dict(p)
    tf32_override = get(f, "env.NVIDIA_TF32_OVERRIDE")
    if tf32_override is not None:
        ev["NVIDIA_TF32_OVERRIDE"] = tf32_override

    def onoff(v: Any) -> str:
        return "on" if v is True else "off" if v is False else "?"

    title = (f"float32 matmul precision '{p.get('float32_matmul_precision')}'; TF32 matmul "
             f"{onoff(p.get('cuda_matmul_allow_tf32'))}, cuDNN TF32 {onoff(p.get('cudnn_allow_tf32'))}; "
             f"cudnn.benchmark {onoff(p.get('cudnn_benchmark'))}, deterministic "
             f"{onoff(p.get('cudnn_deterministic'))}")
    return result("precision-flags", "info", title, ev,
                  "these trade speed for numerics; they are in the fingerprint, so results taken with other "
                  "settings are not compared as regressions")


@_register
def cpu_governor(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    cid = "cpu-governor"
    gov = _raw(f, "cpu", "governors")
    ev = {"governors": gov, "frequency_mhz": get(f, "cpu.frequency_mhz"), "cpu_suites": ctx.runs("cpu")}
    if not isinstance(gov, list):
        return result(cid, "info", "CPU frequency governor not readable", ev)
    slow = [g for g in gov if g != "performance"]
    if slow:
        return result(cid, scoped("warn", ctx.runs("cpu")), f"CPU governor is {', '.join(gov)}, not performance", ev,
                      "sudo cpupower frequency-set -g performance (clocks ramp up late otherwise: noisy CPU results)")
    return result(cid, "pass", "CPU governor is performance", ev)


@_register
def on_battery(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    cid = "on-battery"
    p = f.get("power") if isinstance(f.get("power"), dict) else {}
    ev = dict(p)
    if p.get("on_battery") is True:
        return result(cid, scoped("warn", ctx.runs("cpu")), "running on battery", ev,
                      "plug in the charger: laptops lower CPU and GPU clocks on battery")
    if p.get("on_battery") is False:
        return result(cid, "pass", "on mains power" if p.get("battery") else "no battery", ev)
    return result(cid, "info", "power source unknown", ev)


@_register
def system_load(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    cid = "system-load"
    load, cpus = get(f, "cpu.load_average"), _int(get(f, "cpu.logical_cpus"))
    ev = {"load_average": load, "logical_cpus": cpus, "cpu_suites": ctx.runs("cpu")}
    if not isinstance(load, list) or not load or not cpus:
        return result(cid, "info", "load average unknown", ev)
    limit = 1 + 0.5 * cpus  # "1 +": this process itself
    ev["busy_above"] = limit
    if load[0] >= limit:
        return result(cid, scoped("warn", ctx.runs("cpu")), f"system is busy: load {load[0]} on {cpus} CPUs", ev,
                      "wait for other jobs to finish (or stop them): CPU results will be slow and noisy")
    return result(cid, "pass", f"load {load[0]} on {cpus} CPUs", ev)


@_register
def valgrind(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """`run --metric instructions` needs Valgrind; it is optional, so its absence is only worth knowing."""
    cid = "valgrind"
    v = f.get("valgrind")
    if not isinstance(v, dict):
        return result(cid, "info", "could not tell whether Valgrind is usable", {"valgrind": v})
    ev = {k: v.get(k) for k in ("usable", "path", "version", "reason", "torch_support")}
    if not v.get("usable"):
        return result(cid, "info", f"instruction counts unavailable: {v.get('reason')}", ev,
                      str(v.get("install") or "install Valgrind") + " to use `run --metric instructions`")
    if v.get("torch_support") is False:
        return result(cid, "info", f"Valgrind {v.get('version')} found, but this torch build has no Valgrind support",
                      ev, "instruction counts need torch's Valgrind toggles (official wheels have them)")
    return result(cid, "pass", f"Valgrind {v.get('version')}: `run --metric instructions` can count instructions", ev)


# --- running --------------------------------------------------------------------------------------
def run_checks(facts: dict[str, Any], context: Context | None = None) -> list[dict[str, Any]]:
    """Every check, in a stable order. A check that crashes becomes a warn result naming the bug."""
    ctx = context or Context()
    if ctx.available is None and isinstance(facts.get("backends"), dict):
        ctx = replace(ctx, available=tuple(name for name, b in facts["backends"].items()
                                           if isinstance(b, dict) and b.get("available")))
    out = []
    for fn in CHECKS:
        cid = fn.__name__.replace("_", "-")
        try:
            out.append(fn(facts, ctx))
        except Exception as exc:  # noqa: BLE001 - diagnostics must never take the command down
            out.append(result(cid, "warn", "check crashed (a benchbench bug)",
                              {"error": f"{type(exc).__name__}: {exc}"}, "please report it"))
    return out
