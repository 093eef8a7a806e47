"""output/report_html.py: the report page, on synthetic reports with known content and on the reference reports."""

import functools
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from test_compare import FP, make_report, result, timings

from benchbench import page as suite_page
from benchbench.analysis.compare import compare
from benchbench.analysis.gate import Policy, gate
from benchbench.model.formats import load_any, load_reports
from benchbench.model.report import CaseKey, load
from benchbench.output.report_html import report_page
from benchbench.run import registry

REFERENCE = Path(__file__).parent.parent / "reports" / "reference"
TENSOR_OPS = REFERENCE / "cpu-epyc-2core_tensor_ops-autograd_quick.json"
TRAINING = REFERENCE / "cpu-epyc-2core_training_quick.json"


def svg_texts(page):
    return re.findall(r"<text[^>]*>([^<]*)</text>", page)


def section(page, anchor):
    m = re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.S)
    assert m, anchor
    return m[1]


def synthetic(n_bench=50, seed=0, speed=1.0, run_id="r", fingerprint=None, failed=(), skipped=(), absent=()):
    rng = np.random.default_rng(seed)
    results = [result(CaseKey.make("tensor_ops", "ceiling_matmul", {}, "cpu", "float32"),
                      timings(rng, 50, 0.1 / speed, 0.02), work={"flops": 2e10})]
    for i in range(n_bench):
        key = CaseKey.make("tensor_ops", f"op{i:02d}", {"n": 2 ** (6 + i % 8)}, "cpu", "float32")
        if i in absent:
            continue
        if i in failed:
            results.append(result(key, status="failed", reason=f"RuntimeError: op{i:02d} broke"))
        elif i in skipped:
            results.append(result(key, status="skipped", reason="needs a GPU"))
        else:
            work = {"flops": 1e8 * (1 + i % 5)} if i % 2 else {"bytes": 4e7 * (1 + i % 3)}
            results.append(result(key, timings(rng, 50, 1e-3 * (1 + i % 7) / speed, 0.03), work=work))
    return make_report(results, fingerprint=fingerprint, run_id=run_id)


def test_page_for_50_benchmarks_and_5_reports_stays_under_1_mb_and_loads_back(tmp_path):
    reports = [synthetic(seed=s, speed=1 + 0.1 * s, run_id=f"run{s}", failed={3 + s}, skipped={7}, absent={11 + s})
               for s in range(5)]
    names = [f"machine-{s}" for s in range(5)]
    page = report_page(reports, names, compare(reports, names))
    size = len(page.encode())
    assert size < 1_000_000, f"{size} bytes"
    assert all(name in page for name in names)
    assert "op49[n=128] float32" in page  # the last case made it into the charts and the table
    path = tmp_path / "page.html"
    path.write_text(page)
    back = load_reports(path)
    assert [r.run_id for r in back] == [r.run_id for r in reports]
    for a, b in zip(reports, back, strict=True):
        assert [(r.key, r.status, r.samples, r.work) for r in a.results] == [
            (r.key, r.status, r.samples, r.work) for r in b.results]
    gm = section(page, "s-comparison")
    assert "geometric mean" in gm and "machine-4" in gm and "faster" in gm


def test_failed_skipped_and_missing_cases_are_shown_as_such():
    a = synthetic(n_bench=6, run_id="a")
    b = synthetic(n_bench=6, seed=1, run_id="b", failed={1}, skipped={2}, absent={3})
    page = report_page([a, b], ["a", "b"], compare([a, b], ["a", "b"]))
    texts = svg_texts(page)
    assert {"failed", "skipped", "missing"} <= set(texts)  # written where the bar would be
    suite = section(page, "s-suite-tensor_ops")
    assert "RuntimeError: op01 broke" in suite and "needs a GPU" in suite
    missing = section(page, "s-not-measured")
    assert "tensor_ops/op03[n=512] cpu float32" in missing and "not in this report" in missing
    assert "tensor_ops/op01[n=128] cpu float32" in missing and ">failed<" in missing


def test_single_report_page_shows_machine_checks_backends_ceilings(tmp_path):
    rep = load(TENSOR_OPS)
    page = report_page([rep], ["ref"])
    assert "s-comparison" not in page and "s-gate" not in page
    assert "AMD EPYC" in section(page, "s-machine") and "2.14.1+cu130" in section(page, "s-machine")
    checks = section(page, "s-environment-checks")
    assert "2 info" in checks and "16 pass" in checks and "CPU frequency governor not readable" in checks
    backends = section(page, "s-backends")
    assert "no NVIDIA driver found" in backends and "56 ok" in backends
    ops = section(page, "s-suite-tensor_ops")
    assert "% of the measured ceiling" in ops and ops.count("<svg") >= 4
    assert "TF32 is a GPU tensor-core format; the CPU has none" in ops  # a skipped case and why
    path = tmp_path / "one.html"
    path.write_text(page)
    again = load_any(path)
    assert again.run_id == rep.run_id and len(again.results) == len(rep.results)
    assert [r.stats.median for r in again.results if r.ok] == [r.stats.median for r in rep.results if r.ok]


