"""Do the tests named for issue 25's audit findings fail on the code the audit found?

    python benchmarks/audit_check.py              # every check; rewrites the table in docs/testing.md
    python benchmarks/audit_check.py --only 1 5   # the checks of some audit items (the table keeps the others)
    python benchmarks/audit_check.py --table      # no run: the table again from the stored outcomes

Each check names an audit item, the test(s) that guard it and the commit that fixed it. The old tree (the
fix's parent, `git archive`d into a temporary folder: nothing is checked out here) gets the current
version of the test files (and the helpers they import), and the named tests run there: they must fail
(good), and they must fail on an assertion, not on a missing name or an import (a test that cannot run
there proves nothing: "error"). Five kinds of check, by what the audit found:

- code: the code was wrong (the HTML page's pay-off, the dataloader recommendation within noise): the
  current tests run on the fix's parent.
- mutant: the code was right but no test noticed a change the audit made to it (ABBA dropped, the merge
  pass deleted, the knee at 0.90, a value read back from what it is compared with...): the audit's change
  is applied to the fix's parent. There the current tests must fail on it, the same tests pass without it
  (so the tree itself is sound), and the old tests (the parent's own) pass with it: they did not guard it.
- seeds: the defect is a bound read off what one seed gave: the old tests and the current ones run at other
  seeds (the same code): the old bounds must fail at some of them, the current ones at none.
- stall: the defect is a test that reads the wall clock: on a machine made slow on purpose (the test's
  process stopped for 150 ms after every 2 ms it runs) the old test fails and the fix's passes; the old
  test also passes without the stalls.
- suite: the defect is in the test suite itself (collection under `cd tests && pytest`, a slow test in the
  fast tier, tests that plan every usable backend): a command, or the old test files (from git history) in
  the fix's tree, must fail where the fix's tests pass.

Every test has a timeout (--test-timeout, 600 s): one past it is an "error", and the run is killed with
the workers it started, so a check cannot hang.

Outcomes are stored in benchmarks/audit_results.json; the table between the markers in docs/testing.md is
rewritten from them. Minutes on a quiet machine (it starts pytest a few dozen times); run it under `nice`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "audit_results.json"
DOC = ROOT / "docs" / "testing.md"
START, END = "<!-- audit table: written by benchmarks/audit_check.py -->", "<!-- end of audit table -->"
CURRENT = "current"  # the working tree's tracked files (the fix and the tests as they are now)


@dataclass(frozen=True)
class Check:
    item: str  # the audit item's number in issue 25, with a letter per defect it names
    defect: str  # the audit's words, shortened
    fix: str  # the commit that fixed it
    tests: tuple[str, ...]  # pytest node ids, relative to the repository root
    kind: str  # "code", "mutant" or "suite"
    helpers: tuple[str, ...] = ()  # further current files the tests import (test helpers)
    mutants: tuple[tuple[str, str, str], ...] = ()  # (file, text, replacement): the audit's change
    old_tests: tuple[str, ...] = ()  # mutant: the parent's own tests that should have noticed it
    command: str | None = None  # suite: a shell command that exits 0 when the suite is sound
    old_files_in_fix: bool = False  # suite: the parent's versions of the tests' files, in the fix's tree
    pytest_args: tuple[str, ...] = ()
    note: str = ""
    tests_at: str = CURRENT  # the commit whose test files run there (the fix's own, where later ones need newer code)
    slow: bool = False  # the tests are in the slow tier: the old tests run without `-m "not slow"` too
    # "seeds": (file, text, replacement with {seed}) in the old tree, and in the current one where its text differs
    # (else the same), and the seeds: the old tests' bounds must fail at some of them, the current ones at none
    seed_sites: tuple[tuple[str, str, str], ...] = ()
    current_seed_sites: tuple[tuple[str, str, str], ...] = ()
    seeds: tuple[int, ...] = ()

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.split("::")[0] for t in self.tests))


def _session(text: str, new: str) -> tuple[str, str, str]:
    return ("benchbench/session.py", text, new)


CHECKS: list[Check] = [
    Check("1a", "the round loop: dropping the ABBA side order survives", "9f29809",
          ("tests/test_session.py::test_sides_alternate_abba_on_the_same_order_each_round",), "mutant",
          mutants=(_session("for ti in side_order(len(targets), r):", "for ti in range(len(targets)):"),),
          old_tests=("tests/test_rounds.py",)),
    Check("1b", "the round loop: re-running failed cases in later rounds survives", "9f29809",
          ("tests/test_session.py::test_a_case_that_ends_is_never_run_again_and_keeps_its_earlier_rounds",),
          "mutant", mutants=(_session("c.key not in ended and ", ""),),
          old_tests=("tests/test_rounds.py",)),
    Check("1c", "the round loop: never clearing `partial` survives", "9f29809",
          ("tests/test_session.py::test_partial_is_cleared_on_completion",), "mutant",
          mutants=(_session("t.report.partial = False", "t.report.partial = True"),),
          old_tests=("tests/test_rounds.py",)),
    Check("2", "the HTML page says \"pays off\" for a compiled result the suite does not trust", "e4a1a24",
          ("tests/test_output_report_html.py::test_a_compiled_result_the_suite_distrusts_never_pays_off_on_the_page",
           "tests/test_output_report_html.py::test_training_page_draws_a_pay_off_only_from_a_speed_up_the_suite_trusts"),
          "code", helpers=("tests/test_compare.py", "tests/test_gate.py", "tests/conftest.py", "tests/fakes.py")),
    Check("3a", "collection fails under `cd tests && pytest` (a test module imports `tests.conftest`)", "3b6b3e6",
          (), "suite", command=(  # as tox runs it: benchbench importable, the repository root not on the path
              'mkdir -p .pkg && ln -sfn "$PWD/benchbench" .pkg/benchbench && ln -sfn "$PWD/suites" .pkg/suites && '
              'cd tests && PYTHONPATH="$PWD/../.pkg" pytest --co -q -p no:cacheprovider test_suite_distributed.py')),
    Check("3b", "collection fails under `cd tests && pytest`: the test that refuses such an import", "3b6b3e6",
          ("tests/test_imports.py::test_test_modules_import_their_helpers_as_pytest_puts_them_on_the_path",), "code",
          note="the old tree's test_suite_distributed.py, checked by the current test_imports.py"),
    Check("4", "CLI tests plan every usable backend, so a usable GPU doubles the expected rows", "4c2a344",
          ("tests/test_cli.py::test_rounds_are_fresh_processes_in_seeded_shuffled_orders",
           "tests/test_cli_history.py::test_run_history_appends_one_line_per_run"), "suite",
          old_files_in_fix=True, pytest_args=("--fake-backend", "cuda"),
          note="the named tests as the fix's parent had them, in the fix's tree (the first with the GPU-shaped "
               "session), under `--fake-backend cuda`, each with a per-test timeout"),
    Check("5a", "removing Welch's df bound in the detectable effect survives", "5c61829",
          ("tests/test_compare.py::test_the_stated_detectable_effect_is_met_at_its_nominal_power[3-False]",
           "tests/test_compare.py::test_the_detectable_effect_is_the_noncentral_t_power_at_the_lower_df[3-False]"),
          "mutant", mutants=(("benchbench/compare.py",
                              'df = change.df if change.unit == "paired-round" else max(min(change.n_base, '
                              'change.n_other) - 1, 1)', "df = change.df"),),
          old_tests=("tests/test_compare.py::test_the_stated_detectable_effect_is_met_at_its_nominal_power",)),
    Check("5b", "deleting the change-point merge pass survives", "36d6ff6",
          ("tests/test_changepoint.py::test_every_change_point_found_passes_its_test_between_its_neighbours",),
          "mutant", helpers=("tests/test_compare.py",),
          mutants=(("benchbench/changepoint.py", "    while found:\n        bounds = [0, *found, m]",
                    "    while False:\n        bounds = [0, *found, m]"),),
          old_tests=("tests/test_changepoint.py", "tests/test_history.py")),
    Check("5c", "the dataloader knee threshold at 0.90 instead of 0.95 survives", "dd82120",
          ("tests/test_suite_dataloader.py::test_the_knee_is_within_five_percent_of_the_best",), "mutant",
          mutants=(("suites/dataloader.py", "THRESHOLD = 0.95", "THRESHOLD = 0.90"),),
          old_tests=("tests/test_suite_dataloader.py",),
          helpers=("tests/conftest.py", "tests/fakes.py")),
    Check("5d", "`recommend` picks num_workers=2 at 1.08x with an interval of [0.72, 1.62]", "2ce56d9",
          ("tests/test_suite_dataloader.py::test_a_setting_faster_only_within_noise_is_not_recommended",), "code",
          helpers=("tests/conftest.py", "tests/fakes.py")),
    Check("6", "a 10-second dataloader test is not marked slow", "17cf291", (), "suite",
          command="! python -m pytest --co -q -p no:cacheprovider -m 'not slow' tests/test_suite_dataloader.py "
                  "| grep -q 'test_a_failing_worker_fails_its_case_with_the_reason\\[exit'"),
    Check("7a", "a test in test_ab.py without an assert (the interpreter check)", "a392a7d",
          ("tests/test_ab.py::test_the_check_imports_under_the_sides_own_environment",), "mutant",
          mutants=(("benchbench/ab.py", "    if proc.returncode != 0:\n        lines = [line",
                    "    if False:\n        lines = [line"),),
          old_tests=("tests/test_ab.py::test_this_interpreter_passes_the_check",)),
    Check("7b", "an output test that checks a value against itself (ab's time ratio)", "a392a7d",
          ("tests/test_output_gate.py::test_ab_output_with_both_metrics_shows_each_gate_and_the_disagreement",),
          "mutant", helpers=("tests/test_compare.py", "tests/test_gate.py"),
          mutants=(("benchbench/instructions.py", "return Disagreement(t, i, time_ratio, instructions_ratio, key)",
                    "return Disagreement(t, i, instructions_ratio, instructions_ratio, key)"),),
          old_tests=("tests/test_output_gate.py::test_ab_output_with_both_metrics_shows_each_gate_and_the_disagreement",)),
    Check("7c", "escaping tested only in helpers, never on a whole page with hostile labels", "5371ed8",
          ("tests/test_output_report_html.py::test_a_page_of_hostile_labels_shows_them_as_text_and_runs_no_script_of_theirs",),
          "mutant", helpers=("tests/test_compare.py", "tests/test_gate.py", "tests/conftest.py", "tests/fakes.py"),
          mutants=(("benchbench/output/report_html.py", 'f" {esc(r.reason)}"', 'f" {r.reason}"'),),
          old_tests=("tests/test_output_report_html.py", "tests/test_output_html.py")),
    Check("1d", "`test_ab.py` replaced the whole measuring path, so \"one Valgrind worker per side\" saw no worker",
          "aa4c940", ("tests/test_ab.py::test_ab_instructions_runs_one_valgrind_worker_per_side_through_the_real_"
                      "round_loop",), "mutant", tests_at="aa4c940",
          mutants=(("benchbench/runner.py", "side.python, side.cwd, self.command_prefix,",
                    "side.python, side.cwd, (),"),),
          old_tests=("tests/test_ab.py::test_ab_instructions_only_is_one_round_in_one_valgrind_worker_per_side",),
          note="the workers started without Valgrind, so no instruction is counted; the fix's own test file, "
               "as the current one imports modules newer than the fix"),
    Check("4b", "dataloader and distributed tests use `/proc` and `os.sched_getaffinity`, which macOS lacks",
          "dd82120", ("tests/test_portable_tests.py::test_no_test_uses_what_macos_lacks[os.sched_getaffinity-"
                      "_sched_getaffinity-benchbench.usable_cpus()]",
                      "tests/test_portable_tests.py::test_no_test_uses_what_macos_lacks[/proc/<pid> paths-"
                      "_per_process_proc_path-psutil.Process(pid)]"), "code",
          note="read from the test files' syntax: the old dataloader and distributed tests, on Linux"),
    Check("5e", "seeded bounds sit at the observed value: change points (0.02 vs 0.02, 0.012 vs 0.012)", "1d34218",
          ("tests/test_changepoint.py::test_false_change_points_stay_rare_at_other_lengths",
           "tests/test_changepoint.py::test_calibration_targets_hold_on_seeded_series"), "seeds",
          old_tests=("tests/test_changepoint.py::test_false_change_points_stay_rare_at_other_lengths",
                     "tests/test_changepoint.py::test_calibration_targets_hold_on_seeded_series"),
          seed_sites=(("tests/test_changepoint.py", "(12, 30, 300), 300, seed=3, resamples=20)",
                       "(12, 30, 300), 300, seed={seed}, resamples=20)"),
                      ("tests/test_changepoint.py", "cal.evaluate(cv, noise, 250, seed=2, oracle=oracle",
                       "cal.evaluate(cv, noise, 250, seed={seed}, oracle=oracle")),
          seeds=tuple(range(101, 109)),
          note="the same code, the seeds of the simulations changed: the old bounds (the rates one seed gave) fail at "
               "some seeds, the binomial bounds (`within_binomial_se`) hold at every one"),
    Check("5f", "seeded bounds sit at the observed value: the round interval's coverage (186 of 200)", "5c61829",
          ("tests/test_compare.py::test_round_interval_covers_the_true_ratio_at_its_nominal_rate",), "seeds",
          old_tests=("tests/test_compare.py::test_round_interval_covers_the_true_ratio_at_its_nominal_rate",),
          seed_sites=(("tests/test_compare.py", "    for seed in range(200):\n        rng = np.random.default_rng(seed)",
                       "    for seed in range(200):\n        rng = np.random.default_rng([{seed}, seed])"),),
          current_seed_sites=(("tests/test_compare.py",
                               "    for seed in range(trials):\n        rng = np.random.default_rng(seed)\n"
                               "        c = change_from_rounds(",
                               "    for seed in range(trials):\n        rng = np.random.default_rng([{seed}, seed])\n"
                               "        c = change_from_rounds("),),
          seeds=tuple(range(1, 21)),
          note="the same code, each trial's generator seeded from another stream. Found: the old bound held at every "
               "seed tried, so it was near its seed's value without depending on it; the test counts 600 trials "
               "against the binomial bound now all the same"),
    Check("6b", "the Chromium check waits for 2 s of silence", "5899767",
          ("tests/test_chromium_check.py::test_the_browser_check_sees_what_a_page_does_wrong_after_a_long_task",),
          "code", note="a page whose work after its load event takes 3 s, longer than the old check's silence, "
                       "then fails: the old check stops reading before it"),
    Check("6c", "real sleeps and wall-clock bounds where a fake clock would do", "17cf291",
          ("tests/test_execute.py::test_first_call_is_timed_apart_and_never_in_the_samples",), "stall",
          old_tests=("tests/test_execute.py::test_first_call_is_timed_apart_and_never_in_the_samples",),
          note="a loaded machine stood in for by a process that stops the test's process for 150 ms after every "
               "2 ms it runs, during the test only. Found: the old test passes even so: a sample is a block's "
               "mean per call, so a 150 ms stop spread over a block's hundreds of calls stays far under its 0.1 s "
               "bound, and its first call's bound is a lower one (>= 0.3 s) that a stop cannot break. Its defect "
               "was the cost, a real 0.3 s sleep, not a failure: no test can fail on it"),
    Check("7d", "`mde > 0.05` holds by the formula", "5c61829",
          ("tests/test_compare.py::test_the_detectable_effect_is_the_noncentral_t_power_at_the_lower_df[3-True]",),
          "mutant", mutants=(("benchbench/compare.py",
                              "        return math.expm1(math.log1p(threshold) + lam * change.se)",
                              "        return math.expm1(math.log1p(threshold) + 1.25 * lam * change.se)"),),
          old_tests=("tests/test_compare.py::test_the_stated_detectable_effect_is_met_at_its_nominal_power",
                     "tests/test_compare.py::test_stated_mde_shrinks_with_rounds_and_grows_with_spread"),
          note="a detectable effect stated 25% too far from the threshold (more power than it says)"),
    Check("7e", "the rank `raise` fault never run end to end", "b79e542",
          ("tests/test_suite_distributed.py::test_a_dead_rank_fails_the_case_by_name_and_the_run_finishes",), "mutant",
          tests_at="b79e542", slow=True,
          mutants=(("suites/_distributed_rank.py", 'message = message.get("message", "")',
                    'message = message["text"]'),),
          old_tests=("tests/test_suite_distributed.py::test_a_dead_rank_fails_the_case_by_name_and_the_run_finishes",),
          note="reading the error a raising rank left (torchrun's error file) breaks, which only the raise fault "
               "reaches: the failures are never written and the case fails as a launch failure, not by the rank; "
               "the fix's own test file, as the current one imports modules newer than the fix. The exit case can "
               "catch it too, when rank 0 raised on its lost peer before torchrun stopped it (its error file is "
               "then read, a race): in the stored run the old test passed on the change and the fix's exit case "
               "failed on it; the raise case reads its own rank's error file every time"),
    Check("7f", "git worktree facts tested on a hand-built `.git`", "a392a7d",
          ("tests/test_environment.py::test_git_commit_of_a_real_repository_its_worktree_and_packed_refs",),
          "mutant", tests_at="a392a7d",
          mutants=(("benchbench/environment/facts.py", '        packed = common / "packed-refs"',
                    '        packed = dotgit / "packed-refs"'),),
          old_tests=("tests/test_environment.py::test_git_commit_read_from_dot_git",),
          note="packed refs looked up in a linked worktree's own git folder instead of the common one"),
]


@dataclass
class Outcome:
    result: str  # "fails" (good), "passes" (bad), "error" (the tests could not run there), "n/a"
    detail: str = ""
    control: dict[str, str] = field(default_factory=dict)  # the sanity and old-test runs of a mutant check


def extract(commit: str, dest: Path) -> None:
    """The tracked files of `commit` (or of the working tree, for CURRENT) into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    if commit == CURRENT:
        names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        for name in filter(None, names.decode().split("\0")):
            if (ROOT / name).is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, dest / name)
        return
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=ROOT, capture_output=True,
                             check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")


