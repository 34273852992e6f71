"""The Compare page with 1,000 runs in the store: how long until a person sees it.

Run from the project root (needs Debian's chromium and playwright):
    MNIST_DIR=/path/to/mnist python bench/bench_store.py [--runs 1000] [--tries 5]

Seeds a synthetic store in a temporary runs directory (runs of varied settings, each
with a 10-30 epoch history and a small weights file, from the dashboard, the command
line and a sweep), then measures, medians over `--tries`:
  - the store's read of every run (RunStore.runs), the page's first query;
  - the Compare page's script run on the server (AppTest, no browser);
  - in Chromium, from a click on "Compare" in the navigation to the page drawn (the run
    table, the parallel coordinates and the scatter on screen, the script finished).
The target is 1.5 s for the page in the browser. The CPU is printed beside the figures.
The parallel coordinates are drawn as the page shows them by default: plain SVG lines.
Plotly's interactive WebGL parcoords (the page's toggle) alone takes 1.8-2.1 s to draw
200 lines in this machine's software-rendered WebGL, on a bare HTML page.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # run as a script from anywhere

import numpy as np  # noqa: E402
from browser import browser_page, serve  # noqa: E402

from nets.checkpoint import LoadedModel  # noqa: E402
from nets.config import TrainConfig  # noqa: E402
from nets.store import RunStore  # noqa: E402
from nets.training import EpochMetrics  # noqa: E402
from nets.two_layer_net import TwoLayerNet  # noqa: E402

TARGET = 1.5


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def seed_store(root: Path, runs: int) -> RunStore:
    """`runs` finished runs of varied settings, each with a plausible history."""
    store = RunStore(root)
    rng = np.random.default_rng(0)
    sources = ("dashboard", "cli", "sweep")
    for i in range(runs):
        config = TrainConfig(
            hidden_size=int(rng.choice([16, 32, 64])),
            optimizer=str(rng.choice(["sgd", "momentum", "adam"])),
            learning_rate=float(10 ** rng.uniform(-4, 0)),
            batch_size=int(rng.choice([32, 64, 100, 128, 256])),
            weight_decay=float(rng.choice([0.0, 1e-4, 1e-3])),
            epochs=int(rng.integers(10, 31)),
            seed=i,
        )
        ceiling = rng.uniform(0.9, 0.985)
        history = [
            EpochMetrics(epoch=e, epochs=config.epochs, train_loss=1 / (e + 1), train_acc=ceiling - 0.3 / (e + 2),
                         val_loss=1.1 / (e + 1), val_acc=ceiling - 0.32 / (e + 2), test_loss=1.1 / (e + 1),
                         test_acc=ceiling - 0.33 / (e + 2), test_errors=int(10_000 * (1 - ceiling + 0.33 / (e + 2))),
                         learning_rate=config.learning_rate, seconds=0.5, eval_seconds=0.05, samples_per_sec=110_000)
            for e in range(config.epochs)
        ]  # fmt: skip
        loaded = LoadedModel(TwoLayerNet.from_config(config), config, {"epochs_trained": config.epochs})
        source = sources[i % 3]
        run_id = store.add_model(loaded, name=f"run {i + 1}", source="import", history=history, status="finished",
                                 tags=["baseline"] if i % 10 == 0 else ())  # fmt: skip
        with store._write() as conn:  # the provenance a real run of that source would have
            conn.execute("UPDATE runs SET source = ?, sweep = ? WHERE run_id = ?",
                         (source, "lr-search" if source == "sweep" else None, run_id))  # fmt: skip
    return store


def time_store_read(store: RunStore, tries: int) -> float:
    times = []
    for _ in range(tries):
        started = time.perf_counter()
        store.runs()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def time_script(tries: int) -> float:
    """The Compare page's script run in AppTest (the server's share of a page load)."""
    import streamlit as st
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest

    times = []
    for _ in range(tries):
        st.cache_resource.clear()
        at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
        at.run()
        PagesManager.uses_pages_directory = False
        at.switch_page("pages/compare.py")
        started = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - started)
        assert not at.exception, [e.value for e in at.exception]
    return statistics.median(times)


def time_browser(url: str, tries: int) -> list[float]:
    """Click on Compare in the navigation until the table and both charts are drawn."""
    drawn = """() => {
        const has = s => document.querySelector(s) !== null;
        const running = document.querySelector('[data-testid=stStatusWidget]');
        return has('[data-testid=stDataFrame] canvas, [data-testid=stDataFrame] table')
            && has('.st-key-compare_parallel .js-plotly-plot .scatterlayer')
            && has('.st-key-compare_scatter .js-plotly-plot .scatterlayer')
            && !(running && running.innerText.includes('Running'));
    }"""
    times = []
    with browser_page(width=1280, height=900) as page:
        page.goto(url)
        page.get_by_text("MNIST, a two-layer net, and you").wait_for(timeout=60_000)
        for _ in range(tries + 1):  # the first visit loads the page's code: a warm-up
            page.locator("[data-testid=stSidebarNav] a", has_text="Overview").click()
            page.get_by_text("MNIST, a two-layer net, and you").wait_for(timeout=60_000)
            page.wait_for_timeout(500)
            started = time.perf_counter()
            page.locator("[data-testid=stSidebarNav] a", has_text="Compare").click()
            page.wait_for_function(drawn, timeout=60_000, polling=20)
            times.append(time.perf_counter() - started)
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--tries", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        started = time.perf_counter()
        store = seed_store(root, args.runs)
        print(f"{cpu_name()}, {os.cpu_count()} cores")
        print(f"seeded {args.runs:,} runs in {time.perf_counter() - started:.1f} s")
        os.environ["MNIST_RUNS_DIR"] = str(root)
        print(f"store.runs() of {args.runs:,} runs: median {time_store_read(store, args.tries) * 1000:.0f} ms")
        print(f"Compare page script run (AppTest): median {time_script(args.tries):.2f} s")
        with serve({"MNIST_RUNS_DIR": str(root), "MNIST_DIR": os.environ.get("MNIST_DIR", "")}) as server:
            times = time_browser(server.url, args.tries)
        median = statistics.median(times)
        verdict = "ok" if median <= TARGET else "MISSED"
        print(f"Compare page in Chromium, click to drawn: median {median:.2f} s "
              f"(tries {', '.join(f'{t:.2f}' for t in times)}; target <= {TARGET} s {verdict})")  # fmt: skip


if __name__ == "__main__":
    main()
