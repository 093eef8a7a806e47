"""Finding suites: the built-in ones shipped as `benchbench.suites`, and users' files or folders.

A suite is a module; its benchmarks are the `Benchmark` objects (made by `@benchmark`) found on it.
Nothing registers itself in global state: loading a module is all it takes. The `source` of a suite
is how a worker process finds the same module again.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from benchbench.api import Benchmark
from benchbench.errors import UserError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Suite:
    name: str
    source: dict[str, str]  # {"module": dotted name} or {"path": file}
    module: ModuleType
    benchmarks: list[Benchmark] = field(default_factory=list)
    description: str = ""

    def benchmark(self, name: str) -> Benchmark:
        for b in self.benchmarks:
            if b.name == name:
                return b
        raise UserError(f"suite {self.name!r} has no benchmark {name!r}")


def _collect(module: ModuleType, default_name: str, source: dict[str, str]) -> Suite:
    name = getattr(module, "SUITE", None) or default_name
    benches = []
    for attr in vars(module).values():
        if isinstance(attr, Benchmark):
            benches.append(attr)
    # the registry owns the suite name: benchmarks learn it here, not at decoration time
    from dataclasses import replace

    benches = [replace(b, suite=name) for b in benches]
    doc = (module.__doc__ or "").strip().splitlines()
    return Suite(name=name, source=source, module=module, benchmarks=benches, description=doc[0] if doc else "")


def _builtin_locations() -> list[tuple[str, Path | None]]:
    """(module prefix, folder) of the built-in suites: installed package first, source tree second."""
    spec = importlib.util.find_spec("benchbench.suites")
    if spec is not None and spec.submodule_search_locations:
        return [("benchbench.suites", None)]
    tree = Path(__file__).resolve().parents[2] / "suites"
    return [("", tree)] if tree.is_dir() else []


def builtin_suites() -> list[Suite]:
    out = []
    for prefix, folder in _builtin_locations():
        if folder is None:
            pkg = importlib.import_module(prefix)
            names = sorted(p.stem for loc in pkg.__path__ for p in Path(loc).glob("*.py") if not p.stem.startswith("_"))
            for stem in names:
                out.append(load_source({"module": f"{prefix}.{stem}"}))
        else:
            for path in sorted(folder.glob("*.py")):
                if not path.stem.startswith("_"):
                    out.append(load_source({"path": str(path)}))
    return out


def _folder_package(folder: Path) -> str:
    """The name of a package made for a suite file's folder, so that the suite can import its private
    helpers relatively (`from ._helpers import x`), as the built-in suites do in `benchbench.suites`. The
    package runs no code of the folder (no `__init__.py`): it only tells imports where to look."""
    name = f"benchbench_user_suite_{re.sub(r'[^A-Za-z0-9_]', '_', str(folder))}"
    if name not in sys.modules:
        package = ModuleType(name, f"suites in {folder}")
        package.__path__ = [str(folder)]
        package.__package__ = name
        sys.modules[name] = package
    return name


def builtin_modules(names: list[str]) -> dict[str, ModuleType]:
    """The modules of the built-in suites with these names (others are left out), loading only those: what
    the report page asks for a suite's own blocks (benchbench/page.py). A suite that fails to import is left
    out too: a report stays readable without its suite's extras."""
    out: dict[str, ModuleType] = {}
    for prefix, folder in _builtin_locations():
        for name in names:
            if not _NAME.match(name) or name.startswith("_"):
                continue
            try:
                if folder is None:
                    out[name] = importlib.import_module(f"{prefix}.{name}")
                elif (folder / f"{name}.py").is_file():
                    out[name] = _load_path(folder / f"{name}.py")
            except (ImportError, UserError):
                continue
    return out


def _load_path(path: Path) -> ModuleType:
    if not path.is_file():
        raise UserError(f"suite file not found: {path}")
    modname = f"{_folder_package(path.resolve().parent)}.{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}"
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise UserError(f"cannot load suite file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[modname]
        raise UserError(f"suite file {path} failed to import: {type(exc).__name__}: {exc}") from None
    return module


def load_source(source: dict[str, Any]) -> Suite:
    if "module" in source:
        name = source["module"]
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            raise UserError(f"suite module {name} failed to import: {type(exc).__name__}: {exc}") from None
        return _collect(module, name.rsplit(".", 1)[-1], {"module": name})
    path = Path(source["path"]).resolve()
    return _collect(_load_path(path), path.stem, {"path": str(path)})


def load_paths(paths: list[str]) -> list[Suite]:
    """Users' suites: each path is a .py file or a folder of them."""
    out = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files = sorted(f for f in p.glob("*.py") if not f.stem.startswith("_"))
            if not files:
                raise UserError(f"--suite-path {raw}: no .py files in that folder")
            out.extend(load_source({"path": str(f)}) for f in files)
        elif p.is_file():
            out.append(load_source({"path": str(p)}))
        else:
            raise UserError(f"--suite-path {raw}: no such file or folder")
    for s in out:
        if not s.benchmarks:
            raise UserError(f"{s.source.get('path')}: no @benchmark functions found")
    return out


def discover(suite_paths: list[str] | None = None, names: list[str] | None = None) -> list[Suite]:
    """Built-in suites plus users', optionally narrowed to `names` (unknown names are an error)."""
    suites = builtin_suites() + load_paths(suite_paths or [])
    seen: dict[str, Suite] = {}
    for s in suites:
        if not _NAME.match(s.name):
            raise UserError(f"suite name {s.name!r} is not an identifier")
        seen[s.name] = s  # a user's suite of the same name replaces the built-in one
    if names:
        unknown = [n for n in names if n not in seen]
        if unknown:
            raise UserError(f"unknown suite {', '.join(unknown)} (known: {', '.join(sorted(seen))})")
        return [seen[n] for n in names]
    return list(seen.values())
