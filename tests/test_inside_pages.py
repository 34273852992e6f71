"""The Inside page and the Draw page's new inputs, with Streamlit's AppTest on synthetic data."""

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from test_pages import canvas_value, one, page, texts, trained

ROOT = Path(__file__).resolve().parent.parent
VIEWS = ["digit", "map", "calibration", "robustness"]


@pytest.fixture
def app(monkeypatch, synthetic_dir, tmp_path, new_app):
    """The dashboard on the synthetic data (200 test digits) and an empty store."""
    monkeypatch.setenv("MNIST_DIR", str(synthetic_dir))
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MNIST_RUNS_DIR", str(tmp_path / "runs"))
    return new_app()


def figure(at: AppTest, key: str) -> dict:
    chart = next(el for el in at.get("plotly_chart") if f"inside_{key}" in str(el.proto.id) or key in str(el.proto))
    return json.loads(chart.proto.spec)


def values(array) -> np.ndarray:
    """A figure's array as Plotly sends it: a list, or a typed array ({"dtype", "bdata"})."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
    return np.asarray(array)


def inside(at: AppTest, view: str = "digit") -> AppTest:
    page(at, "pages/inside.py")
    if at.segmented_control(key="inside_view").value != view:
        at.segmented_control(key="inside_view").set_value(view).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_renders_for_the_shipped_model_and_a_test_digit(app, view):
    inside(app, view)
    assert not app.error
    assert app.segmented_control(key="inside_source").value == "test"  # nothing drawn yet
    assert "shipped model" in texts(app.caption) and "test digit #0" in texts(app.caption)


def test_the_diagram_and_switching_a_unit_off(app):
    inside(app)
    diagram = figure(app, "diagram")
    units = next(t for t in diagram["data"] if t.get("name") == "units")["customdata"]
    assert 1 <= len(units) <= 12
    outputs = next(t for t in diagram["data"] if t.get("name") == "outputs")
    assert len(outputs["y"]) == 10
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Test accuracy"] == metrics["With those units off"]  # nothing off yet
    app.session_state["inside_unit"] = units[0]  # what a click on the unit does
    app.run()
    assert app.subheader[0].value == f"Unit {units[0]}"
    assert "The test digits that excite it most" in texts(app.markdown)
    app.button(key="inside_toggle_unit").click().run()
    assert app.multiselect(key="inside_off_pretrained").value == [units[0]]
    assert "With 1 unit off it reads" in texts(app.markdown)
    off = next(t for t in figure(app, "diagram")["data"] if t.get("name") == "units")
    assert off["marker"]["symbol"][0] == "x"  # drawn switched off
    app.button(key="inside_toggle_unit").click().run()  # and back on
    assert app.multiselect(key="inside_off_pretrained").value == []


def test_many_units_off_show_the_engines_accuracy_and_changed_answers(app, synthetic_dir):
    """All but 100 of the shipped net's 800 units off: the page shows what nets.inside computes."""
    from nets.checkpoint import load_model
    from nets.data import load_mnist
    from nets.inside import ablation, through

    off = list(range(700))
    data = load_mnist(synthetic_dir, download=False)
    loaded = load_model(ROOT / "models" / "pretrained.npz")
    seen = through(loaded.net.params, loaded.config.activation, data.x_test, data.y_test)
    expected = ablation(loaded.net.params, seen.hidden, seen.scores, seen.labels, off)
    assert expected.changed > 0  # else the page would have nothing to show
    inside(app)
    app.multiselect(key="inside_off_pretrained").set_value(off).run()
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Test accuracy"] == f"{expected.accuracy:.2%}"
    assert metrics["With those units off"] == f"{expected.silenced_accuracy:.2%}"
    assert f"{expected.changed:,} of {len(data.y_test):,} test digits change their answer." in texts(app.caption)


def test_the_drawing_from_the_draw_page_goes_inside_and_onto_the_map(app):
    page(app, "pages/draw.py")
    app.session_state["draw_canvas_0"] = canvas_value(one)
    app.run()
    inside(app, "map")
    assert app.segmented_control(key="inside_source").value == "draw"
    assert "your drawing" in texts(app.caption)
    traces = figure(app, "map")["data"]
    star = [t for t in traces if t.get("marker", {}).get("symbol") == "star"]
    assert len(star) == 1 and star[0]["name"].startswith("your drawing: read as ")
    assert len(values(traces[0]["x"])) == 200  # every test digit, in one trace
    assert [t["name"] for t in traces[1:12]] == [*map(str, range(10)), "mistakes"]


def test_a_point_picked_on_the_map_can_be_looked_inside(app):
    inside(app, "map")
    app.session_state["inside_map_digit"] = 7  # what a click on the map does
    app.run()
    assert "Test digit **#7**" in texts(app.markdown)
    app.button(key="inside_map_study").click().run()
    assert app.segmented_control(key="inside_view").value == "digit"
    assert app.number_input(key="inside_test_index").value == 7
    assert "test digit #7" in texts(app.caption)


def test_calibration_and_the_threshold(app):
    inside(app, "calibration")
    assert "Expected calibration error" in texts(app.caption)
    app.slider(key="inside_threshold").set_value(100).run()
    metrics = {m.label: m.value for m in app.metric}
    assert metrics['"I don\'t know"'] != "0" and "I don't know" in texts(app.markdown)
    app.slider(key="inside_threshold").set_value(10).run()
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Answers"] == "100.0%" and metrics['"I don\'t know"'] == "0"


