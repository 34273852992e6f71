"""Presenter mode in Chromium on the real MNIST: a presenter link opened at a projector's
1280x720 shows no sidebar, hides the controls it names, and has the big figures and both
charts of a finished run in view without scrolling. Screenshots at 1280x720 and 1024x700
land in tests/screenshots/presenter_*.png."""

from __future__ import annotations

import os

import pytest
from browser import SCREENSHOTS, chromium, chromium_available, screenshot, serve

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not chromium_available() and not os.environ.get("CI"), reason="no Chromium here: apt-get install chromium"
    ),
]

IN_VIEW = ["presenter_figures", "train_curves_chart", "train_weights_chart"]  # keys of what must be in view
# True while the run trains and the big figures show an epoch after the first ("N of M", N >= 2).
LIVE_AFTER_AN_EPOCH = """() => {
    const epoch = [...document.querySelectorAll('.st-key-presenter_figures [data-testid=stMetricValue]')].at(-1);
    const start = document.querySelector('.st-key-train_start button');
    const shown = epoch && /^(\\d+) of \\d+$/.exec(epoch.innerText.trim());
    return Boolean(shown && Number(shown[1]) >= 2 && start && start.disabled);
}"""


def out_of_view(page, keys: list[str]) -> dict[str, dict]:
    """The elements (by key) not wholly inside the window as it is, unscrolled, with their boxes."""
    boxes = page.evaluate(
        """keys => Object.fromEntries(keys.map(k => {
            const el = document.querySelector(`.st-key-${k}`);
            const r = el && el.getBoundingClientRect();
            return [k, r ? {top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height} : null];
        }))""",
        keys,
    )
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    return {
        k: b
        for k, b in boxes.items()
        if b is None or b["height"] < 50 or b["top"] < 0 or b["bottom"] > height or b["left"] < 0 or b["right"] > width
    }


def test_a_presenter_link_fits_a_projector(mnist, tmp_path):
    env = {"MNIST_DIR": os.environ.get("MNIST_DIR", ""), "MNIST_RUNS_DIR": str(tmp_path / "runs")}
    with serve(env) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 720}, device_scale_factor=1)
        page.goto(f"{server.url}/train?present=1&hide=optimizer,schedule,stop_rules&train_epochs=6")
        page.locator(".st-key-presenter_bar").wait_for(timeout=30_000)
        page.locator(".st-key-train_lr").wait_for(state="visible")
        # Hidden once the page has drawn: the page's style can take effect after the first
        # elements are drawn, so each is waited for, not read at once. The stop rules' control
        # is there first, so that the rule that hides its expander has something to match.
        page.locator(".st-key-train_patience").wait_for(state="attached")
        for hidden in ('[data-testid="stSidebar"]', ".st-key-train_optimizer",
                       '[data-testid="stExpander"]:has(.st-key-train_patience)'):  # fmt: skip
            page.locator(hidden).first.wait_for(state="hidden", timeout=10_000)
        page.locator(".st-key-train_start button").click()
        page.locator(".st-key-train_start button[disabled]").wait_for(timeout=10_000)  # training
        # Live, with an epoch's curves drawn: any epoch after the first while it trains. An epoch here can
        # take under 2 s, about as long as a live refresh on a busy machine, so waiting for one
        # particular epoch's figure could miss it (CI did, for "2 of 3").
        page.wait_for_function(LIVE_AFTER_AN_EPOCH, timeout=60_000)
        page.wait_for_timeout(1500)
        assert out_of_view(page, IN_VIEW) == {}  # the progress bar above them too
        page.locator(".st-key-train_start button:not([disabled])").wait_for(timeout=90_000)  # finished: page redrawn
        page.wait_for_timeout(1500)  # Plotly lays out the final charts
        assert page.evaluate("document.querySelector('[data-testid=stMain]').scrollTop") == 0
        assert out_of_view(page, IN_VIEW) == {}
        page.screenshot(path=str(screenshot_path("presenter_1280x720")))
        page.set_viewport_size({"width": 1024, "height": 700})
        page.wait_for_timeout(1500)
        page.screenshot(path=str(screenshot_path("presenter_1024x700")))
        assert out_of_view(page, IN_VIEW) == {}
        screenshot(page, "presenter_full_1024")  # the whole page, below the fold too
        page.close()


def screenshot_path(name: str):
    """Where a window-sized screenshot goes (browser.screenshot takes the whole page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"
