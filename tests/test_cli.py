"""The command line, python -m nets.train: through main(argv) in this process, and in a real
process where only a process shows it (the printed table, exit status and stderr, Ctrl-C)."""

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
from conftest import ROOT, cli_in_process

from nets.checkpoint import load_model
from nets.config import PRESETS, TrainConfig
from nets.data import load_mnist
from nets.recorder import Recorder
from nets.store import RunStore
from nets.train import main as train_main
from nets.training import EpochMetrics, TrainControl, train
from nets.two_layer_net import TwoLayerNet

QUICK = ["--hidden", "16", "--epochs", "2", "--batch-size", "20"]


def cli(*args, env_extra=None) -> subprocess.CompletedProcess:
    """python -m nets.train ARGS through main(argv) in this process, without MNIST_DIR unless
    given: what a process would print and return, without an interpreter start per call."""
    env = {k: v for k, v in os.environ.items() if k != "MNIST_DIR"}
    env.update(env_extra or {})
    with mock.patch.dict(os.environ, env, clear=True):
        return cli_in_process(*args)


def cli_process(*args) -> subprocess.CompletedProcess:
    """python -m nets.train ARGS in a process of its own, for what only a process shows."""
    env = {k: v for k, v in os.environ.items() if k != "MNIST_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "nets.train", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_prints_the_notebooks_table(synthetic_dir):
    result = cli_process("--data-dir", str(synthetic_dir), *QUICK)  # a real process, as a user runs it
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    epoch_line = (
        r"Epoch: {}, Train Error: \d+\.\d{{6}}, Validation Error: \d+\.\d{{6}}, "
        r"Test Accuracy: [01]\.\d{{4}} \(\d+\.\d\d s\)"
    )
    assert re.fullmatch(epoch_line.format(0), lines[0]) and re.fullmatch(epoch_line.format(1), lines[1])
    assert re.fullmatch(r"Misclassified test images: \d+ of 200", lines[2])
    assert re.fullmatch(r"Test accuracy: \d+\.\d\d%  \(\d\.\d{3} s per epoch\)", lines[3])
    assert f"MNIST from directory {synthetic_dir}" in result.stderr


def test_json_lines(synthetic_dir):
    result = cli("--data-dir", str(synthetic_dir), *QUICK, "--json")
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["epoch"] for o in objects[:2]] == [0, 1]
    for key in ("epoch", "train_loss", "val_loss", "val_acc", "test_acc", "seconds"):
        assert key in objects[0]
    final = objects[2]
    assert final["final"] is True and final["test_acc"] == objects[1]["test_acc"]
    assert final["misclassified"] == objects[1]["test_errors"] and final["seconds_per_epoch"] > 0