def copy_in(tree: Path, names: tuple[str, ...], commit: str = CURRENT) -> None:
    for name in names:
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if commit == CURRENT:
            shutil.copy2(ROOT / name, target)
        else:
            target.write_bytes(subprocess.run(["git", "show", f"{commit}:{name}"], cwd=ROOT, capture_output=True,
                                              check=True).stdout)


def mutate(tree: Path, mutants: tuple[tuple[str, str, str], ...]) -> dict[Path, str]:
    """Apply the changes; returns the files as they were, for `restore`."""
    before = {}
    for name, text, new in mutants:
        path = tree / name
        before.setdefault(path, path.read_text())
        if path.read_text().count(text) != 1:
            raise SystemExit(f"{name}: the change's text is not found exactly once: {text!r}")
        path.write_text(path.read_text().replace(text, new))
    return before


def restore(before: dict[Path, str]) -> None:
    for path, text in before.items():
        path.write_text(text)


# A per-test timeout inside the one pytest process of a check (no pytest-timeout needed): an alarm at the
# start of each test's setup, cleared after its teardown. A test past it fails with TIMEOUT_MARK in its
# message, which run_tests reads as "error" (a test that never finished proves nothing either way).
TIMEOUT_MARK = "ran past audit_check's per-test timeout"
TIMEOUT_PLUGIN = f"""
import signal

import pytest

LIMIT = {{limit}}


class AuditTestTimeout(Exception):
    pass


def _expire(signum, frame):
    raise AuditTestTimeout(f"the test {TIMEOUT_MARK} of {{{{LIMIT}}}} s")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    before = signal.signal(signal.SIGALRM, _expire)
    signal.alarm(LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)
"""
# A loaded machine on demand: while a test runs (its call, not its setup or pytest's start), a child process
# stops the test's process for 150 ms after every 2 ms it runs. Timings read from the wall clock then
# include stops; timings from a fake clock do not.
STALL_PLUGIN = """
import os
import signal
import subprocess
import sys

import pytest

STALLER = '''
import os, signal, sys, time
pid = int(sys.argv[1])
while True:
    time.sleep(0.002)
    os.kill(pid, signal.SIGSTOP)
    time.sleep(0.150)
    os.kill(pid, signal.SIGCONT)
'''


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    staller = subprocess.Popen([sys.executable, "-c", STALLER, str(os.getpid())])
    try:
        yield
    finally:
        staller.kill()
        staller.wait()
        os.kill(os.getpid(), signal.SIGCONT)
"""
TEST_TIMEOUT_S = 600  # per test; --test-timeout
COLLECTION_S = 600  # on top, for pytest's start and collection (minutes on a loaded machine under nice)


