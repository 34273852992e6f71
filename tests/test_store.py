"""RunStore: parallel writers, a training killed with -9, migration, refused files, failing
disks, the snapshot policy and atomic files."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, synthetic_idx_files, write_mnist_dir

import nets.store
from nets.config import TrainConfig
from nets.recorder import Recorder
from nets.store import DB_NAME, MIGRATIONS, SCHEMA_VERSION, RunStore, StoreError, write_atomically
from nets.training import EpochMetrics, TrainControl
from nets.two_layer_net import TwoLayerNet

TINY = TrainConfig(hidden_size=4, batch_size=50, epochs=3)


def metrics(epoch: int, epochs: int = 3, acc: float = 0.5) -> EpochMetrics:
    return EpochMetrics(epoch, epochs, 1.0, acc, 1.0, acc, 1.0, acc, 50, 0.01, 0.1, 0.01, 1000.0)


def files_of(store: RunStore, run_id: int) -> set[str]:
    folder = store.root / "weights" / f"run-{run_id}"
    return {f.name for f in folder.iterdir()} if folder.is_dir() else set()


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


# --- several processes at once -----------------------------------------------------------------

WRITERS, RUNS_EACH, EPOCHS_EACH = 4, 30, 3


def _writer(root, worker, barrier, results) -> None:
    """One process: open the (new) store at the same instant as the others, then record runs."""
    try:
        net = TwoLayerNet.from_config(TINY)
        barrier.wait()
        store = RunStore(root)
        made = []
        for i in range(RUNS_EACH):
            run_id = store.create_run(TINY, source="sweep", name=f"w{worker}-{i}")
            for epoch in range(EPOCHS_EACH):
                store.record_epoch(run_id, metrics(epoch), net, TINY, trace=[(epoch + 0.5, 2.0), (epoch + 1, 1.0)])
            store.set_status(run_id, "finished")
            made.append(run_id)
        results.put((worker, made, ""))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put((worker, [], f"{type(exc).__name__}: {exc}"))


@pytest.mark.slow  # a stress test: 4 processes x 90 synced epochs, 2-5 s
def test_parallel_writers_in_processes_lose_nothing(tmp_path):
    """Four processes open a new store at the same instant and write at once. Before the
    store's setup lock, about one such start in ten failed with "database is locked"."""
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(WRITERS), ctx.Queue()
    root = tmp_path / "runs"
    started = time.perf_counter()
    processes = [ctx.Process(target=_writer, args=(root, w, barrier, results)) for w in range(WRITERS)]
    for p in processes:
        p.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for p in processes:
        p.join(10)
    seconds = time.perf_counter() - started
    errors = [error for _, _, error in outcomes if error]
    assert not errors, errors  # no "database is locked", no half-migrated store
    ids = sorted(i for _, made, _ in outcomes for i in made)
    assert len(ids) == len(set(ids)) == WRITERS * RUNS_EACH

    store = RunStore(root)
    records = store.runs()
    assert sorted(r.run_id for r in records) == ids
    assert all(r.status == "finished" and r.epochs_done == EPOCHS_EACH for r in records)
    histories = store.histories(ids)
    assert all([m.epoch for m in histories[i]] == list(range(EPOCHS_EACH)) for i in ids)
    assert all(len(store.trace(i)) == 2 * EPOCHS_EACH for i in ids)
    assert all(files_of(store, i) == {"after-1.npz", "after-2.npz", "after-3.npz"} for i in ids)
    print(f"{WRITERS} processes x {RUNS_EACH} runs x {EPOCHS_EACH} epochs: {seconds:.1f} s")


# --- a training process killed mid-run ---------------------------------------------------------


