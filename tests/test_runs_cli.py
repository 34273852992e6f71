"""python -m nets.runs: list, show, export, import and delete the store's runs."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from conftest import ROOT, copy_store, tiny_mnist

from nets.checkpoint import model_bytes
from nets.config import TrainConfig
from nets.recorder import Recorder
from nets.runs import main
from nets.store import RunStore
from nets.train import format_epoch
from nets.training import TrainControl
from nets.two_layer_net import TwoLayerNet

CONFIG = TrainConfig(hidden_size=8, batch_size=50, epochs=3, optimizer="momentum", learning_rate=0.05)


def runs_cli(*args, stdin: str = "") -> tuple[int, str, str]:
    """python -m nets.runs in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), mock.patch("sys.stdin", io.StringIO(stdin)):
        try:
            status = main([str(a) for a in args])
        except SystemExit as exc:
            status = exc.code
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> Path:
    """A store with two runs: 1 finished (3 epochs, tagged, with notes), 2 stopped after 1 epoch.
    Recorded once for this file (each epoch's commit is synced to disk); each test gets a copy."""
    data, store = tiny_mnist(), RunStore(tmp_path_factory.mktemp("two-runs"))
    finished = store.create_run(CONFIG, source="cli", name="three epochs", tags=["keep"], notes="momentum run")
    list(Recorder(store, finished).train(TwoLayerNet.from_config(CONFIG), data, CONFIG))
    stopped, control = store.create_run(CONFIG.replace(hidden_size=4), source="dashboard"), TrainControl()
    for _ in Recorder(store, stopped).train(TwoLayerNet.from_config(CONFIG), data, CONFIG, control=control):
        control.stop()
    return store.root


@pytest.fixture
def store(tmp_path, two_runs) -> RunStore:
    return copy_store(two_runs, tmp_path / "runs")


def test_list_shows_settings_and_results_newest_first(store):
    status, out, err = runs_cli("list", "--runs-dir", store.root)
    assert status == 0 and err == ""
    header, second, first = out.splitlines()
    assert header.split() == "id name status source hidden optim lr batch epochs best val test time".split()
    assert second.split()[:5] == ["2", "run", "2", "stopped", "dashboard"]
    finished = store.run(1)
    assert first.split()[:2] == ["1", "three"] and "finished" in first and "momentum" in first and "3/3" in first
    assert f"{100 * finished.best_val_acc:.2f}%" in first and f"{100 * finished.test_acc:.2f}%" in first

    status, out, _ = runs_cli("--runs-dir", store.root, "--json", "list")  # options before the command too
    rows = json.loads(out)
    assert [r["run_id"] for r in rows] == [2, 1] and rows[1]["tags"] == ["keep"]
    assert {k: rows[1][k] for k in ("hidden", "optimizer", "lr", "batch", "epochs", "epochs_done")} == {
        "hidden": 8, "optimizer": "momentum", "lr": 0.05, "batch": 50, "epochs": 3, "epochs_done": 3,
    }  # fmt: skip
    assert rows[1]["test_acc"] == finished.test_acc and rows[1]["train_seconds"] == finished.train_seconds > 0


def test_show_prints_the_run_and_one_line_per_epoch(store):
    status, out, _ = runs_cli("show", 1, "--runs-dir", store.root)
    lines = out.splitlines()
    assert status == 0 and lines[0] == "run 1: three epochs" and lines[1] == "status: finished"
    assert "optimizer=momentum" in out and "tags: keep" in out and "notes: momentum run" in out
    assert lines[-3:] == [format_epoch(m) for m in store.history(1)]
    status, out, _ = runs_cli("show", 1, "--runs-dir", store.root, "--json")
    shown = json.loads(out)
    assert shown["config"] == CONFIG.to_dict() and [m["epoch"] for m in shown["history"]] == [0, 1, 2]


