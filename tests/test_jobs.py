"""TrainingJob and Workspace: background training, control, run bookkeeping, uploads."""

import csv
import io
import time

import numpy as np
import pytest
from conftest import synthetic_idx_files

from nets.checkpoint import load_model, model_bytes
from nets.config import TrainConfig
from nets.data import TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, DataError, find_files, install_files
from nets.estimate import EpochEstimate, from_history, measure
from nets.jobs import JobRegistry, TrainingJob
from nets.store import RunStore
from nets.two_layer_net import TwoLayerNet
from nets.workspace import PRETRAINED, Workspace, WorkspaceError, history_csv

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


@pytest.fixture
def registry(tmp_path):
    jobs = JobRegistry(RunStore(tmp_path / "runs"))
    yield jobs
    jobs.shutdown()


def workspace(registry, owner="browser-a") -> Workspace:
    return Workspace(registry.store, registry, owner)


def finish(ws: Workspace, run_id: int) -> None:
    assert ws.registry.job(run_id).join(10)


def test_one_live_run_per_browser_and_the_current_model_rule(tiny_data, registry):
    ws = workspace(registry)
    assert ws.current_choice() == PRETRAINED  # nothing trained yet: the shipped model
    first = ws.start(tiny_data, SLOW)
    with pytest.raises(WorkspaceError, match=f"run {first} is still training"):
        ws.start(tiny_data, QUICK)
    other = workspace(registry, "browser-b")  # another browser may train at the same time
    theirs = other.start(tiny_data, QUICK)
    finish(other, theirs)
    ws.pause()
    wait_until(lambda: ws.active().status == "paused")
    ws.stop()
    assert ws.active() is None and ws.run(first).status == "stopped"
    assert ws.current_choice() == PRETRAINED  # a stopped run does not replace the current model by itself
    second = ws.start(tiny_data, QUICK)
    finish(ws, second)
    assert ws.run(second).status == "finished" and ws.current_choice() == second
    assert other.current_choice() == theirs  # each browser's latest finished run
    ws.pin(PRETRAINED)
    assert ws.current_choice() == PRETRAINED  # the user's choice wins until they change it


def test_a_run_that_learned_nothing_never_becomes_the_current_model(tiny_data, registry):
    ws = workspace(registry)
    good = ws.start(tiny_data, QUICK)
    finish(ws, good)
    # Zero hidden signal: a learning rate so small nothing moves off chance in 2 epochs.
    stuck = ws.start(tiny_data, QUICK.replace(optimizer="sgd", learning_rate=1e-6, init="std", init_std=1e-6))
    finish(ws, stuck)
    assert ws.run(stuck).status == "finished" and not ws.run(stuck).learned
    assert ws.current_choice() == good
    with pytest.raises(WorkspaceError, match="did not learn"):
        ws.pin(stuck)
    assert stuck not in ws.model_choices()


def test_a_run_keeps_training_when_its_session_ends_and_the_browser_finds_it_again(tiny_data, registry):
    """A reload is a new session of the same browser: a new Workspace with the same owner."""
    first_tab = workspace(registry)
    run_id = first_tab.start(tiny_data, SLOW)
    del first_tab
    reloaded = workspace(registry)
    assert reloaded.active().run_id == run_id and reloaded.active().live
    stranger = workspace(registry, "browser-b")
    assert stranger.active() is None
    with pytest.raises(WorkspaceError, match="started in another browser"):
        stranger.rename(run_id, "mine now")
    with pytest.raises(WorkspaceError, match="is training: stop it before deleting it"):
        reloaded.delete(run_id)
    reloaded.stop()
    assert reloaded.run(run_id).status == "stopped"


def test_the_server_stopping_records_live_runs_as_interrupted(tiny_data, registry):
    ws = workspace(registry)
    run_id = ws.start(tiny_data, SLOW)
    wait_until(lambda: ws.run(run_id).history() or ws.active().snapshot().progress is not None)
    registry.shutdown()
    record = registry.store.run(run_id)
    assert record.status == "interrupted" and "server stopped" in record.message


def test_live_model_views_have_stable_choices_and_fresh_keys(tiny_data, registry):
    ws = workspace(registry)
    run_id = ws.start(tiny_data, SLOW)
    assert ws.model_choices()[0] == run_id  # the live run first, to watch it learn
    first = ws.model(run_id)
    assert first.live and first.choice == run_id and first.key[:2] == ("live", run_id)
    wait_until(lambda: ws.model(run_id).key != first.key)
    later = ws.model(run_id)
    # Newer weights: a new version of the same model (results cached by key are redone), and
    # the same choice, so a selector holding the run stays on it from epoch to epoch.
    assert later.key[:2] == first.key[:2] and later.key[2] > first.key[2]
    assert later.choice == first.choice == run_id and ws.model_choices()[0] == run_id
    ws.stop()
    ended = ws.model(run_id)
    assert not ended.live and ended.choice == run_id
    assert ended.key == ("run", run_id, ws.run(run_id).record.weights_epochs) and ended.epochs >= 1


