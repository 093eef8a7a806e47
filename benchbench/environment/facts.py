"""Environment facts, read in-process from torch, NVML, psutil, /proc and /sys (never by parsing the
output of a tool where an API exists).

`collect_facts()` never raises: a field that cannot be read holds "unavailable: why". Every read goes
through a module-level function here or in `nvml`, so tests replace the readers, not the hardware.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import benchbench.measure.cpus as cpu_facts
import benchbench.measure.nvml as nvml
from benchbench._version import __version__
from benchbench.kinds import is_gpu
from benchbench.measure.cpus import cgroup_cpu_quota
from benchbench.measure.dtypes import float32_precision
from benchbench.measure.nvml import is_unavailable, unavailable

# Environment variables that change how fast (or how) PyTorch runs. Only these are ever recorded: any
# other variable may hold a secret. Values are shown as set.
ENV_ALLOWLIST = (
    # threading
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
    "OMP_PROC_BIND", "OMP_PLACES", "OMP_SCHEDULE", "OMP_WAIT_POLICY", "GOMP_CPU_AFFINITY", "GOMP_SPINCOUNT",
    "KMP_AFFINITY", "KMP_BLOCKTIME", "KMP_DUPLICATE_LIB_OK", "MKL_THREADING_LAYER", "MKL_SERVICE_FORCE_INTEL",
    "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR",
    # CPU kernels and allocators
    "ATEN_CPU_CAPABILITY", "DNNL_MAX_CPU_ISA", "ONEDNN_MAX_CPU_ISA", "DNNL_VERBOSE", "ONEDNN_VERBOSE",
    "LD_PRELOAD", "MALLOC_CONF", "TCMALLOC_RELEASE_RATE",
    # CUDA / ROCm
    "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "CUDA_LAUNCH_BLOCKING", "CUDA_MODULE_LOADING",
    "CUDA_CACHE_DISABLE", "CUDA_DEVICE_MAX_CONNECTIONS", "CUBLAS_WORKSPACE_CONFIG", "CUBLASLT_WORKSPACE_SIZE",
    "NVIDIA_TF32_OVERRIDE", "CUDNN_LOGINFO_DBG", "CUDNN_LOGLEVEL_DBG", "CUBLAS_LOGINFO_DBG",
    "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_LAUNCH_BLOCKING", "AMD_SERIALIZE_KERNEL",
    "HSA_OVERRIDE_GFX_VERSION", "NCCL_DEBUG", "NCCL_P2P_DISABLE", "NCCL_IB_DISABLE",
    # PyTorch
    "PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_HIP_ALLOC_CONF", "PYTORCH_NO_CUDA_MEMORY_CACHING",
    "PYTORCH_ENABLE_MPS_FALLBACK", "PYTORCH_MPS_HIGH_WATERMARK_RATIO", "PYTORCH_DEBUG_MPS_ALLOCATOR",
    "TORCH_COMPILE_DEBUG", "TORCH_LOGS", "TORCH_SHOW_CPP_STACKTRACES", "TORCH_USE_CUDA_DSA",
    "TORCH_CUDNN_V8_API_DISABLED", "TORCH_BLAS_PREFER_HIPBLASLT", "TORCH_NCCL_BLOCKING_WAIT",
    "TORCHDYNAMO_DISABLE", "TORCHINDUCTOR_MAX_AUTOTUNE", "TORCHINDUCTOR_FREEZING", "TORCHINDUCTOR_CACHE_DIR",
    "TORCHINDUCTOR_FORCE_DISABLE_CACHES", "TORCH_COMPILE_DISABLE",
)

_OPENMP_LIB = re.compile(r"^lib(gomp|iomp5|iomp5md|omp)(?:-[0-9a-f]+)?\.(?:so|dylib)(?:\.\d+)*$")
DATALOADER_MIN_SHM = 1 << 30


# --- seams: tests replace these ---------------------------------------------------------------
def read_text(path: str) -> str:
    return Path(path).read_text(errors="replace")


def statvfs(path: str) -> Any:
    return os.statvfs(path)


def open_files_limit() -> tuple[int, int]:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)


def affinity() -> set[int]:
    return os.sched_getaffinity(0)


def loaded_libraries() -> list[str]:
    """Paths of the shared libraries mapped into this process."""
    if sys.platform.startswith("linux"):
        paths = []
        for line in read_text("/proc/self/maps").splitlines():
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].startswith("/"):
                paths.append(parts[5].strip())
        return list(dict.fromkeys(paths))
    if sys.platform == "darwin":
        libc = ctypes.CDLL(None)
        libc._dyld_get_image_name.restype = ctypes.c_char_p
        libc._dyld_get_image_name.argtypes = [ctypes.c_uint32]
        return [libc._dyld_get_image_name(i).decode(errors="replace") for i in range(libc._dyld_image_count())]
    raise OSError(f"no way to list loaded libraries on {sys.platform}")


def sysctl_int(name: str) -> int | None:
    """macOS sysctlbyname for an integer value; None when the name does not exist."""
    libc = ctypes.CDLL(None)
    value = ctypes.c_int(0)
    size = ctypes.c_size_t(ctypes.sizeof(value))
    if libc.sysctlbyname(name.encode(), ctypes.byref(value), ctypes.byref(size), None, ctypes.c_size_t(0)) != 0:
        return None
    return value.value


# --- helpers ----------------------------------------------------------------------------------
def safe(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """fn's value, or "unavailable: why" when it raises. What keeps every fact from crashing `env`."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001
        return unavailable(f"{type(exc).__name__}: {exc}")


