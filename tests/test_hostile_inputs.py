"""Hostile values from the browser: the Draw page's canvas data, the Misclassified page's selections.

Both arrive as JSON that a modified client can fill with anything. Before the fix a canvas
value of the wrong shape, a data URL that is not base64 or not an image, raised inside the
canvas component on every run of the Draw page (a traceback until the session ended), any
image format and any size was decoded, and a drawing that is a list broke the next run; a
selection whose customdata is text, a float or a list of the wrong length raised in the
Misclassified page's callbacks.
"""

from __future__ import annotations

import base64
import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
import streamlit as st
from conftest import ROOT
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

import app_state
from nets.canvas import CanvasError, drawing_json, png_pixels

STROKE = {"version": "5.3.0", "objects": [{"type": "path", "stroke": "#FFFFFF"}], "background": "#000000"}


def png(size=(280, 280), fmt="PNG", mode="RGBA", digit=True) -> bytes:
    image = Image.new(mode, size)
    if digit:
        ImageDraw.Draw(image).line([(140, 40), (140, 240)], fill="white", width=18)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def data_url(raw: bytes, kind: str = "png") -> str:
    return f"data:image/{kind};base64," + base64.b64encode(raw).decode()


def canvas(raw=STROKE, data=None) -> dict:
    return {"drawing": {"raw": raw, "data": data}, "backgroundFit": None}


# --- the canvas payload, decoded ------------------------------------------------------------


def test_the_canvas_png_is_read():
    pixels = png_pixels(png(), 280, 280)
    assert pixels.shape == (280, 280, 4) and pixels.dtype == np.uint8 and pixels[140, 140, 0] == 255
    assert png_pixels(None, 280, 280) is None


@pytest.mark.parametrize(
    "raw, reason",
    [
        (png(fmt="GIF", mode="L"), "the image is not a PNG"),
        (b"\x89PNG\r\n\x1a\n" + bytes(40), "the image is not a readable PNG"),
        (png()[:200], "the image is not a readable PNG"),
        (png(size=(6000, 6000), mode="L", digit=False), "the image is 6000x6000, the canvas 280x280"),
        (png(size=(1, 1)), "the image is 1x1, the canvas 280x280"),
        (b"\x89PNG\r\n\x1a\n" + bytes(2 << 20), "more than a drawing can"),
        ("a string", "the image is not a PNG"),
    ],
    ids=["gif", "no-chunks", "cut-short", "huge", "tiny", "too-many-bytes", "text"],
)
def test_anything_but_a_png_of_the_canvas_size_is_refused(raw, reason):
    with pytest.raises(CanvasError, match=reason):
        png_pixels(raw, 280, 280)


def test_a_huge_png_is_refused_from_its_header_before_decoding(monkeypatch):
    """6000x6000 would decode to 144 MB of RGBA: the size check comes first, nothing is converted."""
    monkeypatch.setattr(Image.Image, "convert", lambda *a, **k: pytest.fail("decoded"))
    with pytest.raises(CanvasError, match="6000x6000"):
        png_pixels(png(size=(6000, 6000), mode="L", digit=False), 280, 280)


@pytest.mark.parametrize(
    "value, reason",
    [
        ([1, 2], "not a canvas drawing"),
        ({"objects": "all of them"}, "not a canvas drawing"),
        ({"objects": json.loads("[" * 900 + "]" * 900)}, "nested more than 12 levels deep"),
        ({"objects": [[0] * 1000] * 1000}, "more than 500,000 values"),
        ({"objects": [{1: "key that is not text"}]}, "an object key that is not text"),
        ({"objects": [{"path": object()}]}, "a object, not a JSON value"),
    ],
    ids=["list", "objects-text", "deep", "huge", "int-key", "not-json"],
)
def test_a_drawing_that_is_no_canvas_drawing_is_refused(value, reason):
    with pytest.raises(CanvasError, match=reason):
        drawing_json(value)


def test_a_real_drawing_passes():
    assert drawing_json(STROKE) is STROKE and drawing_json(None) is None


# --- the Draw page, fed hostile canvas values --------------------------------------------------


@pytest.fixture
def draw_page(monkeypatch, synthetic_dir, tmp_path, steady_apptest):
    monkeypatch.setenv("MNIST_DIR", str(synthetic_dir))
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MNIST_RUNS_DIR", str(tmp_path / "runs"))
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/draw.py")
    at.run()
    assert not at.exception
    yield at
    st.cache_resource.clear()


