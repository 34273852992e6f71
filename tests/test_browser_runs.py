"""Runs that last, in a real browser: a reload, a server restart, a command-line run, and
the Draw page following a live run across epochs and new drawings.

Debian's Chromium through Playwright against `streamlit run dashboard.py` on 127.0.0.1;
each test has its own store (MNIST_RUNS_DIR), so run ids start at 1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from browser import ROOT, chromium, chromium_available, draw_stroke, plot_json, screenshot, serve, trace_lengths

from nets.store import RunStore

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not chromium_available() and not os.environ.get("CI"), reason="no Chromium here: apt-get install chromium"
    ),
]


SIZES = [{"width": 1024, "height": 700}, {"width": 1280, "height": 720}, {"width": 1280, "height": 900}]
LOCAL = ("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:")


def env_for(runs_dir) -> dict[str, str]:
    return {"MNIST_DIR": os.environ.get("MNIST_DIR", ""), "MNIST_RUNS_DIR": str(runs_dir)}


def nav(page, title: str) -> None:
    page.locator("[data-testid=stSidebarNav] a", has_text=title).click()


def wait_for_epochs(store: RunStore, run_id: int, epochs: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while store.run(run_id).epochs_done < epochs:
        assert time.monotonic() < deadline, f"run {run_id} never reached {epochs} epochs"
        time.sleep(0.2)


def test_reload_and_server_restart_lose_nothing_and_a_cli_run_appears_in_compare(mnist, tmp_path):
    runs = tmp_path / "runs"
    store = RunStore(runs)
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})  # one browser: one cookie jar
        outside: list[str] = []  # nothing may reach outside the machine (fonts, icons, telemetry)
        context.on("request", lambda r: None if r.url.startswith(LOCAL) else outside.append(r.url))
        with serve(env_for(runs)) as first:
            page = context.new_page()
            page.goto(f"{first.url}/train?train_epochs=2&train_hidden=64")
            page.get_by_role("button", name="Start").click()
            page.get_by_text("run 1 finished after 2 epochs").wait_for(timeout=120_000)
            page.goto(f"{first.url}/train?train_epochs=200&train_batch=16&train_hidden=64")
            page.get_by_role("button", name="Start").click()
            page.get_by_text(re.compile(r"run 2: running")).first.wait_for(timeout=30_000)
            wait_for_epochs(store, 2, 1)

            page.reload()  # a new session of the same browser
            page.get_by_text(re.compile(r"run 2: running, epoch \d+ of 200")).first.wait_for(timeout=30_000)
            deadline = time.monotonic() + 30
            while (trace_lengths(page, "train_curves_chart") or [0])[0] < 1:
                assert time.monotonic() < deadline, "the reloaded page drew no curve of the live run"
                page.wait_for_timeout(200)
            # The page's Stop by its key: while a script runs, Streamlit's header shows a "Stop" of its own.
            assert page.locator(".st-key-train_stop button").is_enabled()  # this browser may stop it
            assert page.get_by_role("button", name="Start").is_disabled()  # and still trains one at a time
            screenshot(page, "reload_live_1280x900")
            page.set_viewport_size({"width": 1024, "height": 700})
            page.wait_for_timeout(1500)
            screenshot(page, "reload_live_1024x700")
            page.set_viewport_size({"width": 1280, "height": 900})

            stranger = browser.new_page(viewport={"width": 1280, "height": 900})  # another browser: no cookie
            stranger.goto(f"{first.url}/train")
            stranger.get_by_role("button", name="Start").wait_for(timeout=30_000)
            assert stranger.locator(".st-key-train_stop button").is_disabled()  # it cannot stop run 2
            stranger.close()
            page.close()
        # The server stopped while run 2 trained: recorded as interrupted, its epochs and weights kept.
        record = store.run(2)
        assert record.status == "interrupted" and record.epochs_done >= 1, record
        assert store.snapshots(2) and store.load(2).optimizer_state

        with serve(env_for(runs)) as second:
            page = context.new_page()
            page.goto(f"{second.url}/compare")
            page.locator(".stDataFrame, [data-testid=stDataFrame]").first.wait_for(timeout=30_000)
            page.get_by_text("2 runs of 2").wait_for(timeout=30_000)
            grid = page.locator("[data-testid=stDataFrame]").first.inner_text()
            screenshot(page, "compare_after_restart")
            cli = subprocess.run(
                [sys.executable, "-m", "nets.train", "--epochs", "1", "--hidden", "16", "--train-samples", "5000",
                 "--runs-dir", str(runs), "--no-download"],
                cwd=ROOT, env={**os.environ, **env_for(runs)}, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert cli.returncode == 0, cli.stderr
            page.get_by_text("3 runs of 3").wait_for(timeout=15_000)  # no reload: the page watches the store
            assert store.run(3).source == "cli"
            screenshot(page, "compare_with_cli_run")
            print(f"\nCompare after the restart:\n{grid[:300]}")
    assert outside == [], f"requests left the machine: {sorted(set(outside))[:5]}"


def probabilities(page) -> list[float]:
    return plot_json(page, "draw_probs", "el && el.data ? el.data[0].y : []") or []


def test_draw_follows_a_live_run_across_epochs_and_new_drawings(mnist, tmp_path):
    """Items 1 and 2 of 'In front of a real user': the reading moves at every epoch, and a
    new drawing keeps the live run selected."""
    runs = tmp_path / "runs"
    store = RunStore(runs)
    with serve(env_for(runs)) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{server.url}/train?train_epochs=12&train_batch=16&train_hidden=32&train_lr=0.0005")
        page.get_by_role("button", name="Start").click()
        page.get_by_text(re.compile(r"run 1: running")).first.wait_for(timeout=30_000)
        nav(page, "Draw")
        page.locator(".st-key-draw_canvas_0 canvas.upper-canvas").wait_for(timeout=30_000)
        for size in SIZES:  # the whole 280 px canvas is visible: its column is never narrower
            page.set_viewport_size(size)
            page.wait_for_timeout(500)
            canvas = page.locator(".st-key-draw_canvas_0 canvas.upper-canvas").bounding_box()
            column = page.locator("[data-testid=stColumn]:has(.st-key-draw_pad)").bounding_box()
            assert canvas["width"] == 280 and canvas["x"] + 280 <= column["x"] + column["width"] + 1, (size, column)
            screenshot(page, f"draw_{size['width']}x{size['height']}")
        page.set_viewport_size({"width": 1280, "height": 900})
        selector = page.locator(".st-key-draw_model input")
        assert selector.input_value() == "run 1 (training now, live)"
        page.wait_for_timeout(1000)  # the component mounts after it is attached, slower beside a training
        draw_stroke(page, "draw_canvas_0", [(140, 40), (140, 240)])
        page.get_by_text(re.compile(r"run 1, live: weights after")).wait_for(timeout=30_000)

        readings: dict[int, list[float]] = {}  # epochs behind the weights -> the probabilities shown
        deadline = time.monotonic() + 120
        while len(readings) < 4 and time.monotonic() < deadline:
            caption = page.get_by_text(re.compile(r"run 1, live: weights after \d+ of 12 epochs")).first.inner_text()
            epochs = int(re.search(r"after (\d+) of", caption).group(1))
            probs = probabilities(page)
            if probs and epochs not in readings and store.run(1).epochs_done == epochs:
                readings[epochs] = probs
            page.wait_for_timeout(250)
        assert len(readings) >= 4, f"the live reading stalled at epochs {sorted(readings)}"
        later = [readings[e] for e in sorted(readings)]
        assert all(a != b for a, b in zip(later, later[1:], strict=False)), "the same reading after a new epoch"

        page.get_by_role("button", name="Clear").click()  # a new drawing while it trains
        page.locator(".st-key-draw_canvas_1 canvas.upper-canvas").wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        draw_stroke(page, "draw_canvas_1", [(70, 60), (210, 60), (120, 250)])
        page.get_by_text(re.compile(r"run 1, live: weights after")).wait_for(timeout=30_000)
        assert selector.input_value() == "run 1 (training now, live)"  # the selector did not jump back
        screenshot(page, "draw_live")
        deadline = time.monotonic() + 120
        while not re.fullmatch(r"run 1 \(\d+\.\d+%\) · current model", selector.input_value()):
            assert time.monotonic() < deadline, f"the selector shows {selector.input_value()!r}"
            page.wait_for_timeout(500)
        # The run ended and became the current model: the selector stayed on it, now its final weights.
        assert store.run(1).status == "finished"
        page.get_by_text(re.compile(r"run 1, live")).wait_for(state="detached", timeout=10_000)


def legend_runs(page) -> set[str]:
    names = plot_json(page, "train_curves_chart", "el && el.data ? el.data.map(t => t.name || '') : []") or []
    return {n.split(" · ")[0] for n in names if " · " in n}


def select_rows(page, rows: list[int]) -> None:
    """Tick exactly `rows` (0-based) of the Train page's run table (its first column of checkboxes)."""
    table = page.locator(".st-key-train_runs_table [data-testid=stDataFrameResizable]")
    table.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    box = table.bounding_box()
    for row in rows:
        page.mouse.click(box["x"] + 18, box["y"] + 35 * (row + 1) + 17)  # 35 px rows below a 35 px header
        page.wait_for_timeout(800)


