"""The Inside page in a real browser: the diagram for a drawing, a unit switched off, the map
with the drawing as a star, calibration, and the epoch slider replaying a run."""

from __future__ import annotations

import os
import re

import pytest
from browser import browser_page, chromium_available, draw_stroke, plot_json, plot_point, screenshot, serve
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not chromium_available() and not os.environ.get("CI"), reason="no Chromium here: apt-get install chromium"
    ),
]

SEVEN = [(70, 60), (210, 60), (120, 250)]
SIZES = [(1280, 900), (1024, 700)]


@pytest.fixture(scope="module")
def server(mnist, tmp_path_factory):
    env = {"MNIST_DIR": os.environ.get("MNIST_DIR", ""), "MNIST_RUNS_DIR": str(tmp_path_factory.mktemp("runs"))}
    with serve(env) as handle:
        yield handle


def nav(page, title: str) -> None:
    page.locator("[data-testid=stSidebarNav] a", has_text=title).click()


def chart(page, key: str) -> None:
    page.locator(f".st-key-{key} .js-plotly-plot").first.wait_for(timeout=60_000)
    page.wait_for_timeout(800)  # Plotly's layout settles before positions are read


# Streamlit shortens a metric that does not fit its column with an ellipsis ("99.2…").
CUT_METRICS = """() => [...document.querySelectorAll('[data-testid=stMetricLabel], [data-testid=stMetricValue]')]
    .filter(m => [m, ...m.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1))
    .map(m => m.textContent)"""


def shots(page, name: str) -> None:
    """The page at both window sizes (the narrow one is where layouts break), no metric cut."""
    cut = {}
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(700)
        cut[width] = page.evaluate(CUT_METRICS)
        screenshot(page, f"{name}_{width}x{height}")
    page.set_viewport_size({"width": SIZES[0][0], "height": SIZES[0][1]})
    assert not any(cut.values()), f"{name}: metrics cut {cut}"


def test_a_drawing_through_the_net_a_unit_off_and_the_map(server):
    with browser_page(*SIZES[0]) as page:
        page.goto(f"{server.url}/draw")
        page.locator(".st-key-draw_canvas_0 canvas.upper-canvas").wait_for(timeout=30_000)
        page.wait_for_timeout(300)
        draw_stroke(page, "draw_canvas_0", SEVEN)
        page.locator(".draw-guess").wait_for(timeout=30_000)
        drawn_as = page.locator(".draw-guess").inner_text().strip()

        nav(page, "Inside")
        chart(page, "inside_diagram")
        assert page.get_by_text("your drawing").first.is_visible()
        page.get_by_text(re.compile(rf"The net reads {drawn_as} \(")).wait_for(timeout=30_000)
        units = plot_json(page, "inside_diagram", "el.data.find(t => t.name === 'units')")
        assert 1 <= len(units["customdata"]) <= 12
        shots(page, "inside_diagram")

        # Click the strongest unit for the answer, then switch it off.
        unit = units["customdata"][0]
        heading = page.get_by_role("heading", name=f"Unit {unit}")
        for _ in range(3):  # after the resizes above, Plotly may still be laying out: click again if it missed
            page.wait_for_timeout(1000)
            page.mouse.click(*plot_point(page, "inside_diagram", 1, units["y"][0]))
            try:
                heading.wait_for(timeout=10_000)
                break
            except PlaywrightTimeout:
                continue
        heading.wait_for(timeout=10_000)
        page.get_by_role("button", name=f"Switch unit {unit} off").click()
        page.get_by_text(re.compile(r"With 1 unit off it reads \d")).wait_for(timeout=30_000)
        page.get_by_text(re.compile(r"[\d,]+ of 10,000 test digits change their answer")).wait_for(timeout=30_000)
        chart(page, "inside_diagram")
        symbols = plot_json(page, "inside_diagram", "el.data.find(t => t.name === 'units').marker.symbol")
        assert symbols[0] == "x", symbols
        screenshot(page, "inside_unit_off")

        page.locator(".st-key-inside_view button", has_text="Where digits live").click()
        chart(page, "inside_map")
        names = plot_json(page, "inside_map", "el.data.map(t => t.name)")
        assert names[1:11] == [str(d) for d in range(10)] and names[11] == "mistakes"
        assert names[-1].startswith(f"your drawing: read as {drawn_as}")
        points = plot_json(page, "inside_map", "el._fullData[0]._length")
        assert points == 10_000
        page.get_by_text("Click a dot", exact=True).wait_for(timeout=10_000)
        shots(page, "inside_map")

        # Hover the dot furthest right: the box names a digit and its true label; a click shows it beside the map.
        x, y = plot_json(
            page, "inside_map",
            "(t => { let i = 0; for (let j = 1; j < t._length; j++) if (t.x[j] > t.x[i]) i = j;"
            "        return [t.x[i], t.y[i]]; })(el._fullData[0])",
        )  # fmt: skip
        px, py = plot_point(page, "inside_map", x, y)
        page.mouse.move(px - 3, py)
        page.mouse.move(px, py)
        hover = page.locator(".st-key-inside_map .hovertext")
        hover.first.wait_for(timeout=10_000)
        said = re.match(r"#(\d+): a (\d)", hover.first.text_content())
        assert said, hover.first.text_content()
        index, label = int(said[1]), int(said[2])
        assert plot_json(page, "inside_map", f"el._fullData[0].marker.color[{index}]") == label
        page.mouse.click(px, py)
        page.get_by_text(re.compile(rf"Test digit #{index}: a {label}, read as \d")).wait_for(timeout=30_000)
        screenshot(page, "inside_map_picked")

        page.locator(".st-key-inside_view button", has_text="How sure").click()
        chart(page, "inside_coverage")
        page.get_by_text(re.compile("Expected calibration error")).wait_for(timeout=30_000)
        shots(page, "inside_calibration")

        page.locator(".st-key-inside_view button", has_text="Spoiled digits").click()
        chart(page, "inside_robustness")
        shots(page, "inside_robustness")


