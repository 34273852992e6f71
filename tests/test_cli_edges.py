"""The command line's edges (issue 13): the progress line, --save's path, a full disk.

Run in this process (conftest.cli_in_process) on 16-unit nets and synthetic data: each
test takes a fraction of a second.
"""

from __future__ import annotations

import errno
import gzip
import http.server
import os
import threading

import pytest
from conftest import cli_in_process, synthetic_idx_files

import nets.checkpoint
from nets.checkpoint import load_model, save_model
from nets.config import TrainConfig
from nets.data import TRAIN_IMAGES
from nets.store import RunStore
from nets.two_layer_net import TwoLayerNet

QUICK = ["--hidden", "16", "--epochs", "1", "--batch-size", "50"]
FILES = synthetic_idx_files(n_train=5010, n_test=30)


@pytest.fixture
def half_mirror(monkeypatch, tmp_path):
    """A mirror on 127.0.0.1 that serves synthetic training images (whose SHA-256 is not MNIST's) and nothing else."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if not self.path.endswith(f"/{TRAIN_IMAGES}.gz"):
                return self.send_error(404)
            body = gzip.compress(FILES[TRAIN_IMAGES], compresslevel=1)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MNIST_MIRRORS", f"http://127.0.0.1:{server.server_port}/")
    yield
    server.shutdown()
    server.server_close()


def test_an_error_after_the_download_progress_starts_on_its_own_line(half_mirror):
    result = cli_in_process(*QUICK, "--no-record")
    assert result.returncode == 2
    assert "100%python -m nets.train" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[-2].endswith(f"downloading {TRAIN_IMAGES}: 100%")
    assert lines[-1].startswith(f"python -m nets.train: error: could not download {TRAIN_IMAGES}: every mirror failed")
    assert lines[-1].endswith("SHA-256 mismatch (got 7d668f177a72..., want ba891046e650...)")


def test_save_writes_exactly_the_path_given_and_says_so(tmp_path, synthetic_dir):
    path = tmp_path / "mymodel"
    result = cli_in_process("--data-dir", synthetic_dir, *QUICK, "--no-record", "--save", path)
    assert result.returncode == 0, result.stderr
    assert f"saved the model to {path}\n" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mymodel"]  # not mymodel.npz, no temporary file
    assert load_model(path).config.hidden_size == 16


@pytest.mark.parametrize(
    "where, reason",
    [
        ("no-such-dir/m.npz", "no directory {tmp}/no-such-dir"),
        ("a-file/m.npz", "no directory {tmp}/a-file"),
        ("", "it is a directory"),
    ],
)
def test_an_unusable_save_path_fails_before_training(tmp_path, synthetic_dir, where, reason):
    (tmp_path / "a-file").write_text("not a directory")
    runs = tmp_path / "runs"
    target = tmp_path / where if where else tmp_path
    result = cli_in_process("--data-dir", synthetic_dir, *QUICK, "--runs-dir", runs, "--save", target)
    assert result.returncode == 2 and result.stdout == ""  # no epoch was trained
    assert result.stderr == (
        f"python -m nets.train: error: cannot save the model to {target}: {reason.format(tmp=tmp_path)}\n"
    )
    assert not runs.exists() or RunStore(runs).runs() == []  # no run was even started


def test_a_read_only_directory_fails_before_training(tmp_path, synthetic_dir, monkeypatch):
    """As root every directory is writable, so the refusal is forced through os.access, what the check asks."""
    folder = tmp_path / "locked"
    folder.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(folder) else real(path, mode))
    result = cli_in_process("--data-dir", synthetic_dir, *QUICK, "--no-record", "--save", folder / "m.npz")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.endswith(
        f"cannot save the model to {folder / 'm.npz'}: the directory {folder} is not writable\n"
    )


class FullDisk:
    """`open` for nets.checkpoint whose files fail with ENOSPC after `room` bytes."""

    def __init__(self, room: int):
        self.room = room

    def __call__(self, path, mode="r", *args, **kwargs):
        real = open(path, mode, *args, **kwargs)
        room = self.room

        class Filling:
            def __init__(self):
                self.size = 0

            def write(self, data):
                if self.size + len(data) > room:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                self.size += len(data)
                return real.write(data)

            def __getattr__(self, attr):
                return getattr(real, attr)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                real.close()

        return Filling()


def test_a_full_disk_while_saving_leaves_no_file(tmp_path, monkeypatch):
    config = TrainConfig(hidden_size=16)
    net = TwoLayerNet.from_config(config)
    path = tmp_path / "m.npz"
    save_model(path, net, config)  # an older model there: it must survive a failed save
    before = path.read_bytes()
    monkeypatch.setattr(nets.checkpoint, "open", FullDisk(room=4096), raising=False)
    with pytest.raises(OSError, match="No space left on device"):
        save_model(path, net, config, {"test_acc": 0.9})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"] and path.read_bytes() == before


def test_a_full_disk_at_the_end_of_a_cli_run_says_so_in_one_line(tmp_path, synthetic_dir, monkeypatch):
    monkeypatch.setattr(nets.checkpoint, "open", FullDisk(room=4096), raising=False)
    path = tmp_path / "out" / "m.npz"
    path.parent.mkdir()
    result = cli_in_process("--data-dir", synthetic_dir, *QUICK, "--runs-dir", tmp_path / "runs", "--save", path)
    assert result.returncode == 2
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"python -m nets.train: error: cannot write {path} (No space left on device); ")
    assert last.endswith("the run is kept in the store as run 1")
    assert list(path.parent.iterdir()) == []  # no half file that looks like a model
