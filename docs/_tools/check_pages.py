"""Open built pages in headless Chromium, fail on a missing resource or a blank render.

Usage: ``python docs/_tools/check_pages.py BUILD_DIR PAGE.html [PAGE.html ...]``

For each page: every request the page makes must be a local file (the site must work offline,
so any http(s) request is an error), every request must succeed, every image must decode, no
script error may be thrown, and the screenshot must not be blank.  The screenshots are written
beside the pages as ``_screenshots/<page>.png``.  Exit status 0 when every page passes, 1
otherwise, 2 when Chromium cannot be started.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: commands
on file descriptor 3, events and answers on 4, each message JSON ending with a NUL byte), so
nothing but the standard library and Pillow is needed.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WIDTH, HEIGHT = 1280, 900
MAX_HEIGHT = 12000  # a full-page screenshot is cut here
PAGE_TIMEOUT = 60.0


class Browser:
    """A headless Chromium and one page session, spoken to over the DevTools pipe."""

    def __init__(self, executable: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="mitk-docs-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Move the child's ends above 9 first, so that placing them on 3 and 4 cannot overwrite
        # one with the other.
        child_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        child_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def remap() -> None:
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        # pass_fds keeps 3 and 4 open in the child (it closes the rest after remap runs).
        self.proc = subprocess.Popen(
            [executable, "--headless=new", "--remote-debugging-pipe", "--no-sandbox",
             "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-background-networking", "--disable-component-update",
             "--disable-extensions", "--allow-file-access-from-files", "--hide-scrollbars",
             f"--user-data-dir={self.profile}", f"--window-size={WIDTH},{HEIGHT}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=remap, pass_fds=(3, 4))
        os.close(child_r)
        os.close(child_w)
        self._next_id = 0
        self._buffer = b""
        self.events: list[dict] = []
        self.session: str | None = None

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=5)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, *, session: bool = True,
             timeout: float = 30.0) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, method: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(e["method"] == method for e in self.events):
            self.events.append(self._read_message(deadline))

    def drain(self, seconds: float) -> None:
        """Collect events for a while (late image and font loads)."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._read_message(deadline))
        except TimeoutError:
            pass

    def open_page(self) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.send("Target.attachToTarget",
                             {"targetId": target["targetId"], "flatten": True}, session=False)
        self.session = attached["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})


def blank_reason(png: bytes) -> str | None:
    """Why a screenshot looks blank, or None when it shows something."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.resize((max(1, image.width // 4), max(1, image.height // 4)))
    colours = small.getcolors(maxcolors=1 << 20) or []
    if not colours:
        return None  # more colours than counted: certainly not blank
    dominant = max(count for count, _ in colours)
    total = small.width * small.height
    if len(colours) < 8:
        return f"only {len(colours)} colours"
    if dominant > 0.995 * total:
        return "over 99.5% of the pixels are one colour"
    return None


def check_page(browser: Browser, page: Path, shot: Path) -> list[str]:
    problems: list[str] = []
    browser.events.clear()
    url = page.resolve().as_uri()
    browser.send("Page.navigate", {"url": url})
    browser.wait_for("Page.loadEventFired", PAGE_TIMEOUT)
    browser.drain(1.0)
    requests = {e["params"]["requestId"]: e["params"]["request"]["url"]
                for e in browser.events if e["method"] == "Network.requestWillBeSent"}
    for request_url in sorted(set(requests.values())):
        if not request_url.startswith(("file:", "data:", "about:")):
            problems.append(f"requests a remote resource (the site must work offline): {request_url}")
    for e in browser.events:
        p = e["params"]
        if e["method"] == "Network.loadingFailed":
            problems.append(f"failed to load {requests.get(p['requestId'], '?')}: {p['errorText']}")
        elif e["method"] == "Runtime.exceptionThrown":
            problems.append(f"script error: {p['exceptionDetails'].get('text', '')} "
                            f"{p['exceptionDetails'].get('exception', {}).get('description', '')}")
        elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
            problems.append(f"console error: {p['entry']['text']} {p['entry'].get('url', '')}")
    result = browser.send("Runtime.evaluate", {"returnByValue": True, "expression": """({
        broken: Array.from(document.images)
            .filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
        images: document.images.length,
        sheets: document.styleSheets.length,
        text: (document.body ? document.body.innerText : '').trim().length,
    })"""})["result"]["value"]
    for src in result["broken"]:
        problems.append(f"image did not load or decode: {src}")
    if result["sheets"] == 0:
        problems.append("no stylesheet applied")
    if result["text"] < 200:
        problems.append(f"almost no text rendered ({result['text']} characters)")
    # The laid-out content height (scrollHeight can exceed it and give a black band).
    content = browser.send("Page.getLayoutMetrics")["cssContentSize"]["height"]
    height = min(max(HEIGHT, int(content)), MAX_HEIGHT)
    shot_data = browser.send("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1}}, timeout=60)
    png = base64.b64decode(shot_data["data"])
    shot.parent.mkdir(parents=True, exist_ok=True)
    shot.write_bytes(png)
    reason = blank_reason(png)
    if reason:
        problems.append(f"blank render: {reason}")
    print(f"{page.name}: {len(requests)} requests, {result['images']} images, "
          f"{result['text']} characters of text, screenshot {shot} ({WIDTH}x{height})")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    build = Path(argv[0])
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")
    if not executable:
        print("check_pages: no chromium executable found (set CHROMIUM)", file=sys.stderr)
        return 2
    failed = False
    browser = Browser(executable)
    try:
        browser.open_page()
        for name in argv[1:]:
            page = build / name
            if not page.is_file():
                print(f"FAIL {name}: not built", file=sys.stderr)
                failed = True
                continue
            shot = build / "_screenshots" / (page.stem + ".png")
            problems = check_page(browser, page, shot)
            for problem in problems:
                print(f"FAIL {name}: {problem}", file=sys.stderr)
            failed = failed or bool(problems)
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"check_pages: {exc}", file=sys.stderr)
        return 2
    finally:
        browser.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