def test_the_epoch_slider_replays_a_run(server):
    with browser_page(*SIZES[0]) as page:
        page.goto(f"{server.url}/train?train_epochs=2")
        page.get_by_role("button", name="Start").click()
        page.get_by_text(re.compile(r"run \d+ finished after 2 epochs")).wait_for(timeout=120_000)
        nav(page, "Inside")
        chart(page, "inside_diagram")
        page.get_by_text(re.compile(r"run \d+, after 2 epochs")).wait_for(timeout=30_000)
        accuracy = page.locator("[data-testid=stMetricValue]").first.inner_text()
        thumb = page.locator("[class*=st-key-inside_epoch_] input[type=range]")
        thumb.focus()
        page.keyboard.press("ArrowLeft")
        page.get_by_text(re.compile(r"run \d+, after 1 epochs")).wait_for(timeout=30_000)
        chart(page, "inside_diagram")
        page.wait_for_timeout(500)
        assert page.locator("[data-testid=stMetricValue]").first.inner_text() != accuracy
        screenshot(page, "inside_epoch_1")


def test_draw_reads_a_photo_and_refuses_a_bad_file(server, tmp_path):
    from PIL import Image, ImageDraw

    photo = Image.new("L", (600, 800), 215)
    ImageDraw.Draw(photo).line([(150, 200), (450, 200), (270, 640)], fill=35, width=44)  # a 7 in dark ink
    good = tmp_path / "seven.jpg"
    photo.save(good, format="JPEG", quality=85)
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not a picture at all")
    with browser_page(*SIZES[0]) as page:
        page.goto(f"{server.url}/draw")
        page.locator(".st-key-draw_canvas_0 canvas.upper-canvas").wait_for(timeout=30_000)
        page.get_by_text("Or load a test digit or a photo").click()
        page.locator(".st-key-draw_photo input[type=file]").set_input_files(str(good))
        page.get_by_text("In the net's input: the photo seven.jpg").wait_for(timeout=30_000)
        page.locator(".draw-guess").wait_for(timeout=30_000)
        assert page.locator(".draw-guess").inner_text().strip() == "7"
        screenshot(page, "draw_photo")
        page.locator(".st-key-draw_photo input[type=file]").set_input_files(str(bad))
        page.get_by_text("Not read: notes.png is not a PNG or JPEG image.").wait_for(timeout=30_000)
        assert page.get_by_text("In the net's input: the photo seven.jpg").is_visible()  # the last good input stays
        page.get_by_role("button", name="Random").click()
        page.get_by_text(re.compile(r"In the net's input: test digit #\d+, a \d")).wait_for(timeout=30_000)
