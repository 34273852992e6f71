"""The Train page's insight, with AppTest on synthetic data: the health panel, advice with
Apply, stop rules chosen before Start, the live learning-rate control and Step."""

from __future__ import annotations

import json
import re
import time

import pytest
from conftest import training_threads
from streamlit.testing.v1.element_tree import get_widget_state
from test_pages import page, run_until, texts

import app_state
from nets.two_layer_net import TwoLayerNet


@pytest.fixture
def app(monkeypatch, synthetic_dir, tmp_path, new_app):
    monkeypatch.setenv("MNIST_DIR", str(synthetic_dir))
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MNIST_RUNS_DIR", str(tmp_path / "runs"))
    return page(new_app(), "pages/train.py")


def live_rate(at):
    """The live learning-rate control (its key carries a generation), or None."""
    found = [s for s in at.select_slider if s.key and s.key.startswith("train_live_lr")]
    return found[0] if found else None


def charts_named(at, key: str) -> list[dict]:
    return [json.loads(e.proto.spec) for e in at.get("plotly_chart") if e.proto.id and key in e.proto.id]


def small_run(at, epochs: int, **controls) -> None:
    at.select_slider(key="train_hidden").set_value(16).run()
    at.number_input(key="train_epochs").set_value(epochs).run()
    for key, value in controls.items():
        widget = at.select_slider(key=key) if key in ("train_lr", "train_batch") else at.selectbox(key=key)
        widget.set_value(value).run()


def test_health_panel_shows_each_epoch_and_histograms_with_a_slider(app):
    small_run(app, 3)
    app.button(key="train_start").click().run()
    run_until(app, lambda a: "finished after 3 epochs" in texts(a.success))
    health = charts_named(app, "train_health_chart")[0]
    titles = [t["text"] for t in health["layout"]["annotations"]]
    assert titles[:2] == ["Gradient per weight", "Step / weight"] and "dead units" in titles[2]
    assert health["data"][0]["x"] == [1, 2, 3]  # one point per epoch
    assert app.slider(key="train_health_epoch").value == 3  # the newest epoch
    app.slider(key="train_health_epoch").set_value(1).run()
    hist = charts_named(app, "train_histogram_chart")[0]
    assert hist["data"][0]["name"] == "after epoch 1" and hist["data"][1]["name"] == "initial"
    assert "Measuring this cost" in texts(app.caption)
    curves = charts_named(app, "train_curves_chart")[0]
    smoothed = [t for t in curves["data"] if t.get("name") == "batch loss (smoothed)"]
    assert smoothed and smoothed[0]["x"][-1] == 3.0  # the batch trace on the fractional-epoch axis


def test_advice_for_a_diverged_run_applies_a_lower_rate_to_the_controls(app):
    small_run(app, 3, train_optimizer="sgd", train_init="he", train_lr=10.0, train_batch=8)
    app.button(key="train_start").click().run()
    # Ended, not just showing its ending: until its job lets go, Apply also reaches "this run".
    run_until(app, lambda a: "diverged" in texts(a.error) and live_rate(a) is None)
    assert "The learning rate is too high" in texts(app.markdown) and "learning rate 10 → 1" in texts(app.caption)
    app.button(key="train_apply_lr_too_high").click().run()
    assert app.select_slider(key="train_lr").value == 1.0
    assert "Applied learning rate 10 → 1 into the settings" in texts(app.success)


def test_a_stop_rule_chosen_before_start_ends_the_run_and_says_so(app):
    small_run(app, 5, train_lr=0.01, train_batch=8)  # learns within an epoch (a run that did not learn says so)
    app.number_input(key="train_target_acc").set_value(1.0).run()
    app.button(key="train_start").click().run()
    run_until(app, lambda a: "stopped after 1 epoch of 5" in texts(a.info))
    assert "target validation accuracy of 1.00%" in texts(app.info)


def test_live_learning_rate_and_step(app):
    small_run(app, 200, train_batch=1)
    app.button(key="train_start").click().run()
    assert live_rate(app).value == 0.002  # the run's own rate
    live_rate(app).set_value(0.01).run()
    job = app_state.registry().job(1)
    run_until(app, lambda a: job.snapshot().lr_changes)
    assert job.snapshot().lr_changes[0][1] == 0.01
    app.button(key="train_step").click().run()
    run_until(app, lambda a: job.snapshot().status == "paused", timeout=60)
    app.button(key="train_stop").click().run()
    run_until(app, lambda a: not training_threads())


def test_an_apply_into_a_live_run_survives_the_old_values_a_browser_still_sends(app, monkeypatch):
    """While a run trains, the page's timer can send the controls' old values in the very rerun
    that draws an Apply (Streamlit folds the two requests into one, and a browser's value beats
    one set in a callback): the settings then showed the old rate under the note saying it was
    applied, and the live control's old value put the old rate back into the run."""
    # On the synthetic digits this is worse than guessing after one epoch and after two, and does
    # not diverge. Each batch takes 20 ms more, so that Step, pressed at once, pauses it there.
    small_run(app, 200, train_optimizer="sgd", train_activation="sigmoid", train_init="std", train_lr=2.0,
              train_batch=1)  # fmt: skip
    slow = TwoLayerNet.loss_and_gradient  # (not while the page measures its time estimate)
    monkeypatch.setattr(TwoLayerNet, "loss_and_gradient", lambda *a, **k: time.sleep(0.02) or slow(*a, **k))
    app.button(key="train_start").click().run()
    stale_live = live_rate(app)
    assert stale_live.value == 2.0
    app.button(key="train_step").click().run()  # one epoch, then paused: live, with advice
    job = app_state.registry().job(1)
    run_until(app, lambda a: job.snapshot().status == "paused", timeout=60)
    monkeypatch.undo()
    run_until(app, lambda a: [b for b in a.button if b.key == "train_apply_lr_too_high"], timeout=30)
    app.button(key="train_apply_lr_too_high").click().run()
    applied = re.search(r"Applied learning rate 2 → (\S+) into this run", texts(app.success))
    rate = float(applied.group(1))  # a rate the controls offer (by the rule that fired)
    assert rate in app_state.LEARNING_RATES and rate < 2 and job.snapshot().asked_rate == rate
    # A message the browser sent before it drew the Apply: its address still says lr 2 (a
    # disabled control bound to the URL is then seeded from it), and it carries the live
    # control as it was, at 2.
    app.query_params["train_lr"] = "2"  # as the control writes it
    stale_live.set_value(2.0)
    states = app._tree.get_widget_states()
    states.widgets.append(get_widget_state(stale_live))
    app._tree._runner._run(states)
    assert app.select_slider(key="train_lr").value == rate  # the applied rate stays in the settings
    assert job.snapshot().asked_rate == rate  # and in the run
    assert live_rate(app).value == rate
    app.button(key="train_stop").click().run()
    app.query_params["train_lr"] = f"{rate:g}"  # the browser's address caught up
    run_until(app, lambda a: not training_threads())
    assert app.select_slider(key="train_lr").value == rate  # still there for the next run
    app.select_slider(key="train_lr").set_value(0.1).run()  # and the user's own choice then wins
    assert app.select_slider(key="train_lr").value == 0.1