def _kill_tree(proc: subprocess.Popen) -> None:
    """The pytest process and everything under it: benchbench's workers run in sessions of their own, so a
    process-group kill would miss them."""
    import psutil

    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    proc.kill()
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()


def run_tests(tree: Path, tests: tuple[str, ...], args: tuple[str, ...] = (),
              timeout_s: int | None = None, stall: bool = False) -> tuple[str, str]:
    """("fails" | "passes" | "error", detail) of pytest on `tests` in `tree`: "fails" only when a test failed
    on an assertion (or an expected exception that did not come), not on an import, a missing name, the
    per-test timeout or a subprocess of the test's own that ran past its timeout (a machine too slow proves
    nothing either). Each test has `timeout_s` (TEST_TIMEOUT_S); the whole run a limit of that per test
    plus COLLECTION_S, past which it is killed with its workers. `stall`: each test runs on a machine that
    gives it 2 ms of every 152 ms (STALL_PLUGIN), a load that wall-clock bounds in a test cannot stand."""
    limit = timeout_s or TEST_TIMEOUT_S
    (tree / "audit_test_timeout.py").write_text(TIMEOUT_PLUGIN.format(limit=limit))
    if stall:
        (tree / "audit_test_stall.py").write_text(STALL_PLUGIN)
        args = ("-p", "audit_test_stall", *args)
    with tempfile.NamedTemporaryFile(suffix=".xml") as xml:
        proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                                 "-p", "audit_test_timeout", f"--junitxml={xml.name}", *args, *tests], cwd=tree,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONPATH": str(tree)})
        whole = limit * max(len(tests), 1) + COLLECTION_S
        try:
            stdout, _ = proc.communicate(timeout=whole)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            return "error", f"the pytest run {TIMEOUT_MARK} (whole run: {whole} s)"
        try:
            cases = ET.parse(xml.name).getroot().iter("testcase")
        except ET.ParseError:
            return "error", stdout[-300:]
        failed, errors, ran = [], [], 0
        for case in cases:
            ran += 1
            for bad in case.findall("failure") + case.findall("error"):
                message = (bad.get("message") or "").splitlines()[0][:160] if bad.get("message") else ""
                kind = message.split(":")[0]
                harmless = bad.tag == "failure" and TIMEOUT_MARK not in message and not any(
                    k in kind for k in ("ImportError", "ModuleNotFoundError", "AttributeError", "NameError",
                                        "TypeError", "fixture", "TimeoutExpired"))
                (failed if harmless else errors).append(f"{case.get('name')}: {message}")
    if errors or not ran:
        return "error", "; ".join(errors) or (stdout.strip().splitlines() or ["no tests ran"])[-1]
    return ("fails", "; ".join(failed)) if failed else ("passes", f"{ran} passed")


