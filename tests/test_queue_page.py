"""The Train page with every training slot taken: a queued run's place, its estimated start, Stop."""

import pytest
from conftest import training_threads
from test_pages import page, run_until, texts

from nets.scheduler import SLOTS_ENV


@pytest.fixture
def one_slot_app(monkeypatch, synthetic_dir, tmp_path, new_app):
    """The dashboard on synthetic data, on a server that trains one run at once."""
    monkeypatch.setenv("MNIST_DIR", str(synthetic_dir))
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MNIST_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv(SLOTS_ENV, "1")
    return page(new_app({"train_epochs": "2"}), "pages/train.py")


def test_a_queued_run_shows_its_place_and_start_and_stop_takes_it_out(one_slot_app):
    import app_state

    at = one_slot_app
    slots = app_state.registry().scheduler
    assert slots.slots == 1  # MNIST_TRAIN_SLOTS
    busy = slots.hold(1)  # someone else's sweep worker holds the only slot, for another 42 s
    busy.remaining = lambda: 42.0
    at.run()
    assert "Every training slot is taken (this server trains 1 run at once)" in texts(at.caption)

    at.button(key="train_start").click().run()
    assert "run 1 waits for a training slot (this server trains 1 run at once): next in line, 1 waiting; " in texts(
        at.info
    )
    assert "it should start in about 42 s" in texts(at.info)
    assert list(at.dataframe[0].value["status"]) == ["queued"]
    assert at.button(key="train_pause").disabled and at.button(key="train_step").disabled
    assert not at.button(key="train_stop").disabled
    busy.remaining = lambda: 7.0
    at.run()
    assert "it should start in about 7 s" in texts(at.info)  # the estimate follows the holder

    at.button(key="train_stop").click().run()
    run_until(at, lambda a: not training_threads())
    assert list(at.dataframe[0].value["status"]) == ["stopped"]
    assert slots.counts() == (1, 0)  # out of the queue

    at.button(key="train_start").click().run()
    assert "run 2 waits for a training slot" in texts(at.info)
    slots.release(busy)  # the slot frees: the queued run trains, and the page follows it
    run_until(at, lambda a: "run 2 finished after 2 epochs" in texts(a.success))
    assert list(at.dataframe[0].value["status"]) == ["stopped", "finished"]
    assert slots.counts() == (0, 0)
