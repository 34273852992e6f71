"""The Sweep page with AppTest on synthetic data: building a spec, a real sweep started from
the page, its results and actions, and a sweep that belongs to another browser."""

from __future__ import annotations

import time

import pytest
import streamlit as st
from conftest import ROOT
from streamlit.testing.v1 import AppTest

from nets.store import RunStore
from nets.sweep import start
from nets.sweep_spec import Knob, SweepSpec


@pytest.fixture(autouse=True)
def _steady(steady_apptest):
    """Every AppTest here runs like a live server past its first request (see conftest)."""


@pytest.fixture
def sweep_page(monkeypatch, synthetic_dir, tmp_path):
    monkeypatch.setenv("MNIST_DIR", str(synthetic_dir))
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MNIST_RUNS_DIR", str(tmp_path / "runs"))
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
    try:
        at.run()
        at.switch_page("pages/sweep.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        yield at
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()


def by_key(widgets, key: str):
    return next(w for w in widgets if w.key == key)


def test_the_form_explains_a_spec_it_cannot_start_and_describes_one_it_can(sweep_page):
    at = sweep_page
    assert any("New sweep" in e.label for e in at.expander)
    by_key(at.selectbox, "sweep_sampler").set_value("grid").run()
    warning = " ".join(w.value for w in at.warning)
    assert "Not ready to start: the grid sampler needs a list of values for learning_rate" in warning
    assert not [b for b in at.button if b.key == "sweep_start"]  # nothing to start
    by_key(at.segmented_control, "sweep_mode_learning_rate").set_value("list").run()
    by_key(at.multiselect, "sweep_list_learning_rate").set_value([1e-3, 1e-2]).run()
    captions = " ".join(c.value for c in at.caption)
    assert "learning_rate in {0.001, 0.01}; hidden_size in {64, 128, 256, 512}" in captions
    assert "grid sampler, pruner asha, 8 trials" in captions and "About" in captions
    assert [b for b in at.button if b.key == "sweep_start"]
    by_key(at.text_input, "sweep_scheduler").set_value("http://cluster:8786").run()
    assert any("a Dask scheduler's address looks like tcp://HOST:PORT" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key == "sweep_start"]
    by_key(at.text_input, "sweep_scheduler").set_value("tcp://10.0.0.5:8786").run()
    assert [b for b in at.button if b.key == "sweep_start"]


@pytest.mark.slow
def test_a_sweep_started_on_the_page_runs_on_its_own_and_offers_its_best_trial(sweep_page, tmp_path):
    at = sweep_page
    by_key(at.segmented_control, "sweep_mode_learning_rate").set_value("fixed")
    by_key(at.multiselect, "sweep_list_hidden_size").set_value([16, 32])
    by_key(at.selectbox, "sweep_sampler").set_value("grid")
    by_key(at.selectbox, "sweep_pruner").set_value("none")
    by_key(at.number_input, "sweep_epochs").set_value(2)
    at.run()
    by_key(at.button, "sweep_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    store = RunStore(tmp_path / "runs")
    deadline = time.monotonic() + 120
    while not (store.sweeps() and store.sweeps()[0].status == "finished"):
        assert time.monotonic() < deadline, "the sweep did not finish"
        time.sleep(0.5)
    sweep = store.sweeps()[0]
    runs = store.runs(sweep=sweep.sweep_id)
    assert sorted(r.config.hidden_size for r in runs) == [16, 32] and all(r.epochs_done == 2 for r in runs)
    assert sweep.owner is not None  # this browser's: it may stop it
    at.run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Trials done"] == "2 of 2" and metrics["Pruned"] == "0" and metrics["Running"] == "0"
    best = max(runs, key=lambda r: (store.history(r.run_id)[-1].val_acc, -r.trial))
    assert metrics["Best validation"] == f"{store.history(best.run_id)[-1].val_acc:.2%}"
    assert any(f"The best trial: {best.trial} (run {best.run_id})" in s.value for s in at.subheader)
    # A sweep finishing does not change the current model by itself: its latest trial is no better than another.
    assert any("**Model** · shipped model" in c.value for c in at.sidebar.caption)
    by_key(at.button, "sweep_use_best").click().run()
    assert any(f"Run {best.run_id} is now the current model" in s.value for s in at.success)
    at.run()
    assert any(f"**Model** · {best.name}" in c.value for c in at.sidebar.caption), [c.value for c in at.sidebar.caption]
    by_key(at.button, "sweep_compare").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert by_key(at.selectbox, "compare_sweep").value == sweep.sweep_id
    assert any("2 runs of 2" in c.value for c in at.caption)


@pytest.mark.slow
def test_a_sweep_of_another_browser_can_be_watched_but_not_stopped(sweep_page, tmp_path):
    store = RunStore(tmp_path / "runs")
    spec = SweepSpec(knobs=(Knob("hidden_size", choices=(16, 32)),), sampler="grid", pruner="none", trials=None,
                     workers=1)  # fmt: skip
    record = start(spec, store, owner="f" * 32)  # running: its driver (this process) is alive
    at = sweep_page.run()
    assert by_key(at.selectbox, "sweep_choice").value == record.sweep_id
    assert not [b for b in at.button if b.key == "sweep_stop"]
    assert any("Started in another browser: only that browser may stop it" in c.value for c in at.caption)
    assert {m.label: m.value for m in at.metric}["Trials done"] == "0 of 2"
    store.end_sweep(record.sweep_id, "stopped", "stopped on request")
    at.run()
    assert not [b for b in at.button if b.key == "sweep_resume"]  # nor resume it


def test_trials_done_counts_every_trial_that_used_its_place_pruned_ones_too(sweep_page, tmp_path):
    """A 5-trial sweep whose trials ended finished, pruned, diverged, failed and stopped has
    done 4 of 5 (it read "1 of 5" when only finished trials counted, and a finished sweep
    with pruned trials never reached "N of N"); a stopped trial is tried again on resume."""
    store = RunStore(tmp_path / "runs")
    spec = SweepSpec(knobs=(Knob("hidden_size", choices=(16, 32, 64, 128, 256)),), sampler="random", pruner="asha",
                     trials=5, workers=1)  # fmt: skip
    record = start(spec, store)
    for trial, status in enumerate(("finished", "pruned", "diverged", "failed", "stopped")):
        run_id = store.create_run(spec.config_for({"hidden_size": 16}), source="sweep", sweep=record.sweep_id,
                                  trial=trial, status="running")  # fmt: skip
        store.set_status(run_id, status)
    store.end_sweep(record.sweep_id, "stopped", "stopped on request")
    at = sweep_page.run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Trials done"] == "4 of 5" and metrics["Pruned"] == "1" and metrics["Running"] == "0"


def test_a_resume_that_cannot_start_says_why_instead_of_offering_resume_again(sweep_page, tmp_path):
    """The page took a resumed sweep as started as soon as it saw it in the store, where it
    already was: it said nothing while the driver started, nor when it failed, and offered
    Resume again as if the click had been lost."""
    store = RunStore(tmp_path / "runs")
    spec = SweepSpec(knobs=(Knob("hidden_size", choices=(16, 32)),), sampler="grid", pruner="none", trials=None,
                     workers=1)  # fmt: skip
    record = start(spec, store, storage=f"sqlite:///{tmp_path / 'study.sqlite'}")
    store.end_sweep(record.sweep_id, "stopped", "stopped on request")
    (tmp_path / "study.sqlite").unlink()
    (tmp_path / "study.sqlite").mkdir()  # its study cannot be opened: the resume is refused
    at = sweep_page.run()
    by_key(at.button, "sweep_resume").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [b for b in at.button if b.key == "sweep_resume"]
    assert any("Starting the sweep" in i.value for i in at.info)
    deadline = time.monotonic() + 60
    while not at.error:
        assert time.monotonic() < deadline, "the failed resume was never reported"
        time.sleep(0.5)
        at.run()
    assert "The sweep did not start:" in at.error[0].value and "cannot use the study storage" in at.error[0].value
    assert store.sweep(record.sweep_id).status == "stopped"


def test_a_sweep_whose_every_trial_diverged_says_so_instead_of_showing_an_empty_best(sweep_page, tmp_path):
    """It ended "Finished" with 0 trials done and a best of "–", and nothing said why."""
    store = RunStore(tmp_path / "runs")
    spec = SweepSpec(knobs=(Knob("learning_rate", choices=(5.0, 9.0)),), sampler="grid", pruner="none",
                     trials=None, workers=1)  # fmt: skip
    record = start(spec, store)
    for trial, lr in enumerate((5.0, 9.0)):
        run_id = store.create_run(spec.config_for({"learning_rate": lr}), source="sweep", sweep=record.sweep_id,
                                  trial=trial, status="running")  # fmt: skip
        store.set_status(run_id, "diverged", "the loss became NaN in epoch 1")
    store.end_sweep(record.sweep_id, "finished")
    at = sweep_page.run()
    assert not at.exception, [e.value for e in at.exception]
    warning = " ".join(w.value for w in at.warning)
    assert "No trial trained all its epochs (2 diverged), so there is no best" in warning
