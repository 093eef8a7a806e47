import pytest

from benchbench import Case, api, benchmark
from benchbench.errors import UserError
from benchbench.run import registry


@benchmark(params={"n": [1, 2], "k": ["a"]}, dtypes=["float32", "bfloat16"], modes=["eager", "compile"],
           profiles={"quick": {"n": [1], "mode": ["eager"]}}, overview={"n": [2], "dtype": ["float32"]})
def grid(ctx, n, k):
    """A grid benchmark.

    More text.
    """
    return Case(lambda: None)


def test_grid_expands_every_axis():
    b = grid
    keys = b.cases("cpu", "default")
    assert len(keys) == 2 * 1 * 2 * 2
    assert {(k.params_dict["n"], k.dtype, k.mode) for k in keys} == {
        (n, d, m) for n in (1, 2) for d in ("float32", "bfloat16") for m in ("eager", "compile")}
    assert all(k.backend == "cpu" for k in keys)
    assert b.description == "A grid benchmark."


def test_profile_overrides_and_overview():
    quick = grid.cases("cuda", "quick")
    assert {(k.params_dict["n"], k.mode) for k in quick} == {(1, "eager")}
    assert len(quick) == 2  # both dtypes
    ov = grid.cases("cpu", overview=True)
    assert [(k.params_dict["n"], k.dtype) for k in ov] == [(2, "float32"), (2, "float32")]  # both modes


def test_overview_true_takes_first_value_of_each_axis():
    @benchmark(params={"n": [3, 4]}, dtypes=["float16", "float32"], overview=True)
    def b(ctx, n):
        return Case(lambda: None)

    (key,) = b.cases("cpu", overview=True)
    assert key.params_dict == {"n": 3} and key.dtype == "float16"
    assert b.cases("cpu", overview=False) != []


def test_not_in_overview_by_default():
    @benchmark
    def plain(ctx):
        return Case(lambda: None)

    assert plain.cases("cpu", overview=True) == []
    assert len(plain.cases("cpu")) == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"params": {"dtype": ["float32"]}}, "axis of its own"),
    ({"params": {"n": []}}, "no values"),
    ({"params": {"n": [[1, 2]]}}, "must be a str"),
    ({"profiles": {"turbo": {"n": [1]}}}, "unknown profile"),
])
def test_bad_declarations_fail_at_import(kwargs, message):
    with pytest.raises(ValueError, match=message):
        benchmark(**kwargs)(lambda ctx: Case(lambda: None))


def test_backends_declaration_gives_a_skip_reason():
    @benchmark(backends=("cuda", "mps"))
    def gpu_only(ctx):
        return Case(lambda: None)

    assert gpu_only.unsupported_reason("cpu") == "gpu_only runs on cuda, mps only"
    assert gpu_only.unsupported_reason("cuda") is None


def test_definition_hash_follows_the_source(write_suite):
    a = write_suite("from benchbench import Case, benchmark\n@benchmark\ndef f(ctx):\n    return Case(lambda: 1)\n",
                    "a.py")
    b = write_suite("from benchbench import Case, benchmark\n@benchmark\ndef f(ctx):\n    return Case(lambda: 2)\n",
                    "b.py")
    ha = registry.load_paths([str(a)])[0].benchmarks[0].definition_hash
    hb = registry.load_paths([str(b)])[0].benchmarks[0].definition_hash
    assert ha.startswith("sha256:") and ha != hb


def test_registry_finds_builtin_and_user_suites(write_suite):
    path = write_suite("SUITE = 'mine'\nfrom benchbench import Case, benchmark\n"
                       "@benchmark\ndef f(ctx):\n    return Case(lambda: 1)\n")
    suites = registry.discover([str(path)])
    names = [s.name for s in suites]
    assert "tensor_ops" in names and "mine" in names
    mine = registry.discover([str(path)], ["mine"])[0]
    assert mine.benchmarks[0].suite == "mine"
    assert mine.benchmark("f").name == "f"
    with pytest.raises(UserError, match="unknown suite nope"):
        registry.discover(None, ["nope"])


