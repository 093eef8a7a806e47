"""Load a local page in headless Chromium through the DevTools protocol and report what happened.

Chromium is driven over `--remote-debugging-pipe` (JSON messages separated by NUL bytes on file
descriptors 3 and 4), so no port, websocket library or network is needed. Recorded: console errors
(Runtime.consoleAPICalled of type error/assert and Log.entryAdded of level error, which is where
Content-Security-Policy refusals and failed loads appear), uncaught exceptions, and every request
other than the page itself. A screenshot of the whole page can be written too.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-pipe"]


def find() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageLoad:
    url: str
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # everything fetched besides the page itself
    height: int = 0  # the page's full height in CSS pixels
    loaded: bool = False

    @property
    def problems(self) -> list[str]:
        return ([f"console: {m}" for m in self.console_errors] + [f"exception: {m}" for m in self.exceptions]
                + [f"request: {u}" for u in self.requests] + ([] if self.loaded else ["the page never loaded"]))


class _Browser:
    def __init__(self, exe: str, profile: str) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        # Park the child's ends above 10 so moving them onto 3 and 4 cannot clobber each other.
        high_r, high_w = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
        os.close(to_child_r)
        os.close(from_child_w)

        def wire() -> None:
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=wire, close_fds=False)  # Python's own fds are close-on-exec
        os.close(high_r)
        os.close(high_w)
        self.out, self.inp = to_child_w, from_child_r
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.out, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            for m in self._read(deadline):
                if m.get("id") == self.next_id:
                    if "error" in m:
                        raise RuntimeError(f"{method}: {m['error']}")
                    return m.get("result", {})
                self.events.append(m)

    def wait_for(self, method: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if any(e.get("method") == method for e in self.events):
                return True
            try:
                self.events += self._read(deadline)
            except TimeoutError:
                return False

    def _read(self, deadline: float) -> list[dict]:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.inp], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self.inp, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buf += chunk
        *done, self.buf = self.buf.split(b"\0")
        return [json.loads(d) for d in done if d]

    def close(self) -> None:
        try:
            os.write(self.out, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self.out)
            os.close(self.inp)


# Installed before the page's own scripts (DevTools' scripts are exempt from the page's
# Content-Security-Policy): the page records what goes wrong in it as it happens, so what it recorded
# by the end of its load can be read back whole, however late Chromium's own messages about it come.
RECORDER = """
window.__benchbench = {violations: [], errors: []};
document.addEventListener('securitypolicyviolation', e => window.__benchbench.violations.push(
  `${e.violatedDirective} refused ${e.blockedURI || 'inline'}`));
window.addEventListener('error', e => window.__benchbench.errors.push(e.target && e.target !== window
  ? `failed to load ${e.target.src || e.target.href || e.target.tagName}` : String(e.message)), true);
"""


def settle(b: _Browser, session: str, timeout: float) -> dict[str, list[str]]:
    """What the loaded page recorded (RECORDER), read without waiting on the wall clock.

    A Content-Security-Policy refusal reaches the page as a `securitypolicyviolation` event queued when
    the page is parsed, so after its load event; a task the page queues now runs after it (two zero-delay
    timers), and then what the page recorded is complete. Chromium's own messages (console, network)
    may come later still on a loaded machine: they are read as far as they have come, and the page's
    record does not depend on them. (The check used to read until Chromium had been silent for 2 s,
    which cost every page 2 s; 0.5 s had missed late messages.)"""
    answer = b.send("Runtime.evaluate", {
        "expression": "new Promise(r => setTimeout(() => setTimeout(() => r(JSON.stringify(window.__benchbench)), 0), 0))",
        "awaitPromise": True, "returnByValue": True}, session=session, timeout=timeout)
    value = answer.get("result", {}).get("value")
    return json.loads(value) if isinstance(value, str) else {"violations": [], "errors": ["the page's recorder did not run"]}


def load(path: Path, screenshot: Path | None = None, width: int = 1280, height: int = 900,
         timeout: float = 60) -> PageLoad:
    exe = find()
    if exe is None:
        raise FileNotFoundError("chromium is not installed")
    url = path.resolve().as_uri()
    result = PageLoad(url)
    with tempfile.TemporaryDirectory(prefix="bb-chromium-") as profile:
        b = _Browser(exe, profile)
        try:
            target = b.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
            session = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Runtime", "Log", "Network", "Page"):
                b.send(f"{domain}.enable", session=session)
            b.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                          "mobile": False}, session=session)
            b.send("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER}, session=session)
            b.send("Page.navigate", {"url": url}, session=session)
            result.loaded = b.wait_for("Page.loadEventFired", timeout)
            recorded = settle(b, session, timeout)
            result.console_errors += [f"Content-Security-Policy: {v}" for v in recorded["violations"]]
            result.exceptions += recorded["errors"]
            metrics = b.send("Page.getLayoutMetrics", session=session)
            size = metrics.get("cssContentSize") or metrics.get("contentSize") or {}
            result.height = int(size.get("height", height))
            if screenshot is not None:
                shot = b.send("Page.captureScreenshot", {
                    "format": "png", "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width, "height": min(result.height, 16000), "scale": 1}},
                    session=session, timeout=timeout)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
        finally:
            b.close()
    for e in b.events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            result.console_errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                                  for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            result.console_errors.append(params["entry"].get("text", ""))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            result.exceptions.append(details.get("exception", {}).get("description") or details.get("text", ""))
        elif method == "Network.requestWillBeSent":
            req = params.get("request", {}).get("url", "")
            if req != url and not req.startswith("data:"):
                result.requests.append(req)
    return result