def _group(**readers: Callable[[], Any]) -> dict[str, Any]:
    return {k: safe(fn) for k, fn in readers.items()}


def _git_commit(start: Path | None = None) -> str | None:
    """HEAD of the git repository around the working directory, read from .git without running git."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        dotgit = folder / ".git"
        if dotgit.is_file():  # worktree or submodule: "gitdir: <path>"
            target = dotgit.read_text().strip().removeprefix("gitdir:").strip()
            dotgit = (folder / target).resolve()
        if not dotgit.is_dir():
            continue
        head = (dotgit / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head or None
        ref = head[4:].strip()
        common = dotgit
        if (dotgit / "commondir").is_file():
            common = (dotgit / (dotgit / "commondir").read_text().strip()).resolve()
        for base in (dotgit, common):
            if (base / ref).is_file():
                return (base / ref).read_text().strip() or None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split()[0]
        return None
    return None


def parse_config(text: str) -> dict[str, Any]:
    """Highlights of torch.__config__.show(): the libraries that do the work and the build type."""
    out: dict[str, Any] = {}
    settings: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip().lstrip("-").strip()
        if line.startswith("Build settings:"):
            for item in line.split(":", 1)[1].split(", "):
                if "=" in item:
                    k, v = item.split("=", 1)
                    settings[k.strip()] = v.strip().rstrip(",").strip()
        elif "Math Kernel Library" in line:
            out["mkl"] = line
        elif "MKL-DNN" in line or "oneDNN" in line:
            out["onednn"] = line
        elif line.startswith("OpenMP"):
            out["openmp"] = line
        elif line.startswith("CPU capability usage:"):
            out["cpu_capability"] = line.split(":", 1)[1].strip()
        elif line.startswith("MIOpen") or line.startswith("HIP Runtime"):
            out[line.split()[0].lower()] = line
    out["build_type"] = settings.get("BUILD_TYPE", unavailable("no BUILD_TYPE in torch.__config__.show()"))
    out["blas"] = settings.get("BLAS_INFO")
    out["lapack"] = settings.get("LAPACK_INFO")
    out["use"] = {k: settings[k] for k in ("USE_CUDA", "USE_CUDNN", "USE_ROCM", "USE_MKL", "USE_MKLDNN",
                                           "USE_OPENMP", "USE_NCCL", "USE_MPS", "USE_XPU") if k in settings}
    return out


def parse_parallel_info(text: str) -> dict[str, str]:
    """torch.__config__.parallel_info() as {name: value}: at::get_num_threads() -> get_num_threads."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("ATen parallel backend:"):
            out["parallel_backend"] = line.split(":", 1)[1].strip()
        elif " : " in line:
            k, v = line.split(" : ", 1)
            k = re.sub(r"^(at::|std::thread::)", "", k.strip()).removesuffix("()")
            out[k] = v.strip()
    return out


