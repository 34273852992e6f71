"""Run the dashboard in a real server and drive Debian's Chromium with Playwright.

Used by the browser tests and by bench/bench_dashboard.py. The server binds to 127.0.0.1
on a free port and is stopped by its own PID; Chromium is the system's, never a
downloaded build.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "tests" / "screenshots"


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() and shutil.which("chromium") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Server:
    url: str  # http://127.0.0.1:PORT
    pid: int


@contextlib.contextmanager
def serve(env: dict[str, str] | None = None, timeout: float = 30.0) -> Iterator[Server]:
    """`streamlit run dashboard.py` on 127.0.0.1; yields the running server, stops it afterwards.

    The server's output goes to tests/screenshots/server-PORT.log, for a failing test to read.
    """
    port = free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", "dashboard.py",
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.address", "127.0.0.1", "--server.port", str(port),
    ]  # fmt: skip
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    log = open(SCREENSHOTS / f"server-{port}.log", "w")  # noqa: SIM115 (closed in finally)
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the dashboard did not start (exit code {process.poll()})")
            time.sleep(0.1)
        yield Server(url=url, pid=process.pid)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    """A Playwright page in headless Chromium, canvas pixels equal to CSS pixels."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
            yield page
        finally:
            browser.close()


def screenshot(page, name: str) -> Path:
    """A full-page PNG: Streamlit scrolls inside stMain, so grow the viewport to fit first."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=stMain]'); return m ? m.scrollHeight : 1000; }"
    )
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(height) + 40)})
    page.wait_for_timeout(300)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


def trace_lengths(page, key: str) -> list[int]:
    """Points per trace of the Plotly chart drawn with `key` (empty while it is not drawn)."""
    return page.evaluate(
        """key => {
            const el = document.querySelector(`.st-key-${key} .js-plotly-plot`);
            return el && el.data ? el.data.map(t => (t.x || []).length) : [];
        }""",
        key,
    )


def plot_point(page, key: str, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of data point (x, y) in the Plotly chart drawn with `key`."""
    return tuple(
        page.evaluate(
            """([key, x, y]) => {
                const el = document.querySelector(`.st-key-${key} .js-plotly-plot`);
                const xa = el._fullLayout.xaxis, ya = el._fullLayout.yaxis, box = el.getBoundingClientRect();
                return [box.left + xa._offset + xa.d2p(x), box.top + ya._offset + ya.d2p(y)];
            }""",
            [key, x, y],
        )
    )


def plot_json(page, key: str, expression: str):
    """Evaluate `expression` on the Plotly element `el` of the chart drawn with `key`."""
    return page.evaluate(
        f"key => {{ const el = document.querySelector(`.st-key-${{key}} .js-plotly-plot`); return {expression}; }}",
        key,
    )


def draw_stroke(page, key: str, points: list[tuple[float, float]]) -> None:
    """Draw one stroke through `points` (canvas pixels) on the canvas with `key`, by mouse."""
    box = page.locator(f".st-key-{key} canvas.upper-canvas").bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=8)
    page.mouse.up()


@contextlib.contextmanager
def chromium():
    """Headless Chromium; each browser.new_page() is a new context, i.e. a new user session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, in seconds (Linux /proc; OSError once it ended)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def rss_mb(pid: int) -> float:
    """Resident memory of a process now, in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
