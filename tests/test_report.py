import json
import math
import os
import re
from dataclasses import fields
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
               metrics={"compile_s": 1.5}, note="hi", flags=["few-samples"], peak_memory_bytes=1234,
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
    assert report.schema_version == rp.SCHEMA_VERSION and len(report.rounds) >= 2
    ok = [r for r in report.results if r.ok]
    assert ok and all(r.n_rounds == len(report.rounds) == r.stats.rounds for r in ok)
    assert all(sum(m["n"] for m in r.rounds) == len(r.samples) for r in ok)
    assert all("position" in m and "round" in m for r in ok for m in r.rounds)


# --- schema 3: typed result fields ---------------------------------------------------------------------
# Golden files of every version: report_v1.json and report_v2.json are real tensor_ops runs;
# report_v2_typed.json was written by the schema-2 code (commit 53fc621) from results that hold, among their
# metrics, every key that schema 3 makes a typed field, in the shapes the suites wrote them (the dataloader's
# round statistic and recommendation, the distributed suite's world size and nodes, tensor_ops' bound, a
# pytest-benchmark import's summary); report_v3.json is that report as schema 3 writes it.
OLDER_GOLDENS = ["report_v1.json", "report_v2.json", "report_v2_typed.json"]
CACHES = ("stats", "derived")


@pytest.mark.parametrize("name", OLDER_GOLDENS)
def test_every_older_golden_reads_with_the_typed_fields_filled_from_its_metrics(name):
    doc = json.loads((DATA / name).read_text())
    assert doc["schema_version"] < rp.SCHEMA_VERSION == 3
    report = rp.load(DATA / name)
    assert report.schema_version == rp.SCHEMA_VERSION
    moved = 0
    for raw, result in zip(doc["results"], report.results, strict=True):
        old = raw.get("metrics") or {}
        for name_ in rp.V3_FIELDS:
            assert getattr(result, name_) == old.get(name_)  # None where the old file had no such key
            assert name_ not in result.metrics
            moved += name_ in old
        assert result.metrics == {k: v for k, v in old.items() if k not in rp.V3_FIELDS}
    assert moved > 0


def test_the_typed_golden_fills_every_typed_field_and_the_harness_reads_them():
    import importlib

    from benchbench.analysis.ceilings import bound
    from benchbench.analysis.compare import SHAPE_FIELDS, summary_of
    from benchbench.run import registry

    dataloader = registry.builtin_modules(["dataloader"])["dataloader"]
    recommendation = importlib.import_module(f"{dataloader.__package__}._dataloader.page").recommendation

    report = rp.load(DATA / "report_v2_typed.json")
    seen = {f for r in report.results for f in r.typed_values()}
    assert seen == set(rp.V3_FIELDS)
    loader, collective, copy, imported = report.results
    assert loader.round_statistic == "median" and recommendation(report.results)["num_workers"] == 2
    assert {getattr(collective, f) for f in SHAPE_FIELDS} == {2, 1}
    assert bound(copy) == "memory" and copy.memory_kind == "rss-peak"
    assert summary_of(imported).median == imported.imported_stats["median"] and not imported.samples


def test_golden_v3_report_keeps_its_fields_when_saved_again():
    text = (DATA / "report_v3.json").read_text()
    report = rp.load(DATA / "report_v3.json")
    assert report.schema_version == 3 and report.label == "golden"
    assert report.results[0].recommendation["setting"] == "num_workers=2"
    stored, again = json.loads(text), json.loads(rp.dumps(report))
    for doc in (stored, again):
        for r in doc["results"]:
            for name in CACHES:
                r.pop(name)
    assert again == stored


