"""Progress of a run on stderr: one redrawn status line on a terminal, one line per case otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from benchbench.model.report import Result
from benchbench.output.units import fmt_per_call, rate_text


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m:02d}:{s:02d}"


class Progress:
    def __init__(self, stream: TextIO | None = None, tty: bool | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.quiet = quiet
        self.t0 = time.monotonic()
        self.i = 0
        self.total = 0
        self.label = ""
        self._width = 0

    def _status(self, text: str) -> None:
        if self.quiet or not self.tty:
            return
        line = text[:119]
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def start_case(self, i: int, total: int, label: str) -> None:
        self.i, self.total, self.label = i, total, label
        self._status(f"[{i + 1}/{total} {_clock(time.monotonic() - self.t0)}] {label}")

    def phase(self, name: str) -> None:
        self._status(f"[{self.i + 1}/{self.total} {_clock(time.monotonic() - self.t0)}] {self.label} · {name}")

    def finish_case(self, result: Result) -> None:
        if self.quiet:
            return
        if result.ok and result.stats:
            what = f"{fmt_per_call(result.stats.median, result.timing_method)}  {rate_text(result)}"
        else:
            what = f"{result.status}: {result.reason or ''}"
        line = f"[{self.i + 1}/{self.total}] {self.label}  {what}"
        if self.tty:
            self.stream.write("\r" + line[:119].ljust(self._width) + "\n")
            self._width = 0
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._width and not self.quiet:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
