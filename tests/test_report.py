import json
import math
import os
from pathlib import Path

import pytest

from benchbench.errors import ReportError
from benchbench.model import report as rp
from benchbench.model.report import CaseKey, Report, Result

DATA = Path(__file__).parent / "data"


def make_report(**kw) -> Report:
    key = CaseKey.make("s", "b", {"n": 4, "mode_name": "x"}, "cpu", "float32", "eager")
    results = [
        Result(key=key, status="ok", samples=[1.0e-3, 1.1e-3, 0.9e-3], loops_per_sample=10,
               warmup={"calls": 3, "seconds": 0.1}, first_call_s=0.5, work={"flops": 2e6, "items": 8.0},
               metrics={"compile_s": 1.5, "note": "hi"}, flags=["few-samples"], peak_memory_bytes=1234,
               timing_method="perf_counter", definition_hash="sha256:abc", duration_s=0.7),
        Result(key=CaseKey.make("s", "c"), status="failed", reason="RuntimeError: boom", details="Traceback..."),
        Result(key=CaseKey.make("s", "d"), status="skipped", reason="not here"),
    ]
    fields = dict(run_id="r1", created_at="2026-01-01T00:00:00Z", label="t", command=["benchbench", "run"],
                  profile="quick", benchbench_version="0.1.0", environment={"fingerprint": {"torch": "x"}},
                  backends=[{"name": "cpu", "available": True}], results=results)
    return Report(**{**fields, **kw})


def test_round_trip_gives_equal_objects(tmp_path):
    r = make_report()
    path = rp.save(r, tmp_path / "r.json")
    back = rp.load(path)
    assert back == r
    assert back.results[0].stats == r.results[0].stats
    assert back.results[0].key.params_dict == {"n": 4, "mode_name": "x"}


def test_stats_and_derived_are_caches_recomputed_from_samples(tmp_path):
    r = make_report()
    doc = json.loads(rp.dumps(r))
    assert doc["results"][0]["stats"]["median"] == pytest.approx(1.0e-3)
    assert doc["results"][0]["derived"]["flops_per_s"] == pytest.approx(2e9)
    doc["results"][0]["stats"]["median"] = 42.0  # a tampered cache is ignored
    back = rp.parse(doc)
    assert back.results[0].stats.median == pytest.approx(1.0e-3)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "sub" / "r.json"
    rp.save(make_report(), path)
    rp.save(make_report(label="second"), path)
    assert rp.load(path).label == "second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.json"]


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    rp.save(make_report(), path)
    before = path.read_text()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        rp.save(make_report(label="new"), path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_non_finite_numbers_become_null(tmp_path):
    r = make_report()
    r.results[0].metrics["speedup"] = math.inf
    text = rp.dumps(r)
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text)["results"][0]["metrics"]["speedup"] is None


def test_golden_v1_report_loads_as_one_round():
    report = rp.load(DATA / "report_v1.json")
    assert report.schema_version == rp.SCHEMA_VERSION
    assert report.results and all(r.status == "ok" and r.samples and r.stats for r in report.results)
    assert all(r.n_rounds == 1 and r.stats.rounds == 1 for r in report.results)
    assert report.label == "golden"
    # the one round's statistics are the within-run ones the file was written with
    doc = json.loads((DATA / "report_v1.json").read_text())
    stored = doc["results"][0]["stats"]
    assert report.results[0].stats.median == pytest.approx(stored["median"])
    assert report.results[0].stats.ci_low == pytest.approx(stored["ci_low"])


def test_golden_v2_report_loads_with_its_rounds():
    report = rp.load(DATA / "report_v2.json")
    assert report.schema_version == 2 and len(report.rounds) >= 2
    ok = [r for r in report.results if r.ok]
    assert ok and all(r.n_rounds == len(report.rounds) == r.stats.rounds for r in ok)
    assert all(sum(m["n"] for m in r.rounds) == len(r.samples) for r in ok)
    assert all("position" in m and "round" in m for r in ok for m in r.rounds)


