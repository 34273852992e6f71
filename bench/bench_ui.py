"""Speed as a user feels it: the dashboard in Chromium, each figure beside its target.

Run from the project root (needs Debian's chromium and playwright; under `flock
/tmp/browser.lock` on a shared machine):
    MNIST_DIR=/path/to/mnist python bench/bench_ui.py [--rounds 5] [--strokes 7]

Measured inside the browser (performance.now(), checked every animation frame), so
Playwright's own round trips do not count:
- cold first load: a fresh server (its start excluded), from navigation start to the
  Overview's first screen drawn (headline, links and the sample digits at 1280x900), and to
  the whole page drawn (the class-count charts below the fold, which wait for plotly.js);
- each page: from the click on its navigation link to the page drawn (its last element),
  the median of several rounds through all pages;
- a stroke: from mouse-up on the Draw page's canvas to the prediction shown, the median of
  several strokes (the canvas cleared between them, so each one is the first reading).

It also counts what the server sends over its websocket for each page (the message bytes),
which is where the Plotly figures' size shows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # run as a script from anywhere

from browser import CHROMIUM, CHROMIUM_ARGS, serve  # noqa: E402

TARGETS = {"cold": 3.0, "page": 0.8, "stroke": 0.25}  # seconds, from issue 11
PAGES = ("Overview", "Train", "Misclassified", "Draw")
# What each page draws last: the page counts as drawn when this is on screen. The Draw
# page's canvas lives in a shadow root, which querySelector does not pierce.
DRAWN = {
    "Overview": "!!document.querySelector('.st-key-home_test_counts .main-svg')",
    "Train": "!!document.querySelector('.st-key-train_curves_chart .main-svg')",
    "Misclassified": "!!document.querySelector('.st-key-mis_grid .main-svg')",
    "Draw": "(() => { const c = document.querySelector('[class*=st-key-draw_canvas] "
    "[data-testid=stBidiComponentIsolated]'); return !!(c && c.shadowRoot && "
    "c.shadowRoot.querySelector('canvas.upper-canvas')); })()",
}
GUESS = "!!document.querySelector('.draw-guess')"
FIRST_SCREEN = (
    "(() => { const i = document.querySelector('.st-key-home_samples img');"
    " return !!(i && i.complete && i.naturalWidth); })()"
)
# Run in every new document: when (ms since navigation start) the Overview's first screen
# and the whole Overview are drawn.
COLD_WATCH = f"""
window.__cold = null; window.__first = null;
const coldCheck = () => {{
  if (window.__first === null && {FIRST_SCREEN}) window.__first = performance.now();
  if ({DRAWN["Overview"]}) {{ window.__cold = performance.now(); return; }}
  requestAnimationFrame(coldCheck);
}};
requestAnimationFrame(coldCheck);
"""


def cpu_name() -> str:
    """The CPU's model name and the number of logical CPUs, from /proc/cpuinfo."""
    text = Path("/proc/cpuinfo").read_text()
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")]
    return f"{names[0] if names else 'unknown CPU'} ({len(names) or os.cpu_count()} logical CPUs)"


def arm(page, event: str, predicate: str) -> None:
    """Start a timer at the next `event` (click or mouseup) anywhere in the page; stop it at
    the first animation frame after that where `predicate` (JS) is true."""
    page.evaluate(
        f"""() => {{
            const b = window.__bench = {{start: null, end: null}};
            window.addEventListener('{event}', () => {{ b.start = performance.now(); }}, {{capture: true, once: true}});
            const check = () => {{
                if (b.start !== null && ({predicate})) {{ b.end = performance.now(); return; }}
                requestAnimationFrame(check);
            }};
            requestAnimationFrame(check);
        }}"""
    )


def elapsed(page, timeout: float = 60.0) -> float:
    page.wait_for_function("window.__bench && window.__bench.end !== null", timeout=timeout * 1000)
    return page.evaluate("(window.__bench.end - window.__bench.start) / 1000")


class Traffic:
    """Bytes the server sent over the app's websocket, counted from a mark."""

    def __init__(self, page):
        self.total = 0
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload) -> None:
        self.total += len(payload)

    def since(self, mark: int) -> int:
        return self.total - mark


def nav(page, title: str) -> None:
    page.locator("[data-testid=stSidebarNav] a", has_text=title).click()


def ensure_a_model(page) -> None:
    """Misclassified needs a model: when it has none, add the shipped one as a run."""
    nav(page, "Misclassified")
    page.wait_for_function(f"{DRAWN['Misclassified']} || document.body.innerText.includes('No model yet')")
    if page.evaluate(DRAWN["Misclassified"]):
        return
    nav(page, "Train")
    upload = page.locator(".st-key-train_model_upload input[type=file]")
    upload.set_input_files(str(ROOT / "models" / "pretrained.npz"))
    page.get_by_text("it is now the current model").wait_for(timeout=30_000)


