"""Source trees of git commits: the repository around a folder, whether a ref names a commit, and a temporary
`git worktree` of one (removed whatever the exit), with what a worker needs to run from it (its PYTHONPATH,
and where its suites are). `ab --baseline-ref`, `bisect` and `gate --profile-regressions` use them.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchbench.errors import UserError


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        raise UserError("--baseline-ref needs git, which is not installed") from None


def repo_root(cwd: Path | None = None) -> Path:
    cwd = Path(cwd or Path.cwd())
    proc = _git(["rev-parse", "--show-toplevel"], cwd)
    if proc.returncode != 0:
        raise UserError(f"--baseline-ref: {cwd} is not inside a git repository")
    return Path(proc.stdout.strip()).resolve()


def has_commit(ref: str, root: Path) -> bool:
    """Whether `ref` names a commit of the repository at `root`."""
    return _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], root).returncode == 0


@contextlib.contextmanager
def source_tree(ref: str, root: Path, name: str = "baseline") -> Iterator[Path]:
    """A temporary `git worktree add --detach` of `ref`, removed (`git worktree remove --force`) on exit,
    whatever the exit: an error, Ctrl-C or SIGTERM (turned into KeyboardInterrupt by the session).
    `name` is the worktree's folder (what `git worktree list` shows): the side or role it is checked out for."""
    if not has_commit(ref, root):
        raise UserError(f"--baseline-ref {ref}: no such commit, branch or tag in {root} "
                        "(in CI, check out with fetch-depth: 0)")
    parent = Path(tempfile.mkdtemp(prefix="benchbench-ab-"))
    tree = parent / name
    try:
        proc = _git(["worktree", "add", "--detach", str(tree), ref], root)
        if proc.returncode != 0:
            raise UserError(f"--baseline-ref {ref}: git worktree add failed: {proc.stderr.strip().splitlines()[-1:]}")
        yield tree
    finally:
        # only this worktree: `git worktree prune` would also unregister the user's own worktrees whose
        # folder is absent at the moment (an unmounted drive); `remove --force` works on a missing folder
        _git(["worktree", "remove", "--force", str(tree)], root)
        shutil.rmtree(parent, ignore_errors=True)


def tree_pythonpath(tree: Path) -> tuple[str, ...]:
    """What goes first on PYTHONPATH for a source tree: `src/` (a src layout) and the tree itself."""
    src = tree / "src"
    return (str(src), str(tree)) if src.is_dir() else (str(tree),)


def tree_sources(suites: Sequence[Any], root: Path, tree: Path) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """Suites loaded from files of the repository, loaded on the baseline side from the worktree's copy
    (when the baseline has that file; otherwise from where the plan found it)."""
    out = []
    for suite in suites:
        path = suite.source.get("path")
        if not path:
            continue
        try:
            rel = Path(path).resolve().relative_to(root)
        except ValueError:
            continue  # outside the repository: the same file on both sides
        if (tree / rel).is_file():
            out.append((suite.name, (("path", str(tree / rel)),)))
    return tuple(out)
