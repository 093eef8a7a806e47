import json

import numpy as np
import pytest

from benchbench.analysis import history as hs
from benchbench.errors import UserError
from benchbench.model.report import CaseKey, Report, Result, save

MATMUL = CaseKey.make("tensor_ops", "matmul", {"n": 256}, "cpu", "float32")
ADD = CaseKey.make("tensor_ops", "add", {"n": 1024}, "cpu", "float32")
CONV = CaseKey.make("tensor_ops", "conv", {}, "cpu", "float32")
RUNS = 14


def samples(rng, level: float, n: int = 30, cv: float = 0.01) -> list[float]:
    return list(level * (1 + cv * rng.standard_normal(n)))


def make_report(i: int, *, matmul: float = 1e-3, add: float = 2e-4, torch: str = "2.14.1", cpu: str = "AMD EPYC",
                host: str = "ci", conv: str = "ok", with_add: bool = True, governor: str = "performance",
                definition: str = "sha256:a", method: str = "perf_counter") -> Report:
    """Run number i (1-based) of a synthetic history, its samples seeded by i."""
    rng = np.random.default_rng(i)
    results = [Result(key=MATMUL, status="ok", samples=samples(rng, matmul), timing_method=method,
                      definition_hash=definition)]
    if with_add:
        results.append(Result(key=ADD, status="ok", samples=samples(rng, add), timing_method="perf_counter"))
    if conv == "ok":
        results.append(Result(key=CONV, status="ok", samples=samples(rng, 5e-3), timing_method="perf_counter"))
    else:
        results.append(Result(key=CONV, status=conv, reason=f"{conv} on purpose"))
    fingerprint = {"fingerprint_version": 1, "torch": torch, "cpu": cpu, "threads": 8, "hostname": f"{host}-{i}",
                   "python": "3.11.7"}
    facts = {"git_commit": f"{i:02d}" * 20, "cpu": {"governors": [governor]}}
    return Report(run_id=f"run{i:02d}", created_at=f"2026-03-{i:02d}T12:00:00Z", label=f"main-{i}",
                  environment={"fingerprint": fingerprint, "facts": facts, "checks": []},
                  backends=[{"name": "cpu", "available": True, "device_name": cpu}], results=results)


def planted(i: int) -> Report:
    """matmul 10% slower from run 5 (code); add 20% slower from run 10, where torch changed too;
    conv failed in run 3 and skipped in run 7; add missing from run 12."""
    return make_report(i, matmul=1e-3 * (1.10 if i >= 5 else 1.0), add=2e-4 * (1.20 if i >= 10 else 1.0),
                       torch="2.15.0" if i >= 10 else "2.14.1",
                       conv={3: "failed", 7: "skipped"}.get(i, "ok"), with_add=i != 12)


@pytest.fixture
def folder(tmp_path):
    for i in range(RUNS, 0, -1):  # written out of order: history orders by created_at
        save(planted(i), tmp_path / f"r{(i * 5) % 17:02d}.json")
    return tmp_path


def series_of(h: hs.History, key: CaseKey) -> hs.Series:
    return next(s for s in h.series if s.key == key)


def test_planted_slowdown_names_the_benchmark_and_run_5(folder):
    h = hs.history(folder)
    assert [r.run_id for r in h.runs] == [f"run{i:02d}" for i in range(1, RUNS + 1)]
    matmul = series_of(h, MATMUL)
    assert len(matmul.changes) == 1
    c = matmul.changes[0]
    assert c.run.run_id == "run05" and c.previous.run_id == "run04"
    assert c.run.label == "main-5" and c.run.git_commit == "05" * 20
    assert c.cause == hs.CODE_OR_UNKNOWN
    assert c.ratio == pytest.approx(1.10, abs=0.01)
    assert c.ratio_low < 1.10 < c.ratio_high and c.ratio_low > 1.05
    assert c.pvalue <= 3e-5
    assert not series_of(h, CONV).changes  # a flat series gets none


