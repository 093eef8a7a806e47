"""One family of user-facing errors, turned into a one-line message and exit code 2 at the CLI edge,
and the exit codes themselves, defined once (the README's table lists the same)."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # success; gate/ab: pass
    REGRESSION = 1  # gate/ab: a regression; env --strict: a check failed
    USAGE = 2  # usage or input error: one line on stderr, no traceback
    INCONCLUSIVE = 3  # gate/ab: too noisy to tell, or nothing comparable
    CASES_FAILED = 4  # run: finished, but some cases failed or timed out
    INTERNAL = 70  # a bug in benchbench (traceback on stderr): never 1, so a crash never reads as a regression
    INTERRUPTED = 130  # Ctrl-C, SIGTERM or SIGHUP; partial reports are written


class UserError(Exception):
    """Bad input or usage: the message is shown to the user as one line, without a traceback."""

    exit_code = ExitCode.USAGE


class ReportError(UserError):
    """A file that cannot be read as a benchbench report."""


class Skip(Exception):  # noqa: N818 - it is a signal, not an error
    """Raised by a benchmark's setup when a case cannot run on this backend: it is recorded as skipped."""