def stroke(page, k: int) -> float:
    """One stroke on a clear canvas; seconds from mouse-up to the prediction shown."""
    canvas = page.locator("[class*=st-key-draw_canvas] canvas.upper-canvas")
    canvas.wait_for(timeout=30_000)
    page.wait_for_timeout(300)  # let the component settle after a clear
    box = canvas.bounding_box()
    x0 = box["x"] + 100 + 10 * (k % 5)
    page.mouse.move(x0, box["y"] + 50)
    page.mouse.down()
    page.mouse.move(x0 + 20, box["y"] + 240, steps=10)
    arm(page, "mouseup", GUESS)
    page.mouse.up()
    seconds = elapsed(page)
    page.get_by_role("button", name="Clear").click()
    page.wait_for_function(f"!{GUESS}", timeout=30_000)
    return seconds


def verdict(value: float, target: float) -> str:
    return f"{value:6.2f} s   target <= {target:.2f} s   {'ok' if value <= target else 'SLOWER'}"


def pages_and_strokes(page, traffic: Traffic, rounds: int, strokes: int):
    """Seconds from each navigation click to the page drawn, and kB sent, by page; seconds
    from each stroke's end to its prediction."""
    ensure_a_model(page)
    times: dict[str, list[float]] = {name: [] for name in PAGES}
    sent: dict[str, list[float]] = {name: [] for name in PAGES}
    current = "Overview"
    for _ in range(rounds):
        for name in [*PAGES[1:], PAGES[0]]:  # start away from the page we are on
            if name == current:
                continue
            page.wait_for_timeout(400)  # idle between clicks, as a person is
            assert not page.evaluate(DRAWN[name]), f"{name} looks drawn before its click"
            arm(page, "click", DRAWN[name])
            mark = traffic.total
            nav(page, name)
            times[name].append(elapsed(page))
            page.wait_for_timeout(300)  # the rest of the rerun's messages
            sent[name].append(traffic.since(mark) / 1e3)
            current = name
    if current != "Draw":
        nav(page, "Draw")
    page.get_by_text("Draw a digit").first.wait_for(timeout=30_000)
    return times, sent, [stroke(page, k) for k in range(strokes)]


def spread(values: list[float]) -> str:
    return f"range {min(values):.2f}-{max(values):.2f} s, median of {len(values)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds through the four pages")
    parser.add_argument("--strokes", type=int, default=7)
    parser.add_argument("--cold", type=int, default=3, help="cold starts, each on a fresh server")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    runs = tempfile.TemporaryDirectory(prefix="bench-ui-runs-")  # a fresh store: nothing of the user's
    env = {"MNIST_DIR": os.environ.get("MNIST_DIR", ""), "MNIST_RUNS_DIR": runs.name}
    viewport = {"width": args.width, "height": args.height}
    firsts, wholes = [], []
    with runs, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for _ in range(args.cold):  # a fresh server and a fresh browser profile (no cached scripts) each time
            with serve(env) as server:
                context = browser.new_context(viewport=viewport, device_scale_factor=1)
                page = context.new_page()
                page.add_init_script(COLD_WATCH)
                page.goto(server.url)
                page.wait_for_function("window.__cold !== null", timeout=120_000)
                firsts.append(page.evaluate("window.__first") / 1000)
                wholes.append(page.evaluate("window.__cold") / 1000)
                context.close()
        with serve(env) as server:
            page = browser.new_page(viewport=viewport, device_scale_factor=1)
            traffic = Traffic(page)
            page.goto(server.url)
            page.wait_for_function(DRAWN["Overview"], timeout=120_000)
            times, sent, strokes = pages_and_strokes(page, traffic, args.rounds, args.strokes)
        browser.close()

    print(f"CPU: {cpu_name()}; Chromium {CHROMIUM}; window {args.width}x{args.height}")
    first, whole = statistics.median(firsts), statistics.median(wholes)
    print(f"cold first load, first screen drawn   {verdict(first, TARGETS['cold'])}   ({spread(firsts)})")
    print(f"cold first load, whole page drawn     {verdict(whole, TARGETS['cold'])}   ({spread(wholes)})")
    for name in PAGES:
        median, kb = statistics.median(times[name]), statistics.median(sent[name])
        print(f"click to {name:<13} drawn        {verdict(median, TARGETS['page'])}   "
              f"({spread(times[name])}, {kb:,.0f} kB sent)")  # fmt: skip
    median = statistics.median(strokes)
    print(f"stroke end to prediction shown        {verdict(median, TARGETS['stroke'])}   ({spread(strokes)})")


if __name__ == "__main__":
    main()
