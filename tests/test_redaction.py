from benchbench.environment.redaction import REDACTED, redact_command, redact_env
from benchbench.measure.engine import get_profile
from benchbench.run.runner import Side
from benchbench.run.session import Session, new_report


def test_side_variables_keep_their_value_only_when_allow_listed():
    env = {"OMP_NUM_THREADS": "4", "AWS_SECRET_ACCESS_KEY": "hunter2", "MY_FLAG": "1"}
    assert redact_env(env) == {"OMP_NUM_THREADS": "4", "AWS_SECRET_ACCESS_KEY": REDACTED, "MY_FLAG": REDACTED}


def test_the_command_line_is_redacted_by_the_same_rule():
    argv = ["benchbench", "ab", "--baseline-env", "TOKEN=abc", "--current-env=OMP_NUM_THREADS=2",
            "--baseline-e=PASSWORD=pw", "--current-env", "KEY=x=y", "--label", "TOKEN=shown"]
    assert redact_command(argv) == [
        "benchbench", "ab", "--baseline-env", f"TOKEN={REDACTED}", "--current-env=OMP_NUM_THREADS=2",
        f"--baseline-e=PASSWORD={REDACTED}", "--current-env", f"KEY={REDACTED}", "--label", "TOKEN=shown"]


def test_a_report_of_a_side_stores_no_secret():
    profile = get_profile("quick")
    session = Session(suites=[], all_backends=[], backends=[], profile=profile, budget=profile.budget, rounds=1,
                      seed=0, cases=[], environment={})
    side = Side(name="baseline", env=(("API_TOKEN", "s3cr3t"), ("OMP_NUM_THREADS", "1")))
    report = new_report(session, None, ["benchbench", "ab", "--baseline-env", "API_TOKEN=s3cr3t"], side)
    from benchbench.model.report import dumps

    text = dumps(report)
    assert "s3cr3t" not in text
    assert report.side["env"] == {"API_TOKEN": REDACTED, "OMP_NUM_THREADS": "1"}