def test_to_dict_follows_the_dataclass_fields_and_writes_typed_fields_only_when_set():
    bare = Result(key=CaseKey.make("s", "b"), status="ok", samples=[1.0])
    names = [f.name for f in fields(Result) if f.name != "samples" and "typed" not in f.metadata]
    assert list(bare.to_dict()) == [*names, *CACHES]
    typed = {"bound": "memory", "round_statistic": "median", "world_size": 4, "nnodes": 2, "note": "n",
             "memory_kind": "rss-peak", "recommendation": {"num_workers": 2},
             "imported_stats": {"n": 3, "median": 1.0, "iqr": 0.1}}
    assert {f.name for f in rp.typed_fields(Result)} == set(typed)
    full = Result(key=CaseKey.make("s", "b"), status="ok", samples=[1.0], **typed)
    doc = full.to_dict()
    assert {k: doc[k] for k in typed} == typed
    assert Result.from_dict(json.loads(json.dumps(doc))) == full


def test_a_worker_answer_of_an_older_benchbench_reads_with_the_typed_fields():
    """`ab` runs a baseline tree's own worker, which answers in its own (schema-2) shape."""
    answer = {"key": CaseKey.make("s", "b").to_dict(), "status": "ok", "samples": [1.0, 2.0],
              "metrics": {"bound": "compute", "memory_kind": "rss-peak", "compile_s": 2.0}}
    r = Result.from_dict(answer)
    assert (r.bound, r.memory_kind, r.metrics) == ("compute", "rss-peak", {"compile_s": 2.0})
    assert answer["metrics"]["bound"] == "compute"  # the answer itself is left as it was
    # a field already set keeps its value; the old key then stays a free-form metric
    both = Result.from_dict({**answer, "bound": "memory"})
    assert both.bound == "memory" and both.metrics["bound"] == "compute"
    # in a report of this schema `metrics` is free-form: nothing moves, and nothing escapes the validator
    doc = json.loads((DATA / "report_v3.json").read_text())
    doc["results"][0]["metrics"]["world_size"] = [1, 2]
    free = rp.parse(doc).results[0]
    assert free.world_size is None and free.metrics["world_size"] == [1, 2]


@pytest.mark.parametrize("name, value, message", [
    ("bound", 3, "results[0].bound: expected a string"),
    ("round_statistic", ["median"], "results[0].round_statistic: expected a string"),
    ("world_size", 0, "results[0].world_size"),
    ("world_size", 1.5, "results[0].world_size"),
    ("nnodes", "2", "results[0].nnodes: expected a number"),
    ("memory_kind", {}, "results[0].memory_kind: expected a string"),
    ("note", 1.0, "results[0].note: expected a string"),
    ("recommendation", "num_workers=2", "results[0].recommendation: expected an object"),
    ("imported_stats", {"n": 3, "iqr": 0.1}, "results[0].imported_stats.median: missing"),
])
def test_the_validator_checks_the_typed_fields(name, value, message):
    doc = json.loads((DATA / "report_v3.json").read_text())
    doc["results"][0][name] = value
    with pytest.raises(ReportError, match=re.escape(message)) as exc:
        rp.parse(doc, "r.json")
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("name, value", [("compile_s", "slow"), ("energy", 3), ("power_w", "hot"),
                                         ("instructions", [1]), ("graph_break_reasons", "one")])
def test_the_validator_checks_the_metric_keys_their_metrics_read(name, value):
    doc = json.loads((DATA / "report_v3.json").read_text())
    doc["results"][0]["metrics"][name] = value
    with pytest.raises(ReportError, match=re.escape(f"results[0].metrics.{name}")):
        rp.parse(doc, "r.json")


def test_every_metric_key_belongs_to_a_registered_metric():
    from benchbench import metrics

    assert {owner for _, owner in rp.METRIC_KEYS.values()} <= set(metrics.ALL)
    assert not set(rp.METRIC_KEYS) & set(rp.V3_FIELDS)


def test_a_report_of_the_next_schema_is_refused_in_one_line():
    doc = json.loads((DATA / "report_v3.json").read_text())
    doc["schema_version"] = rp.SCHEMA_VERSION + 1
    with pytest.raises(ReportError, match="report schema 4, this version reads up to 3") as exc:
        rp.parse(doc, "r.json")
    assert "\n" not in str(exc.value)


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
