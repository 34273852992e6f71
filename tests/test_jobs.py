"""TrainingJob and Workspace: background training, control, run bookkeeping, uploads."""

import csv
import io
import threading
import time

import numpy as np
import pytest
from conftest import synthetic_idx_files

from nets.checkpoint import load_model, model_bytes
from nets.config import TrainConfig
from nets.data import TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, DataError, find_files, install_files
from nets.jobs import TrainingJob
from nets.training import estimate_epoch_seconds
from nets.workspace import Workspace, WorkspaceError, history_csv

QUICK = TrainConfig(hidden_size=16, batch_size=30, epochs=2)
SLOW = TrainConfig(hidden_size=16, batch_size=1, epochs=200)  # long enough to act on while it runs


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_job_runs_to_completion_in_a_thread(tiny_data):
    job = TrainingJob(tiny_data, QUICK)
    assert job.snapshot().status == "pending"
    job.start()
    assert job.join(10)
    snap = job.snapshot()
    assert snap.status == "finished" and snap.done and snap.epochs_done == 2
    assert snap.progress.batches == 10 and snap.message == ""
    version, weights = job.weights()
    np.testing.assert_array_equal(weights["W1"], job.net.params["W1"])
    assert version >= 2


def test_job_weights_are_published_on_request_while_training(tiny_data):
    job = TrainingJob(tiny_data, SLOW)
    job.start()
    try:
        wait_until(lambda: job.snapshot().progress is not None)
        first_version, first = job.weights()
        wait_until(lambda: job.weights()[0] > first_version)
        _, second = job.weights()
        assert not np.array_equal(first["W1"], second["W1"])  # fresher weights, and copies
        snap = job.snapshot()
        assert snap.status == "running" and snap.samples_per_sec > 0 and snap.seconds_left > 0
    finally:
        job.stop()
        job.join(5)


def test_pause_resume_stop(tiny_data):
    job = TrainingJob(tiny_data, SLOW)
    job.start()
    wait_until(lambda: job.snapshot().progress is not None)
    job.pause()
    time.sleep(0.05)
    assert job.snapshot().status == "paused"
    frozen = job.snapshot().progress
    time.sleep(0.1)
    assert job.snapshot().progress == frozen
    job.resume()
    wait_until(lambda: job.snapshot().progress != frozen)
    job.pause()
    job.stop()  # pause then stop ends the thread
    assert job.join(5)
    assert job.snapshot().status == "stopped"


def test_job_refuses_a_config_that_does_not_fit(tiny_data):
    with pytest.raises(ValueError, match="batch_size"):
        TrainingJob(tiny_data, QUICK.replace(batch_size=1000))


def test_diverged_job_keeps_history_and_message(tiny_data):
    config = TrainConfig(hidden_size=16, optimizer="sgd", learning_rate=10.0, batch_size=10, epochs=3)
    job = TrainingJob(tiny_data, config)
    job.start()
    job.join(10)
    snap = job.snapshot()
    assert snap.status == "diverged" and "learning rate (10) is probably too high" in snap.message
    assert job.net.params_finite()


def test_workspace_one_training_at_a_time_and_current_model(tiny_data):
    ws = Workspace()
    run = ws.start(tiny_data, SLOW)
    try:
        with pytest.raises(WorkspaceError, match="run 1 is still training"):
            ws.start(tiny_data, QUICK)
        assert sum(t.name == "training-job" and t.is_alive() for t in threading.enumerate()) == 1
        ws.pause()
        wait_until(lambda: run.job.snapshot().status == "paused")
        ws.stop()
    finally:
        ws.shutdown()
    assert run.status == "stopped" and run.job is None
    second = ws.start(tiny_data, QUICK)
    second.job.join(10)
    ws.refresh()
    assert second.status == "finished" and ws.current() is second and second.usable
    assert [r["run"] for r in (run.summary(), second.summary())] == [1, 2]
    assert second.summary()["test acc"] == second.history[-1].test_acc


def test_stop_in_the_first_batch_leaves_an_unusable_run(tiny_data):
    ws = Workspace()
    run = ws.start(tiny_data, SLOW)
    ws.stop()
    assert run.status == "stopped" and not run.history and not run.usable and ws.current() is None
    with pytest.raises(WorkspaceError, match="no trained weights"):
        ws.set_current(run.run_id)


def test_shutdown_ends_every_thread(tiny_data):
    ws = Workspace()
    run = ws.start(tiny_data, SLOW)
    ws.shutdown(wait=5)
    assert not run.job.alive


def test_uploaded_model_becomes_current(tiny_data):
    ws = Workspace()
    run = ws.start(tiny_data, QUICK)
    run.job.join(10)
    ws.refresh()
    loaded = load_model(model_bytes(run.net, run.config), name="mine.npz")
    uploaded = ws.add_model(loaded, "mine.npz")
    assert ws.current() is uploaded and uploaded.status == "uploaded" and uploaded.usable
    ws.set_current(run.run_id)
    assert ws.current() is run
    with pytest.raises(WorkspaceError, match="no run 99"):
        ws.set_current(99)


def test_history_csv(tiny_data):
    ws = Workspace()
    run = ws.start(tiny_data, QUICK)
    run.job.join(10)
    ws.refresh()
    rows = list(csv.DictReader(io.StringIO(history_csv(run.history))))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert float(rows[1]["test_acc"]) == run.history[1].test_acc


def test_install_uploaded_files(tmp_path):
    files = synthetic_idx_files(n_train=5010, n_test=20)
    import gzip

    uploads = {f"{name}.gz": gzip.compress(content) for name, content in files.items()}
    assert install_files(uploads, tmp_path) == sorted(files)
    assert len(find_files(tmp_path)) == 4 and (tmp_path / TRAIN_IMAGES).read_bytes() == files[TRAIN_IMAGES]


@pytest.mark.parametrize(
    "uploads, message",
    [
        ({"notes.txt": b"hello"}, "notes.txt: not an MNIST file name"),
        ({f"{TEST_LABELS}.gz": b"\x1f\x8bnot really gzip"}, "corrupt or truncated gzip"),
        ({TEST_LABELS: b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02"}, "truncated"),
    ],
)
def test_bad_upload_caches_nothing(tmp_path, uploads, message):
    good = {TRAIN_LABELS: synthetic_idx_files(n_train=5010, n_test=20)[TRAIN_LABELS]}
    with pytest.raises(DataError, match=message):
        install_files({**good, **uploads}, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_upload_pair_counts_must_agree(tmp_path):
    files = synthetic_idx_files(n_train=5010, n_test=20)
    short = synthetic_idx_files(n_train=5009, n_test=20)[TRAIN_LABELS]
    with pytest.raises(DataError, match="5009 labels for 5010 images"):
        install_files({TRAIN_IMAGES: files[TRAIN_IMAGES], TRAIN_LABELS: short}, tmp_path)


def test_estimate_epoch_seconds_scales_with_work():
    small = estimate_epoch_seconds(TrainConfig(hidden_size=32, batch_size=500), rows=55000)
    large = estimate_epoch_seconds(TrainConfig(hidden_size=1024, batch_size=500), rows=55000)
    assert 0 < small < large