def run_command(tree: Path, command: str) -> int:
    return subprocess.run(["bash", "-c", command], cwd=tree, capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(tree)}, check=False).returncode


def check(c: Check, work: Path) -> Outcome:
    old = work / f"{c.item}-old"
    if c.kind == "suite" and c.old_files_in_fix:
        # the fix's own tree: the option the tests run under exists there, and nothing else has moved since
        extract(c.fix, old)
        fixed = run_tests(old, c.tests, c.pytest_args)
        copy_in(old, c.files, f"{c.fix}~1")  # the test files as they were before the fix, from git history
        result, detail = run_tests(old, c.tests, c.pytest_args)
        return Outcome(result, detail, {"the fix's tests in the fix's tree": fixed[0]})
    extract(f"{c.fix}~1", old)
    if c.kind == "seeds":
        return seeds_check(c, old, work / f"{c.item}-current")
    if c.kind == "stall":
        fixed = work / f"{c.item}-fix"
        extract(c.fix, fixed)
        control = {"the old tests, not stalled": run_tests(old, c.old_tests)[0],
                   "the fix's tests in the fix's tree, stalled": run_tests(fixed, c.tests, stall=True)[0]}
        result, detail = run_tests(old, c.old_tests, stall=True)
        return Outcome(result, detail, control)
    if c.kind == "suite":
        now = work / f"{c.item}-current"
        extract(CURRENT, now)
        before, after = run_command(old, c.command), run_command(now, c.command)
        return Outcome("fails" if before else "passes", f"`{c.command}`: exit {before} there",
                       {"current tree": "passes" if after == 0 else f"fails (exit {after})"})
    control = {}
    if c.kind == "mutant":
        restore(mutate(old, c.mutants))  # the change applies there (else: stop before any run)
        if c.old_tests:
            changed = mutate(old, c.mutants)
            control["the old tests, on the change"] = run_tests(old, c.old_tests, () if c.slow else ("-m", "not slow"))[0]
            restore(changed)
    copy_in(old, tuple(dict.fromkeys(c.files + c.helpers)), c.tests_at)
    if c.kind == "mutant":
        control["the current tests, without the change"] = run_tests(old, c.tests, c.pytest_args)[0]
        mutate(old, c.mutants)
    result, detail = run_tests(old, c.tests, c.pytest_args)
    return Outcome(result, detail, control)


