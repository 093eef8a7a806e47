"""The installed package must hold every subpackage and the built-in suites."""

from pathlib import Path

import pytest
from conftest import ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli, the same parser
    tomllib = pytest.importorskip("tomli", reason="Python 3.10 reads pyproject.toml with tomli (pip install '.[test]')")


def test_every_subpackage_is_declared():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(config["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "benchbench").rglob("__init__.py")}
    found |= {".".join(("benchbench", *p.parent.relative_to(ROOT).parts)) for p in (ROOT / "suites").rglob("__init__.py")}
    assert found - declared == set()  # the built-in suites' private packages too (suites/_dataloader)
    assert config["package-dir"]["benchbench.suites"] == "suites"
    assert (ROOT / "suites" / "__init__.py").exists()


def test_readme_commands_match_ci():
    readme = (ROOT / "README.md").read_text().splitlines()
    block = readme[readme.index("```bash") + 1:readme.index("```bash") + 3]
    test_cmd = block[1].split("#")[0].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd in ci
    assert "pytest" in test_cmd
    assert Path(ROOT / ".ci" / "run").stat().st_mode & 0o111


def test_the_test_command_installs_declared_extras_including_codecs():
    """CI installs the codecs extra, so the dataloader suite's TorchCodec tests run there, not skip."""
    import re

    ci = (ROOT / ".ci" / "run").read_text()
    extras = re.search(r'pip install "\.\[([\w,]+)\]"', ci).group(1).split(",")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "codecs" in extras and set(extras) <= set(declared)
    assert any(req.startswith("torchcodec>=") for req in declared["codecs"])
