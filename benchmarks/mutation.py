"""Mutation testing of the decision code with mutmut: which small changes to compare, gate, changepoint,
stats, rounds, the session loop, sequential, blocks and the dataloader recommendation do the fast tests
notice?

    python benchmarks/mutation.py                      # every module below; writes docs/mutation.md
    python benchmarks/mutation.py --only rounds        # some modules: their rows are replaced
    python benchmarks/mutation.py --table              # no run: the table again from the stored results
    tox -e mutation                                    # the same, in a tox environment

It copies the tracked files of this repository into a scratch folder (mutmut writes its `mutants/`
tree and configuration there, never here), runs `mutmut run` with the module's own fast tests, stores
each mutant's status in benchmarks/mutation_results.json (one entry per module, so modules can be run
one at a time) and writes the table and the survivors into docs/mutation.md from all stored modules.
A survivor is either killed by a new test or explained in EXPLAINED below (equivalent: no test can
tell it from the original). CPU heavy: minutes per module; run it under `nice`, not in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

@dataclass(frozen=True)
class Module:
    path: str  # the file mutated
    tests: tuple[str, ...]  # the fast tests that pin it (only these run against its mutants)
    select: str | None = None  # pytest -k: the tests of those files that exercise the code mutated
    functions: tuple[str, ...] = ()  # only these functions' mutants (all of the file's when empty)
    # (file, text, replacement) in the scratch copy's tests: how a test finds the code, never what it asserts
    rewrites: tuple[tuple[str, str, str], ...] = ()


MODULES: dict[str, Module] = {
    # with the tests of the metrics' rows that compare builds (metric_rows, compare_pair's metric findings)
    "compare": Module("benchbench/analysis/compare.py", ("tests/test_compare.py", "tests/test_compare_rules.py",
                                                         "tests/test_memory.py", "tests/test_compile_time.py",
                                                         "tests/test_latency.py", "tests/test_energy_metric.py",
                                                         "tests/test_cost.py")),
    "gate": Module("benchbench/analysis/gate.py", ("tests/test_gate.py", "tests/test_gate_rules.py")),
    # the decisive tests with known answers only: the seeded false-alarm and power simulations (seconds each,
    # minutes for a mutant that slows detect down) still run in the normal suite, not against every mutant
    "changepoint": Module("benchbench/analysis/changepoint.py", ("tests/test_changepoint.py",),
                          select="not simulated_null and not stay_rare and not calibration_targets"),
    "stats": Module("benchbench/model/stats.py", ("tests/test_stats.py",)),
    "rounds": Module("benchbench/run/rounds.py", ("tests/test_rounds.py", "tests/test_session.py")),
    # the round loop only: measure and the two helpers it calls per round (the canary, the suites' derive
    # hooks); planning (prepare, select_backends), new_report, run and default_path are not the loop
    "session": Module("benchbench/run/session.py", ("tests/test_session.py",),
                      functions=("measure", "_canary", "Session.derive")),
    "sequential": Module("benchbench/analysis/sequential.py", ("tests/test_sequential.py",)),
    "blocks": Module("benchbench/analysis/blocks.py", ("tests/test_blocks.py",)),
    # the recommendation only: the rest of the suite measures, and is pinned by its own (slow) tests
    "dataloader": Module("suites/_dataloader/analysis.py", ("tests/test_suite_dataloader.py",),
                         select="recommend or speedup or decoder or noise or knee",
                         functions=("recommend", "speedup_interval", "_bootstrap_ratio", "compare_decoders"),
                         # the tests load the suite from its file, in a package the registry names after the folder
                         # (so they run from any working folder); mutmut knows a function by its module's dotted
                         # name, so in the scratch copy they load it as the module suites.dataloader instead
                         rewrites=(("tests/test_suite_dataloader.py",
                                    'registry.load_source({"path": str(ROOT / "suites" / "dataloader.py")})',
                                    'registry.load_source({"module": "suites.dataloader"})'),)),
}
RESULTS = ROOT / "benchmarks" / "mutation_results.json"
KILLED = ("killed", "segfault", "caught by type check")  # the tests (or the run) noticed it
# mutmut's "timeout": the tests ran past its time limit on the mutant (a loop that no longer ends, or only a
# slow machine). Not a kill by a test: counted and listed apart, and never as killed.
TIMED_OUT = "timeout"
NOT_RUN = "not checked"  # a run stopped before it got to the mutant
DECIDED = KILLED + (TIMED_OUT, NOT_RUN)  # what is not a survivor

# Survivors no test can kill, by mutmut's name, with why (kept by hand; the script lists any others).
# mutmut numbers the mutants of a function in source order: a change to that function renumbers them,
# so check these against `mutmut show NAME` after editing it.
_DEFAULT = "an argument the merged Result is given its default value anyway (None), or that is overwritten below"
_ZIP = ("zip's strict flag: a Result's round_samples has one list per round record by construction, so the "
        "lengths always match")
_EDGE = ("equivalent in practice: differs only where the chi-square statistic equals its quantile exactly in "
         "floating point")
_DTYPE = ("numpy's dtype: the values are Python numbers (None replaced by nan, and np.array([None], dtype=float) "
          "is nan too), so the array is float either way")
_SCALE = ("a factor common to every weight (or every half width): the weights are normalised to mean 1, so it "
          "cancels")
_UNUSED = "a value the branch that follows never reads (it returns before using it)"
_NAN = 'float("NAN") is float("nan"): the same not-a-number'
_ASARRAY = ("numpy's dtype of detect's values or weights: they are read only through np.isfinite, comparisons, "
            "scan_values and scan_statistic (which make float arrays) and medians (floats for whole numbers too), "
            "so an integer array gives the same numbers")
_BOOT_WINDOW = ("the exact bootstrap median's window of ranks (only used above 2,000 samples): it reaches at least "
                "19 standard deviations of the median's rank either side, so the mass left outside is below 1e-80 "
                "and every cdf value it changes is 0.0 or 1.0 in floating point already; the draws differ only "
                "when the uniform draw is exactly 0.0")
_NP_DEFAULT = "the argument mutmut drops or changes is the library's default (or read case-insensitively) anyway"
_FLOAT = ("numpy's dtype: samples are Python floats (or a float array), so np.asarray gives a float array "
          "either way; integer samples give the same medians and ratios")
EXPLAINED: dict[str, str] = {
    **{f"benchbench.analysis.changepoint.x_weights_from_intervals__mutmut_{i}": _DTYPE for i in (3, 5, 6, 11, 13, 14)},
    **{f"benchbench.analysis.changepoint.x_weights_from_intervals__mutmut_{i}": _SCALE for i in (18, 20, 31, 48)},
    **{f"benchbench.analysis.changepoint.x_scan_values__mutmut_{i}": _DTYPE for i in (3, 5)},
    **{f"benchbench.analysis.changepoint.x__ratio_interval__mutmut_{i}": _NAN for i in (42, 45)},
    "benchbench.analysis.changepoint.x__split_pvalue__mutmut_16": "scan_pvalue itself returns 1.0 for a NaN t (not t > 0)",
    **{f"benchbench.analysis.changepoint.x_detect__mutmut_{i}": (
        "the doubtful values when clip is None or 0: their extra noise is multiplied by (clip or 0)² = 0, so an "
        "empty float array or one slot at 0 adds nothing") for i in (75, 77, 78)},
    **{f"benchbench.analysis.changepoint.x_detect__mutmut_{i}": _ASARRAY for i in (4, 6, 21, 23)},
    **{f"benchbench.analysis.changepoint.x_{f}__mutmut_{i}": (
        "numpy's dtype of values or weights: an integer array gives the same numbers through np.diff, abs, "
        "median, np.average, cumsum and the float arithmetic that follows (every result is a float array)")
       for f, i in (("robust_scale", 3), ("robust_scale", 5), ("_deviations", 3), ("_deviations", 5),
                    ("scan_statistic", 4), ("scan_statistic", 6), ("scan_statistic", 36), ("scan_statistic", 38),
                    ("scan_pvalue", 46), ("scan_pvalue", 48))},
    "benchbench.analysis.changepoint.x__deviations__mutmut_50": (
        "the middle values' centres computed again with the cut-window formula: for half <= i < n - half the "
        "slice y[i - half:i + half + 1] is the full window, so the same median is written over it"),
    "benchbench.analysis.changepoint.x_scan_statistic__mutmut_28": (
        "2 / min_size instead of 2 * min_size in the early return: with fewer than 2 x min_size values the "
        "splits' range np.arange(min_size, n - min_size + 1) is empty, so t stays all NaN either way"),
    "benchbench.analysis.changepoint.x__nu__mutmut_38": (
        "x >= 1e-9 instead of x > 1e-9: they differ only at x == 1e-9, where the formula gives 1.0 in floating "
        "point too (the limit at 0)"),
    "benchbench.analysis.changepoint.x_scan_pvalue__mutmut_18": (
        "t >= 0 instead of t > 0 in the early return: at t = 0 the formula gives min(1, 2 x 0.5 + 0) = 1.0 "
        "too (the tail of one split is a half, z = 0 makes the crossings' term 0)"),
    "benchbench.analysis.changepoint.x_detect__mutmut_71": (
        "< instead of <= at twice the bound: differs only where a deviation equals 2 x clip exactly in "
        "floating point"),
    "benchbench.analysis.changepoint.x_detect__mutmut_90": (
        "the first slot at 1 instead of 0: the kept values 0 and 1 always lie in the first segment (a change "
        "point needs at least two kept values before it, min_size >= 2), and every use of the slots is a "
        "sum over a segment"),
    "benchbench.analysis.changepoint.x_detect__mutmut_94": "astype(None) is astype(float64): the same array",
    "benchbench.analysis.changepoint.x_detect__mutmut_98": (
        "bincount without minlength: the array ends at the last slot used instead of at len(keep); the "
        "entries it lacks would be 0, and every use is a slice's sum, which reads only the entries present"),
    "benchbench.analysis.changepoint.x_detect__mutmut_101": (
        "(clip or 1.0) instead of (clip or 0.0): with clip None or 0 no value is doubtful, so the counts it "
        "multiplies are all 0"),
    **{f"benchbench.analysis.changepoint.x_detect__mutmut_{i}": (
        "a segment shorter than 2 x min_size searched anyway (b + a or 2 / min_size in the length test): "
        "_best_split finds no split with min_size values a side there and returns p = 1, so it is never "
        "split at any max_pvalue below 1 (the history command refuses others)") for i in (111, 113)},
    "benchbench.analysis.changepoint.x_detect__mutmut_215": _NAN,
    "benchbench.model.stats.x_log_t_interval__mutmut_13": _UNUSED,
    "benchbench.analysis.sequential.xǁPlanǁalpha_at__mutmut_1": (
        "outside the planned looks spent() is flat (0 before the first, alpha from the last on), so the "
        "difference is 0 with or without the early return"),
    "benchbench.analysis.sequential.x_look__mutmut_34": "df with fewer than two rounds: max(n - 1, 0) and max(n - 2, 0) "
                                               "are both 0 for n = 0 and n = 1",
    "benchbench.analysis.sequential.x_look__mutmut_46": ("se == 1 instead of se == 0: with no spread the t branch gives "
                                               "a finite quantile times 0, the same half width 0"),
    **{f"benchbench.run.rounds.x_merge_round__mutmut_{i}": _DEFAULT for i in (95, 101, 110, 113)},
    **{f"benchbench.analysis.blocks.x_paired_round_logs__mutmut_{i}": _ZIP for i in (12, 15, 16)},
    "benchbench.analysis.blocks.x_pairs_disagree__mutmut_25": _EDGE,
    **{f"benchbench.analysis.compare.x_bootstrap_medians__mutmut_{i}": _FLOAT for i in (3, 5)},
    **{f"benchbench.analysis.compare.x_bootstrap_medians__mutmut_{i}": _BOOT_WINDOW for i in (28, 31, 33, 37, 51, 62, 65)},
    **{f"benchbench.analysis.compare.x_bootstrap_medians__mutmut_{i}": _NP_DEFAULT for i in (15, 72)},
    **{f"benchbench.analysis.compare.x_mann_whitney_p__mutmut_{i}": _NP_DEFAULT for i in (16, 18)},
    **{f"benchbench.analysis.compare.x_round_values__mutmut_{i}": _ZIP for i in (6, 9, 10)},
    **{f"benchbench.analysis.compare.x_compare_pair__mutmut_{i}": (
        "the row's first verdict: every path that returns the row sets it again (the tolerance rule, no timing "
        "to compare, the final assignment)") for i in (76, 81, 82)},
    **{f"benchbench.analysis.compare.x_compare_pair__mutmut_{i}": (
        "equivalent for every valid report: the shape fields (world_size, nnodes) are typed positive integers, "
        "which the report validator checks, and `{v:g}` and `{v}` print an int alike; only a float or a text "
        "set by hand in Python (never read from a file) would show the difference") for i in (108, 109)},
    **{f"benchbench.analysis.compare.x_compare__mutmut_{i}": ("zip's strict flag: report_names returns one name "
                                                              "per report, so names[1:] and reports[1:] always "
                                                              "have the same length") for i in (21, 24, 27)},
    **{f"benchbench.analysis.compare.x_compare_pair__mutmut_{i}": (
        "the side the mutant sets to None is None already: `_status` calls a side absent only when it is None")
       for i in (9, 23)},
    **{f"benchbench.analysis.compare.x_compare_pair__mutmut_{i}": (
        "round values of a side without samples: a result has no statistics from samples (from_samples False) "
        "only when it has no samples, so every round of it is empty, round_values gives {} and the rounds' "
        "branch (two round values a side) is not taken either way") for i in (173, 182)},
    "benchbench.analysis.compare.x_compare__mutmut_71": (
        "the sequential plan of reports not measured together: compare_pair reads `plan` only on the paired "
        "branch (paired round logs), which unpaired reports never take"),
    "benchbench.analysis.gate.x__read_toml__mutmut_1": ("sys.version_info > (3, 11) instead of >=: version_info has five "
                                               "fields, so it is greater than (3, 11) exactly when it is at least "
                                               "that"),
}


def tracked_copy(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def configure(work: Path, module: Module) -> None:
    for name, text, new in module.rewrites:
        path = work / name
        if path.read_text().count(text) != 1:
            raise SystemExit(f"{name}: the rewrite's text is not found exactly once: {text!r}")
        path.write_text(path.read_text().replace(text, new))
    top = module.path.split("/")[0]
    copied = [d for d in ("benchbench", "suites", "benchmarks", "reports") if d != top]
    (work / "setup.cfg").write_text(
        "[mutmut]\n"
        f"source_paths = {top}\n"
        f"only_mutate = {module.path}\n"
        "also_copy =\n" + "".join(f"    {d}\n" for d in copied) +
        "pytest_add_cli_args_test_selection =\n" + "".join(f"    {t}\n" for t in module.tests) +
        "pytest_add_cli_args =\n    -m\n    not slow\n    -p\n    no:cacheprovider\n    -q\n" +
        (f"    -k\n    {module.select}\n" if module.select else "") +
        "use_git_change_detection = False\n"
    )


def run_module(name: str, children: int, only: list[str] | None = None) -> list[tuple[str, str, str | None]]:
    """(mutant, status, change) for every mutant of one module (of its chosen functions only, where it names
    some, or of the mutants `only` names); the change (`mutmut show`) for survivors only."""
    module = MODULES[name]
    with tempfile.TemporaryDirectory(prefix=f"benchbench-mutation-{name}-") as tmp:
        work = Path(tmp)
        tracked_copy(work)
        configure(work, module)
        dotted = module.path.removesuffix(".py").replace("/", ".")
        names = only or [_pattern(dotted, f) for f in module.functions]
        subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(children), *names], cwd=work,
                       env=_env(), check=False)
        return collect(name, work)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the mutants, not this tree


def collect(name: str, work: Path, diffs: bool = True) -> list[tuple[str, str, str | None]]:
    """The statuses mutmut keeps in a scratch copy `work`: also of a run still going or stopped (its
    untested mutants are "not checked"); with `diffs`, the change each survivor makes."""
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=work, env=_env(),
                         capture_output=True, text=True, check=False).stdout
    rows = re.findall(r"^\s*(\S+__mutmut_\d+): (\S.*)$", out, re.M)
    if MODULES[name].functions:
        rows = [(m, st) for m, st in rows if _function(m) in MODULES[name].functions]
    # the change each survivor makes, kept with its status: the scratch copy is gone afterwards
    shown = _diffs(work, MODULES[name].path, [m for m, st in rows if st not in DECIDED]) if diffs else {}
    return [(m, st, shown.get(m)) for m, st in rows]


_SHOW = """
import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
out = {}
for name in json.loads(sys.stdin.read()):
    try:
        out[name] = get_diff_for_mutant(name, path=sys.argv[1])
    except Exception as exc:  # a mutant mutmut cannot show: keep its status without the change
        out[name] = None
