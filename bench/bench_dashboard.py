"""Training throughput inside the running dashboard, against the same training headless.

Run from the project root (needs Debian's chromium and playwright):
    MNIST_DIR=/path/to/mnist python bench/bench_dashboard.py [--rounds 3] [--preset fast] [--pin]

Each round trains the same config twice, interleaved A B, B A: once in this process with
the engine's loop (headless), once in `streamlit run dashboard.py` started by a real
browser that opens the Train page with the config in its URL and presses Start while the
page refreshes its live charts. Both figures are the engine's own training-time
throughput (EpochMetrics), so the ratio isolates what serving the live page costs.

The browser runs on the same two cores as the server, which a real viewer's browser does
not. To tell its share from the server's, the script also prints the CPU that Chromium and
the server process used during each dashboard run (core-seconds per second), and times a
third contestant: headless training next to a plain busy loop that takes as much CPU as
Chromium did (a stand-in for the browser, with no dashboard at all). The target (issue
"Watch it learn": at least 0.9) is the dashboard against that third contestant.

With --pin, two more: the dashboard with its server's threads on core 0 and Chromium's on
core 1 (a viewer's browser on its own core, or machine), against headless on core 0 alone
with one BLAS thread. That ratio is what serving the live page costs the training itself.
The dashboard's server trains with one BLAS thread (app_state._one_blas_thread).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]  # run as a script from anywhere

from bench_ui import cpu_name  # noqa: E402
from browser import browser_page, cpu_seconds, serve  # noqa: E402

from app_state import SETTING_KEYS  # noqa: E402
from nets.config import PRESETS  # noqa: E402
from nets.data import load_mnist  # noqa: E402
from nets.training import train  # noqa: E402
from nets.two_layer_net import TwoLayerNet  # noqa: E402


def headless(data, config) -> float:
    net = TwoLayerNet.from_config(config)
    history = list(train(net, data, config))
    rows = sum(m.samples_per_sec * m.seconds for m in history)
    return rows / sum(m.seconds for m in history)


def chromium_cpu(pids: list[int]) -> float:
    """CPU seconds of Chromium's processes so far; one that has ended counts 0."""
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            pass
    return total


def chromium_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and "chrom" in (entry / "comm").read_text():
                pids.append(int(entry.name))
        except OSError:
            pass
    return pids


def in_dashboard(page, url: str, config, server_pid: int) -> tuple[float, float, float]:
    """Samples/s of one run in the dashboard, and the cores Chromium and the server used meanwhile."""
    query = "&".join(f"{key}={str(getattr(config, name)).lower()}" for key, name in SETTING_KEYS.items())
    page.goto(f"{url}/train?{query}")
    start = page.get_by_role("button", name="Start")
    start.wait_for()
    browsers = chromium_pids()
    browser_cpu, server_cpu, started = chromium_cpu(browsers), cpu_seconds(server_pid), time.perf_counter()
    start.click()
    # The page shows this browser's previous run, finished, until the new one draws its progress.
    page.get_by_text(re.compile(r": running, epoch \d+ of")).wait_for(timeout=60_000)
    done = page.get_by_text(re.compile(r"finished after \d+ epochs"))
    done.wait_for(timeout=600_000)
    wall = time.perf_counter() - started
    browser_core = (chromium_cpu(browsers) - browser_cpu) / wall
    server_core = (cpu_seconds(server_pid) - server_cpu) / wall
    samples = float(re.search(r"\(([\d,]+) samples/s\)", done.inner_text()).group(1).replace(",", ""))
    return samples, browser_core, server_core


BUSY_LOOP = """
import sys, time
share, period = float(sys.argv[1]), 0.1
while True:
    started = time.perf_counter()
    while time.perf_counter() - started < share * period:
        pass
    time.sleep((1 - share) * period)
"""


def headless_beside_load(data, config, share: float) -> float:
    """Headless training while another process keeps `share` of one core busy."""
    load = subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(min(share, 1.0))])
    try:
        time.sleep(0.2)
        return headless(data, config)
    finally:
        load.kill()
        load.wait()


def pin(pids: list[int], cores: set[int]) -> None:
    """Every thread of these processes onto `cores` (threads they start later inherit it)."""
    for pid in pids:
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                os.sched_setaffinity(int(task.name), cores)
        except OSError:  # a process or thread that ended meanwhile
            pass


