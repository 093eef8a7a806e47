"""`benchbench env`: human and JSON output, exit codes, and one real end-to-end run."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from benchbench import cli
from benchbench import environment as environment_pkg
from benchbench.environment import checks as ck


def fake_env(*verdicts: str) -> dict:
    checks = [ck.result(f"check-{i}", v, f"title {v}", {"read": f"value-{i}"}, f"advice {v}" if v != "pass" else "")
              for i, v in enumerate(verdicts)]
    return {"fingerprint": {"torch": "2.5.1"}, "facts": {"hostname": "box", "cpu": {"model": "Fake CPU",
                                                                                     "total_bytes": 3 << 30}},
            "checks": checks}


@pytest.fixture
def planted(monkeypatch):
    """Make `env` see exactly the given check results."""

    def plant(*verdicts: str) -> None:
        monkeypatch.setattr(environment_pkg, "collect", lambda backends, context=None: fake_env(*verdicts))

    return plant


def test_human_output_groups_checks_by_verdict_with_evidence_and_advice(planted, capsys):
    planted("pass", "warn", "info", "fail")
    assert cli.main(["env"]) == 0
    out = capsys.readouterr().out
    heads = [out.index(f"== {v} (1) ==") for v in ("FAIL", "WARN", "INFO", "PASS")]
    assert heads == sorted(heads)
    assert "[check-3] title fail" in out and "evidence: read=value-3" in out and "advice: advice fail" in out
    assert "model: Fake CPU" in out and "total_bytes: 3.0 GiB" in out and "torch: 2.5.1" in out
    assert out.rstrip().endswith("checks: 1 fail, 1 warn, 1 info, 1 pass")


def test_strict_exits_1_only_when_a_check_fails(planted, capsys):
    planted("pass", "warn", "info")
    assert cli.main(["env", "--strict"]) == 0
    planted("pass", "fail")
    assert cli.main(["env"]) == 0
    assert cli.main(["env", "--strict"]) == 1
    assert cli.main(["env", "--strict", "--json"]) == 1
    capsys.readouterr()


def test_checks_only(planted, capsys):
    planted("warn")
    assert cli.main(["env", "--checks-only"]) == 0
    out = capsys.readouterr().out
    assert "[check-0]" in out and "Fake CPU" not in out


def test_json_is_the_report_environment_with_stable_ids(capsys):
    assert cli.main(["env", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"fingerprint", "facts", "checks"}
    assert [c["id"] for c in doc["checks"]] == [fn.__name__.replace("_", "-") for fn in ck.CHECKS]
    for c in doc["checks"]:
        assert c["verdict"] in ck.VERDICTS and isinstance(c["evidence"], dict) and isinstance(c["advice"], str)
    assert doc["fingerprint"]["torch"] == doc["facts"]["torch"]["version"]


def test_debug_switch_makes_strict_fail_on_the_real_machine(monkeypatch, capsys):
    monkeypatch.setenv("TORCH_COMPILE_DEBUG", "1")
    assert cli.main(["env", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    switch = next(c for c in doc["checks"] if c["id"] == "debug-switches")
    assert switch["verdict"] == "fail" and "TORCH_COMPILE_DEBUG" in switch["evidence"]["active"]
    assert cli.main(["env", "--strict", "--checks-only"]) == 1
    assert "[debug-switches] debug switches on: TORCH_COMPILE_DEBUG" in capsys.readouterr().out


def test_context_options_scope_the_workload(monkeypatch, capsys):
    seen = {}

    def fake_collect(backends, context=None):
        seen["context"] = context
        return fake_env("pass")

    monkeypatch.setattr(environment_pkg, "collect", fake_collect)
    assert cli.main(["env", "--backend", "cpu", "--suite", "tensor_ops"]) == 0
    assert seen["context"].backends == ("cpu",) and seen["context"].suites == ("tensor_ops",)
    assert seen["context"].benchmark is True
    capsys.readouterr()


@pytest.mark.parametrize(("args", "message"), [(["--backend", "tpu"], "unknown backend 'tpu'"),
                                               (["--suite", "no_such_suite"], "unknown suite no_such_suite")])
def test_bad_input_is_a_one_line_usage_error(args, message, capsys):
    assert cli.main(["env", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_env_end_to_end_has_no_traceback_and_shows_every_check():
    proc = run_cli("env", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    for fn in ck.CHECKS:
        assert f"[{fn.__name__.replace('_', '-')}]" in proc.stdout
    assert proc.stdout.count("evidence:") == len(ck.CHECKS)
    assert "== Comparability fingerprint ==" in proc.stdout
