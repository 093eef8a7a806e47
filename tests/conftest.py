import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser):
    parser.addoption("--fake-backend", choices=("cuda", "mps"), default=None,
                     help="run the whole session as on a machine with this GPU kind usable: a fake backend of "
                          "that kind, computing on the CPU, answers every backends.discover() in this process")


def pytest_configure(config):
    kind = config.getoption("--fake-backend")
    if kind:
        from fakes import install_gpu_shaped_backend

        install_gpu_shaped_backend(kind)
        # and in every subprocess a test starts: see fake_backend_site/sitecustomize.py
        os.environ["BENCHBENCH_TEST_FAKE_BACKEND"] = kind
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT / "tests" / "fake_backend_site"), os.environ.get("PYTHONPATH", "")) if p)


def pytest_report_header(config):
    kind = config.getoption("--fake-backend")
    return f"fake usable backend: {kind} (tests/fakes.py gpu_shaped_backend)" if kind else None


# Set by GitHub Actions: gate commands append to it. Tests that mean it set it themselves.
CI_ONLY_ENV = ("GITHUB_STEP_SUMMARY",)


@pytest.fixture(autouse=True)
def _no_ci_step_summary(monkeypatch):
    """Under GitHub Actions the gate tests must not append to the job's real summary."""
    for name in CI_ONLY_ENV:
        monkeypatch.delenv(name, raising=False)


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300,
            check_rc: int | None = None) -> subprocess.CompletedProcess:
    """Run `python -m benchbench ARGS` as a user would; returns the completed process."""
    full_env = {**{k: v for k, v in os.environ.items() if k not in CI_ONLY_ENV}, "PYTHONUNBUFFERED": "1",
                **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), full_env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run([sys.executable, "-m", "benchbench", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    if check_rc is not None:
        assert proc.returncode == check_rc, f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.fixture
def write_suite(tmp_path):
    """Write a user suite file from source text and return its path."""

    def write(source: str, name: str = "user_suite.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return path

    return write


@pytest.fixture
def tf32_the_new_way():
    """TF32 for cuBLAS set the way PyTorch now recommends (torch >= 2.9), on the real torch; undone after."""
    import torch

    matmul = torch.backends.cuda.matmul
    if not hasattr(matmul, "fp32_precision"):
        pytest.skip(f"torch {torch.__version__} has no fp32_precision API")
    before = matmul.fp32_precision
    matmul.fp32_precision = "tf32"
    yield
    matmul.fp32_precision = before