def test_eight_reports_are_enough(tmp_path):
    for i in range(1, 9):
        save(make_report(i, matmul=1e-3 * (1.10 if i >= 5 else 1.0)), tmp_path / f"{i}.json")
    h = hs.history(tmp_path)
    assert [(s.key, c.run.run_id) for s in h.series for c in s.changes] == [(MATMUL, "run05")]


def test_step_at_a_torch_upgrade_is_an_environment_change(folder):
    h = hs.history(folder)
    add = series_of(h, ADD)
    assert [c.run.run_id for c in add.changes] == ["run10"]
    c = add.changes[0]
    assert c.cause == hs.ENVIRONMENT_CHANGE
    assert c.keys == ["torch"]
    torch = next(e for e in c.environment if e.key == "torch")
    assert (torch.before, torch.after, torch.run_id) == ("2.14.1", "2.15.0", "run10")
    assert not any(e.key == "hostname" for e in c.environment)  # recorded, never a cause


def test_an_environment_change_near_the_step_explains_it_but_a_far_one_does_not():
    reports = [make_report(i, matmul=1e-3 * (1.1 if i >= 6 else 1.0), torch="2.15" if i >= 7 else "2.14")
               for i in range(1, 13)]
    c = series_of(hs.analyse(reports), MATMUL).changes[0]
    assert c.run.run_id == "run06" and c.cause == hs.ENVIRONMENT_CHANGE
    reports = [make_report(i, matmul=1e-3 * (1.1 if i >= 6 else 1.0), torch="2.15" if i >= 10 else "2.14")
               for i in range(1, 13)]
    assert series_of(hs.analyse(reports), MATMUL).changes[0].cause == hs.CODE_OR_UNKNOWN


def test_a_governor_change_is_an_environment_change():
    reports = [make_report(i, matmul=1e-3 * (1.1 if i >= 6 else 1.0),
                           governor="powersave" if i >= 6 else "performance") for i in range(1, 13)]
    c = series_of(hs.analyse(reports), MATMUL).changes[0]
    assert c.cause == hs.ENVIRONMENT_CHANGE and c.keys == ["cpu_governor"]


def test_a_step_where_the_benchmark_itself_changed_says_so():
    reports = [make_report(i, matmul=1e-3 * (1.1 if i >= 6 else 1.0), definition="sha256:b" if i >= 6 else "sha256:a")
               for i in range(1, 13)]
    assert series_of(hs.analyse(reports), MATMUL).changes[0].cause == hs.BENCHMARK_CHANGE


def test_results_timed_another_way_are_another_series():
    reports = [make_report(i, method="perf_counter" if i <= 6 else "callgrind-instructions") for i in range(1, 13)]
    h = hs.analyse(reports)
    matmul = [s for s in h.series if s.key == MATMUL]
    assert sorted(s.timing_method for s in matmul) == ["callgrind-instructions", "perf_counter"]
    assert all(len(s.ok_points) == 6 and not s.changes for s in matmul)


def test_failed_skipped_and_missing_results_are_points_not_values(folder):
    h = hs.history(folder)
    conv = series_of(h, CONV)
    assert {p.run.run_id: p.status for p in conv.points if p.status != "ok"} == {"run03": "failed",
                                                                                   "run07": "skipped"}
    assert next(p for p in conv.points if p.status == "failed").reason == "failed on purpose"
    add = series_of(h, ADD)
    assert [p.run.run_id for p in add.points if p.status == "missing"] == ["run12"]
    assert len(add.points) == RUNS and len(add.ok_points) == RUNS - 1


def test_different_machines_are_separate_series():
    reports = [make_report(i, cpu="AMD EPYC") for i in range(1, 11)]
    reports += [make_report(i + 20, cpu="Intel Xeon", matmul=2e-3) for i in range(1, 11)]
    h = hs.analyse(reports)
    machines = sorted(s.machine for s in h.series if s.key == MATMUL)
    assert machines == ["cpu: AMD EPYC", "cpu: Intel Xeon"]
    assert all(len(s.points) == 10 and not s.changes for s in h.series)  # the 2x between machines is no step