@functools.cache
def builtin_suite_hooks():
    """The training and dataloader suites, whose page hooks draw their parts of their sections."""
    return registry.builtin_modules(["training", "dataloader"])


def test_training_page_draws_a_pay_off_only_from_a_speed_up_the_suite_trusts():
    rep = load(TRAINING)
    training = section(report_page([rep], ["training"], suites=builtin_suite_hooks()), "s-suite-training")
    assert "Eager vs compiled" in training
    notes = " ".join(svg_texts(training))
    # what the stored metrics say: mlp is slower than eager beyond the noise; cnn, resnet18 and transformer
    # are within it (their throughputs' intervals overlap), so the page names no break-even for them
    stored = {r.key.benchmark: r.metrics for r in rep.results if r.key.mode == "compile"}
    assert stored["mlp"]["speedup_within_noise"] is False and stored["mlp"]["break_even_steps"] is None
    assert all(stored[m]["speedup_within_noise"] is True for m in ("cnn", "resnet18", "transformer"))
    assert "0.93x, compile 9.1 s, never pays off" in notes
    assert "1.49x (within noise), compile 13.8 s" in notes
    assert "pays off after" not in notes
    assert f"{stored['cnn']['break_even_steps']:,} steps" not in training  # 396: stored, not trusted
    assert f"{stored['resnet18']['break_even_steps_warm']:,} steps" not in training
    assert training.count(">within noise</td>") == 6  # cold and warm break-even of three models


def compiled_pair(flags=(), speedup_within_noise=False):
    """An eager and a compiled training case, the compiled one 2x faster, with the metrics the training
    suite's derive writes: 20 s compile, so 4,000 steps to break even."""
    rng = np.random.default_rng(5)
    work = {"items": 32, "items_unit": "samples"}
    k = CaseKey.make("training", "mlp", {"batch": 32}, "cpu", "float32", "eager")
    eager = result(k, timings(rng, 20, 0.010, 0.01), work=work)
    compiled = result(replace(k, mode="compile"), timings(rng, 20, 0.005, 0.01), work=work, flags=list(flags),
                      metrics={"speedup": 2.0, "compile_s": 20.0, "break_even_steps": 4000, "compile_warm_s": 2.0,
                               "break_even_steps_warm": 400, "speedup_within_noise": speedup_within_noise})
    return make_report([eager, compiled])


@pytest.mark.parametrize("flags, within, shown", [
    ((), False, "2.00x, compile 20 s, pays off after 4,000 steps"),
    (("loss-mismatch",), False, "2.00x (not trusted: loss mismatch), compile 20 s"),
    ((), True, "2.00x (within noise), compile 20 s"),
])
def test_a_compiled_result_the_suite_distrusts_never_pays_off_on_the_page(flags, within, shown):
    training = section(report_page([compiled_pair(flags, within)], ["r"], suites=builtin_suite_hooks()), "s-suite-training")
    notes = " ".join(svg_texts(training))
    assert shown in notes
    trusted = not flags and not within
    assert ("pays off" in notes) is trusted
    assert ("4,000 steps" in training) is trusted and ("400 steps" in training) is trusted


def dataloader_report(with_recommendation=True):
    rng = np.random.default_rng(3)
    results = []
    for bench, workers, rates in (("in_memory", (0, 1, 2, 4), (900, 1500, 2100, 2200)),
                                  ("jpeg_pipeline", (0, 1, 2), (120, 210, 380))):
        for w, r in zip(workers, rates, strict=True):
            params = {"num_workers": w, "batch": 32} if bench == "in_memory" else {
                "num_workers": w, "batch": 32, "decoder": "pil"}
            key = CaseKey.make("dataloader", bench, params, "cpu")
            results.append(result(key, timings(rng, 20, 32 / r, 0.03), work={"items": 32, "items_unit": "images"}))
    results.append(result(CaseKey.make("dataloader", "in_memory", {"num_workers": 8, "batch": 32}, "cpu"),
                          status="failed", reason="DataLoader worker (pid 42) exited unexpectedly"))
    if with_recommendation:
        chosen = next(r for r in results if r.key.benchmark == "jpeg_pipeline" and r.key.params_dict["num_workers"] == 2)
        chosen.recommendation = {"num_workers": 2, "label": chosen.key.name, "setting": "num_workers=2",
                                  "speedup": 3.17, "speedup_ci": [2.9, 3.4]}
    return make_report(results)


