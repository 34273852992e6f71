"""A sweep in a real browser: started on the Sweep page, watched as its trials fill the
parallel coordinates, and seen again after a reload; screenshots at three sizes."""

from __future__ import annotations

import os
import time

import pytest
from browser import chromium, chromium_available, screenshot, serve, trace_lengths

from nets.store import RunStore

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available() and not os.environ.get("CI"), reason="no Chromium here"),
]
SIZES = [(1024, 700), (1280, 720), (1280, 900)]


def parallel_lines(page) -> int:
    """Lines drawn in the parallel coordinates: the traces hold them all, separated by gaps."""
    return trace_lengths(page, "sweep_parallel") and page.evaluate(
        """() => {
            const el = document.querySelector('.st-key-sweep_parallel .js-plotly-plot');
            if (!el || !el.data) return 0;
            return el.data.reduce((n, t) => n + (t.x || []).filter(v => v === null).length, 0);
        }"""
    )


# What a narrow window breaks on this page: chart texts cut at the chart's edge or drawn over
# each other, Plotly's toolbar (shown on hover) over the data, button labels shortened with an
# ellipsis, a table that scrolls sideways.
LAYOUT_FAULTS = """() => {
    const box = e => e.getBoundingClientRect();
    const meet = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
    const found = [];
    for (const key of ['sweep_history', 'sweep_parallel', 'sweep_importance']) {
        const el = document.querySelector(`.st-key-${key} .js-plotly-plot`);
        if (!el) {  // the importance needs three finished trials, which the pruner may not leave
            if (key !== 'sweep_importance') found.push(`${key} is not drawn`);
            continue;
        }
        const frame = box(el);
        const texts = [...el.querySelectorAll('g.annotation, .gtitle, .xtitle, .ytitle, .legendtext')]
            .filter(t => t.textContent.trim()).map(t => [t.textContent.trim(), box(t)]);
        for (const [text, b] of texts)
            if (b.left < frame.left - 1 || b.right > frame.right + 1 || b.top < frame.top - 1
                || b.bottom > frame.bottom + 1) found.push(`${key}: "${text}" is cut`);
        const bar = el.querySelector('.modebar'), area = el.querySelector('.nsewdrag');  // the toolbar, the plot area
        if (bar && area && box(bar).bottom > box(area).top + 1) found.push(`${key}: the toolbar covers the plot's top`);
        for (let i = 0; i < texts.length; i++)
            for (let j = i + 1; j < texts.length; j++)
                if (meet(texts[i][1], texts[j][1])) found.push(`${key}: "${texts[i][0]}" over "${texts[j][0]}"`);
    }
    for (const button of document.querySelectorAll('[data-testid=stButton] button'))
        if ([button, ...button.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1))
            found.push(`the button "${button.textContent}" is cut`);
    const grid = document.querySelector('[data-testid=stDataFrame] .dvn-scroller');
    if (!grid) found.push('no trials table');
    else if (grid.scrollWidth > grid.clientWidth + 1) found.push('the trials table scrolls sideways');
    return found;
}"""


def test_a_four_trial_sweep_fills_the_parallel_coordinates_as_it_runs(mnist, tmp_path):
    runs = tmp_path / "runs"
    env = {"MNIST_DIR": os.environ.get("MNIST_DIR", ""), "MNIST_RUNS_DIR": str(runs)}
    with serve(env) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{server.url}/sweep")
        page.get_by_role("button", name="Start the sweep").wait_for(timeout=60_000)
        # Trials of several seconds each (all the digits): a page that redraws every second sees the lines fill in.
        for label, value in (("Training digits (0 = all)", "0"), ("Epochs per trial", "3"), ("Trials", "4")):
            field = page.get_by_label(label, exact=True)
            field.fill(value)
            field.press("Enter")
            page.wait_for_timeout(800)
        page.get_by_text("tpe sampler, pruner asha, 4 trials").wait_for(timeout=10_000)
        page.get_by_role("button", name="Start the sweep").click()

        store = RunStore(runs)
        counts = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            counts.append(parallel_lines(page))
            if store.sweeps() and store.sweeps()[0].status == "finished" and counts[-1] == 4:
                break
            page.wait_for_timeout(500)
        sweep = store.sweeps()[0]
        assert sweep.status == "finished", sweep
        assert counts[-1] == 4 and min(c for c in counts if c) < 4, counts  # it filled in while it ran
        page.get_by_role("heading", name="The best trial").wait_for(timeout=15_000)
        assert page.locator("[data-testid=stException]").count() == 0
        faults = {}
        for width, height in SIZES:
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(1200)
            faults[width, height] = page.evaluate(LAYOUT_FAULTS)
            screenshot(page, f"sweep_finished_{width}x{height}")
        assert not any(faults.values()), "\n".join(
            f"{size}: {fault}" for size, found in faults.items() for fault in found
        )

        page.reload()  # what it found is the store's: a new session sees it all
        page.get_by_role("heading", name="The best trial").wait_for(timeout=60_000)
        wait = time.monotonic() + 20
        while parallel_lines(page) != 4:
            assert time.monotonic() < wait, "the reloaded page did not draw the four trials"
            page.wait_for_timeout(300)
