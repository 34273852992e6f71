"""Training throughput inside the running dashboard, against the same training headless.

Run from the project root (needs Debian's chromium and playwright):
    MNIST_DIR=/path/to/mnist python bench/bench_dashboard.py [--rounds 3] [--preset fast]

Each round trains the same config twice, interleaved A B, B A: once in this process with
the engine's loop (headless), once in `streamlit run dashboard.py` started by a real
browser that opens the Train page with the config in its URL and presses Start while the
page refreshes its live charts. Both figures are the engine's own training-time
throughput (EpochMetrics), so the ratio isolates what serving the live page costs.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # run as a script from anywhere

from browser import browser_page, serve  # noqa: E402

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


def in_dashboard(page, url: str, config) -> float:
    query = "&".join(f"{key}={str(getattr(config, name)).lower()}" for key, name in SETTING_KEYS.items())
    page.goto(f"{url}/train?{query}")
    page.get_by_role("button", name="Start").click()
    done = page.get_by_text(re.compile(r"finished after \d+ epochs"))
    done.wait_for(timeout=600_000)
    return float(re.search(r"\(([\d,]+) samples/s\)", done.inner_text()).group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--preset", default="fast", choices=sorted(PRESETS))
    args = parser.parse_args()
    config = PRESETS[args.preset]
    data = load_mnist(os.environ.get("MNIST_DIR"), download=False)
    results = {"headless": [], "dashboard": []}
    with serve({"MNIST_DIR": os.environ.get("MNIST_DIR", "")}) as server, browser_page() as page:
        page.goto(server.url)
        page.get_by_text("MNIST, a two-layer net").wait_for(timeout=60_000)  # data loaded, page warm
        headless(data, config)  # warm-up: this process's first run pays for page faults and BLAS start
        in_dashboard(page, server.url, config)  # and so does the server's first run
        for r in range(args.rounds):
            order = ("headless", "dashboard") if r % 2 == 0 else ("dashboard", "headless")
            for name in order:
                started = time.perf_counter()
                value = headless(data, config) if name == "headless" else in_dashboard(page, server.url, config)
                results[name].append(value)
                print(f"round {r + 1} {name:<9} {value:>10,.0f} samples/s  ({time.perf_counter() - started:.1f} s)")
    ratios = [d / h for d, h in zip(results["dashboard"], results["headless"], strict=True)]
    print(f"\n{args.preset} preset, {config.epochs} epochs, {args.rounds} rounds")
    print(f"  headless  median {statistics.median(results['headless']):>10,.0f} samples/s")
    print(f"  dashboard median {statistics.median(results['dashboard']):>10,.0f} samples/s")
    verdict = "ok" if statistics.median(ratios) >= 0.9 else "MISSED"
    print(f"  dashboard / headless: median {statistics.median(ratios):.3f} (target >= 0.9 {verdict}); rounds {ratios}")


if __name__ == "__main__":
    main()