def openmp_runtimes(paths: list[str]) -> list[dict[str, str]]:
    out = []
    seen = set()
    for p in paths:
        m = _OPENMP_LIB.match(os.path.basename(p))
        if m and p not in seen:
            seen.add(p)
            out.append({"runtime": {"gomp": "GNU libgomp", "omp": "LLVM libomp"}.get(m.group(1), "Intel libiomp5"),
                        "path": p})
    return out


# --- cgroups ----------------------------------------------------------------------------------
def cgroup_memory_limit() -> int | None:
    if not sys.platform.startswith("linux"):
        return None
    v2 = cpu_facts.cgroup_file("", "memory.max")
    if v2 and v2 != "max":
        return int(v2)
    v1 = cpu_facts.cgroup_file("memory", "memory.limit_in_bytes")
    if v1 and int(v1) < (1 << 60):  # v1 says "unlimited" with a huge number
        return int(v1)
    return None


# --- fact groups ------------------------------------------------------------------------------
def _libc() -> str:
    name, version = platform.libc_ver()
    if not name:
        raise OSError("not glibc (musl, macOS or Windows)")
    return f"{name} {version}".strip()


def _host() -> dict[str, Any]:
    return _group(
        os=lambda: f"{platform.system()} {platform.release()}",
        platform=platform.platform,
        machine=platform.machine,
        libc=_libc,
        container=lambda: any(os.path.exists(p) for p in ("/.dockerenv", "/run/.containerenv"))
        or "KUBERNETES_SERVICE_HOST" in os.environ,
    )


def _python() -> dict[str, Any]:
    return _group(version=platform.python_version, implementation=platform.python_implementation,
                  executable=lambda: sys.executable, machine=platform.machine)


def _torch(torch: Any) -> dict[str, Any]:
    cfg = safe(lambda: parse_config(torch.__config__.show()))
    out = _group(
        version=lambda: torch.__version__,
        git_version=lambda: getattr(torch.version, "git_version", None),
        debug=lambda: bool(torch.version.debug),
        cuda=lambda: torch.version.cuda,
        hip=lambda: getattr(torch.version, "hip", None),
        cudnn=lambda: _cudnn_version(torch),
    )
    if isinstance(cfg, dict):
        out.update(cfg)
    else:
        out["build_type"] = cfg
    return out


