"""The Compare page over a store with runs from several sources (AppTest, synthetic data)."""

import time
from pathlib import Path

import pytest
from conftest import copy_store, tiny_mnist
from streamlit.testing.v1 import AppTest

from nets.config import TrainConfig
from nets.recorder import Recorder
from nets.store import RunStore
from nets.two_layer_net import TwoLayerNet


def record_run(store: RunStore, config: TrainConfig, source: str, name: str = "", tags=()) -> int:
    run_id = store.create_run(config, source=source, name=name, tags=tags)
    list(Recorder(store, run_id).train(TwoLayerNet.from_config(config), tiny_mnist(), config))
    return run_id


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory) -> Path:
    """Three runs from the command line and an import, recorded once for this file."""
    found = RunStore(tmp_path_factory.mktemp("three-runs"))
    base = TrainConfig(hidden_size=16, epochs=2, batch_size=50)
    record_run(found, base, "cli", "baseline", tags=["keep"])
    record_run(found, base.replace(learning_rate=0.01), "cli", "faster")
    record_run(found, base.replace(hidden_size=32, optimizer="sgd", learning_rate=0.1), "import", "wide sgd")
    return found.root


@pytest.fixture
def store(monkeypatch, synthetic_dir, tmp_path, three_runs) -> RunStore:
    """A copy of the three runs, the app's store (set in the environment)."""
    monkeypatch.setenv("MNIST_DIR", str(synthetic_dir))
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MNIST_RUNS_DIR", str(tmp_path / "runs"))
    return copy_store(three_runs, tmp_path / "runs")


