"""Open an HTML file in headless Chromium, collect console errors, take a screenshot.

A minimal client of the Chrome DevTools Protocol over ``--remote-debugging-pipe``
(file descriptors 3 and 4, messages separated by NUL bytes): no dependency
besides Debian's ``chromium`` package, which the README's test command installs
(the tests never install anything themselves).
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: Collected on the page: loaded images (with their rendered size) and tables (rows).
_PAGE_FACTS = """JSON.stringify({
  images: Array.from(document.images).map(i => ({
    loaded: i.complete && i.naturalWidth > 0, width: i.naturalWidth,
    shown: i.getBoundingClientRect().width})),
  tables: Array.from(document.querySelectorAll('table')).map(t => t.rows.length),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href')),
  title: document.title,
  height: document.documentElement.scrollHeight,
})"""


def find_chromium() -> str | None:
    """The Chromium executable on the PATH, or None (nothing is installed from here)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _Pipe:
    def __init__(self, write_fd: int, read_fd: int):
        self.write_fd, self.read_fd = write_fd, read_fd
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.write_fd, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def _read_one(self, deadline: float) -> dict | None:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.read_fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method, params=None, session=None, timeout=60.0) -> dict:
        wanted = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_one(deadline)
            if msg is None:
                raise TimeoutError(f"no answer to {method} within {timeout} s")
            if msg.get("id") == wanted:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, method: str, timeout: float) -> bool:
        if any(e["method"] == method for e in self.events):
            return True
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_one(deadline)
            if msg is None:
                return False
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return True

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (msg := self._read_one(deadline)) is not None:
            if "method" in msg:
                self.events.append(msg)


def console_errors(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and failed loads among DevTools events."""
    errors = []
    for e in events:
        p = e.get("params", {})
        if e["method"] == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            errors.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
        elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            errors.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
        elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            errors.append(f"{entry.get('text')} {entry.get('url', '')}".strip())
    return errors


def open_page(
    path: str | os.PathLike, *, screenshot: str | os.PathLike, width: int = 1280, timeout=90.0
) -> dict:
    """Load ``path`` in headless Chromium; return console errors and facts about the page.

    Returns
    -------
    result : dict
        ``errors`` (list of str), ``images``, ``tables``, ``links``, ``title``,
        ``height``, and ``screenshot`` (the PNG written, the whole page).
    """
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("chromium is not installed")
    url = Path(path).resolve().as_uri()
    cmd_r, cmd_w = os.pipe()  # we write commands, chromium reads fd 3
    res_r, res_w = os.pipe()  # chromium writes fd 4, we read

    def _child_fds():
        # Via fresh descriptors: the pipes may already be 3 or 4 (and not inheritable).
        cmd, res = os.dup(cmd_r), os.dup(res_w)
        os.dup2(cmd, 3)
        os.dup2(res, 4)

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        proc = subprocess.Popen(
            [exe, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=_child_fds,  # noqa: PLW1509 - tests only, single-threaded here
        )
        os.close(cmd_r)
        os.close(res_w)
        pipe = _Pipe(cmd_w, res_r)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"}, timeout=timeout)
            session = pipe.call(
                "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
            )["sessionId"]
            for method in ("Runtime.enable", "Log.enable", "Page.enable"):
                pipe.call(method, session=session)
            metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}
            pipe.call("Emulation.setDeviceMetricsOverride", metrics, session=session)
            pipe.call("Page.navigate", {"url": url}, session=session)
            if not pipe.wait_for("Page.loadEventFired", timeout):
                raise TimeoutError(f"{url} did not finish loading within {timeout} s")
            pipe.drain(1.0)  # late scripts and errors
            facts = json.loads(
                pipe.call(
                    "Runtime.evaluate",
                    {"expression": _PAGE_FACTS, "returnByValue": True},
                    session=session,
                )["result"]["value"]
            )
            height = int(min(max(facts["height"], 900), 16000))
            pipe.call(
                "Emulation.setDeviceMetricsOverride", {**metrics, "height": height}, session=session
            )
            pipe.drain(0.5)
            shot = pipe.call(
                "Page.captureScreenshot",
                {"format": "png", "captureBeyondViewport": True},
                session=session,
                timeout=timeout,
            )
            Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
            pipe.drain(0.2)
            try:
                pipe.call("Browser.close", timeout=10)
            except (RuntimeError, TimeoutError):
                pass
        finally:
            os.close(cmd_w)
            os.close(res_r)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return {**facts, "errors": console_errors(pipe.events), "screenshot": Path(screenshot)}
