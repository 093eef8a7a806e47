"""Carries `pytest --fake-backend KIND` into the subprocesses the tests start (the CLI, its workers).

conftest.py puts this folder first on PYTHONPATH and names the kind in BENCHBENCH_TEST_FAKE_BACKEND.
Python imports this module at start-up; it waits for benchbench.measure.backends to be imported (most processes
never do) and then makes the fake backend of that kind usable, as conftest does in the test process.
"""

import importlib.abc
import os
import sys
from pathlib import Path

_KIND = os.environ.get("BENCHBENCH_TEST_FAKE_BACKEND")
_TESTS = str(Path(__file__).resolve().parent.parent)


class _PatchBackendsOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "benchbench.measure.backends":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        exec_module = spec.loader.exec_module

        def exec_then_install(module):
            exec_module(module)
            if _TESTS not in sys.path:
                sys.path.append(_TESTS)
            loading = sys.modules.get("fakes")
            if loading is not None and not hasattr(loading, "install_gpu_shaped_backend"):
                # fakes itself imported backends, half-way through its own import: a pytest process (an
                # xdist worker, started with this environment) whose conftest installs the fake next
                return
            from fakes import install_gpu_shaped_backend

            install_gpu_shaped_backend(_KIND)

        spec.loader.exec_module = exec_then_install
        return spec


if _KIND:
    sys.meta_path.insert(0, _PatchBackendsOnImport())
