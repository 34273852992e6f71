"""Presenter mode and a guided scenario card, with AppTest on synthetic data (100 training digits).

AppTest shows what the server sends, not what the browser lays out: here, which controls the
presenter's CSS hides and what the link carries; test_browser_presenter.py checks in Chromium
that they are out of sight and that the figures fit a projector.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from conftest import training_threads
from test_pages import page, run_until, texts

from app_state import SETTING_KEYS
from nets.config import TrainConfig
from nets.scenarios import SCENARIOS, Scenario
from nets.store import RunStore


@pytest.fixture
def app_with(monkeypatch, synthetic_dir, tmp_path, new_app):
    monkeypatch.setenv("MNIST_DIR", str(synthetic_dir))
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MNIST_RUNS_DIR", str(tmp_path / "runs"))
    return new_app


def presenter_css(at) -> str | None:
    """The presenter's style sheet as sent in this run (None: not in presenter mode)."""
    return next((h.value for h in at.html if "stSidebar" in h.value), None)


def hidden_keys(at) -> set[str]:
    """The widget keys whose elements the presenter's CSS puts out of sight."""
    css = presenter_css(at) or ""
    rule = next((r for r in css.split("}") if "display: none !important" in r and ".st-key-train_" in r), "")
    return set(re.findall(r"\.st-key-(train_\w+)", rule))


def settings(at) -> dict:
    return {key: at.session_state[key] for key in SETTING_KEYS}


def test_a_presenter_link_hides_its_controls_through_reruns_and_page_switches(app_with):
    app = page(app_with({"present": "1", "hide": "optimizer,schedule,nonsense"}), "pages/train.py")
    assert hidden_keys(app) == {"train_optimizer", "train_schedule"}  # unknown names are ignored
    assert "stSidebar" in presenter_css(app) and app.button(key="presenter_leave")
    assert not [m for m in app.multiselect if m.key == "train_presenter_hide"]  # no link control while presenting
    app.select_slider(key="train_lr").set_value(0.01).run()  # the page runs again: still hidden
    assert hidden_keys(app) == {"train_optimizer", "train_schedule"}
    app.query_params.clear()  # a page switch drops the address's query, not the mode
    page(app, "pages/home.py")
    assert hidden_keys(app) == {"train_optimizer", "train_schedule"}
    page(app, "pages/train.py")
    assert hidden_keys(app) == {"train_optimizer", "train_schedule"}
    app.button(key="presenter_leave").click().run()
    assert presenter_css(app) is None and hidden_keys(app) == set()


def test_without_the_link_nothing_is_hidden(app_with):
    app = page(app_with(), "pages/train.py")
    assert presenter_css(app) is None


def test_the_presenter_link_round_trips_the_settings_and_the_hidden_controls(app_with):
    app = page(app_with(), "pages/train.py")
    app.selectbox(key="train_optimizer").set_value("momentum")
    app.select_slider(key="train_lr").set_value(0.05)
    app.select_slider(key="train_hidden").set_value(64)
    app.select_slider(key="train_decay").set_value(1e-5)
    app.toggle(key="train_shuffle").set_value(False)
    app.number_input(key="train_seed").set_value(4_123_456_789)  # a seed too long for "%g"
    app.number_input(key="train_epochs").set_value(12).run()
    app.slider(key="train_momentum").set_value(0.95).run()  # enabled once the optimiser is momentum
    app.multiselect(key="train_presenter_hide").set_value(["optimizer", "schedule"]).run()
    link = next(c.value for c in app.code if "present=1" in c.value)
    query = dict(parse_qsl(urlsplit(link).query))
    assert query["hide"] == "optimizer,schedule" and query["train_lr"] == "0.05"
    opened = page(app_with(query), "pages/train.py")  # another browser opens the link
    assert settings(opened) == settings(app)
    assert settings(opened)["train_seed"] == 4_123_456_789 and settings(opened)["train_decay"] == 1e-5
    assert hidden_keys(opened) == {"train_optimizer", "train_schedule"}


def test_presenter_mode_shows_the_big_figures_of_a_run(app_with):
    app = page(app_with({"present": "1", "train_epochs": "2", "train_hidden": "16", "train_batch": "8"}),
               "pages/train.py")  # fmt: skip
    app.button(key="train_start").click().run()
    run_until(app, lambda a: not training_threads() and not a.button(key="train_start").disabled)
    assert not app.success  # the figures stand for the banner of a finished run
    figures = {m.label: m.value for m in app.metric}
    history = RunStore().history(1)
    assert figures["Test accuracy"] == f"{history[-1].test_acc:.2%}"
    assert figures["Test errors"] == f"{history[-1].test_errors:,}" and figures["Epoch"] == "2 of 2"


def test_a_scenario_card_trains_a_shared_baseline_and_the_variant_and_says_what_they_measured(app_with, monkeypatch):
    """The diverging scenario, made small for the synthetic digits (SGD at lr 10 overshoots there)."""
    base = TrainConfig(optimizer="sgd", init="he", learning_rate=0.1, lr_schedule="constant", hidden_size=16,
                       batch_size=8, epochs=3)  # fmt: skip
    small = Scenario(
        "high_rate_diverges", base, base.replace(learning_rate=10.0), SCENARIOS["high_rate_diverges"].judge
    )
    monkeypatch.setitem(SCENARIOS, "high_rate_diverges", small)
    app = app_with()
    app.button(key="home_scenario_high_rate_diverges").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.title[0].value == "Train", [e.value for e in app.error]  # gone to watch it
    assert app.select_slider(key="train_lr").value == 10.0 and app.selectbox(key="train_optimizer").value == "sgd"
    run_until(app, lambda a: not training_threads() and "the loss blew up" in texts(a.markdown), timeout=30)
    store = RunStore()
    baseline, variant = sorted(store.runs(), key=lambda r: r.run_id)
    assert baseline.owner is None and "(scenario baseline)" in baseline.name and baseline.status == "finished"
    assert variant.owner is not None and variant.status == "diverged" and variant.config == small.variant
    said = next(m.value for m in app.markdown if "the loss blew up" in m.value)
    accuracy = store.history(baseline.run_id)[-1].test_acc
    assert f"at 0.1 the same net reached {accuracy:.2%} test accuracy" in said  # its own measured number
    chart = next(c for c in app.get("plotly_chart") if "train_curves_chart" in str(c.proto))
    assert baseline.name in chart.proto.spec  # the pinned baseline is drawn with the variant
    app.button(key="train_unpin_baseline").click().run()
    chart = next(c for c in app.get("plotly_chart") if "train_curves_chart" in str(c.proto))
    assert baseline.name not in chart.proto.spec
    # a second press finds the finished baseline: only a new variant trains
    app.button(key="train_scenario_high_rate_diverges").click().run()
    run_until(app, lambda a: not training_threads())
    assert len(store.runs()) == 3 and [r.owner for r in store.runs()].count(None) == 1
