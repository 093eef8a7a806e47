import io

from benchbench.model.report import CaseKey, Result
from benchbench.output.progress import Progress


def results():
    ok = Result(key=CaseKey.make("s", "a"), status="ok", samples=[1e-3, 1e-3], work={"items": 10.0})
    bad = Result(key=CaseKey.make("s", "b"), status="failed", reason="RuntimeError: boom")
    return ok, bad


def drive(progress):
    ok, bad = results()
    progress.start_case(0, 2, ok.key.label)
    progress.phase("measure")
    progress.finish_case(ok)
    progress.start_case(1, 2, bad.key.label)
    progress.finish_case(bad)
    progress.close()


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    drive(Progress(out, tty=False))
    lines = out.getvalue().splitlines()
    assert lines == ["[1/2] s/a cpu  1 ms  10 kitems/s", "[2/2] s/b cpu  failed: RuntimeError: boom"]
    assert "\r" not in out.getvalue()


def test_terminal_status_line_shows_case_count_elapsed_and_phase():
    out = io.StringIO()
    drive(Progress(out, tty=True))
    text = out.getvalue()
    assert "\r[1/2 00:00] s/a cpu · measure" in text
    assert "[2/2] s/b cpu  failed" in text
    assert text.endswith("boom\n")  # finished cases stay as lines; no status line is left behind


def test_quiet_prints_nothing():
    out = io.StringIO()
    drive(Progress(out, tty=True, quiet=True))
    assert out.getvalue() == ""
