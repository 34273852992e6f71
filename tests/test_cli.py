"""The command line, run as a user runs it: python -m nets.train, in a subprocess."""

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

from nets.checkpoint import load_model

QUICK = ["--hidden", "16", "--epochs", "2", "--batch-size", "20"]


def cli(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "MNIST_DIR"}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "nets.train", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_prints_the_notebooks_table(synthetic_dir):
    result = cli("--data-dir", str(synthetic_dir), *QUICK)
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
    result = cli("--data-dir", str(synthetic_dir), "--epochs", "1", *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


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