def test_mnist_dir_environment_and_save(tmp_path, synthetic_dir):
    path = tmp_path / "m.npz"
    result = cli(*QUICK, "--preset", "seed", "--save", str(path), env_extra={"MNIST_DIR": str(synthetic_dir)})
    assert result.returncode == 0, result.stderr
    loaded = load_model(path)
    assert loaded.config.hidden_size == 16 and loaded.config.optimizer == "sgd" and loaded.config.epochs == 2
    assert loaded.meta["epochs_trained"] == 2 and 0 <= loaded.meta["test_acc"] <= 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lr", "abc"], "argument --lr: invalid float value: 'abc'"),
        (["--hidden", "0"], "hidden_size must be between 1 and 4096 (got 0)"),
        (["--lr", "1e6"], "learning_rate must be between"),
        (["--preset", "nope"], "argument --preset: invalid choice"),
        (["--activation", "gelu"], "argument --activation: invalid choice"),
        (["--batch-size", "1000"], "batch_size must be at most 100, the number of training rows"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(synthetic_dir, args, message):
    """main(argv) in this process: the same parser and messages, without 7 interpreter starts."""
    result = cli_in_process("--data-dir", synthetic_dir, "--epochs", "1", *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert result.stderr.startswith("python -m nets.train: error: ") and result.stdout == ""


def test_a_bad_argument_in_a_real_process_exits_2_with_one_line_and_no_traceback(synthetic_dir):
    result = cli_process("--data-dir", str(synthetic_dir), "--epochs", "1", "--lr", "abc")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "python -m nets.train: error: argument --lr: invalid float value: 'abc'\n"


def test_bad_data_exits_2_with_one_line(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    result = cli("--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "has only 1 of the 4 MNIST files" in result.stderr


def test_corrupt_file_exits_2_naming_it(tmp_path, synthetic_dir):
    for f in synthetic_dir.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    result = cli("--data-dir", str(tmp_path))
    assert result.returncode == 2 and "t10k-labels-idx1-ubyte.gz: not a gzip file" in result.stderr


def test_diverged_run_exits_1_with_an_explanation(synthetic_dir):
    result = cli(
        "--data-dir",
        str(synthetic_dir),
        "--optimizer",
        "sgd",
        "--lr",
        "10",
        "--init",
        "he",
        "--epochs",
        "3",
        "--batch-size",
        "10",
    )
    assert result.returncode == 1
    assert "training diverged:" in result.stderr and "learning rate (10) is probably too high" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_the_options():
    result = cli("--help")
    assert result.returncode == 0
    for flag in (
        "--preset",
        "--hidden",
        "--activation",
        "--init",
        "--optimizer",
        "--lr",
        "--batch-size",
        "--epochs",
        "--seed",
        "--data-dir",
        "--save",
        "--json",
    ):
        assert flag in result.stdout


# --- recording in the store, and --resume -------------------------------------------------------


@pytest.fixture(autouse=True)
def private_store(tmp_path, monkeypatch):
    """Every run of this file records into its own temporary store (MNIST_RUNS_DIR)."""
    monkeypatch.setenv("MNIST_RUNS_DIR", str(tmp_path / "default-runs"))
    return tmp_path / "default-runs"


def test_records_every_run_by_default_and_json_names_it(synthetic_dir, private_store):
    result = cli("--data-dir", str(synthetic_dir), *QUICK, "--json", "--name", "tiny", "--tag", "a", "--tag", "b")
    assert result.returncode == 0, result.stderr
    final = json.loads(result.stdout.splitlines()[-1])
    record = RunStore(private_store).run(final["run_id"])
    assert (record.name, record.source, record.status, record.tags) == ("tiny", "cli", "finished", ("a", "b"))
    assert record.epochs_done == 2 and record.test_acc == final["test_acc"]
    assert f"recording as run {final['run_id']} in {private_store}" in result.stderr


def test_runs_dir_and_no_record(tmp_path, synthetic_dir, private_store):
    result = cli("--data-dir", str(synthetic_dir), *QUICK, "--json", "--runs-dir", str(tmp_path / "mine"))
    assert result.returncode == 0, result.stderr
    assert [r.epochs_done for r in RunStore(tmp_path / "mine").runs()] == [2]
    result = cli("--data-dir", str(synthetic_dir), *QUICK, "--json", "--no-record")
    assert result.returncode == 0 and json.loads(result.stdout.splitlines()[-1])["run_id"] is None
    assert not private_store.exists()


def test_a_store_that_cannot_be_used_costs_one_line_not_the_training(tmp_path, synthetic_dir):
    (tmp_path / "file").write_text("a file, not a directory")
    result = cli("--data-dir", str(synthetic_dir), *QUICK, "--json", "--runs-dir", str(tmp_path / "file" / "runs"))
    assert result.returncode == 0 and json.loads(result.stdout.splitlines()[-1])["run_id"] is None
    (line,) = [line for line in result.stderr.splitlines() if "MNIST from" not in line]
    assert line.startswith("python -m nets.train: not recording this run: cannot create the runs directory")


def test_a_damaged_store_costs_one_line_and_stays_as_it_was(tmp_path, synthetic_dir):
    damaged = tmp_path / "runs" / "runs.sqlite"
    damaged.parent.mkdir()
    damaged.write_bytes(b"\x00garbage" * 100)
    result = cli("--data-dir", str(synthetic_dir), *QUICK, "--runs-dir", str(damaged.parent))
    assert result.returncode == 0 and "Test accuracy" in result.stdout
    assert f"not recording this run: {damaged} is damaged" in result.stderr and "move it aside" in result.stderr
    assert damaged.read_bytes() == b"\x00garbage" * 100


def test_ctrl_c_records_the_run_as_interrupted(tmp_path, synthetic_dir):
    runs = tmp_path / "runs"
    process = subprocess.Popen(
        [sys.executable, "-m", "nets.train", "--data-dir", str(synthetic_dir), "--runs-dir", str(runs),
         "--hidden", "16", "--batch-size", "1", "--epochs", "1000", "--json"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert json.loads(process.stdout.readline())["epoch"] == 0  # one epoch committed and printed
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted after" in stderr and "Traceback" not in stderr
    (record,) = RunStore(runs).runs()
    assert record.status == "interrupted" and record.message == "stopped by Ctrl-C" and record.epochs_done >= 1


def train_cli(*args):
    """python -m nets.train in this process (fast: no interpreter start); (status, stdout lines)."""
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()):
        status = train_main([str(a) for a in args])
    return status, [json.loads(line) if line.startswith("{") else line for line in out.getvalue().splitlines()]


def test_resume_appends_to_the_same_history(tmp_path, synthetic_dir):
    runs = ["--runs-dir", tmp_path / "runs"]
    _, first = train_cli("--data-dir", synthetic_dir, *QUICK, "--json", *runs)
    run_id = first[-1]["run_id"]
    result = cli("--data-dir", str(synthetic_dir), "--resume", str(run_id), "--epochs", "3", "--json", *map(str, runs))
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["epoch"] for o in objects[:-1]] == [2, 3, 4] and all(o["epochs"] == 5 for o in objects[:-1])
    assert objects[-1]["run_id"] == run_id and objects[-1]["epochs"] == 5
    store = RunStore(tmp_path / "runs")
    history = store.history(run_id)
    assert [m.epoch for m in history] == [0, 1, 2, 3, 4] and history[:2] == [store_metrics(o) for o in first[:2]]
    record = store.run(run_id)
    assert record.status == "finished" and record.epochs_done == 5 and record.config.epochs == 5
    assert len(store.runs()) == 1 and f"continuing run {run_id} (2 epochs done)" in result.stderr


def store_metrics(o: dict) -> EpochMetrics:
    return EpochMetrics(**{k: v for k, v in o.items() if k != "health"})  # the CLI's line adds the health


def test_resumed_adam_cosine_run_equals_the_uninterrupted_one_bit_for_bit(tmp_path, synthetic_dir):
    """Adam's moments and step, the cosine schedule and each epoch's shuffle and shifts are
    all restored, so a run planned for 4 epochs, stopped after 2 and continued for 2 more,
    is the 4-epoch run. (Continuing a run planned for 2 would not be: the cosine schedule of
    its first epochs was drawn over 2 epochs.)"""
    config = ["--optimizer", "adam", "--schedule", "cosine", "--shuffle", "--augment-shift", "1", "--hidden", "16"]
    config += ["--batch-size", "20", "--epochs", "4", "--seed", "5"]
    status, whole = train_cli("--data-dir", synthetic_dir, *config, "--json", "--runs-dir", tmp_path / "whole")
    assert status == 0

    store = RunStore(tmp_path / "halves")
    data = load_mnist(synthetic_dir, download=False)
    cfg = TrainConfig(optimizer="adam", lr_schedule="cosine", augment_shift=1, hidden_size=16, batch_size=20,
                      epochs=4, seed=5)  # fmt: skip
    run_id, control = store.create_run(cfg, source="cli"), TrainControl()
    for m in Recorder(store, run_id).train(TwoLayerNet.from_config(cfg), data, cfg, control=control):
        if m.epoch == 1:
            control.stop()
    assert store.run(run_id).status == "stopped" and store.run(run_id).epochs_done == 2
    status, rest = train_cli("--data-dir", synthetic_dir, "--resume", run_id, "--epochs", 2, "--json",
                             "--runs-dir", tmp_path / "halves")  # fmt: skip
    assert status == 0

    timing = {"seconds", "eval_seconds", "samples_per_sec", "health"}  # health: printed, not stored
    exact = [{k: v for k, v in o.items() if k not in timing} for o in whole[:-1]]
    resumed = [{k: v for k, v in m.to_dict().items() if k not in timing} for m in store.history(run_id)]
    assert resumed == exact
    a, b = RunStore(tmp_path / "whole").load(whole[-1]["run_id"]), store.load(run_id)
    for name in ("W1", "b1", "W2", "b2"):
        assert np.array_equal(a.net.params[name], b.net.params[name]), name
    for name, value in a.optimizer_state.items():
        assert np.array_equal(value, b.optimizer_state[name]), name


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lr", "0.5"], "--lr cannot be used with --resume: a continued run keeps its settings"),
        (["--preset", "seed"], "--preset cannot be used with --resume"),
        (["--no-shuffle"], "--shuffle cannot be used with --resume"),
        (["--name", "x"], "--name cannot be used with --resume"),
        (["--no-record"], "--no-record cannot be used with --resume"),
        (["--epochs", "0"], "--resume needs --epochs N, the number of epochs to add (at least 1)"),
        ([], "--resume needs --epochs N"),
    ],
)
def test_resume_refuses_other_settings_in_one_line(tmp_path, synthetic_dir, args, message):
    result = cli_in_process("--data-dir", synthetic_dir, "--runs-dir", tmp_path, "--resume", "1", *args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_resume_of_an_unknown_or_live_run_is_one_line(tmp_path, synthetic_dir):
    result = cli("--data-dir", str(synthetic_dir), "--runs-dir", str(tmp_path), "--resume", "7", "--epochs", "1")
    assert (
        result.returncode == 2
        and result.stderr == f"python -m nets.train: error: there is no run 7 in {tmp_path}/runs.sqlite\n"
    )
    run_id = RunStore(tmp_path).create_run(TrainConfig(), source="dashboard", status="running")  # this live process
    result = cli(
        "--data-dir", str(synthetic_dir), "--runs-dir", str(tmp_path), "--resume", str(run_id), "--epochs", "1"
    )
    assert result.returncode == 2 and f"run {run_id} is running: stop it first" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.slow
def test_seed_preset_resumed_after_25_epochs_ends_where_a_50_epoch_run_ends(mnist, tmp_path, monkeypatch):
    """The notebook's recipe (SGD, constant rate, sequential batches) on the first 5,000
    real training digits: 25 epochs, then --resume for 25 more, equals 50 at once, exactly."""
    monkeypatch.setattr("nets.train.load_mnist", lambda *args, **kwargs: mnist)
    config = PRESETS["seed"].replace(train_samples=5000)
    net = TwoLayerNet.from_config(config)
    straight = list(train(net, mnist, config))
    runs = ["--runs-dir", tmp_path]
    status, first = train_cli("--preset", "seed", "--train-samples", 5000, "--epochs", 25, "--json", *runs)
    assert status == 0
    status, second = train_cli("--resume", first[-1]["run_id"], "--epochs", 25, "--json", *runs)
    assert status == 0 and [o["epoch"] for o in second[:-1]] == list(range(25, 50))
    assert second[-1]["test_acc"] == straight[-1].test_acc and second[-1]["misclassified"] == straight[-1].test_errors
    assert [o["train_loss"] for o in first[:-1] + second[:-1]] == [m.train_loss for m in straight]
    resumed = RunStore(tmp_path).load(first[-1]["run_id"]).net
    assert all(np.array_equal(resumed.params[k], net.params[k]) for k in ("W1", "b1", "W2", "b2"))


def test_ctrl_c_between_epochs_is_interrupted_too(tmp_path, synthetic_dir, monkeypatch):
    """Ctrl-C while an epoch is printed strikes outside the recorder's loop, which then
    sees only its generator closed; the run is interrupted all the same."""

    def interrupt(metrics):
        raise KeyboardInterrupt

    monkeypatch.setattr("nets.train.format_epoch", interrupt)
    status, _ = train_cli("--data-dir", synthetic_dir, *QUICK, "--runs-dir", tmp_path)
    (record,) = RunStore(tmp_path).runs()
    assert status == 130 and record.status == "interrupted" and record.epochs_done == 1