def test_dataloader_throughput_against_num_workers_marks_the_recommendation():
    rep = dataloader_report()
    import importlib

    dataloader = registry.builtin_modules(["dataloader"])["dataloader"]
    recommendation = importlib.import_module(f"{dataloader.__package__}._dataloader.page").recommendation

    rec = recommendation(rep.results)
    assert rec["num_workers"] == 2 and rec["_on"].benchmark == "jpeg_pipeline"
    page = report_page([rep], ["dl"], suites=builtin_suite_hooks())
    suite = section(page, "s-suite-dataloader")
    assert "Throughput against num_workers" in suite
    texts = svg_texts(suite)
    assert texts.count("recommended: num_workers=2 (3.17x the default)") == 1
    assert "in_memory[batch=32]" in texts and "jpeg_pipeline[batch=32,decoder=pil]" in texts
    assert "in_memory[batch=32,num_workers=8] cpu: failed" in suite  # not measured, and said so
    plain = section(report_page([dataloader_report(False)], ["dl"], suites=builtin_suite_hooks()), "s-suite-dataloader")
    assert "no recommendation in this report" in plain and "recommended:" not in plain


def test_dataloader_charts_tolerate_reports_without_the_expected_metrics():
    rep = dataloader_report()
    for r in rep.results:
        r.recommendation = {"num_workers": "two"}
        r.work = {}
    page = report_page([rep], ["dl"], suites=builtin_suite_hooks())
    assert "Throughput against num_workers" in page and "recommended:" not in page


def gate_result(mde=None):
    rng = np.random.default_rng(4)
    slow, noisy, steady = (CaseKey.make("ops", n, {}, "cpu", "float32") for n in ("slow", "noisy", "steady"))
    base = make_report([result(slow, timings(rng, 30, 1e-3, 0.01)), result(noisy, timings(rng, 6, 1e-3, 0.3)),
                        result(steady, timings(rng, 30, 2e-3, 0.01))], run_id="base")
    cur = make_report([result(slow, timings(rng, 30, 1.3e-3, 0.01)), result(noisy, timings(rng, 6, 1.1e-3, 0.3)),
                       result(steady, timings(rng, 30, 2e-3, 0.01))], run_id="cur")
    res = gate(base, cur, Policy(), ("main", "pr"))
    if mde is not None:
        for f in res.findings:
            f.row.mde = mde
    return base, cur, res


def test_gate_section_highlights_regressions_inconclusive_and_the_detectable_effect():
    base, cur, res = gate_result(mde=0.07)
    assert {f.outcome for f in res.findings} == {"regression", "inconclusive", "ok"}
    page = report_page([base, cur], ["main", "pr"], res.comparison, res)
    g = section(page, "s-gate")
    assert "REGRESSION: 1 regression, 1 inconclusive, 1 ok" in g
    assert g.count('<tr class="regression">') == 1 and g.count('<tr class="inconclusive">') == 1
    assert "detectable effect" in g and g.count("≥7.0%") == 3
    assert g.index("ops/slow") < g.index("ops/noisy") < g.index("ops/steady")  # what needs a look first
    assert "<svg" in g  # the ratios with their intervals
    # compare states a detectable effect for every compared case, so the column is always there
    assert "detectable effect" in section(report_page([base, cur], ["main", "pr"], res.comparison,
                                                      gate_result()[2]), "s-gate")


def test_reports_from_different_machines_are_told_apart():
    a = synthetic(n_bench=4, run_id="a")
    b = synthetic(n_bench=4, run_id="b", fingerprint={**FP, "cpu": "Apple M3", "hostname": "b"})
    page = report_page([a, b], ["a", "b"], compare([a, b], ["a", "b"]))
    machine = section(page, "s-machine")
    assert machine.count('<tr class="differs">') == 2  # cpu and hostname
    assert "cpu: AMD EPYC (a) vs Apple M3 (b)" in section(page, "s-comparison")


def test_page_needs_one_name_per_report():
    with pytest.raises(ValueError):
        report_page([synthetic(2)], ["a", "b"])
    rep = synthetic(2)
    assert "Suite tensor_ops" in report_page([replace(rep, results=rep.results)], ["a"])


def test_an_ab_pair_shows_which_side_measured_each_report():
    base, cur, res = gate_result()
    base.side, cur.side = {"name": "baseline", "ref": "main"}, {"name": "current", "ref": "HEAD", "env": {}}
    runs = section(report_page([base, cur], ["main", "pr"], res.comparison, res), "s-runs")
    assert "name=baseline, ref=main" in runs and "name=current, ref=HEAD" in runs and "env=" not in runs
    assert "<th>side</th>" not in section(report_page([synthetic(2)], ["a"]), "s-runs")