def test_a_single_report_gives_series_without_change_points(tmp_path):
    save(make_report(1), tmp_path / "one.json")
    h = hs.history(tmp_path)
    assert len(h.series) == 3
    assert all(len(s.points) == 1 and not s.changes and "need at least" in s.note for s in h.series)


def test_index_lines_are_read_deduplicated_and_a_torn_line_is_skipped(tmp_path):
    for i in range(1, 5):
        hs.append(make_report(i), tmp_path)
    save(make_report(2), tmp_path / "run2.json")  # the same run as a file too: counted once
    with open(tmp_path / hs.INDEX, "a") as fh:
        fh.write('{"schema": "benchbench.report", "run_')  # a crash mid-line
    (tmp_path / "notes.json").write_text('{"not": "a report"}')
    h = hs.history(tmp_path)
    assert [r.run_id for r in h.runs] == ["run01", "run02", "run03", "run04"]
    assert len(h.skipped) == 2
    assert any("history.jsonl:5" in s and "truncated" in s for s in h.skipped)
    lines = (tmp_path / hs.INDEX).read_text().splitlines()
    assert json.loads(lines[0])["run_id"] == "run01" and len(lines) == 5


def test_benchmark_glob_selects_series(folder):
    h = hs.history(folder, ["tensor_ops/mat*"])
    assert [s.key for s in h.series] == [MATMUL]
    assert hs.history(folder, ["nothing*"]).series == []


def test_empty_or_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no benchbench reports"):
        hs.history(tmp_path)
    with pytest.raises(UserError, match="not a folder"):
        hs.history(tmp_path / "nope")


def test_to_dict_is_json(folder):
    doc = json.loads(json.dumps(hs.history(folder).to_dict(), allow_nan=False))
    add = next(s for s in doc["series"] if s["key"]["benchmark"] == "add")
    assert add["changes"][0]["cause"] == hs.ENVIRONMENT_CHANGE and add["changes"][0]["keys"] == ["torch"]


def test_an_append_after_a_crashed_one_starts_on_a_fresh_line(tmp_path):
    hs.append(make_report(1), tmp_path)
    with open(tmp_path / hs.INDEX, "a") as fh:
        fh.write('{"schema": "benchbench.report", "run_')  # the crashed run's fragment, no newline
    hs.append(make_report(2), tmp_path)
    h = hs.history(tmp_path)
    assert [r.run_id for r in h.runs] == ["run01", "run02"]  # the next run is not glued onto the fragment
    assert len(h.skipped) == 1 and "history.jsonl:2" in h.skipped[0]


def test_an_append_waits_for_the_lock_another_run_holds(tmp_path):
    import fcntl
    import threading
    import time

    hs.append(make_report(1), tmp_path)
    with open(tmp_path / hs.INDEX, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        writer = threading.Thread(target=hs.append, args=(make_report(2), tmp_path))
        writer.start()
        time.sleep(0.5)
        assert writer.is_alive()  # blocked on the lock
        assert len((tmp_path / hs.INDEX).read_text().splitlines()) == 1
        fcntl.flock(held, fcntl.LOCK_UN)
    writer.join(timeout=10)
    assert [r.run_id for r in hs.history(tmp_path).runs] == ["run01", "run02"]


def test_concurrent_appends_keep_every_line(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(4) as pool:
        list(pool.map(hs.append, [make_report(i) for i in range(1, 13)], [tmp_path] * 12))
    h = hs.history(tmp_path)
    assert len(h.runs) == 12 and not h.skipped


def test_a_history_path_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text("")
    with pytest.raises(UserError, match="is a file; give a folder"):
        hs.check_folder(path)
    assert hs.check_folder(tmp_path / "new" / "folder").is_dir()
