"""What a new user sees, in Chromium at a laptop's 1024x700, a projector's 1280x720 and 1280x900.

Layout is checked where only a browser can tell: labels not cut or broken mid-word,
dropdowns showing their values, axes that Plotly really drew, captions that do not
collide. One server on the real MNIST for the dashboard (one browser session, the window
resized between sizes), one more for an offline first start. Screenshots land in
tests/screenshots/ui_*.png.
"""

from __future__ import annotations

import gzip
import os
import re

import pytest
from browser import SCREENSHOTS, chromium, chromium_available, free_port, plot_json, screenshot, serve
from conftest import synthetic_idx_files

from app_state import SETTING_KEYS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not chromium_available() and not os.environ.get("CI"), reason="no Chromium here: apt-get install chromium"
    ),
]

SIZES = [(1024, 700), (1280, 720), (1280, 900)]
SETTINGS = ["train_preset", *SETTING_KEYS]  # the Train page's settings, by widget key
HEADLINE = re.compile(r"A 784-\d+-10 net reads \d+\.\d\d% of the 10,000 test digits right")

# Text cut by its box (an ellipsis, or simply clipped): the element is narrower than its text.
CUT = """sel => [...document.querySelectorAll(sel)]
    .filter(e => e.offsetParent !== null && e.innerText.trim() && e.scrollWidth > e.clientWidth + 1)
    .map(e => e.innerText.trim())"""
# Words laid out on more than one line ("Activati/on"): a word whose range has two boxes.
BROKEN = """sel => {
    const out = [];
    for (const el of document.querySelectorAll(sel)) {
        const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
        for (let node; (node = walker.nextNode()); ) {
            for (const m of node.data.matchAll(/\\S+/g)) {
                const range = document.createRange();
                range.setStart(node, m.index);
                range.setEnd(node, m.index + m[0].length);
                if ([...range.getClientRects()].filter(r => r.width > 0).length > 1) out.push(m[0]);
            }
        }
    }
    return out;
}"""


@pytest.fixture(scope="module")
def server(mnist, tmp_path_factory):
    env = {"MNIST_DIR": os.environ.get("MNIST_DIR", ""), "MNIST_RUNS_DIR": str(tmp_path_factory.mktemp("runs"))}
    with serve(env) as handle:
        yield handle


@pytest.fixture(scope="module")
def browser():
    with chromium() as handle:  # one Playwright per thread: every test here shares it
        yield handle


@pytest.fixture(scope="module")
def page(server, browser):
    """One browser session for the dashboard's checks: the window is resized, not reopened."""
    tab = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    tab.goto(server.url)
    tab.get_by_text("MNIST, a two-layer net, and you").wait_for(timeout=60_000)
    yield tab
    tab.close()


def nav(page, title: str) -> None:
    page.locator("[data-testid=stSidebarNav] a", has_text=title).click()


def resize(page, size: tuple[int, int]) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.wait_for_timeout(800)  # Plotly relayouts on the window's resize event


def hidden_values(page, selector: str) -> list[str]:
    """Dropdowns (their combobox inputs) too narrow for the value they hold; an empty list when
    none are. Their inputs must be on screen: a dropdown with no value counts as hidden."""
    return page.evaluate(
        """sel => {
            const inputs = [...document.querySelectorAll(sel)];
            if (!inputs.length) return ['no dropdown matches ' + sel];
            const ctx = document.createElement('canvas').getContext('2d');
            return inputs.filter(i => {
                const style = getComputedStyle(i);
                ctx.font = style.font;
                const room = i.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
                return !i.value || i.offsetParent === null || ctx.measureText(i.value).width > room + 1;
            }).map(i => i.value || i.getAttribute('aria-label'));
        }""",
        selector,
    )


def not_cut(page, selector: str) -> None:
    assert page.evaluate(CUT, selector) == [], f"text cut in {selector}"
    assert page.evaluate(BROKEN, selector) == [], f"words broken across lines in {selector}"


