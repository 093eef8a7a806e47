"""Every module imports on its own in a fresh interpreter, no module imports another in a circle (not even
from inside a function), every package imports only the layers below it, the analysis layer loads no torch,
and the core stays light."""

import ast
import subprocess
import sys

from conftest import ROOT

MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for p in (ROOT / "benchbench").rglob("*.py") if p.name != "__main__.py"
)
# The layers, bottom first: a module may import its own package and the packages before it, and the leaves.
LAYERS = ["model", "metrics", "measure", "environment", "api", "page", "analysis", "run", "output", "commands"]
# Modules every layer may import: they import nothing of benchbench but each other.
LEAVES = {"errors", "kinds", "_version", "interrupts", "worktree", "workloads"}
# Entry points and the package itself stand above every layer (`python -m benchbench.worker` and friends are
# started by name in other checkouts too, so they stay where they are).
TOP = {"benchbench", "__main__", "cli", "frame", "worker", "profile_worker", "validate_worker"}
# Arrows against the order, each with its reason. Keep this short.
UPWARD = {
    # The instruction metric declares how its cases run (under Valgrind): its worker options name callgrind's,
    # imported inside the functions that build them, so reading a report never loads it.
    ("benchbench.metrics.instruction_counts", "benchbench.measure.callgrind"),
    ("benchbench.metrics.instruction_counts", "benchbench.measure"),
}
ANALYSIS = sorted(m for m in (
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for p in (ROOT / "benchbench" / "analysis").rglob("*.py")))


def _imported(module: str) -> set[str]:
    """benchbench modules this module imports anywhere: function bodies and `if TYPE_CHECKING:` blocks
    included (a type-only import is still a dependency: a circle through it is a circle in the design). A
    submodule importing its own package is no cycle: Python imports the package first anyway."""
    path = ROOT.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    names: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    ancestors = {module.rsplit(".", i)[0] for i in range(1, module.count(".") + 1)}
    return {n for n in names if n in MODULES and n not in ancestors and n != module}


def test_no_import_cycles_even_through_imports_inside_functions():
    graph = {m: _imported(m) for m in MODULES}
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(" -> ".join(path[path.index(n):] + [n]))
            elif n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in MODULES:
        if m not in state:
            visit(m, [m])
    assert cycles == []
    assert "benchbench.output.comparison" in graph["benchbench.output.gate"]  # the walk sees imports
    assert "benchbench.model.report" in graph["benchbench.measure.peaks"]  # ... and type-only ones


def _layer(module: str) -> str:
    parts = module.split(".")
    return "benchbench" if len(parts) == 1 else parts[1]


def test_every_package_imports_only_the_layers_below_it():
    """Counted like the circles: imports inside functions and type-only ones are arrows too."""
    assert set(LAYERS) | LEAVES | TOP >= {_layer(m) for m in MODULES}, "a new package or module needs a layer"
    wrong = []
    for m in MODULES:
        a = _layer(m)
        if a in TOP:
            continue
        for n in sorted(_imported(m)):
            b = _layer(n)
            if b in LEAVES or (m, n) in UPWARD:
                continue
            if a in LEAVES or b in TOP or LAYERS.index(b) > LAYERS.index(a):
                wrong.append(f"{m} -> {n}")
    assert wrong == []
    assert {_layer(n) for n in _imported("benchbench.run.session")} >= {"model", "measure", "environment"}


def _run(code: str, timeout: float = 120) -> str:
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_every_module_imports_alone_in_a_fresh_interpreter():
    # One interpreter per module: a cycle only shows when its module is the first one imported.
    # Four at a time: about a hundred interpreters, half of them importing torch.
    code = ("import subprocess, sys\n"
            "from concurrent.futures import ThreadPoolExecutor\n"
            f"mods = {MODULES!r}\n"
            "def one(m):\n"
            "    p = subprocess.run([sys.executable, '-c', 'import ' + m], capture_output=True, text=True)\n"
            "    return m + ': ' + p.stderr.strip().splitlines()[-1] if p.returncode else None\n"
            "with ThreadPoolExecutor(4) as pool:\n"
            "    bad = [b for b in pool.map(one, mods) if b]\n"
            "print('\\n'.join(bad))\n")
    assert "benchbench.output" in MODULES and "benchbench.model.formats" in MODULES
    assert _run(code, timeout=600).strip() == ""


def test_import_benchbench_does_not_import_torch_or_pandas():
    out = _run("import sys, benchbench, benchbench.model.formats, benchbench.output.gate, benchbench.output.tables\n"
               "print(sorted(m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules))")
    assert out.strip() == "[]"


def test_the_analysis_layer_loads_no_torch_and_nothing_that_measures():
    """Comparing reports must work where torch is not installed (a CI step that only gates stored reports)."""
    assert "benchbench.analysis.compare" in ANALYSIS and len(ANALYSIS) >= 10
    out = _run(f"import sys, benchbench.analysis, {', '.join(ANALYSIS)}\n"
               "print(sorted(m for m in sys.modules if m in ('torch', 'numpy.random', 'benchbench.api')\n"
               "             or m.startswith(('benchbench.output', 'benchbench.run', 'benchbench.measure.engine',\n"
               "                              'benchbench.measure.backends', 'benchbench.environment.checks'))))")
    assert out.strip() == "[]"


def test_test_modules_import_their_helpers_as_pytest_puts_them_on_the_path():
    """pytest puts tests/ on sys.path (rootdir conftest, no tests/__init__.py), not the repository root: under
    `cd tests && pytest` or tox, with benchbench installed, `import tests.conftest` fails and aborts the run. The
    same holds for the built-in suites' folder: a test loads a suite through the registry, never `import suites`."""
    helpers = {p.stem for p in (ROOT / "tests").glob("*.py") if not p.name.startswith("test_")}
    assert {"conftest", "fakes"} <= helpers
    wrong = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            wrong += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("tests", "suites")]
    assert wrong == []