ALL_CORES = set(range(os.cpu_count() or 1))


def headless_on_one_core(data, config) -> float:
    """Headless on core 0 alone, BLAS on one thread: the reference for the pinned dashboard."""
    from threadpoolctl import threadpool_limits

    pin([os.getpid()], {0})
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            return headless(data, config)
    finally:
        pin([os.getpid()], ALL_CORES)


def dashboard_beside_its_browser(page, url: str, config, server_pid: int) -> tuple[float, float, float]:
    """The dashboard with its server on core 0 and Chromium on core 1, as when the viewer's
    browser runs on another machine: what serving the live page costs the training by itself."""
    pin([server_pid], {0})
    pin(chromium_pids(), {1})
    try:
        return in_dashboard(page, url, config, server_pid)
    finally:
        pin([server_pid], ALL_CORES)
        pin(chromium_pids(), ALL_CORES)


def ratios(values: list[float], reference: list[float]) -> list[float]:
    """Each round's ratio (the round's pair was measured side by side)."""
    return [x / h for x, h in zip(values, reference, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--preset", default="fast", choices=sorted(PRESETS))
    parser.add_argument("--pin", action="store_true", help="also: the server and Chromium on a core each")
    args = parser.parse_args()
    config = PRESETS[args.preset]
    data = load_mnist(os.environ.get("MNIST_DIR"), download=False)
    names = ("headless", "dashboard", "headless beside a load like the browser's")
    pinned = ("headless on core 0", "dashboard on core 0, Chromium on core 1")
    if args.pin:
        names += pinned
    results: dict[str, list[float]] = {name: [] for name in names}
    browser_cores, server_cores = [], []
    with serve({"MNIST_DIR": os.environ.get("MNIST_DIR", "")}) as server, browser_page() as page:
        page.goto(server.url)
        page.get_by_text("MNIST, a two-layer net").wait_for(timeout=60_000)  # data loaded, page warm
        headless(data, config)  # warm-up: this process's first run pays for page faults and BLAS start
        _, browser_core, _ = in_dashboard(page, server.url, config, server.pid)  # and so does the server's
        for r in range(args.rounds):
            for name in names if r % 2 == 0 else reversed(names):
                started = time.perf_counter()
                if name == "headless":
                    value = headless(data, config)
                elif name == "dashboard":
                    value, browser_core, server_core = in_dashboard(page, server.url, config, server.pid)
                    browser_cores.append(browser_core)
                    server_cores.append(server_core)
                elif name == pinned[0]:
                    value = headless_on_one_core(data, config)
                elif name == pinned[1]:
                    value, _, _ = dashboard_beside_its_browser(page, server.url, config, server.pid)
                else:  # the browser's share as measured in its latest run
                    value = headless_beside_load(data, config, browser_core)
                results[name].append(value)
                print(f"round {r + 1} {name:<42} {value:>10,.0f} samples/s  ({time.perf_counter() - started:.1f} s)")
    print(f"\n{cpu_name()}; {args.preset} preset, {config.epochs} epochs, {args.rounds} rounds, interleaved")
    for name in names:
        line = f"  {name:<42} median {statistics.median(results[name]):>10,.0f} samples/s"
        if name not in ("headless", pinned[0]):
            against = "headless on core 0" if name == pinned[1] else "headless"
            line += f", / {against} {statistics.median(ratios(results[name], results[against])):.3f}"
        print(line)
    # The target's own terms: the dashboard against headless training beside a busy loop as
    # large as the browser (what serving the page costs, the browser's share set apart), and,
    # with --pin, the dashboard against headless with Chromium kept off the training's core.
    targets = [("dashboard", names[2])] + ([(pinned[1], pinned[0])] if args.pin else [])
    for name, against in targets:
        rounds = ratios(results[name], results[against])
        verdict = "ok" if statistics.median(rounds) >= 0.9 else "MISSED"
        print(
            f"  {name} / {against}: {statistics.median(rounds):.3f} "
            f"(rounds {', '.join(f'{x:.2f}' for x in rounds)}); target >= 0.9 {verdict}"
        )
    print(
        f"  during the dashboard runs: Chromium used {statistics.median(browser_cores):.2f} cores, "
        f"the server process {statistics.median(server_cores):.2f} (of 2; training included)"
    )


if __name__ == "__main__":
    main()