def test_no_deploy_button_and_no_developer_menu(page):
    resize(page, (1280, 900))
    page.locator(".st-key-home_samples img").wait_for(timeout=30_000)  # the page is drawn
    header = page.locator("[data-testid=stHeader]")
    assert "Deploy" not in header.inner_text()
    menu = page.locator("[data-testid=stMainMenu]")
    if menu.count():  # toolbarMode "viewer" keeps a viewer's menu: the theme, print
        menu.click()
        items = page.locator("[data-testid=stMainMenuPopover]").inner_text()
        page.keyboard.press("Escape")
        assert "Dark" in items and not re.search(r"Rerun|Clear cache|Deploy|Developer", items), items


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_overview_says_what_the_net_achieves_with_the_links_in_view(page, size):
    resize(page, size)
    nav(page, "Overview")
    page.get_by_text(HEADLINE).wait_for(timeout=30_000)
    links = page.locator("[data-testid=stMain] [data-testid=stPageLink]")
    assert links.count() >= 3
    for i in range(links.count()):
        box = links.nth(i).bounding_box()
        assert box is not None and box["y"] + box["height"] <= size[1], f"link {i} below the fold at {size}"
    page.locator(".st-key-home_test_counts .main-svg").first.wait_for(timeout=30_000)
    screenshot(page, f"ui_overview_{size[0]}x{size[1]}")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_train_settings_read_whole(page, size):
    resize(page, size)
    nav(page, "Train")
    page.locator(".st-key-train_optimizer input[role=combobox]").wait_for(timeout=30_000)
    page.wait_for_timeout(300)
    in_view = ", ".join(f".st-key-{key} [data-testid=stWidgetLabel]" for key in SETTINGS)
    not_cut(page, in_view)
    assert hidden_values(page, ".st-key-train_optimizer input[role=combobox]") == []
    preset = page.locator(".st-key-train_preset button").filter(has_text=re.compile(r"^\s*(seed|fast|best)\s*$"))
    assert preset.count() == 3
    not_cut(page, ".st-key-train_preset button")
    tops = {round(preset.nth(i).bounding_box()["y"]) for i in range(3)}
    assert len(tops) == 1, f"the preset control wraps at {size}"
    page.locator(".st-key-train_curves_chart .main-svg").first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Start").wait_for(timeout=30_000)
    screenshot(page, f"ui_train_{size[0]}x{size[1]}")

    for name, last, shot in (("More settings", "train_seed", "more"), ("Training data", "train_scale", "data")):
        page.get_by_role("button", name=name).click()
        body = page.locator("[data-testid=stPopoverBody]")
        body.wait_for(timeout=10_000)
        page.wait_for_timeout(300)
        not_cut(page, "[data-testid=stPopoverBody] [data-testid=stWidgetLabel]")
        if name == "More settings":  # its dropdowns
            assert hidden_values(page, "[data-testid=stPopoverBody] input[role=combobox]") == []
        assert body.bounding_box()["width"] >= 340  # two controls a row, whatever the column's width
        bottom = page.locator(f"[data-testid=stPopoverBody] .st-key-{last}").bounding_box()
        assert bottom["y"] + bottom["height"] <= size[1], f"{name}: its last control is below the window at {size}"
        page.screenshot(path=str(SCREENSHOTS / f"ui_train_{shot}_{size[0]}x{size[1]}.png"))
        page.keyboard.press("Escape")
        body.wait_for(state="hidden", timeout=10_000)