def test_rounds_round_trip_and_split_samples(tmp_path):
    r = Result(key=CaseKey.make("s", "b"), status="ok", samples=[1.0, 1.1, 2.0, 2.1, 2.2],
               rounds=[{"round": 0, "n": 2, "position": 3}, {"round": 1, "n": 3, "position": 0}])
    assert r.round_samples == [[1.0, 1.1], [2.0, 2.1, 2.2]]
    assert r.stats.rounds == 2
    back = Result.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    with pytest.raises(ValueError, match="add up"):
        Result(key=CaseKey.make("s", "b"), status="ok", samples=[1.0], rounds=[{"round": 0, "n": 2}])


@pytest.mark.parametrize("content, message", [
    ('{"schema": "benchbench.report", "schema_version": 1, "run_id": ', "not valid JSON"),
    ('{"hello": "world"}', "not a benchbench report"),
    ("[1, 2, 3]", "not a benchbench report"),
    ('{"schema": "benchbench.report", "schema_version": 999, "run_id": "x", "created_at": "t"}',
     "newer benchbench"),
    ('{"schema": "benchbench.report", "schema_version": "one"}', "invalid schema_version"),
    ('{"schema": "benchbench.report", "schema_version": 1}', "run_id: missing"),
])
def test_unreadable_files_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ReportError, match=message) as exc:
        rp.load(path)
    assert "\n" not in str(exc.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ReportError, match="no such file"):
        rp.load(tmp_path / "nope.json")
    with pytest.raises(ReportError, match="directory"):
        rp.load(tmp_path)


def test_older_schemas_migrate_through_the_chain(monkeypatch):
    """Pretend the current format is 3: a v1 file must pass through both migrations in order."""
    doc = json.loads((DATA / "report_v1.json").read_text())
    seen = []

    def v1_to_v2(d):
        seen.append(1)
        return {**d, "label": "migrated-" + (d.get("label") or "")}

    def v2_to_v3(d):
        seen.append(2)
        return d

    monkeypatch.setattr(rp, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(rp, "MIGRATIONS", {1: v1_to_v2, 2: v2_to_v3})
    report = rp.parse(doc)
    assert seen == [1, 2]
    assert report.label == "migrated-golden"
    monkeypatch.setattr(rp, "MIGRATIONS", {1: v1_to_v2})
    with pytest.raises(ReportError, match="no migration from report schema 2"):
        rp.parse(doc)


def test_case_key_label_and_identity():
    a = CaseKey.make("tensor_ops", "matmul", {"n": 1024, "k": 2}, "cuda", "bfloat16", None)
    b = CaseKey.make("tensor_ops", "matmul", {"k": 2, "n": 1024}, "cuda", "bfloat16", None)
    assert a == b and hash(a) == hash(b)
    assert a.label == "tensor_ops/matmul[k=2,n=1024] cuda bfloat16"
    assert CaseKey.from_dict(a.to_dict()) == a


def test_unknown_status_rejected():
    with pytest.raises(ValueError):
        Result(key=CaseKey.make("s", "b"), status="great")


def test_saved_report_has_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = rp.save(make_report(), tmp_path / "r.json")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_check_writable_refuses_unwritable_paths_with_one_line(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(rp.UserError, match="a_file is a file, not a folder"):
        rp.check_writable(a_file / "deeper" / "report.json")
    with pytest.raises(rp.UserError, match="it is a folder"):
        rp.check_writable(tmp_path)
    target = tmp_path / "new" / "folder" / "report.json"
    assert rp.check_writable(target) == target
    assert target.parent.is_dir() and list(target.parent.iterdir()) == []  # the probe file is gone


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a folder without write permission")
def test_check_writable_refuses_a_folder_without_permission(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(rp.UserError, match="Permission denied"):
        rp.check_writable(locked / "report.json")