def seeds_check(c: Check, old: Path, now: Path) -> Outcome:
    """The old tests, then the current ones, at each of `c.seeds` instead of their own seed: the same code, so
    an old bound that fails at some seed held only for the seed it was read from."""
    extract(CURRENT, now)

    def failing(tree: Path, sites: tuple[tuple[str, str, str], ...], tests: tuple[str, ...]) -> list[int] | str:
        out = []
        for seed in c.seeds:
            changed = mutate(tree, tuple((f, text, new.format(seed=seed)) for f, text, new in sites))
            result, detail = run_tests(tree, tests, c.pytest_args)
            restore(changed)
            if result == "error":
                return f"error at seed {seed}: {detail[:200]}"
            if result == "fails":
                out.append(seed)
        return out

    old_failed = failing(old, c.seed_sites, c.old_tests)
    if isinstance(old_failed, str):
        return Outcome("error", old_failed)
    now_failed = failing(now, c.current_seed_sites or c.seed_sites, c.tests)
    control = {"the current tests, at the same seeds": (now_failed if isinstance(now_failed, str) else
                                                        f"fails at seeds {now_failed}" if now_failed else "passes")}
    return Outcome("fails" if old_failed else "passes",
                   f"the old tests fail at {len(old_failed)} of {len(c.seeds)} seeds ({old_failed})", control)