def test_export_then_import_keeps_weights_optimizer_state_history_and_trace(store, tmp_path):
    bundle = tmp_path / "exported.npz"
    status, out, _ = runs_cli("export", 1, "-o", bundle, "--runs-dir", store.root)
    assert status == 0 and out.startswith(f"exported run 1 to {bundle}")
    with np.load(bundle, allow_pickle=False) as npz:  # one .npz, no pickles
        assert {"W1", "config", "meta", "optimizer_velocity_W1", "run", "history", "trace"} <= set(npz.files)

    other = tmp_path / "other-store"
    status, out, _ = runs_cli("import", bundle, "--runs-dir", other, "--json")
    assert status == 0
    imported = RunStore(other)
    new_id = json.loads(out)["run_id"]
    record, original = imported.run(new_id), store.run(1)
    assert (record.name, record.status, record.source, record.tags, record.notes) == (
        "three epochs", "finished", "import", ("keep",), "momentum run",
    )  # fmt: skip
    assert record.config == original.config and record.epochs_done == 3 and record.weights_epochs == 3
    assert imported.history(new_id) == store.history(1) and imported.trace(new_id) == store.trace(1)
    a, b = store.load(1), imported.load(new_id)
    assert all(np.array_equal(a.net.params[k], b.net.params[k]) for k in ("W1", "b1", "W2", "b2"))
    assert a.optimizer_state.keys() == b.optimizer_state.keys() == {"velocity_W1", "velocity_b1", "velocity_W2",
                                                                    "velocity_b2"}  # fmt: skip
    assert all(np.array_equal(a.optimizer_state[k], b.optimizer_state[k]) for k in a.optimizer_state)