def test_registry_errors_are_one_line(write_suite, tmp_path):
    broken = write_suite("import does_not_exist\n", "broken.py")
    with pytest.raises(UserError, match="failed to import: ModuleNotFoundError"):
        registry.load_paths([str(broken)])
    empty = write_suite("x = 1\n", "empty.py")
    with pytest.raises(UserError, match="no @benchmark functions"):
        registry.load_paths([str(empty)])
    with pytest.raises(UserError, match="no such file or folder"):
        registry.load_paths([str(tmp_path / "missing.py")])


HELPERS = '''
from benchbench import Case, benchmark

SIZES = {"small": {small}, "large": 64}
TAGS = {tags}


def build(n):
    return [0] * n * {factor}


class Model:
    def forward(self):
        return build(1)


@benchmark
def uses_helpers(ctx):
    Model().forward()
    return Case(lambda: build(SIZES["small"]), items=len(TAGS))


@benchmark
def other(ctx):
    return Case(lambda: {other})
'''


def _hash(write_suite, name, **fmt):
    fmt = {"factor": 1, "other": 1, "small": 8, "tags": '{"a", "b", "c"}', **fmt}
    source = HELPERS
    for name_, value in fmt.items():
        source = source.replace("{" + name_ + "}", str(value))
    path = write_suite(source, f"{name}.py")
    suite = registry.load_paths([str(path)])[0]
    return suite.benchmark("uses_helpers").definition_hash


def test_definition_hash_covers_helpers_and_constants_it_uses(write_suite):
    base = _hash(write_suite, "h0")
    assert _hash(write_suite, "h1") == base  # same source, another file: same definition
    assert _hash(write_suite, "h2", factor=2) != base  # a helper it calls changed
    assert _hash(write_suite, "h3", other=2) == base  # another benchmark in the file changed
    assert _hash(write_suite, "h4", small=9) != base  # a constant it reads changed
    assert _hash(write_suite, "h5", tags='{"a", "b", "d"}') != base  # a set constant it reads changed
    assert _hash(write_suite, "h6", tags='{"c", "a", "b"}') == base  # the same set, written in another order


def test_definition_hash_is_stable_across_processes(write_suite):
    import subprocess
    import sys

    tags = "{" + ", ".join(f'"tag{i}"' for i in range(40)) + "}"  # 40! orders: seeds cannot agree by luck
    source = (HELPERS.replace("{factor}", "1").replace("{other}", "1").replace("{small}", "8")
              .replace("{tags}", tags))
    path = write_suite(source, "stable.py")
    code = ("import sys; from benchbench.run import registry; "
            f"print(registry.load_paths([{str(path)!r}])[0].benchmark('uses_helpers').definition_hash)")
    hashes = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**__import__("os").environ, "PYTHONHASHSEED": seed}).stdout
              for seed in ("1", "2", "3")}
    assert len(hashes) == 1


PLACED = """
import os
from benchbench import Case, benchmark

DATA = os.path.join(os.path.dirname(__file__), "inputs", "table.bin")
LIMIT = 4


def m_helper(n):  # its name sorts between module names that start with a..., z...
    return min(n, LIMIT)


@benchmark
def placed(ctx):
    return Case(lambda: (m_helper(8), DATA))
"""


