"""Watching it learn, in a real browser: the batch-loss trace moves inside one long epoch,
a piece of advice is applied with its button, and the health panel is drawn; screenshots
of both at 1280x900 and 1024x700.

Debian's Chromium through Playwright against `streamlit run dashboard.py` on 127.0.0.1,
with the real MNIST (an epoch long enough to watch) and a store of its own.
"""

from __future__ import annotations

import os
import time

import pytest
from browser import chromium, chromium_available, plot_json, screenshot, serve

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not chromium_available() and not os.environ.get("CI"), reason="no Chromium here: apt-get install chromium"
    ),
]

SIZES = [{"width": 1280, "height": 900}, {"width": 1024, "height": 700}]
LAST_TRACE_X = (
    "(() => { const t = el.data.find(d => d.name === 'batch loss (smoothed)');"
    " return t ? t.x[t.x.length - 1] : null; })()"
)


def last_trace_x(page) -> float | None:
    """The loss trace's last fractional epoch, or None while the chart is (re)drawn: the page
    replaces the chart every tick, so it can vanish between finding it and reading it."""
    from playwright.sync_api import Error

    try:
        return plot_json(page, "train_curves_chart", f"el && el.data ? ({LAST_TRACE_X}) : null")
    except Error:
        return None


def env_for(runs_dir) -> dict[str, str]:
    return {"MNIST_DIR": os.environ.get("MNIST_DIR", ""), "MNIST_RUNS_DIR": str(runs_dir)}


def test_trace_moves_inside_an_epoch_advice_applies_and_health_shows(mnist, tmp_path):
    with serve(env_for(tmp_path / "runs")) as server, chromium() as browser:
        page = browser.new_page(viewport=SIZES[0], device_scale_factor=1)
        # 55,000 digits in batches of 8 through 512 hidden units: an epoch of many seconds.
        page.goto(f"{server.url}/train?train_epochs=2&train_hidden=512&train_batch=8")
        page.locator(".st-key-train_start button").click()
        seen: list[float] = []
        deadline = time.monotonic() + 60
        while len(set(seen)) < 4:
            assert time.monotonic() < deadline, f"the trace did not move: {seen}"
            x = last_trace_x(page)
            if x is not None:
                seen.append(x)
            page.wait_for_timeout(250)
        assert seen == sorted(seen) and 0 < seen[-1] < 1  # four steps forward, all inside epoch 1
        page.get_by_text("epoch 1 of 2").first.wait_for(timeout=5_000)  # the banner agrees: no epoch ended yet
        page.locator(".st-key-train_stop button").click()
        page.get_by_text("run 1 was stopped").wait_for(timeout=30_000)

        # A rate far too high: after its first epoch the loss is worse than guessing, and the
        # advice offers a lower rate, into the run itself while it trains.
        page.goto(f"{server.url}/train?train_epochs=20&train_hidden=16&train_batch=8&train_optimizer=sgd&train_lr=10")
        page.locator(".st-key-train_start button").click()
        advice = page.locator(".st-key-train_advice_lr_too_high")
        advice.wait_for(timeout=60_000)
        for size in SIZES:
            page.set_viewport_size(size)
            page.wait_for_timeout(500)
            element_shot(page, advice, f"advice-{size['width']}x{size['height']}.png")
            assert advice.bounding_box()["width"] <= size["width"]
        page.set_viewport_size(SIZES[0])
        advice.get_by_role("button", name="Apply").click()
        page.get_by_text("Applied learning rate 10 → 1 into").wait_for(timeout=30_000)
        thumb = page.locator(".st-key-train_lr [data-testid=stSliderThumbValue]")
        deadline = time.monotonic() + 15  # the settings column redraws with the whole page, just after the message
        while thumb.inner_text() != "1":
            assert time.monotonic() < deadline, f"the learning-rate control still shows {thumb.inner_text()}"
            page.wait_for_timeout(200)
        stop = page.locator(".st-key-train_stop button")  # not Streamlit's own "Stop" in the header
        if stop.is_enabled():
            stop.click()
        page.locator(".st-key-train_start button:enabled").wait_for(timeout=30_000)

        # A short healthy run: the health panel with its charts and the epoch slider.
        page.goto(f"{server.url}/train?train_epochs=3&train_hidden=64&train_batch=100")
        page.locator(".st-key-train_start button").click()
        page.get_by_text("run 3 finished after 3 epochs").wait_for(timeout=120_000)
        panel = page.locator("[data-testid=stExpander]", has_text="The net's health")
        histogram = page.locator(".st-key-train_histogram_chart .js-plotly-plot")
        deadline = time.monotonic() + 30
        while histogram.count() != 1:  # the page redraws around the finished run: one chart once it settles
            assert time.monotonic() < deadline, "no single histogram chart"
            page.wait_for_timeout(200)
        assert plot_json(page, "train_health_chart", "el.data[0].x") == [1, 2, 3]
        for size in SIZES:
            page.set_viewport_size(size)
            page.wait_for_timeout(800)
            assert health_overlaps(page) == [], size
            element_shot(page, panel, f"health-{size['width']}x{size['height']}.png")
        screenshot(page, "train-insight")


# The health chart's texts that must not cover each other: the legend, the subplot titles,
# and the right subplot's tick labels against the left subplot (at 330 px, "10^-2" did both).
HEALTH_OVERLAPS = """() => {
    const el = document.querySelector('.st-key-train_health_chart .js-plotly-plot');
    const box = e => e.getBoundingClientRect();
    const meet = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    const legend = box(el.querySelector('g.legend'));
    const titles = [...el.querySelectorAll('g.annotation')].map(a => [a.textContent, box(a)]);
    const left = box(el.querySelector('g.draglayer g.xy rect.nsewdrag'));
    const found = titles.filter(([, b]) => meet(legend, b)).map(([t]) => `the legend covers "${t}"`);
    for (const tick of el.querySelectorAll('g.yaxislayer-above g.y2tick')) {
        const text = tick.textContent;
        if (text && box(tick).left < left.right) found.push(`y2 tick "${text}" in the left plot`);
    }
    return found;
}"""


def health_overlaps(page) -> list[str]:
    return page.evaluate(HEALTH_OVERLAPS)


def element_shot(page, locator, name: str) -> None:
    """A picture of one element of a page that redraws every second: the element can be
    replaced between finding it and taking it, so a detached one is looked up again. An
    element taller than the window is shot in a window made tall enough for it (the same
    width, so the same layout): Streamlit scrolls inside the page, and the part below the
    window would come out blank."""
    from playwright.sync_api import Error

    size = page.viewport_size
    try:
        for _ in range(10):
            try:
                height = locator.bounding_box(timeout=5_000)["height"]
                if height > size["height"] - 40:
                    page.set_viewport_size({"width": size["width"], "height": int(height) + 200})
                    page.wait_for_timeout(500)
                locator.screenshot(path=str(screenshot_dir() / name), timeout=5_000)
                return
            except Error:
                page.wait_for_timeout(200)
    finally:
        page.set_viewport_size(size)
    raise AssertionError(f"{name}: the element never stayed on the page long enough")


def screenshot_dir():
    from browser import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