def test_import_a_plain_model_file(store, tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(model_bytes(TwoLayerNet.from_config(CONFIG), CONFIG, {"epochs_trained": 3}))
    status, out, _ = runs_cli("import", path, "--name", "from a file", "--runs-dir", store.root)
    assert status == 0 and out == "imported " + str(path) + " as run 3\n"
    record = store.run(3)
    assert (record.name, record.status, record.source, record.epochs_done, record.weights_epochs) == (
        "from a file", "uploaded", "import", 0, 3,
    )  # fmt: skip


def rebundle(data: bytes, **changes) -> bytes:
    """A copy of bundle `data` with members replaced (an array) or removed (None)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            key = info.filename.removesuffix(".npy")
            if key not in changes:
                dst.writestr(info, src.read(info))
        for key, value in changes.items():
            if value is not None:
                member = io.BytesIO()
                np.save(member, value, allow_pickle=True)
                dst.writestr(f"{key}.npy", member.getvalue())
    return out.getvalue()


def text(value) -> np.ndarray:
    return np.array(json.dumps(value))


def good_history(store):
    return [m.to_dict() for m in store.history(1)]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: {"trace": None}, "a run bundle holds run, history and trace (missing 'trace')"),
        (lambda s: {"history": np.array([{"epoch": 0}], dtype=object)}, "holds object arrays (pickled data)"),
        (lambda s: {"history": text(good_history(s)[:2])}, "the history has 2 epochs, the weights are after 3"),
        (lambda s: {"history": text([{**h, "epoch": 5} for h in good_history(s)])}, "epoch 0 says it is epoch 5"),
        (lambda s: {"history": text([{"epoch": 0}])}, "history epoch 0 must hold exactly epoch, epochs"),
        (lambda s: {"history": text({"epochs": 3})}, "history must be a list of at most 1000 epochs"),
        (lambda s: {"trace": np.array("[[0.5, NaN]]")}, "trace must be a list of at most"),
        (lambda s: {"run": text(["not", "an", "object"])}, "run must be a JSON object"),
        (lambda s: {"run": np.array("{broken")}, "run is not valid JSON"),
        (lambda s: {"W1": None}, "missing array 'W1'"),
    ],
)
def test_a_bad_bundle_is_refused_in_one_line_and_changes_nothing(store, tmp_path, change, message):
    good = tmp_path / "good.npz"
    runs_cli("export", 1, "-o", good, "--runs-dir", store.root)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(rebundle(good.read_bytes(), **change(store)))
    status, out, err = runs_cli("import", bad, "--runs-dir", store.root)
    assert status == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith("python -m nets.runs: error: bad.npz: ") and message in err, err
    assert [r.run_id for r in store.runs()] == [2, 1]
    assert sorted(p.name for p in (store.root / "weights").iterdir()) == ["run-1", "run-2"]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"plain text", "not an .npz model file or run bundle"),
        (b"PK\x03\x04 broken zip", "not an .npz model file or run bundle"),
    ],
)
def test_a_file_that_is_no_bundle_is_refused(store, tmp_path, content, message):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    status, _, err = runs_cli("import", path, "--runs-dir", store.root)
    assert status == 2 and err == f"python -m nets.runs: error: x.npz: {message} (expected a zip archive of arrays)\n"


def test_delete_asks_first_and_removes_the_weight_files(store):
    status, _, err = runs_cli("delete", 1, "--runs-dir", store.root, stdin="n\n")
    assert status == 1 and "delete run 1 (three epochs) and 3 weight files? [y/N]" in err and "nothing deleted" in err
    assert [r.run_id for r in store.runs()] == [2, 1]
    status, out, _ = runs_cli("delete", 1, "--runs-dir", store.root, stdin="y\n")
    assert status == 0 and out == "deleted run 1 (three epochs)\n"
    assert [r.run_id for r in store.runs()] == [2] and not (store.root / "weights" / "run-1").exists()
    status, _, _ = runs_cli("delete", 2, "--yes", "--runs-dir", store.root)
    assert status == 0 and store.runs() == [] and list((store.root / "weights").iterdir()) == []


def test_delete_refuses_a_run_that_is_training(store):
    live = store.create_run(CONFIG, source="cli", status="running")  # this process: alive
    status, _, err = runs_cli("delete", live, "--yes", "--runs-dir", store.root)
    assert status == 2 and f"run {live} is running (its process is alive): stop it before deleting it" in err
    assert store.run(live).status == "running"


@pytest.mark.parametrize("command", [["show", 9], ["export", 9], ["delete", 9, "--yes"], ["delete", 1, 9, "--yes"]])
def test_an_unknown_run_is_one_line_naming_it(store, command):
    status, out, err = runs_cli(*command, "--runs-dir", store.root)
    assert status == 2 and out == "" and err == f"python -m nets.runs: error: there is no run 9 in {store.path}\n"
    assert len(store.runs()) == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["show", "one"], "argument RUN_ID: invalid int value: 'one'"),
        (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: COMMAND"),
        (["import", "/nonexistent.npz"], "/nonexistent.npz: cannot read it (No such file or directory)"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(store, args, message):
    status, _, err = runs_cli(*args, "--runs-dir", store.root)
    assert status == 2 and err.count("\n") == 1 and message in err, err


def test_a_store_that_cannot_be_opened_is_one_line(tmp_path):
    (tmp_path / "runs.sqlite").write_bytes(b"\x01" * 4096)
    status, _, err = runs_cli("list", "--runs-dir", tmp_path)
    assert status == 2 and err.count("\n") == 1 and "is damaged or not a runs database" in err
    assert (tmp_path / "runs.sqlite").read_bytes() == b"\x01" * 4096


def test_the_module_runs_from_the_command_line(store):
    result = subprocess.run(
        [sys.executable, "-m", "nets.runs", "--json", "list", "--runs-dir", str(store.root)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [r["status"] for r in json.loads(result.stdout)] == ["stopped", "finished"]


def test_an_oversized_file_is_refused_before_it_is_read(store, tmp_path, monkeypatch):
    monkeypatch.setattr("nets.runs.MAX_BUNDLE_BYTES", 1000)
    path = tmp_path / "big.npz"
    path.write_bytes(bytes(1001))
    monkeypatch.setattr("pathlib.Path.read_bytes", lambda self: pytest.fail("read it"))
    status, _, err = runs_cli("import", path, "--runs-dir", store.root)
    assert (
        status == 2
        and err == "python -m nets.runs: error: big.npz: 1001 bytes, larger than any run bundle this app makes\n"
    )