def test_robustness_sliders_move_the_accuracy(app):
    inside(app, "robustness")
    first = texts(app.caption)
    app.slider(key="inside_rotation").set_value(90).run()
    assert texts(app.caption) != first
    curves = figure(app, "robustness")["data"]
    assert len([t for t in curves if t["mode"] == "lines+markers"]) == 3


def test_epoch_replay_rescoring_with_the_kept_weights(app):
    page(trained(app), "pages/inside.py")
    slider = app.select_slider(key="inside_epoch_1")
    assert slider.options == ["1", "2"] and slider.value == 2
    assert "run 1, after 2 epochs" in texts(app.caption)
    outputs_after_2 = next(t for t in figure(app, "diagram")["data"] if t.get("name") == "outputs")
    slider.set_value(1).run()
    assert not app.exception
    assert "run 1, after 1 epochs" in texts(app.caption)
    outputs_after_1 = next(t for t in figure(app, "diagram")["data"] if t.get("name") == "outputs")
    assert outputs_after_1["marker"]["size"] != outputs_after_2["marker"]["size"]  # re-scored with other weights


def test_draw_loads_a_test_digit_and_a_stroke_replaces_it(app):
    page(app, "pages/draw.py")
    app.number_input(key="draw_test_index").set_value(3).run()
    app.button(key="draw_load_test").click().run()
    assert not app.exception
    assert "In the net's input: test digit #3, a " in texts(app.caption)
    assert any("draw-guess" in m.value for m in app.markdown)  # the net reads it like a drawing
    app.run()  # the fresh, empty canvas does not wipe the loaded digit
    assert "In the net's input: test digit #3" in texts(app.caption)
    inside(app)
    assert app.segmented_control(key="inside_source").value == "draw"
    assert "test digit #3" in texts(app.caption)  # the Draw page's input is that test digit
    page(app, "pages/draw.py")
    app.session_state["draw_canvas_1"] = canvas_value(one)  # a stroke on the new canvas
    app.run()
    assert "In the net's input" not in texts(app.caption)
    app.button(key="draw_random_test").click().run()
    assert "In the net's input: test digit #" in texts(app.caption)
    app.button(key="draw_clear").click().run()
    assert "Draw a digit" in texts(app.info)


@pytest.mark.parametrize(
    ("customdata", "expected"),
    [(7, 7), (7.0, 7), ([12], 12), (-1, None), (True, None), ("7", None), ({"a": 1}, None), (2.5, None), (None, None)],
)
def test_a_clicked_point_is_taken_only_as_a_small_whole_number(monkeypatch, customdata, expected):
    """What the browser sends for a click is JSON anyone can forge: a unit or digit index or nothing."""
    from types import SimpleNamespace

    import app_state

    state = {"inside_map": SimpleNamespace(selection=SimpleNamespace(points=[{"customdata": customdata}]))}
    monkeypatch.setattr(app_state.st, "session_state", state)
    app_state.inside_pick_point()
    assert state.get("inside_map_digit") == expected


def test_misclassified_replays_the_run_epoch_by_epoch(app, synthetic_dir, tmp_path):
    """The epoch slider re-scores the test set with the weights kept after that epoch."""
    from nets.data import load_mnist
    from nets.evaluation import evaluate
    from nets.store import RunStore

    page(trained(app), "pages/misclassified.py")
    data = load_mnist(synthetic_dir, download=False)
    store = RunStore(tmp_path / "runs")
    expected = {e: evaluate(store.load(1, e).net, data.x_test, data.y_test).accuracy for e in (1, 2)}
    slider = app.select_slider(key="mis_epoch_1")
    assert slider.options == ["1", "2"] and slider.value == 2
    assert {m.label: m.value for m in app.metric}["Test accuracy"] == f"{expected[2]:.2%}"
    slider.set_value(1).run()
    assert not app.exception
    assert {m.label: m.value for m in app.metric}["Test accuracy"] == f"{expected[1]:.2%}"
    assert ("run", 1, 1) in app.session_state["evaluations"]  # the test set was scored with epoch 1's weights


def test_draw_replays_the_reading_epoch_by_epoch(app, synthetic_dir, tmp_path):
    """Draw's epoch slider reads the digit with the weights kept after that epoch."""
    from nets.data import load_mnist
    from nets.store import RunStore

    page(trained(app), "pages/draw.py")
    app.number_input(key="draw_test_index").set_value(3).run()
    app.button(key="draw_load_test").click().run()
    data = load_mnist(synthetic_dir, download=False)
    store = RunStore(tmp_path / "runs")
    x = data.x_test[3:4]
    expected = {e: store.load(1, e).net.probabilities(x)[0] for e in (1, 2)}
    assert f"{expected[1].max():.1%}" != f"{expected[2].max():.1%}"  # the two epochs read it differently
    slider = app.select_slider(key="draw_epoch_1")
    assert slider.options == ["1", "2"] and slider.value == 2
    assert any("weights after 2 epochs" in c.value for c in app.caption)
    assert f"{expected[2].max():.1%} sure" in texts(app.caption)
    slider.set_value(1).run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("weights after 1 epoch." in c.value for c in app.caption)
    assert f"{expected[1].max():.1%} sure" in texts(app.caption)