def sound(c: Check, o: dict) -> bool:
    """The check proves the item: its tests fail there, and the controls say what they should."""
    expected = {"the old tests, on the change": "passes", "the current tests, without the change": "passes",
                "the current tests, at the same seeds": "passes", "the old tests, not stalled": "passes",
                "the fix's tests in the fix's tree, stalled": "passes",
                "current tree": "passes", "the fix's tests in the fix's tree": "passes"}
    return o["result"] == "fails" and all(v == expected[k] for k, v in o["control"].items())


def _first(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


def table(stored: dict[str, dict]) -> str:
    lines = ["| item | defect | guarded by | fixed in | check | on the old code | controls | proven |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in CHECKS:
        o = stored.get(c.item)
        tests = "<br>".join(f"`{t.removeprefix('tests/')}`" for t in c.tests) or f"`{c.command}`"
        how = {"code": "the current tests on the fix's parent",
               "mutant": "the audit's change applied to the fix's parent: " + "; ".join(
                   f"`{f}`: `{_first(old)}` → `{_first(new) or '(removed)'}`"
                   for f, old, new in c.mutants),
               "suite": c.note or "the command on the fix's parent and on the current tree",
               "stall": "the old tests on the fix's parent on a loaded machine, and the fix's tests in its tree",
               "seeds": "the old tests on the fix's parent and the current tests, each at seeds "
                        f"{min(c.seeds, default=0)}-{max(c.seeds, default=0)} instead of their own",
               "none": f"not checked: {c.note}"}[c.kind]
        if c.kind == "none":
            lines.append(f"| {c.item} | {c.defect} | {tests if c.tests else '-'} | {c.fix} | {how} | - | | - |")
            continue
        if c.note and c.kind != "suite":
            how += f" ({c.note})"
        if o is None:
            lines.append(f"| {c.item} | {c.defect} | {tests} | {c.fix} | {how} | not run | | |")
            continue
        controls = "<br>".join(f"{k}: {v}" for k, v in o["control"].items())
        found = f"{o['result']} ({o['detail']})" if c.kind == "seeds" else o["result"]
        lines.append(f"| {c.item} | {c.defect} | {tests} | {c.fix} | {how} | {found} | {controls} | "
                     f"{'yes' if sound(c, o) else '**no**'} |")
    return "\n".join(lines)


def write_doc(stored: dict[str, dict]) -> None:
    text = DOC.read_text()
    block = (f"{START}\n\n`python benchmarks/audit_check.py` (outcomes in `benchmarks/audit_results.json`): "
             "\"fails\" on the old code is what a guarding test must do.\n\n" + table(stored) + f"\n\n{END}")
    if START in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        anchor = "\n## Mutation testing"
        text = text.replace(anchor, "\n" + block + "\n" + anchor, 1) if anchor in text else text + "\n" + block + "\n"
    DOC.write_text(text)


def main() -> None:
    global TEST_TIMEOUT_S
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", help="the checks of these items (1, 1a, 5c...)")
    ap.add_argument("--table", action="store_true", help="run nothing: the table again from the stored outcomes")
    ap.add_argument("--test-timeout", type=int, default=TEST_TIMEOUT_S, metavar="S",
                    help=f"seconds each test may run before it counts as an error (default {TEST_TIMEOUT_S})")
    args = ap.parse_args()
    TEST_TIMEOUT_S = args.test_timeout
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    todo = [] if args.table else [c for c in CHECKS if c.kind != "none" and (
        not args.only or c.item in args.only or c.item.rstrip("abcdefg") in args.only)]
    for c in todo:
        with tempfile.TemporaryDirectory(prefix="benchbench-audit-") as tmp:
            o = check(c, Path(tmp))
        # over what another run of this script may have stored meanwhile (`--only` runs side by side)
        stored = {**(json.loads(RESULTS.read_text()) if RESULTS.exists() else {}),
                  c.item: {"result": o.result, "detail": o.detail, "control": o.control}}
        RESULTS.write_text(json.dumps(stored, indent=1) + "\n")
        print(f"{c.item}: {o.result} ({o.detail[:200]}) {o.control} -> {'proven' if sound(c, stored[c.item]) else 'NOT proven'}",
              flush=True)
    write_doc(stored)


if __name__ == "__main__":
    main()
