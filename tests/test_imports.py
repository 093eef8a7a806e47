"""Every module imports on its own in a fresh interpreter, no module imports another in a circle (not even
from inside a function), the analysis modules never import the output layer, and the core stays light."""

import ast
import subprocess
import sys

import pytest
from conftest import ROOT

MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for p in (ROOT / "benchbench").rglob("*.py") if p.name != "__main__.py"
)
# Modules the analysis layer is made of: they return data and never import the output layer.
ANALYSIS = ["benchbench.compare", "benchbench.gate", "benchbench.ceilings", "benchbench.canary", "benchbench.report",
            "benchbench.stats", "benchbench.history", "benchbench.changepoint", "benchbench.cost"]


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
    assert "benchbench.report" in graph["benchbench.peaks"]  # ... and type-only ones


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
    assert "benchbench.output" in MODULES and "benchbench.formats" in MODULES
    assert _run(code, timeout=600).strip() == ""


def test_import_benchbench_does_not_import_torch_or_pandas():
    out = _run("import sys, benchbench, benchbench.formats, benchbench.output.gate, benchbench.output.tables\n"
               "print(sorted(m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules))")
    assert out.strip() == "[]"


@pytest.mark.parametrize("module", ANALYSIS)
def test_analysis_modules_never_import_the_output_layer(module):
    out = _run(f"import sys, {module}\nprint(sorted(m for m in sys.modules if m.startswith('benchbench.output')))")
    assert out.strip() == "[]"


def test_test_modules_import_their_helpers_as_pytest_puts_them_on_the_path():
    """pytest puts tests/ on sys.path (rootdir conftest, no tests/__init__.py), not the repository root: under
    `cd tests && pytest` or tox, with benchbench installed, `import tests.conftest` fails and aborts the run."""
    helpers = {p.stem for p in (ROOT / "tests").glob("*.py") if not p.name.startswith("test_")}
    assert {"conftest", "fakes"} <= helpers
    wrong = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            wrong += [f"{path.name}: {n}" for n in names if n == "tests" or n.startswith("tests.")]
    assert wrong == []