@pytest.fixture
def compare_page(new_app):
    """Opens the Compare page in a fresh app (set the environment first: `store` does)."""

    def open_page() -> AppTest:
        at = new_app()
        at.switch_page("pages/compare.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_page


def table(at: AppTest):
    return at.dataframe[0].value


def select(at: AppTest, rows: list[int]) -> None:
    import app_state

    key = app_state.compare_table_key([], [], [], None)
    at.session_state[key] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_lists_every_run_with_only_the_settings_that_differ(store, compare_page):
    at = compare_page()
    df = table(at)
    assert list(df["name"]) == ["baseline", "faster", "wide sgd"]  # oldest first: new runs add rows at the end
    assert list(df["source"]) == ["cli", "cli", "import"]
    assert {"hidden_size", "optimizer", "learning_rate"} <= set(df.columns)
    assert "batch_size" not in df.columns  # the same in every run: hidden by "differences only"
    assert all(0 <= a <= 1 for a in df["best_val_acc"])
    at.toggle(key="compare_differences").set_value(False).run()
    assert "batch_size" in table(at).columns
    at.multiselect(key="compare_source").set_value(["import"]).run()
    assert list(table(at)["name"]) == ["wide sgd"]
    at.multiselect(key="compare_source").set_value([]).run()
    at.multiselect(key="compare_tags").set_value(["keep"]).run()
    assert list(table(at)["name"]) == ["baseline"]


def test_a_run_from_the_command_line_appears_without_a_restart(store, compare_page):
    at = compare_page()
    assert len(table(at)) == 3
    record_run(store, TrainConfig(hidden_size=16, epochs=1, batch_size=50), "cli", "late")
    at.run()  # the page's watcher reruns it in a browser; AppTest does not tick fragments
    assert list(table(at)["name"])[-1] == "late"


def test_select_rename_tag_and_delete_after_confirming(store, compare_page):
    at = compare_page()
    select(at, [0])
    assert at.subheader[0].value == "Selected: baseline"
    at.text_input(key="compare_new_tag").set_value("good").run()
    at.button(key="compare_add_tag").click().run()
    assert "Tagged 1 run 'good'" in " ".join(s.value for s in at.success)
    assert store.run(1).tags == ("good", "keep")
    select(at, [0])
    form_name = next(t for t in at.text_input if t.label == "Name")
    form_name.set_value("the notebook-ish")
    at.button[[b.label for b in at.button].index("Save name and notes")].click().run()
    assert store.run(1).name == "the notebook-ish"
    select(at, [1, 2])
    at.button(key="compare_delete").click().run()
    assert len(store.runs()) == 3  # nothing deleted before the confirmation
    assert "Delete 2 runs and their weight files?" in " ".join(w.value for w in at.warning)
    files = [s.path for r in (2, 3) for s in store.snapshots(r)]
    assert files and all(f.exists() for f in files)
    at.button(key="compare_delete_yes").click().run()
    assert [r.name for r in store.runs()] == ["the notebook-ish"]
    assert not any(f.exists() for f in files)


def test_charts_show_the_selected_runs(store, compare_page):
    import json

    at = compare_page()
    select(at, [0, 2])
    curves = next(el for el in at.get("plotly_chart") if "compare_curves" in str(el.proto))
    names = {t["name"].split(" · ")[0] for t in json.loads(curves.proto.spec)["data"] if t.get("name")}
    assert names == {"baseline", "wide sgd"}
    scatter = next(el for el in at.get("plotly_chart") if "compare_scatter" in str(el.proto))
    spec = json.loads(scatter.proto.spec)
    assert spec["layout"]["xaxis"]["type"] == "log" and len(spec["data"][0]["x"]) == 3


def test_compare_with_an_empty_store_says_how_to_make_runs(monkeypatch, synthetic_dir, tmp_path, compare_page):
    monkeypatch.setenv("MNIST_DIR", str(synthetic_dir))
    monkeypatch.setenv("MNIST_RUNS_DIR", str(tmp_path / "runs"))
    at = compare_page()
    assert "No runs yet" in at.info[0].value


def test_load_settings_and_continue_from_compare_go_to_train(store, compare_page):
    at = compare_page()
    select(at, [2])  # "wide sgd": hidden 32, sgd, lr 0.1
    at.button(key="compare_load_settings").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Train"
    assert at.select_slider(key="train_hidden").value == 32
    assert at.selectbox(key="train_optimizer").value == "sgd"
    assert at.select_slider(key="train_lr").value == 0.1


def test_continue_a_run_from_compare(store, compare_page):
    at = compare_page()
    select(at, [0])  # "baseline", 2 epochs, from the command line: any browser may continue it
    at.number_input(key="compare_more_epochs").set_value(2).run()
    at.button(key="compare_continue").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Train"
    deadline = time.monotonic() + 30
    while store.run(1).status != "finished" or store.run(1).epochs_done < 4:
        assert time.monotonic() < deadline, store.run(1)
        time.sleep(0.1)
    assert [m.epoch for m in store.history(1)] == [0, 1, 2, 3] and store.run(1).config.epochs == 4


def test_a_bundle_downloaded_from_compare_uploads_as_a_run_with_its_curves(store, compare_page):
    at = compare_page()
    select(at, [1])
    bundle = next(b for b in at.get("download_button") if "bundle" in b.proto.label)
    data = at.session_state  # the download's bytes are served by the media manager; rebuild them the same way
    from nets.bundle import bundle_bytes

    payload = bundle_bytes(store, 2)
    assert bundle is not None and data is not None
    at.switch_page("pages/train.py")
    at.run()
    at.file_uploader(key="train_model_upload").set_value(("faster.npz", payload, "application/octet-stream")).run()
    assert "Loaded faster.npz as run 4, a run with its curves; it is now the current model." in " ".join(
        s.value for s in at.success
    )
    assert [m.epoch for m in store.history(4)] == [0, 1] and store.run(4).source == "import"


def test_parallel_lines_draw_one_polyline_per_run_and_keep_the_best():
    import compare_charts
    from nets import compare as cmp

    rows = [{"run": i, "name": f"r{i}", "learning_rate": 10.0 ** -i, "optimizer": "adam" if i % 2 else "sgd",
             "test_acc": i / 10} for i in range(1, 6)]  # fmt: skip
    fig = compare_charts.parallel_lines_figure(rows, ["learning_rate", "optimizer"], "test_acc")
    points = [(x, y) for t in fig.data for x, y in zip(t.x, t.y, strict=True) if x is not None]
    assert len(points) == 5 * 3  # five runs across three axes
    assert all(0 <= y <= 1 for _, y in points)
    lr_axis = sorted(y for x, y in points if x == 0)
    assert lr_axis == pytest.approx([0, 0.25, 0.5, 0.75, 1])  # a log axis spreads 1e-5 ... 1e-1 evenly
    best = cmp.best_rows(rows, "test_acc", 2, keep={1})
    assert [r["run"] for r in best] == [1, 4, 5]  # the two best, plus the kept one, in table order
    assert cmp.best_rows(rows, "train_seconds", 10) == rows


def test_model_selectors_offer_the_newest_runs_and_read_the_store_once(store, monkeypatch, new_app):
    """With many runs, Draw and Misclassified list the 30 newest that learned (Compare has
    them all) and label them from one listing of the store, not one query per option."""
    from nets.checkpoint import LoadedModel
    from nets.workspace import MODEL_CHOICES

    config = TrainConfig(hidden_size=16, epochs=2, batch_size=50)
    history = store.history(1)
    for i in range(40):
        store.add_model(LoadedModel(TwoLayerNet.from_config(config), config, {}), name=f"imported {i}",
                        source="import", history=history, status="finished")  # fmt: skip
    listings = []
    original = RunStore.runs
    monkeypatch.setattr(RunStore, "runs", lambda self, ids=None: listings.append(ids) or original(self, ids))
    at = new_app()
    at.switch_page("pages/draw.py")
    listings.clear()
    at.run()
    options = at.selectbox(key="draw_model").options
    assert len(options) == 1 + MODEL_CHOICES  # the current model (here the shipped one), then the newest others
    assert options[0].startswith("shipped model") and options[1].startswith("imported 39 (")
    assert options[-1].startswith("imported 10 (")
    assert len(listings) < 12, listings  # a handful of reads per page run, whatever the number of runs