print(json.dumps(out))
"""


def _diffs(work: Path, path: str, names: list[str]) -> dict[str, str | None]:
    """The change each of `names` makes, from one mutmut process (a `mutmut show` each takes minutes in all)."""
    if not names:
        return {}
    done = subprocess.run([sys.executable, "-c", _SHOW, path], cwd=work, env=_env(), input=json.dumps(names),
                          capture_output=True, text=True, check=False)
    try:
        return json.loads(done.stdout)
    except ValueError:
        return {}


def _pattern(dotted: str, function: str) -> str:
    """mutmut's names for every mutant of one function (or Class.method) of a module."""
    cls, _, name = function.rpartition(".")
    return f"{dotted}.xǁ{cls}ǁ{name}__mutmut_*" if cls else f"{dotted}.x_{function}__mutmut_*"


def _function(mutant: str) -> str:
    """The function (or Class.method) a mutant changes, from mutmut's name for it."""
    found = re.search(r"\.x(?:_|ǁ(\w+)ǁ)(\w+)__mutmut_\d+$", mutant)
    return "" if not found else f"{found.group(1)}.{found.group(2)}" if found.group(1) else found.group(2)


def table(results: dict[str, list[tuple[str, str]]]) -> str:
    """One row per module. A timed-out mutant is neither killed nor survived: it counts among the
    non-equivalent mutants (no test killed it) but not among the killed."""
    lines = ["| module | mutants | killed | timed out | survived | of them explained (equivalent) "
             "| killed of non-equivalent | not run (run stopped) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, rows in results.items():
        killed = sum(s in KILLED for _, s in rows)
        timed_out = sum(s == TIMED_OUT for _, s in rows)
        not_run = sum(s == NOT_RUN for _, s in rows)
        survived = [m for m, s in rows if s not in DECIDED]
        explained = [m for m in survived if m in EXPLAINED]
        judged = killed + timed_out + len(survived) - len(explained)
        share = f"{100 * killed / judged:.0f}%" if judged else "-"
        lines.append(f"| {name} | {len(rows)} | {killed} | {timed_out} | {len(survived)} | {len(explained)} | {share} "
                     f"| {not_run} |")
    return "\n".join(lines)


def write_doc(results: dict[str, list[tuple[str, str]]]) -> str:
    explained = [(n, m, s) for n, rows in results.items() for m, s in rows if s not in DECIDED and m in EXPLAINED]
    timed_out = [(n, m) for n, rows in results.items() for m, s in rows if s == TIMED_OUT]
    left: dict[tuple[str, str], int] = {}
    for n, rows in results.items():
        for m, s in rows:
            if s not in DECIDED and m not in EXPLAINED:
                where = (n, (_function(m) or m) + ("" if s == "survived" else f", {s}"))
                left[where] = left.get(where, 0) + 1
    text = (f"Modules run: {', '.join(results)} (`python benchmarks/mutation.py`, mutmut; the statuses are kept "
            "in `benchmarks/mutation_results.json`, with the change each survivor makes where it was "
            "recorded).\n\n" + table(results)
            + "\n\nSurvivors explained as equivalent:\n\n"
            + "\n".join(f"- `{m}` ({n}{'' if s == 'survived' else ', ' + s}): {EXPLAINED[m]}"
                        for n, m, s in explained)
            + "\n\nSurvivors neither killed nor explained yet, by function (a test should kill them):\n\n"
            + ("\n".join(f"- {n}: `{f}`: {k}" for (n, f), k in left.items()) or "- none")
            + "\n\nTimed out (the tests ran past mutmut's time limit on the mutant; not counted as killed):\n\n"
            + ("\n".join(f"- `{m}` ({n})" for n, m in timed_out) or "- none") + "\n")
    doc = ROOT / "docs" / "mutation.md"
    head = doc.read_text().split(MARK)[0] if doc.exists() else "# Mutation testing\n\n"
    doc.parent.mkdir(exist_ok=True)
    doc.write_text(head + MARK + "\n" + text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=sorted(MODULES), action="append", help="these modules only")
    ap.add_argument("--children", type=int, default=2, help="mutants tested at once")
    ap.add_argument("--table", action="store_true", help="run nothing: rewrite the table from the stored results")
    ap.add_argument("--recheck", action="store_true",
                    help="run only the stored survivors (not explained) of the modules again, after new tests, "
                         "the timed-out mutants and those a stopped run never reached")
    ap.add_argument("--functions", nargs="+", help="with --recheck: only the survivors in these functions")
    ap.add_argument("--rerun", nargs="+", metavar="FUNCTION",
                    help="run every mutant of these functions (changed since the stored run: mutmut numbers a "
                         "function's mutants afresh) and replace their stored statuses; the others are kept, or "
                         "rechecked with --recheck")
    ap.add_argument("--collect", nargs=2, metavar=("MODULE", "SCRATCH"),
                    help="run nothing: store what a run (going, or stopped) has found so far in its scratch copy")
    ap.add_argument("--no-diffs", action="store_true", help="with --collect: statuses only")
    ap.add_argument("--merge", action="store_true",
                    help="with --collect: keep the stored status of every mutant the run did not get to (a stopped "
                         "--recheck)")
    args = ap.parse_args()
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    todo = [] if args.table or args.collect else args.only or list(MODULES)
    if args.collect:
        found = collect(args.collect[0], Path(args.collect[1]), diffs=not args.no_diffs)
        if args.merge and args.collect[0] in stored:
            got = {m: row for m, *row in found if row[0] != NOT_RUN}
            found = [(m, *got.pop(m, row)) for m, *row in stored[args.collect[0]]] + [(m, *r) for m, r in got.items()]
        stored = store(args.collect[0], found)
    for name in todo:
        if (args.recheck or args.rerun) and name in stored:
            rerun = set(args.rerun or ())
            again = [m for m, st, *_ in stored[name] if args.recheck and st not in KILLED and m not in EXPLAINED
                     and _function(m) not in rerun and (not args.functions or _function(m) in args.functions)]
            dotted = MODULES[name].path.removesuffix(".py").replace("/", ".")
            names = again + [_pattern(dotted, f) for f in sorted(rerun)]
            fresh = {m: row for m, *row in run_module(name, args.children, names)} if names else {}
            kept = [(m, *fresh[m]) if m in again and m in fresh and fresh[m][0] != NOT_RUN else (m, *row)
                    for m, *row in stored[name] if _function(m) not in rerun]
            stored = store(name, kept + [(m, *row) for m, row in fresh.items() if _function(m) in rerun])
        else:
            stored = store(name, run_module(name, args.children))
    results = {name: [(m, s) for m, s, *_ in stored[name]] for name in MODULES if name in stored}
    print(write_doc(results))


def store(name: str, rows: list[tuple[str, str, str | None]]) -> dict[str, list]:
    """Each module as soon as it is done, over what another run may have stored meanwhile."""
    stored = {**(json.loads(RESULTS.read_text()) if RESULTS.exists() else {}), name: rows}
    RESULTS.write_text(json.dumps(stored, indent=1) + "\n")
    return stored


MARK = "<!-- written by benchmarks/mutation.py from here on -->"


if __name__ == "__main__":
    main()