def test_what_a_user_sees_after_runs_that_learn_stall_and_stop(mnist, tmp_path):
    """Items 3-6 of 'In front of a real user', on the real MNIST: a run stuck at chance is
    said to be so and never becomes the current model, neither does a stopped one; live and
    final throughput agree and a paused run shows neither speed nor time left; the estimate
    comes from the runs made; the charts draw exactly the selected runs."""
    runs = tmp_path / "runs"
    with serve(env_for(runs)) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{server.url}/train?train_epochs=2&train_hidden=64&train_batch=16")
        page.get_by_role("button", name="Start").wait_for(timeout=30_000)
        for size in SIZES:  # Start, Pause and Stop whole and in view without scrolling, at every size
            page.set_viewport_size(size)
            page.wait_for_timeout(500)
            for name in ("Start", "Pause", "Stop"):
                button = page.get_by_role("button", name=name)
                box = button.bounding_box()
                assert box["y"] + box["height"] <= size["height"], (name, size, box)
                whole = "b => [b, ...b.querySelectorAll('*')].every(e => e.scrollWidth <= e.clientWidth + 1)"
                assert button.evaluate(whole), f"{name} is cut at {size}"
            screenshot(page, f"train_{size['width']}x{size['height']}")
        page.set_viewport_size({"width": 1280, "height": 900})
        page.get_by_role("button", name="Start").click()
        live_speeds, last = [], ""  # readings during the second epoch, past the start's contention
        while not page.get_by_text("run 1 finished after 2 epochs").count():
            text = page.evaluate("() => (document.querySelector('[data-testid=stMain] [data-testid=stProgress]')"
                                 " || {innerText: ''}).innerText")  # fmt: skip
            m = re.search(r"epoch 2 of 2, batch ([\d,]+) of [\d,]+ · ([\d,]+) samples/s", text)
            # Past the epoch's first third: the page's redraw at an epoch boundary (curves, health,
            # advice) takes the browser's CPU from the training on this 2-core machine.
            if m and text != last and int(m.group(1).replace(",", "")) > 1200:
                live_speeds.append(float(m.group(2).replace(",", "")))
            last = text
            page.wait_for_timeout(100)
        history = RunStore(runs).history(1)
        banner = page.get_by_text("run 1 finished after 2 epochs").inner_text()
        final = float(re.search(r"\(([\d,]+) samples/s\)", banner).group(1).replace(",", ""))
        rows = sum(m.samples_per_sec * m.seconds for m in history)
        assert abs(final - rows / sum(m.seconds for m in history)) <= 1  # the banner: rows per second of training
        live = sorted(live_speeds)[len(live_speeds) // 2]
        second = history[1].samples_per_sec  # the same figure, for the epoch the live readings came from
        print(
            f"\nlive samples/s in epoch 2 {live_speeds} (median {live:,.0f}); epoch 2 {second:,.0f}; run {final:,.0f}"
        )
        assert live_speeds and 0.75 < live / second < 1.33, (live_speeds, second)
        epochs = history
        estimate = page.get_by_text(re.compile(r"About [\d.]+ s per epoch")).inner_text()
        assert "earlier runs with these settings here" in estimate, estimate  # the runs made, not a guess
        shown = float(re.search(r"About ([\d.]+) s", estimate).group(1))
        assert abs(shown - (epochs[1].seconds + epochs[1].eval_seconds)) < 0.2 * shown + 0.05, (estimate, epochs)

        # A run that learns nothing: SGD at learning rate 10 sits at chance level.
        page.goto(f"{server.url}/train?train_epochs=1&train_hidden=64&train_optimizer=sgd&train_lr=10")
        page.get_by_role("button", name="Start").click()
        stuck = page.get_by_text(re.compile(r"run 2 (did not learn|diverged)"))
        stuck.wait_for(timeout=120_000)
        print(f"lr 10: {stuck.inner_text()[:160]}")
        assert page.locator("[data-testid=stAlertContentSuccess]").count() == 0  # no green box for it
        current = page.get_by_text(re.compile("Current model, used by the other pages")).inner_text()
        assert "run 1 (" in current, current
        screenshot(page, "run_did_not_learn")

        # A stopped run does not replace the current model by itself; while paused, no speed, no time left.
        page.goto(f"{server.url}/train?train_epochs=20&train_hidden=64&train_batch=16")
        page.get_by_role("button", name="Start").click()
        page.get_by_text(re.compile(r"run 3: running")).first.wait_for(timeout=30_000)
        page.get_by_role("button", name="Pause").click()
        page.get_by_text(re.compile(r"run 3: paused")).first.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)
        paused = page.get_by_text(re.compile(r"run 3: paused")).first.inner_text()
        assert "samples/s" not in paused and "left" not in paused, paused
        page.get_by_role("button", name="Resume").click()
        page.get_by_text(re.compile(r"run 3: running")).first.wait_for(timeout=30_000)
        wait_for_epochs(RunStore(runs), 3, 1)
        page.locator(".st-key-train_stop button").click()
        page.get_by_text(re.compile(r"run 3 was stopped after \d+ epoch")).wait_for(timeout=30_000)
        current = page.get_by_text(re.compile("Current model, used by the other pages")).inner_text()
        assert "run 1 (" in current, current

        # What is drawn is exactly what is selected.
        assert legend_runs(page) == {"run 3"}  # nothing selected: the run just trained
        select_rows(page, [0])
        deadline = time.monotonic() + 10
        while legend_runs(page) != {"run 1"} and time.monotonic() < deadline:
            page.wait_for_timeout(200)
        assert legend_runs(page) == {"run 1"}
        assert page.get_by_text("run 1 finished after 2 epochs").count() == 1  # the banner is run 1's
        select_rows(page, [1])
        deadline = time.monotonic() + 10
        while legend_runs(page) != {"run 1", "run 2"} and time.monotonic() < deadline:
            page.wait_for_timeout(200)
        assert legend_runs(page) == {"run 1", "run 2"}
        assert page.get_by_text(re.compile(r"Drawn: run 1, run 2\. The banner and the weights are run 1's")).count()
        screenshot(page, "train_two_selected")
