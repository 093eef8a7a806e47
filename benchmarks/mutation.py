"""Mutation testing of the decision code with mutmut: which small changes to compare, gate, changepoint,
stats, rounds, the session loop and the dataloader recommendation do the fast tests notice?

    python benchmarks/mutation.py                      # every module below; writes docs/mutation.md
    python benchmarks/mutation.py --only rounds        # some modules; their rows of the table only
    tox -e mutation                                    # the same, in a tox environment

It copies the tracked files of this repository into a scratch folder (mutmut writes its `mutants/`
tree and configuration there, never here), runs `mutmut run` with the module's own fast tests, and
writes the survivors into docs/mutation.md. A survivor is either killed by a new test or explained in
EXPLAINED below (equivalent: no test can tell it from the original). CPU heavy: minutes per module;
run it under `nice`, not in CI.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# module -> the fast tests that pin it
MODULES: dict[str, tuple[str, list[str]]] = {
    "compare": ("benchbench/compare.py", ["tests/test_compare.py"]),
    "gate": ("benchbench/gate.py", ["tests/test_gate.py"]),
    "changepoint": ("benchbench/changepoint.py", ["tests/test_changepoint.py"]),
    "stats": ("benchbench/stats.py", ["tests/test_stats.py"]),
    "rounds": ("benchbench/rounds.py", ["tests/test_rounds.py", "tests/test_session.py"]),
    "session": ("benchbench/session.py", ["tests/test_session.py"]),
}

# Survivors no test can kill, by mutmut's name, with why (kept by hand; the script lists any others).
# mutmut numbers the mutants of a function in source order: a change to that function renumbers them,
# so check these against `mutmut show NAME` after editing it.
_PRIOR = ("merge_round's record for an earlier result without round records: unreachable, since "
          "Result.__post_init__ gives every result with samples its round record (and an ok result has samples)")
_DEFAULT = "an argument the merged Result is given its default value anyway (None), or that is overwritten below"
EXPLAINED: dict[str, str] = {
    **{f"benchbench.rounds.x_merge_round__mutmut_{i}": _PRIOR for i in range(56, 70)},
    **{f"benchbench.rounds.x_merge_round__mutmut_{i}": _DEFAULT for i in (110, 116, 125, 128)},
}


def tracked_copy(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def configure(work: Path, module: str, tests: list[str]) -> None:
    (work / "setup.cfg").write_text(
        "[mutmut]\n"
        "source_paths = benchbench\n"
        f"only_mutate = {module}\n"
        "also_copy =\n    suites\n    benchmarks\n    reports\n"
        f"pytest_add_cli_args_test_selection =\n" + "".join(f"    {t}\n" for t in tests) +
        "pytest_add_cli_args =\n    -m\n    not slow\n    -p\n    no:cacheprovider\n    -q\n"
        "use_git_change_detection = False\n"
    )


def run_module(name: str, children: int) -> list[tuple[str, str]]:
    """(mutant, status) for every mutant of one module."""
    module, tests = MODULES[name]
    with tempfile.TemporaryDirectory(prefix=f"benchbench-mutation-{name}-") as tmp:
        work = Path(tmp)
        tracked_copy(work)
        configure(work, module, tests)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the mutants, not this tree
        subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(children)], cwd=work, env=env,
                       check=False)
        out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=work, env=env,
                             capture_output=True, text=True, check=False).stdout
    return re.findall(r"^\s*(\S+__mutmut_\d+): (\S.*)$", out, re.M)


def table(results: dict[str, list[tuple[str, str]]]) -> str:
    lines = ["| module | mutants | killed | survived | of them explained (equivalent) | killed of non-equivalent |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, rows in results.items():
        killed = sum(s == "killed" for _, s in rows)
        survived = [m for m, s in rows if s == "survived"]
        explained = [m for m in survived if m in EXPLAINED]
        judged = killed + len(survived) - len(explained)
        share = f"{100 * killed / judged:.0f}%" if judged else "-"
        lines.append(f"| {name} | {len(rows)} | {killed} | {len(survived)} | {len(explained)} | {share} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=sorted(MODULES), action="append", help="these modules only")
    ap.add_argument("--children", type=int, default=2, help="mutants tested at once")
    args = ap.parse_args()
    results = {name: run_module(name, args.children) for name in (args.only or MODULES)}
    survivors = [(n, m, EXPLAINED.get(m, "not explained: a test should kill it")) for n, rows in results.items()
                 for m, s in rows if s == "survived"]
    text = (f"Modules run: {', '.join(results)} (`python benchmarks/mutation.py"
            f"{''.join(f' --only {n}' for n in args.only or [])}`, mutmut).\n\n" + table(results)
            + "\n\nSurvivors (`mutmut show NAME` in the scratch copy prints the change):\n\n"
            + "\n".join(f"- `{m}` ({n}): {why}" for n, m, why in survivors) + "\n")
    print(text)
    doc = ROOT / "docs" / "mutation.md"
    head = doc.read_text().split(MARK)[0] if doc.exists() else "# Mutation testing\n\n"
    doc.parent.mkdir(exist_ok=True)
    doc.write_text(head + MARK + "\n" + text)


MARK = "<!-- written by benchmarks/mutation.py from here on -->"


if __name__ == "__main__":
    main()