def guess(at: AppTest) -> str | None:
    found = [m.value for m in at.markdown if "draw-guess" in m.value]
    return found[0].split(">")[1].split("<")[0] if found else None


@pytest.mark.parametrize(
    "value",
    [
        {"drawing": 5, "backgroundFit": None},
        canvas(data=5),
        canvas(data="hello"),
        canvas(data="data:image/png;base64,@@@@"),
        canvas(data=data_url(png(fmt="GIF", mode="L"), "gif")),
        canvas(data=data_url(png(size=(6000, 6000), mode="L", digit=False))),
        canvas(raw=[1, 2]),
        canvas(raw={"objects": json.loads("[" * 900 + "]" * 900)}),
    ],
    ids=["drawing-int", "data-int", "no-base64", "bad-base64", "gif", "huge-png", "raw-list", "raw-deep"],
)
def test_the_draw_page_drops_a_hostile_canvas_value_in_one_line(draw_page, value):
    at = draw_page
    at.session_state["draw_canvas_0"] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "The canvas sent a drawing this page cannot read; it was cleared. Draw again." in [
        w.value for w in at.warning
    ]
    assert guess(at) is None
    at.run()  # the next run has a fresh canvas: no warning, no error, the page asks for a digit
    assert not at.exception and not at.warning
    assert "Draw a digit" in " ".join(i.value for i in at.info)


def test_the_draw_page_still_reads_a_real_drawing(draw_page):
    draw_page.session_state["draw_canvas_0"] = canvas(data=data_url(png()))
    draw_page.run()
    assert not draw_page.exception and guess(draw_page) == "1"
    assert not any("cannot read" in w.value for w in draw_page.warning)


# --- the Misclassified page's selections ---------------------------------------------------


class FakeSession(dict):
    """st.session_state as the callbacks see it: the chart's selection, as the browser sent it."""

    def __init__(self, key: str, points):
        super().__init__({key: SimpleNamespace(selection=SimpleNamespace(points=points))})


@pytest.mark.parametrize(
    "points",
    [
        [{"customdata": ["3", "5"]}],
        [{"customdata": [3]}],
        [{"customdata": [3, 5, 7]}],
        [{"customdata": [3.5, 5]}],
        [{"customdata": [float("nan"), 5]}],
        [{"customdata": [10, 5]}],
        [{"customdata": [-1, 5]}],
        [{"customdata": [True, 5]}],
        [{"customdata": "35"}],
        [{"no customdata": 1}],
        ["a point that is text"],
        {"points": "not a list"},
        [{"customdata": [10**400, 5]}],
    ],
)
def test_a_hostile_cell_selection_changes_nothing(monkeypatch, points):
    session = FakeSession("mis_confusion", points)
    monkeypatch.setattr(app_state.st, "session_state", session)
    app_state.mis_pick_cell()
    assert set(session) == {"mis_confusion"}


def test_a_cell_selection_sets_the_filters(monkeypatch):
    session = FakeSession("mis_confusion", [{"customdata": [3, 5]}])
    monkeypatch.setattr(app_state.st, "session_state", session)
    app_state.mis_pick_cell()
    assert (session["mis_true"], session["mis_pred"], session["mis_show"], session["mis_page"]) == (3, 5, "mistakes", 1)


@pytest.mark.parametrize(
    "points",
    [
        [{"customdata": "abc"}],
        [{"customdata": float("inf")}],
        [{"customdata": 1e308}],
        [{"customdata": -3}],
        [{"customdata": [7]}],
        [{"customdata": None}],
        [{"customdata": 2.5}],
        [],
    ],
)
def test_a_hostile_digit_selection_changes_nothing(monkeypatch, points):
    session = FakeSession("mis_grid", points)
    monkeypatch.setattr(app_state.st, "session_state", session)
    app_state.mis_pick_digit()
    assert "mis_selected" not in session


def test_a_digit_selection_opens_it(monkeypatch):
    session = FakeSession("mis_grid", [{"customdata": 1234}])
    monkeypatch.setattr(app_state.st, "session_state", session)
    app_state.mis_pick_digit()
    assert session["mis_selected"] == 1234