def test_definition_hash_does_not_depend_on_where_the_suite_lives(tmp_path):
    import importlib.util

    hashes = set()
    for folder in ("first", "second/deeper"):
        path = tmp_path / folder / "placed_suite.py"
        path.parent.mkdir(parents=True)
        path.write_text(PLACED)
        hashes.add(registry.load_paths([str(path)])[0].benchmark("placed").definition_hash)
        # the same file under other module names, as in an installed package vs a source tree
        for modname in (f"a_{len(hashes)}_suite", f"z_{len(hashes)}_suite"):
            spec = importlib.util.spec_from_file_location(modname, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            hashes.add(module.placed.definition_hash)
    assert len(hashes) == 1
    changed = tmp_path / "third" / "placed_suite.py"
    changed.parent.mkdir()
    changed.write_text(PLACED.replace('"table.bin"', '"other.bin"'))
    assert registry.load_paths([str(changed)])[0].benchmark("placed").definition_hash not in hashes


HELPED = """
from benchbench import Case, benchmark

from ._parts.model import build
from . import _flat


@benchmark
def helped(ctx):
    return Case(lambda: build(2) + _flat.offset(1))
"""
MODEL = """
SCALE = {scale}


def build(n):
    return _grow(n) * SCALE


def _grow(n):
    return n + {grow}


def unrelated():
    return {unrelated}
"""
FLAT = """
def offset(n):
    return n + {offset}


def unused():
    return {unused}
"""


def _helped_folder(root, scale=3, grow=1, unrelated=0, offset=1, unused=0):
    """A suite folder whose suite imports its private helpers: a `_parts/` package and a `_flat.py` file."""
    (root / "_parts").mkdir(parents=True)
    (root / "_parts" / "__init__.py").write_text("")
    (root / "_parts" / "model.py").write_text(MODEL.format(scale=scale, grow=grow, unrelated=unrelated))
    (root / "_flat.py").write_text(FLAT.format(offset=offset, unused=unused))
    (root / "helped.py").write_text(HELPED)
    return root / "helped.py"


def _helped_hash(path):
    return registry.load_paths([str(path)])[0].benchmark("helped").definition_hash


def test_definition_hash_follows_the_suites_private_helper_modules(tmp_path):
    base = _helped_hash(_helped_folder(tmp_path / "a"))
    assert _helped_hash(_helped_folder(tmp_path / "b")) == base  # the same code in another folder
    assert _helped_hash(_helped_folder(tmp_path / "c", grow=2)) != base  # a helper the helper calls
    assert _helped_hash(_helped_folder(tmp_path / "d", scale=4)) != base  # a constant in the helper module
    assert _helped_hash(_helped_folder(tmp_path / "e", offset=2)) != base  # used as `_flat.offset`
    assert _helped_hash(_helped_folder(tmp_path / "f", unrelated=1)) == base  # an unrelated helper
    assert _helped_hash(_helped_folder(tmp_path / "g", unused=1)) == base  # another function of the module


def _as_package(folder, root, package):
    """The suite folder copied to be imported as `package.suites` (the installed layout), as a module name."""
    import shutil
    import sys

    target = root / package / "suites"
    shutil.copytree(folder, target, ignore=shutil.ignore_patterns("__pycache__"))
    (root / package / "__init__.py").write_text("")
    (target / "__init__.py").write_text("")
    sys.path.insert(0, str(root))
    return f"{package}.suites"


def test_definition_hash_is_the_same_in_the_source_tree_and_installed(tmp_path, monkeypatch):
    import sys

    monkeypatch.setattr(sys, "path", list(sys.path))
    path = _helped_folder(tmp_path / "tree" / "suites")
    prefix = _as_package(path.parent, tmp_path / "site", "installed_helped")
    installed = registry.load_source({"module": f"{prefix}.helped"}).benchmark("helped")
    assert installed.setup.__module__ == f"{prefix}.helped"  # really imported as a package
    assert installed.definition_hash == _helped_hash(path)


def test_builtin_suites_hash_alike_by_path_and_as_a_package(tmp_path, monkeypatch):
    """The built-in dataloader suite (with its private `_dataloader` package) loaded as the source tree loads
    it (by path), as `suites.dataloader`, and copied to be imported as an installed package."""
    import sys

    from conftest import ROOT

    monkeypatch.setattr(sys, "path", [str(ROOT), *sys.path])  # `suites` from the source tree, also under tox
    by_path = registry.load_paths([str(ROOT / "suites" / "dataloader.py")])[0]
    prefix = _as_package(ROOT / "suites", tmp_path / "site", "installed_copy")
    for other in (registry.load_source({"module": "suites.dataloader"}),
                  registry.load_source({"module": f"{prefix}.dataloader"})):
        assert {b.name: b.definition_hash for b in other.benchmarks} == {
            b.name: b.definition_hash for b in by_path.benchmarks}
    sources = "\n".join(api._definition_sources(by_path.benchmark("jpeg_pipeline").setup))
    assert "def time_loader(" in sources and "def make_dataset(" in sources  # helpers moved out stay inside