@pytest.mark.slow  # two training processes and a wait for two epochs: 5-8 s
def test_kill_9_mid_run_leaves_an_interrupted_run_that_resumes(tmp_path):
    # 2,000 training rows, 128 hidden units, batches of 10: about 0.2 s an epoch here.
    data_dir = write_mnist_dir(tmp_path / "mnist", synthetic_idx_files(n_train=7000, n_test=200))
    runs = tmp_path / "runs"
    args = ["--data-dir", str(data_dir), "--runs-dir", str(runs), "--json", "--hidden", "128", "--batch-size", "10"]
    env = {**os.environ, "MNIST_RUNS_DIR": str(tmp_path / "elsewhere")}
    process = subprocess.Popen(
        [sys.executable, "-m", "nets.train", *args, "--epochs", "200"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        store = wait_until(lambda: (runs / DB_NAME).exists() and RunStore(runs), 60, "the store")
        wait_until(lambda: (r := store.runs()) and r[0].epochs_done >= 2, 60, "two committed epochs")
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        stdout, _ = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL

    (record,) = RunStore(runs).runs()  # opening it reaps the dead process's run
    printed = [json.loads(line) for line in stdout.splitlines()]
    committed = record.epochs_done
    assert record.status == "interrupted" and "process ended" in record.message
    assert committed >= 2 and len(printed) <= committed <= len(printed) + 1  # committed before printed
    assert record.weights_epochs == committed
    assert [m.epoch for m in store.history(record.run_id)] == list(range(committed))
    loaded = store.load(record.run_id)
    assert loaded.meta["epochs_trained"] == committed and int(loaded.optimizer_state["step"]) == committed * 200
    assert files_of(store, record.run_id) == {s.path.name for s in store.snapshots(record.run_id)}

    resumed = subprocess.run(
        [sys.executable, "-m", "nets.train", "--resume", str(record.run_id), "--epochs", "1", *args[:4]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    after = RunStore(runs).run(record.run_id)
    assert after.status == "finished" and after.epochs_done == committed + 1
    print(f"kill -9 after {committed} committed epochs ({len(printed)} printed): {record.status}")


def test_runs_of_dead_and_zombie_processes_are_reaped_and_live_ones_kept(tmp_path):
    store = RunStore(tmp_path)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # ends, and is not waited for yet
    wait_until(lambda: nets.store._process_stat(zombie.pid)[0] == "Z", 10, "a zombie")
    dead = store.create_run(TINY, source="cli", status="running", pid=ended.pid)
    undead = store.create_run(TINY, source="cli", status="running", pid=zombie.pid)
    alive = store.create_run(TINY, source="cli", status="running")
    try:
        assert sorted(store.reap()) == [dead, undead]
        assert store.run(dead).status == store.run(undead).status == "interrupted"
        assert store.run(alive).status == "running" and store.reap() == []
    finally:
        zombie.wait()


def test_reap_leaves_a_run_another_process_continued_meanwhile(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    run_id = store.create_run(TINY, source="cli", status="running", pid=ended.pid)
    # Between reap's read and its write, this process takes the run over (as --resume does).
    real_alive = nets.store._process_alive

    def alive_then_taken_over(pid, started):
        answer = real_alive(pid, started)
        with sqlite3.connect(store.path) as conn:
            conn.execute("UPDATE runs SET pid = ?, pid_started = ? WHERE run_id = ?",
                         (os.getpid(), nets.store._process_started(os.getpid()), run_id))  # fmt: skip
        return answer

    monkeypatch.setattr(nets.store, "_process_alive", alive_then_taken_over)
    assert store.reap() == []
    assert store.run(run_id).status == "running"


def test_continue_run_refuses_a_live_run_and_an_unknown_one(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(TINY, source="cli", status="running")
    with pytest.raises(StoreError, match=f"run {run_id} is running already"):
        store.continue_run(run_id, TINY)
    store.set_status(run_id, "stopped")
    store.continue_run(run_id, TINY.replace(epochs=5))
    assert store.run(run_id).status == "running" and store.run(run_id).config.epochs == 5
    with pytest.raises(StoreError, match="there is no run 99"):
        store.continue_run(99, TINY)


# --- the schema --------------------------------------------------------------------------------


def test_a_store_written_by_schema_version_1_is_migrated(tmp_path):
    path = tmp_path / DB_NAME
    with sqlite3.connect(path) as conn:  # what the first version wrote
        conn.executescript(MIGRATIONS[0])
        conn.execute(f"PRAGMA application_id = {nets.store.APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO runs (name, config, source, status, created, ended) VALUES (?, ?, 'cli', 'finished', 1, 2)",
            ("old run", json.dumps(TINY.to_dict())),
        )
        conn.execute("INSERT INTO epochs VALUES (1, 0, ?, 0.5, 0.5, 0.1)", (json.dumps(metrics(0).to_dict()),))
    conn.close()

    store = RunStore(tmp_path)
    (old,) = store.runs()
    assert (old.name, old.status, old.epochs_done, old.config) == ("old run", "finished", 1, TINY)
    assert old.notes == "" and old.tags == () and store.history(1) == [metrics(0)]
    store.set_notes(1, "kept")  # the new columns and tables work
    store.set_tags(1, ["old", "migrated"])
    new = store.create_run(TINY, source="cli", tags=["new"])
    store.record_epoch(new, metrics(0), TwoLayerNet.from_config(TINY), TINY, trace=[(1.0, 0.5)])
    assert store.run(1).notes == "kept" and store.run(1).tags == ("migrated", "old")
    assert store.trace(new) == [(1.0, 0.5)] and store.run(new).tags == ("new",)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    conn.close()


def test_a_newer_schema_is_refused(tmp_path):
    RunStore(tmp_path)
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match=f"newer version of this dashboard \\(schema {SCHEMA_VERSION + 1}"):
        RunStore(tmp_path)


def test_a_damaged_file_is_refused_naming_it_and_left_unchanged(tmp_path):
    path = tmp_path / DB_NAME
    damaged = np.random.default_rng(0).bytes(8192)
    path.write_bytes(damaged)
    with pytest.raises(StoreError) as refused:
        RunStore(tmp_path)
    message = str(refused.value)
    assert str(path) in message and "move it aside" in message and "\n" not in message
    assert path.read_bytes() == damaged
    assert sorted(f.name for f in tmp_path.iterdir()) == [".setup.lock", DB_NAME]  # no journal, no -wal beside it


def test_a_foreign_sqlite_file_is_refused_and_left_unchanged(tmp_path):
    path = tmp_path / DB_NAME
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE bookmarks (url TEXT)")
        conn.execute("INSERT INTO bookmarks VALUES ('https://example.org')")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="is not a runs database of this dashboard.*move it aside"):
        RunStore(tmp_path)
    assert path.read_bytes() == before


# --- recording that fails does not stop the training -------------------------------------------


def test_a_runs_directory_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create the runs directory .*file/runs") as refused:
        RunStore(tmp_path / "file" / "runs")
    assert "\n" not in str(refused.value)


class ReadOnlyConnection:
    """A connection to a database that turns read-only at the first epoch it records: that
    write and every later one fail as SQLite fails them."""

    read_only = False

    def __init__(self, conn):
        self._conn = conn

    def execute(self, sql, *args):
        ReadOnlyConnection.read_only |= "INTO epochs" in sql
        if ReadOnlyConnection.read_only and not sql.startswith(("SELECT", "PRAGMA", "ROLLBACK")):
            raise sqlite3.OperationalError("attempt to write a readonly database")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def read_only_from_first_epoch(monkeypatch):
    connect = sqlite3.connect
    monkeypatch.setattr(ReadOnlyConnection, "read_only", False)
    monkeypatch.setattr(nets.store.sqlite3, "connect", lambda *a, **k: ReadOnlyConnection(connect(*a, **k)))


def train_recorded(store, run_id, data, config):
    recorder = Recorder(store, run_id)
    history = list(recorder.train(TwoLayerNet.from_config(config), data, config))
    return recorder, history


def test_a_read_only_database_stops_the_recording_not_the_training(tmp_path, tiny_data, monkeypatch):
    store = RunStore(tmp_path)
    run_id = store.create_run(TINY, source="cli")
    read_only_from_first_epoch(monkeypatch)
    recorder, history = train_recorded(store, run_id, tiny_data, TINY)
    assert len(history) == TINY.epochs  # trained to the end, nothing raised
    assert recorder.error.startswith(f"recording of run {run_id} stopped: ") and "\n" not in recorder.error
    assert "read-only" in recorder.error and str(store.path) in recorder.error
    monkeypatch.undo()
    record = store.run(run_id)
    assert record.status == "running" and record.epochs_done == 0  # until its process ends and it is reaped
    assert files_of(store, run_id) == set()  # no weights file without its row


def test_a_full_disk_stops_the_recording_keeps_what_was_committed(tmp_path, tiny_data, monkeypatch):
    store = RunStore(tmp_path)
    run_id = store.create_run(TINY, source="cli")
    real_fsync, writes = os.fsync, []

    def fsync(fd):  # the second weights file does not fit on the disk
        writes.append(fd)
        if len(writes) == 3:  # file 1, its directory, file 2
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    recorder, history = train_recorded(store, run_id, tiny_data, TINY)
    monkeypatch.undo()
    assert len(history) == TINY.epochs
    assert "No space left on device" in recorder.error and "free some space" in recorder.error
    record = store.run(run_id)
    assert record.epochs_done == 1 and record.weights_epochs == 1
    assert record.status == "interrupted" and record.message == recorder.error  # not "running" forever
    assert files_of(store, run_id) == {"after-1.npz"}  # no temporary file left behind


# --- weights on disk ----------------------------------------------------------------------------


def test_snapshot_policy_keeps_powers_of_two_and_the_last(tmp_path, tiny_data):
    config = TINY.replace(epochs=10)
    store = RunStore(tmp_path)
    run_id = store.create_run(config, source="cli")
    _, history = train_recorded(store, run_id, tiny_data, config)
    kept = store.snapshots(run_id)
    assert [s.epochs for s in kept] == [1, 2, 4, 8, 10]
    assert files_of(store, run_id) == {f"after-{e}.npz" for e in (1, 2, 4, 8, 10)} == {s.path.name for s in kept}
    eighth = store.load(run_id, 8)
    assert eighth.meta["epochs_trained"] == 8 and eighth.meta["test_acc"] == history[7].test_acc
    assert int(eighth.optimizer_state["step"]) == 8 * 6  # 300 rows in batches of 50
    assert store.run(run_id).status == "finished" and len(store.trace(run_id)) == 10 * 6


def test_write_atomically_leaves_no_temporary_file_on_failure(tmp_path):
    path = tmp_path / "weights" / "after-1.npz"
    write_atomically(path, lambda f: f.write(b"good"))

    def half_then_fail(f):
        f.write(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_atomically(path, half_then_fail)
    assert path.read_bytes() == b"good" and [f.name for f in path.parent.iterdir()] == ["after-1.npz"]


def test_delete_removes_the_rows_and_the_weight_files(tmp_path, tiny_data):
    store = RunStore(tmp_path)
    keep, gone = store.create_run(TINY, source="cli"), store.create_run(TINY, source="cli", tags=["x"])
    train_recorded(store, keep, tiny_data, TINY)
    train_recorded(store, gone, tiny_data, TINY)
    store.delete(gone)
    assert [r.run_id for r in store.runs()] == [keep]
    assert not (tmp_path / "weights" / f"run-{gone}").exists() and len(files_of(store, keep)) == 3
    assert store.history(gone) == [] and store.trace(gone) == [] and store.snapshots(gone) == []


def test_a_stopped_recording_is_recorded_as_stopped(tmp_path, tiny_data):
    store = RunStore(tmp_path)
    run_id = store.create_run(TINY, source="dashboard")
    control = TrainControl()
    recorder = Recorder(store, run_id)
    for _ in recorder.train(TwoLayerNet.from_config(TINY), tiny_data, TINY, control=control):
        control.stop()
    record = store.run(run_id)
    assert record.status == "stopped" and record.epochs_done == 1 and record.ended is not None


def _opener(root, barrier, results) -> None:
    try:
        barrier.wait()
        RunStore(root).create_run(TINY, source="cli")
        results.put("")
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.slow  # a stress test: 80 forked processes in 20 rounds, 2-9 s
def test_processes_opening_a_new_store_at_the_same_instant_all_get_in(tmp_path):
    """Twenty new stores, each opened by four processes released together (the race that
    failed before the setup lock: 5 of 160 opens in one measurement here)."""
    ctx = multiprocessing.get_context("fork")
    errors = []
    for round_ in range(20):
        root = tmp_path / f"runs-{round_}"
        barrier, results = ctx.Barrier(4), ctx.Queue()
        processes = [ctx.Process(target=_opener, args=(root, barrier, results)) for _ in range(4)]
        for p in processes:
            p.start()
        errors += [e for e in (results.get(timeout=60) for _ in processes) if e]
        for p in processes:
            p.join(10)
        assert len(RunStore(root).runs()) == 4 - len(errors)
    assert errors == []