def _cudnn_version(torch: Any) -> str | None:
    if not torch.backends.cudnn.is_available():
        return None
    v = torch.backends.cudnn.version()
    if not v:
        return None
    # cuDNN 9 encodes major*10000 + minor*100 + patch; cuDNN 8 and older major*1000 + minor*100 + patch
    major, rest = (v // 10000, v % 10000) if v >= 90000 else (v // 1000, v % 1000)
    return f"{major}.{rest // 100}.{rest % 100}"


def _precision(torch: Any) -> dict[str, Any]:
    b = torch.backends
    # TF32 through torch's new fp32_precision API where it has one: once that is set, the legacy
    # reads raise (see benchbench.measure.dtypes.float32_precision).
    tf32 = float32_precision(torch)
    out = _group(
        float32_matmul_precision=lambda: _known(tf32["float32_matmul_precision"]),
        cuda_matmul_allow_tf32=lambda: _known(tf32["cuda_matmul_tf32"]),
        cudnn_allow_tf32=lambda: _known(tf32["cudnn_conv_tf32"]),
        cuda_matmul_fp16_reduced_precision_reduction=lambda: bool(
            b.cuda.matmul.allow_fp16_reduced_precision_reduction),
        cuda_matmul_bf16_reduced_precision_reduction=lambda: bool(
            b.cuda.matmul.allow_bf16_reduced_precision_reduction),
        cudnn_enabled=lambda: bool(b.cudnn.enabled),
        cudnn_benchmark=lambda: bool(b.cudnn.benchmark),
        cudnn_deterministic=lambda: bool(b.cudnn.deterministic),
        deterministic_algorithms=lambda: bool(torch.are_deterministic_algorithms_enabled()),
    )
    for key in ("fp32_precision", "cuda_matmul_fp32_precision", "cudnn_conv_fp32_precision"):
        if tf32[key] is not None:  # torch >= 2.9
            out[key] = tf32[key]
    return out


def _known(value: Any) -> Any:
    if value is None:
        raise RuntimeError("torch gave no readable value")
    return value


def _debug(torch: Any) -> dict[str, Any]:
    return _group(anomaly_detection=lambda: bool(torch.is_anomaly_enabled()))


def _threads(torch: Any) -> dict[str, Any]:
    return _group(
        torch_threads=torch.get_num_threads,
        interop_threads=torch.get_num_interop_threads,
        parallel_info=lambda: parse_parallel_info(torch.__config__.parallel_info()),
        openmp_runtimes=lambda: openmp_runtimes(loaded_libraries()),
    )


def _governors(cpus: Any) -> list[str]:
    ids = sorted(cpus) if isinstance(cpus, (set, list)) else range(os.cpu_count() or 1)
    found = []
    for i in ids:
        try:
            found.append(read_text(f"/sys/devices/system/cpu/cpu{i}/cpufreq/scaling_governor").strip())
        except OSError:
            continue
    if not found:
        raise OSError("no cpufreq governor in /sys (virtual machine, container, or not Linux)")
    return sorted(set(found))


def _cpu(backends: list[Any]) -> dict[str, Any]:
    import psutil

    model = next((b.device_name for b in backends if not is_gpu(getattr(b, "name", "")) and b.device_name), None)
    cpus = safe(affinity)
    out = _group(
        model=lambda: model or platform.processor() or platform.machine(),
        logical_cpus=os.cpu_count,
        physical_cores=lambda: psutil.cpu_count(logical=False),
        affinity_cpus=lambda: len(cpus) if isinstance(cpus, set) else cpus,
        cgroup_cpu_quota=cgroup_cpu_quota,
        frequency_mhz=lambda: _freq(psutil.cpu_freq()),
        governors=lambda: _governors(cpus),
        load_average=lambda: [round(x, 2) for x in os.getloadavg()],
    )
    def known(value: Any, kind: type | tuple[type, ...]) -> Any:
        return value if isinstance(value, kind) else None

    out["usable_cpus"] = cpu_facts.combine(known(out["affinity_cpus"], int), known(out["logical_cpus"], int),
                                           known(out["cgroup_cpu_quota"], (int, float)))
    return out


def _freq(f: Any) -> dict[str, Any]:
    if f is None:
        raise OSError("psutil.cpu_freq() gave nothing")
    return {"current": round(f.current), "min": round(f.min) or None, "max": round(f.max) or None}


def _memory() -> dict[str, Any]:
    import psutil

    vm = safe(psutil.virtual_memory)
    sw = safe(psutil.swap_memory)
    return _group(
        total_bytes=lambda: vm.total, available_bytes=lambda: vm.available,
        swap_total_bytes=lambda: sw.total, swap_used_bytes=lambda: sw.used,
        cgroup_limit_bytes=cgroup_memory_limit,
    )


def _power() -> dict[str, Any]:
    import psutil

    def battery() -> dict[str, Any]:
        if not hasattr(psutil, "sensors_battery"):
            raise OSError("psutil cannot read batteries here")
        b = psutil.sensors_battery()
        if b is None:
            return {"battery": False, "on_battery": False}
        return {"battery": True, "on_battery": b.power_plugged is False, "percent": round(b.percent)}

    r = safe(battery)
    return r if isinstance(r, dict) else {"on_battery": r}


def _limits() -> dict[str, Any]:
    def shm() -> dict[str, int]:
        if not sys.platform.startswith("linux"):
            raise OSError("no /dev/shm on this OS")
        st = statvfs("/dev/shm")
        return {"total": st.f_blocks * st.f_frsize, "free": st.f_bavail * st.f_frsize}

    nofile = safe(open_files_limit)
    s = safe(shm)
    inf = 2**63 - 1

    def lim(i: int) -> Any:
        if isinstance(nofile, str):
            return nofile
        return None if nofile[i] < 0 or nofile[i] >= inf else int(nofile[i])  # None: unlimited

    return {
        "open_files_soft": lim(0), "open_files_hard": lim(1),
        "shm_total_bytes": s["total"] if isinstance(s, dict) else s,
        "shm_free_bytes": s["free"] if isinstance(s, dict) else s,
    }


def _backends(backends: list[Any]) -> dict[str, Any]:
    return {b.name: {"available": b.available, "reason": b.reason, "device": b.device,
                     "device_name": b.device_name, "properties": dict(b.properties)} for b in backends}


def _mps(torch: Any) -> dict[str, Any]:
    mps = getattr(torch.backends, "mps", None)
    out = _group(
        is_built=lambda: bool(mps is not None and mps.is_built()),
        is_available=lambda: bool(mps is not None and mps.is_available()),
        os=lambda: sys.platform,
        python_machine=platform.machine,
        macos_version=lambda: platform.mac_ver()[0] or None,
    )
    if sys.platform == "darwin":
        # Under Rosetta an x86-64 Python reports x86_64: ask the kernel about the hardware instead.
        out["hardware_arm64"] = safe(lambda: sysctl_int("hw.optional.arm64") == 1)
        out["rosetta"] = safe(lambda: sysctl_int("sysctl.proc_translated") == 1)
    else:
        out["hardware_arm64"] = None
        out["rosetta"] = None
    return out


def _valgrind(torch: Any) -> dict[str, Any]:
    """Whether instruction counts can be taken here: Valgrind installed, torch built with its toggles."""
    from benchbench.measure.callgrind import valgrind_status

    out = valgrind_status().to_dict()
    supported = getattr(torch._C, "_valgrind_supported_platform", None)
    out["torch_support"] = safe(lambda: bool(supported())) if supported else False
    return out


def _cuda_uuids(backends: list[Any]) -> tuple[list[str | None] | None, str | None]:
    """(UUIDs of the GPUs torch sees, UUID of the one it measures), from the cuda backend's probe."""
    for b in backends:
        props = getattr(b, "properties", {}) or {}
        if getattr(b, "available", False) and "visible_uuids" in props:  # the NVIDIA (or ROCm) backend's probe
            return props.get("visible_uuids"), props.get("uuid")
    return None, None


def environment_variables(environ: dict[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    return {k: env[k] for k in ENV_ALLOWLIST if k in env}


def collect_facts(backends: list[Any]) -> dict[str, Any]:
    """Every fact, grouped. Never raises."""
    import torch

    env = environment_variables()
    facts: dict[str, Any] = {
        # top-level scalars (a stable contract: export and gate read hostname and git_commit)
        "hostname": safe(socket.gethostname),
        "git_commit": safe(_git_commit),
        "benchbench_version": __version__,
        "host": safe(_host),
        "python": safe(_python),
        "torch": safe(_torch, torch),
        "precision": safe(_precision, torch),
        "debug": safe(_debug, torch),
        "threads": safe(_threads, torch),
        "cpu": safe(_cpu, backends),
        "memory": safe(_memory),
        "power": safe(_power),
        "limits": safe(_limits),
        "gpu": safe(nvml.read_gpu, env, *_cuda_uuids(backends)),
        "backends": safe(_backends, backends),
        "mps": safe(_mps, torch),
        "valgrind": safe(_valgrind, torch),
        "env": env,
    }
    return facts


def get(facts: dict[str, Any], path: str, default: Any = None) -> Any:
    """facts["a"]["b"] for "a.b", or default when any step is missing or unavailable."""
    node: Any = facts
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return default if is_unavailable(node) else node
