"""A class on one server: N browsers at once through a scripted visit, in real Chromium.

Run from the project root (needs Debian's chromium and playwright; under `flock
/tmp/browser.lock` on a shared machine):
    MNIST_DIR=/path/to/mnist python bench/bench_classroom.py [--sessions 20] [--epochs 2]

One fresh server on 127.0.0.1 (a temporary runs store), one Chromium, one context per
student (its own cookie, so its own browser id). Each student, a little after the one
before (`--stagger`): opens the Overview; opens the Train page from the teacher's link
(`/train?train_epochs=2`, the `fast` preset otherwise); presses Start; opens Misclassified
and Draw from the navigation; goes back to Train and waits for its run to finish.

It prints the errors seen (page errors, console errors, Streamlit exceptions, steps that
timed out), the runs finished (N of N), the median and 95th percentile of the time to draw
each page (measured inside the browser: from the navigation start, or the click on a link,
to the page's last element drawn), the queue waits (from each run's creation to the store
saying it runs, read every 0.5 s), the peak and final RSS of the server, and the machine's
CPU and load. Bounded: at most 40 sessions, `--timeout` seconds in all. With `--every-page`,
each student then opens every other page with its own model (the memory of a class that
trained and browsed everything).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]  # run as a script from anywhere

from bench_ui import DRAWN, cpu_name  # noqa: E402
from browser import CHROMIUM, CHROMIUM_ARGS, cpu_seconds, rss_mb, serve  # noqa: E402

from nets.scheduler import SLOTS_ENV, default_slots  # noqa: E402
from nets.store import RunStore  # noqa: E402

MAX_SESSIONS = 40
VISIT = ("Overview", "Train", "Misclassified", "Draw")  # the scripted visit; --every-page adds the rest after
# The pages bench_ui does not time, each drawn when its last element is on screen.
MORE_DRAWN = {
    "Inside": "!!document.querySelector('.st-key-inside_diagram .main-svg')",
    "Compare": "!!document.querySelector('.st-key-compare_scatter .main-svg')",
    "Sweep": "!!document.querySelector('.st-key-sweep_start button')",
}
DRAWN = {**DRAWN, **MORE_DRAWN}
# The student's own run, by its first line on Train, in whichever state the page is first drawn:
# on a loaded machine a 1-epoch run can be over before the browser draws it running.
MINE = re.compile(
    r"run (\d+)(?:: (?:pending|running|paused)| waits for a training slot| is about to start| finished after)"
)
# Chromium's console line for a failed request: counted once, with its address, as the response.
FAILED_LOAD = "Failed to load resource"
# Streamlit's page opened at /train first asks /train/_stcore/health and host-config, in case
# the whole app is served under /train, then the root's: those two 404s are its probe.
BASE_PROBE = re.compile(r"/[a-z]+/_stcore/(health|host-config)$")


@dataclass
class Session:
    """What one student saw."""

    number: int
    times: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in VISIT})
    errors: list[str] = field(default_factory=list)
    run_id: int | None = None
    finished: bool = False


@dataclass
class Result:
    sessions: list[Session]
    waits: dict[int, float]  # run id -> seconds from its creation to running
    queued: set[int]  # runs seen queued
    peak_rss: float
    final_rss: float
    load: tuple[float, float]  # load average (1 min) before, highest during
    cpu: tuple[float, float]  # CPU seconds used by the server and by Chromium meanwhile
    nice: int
    seconds: float
    slots: int

    @property
    def errors(self) -> list[str]:
        return [f"session {s.number}: {e}" for s in self.sessions for e in s.errors]

    @property
    def finished(self) -> int:
        return sum(s.finished for s in self.sessions)


class Watch:
    """A thread that samples the server's RSS, the load and the store's run statuses every 0.5 s."""

    def __init__(self, pid: int, runs_dir: Path, nice: int = 0):
        self.pid, self.store = pid, None
        self.runs_dir = runs_dir
        self.peak = 0.0
        self.load = os.getloadavg()[0]
        self.created: dict[int, float] = {}
        self.running_at: dict[int, float] = {}
        self.queued: set[int] = set()
        self.server_cpu = (cpu_seconds(pid), 0.0)  # at the start, latest
        self.chromium_cpu: dict[int, float] = {}  # pid -> CPU seconds, of every Chromium process seen
        self.nice = nice  # given to each Chromium process as it appears
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except OSError:
                return
            self.load = max(self.load, os.getloadavg()[0])
            self.server_cpu = (self.server_cpu[0], cpu_seconds(self.pid))
            for proc in Path("/proc").iterdir():
                try:
                    if proc.name.isdigit() and (proc / "comm").read_text().startswith(("chrom", "headless")):
                        if self.nice and int(proc.name) not in self.chromium_cpu:
                            os.setpriority(os.PRIO_PROCESS, int(proc.name), self.nice)
                        self.chromium_cpu[int(proc.name)] = cpu_seconds(int(proc.name))
                except OSError:
                    continue  # it ended meanwhile
            try:
                self.store = self.store or RunStore(self.runs_dir)
                records = self.store.runs()
            except Exception:  # the store is being created, or busy: the next look will do
                continue
            now = time.time()
            for r in records:
                self.created.setdefault(r.run_id, r.created)
                if r.status == "queued":
                    self.queued.add(r.run_id)
                elif r.status != "pending" and r.run_id not in self.running_at:
                    self.running_at[r.run_id] = now

    def waits(self) -> dict[int, float]:
        return {i: max(0.0, self.running_at[i] - self.created[i]) for i in self.running_at if i in self.created}


def arm(predicate: str) -> str:
    """JS: a timer from the next click anywhere in the page to the first animation frame where
    `predicate` (one of ours, never user data) holds."""
    return f"""() => {{
        const b = window.__bench = {{start: null, end: null}};
        window.addEventListener('click', () => {{ b.start = performance.now(); }}, {{capture: true, once: true}});
        const check = () => {{
            if (b.start !== null && ({predicate})) {{ b.end = performance.now(); return; }}
            requestAnimationFrame(check);
        }};
        requestAnimationFrame(check);
    }}"""


async def timed_click(page, name: str, timeout: float) -> float:
    """Seconds, in the browser, from the click on `name` in the navigation to its page drawn."""
    await page.evaluate(arm(DRAWN[name]))
    await page.locator("[data-testid=stSidebarNav] a", has_text=name).click(timeout=timeout * 1000)
    await page.wait_for_function("window.__bench && window.__bench.end !== null", timeout=timeout * 1000)
    return await page.evaluate("(window.__bench.end - window.__bench.start) / 1000")


async def timed_open(page, url: str, name: str, timeout: float) -> float:
    """Seconds from the navigation start to the page `name` drawn (a new document)."""
    await page.goto(url, timeout=timeout * 1000, wait_until="commit")  # the drawing is what is timed
    drawn = f"({DRAWN[name]}) && (window.__drawn = window.__drawn || performance.now())"
    await page.wait_for_function(drawn, timeout=timeout * 1000, polling="raf")
    return await page.evaluate("window.__drawn / 1000")


async def exceptions(page) -> int:
    return await page.evaluate("document.querySelectorAll('[data-testid=stException]').length")


async def visit(browser, url: str, s: Session, epochs: int, delay: float, step_timeout: float, deadline: float,
                every_page: bool = False):  # fmt: skip
    """One student's visit; every failure is kept as one line in `s.errors`. `every_page`: once
    its run finished, the student also opens every other page (with its own model now)."""
    await asyncio.sleep(delay)
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    page = await context.new_page()
    page.on("pageerror", lambda exc: s.errors.append(f"page error: {str(exc).splitlines()[0]}"))
    page.on(
        "response",
        lambda r: (
            s.errors.append(f"HTTP {r.status} for {r.url}")
            if r.status >= 400 and not (r.status == 404 and BASE_PROBE.search(r.url))
            else None
        ),
    )
    page.on(
        "console",
        lambda m: (
            s.errors.append(f"console {m.type}: {m.text.splitlines()[0] if m.text else ''}")
            if m.type == "error" and not m.text.startswith(FAILED_LOAD)
            else None
        ),
    )
    step = "open the Overview"
    try:
        s.times["Overview"].append(await timed_open(page, url, "Overview", step_timeout))
        step = "open Train from the link"
        s.times["Train"].append(await timed_open(page, f"{url}/train?train_epochs={epochs}", "Train", step_timeout))
        step = "press Start"
        await page.locator(".st-key-train_start button").click(timeout=step_timeout * 1000)
        handle = await page.wait_for_function(
            f"(() => {{ const m = document.body.innerText.match(/{MINE.pattern}/); return m && m[1]; }})()",
            timeout=step_timeout * 1000,
        )
        s.run_id = int(await handle.json_value())
        for name in ("Misclassified", "Draw", "Train"):
            step = f"open {name}"
            s.times[name].append(await timed_click(page, name, step_timeout))
            if await exceptions(page):
                s.errors.append(f"an exception shown on {name}")
        step = "wait for the run"
        left = max(1.0, deadline - time.monotonic())
        await page.get_by_text(f"run {s.run_id} finished after {epochs} epoch").wait_for(timeout=left * 1000)
        s.finished = True
        for name in ("Misclassified", "Draw", "Inside", "Compare", "Sweep") if every_page else ():
            step = f"open {name} with its own model"
            s.times.setdefault(f"{name}, after the run", []).append(await timed_click(page, name, step_timeout))
            if await exceptions(page):
                s.errors.append(f"an exception shown on {name}")
    except Exception as exc:  # a step that failed or timed out: the bench counts it and goes on
        s.errors.append(f"{step}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    except asyncio.CancelledError:  # the whole class ran out of time
        s.errors.append(f"{step}: not done when the class's time ran out")
        raise
    finally:
        await context.close()


async def classroom(url: str, sessions: int, epochs: int, stagger: float, timeout: float,
                    every_page: bool = False, step_timeout: float = 120.0) -> list[Session]:  # fmt: skip
    from playwright.async_api import async_playwright

    deadline = time.monotonic() + timeout
    students = [Session(n) for n in range(1, sessions + 1)]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            step = min(step_timeout, timeout)
            visits = [visit(browser, url, s, epochs, s.number * stagger, step, deadline, every_page)
                      for s in students]  # fmt: skip
            try:
                await asyncio.wait_for(asyncio.gather(*visits), timeout + 30)
            except TimeoutError:
                pass  # each visit cut short said where it was
        finally:
            await browser.close()
    return students


def run(sessions: int = 20, epochs: int = 2, stagger: float = 2.0, timeout: float = 600.0,
        slots: int | None = None, every_page: bool = False, nice: int = 10,
        step_timeout: float = 120.0) -> Result:  # fmt: skip
    """The whole bench on a fresh server; returns what it measured. `nice`: Chromium's niceness
    (its processes are reniced as they appear): the students' browsers share this machine's
    cores with the server here, while in a class each runs on its own computer, so by default
    the server comes first and the browsers take what is left (0: they compete as equals)."""
    if not 1 <= sessions <= MAX_SESSIONS:
        raise ValueError(f"sessions must be from 1 to {MAX_SESSIONS} (got {sessions})")
    with tempfile.TemporaryDirectory(prefix="bench-classroom-runs-") as runs:
        env = {"MNIST_DIR": os.environ.get("MNIST_DIR", ""), "MNIST_RUNS_DIR": runs}
        if slots is not None:
            env[SLOTS_ENV] = str(slots)
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        with serve(env) as server, Watch(server.pid, Path(runs), nice) as watch:
            students = asyncio.run(classroom(server.url, sessions, epochs, stagger, timeout, every_page, step_timeout))
            time.sleep(1.0)  # a last look at the store
            final = rss_mb(server.pid)
        return Result(
            sessions=students, waits=watch.waits(), queued=watch.queued, peak_rss=max(watch.peak, final),
            final_rss=final, load=(load_before, watch.load), seconds=time.monotonic() - started,
            cpu=(watch.server_cpu[1] - watch.server_cpu[0], sum(watch.chromium_cpu.values())), nice=nice,
            slots=slots if slots is not None else default_slots(),
        )  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def report(result: Result, sessions: int, epochs: int) -> str:
    lines = [
        f"CPU: {cpu_name()}; load average (1 min) {result.load[0]:.2f} before, {result.load[1]:.2f} at most during",
        f"{sessions} sessions, `fast` preset for {epochs} epochs each, {result.slots} training slots, "
        f"Chromium at nice {result.nice}; "
        f"{result.seconds:.0f} s in all; CPU seconds meanwhile: the server {result.cpu[0]:.0f}, "
        f"Chromium {result.cpu[1]:.0f}",
        f"errors seen: {len(result.errors)}",
        *(f"  {e}" for e in result.errors[:20]),
        f"runs finished: {result.finished} of {sessions}",
        f"{'time to draw each page (s)':<30}{'median':>6} {'p95':>6} {'max':>6} {'n':>5}",
    ]
    names = list(dict.fromkeys(name for s in result.sessions for name in s.times))
    for name in names:
        values = [t for s in result.sessions for t in s.times.get(name, [])]
        if values:
            lines.append(
                f"  {name:<28}{statistics.median(values):6.2f} {percentile(values, 95):6.2f} "
                f"{max(values):6.2f} {len(values):5d}"
            )
    waits = list(result.waits.values())
    if waits:
        lines.append(
            f"queue waits (s): median {statistics.median(waits):.1f}, p95 {percentile(waits, 95):.1f}, "
            f"max {max(waits):.1f}; {len(result.queued)} of {len(waits)} runs were queued"
        )
    lines.append(f"server RSS: peak {result.peak_rss:,.0f} MB, at the end {result.final_rss:,.0f} MB")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20, help=f"students, at most {MAX_SESSIONS}")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--stagger", type=float, default=2.0, help="seconds between two students' arrivals")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for the whole class")
    parser.add_argument("--slots", type=int, default=None, help=f"the server's {SLOTS_ENV} (default: its cores)")
    parser.add_argument("--step-timeout", type=float, default=120.0, help="seconds for one step of a visit")
    parser.add_argument("--nice", type=int, default=10, help="Chromium's niceness (0: as the server's)")
    parser.add_argument(
        "--every-page",
        action="store_true",
        help="after its run, each student also opens Misclassified, Draw, Inside, Compare and Sweep",
    )
    args = parser.parse_args()
    result = run(
        args.sessions,
        args.epochs,
        args.stagger,
        args.timeout,
        args.slots,
        args.every_page,
        args.nice,
        args.step_timeout,
    )
    print(report(result, args.sessions, args.epochs))


if __name__ == "__main__":
    main()