def caption_collisions(page) -> list[str]:
    """Captions of the mistakes grid that overlap each other, a digit, or the chart's edge."""
    return page.evaluate(
        """() => {
            const el = document.querySelector('.st-key-mis_grid .js-plotly-plot');
            const frame = el.getBoundingClientRect();
            const xa = el._fullLayout.xaxis, ya = el._fullLayout.yaxis;
            const centres = el._fullData[1];
            const digits = centres.x.map((x, i) => ({
                left: frame.left + xa._offset + xa.d2p(x - 14), right: frame.left + xa._offset + xa.d2p(x + 14),
                top: frame.top + ya._offset + ya.d2p(centres.y[i] - 14),
                bottom: frame.top + ya._offset + ya.d2p(centres.y[i] + 14),
            }));
            const captions = [...el.querySelectorAll('g.annotation-text-g')].map(g => g.getBoundingClientRect());
            const overlap = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5
                && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
            const out = [];
            captions.forEach((c, i) => {
                if (c.left < frame.left || c.right > frame.right) out.push(`caption ${i} beyond the chart`);
                captions.slice(i + 1).forEach((d, j) => overlap(c, d) && out.push(`captions ${i}, ${i + j + 1}`));
                digits.forEach((d, j) => overlap(c, d) && out.push(`caption ${i} on digit ${j}`));
            });
            return out;
        }"""
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_misclassified_axes_metrics_and_captions_fit(page, size):
    resize(page, size)
    nav(page, "Misclassified")
    page.locator(".st-key-mis_grid .main-svg").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    assert plot_json(page, "mis_confusion", "el._fullLayout.yaxis.range") == [9.5, -0.5]  # rows 0-9, no more
    assert plot_json(page, "mis_confusion", "el._fullLayout.xaxis.range") == [-0.5, 9.5]
    top = plot_json(
        page, "mis_per_class", "[el._fullLayout.xaxis, el._fullLayout.yaxis].filter(a => a.tickformat === '.0%')"
        ".map(a => Math.max(...a.range))",
    )  # fmt: skip
    assert top and max(top) <= 1.0 + 1e-9, f"the accuracy axis goes to {max(top):.0%}"
    not_cut(page, "[data-testid=stMain] [data-testid=stMetric] *")
    assert re.fullmatch(r"[\d,]+ of 10,000", page.locator("[data-testid=stMetricValue]").nth(2).inner_text())
    assert caption_collisions(page) == []
    screenshot(page, f"ui_misclassified_{size[0]}x{size[1]}")


def test_right_but_unsure_shows_only_digits_below_the_threshold(page):
    resize(page, (1280, 900))
    nav(page, "Misclassified")
    page.locator(".st-key-mis_show button", has_text="Right but unsure").click()
    counted = re.compile(r"([\d,]+) of the ([\d,]+) digits it read right were less than (\d+)% sure")
    said = page.get_by_text(counted)
    said.wait_for(timeout=30_000)
    unsure, right, threshold = (int(g.replace(",", "")) for g in counted.search(said.inner_text()).groups())
    assert threshold == 90 and 0 < unsure < right and right > 9000  # not all 9,8xx right answers
    page.wait_for_timeout(800)
    captions = plot_json(page, "mis_grid", "el.layout.annotations.map(a => a.text)")
    assert len(captions) == min(unsure, 40)
    sure = [int(c.rsplit(" ", 1)[1].rstrip("%")) for c in captions]
    assert max(sure) < 90 and sure == sorted(sure), sure  # the least sure first
    thumb = page.locator(".st-key-mis_unsure_below input[type=range]")
    thumb.focus()
    for _ in range(10):
        page.keyboard.press("ArrowLeft")
    page.get_by_text(re.compile(r"digits it read right were less than 80% sure")).wait_for(timeout=30_000)
    fewer = int(counted.search(page.get_by_text(counted).inner_text()).group(1).replace(",", ""))
    assert fewer < unsure
    page.locator(".st-key-mis_show button", has_text="Mistakes").click()


def test_a_live_snapshot_refreshes_by_a_button_never_by_a_reload(page, server):
    """While a run trains, Misclassified evaluates a snapshot; a button takes a newer one (a
    reload would start a new session). Runs last: the stopped run may become the current model."""
    page.goto(f"{server.url}/train?train_epochs=200&train_hidden=16&train_batch=500")  # short epochs
    page.get_by_role("button", name="Start").click()
    page.locator(".st-key-train_stop button:not([disabled])").wait_for(timeout=30_000)
    try:
        nav(page, "Misclassified")
        snapshot = re.compile(r"A snapshot of (.+) while it trains, after (\d+) of 200 epochs")
        caption = page.get_by_text(snapshot)
        caption.wait_for(timeout=60_000)
        assert "reload" not in page.locator("[data-testid=stMain]").inner_text().lower()
        first = int(snapshot.search(caption.inner_text()).group(2))
        for _ in range(60):  # an epoch takes a few seconds here
            page.get_by_role("button", name="Refresh snapshot").click()
            page.wait_for_timeout(500)
            if int(snapshot.search(page.get_by_text(snapshot).inner_text()).group(2)) > first:
                break
        else:
            pytest.fail(f"the snapshot stayed at {first} epochs")
    finally:
        nav(page, "Train")
        page.locator(".st-key-train_stop button:not([disabled])").click()
        page.locator(".st-key-train_start button:not([disabled])").wait_for(timeout=30_000)


def test_offline_first_start_says_why_in_one_sentence_and_confirms_an_upload(browser, tmp_path):
    closed = free_port()  # nothing listens there: the download fails at once
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {"MNIST_DIR": "", "MNIST_CACHE_DIR": str(cache), "MNIST_MIRRORS": f"http://127.0.0.1:{closed}/",
           "MNIST_RUNS_DIR": str(tmp_path / "runs")}  # fmt: skip
    files = []
    for name, content in synthetic_idx_files(n_train=5100, n_test=200).items():
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(content, 1))
        files.append(str(tmp_path / f"{name}.gz"))
    with serve(env) as offline:
        page = browser.new_page(viewport={"width": 1024, "height": 700}, device_scale_factor=1)
        page.goto(offline.url)
        error = page.locator("[data-testid=stMain] [data-testid=stAlertContentError]")
        error.wait_for(timeout=60_000)
        main = page.locator("[data-testid=stMain]")
        text = error.inner_text()
        assert text.startswith("MNIST is not available: could not download") and "no network" in text
        assert "MNIST_DIR" in text and "upload them below" in text and str(cache) in text
        assert text.count(". ") == 0 and "Errno" not in text and "http" not in text, text  # one sentence, no URLs
        assert "downloading" not in main.inner_text() and main.locator("[data-testid=stProgress]").count() == 0
        screenshot(page, "ui_offline_1024x700")
        page.get_by_text("Details: what each download mirror answered").click()
        page.get_by_text("Connection refused").first.wait_for(timeout=10_000)
        assert f"127.0.0.1:{closed}" in main.inner_text()

        page.locator(".st-key-home_data_upload input[type=file]").set_input_files(files)
        page.get_by_role("button", name="Use these files").click()
        cached = page.get_by_text(re.compile("Checked and cached"))
        cached.wait_for(timeout=60_000)
        for name in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
            assert name in cached.inner_text()
        assert str(cache) in cached.inner_text() and "missing" not in cached.inner_text()
        assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == sorted(
            f.rsplit("/", 1)[1].removesuffix(".gz") for f in files
        )
        page.get_by_text("MNIST, a two-layer net, and you").wait_for(timeout=30_000)  # the app, on the uploaded data
        screenshot(page, "ui_offline_uploaded_1024x700")
