"""The dashboard's wiring, with Streamlit's AppTest on synthetic data (100 training digits)."""

import gzip
import re
import time

import numpy as np
import pytest
from conftest import ROOT, synthetic_idx_files, training_threads
from streamlit.testing.v1 import AppTest

from nets.checkpoint import model_bytes
from nets.config import PRESETS, TrainConfig
from nets.data import load_mnist
from nets.store import RunStore
from nets.two_layer_net import TwoLayerNet

# Every page file: a new page is smoke-tested without anyone remembering to list it here.
PAGES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "pages").glob("*.py"))


@pytest.fixture
def app_with(monkeypatch, synthetic_dir, tmp_path, new_app):
    """Opens a fresh app on the synthetic data and an empty store, from a link that may carry
    Train settings (`app_with({"train_epochs": "2"})`: one script run, not one per control)."""
    monkeypatch.setenv("MNIST_DIR", str(synthetic_dir))
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MNIST_RUNS_DIR", str(tmp_path / "runs"))
    return new_app


@pytest.fixture
def app(app_with):
    """A fresh app on the synthetic data and an empty store; afterwards its trainings stop."""
    return app_with()


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No MNIST anywhere and no mirror that answers (refused at once)."""
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MNIST_MIRRORS", "http://127.0.0.1:9/")
    return tmp_path / "cache"


def page(at: AppTest, path: str) -> AppTest:
    at.switch_page(path)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def run_until(at: AppTest, condition, timeout: float = 20.0) -> None:
    """Rerun (AppTest does not tick fragments) until the rendered app satisfies `condition`."""
    deadline = time.monotonic() + timeout
    while not condition(at):
        assert time.monotonic() < deadline, "the app never got there"
        time.sleep(0.05)
        at.run()


def texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


def test_the_smoke_list_is_every_page_of_the_navigation():
    """app_state.pages() routes over exactly the files in pages/ (read from its source:
    st.Page needs a running script)."""
    navigation = re.findall(r'st\.Page\("([^"]+)"', (ROOT / "app_state.py").read_text())
    assert sorted(navigation) == PAGES and len(PAGES) >= 5


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_without_exception(app, path):
    page(app, path)
    assert not app.error
    assert app.title[0].value  # the page itself drew, not only the frame


def test_home_shows_the_data(app):
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics == {"Training images": "100", "Validation images": "5,000", "Test images": "200"}
    assert "Data" in texts(app.sidebar.caption)
    app.run()
    assert "Data" in texts(app.sidebar.caption)  # the frame draws on every run


def test_presets_fill_the_controls(app):
    page(app, "pages/train.py")
    assert app.select_slider(key="train_hidden").value == 256  # the fast preset by default
    app.segmented_control(key="train_preset").set_value("seed").run()
    assert app.select_slider(key="train_hidden").value == 128
    assert app.select_slider(key="train_lr").value == 0.1
    assert app.select_slider(key="train_batch").value == 1000
    assert app.toggle(key="train_shuffle").value is False
    assert "larger than the 100 training images" in texts(app.error)  # this tiny set cannot take 1000
    assert app.button(key="train_start").disabled


@pytest.mark.parametrize("preset", ["seed", "fast", "best", "record"])
def test_each_preset_puts_its_whole_config_into_the_controls(app, preset):
    """What Start trains is the preset, every field: the record preset's elastic distortion,
    rotation and scaling once had no control, and a record run from Train trained without them."""
    from app_state import SETTING_KEYS

    page(app, "pages/train.py")
    if preset == "fast":  # the default: pick another one first, so that choosing fast changes something
        app.segmented_control(key="train_preset").set_value("seed").run()
    app.segmented_control(key="train_preset").set_value(preset).run()
    assert not app.exception
    chosen = TrainConfig(**{name: app.session_state[key] for key, name in SETTING_KEYS.items()})
    assert chosen == PRESETS[preset]
    if preset == "record":
        assert "elastic 34 · rotate 8° · scale ±0.08" in texts(app.caption)


def test_start_trains_a_run_to_the_end(app):
    page(app, "pages/train.py")
    app.number_input(key="train_epochs").set_value(2).run()
    app.button(key="train_start").click().run()
    run_until(app, lambda a: "run 1 finished after 2 epochs" in texts(a.success))
    table = app.dataframe[0].value
    assert list(table["status"]) == ["finished"] and list(table["epochs"]) == ["2/2"]
    assert 0 <= table["test acc"][0] <= 1
    assert "Current model, used by the other pages: **run 1 (" in texts(app.caption)
    assert "(your latest finished run that learned" in texts(app.caption)


def test_start_twice_is_refused_while_training(app_with):
    app = page(app_with({"train_epochs": "200", "train_batch": "1"}), "pages/train.py")
    app.button(key="train_start").click().run()
    assert app.button(key="train_start").disabled  # no second start while one trains
    assert not app.button(key="train_pause").disabled and not app.button(key="train_stop").disabled
    assert len(training_threads()) == 1
    # The sidebar follows the run elsewhere; on the Train page it leaves that to the live view.
    assert "**Training** · run 1: live on this page" in texts(app.sidebar.caption)
    page(app, "pages/home.py")
    assert re.search(r"\*\*Training\*\* · run 1: running, epoch \d+ of 200", texts(app.sidebar.caption))
    page(app, "pages/train.py")
    app.button(key="train_pause").click().run()
    run_until(app, lambda a: a.button(key="train_pause").label == "Resume")
    app.button(key="train_stop").click().run()
    run_until(app, lambda a: not training_threads())
    assert list(app.dataframe[0].value["status"]) == ["stopped"]


def test_a_diverging_run_explains_itself(app_with):
    """SGD at lr 10 with He init overshoots on this data (as in the engine's own test)."""
    settings = {"train_optimizer": "sgd", "train_init": "he", "train_lr": "10", "train_batch": "8",
                "train_hidden": "16", "train_epochs": "3"}  # fmt: skip
    app = page(app_with(settings), "pages/train.py")
    assert app.select_slider(key="train_lr").value == 10.0 and app.select_slider(key="train_batch").value == 8
    app.button(key="train_start").click().run()
    run_until(app, lambda a: "diverged" in texts(a.error) or "finished" in texts(a.success))
    assert "run 1 diverged: " in texts(app.error) and "learning rate (10) is probably too high" in texts(app.error)
    assert list(app.dataframe[0].value["status"]) == ["diverged"]
    page(app, "pages/misclassified.py")  # the rest of the app keeps working
    assert not app.exception


def test_model_upload_good_and_bad(app):
    page(app, "pages/train.py")
    app.file_uploader(key="train_model_upload").upload("junk.npz", b"not a zip").run()
    assert "Not loaded, nothing changed: junk.npz: not an .npz model file or run bundle" in texts(app.error)
    assert not app.dataframe  # no run was added
    config = TrainConfig(hidden_size=16)
    good = model_bytes(TwoLayerNet.from_config(config), config, {"test_acc": 0.5})
    app.file_uploader(key="train_model_upload").set_value(("mine.npz", good, "application/octet-stream")).run()
    assert "Loaded mine.npz as run 1, a model; it is now the current model." in texts(app.success)
    table = app.dataframe[0].value
    assert list(table["status"]) == ["uploaded"] and list(table["epochs"]) == ["uploaded"]
    assert 0 <= table["test acc"][0] <= 1  # evaluated on upload, not left blank
    assert "used by the other pages: **mine** (chosen by you)." in texts(app.caption)
    assert "**Model** · mine, chosen by you" in texts(app.sidebar.caption)  # the frame knows in the same run


def test_load_its_settings_puts_a_runs_settings_into_the_controls_snapped_to_their_scales(app):
    """An uploaded model trained with values the controls do not offer: each control takes
    the nearest value it has (on a log scale), the epochs their cap; the rest as they were."""
    page(app, "pages/train.py")
    odd = TrainConfig(hidden_size=90, learning_rate=0.003, batch_size=60, weight_decay=3e-4, epochs=300,
                      optimizer="momentum", momentum=0.995, activation="tanh", seed=7)  # fmt: skip
    upload = model_bytes(TwoLayerNet.from_config(odd), odd, {"test_acc": 0.5})
    app.file_uploader(key="train_model_upload").set_value(("odd.npz", upload, "application/octet-stream")).run()
    app.session_state["train_runs_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    app.run()
    app.button(key="train_load_settings").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.select_slider(key="train_hidden").value == 100
    assert app.select_slider(key="train_lr").value == 0.002
    assert app.select_slider(key="train_batch").value == 64
    assert app.select_slider(key="train_decay").value == 5e-4
    assert app.number_input(key="train_epochs").value == 200
    assert app.slider(key="train_momentum").value == 0.99
    assert app.selectbox(key="train_optimizer").value == "momentum"
    assert app.selectbox(key="train_activation").value == "tanh"
    assert app.number_input(key="train_seed").value == 7
    assert not app.error and not app.button(key="train_start").disabled  # settings that can run as they are


def test_query_parameters_set_the_controls(monkeypatch, synthetic_dir, new_app):
    monkeypatch.setenv("MNIST_DIR", str(synthetic_dir))
    # Values that are each widget's first option or minimum, but not the fast preset's.
    at = new_app({"train_hidden": "16", "train_optimizer": "sgd", "train_epochs": "1"})
    page(at, "pages/train.py")
    assert at.select_slider(key="train_hidden").value == 16
    assert at.selectbox(key="train_optimizer").value == "sgd"
    assert at.number_input(key="train_epochs").value == 1


def test_missing_data_offers_an_upload_that_installs_the_files(offline, new_app):
    at = new_app()
    assert not at.exception
    assert "MNIST is not available: could not download train-images-idx3-ubyte" in texts(at.error)
    page(at, "pages/home.py")  # every page offers the same setup while data is missing
    assert "no mirror could be reached (no network?)" in texts(at.error)
    files = synthetic_idx_files(n_train=5100, n_test=200)
    uploads = [(f"{name}.gz", gzip.compress(content, 1), "application/gzip") for name, content in files.items()]
    at.file_uploader(key="home_data_upload").set_value(uploads).run()
    at.button[0].click().run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Training images"] == "100"


def test_a_bad_upload_caches_nothing(offline, new_app):
    at = new_app()
    page(at, "pages/train.py")
    at.file_uploader(key="home_data_upload").set_value(("t10k-labels-idx1-ubyte", b"\x00\x00\x08\x03", "x")).run()
    at.button[0].click().run()
    assert "t10k-labels-idx1-ubyte: only 4 bytes, too short for an IDX labels header" in texts(at.error)
    assert not (offline / "t10k-labels-idx1-ubyte").exists()


def trained(app: AppTest) -> AppTest:
    """The app after a 2-epoch run on the synthetic data."""
    page(app, "pages/train.py")
    app.number_input(key="train_epochs").set_value(2).run()
    app.button(key="train_start").click().run()
    run_until(app, lambda a: "finished after 2 epochs" in texts(a.success))
    return app


def test_misclassified_before_any_training_uses_the_shipped_model(app):
    page(app, "pages/misclassified.py")
    assert {m.label: m.value for m in app.metric}["Model"] == "shipped model"
    assert app.selectbox(key="mis_model").value == "pretrained"
    assert "**Model** · shipped model (99.27% test accuracy), until one of your runs finishes and learns" in texts(
        app.sidebar.caption
    )


def test_misclassified_page_filters_sorts_and_details(app, synthetic_dir, tmp_path):
    page(trained(app), "pages/misclassified.py")
    # The truth, computed here from the run's stored weights: which test digits it gets wrong.
    data = load_mnist(synthetic_dir)
    predicted = RunStore(tmp_path / "runs").load(1).net.predict(data.x_test).argmax(axis=1)
    wrong = predicted != data.y_test
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Model"] == "run 1" and metrics["Test accuracy"] == f"{1 - wrong.mean():.2%}"
    errors = int(metrics["Misclassified"].split(" of ")[0])
    assert errors == wrong.sum() > 0 and f"{errors:,} digits; showing" in texts(app.caption)
    app.selectbox(key="mis_sort").set_value("confidence").run()
    true = int(np.bincount(data.y_test[wrong]).argmax())  # the digit it gets wrong most often
    app.selectbox(key="mis_true").set_value(true).run()
    shown = int(texts(app.caption).split(" digits; showing")[0].split(" | ")[-1].replace(",", ""))
    assert shown == (wrong & (data.y_test == true)).sum() > 0  # exactly the mistakes on that digit
    app.segmented_control(key="mis_show").set_value("unsure").run()
    assert app.selectbox(key="mis_pred").disabled
    app.session_state["mis_selected"] = 5
    app.run()
    assert not app.exception
    assert app.subheader[0].value.startswith("Test digit #5: truth ")
    assert "Runner-up" in texts(app.caption)


def canvas_value(draw) -> dict:
    """What the canvas component sends after a stroke: Fabric JSON plus the PNG as a data URL."""
    import base64
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    draw(ImageDraw.Draw(image))
    png = io.BytesIO()
    image.save(png, format="PNG")
    data_url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    raw = {"version": "5.3.0", "objects": [{"type": "path", "stroke": "#FFFFFF"}], "background": "#000000"}
    return {"drawing": {"raw": raw, "data": data_url}, "backgroundFit": None}


def one(d):
    d.line([(140, 40), (140, 240)], fill=(255, 255, 255, 255), width=18)


def guess(at: AppTest) -> str | None:
    found = [m.value for m in at.markdown if "draw-guess" in m.value]
    return found[0].split(">")[1].split("<")[0] if found else None


def bar_heights(at: AppTest, key: str) -> list[float]:
    import json

    chart = next(el for el in at.get("plotly_chart") if key in str(el.proto))
    return json.loads(chart.proto.spec)["data"][0]["y"]


def test_draw_empty_canvas_asks_for_a_digit(app):
    page(app, "pages/draw.py")
    assert "Draw a digit" in texts(app.info)
    assert app.selectbox(key="draw_model").value == "pretrained"
    assert app.selectbox(key="draw_model").options == ["shipped model (99.27% test accuracy) · current model"]
    assert guess(app) is None


def test_draw_reads_an_injected_drawing_and_keeps_it(app):
    page(app, "pages/draw.py")
    app.session_state["draw_canvas_0"] = canvas_value(one)
    app.run()
    assert not app.exception
    assert guess(app) == "1"
    assert "sure" in texts(app.caption)
    # An 18 px brush on the 280 px canvas is 2 px at MNIST's scale, thicker than these synthetic digits' strokes.
    assert "Your stroke is 2.0 px wide once scaled to MNIST's size" in texts(app.warning)
    assert "MNIST's digits are 0.6-0.6 px. A thinner brush" in texts(app.warning)
    page(app, "pages/home.py")
    page(app, "pages/draw.py")  # back again: the drawing and its reading are kept
    assert guess(app) == "1"
    app.button(key="draw_clear").click().run()
    assert guess(app) is None and "Draw a digit" in texts(app.info)


def live_epochs(at: AppTest) -> int:
    """The epochs behind the live weights the Draw page reads with, from its caption."""
    found = re.search(r"run 1, live: weights after (\d+) of 200 epochs", texts(at.caption))
    assert found, texts(at.caption)
    return int(found.group(1))


def test_draw_rescores_on_the_live_weights_of_a_training_run(app_with):
    app = page(app_with({"train_epochs": "200", "train_batch": "1"}), "pages/train.py")
    app.button(key="train_start").click().run()
    page(app, "pages/draw.py")
    assert app.selectbox(key="draw_model").options[0] == "run 1 (training now, live)"
    assert app.selectbox(key="draw_model").value == 1  # the live run is offered first, by its run id
    app.session_state["draw_canvas_0"] = canvas_value(one)
    app.run()
    first, first_epochs = bar_heights(app, "draw_probs"), live_epochs(app)
    # Newer weights, a new reading, and the selector still on the run: its choice is the run,
    # whatever the weights' version (a choice that changed each epoch froze the selector).
    run_until(app, lambda a: live_epochs(a) > first_epochs and bar_heights(a, "draw_probs") != first)
    assert app.selectbox(key="draw_model").value == 1
    assert app.selectbox(key="draw_model").options[0] == "run 1 (training now, live)"
    app.switch_page("pages/train.py")
    app.run()
    app.button(key="train_stop").click().run()
