"""One family of user-facing errors, turned into a one-line message and exit code 2 at the CLI edge."""


class UserError(Exception):
    """Bad input or usage: the message is shown to the user as one line, without a traceback."""

    exit_code = 2


class ReportError(UserError):
    """A file that cannot be read as a benchbench report."""


class Skip(Exception):  # noqa: N818 - it is a signal, not an error
    """Raised by a benchmark's setup when a case cannot run on this backend: it is recorded as skipped."""
