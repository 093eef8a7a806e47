"""Command line: `python -m benchbench [COMMAND] ...`. The only place that turns errors into exit codes.

Exit codes: `benchbench.errors.ExitCode` (documented in the README).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

from benchbench._version import __version__
from benchbench.errors import ExitCode, UserError

# name, module, one-line help. Each module has add_arguments(parser) and main(args) -> int, and keeps
# heavy imports (torch, pandas) inside main so that building the parser stays fast.
COMMANDS = [
    ("run", "benchbench.commands.run", "measure suites and write a report"),
    ("list", "benchbench.commands.list", "show suites, benchmarks and their parameters"),
    ("show", "benchbench.commands.show", "print a saved report as a table, Markdown or CSV"),
    ("env", "benchbench.commands.env", "diagnose the environment: facts, checks, advice"),
    ("validate", "benchbench.commands.validate", "check the timing engine against torch.utils.benchmark"),
    ("compare", "benchbench.commands.compare", "compare two or more reports"),
    ("gate", "benchbench.commands.gate", "fail when a report is slower than its baseline beyond noise"),
    ("ab", "benchbench.commands.ab", "measure a baseline and a current side alternately, then gate"),
    ("bisect", "benchbench.commands.bisect", "find the commit between GOOD and BAD that made it slower"),
    ("export", "benchbench.commands.export", "convert a report (csv, markdown, pytest-benchmark)"),
    ("report", "benchbench.commands.report", "one self-contained HTML page of reports, with plots"),
    ("history", "benchbench.commands.history", "trends and change points over the reports in a folder"),
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage first by default)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="benchbench", description="How fast is this machine for PyTorch, and did it just get "
                     "slower? With no command, runs a short overview on every usable backend.")
    parser.add_argument("--version", action="version", version=f"benchbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, modname, help_text in COMMANDS:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name == modname:  # that command is not part of this version
                continue
            raise
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["run", "--overview", *argv]
    args = parser.parse_args(argv)
    from benchbench.run.runner import Interrupted

    previous = _catch_interrupts()
    try:
        return int(args._main(args) or 0)
    except UserError as exc:
        print(f"benchbench: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except Interrupted as exc:
        paths = [str(p) for p in exc.report_paths]
        print(f"\nbenchbench: interrupted; partial report{'s' if len(paths) > 1 else ''} written to "
              f"{', '.join(paths) or '(none)'}", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except KeyboardInterrupt:
        print("\nbenchbench: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:  # e.g. `benchbench list | head`
        return int(ExitCode.OK)
    except Exception:  # a bug: its traceback, and a code that no caller mistakes for a regression (1)
        import traceback

        traceback.print_exc()
        print(f"benchbench: internal error (exit {int(ExitCode.INTERNAL)}); please report it with the traceback above",
              file=sys.stderr)
        return int(ExitCode.INTERNAL)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _catch_interrupts() -> signal.Handlers | None:
    """Make Ctrl-C (SIGINT) raise KeyboardInterrupt whatever disposition this process inherited: a
    shell starts background jobs with SIGINT ignored, and Python then leaves it ignored, so an
    interrupted run would not write its partial report. Returns the handler to restore afterwards."""
    if threading.current_thread() is not threading.main_thread():
        return None  # signals can only be handled in the main thread
    return signal.signal(signal.SIGINT, signal.default_int_handler)