def test_uploaded_model_becomes_current_and_can_be_chosen(tiny_data, registry):
    ws = workspace(registry)
    run_id = ws.start(tiny_data, QUICK)
    finish(ws, run_id)
    loaded = load_model(model_bytes(TwoLayerNet.from_config(QUICK), QUICK, {"epochs_trained": 3}))
    uploaded = ws.add_model(loaded, "mine.npz")
    view = ws.run(uploaded)
    assert ws.current_choice() == uploaded and view.status == "uploaded" and view.record.source == "upload"
    ws.pin(run_id)
    assert ws.current_choice() == run_id
    with pytest.raises(WorkspaceError, match="no run 99"):
        ws.pin(99)


def test_history_csv_counts_epochs_from_one_like_the_charts(tiny_data, registry):
    ws = workspace(registry)
    run_id = ws.start(tiny_data, QUICK)
    finish(ws, run_id)
    history = ws.run(run_id).history()
    rows = list(csv.DictReader(io.StringIO(history_csv(history))))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[1]["test_acc"]) == history[1].test_acc


def test_live_and_final_throughput_are_the_same_figure(tiny_data):
    job = TrainingJob(tiny_data, SLOW.replace(epochs=3))
    seen = []
    job.start()
    while job.alive:
        snap = job.snapshot()
        if snap.samples_per_sec and snap.progress and snap.progress.batch > 200:
            seen.append(snap.samples_per_sec)
        time.sleep(0.01)
    history = job.snapshot().history
    final = sum(m.samples_per_sec * m.seconds for m in history) / sum(m.seconds for m in history)
    assert seen and 0.7 < sorted(seen)[len(seen) // 2] / final < 1.3


def test_paused_job_reports_no_speed_and_no_time_left(tiny_data):
    job = TrainingJob(tiny_data, SLOW)
    job.start()
    try:
        wait_until(lambda: job.snapshot().samples_per_sec)
        job.pause()
        wait_until(lambda: job.snapshot().status == "paused")
        snap = job.snapshot()
        assert snap.samples_per_sec is None and snap.seconds_left is None
    finally:
        job.stop()
        job.join(5)


def test_install_uploaded_files(tmp_path):
    files = synthetic_idx_files(n_train=100, n_test=20)  # an upload is checked, not split: any size will do
    import gzip

    uploads = {f"{name}.gz": gzip.compress(content, compresslevel=1) for name, content in files.items()}
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
    good = {TRAIN_LABELS: synthetic_idx_files(n_train=100, n_test=20)[TRAIN_LABELS]}
    with pytest.raises(DataError, match=message):
        install_files({**good, **uploads}, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_upload_pair_counts_must_agree(tmp_path):
    files = synthetic_idx_files(n_train=100, n_test=20)
    short = synthetic_idx_files(n_train=99, n_test=20)[TRAIN_LABELS]
    with pytest.raises(DataError, match="99 labels for 100 images"):
        install_files({TRAIN_IMAGES: files[TRAIN_IMAGES], TRAIN_LABELS: short}, tmp_path)


def test_measured_estimate_scales_with_work_and_gives_its_spread(tiny_data):
    small = measure(TrainConfig(hidden_size=16, batch_size=10), tiny_data, budget=0.2)
    large = measure(TrainConfig(hidden_size=1024, batch_size=10), tiny_data, budget=0.2)  # 64 times the work
    assert 0 < small.seconds < large.seconds
    assert small.basis == "measured" and small.samples >= 1 and small.low <= small.seconds <= small.high


def test_estimate_from_earlier_runs_leaves_out_first_epochs(tiny_data, registry):
    ws = workspace(registry)
    run_id = ws.start(tiny_data, QUICK.replace(epochs=4))
    finish(ws, run_id)
    history = ws.run(run_id).history()
    estimate = from_history([history])
    expected = sorted(m.seconds + m.eval_seconds for m in history[1:])
    assert estimate == EpochEstimate(expected[1], expected[0], expected[-1], "runs", 3)
    assert from_history([history[:1]]) is None  # a first epoch pays for warm-up: no basis