HOSTILE = "<img src=x onerror=alert(1)>\"'</script><script>alert(2)</script>&amp;"


def hostile_report(speed, run_id):
    """Every text a user or a suite controls set to markup: suite, benchmark and parameter names, run id,
    label, machine facts, flags, notes, a failure's reason, names of the runs."""
    rng = np.random.default_rng(1)
    keys = [CaseKey.make(HOSTILE, HOSTILE, {HOSTILE: HOSTILE}, "cpu", "float32"),
            CaseKey.make("training", HOSTILE, {"batch": 32}, "cpu", "float32", "eager"),
            CaseKey.make("training", HOSTILE, {"batch": 32}, "cpu", "float32", "compile")]
    results = [result(k, timings(rng, 20, 1e-3 * speed, 0.01), work={"items": 32}, flags=[HOSTILE],
                      note=HOSTILE, metrics={"speedup": 2.0, "compile_s": 1.0, "break_even_steps": 5})
               for k in keys]
    results.append(result(CaseKey.make(HOSTILE, "broken", {}, "cpu"), status="failed", reason=HOSTILE))
    return make_report(results, fingerprint={"torch": HOSTILE, "cpu": HOSTILE, "threads": 2, "hostname": HOSTILE},
                       label=HOSTILE, run_id=run_id)


def test_a_page_of_hostile_labels_shows_them_as_text_and_runs_no_script_of_theirs(tmp_path):
    base, current = hostile_report(1.0, HOSTILE), hostile_report(1.5, "r2")
    names = [HOSTILE, HOSTILE + "2"]
    for page in (report_page([base, current], names, gate=gate(base, current, Policy()), notes=[HOSTILE],
                             title=HOSTILE),
                 report_page([base, current], names, compare([base, current], names))):
        assert "<img" not in page and "alert(1)>" not in page
        assert page.count("<script") == 1 and page.count("</script>") == 1  # the page's own, nothing else
        assert "&lt;img src=x onerror=alert(1)&gt;" in page  # shown, as text
        assert "<section id=\"s-suite-training\">" in page
        path = tmp_path / "hostile.html"
        path.write_text(page)
        again = load_reports(path)[0]  # the embedded reports come back unharmed
        assert again.label == HOSTILE and again.run_id == HOSTILE
        assert {r.reason for r in again.results if not r.ok} == {HOSTILE}


def test_the_page_draws_what_a_suite_gives_it_and_knows_no_suite_itself():
    rep = dataloader_report()
    rs = {r.key: r for r in rep.results}
    ok = [k for k, r in rs.items() if r.ok and k.benchmark == "in_memory"]
    seen = []

    def page_blocks(runs, backend):
        seen.append(([run.name for run in runs], backend, {k.suite for run in runs for k in run.results}))
        (run,) = runs
        return [suite_page.Heading("Mine"), suite_page.Note("a <note>"),
                suite_page.Table([{"case": "x", "status": suite_page.Status("failed"), "n": 3}], numeric=("n",)),
                suite_page.Bars(["a", "b"], [("s1", [(run.results[ok[0]], "bar note"), (None, "")])], "my bars"),
                suite_page.Lines([("line", [(float(i), suite_page.case_label(k), run.results.get(k)) for i, k in enumerate(ok)]
                             + [(9.0, "gone", None)])], "x axis", "my lines", [(0.0, run.results[ok[0]], "star")])]

    hooks = SimpleNamespace(page_blocks=page_blocks, page_note=lambda r: "own note" if r.key == ok[0] else None)
    rep.results[0].note = "stored"
    rep.results[1].note = "stored too"
    suite = section(report_page([rep], ["dl"], suites={"dataloader": hooks}), "s-suite-dataloader")
    assert seen == [(["dl"], False, {"dataloader"})]
    assert "<h3>Mine</h3>" in suite and "a &lt;note&gt;" in suite and ">failed</span>" in suite
    texts = svg_texts(suite)
    assert "bar note" in texts and "star" in texts and "missing" in texts  # the absent bar says why
    assert "my bars" in suite and "my lines" in suite and "Not measured: gone: missing." in suite
    assert ("own note" in suite) is (rep.results[0].key == ok[0]) and "stored too" in suite
    # without the suite's hooks the page draws its own charts and tables only
    plain = section(report_page([rep], ["dl"]), "s-suite-dataloader")
    assert "Throughput against num_workers" not in plain and "<h3>Mine</h3>" not in plain
    training = section(report_page([load(TRAINING)], ["training"]), "s-suite-training")
    assert "Eager vs compiled" not in training
