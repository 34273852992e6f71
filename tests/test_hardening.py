"""Odd input, several users, and the server's settings: each case ends well, and says why."""

import gzip
import struct
import subprocess
import sys
import time
import tomllib

import pytest
from conftest import ROOT, cli_in_process, synthetic_idx_files, write_mnist_dir
from streamlit.testing.v1 import AppTest

from nets.data import TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, DataError, install_files

# --- bad MNIST files on the command line: exit 2, one line naming the file and the fault -------

GOOD = synthetic_idx_files(n_train=5010, n_test=20)
FAULTS = {
    "wrong magic": (TRAIN_IMAGES, struct.pack(">I", 2049) + GOOD[TRAIN_IMAGES][4:], "wrong magic number 2049"),
    "wrong dimensions": (
        TRAIN_IMAGES,
        GOOD[TRAIN_IMAGES][:8] + struct.pack(">II", 32, 32) + GOOD[TRAIN_IMAGES][16:],
        "images are 32x32",
    ),
    "truncated": (TEST_LABELS, GOOD[TEST_LABELS][:-3], "truncated"),
    "trailing bytes": (TEST_LABELS, GOOD[TEST_LABELS] + b"\0", "1 unexpected bytes"),
    "counts disagree": (TRAIN_LABELS, struct.pack(">II", 2049, 5009) + bytes(5009), "5009 labels for 5010 images"),
    "label outside 0-9": (TEST_LABELS, struct.pack(">II", 2049, 20) + bytes([3] * 19 + [10]), "label 10 at index 19"),
    "empty file": (TEST_LABELS, b"", "the file is empty"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_cli_refuses_each_bad_file_with_one_line(tmp_path, fault):
    """In this process (the reader's own faults are tested in test_data.py); the exit status
    and stderr of a real process are checked once, below."""
    name, content, message = FAULTS[fault]
    write_mnist_dir(tmp_path, {**GOOD, name: content}, gz=False)
    result = cli_in_process("--data-dir", tmp_path, "--epochs", "1")
    assert result.returncode == 2 and result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line and name in line and message in line, line


def test_cli_process_refuses_a_gz_that_is_not_gzip_with_status_2_and_one_line(tmp_path):
    write_mnist_dir(tmp_path, GOOD)
    (tmp_path / f"{TEST_LABELS}.gz").write_bytes(b"<html>503</html>")
    result = subprocess.run(
        [sys.executable, "-m", "nets.train", "--data-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("python -m nets.train: error: ") and result.stderr.count("\n") == 1
    assert f"{TEST_LABELS}.gz: not a gzip file" in result.stderr and "Traceback" not in result.stderr


# --- uploads write only into the cache, under the project's own names ---------------------------


def test_upload_names_cannot_escape_the_cache(tmp_path):
    cache = tmp_path / "cache"
    installed = install_files({f"../../{TRAIN_LABELS}": GOOD[TRAIN_LABELS]}, cache)
    assert installed == [TRAIN_LABELS] and sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [TRAIN_LABELS]
    with pytest.raises(DataError, match="not an MNIST file name"):
        install_files({"../../etc/passwd": b"root:x:0:0"}, cache)


def test_upload_of_a_gzip_bomb_is_refused(tmp_path, monkeypatch):
    """The limit patched from 64 MB down to 64 KB: the same check, without a 64 MB buffer."""
    monkeypatch.setattr("nets.data.MAX_IDX_BYTES", 1 << 16)
    bomb = gzip.compress(bytes(1 << 20), compresslevel=9)  # 1 MB of zeros in 1 KB
    with pytest.raises(DataError, match=f"{TRAIN_IMAGES}.gz: decompresses to more than 65536 bytes"):
        install_files({f"{TRAIN_IMAGES}.gz": bomb}, tmp_path)
    assert not any(tmp_path.iterdir())
    images = synthetic_idx_files(n_train=80, n_test=1)[TRAIN_IMAGES]  # 62,736 bytes: just under the limit
    assert install_files({f"{TRAIN_IMAGES}.gz": gzip.compress(images)}, tmp_path) == [TRAIN_IMAGES]


# --- the server's settings -----------------------------------------------------------------------


def test_server_settings_are_safe_by_default():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    server = config["server"]
    assert server["address"] == "127.0.0.1"  # this machine only, as the README says
    assert server["enableXsrfProtection"] is True
    raw_train_images = 47_040_016  # the largest legitimate upload
    assert raw_train_images < server["maxUploadSize"] * 1024 * 1024 <= 2 * raw_train_images


# --- several users at once ---------------------------------------------------------------------


def test_mnist_is_loaded_once_for_every_session(monkeypatch, synthetic_dir, new_app):
    """Three app instances in one process share one read-only copy of the data.

    (AppTest gives every instance the same session id, so isolation between users is
    tested with three real browser sessions instead: tests/test_browser.py.)
    """
    import app_state

    loads = []
    real_load = app_state.load_mnist
    monkeypatch.setattr(app_state, "load_mnist", lambda *a, **k: loads.append(1) or real_load(*a, **k))
    monkeypatch.setenv("MNIST_DIR", str(synthetic_dir))
    for _ in range(3):
        at = new_app()
        at.switch_page("pages/train.py")
        at.run()
        assert not at.exception
    assert loads == [1]
    data = app_state._shared_data()
    assert not data.x_train.flags.writeable and not data.x_test.flags.writeable


def test_a_training_outlives_its_session_ends_by_itself_and_stops_with_the_server(
    synthetic_dir, monkeypatch, new_app, tmp_path
):
    """A closed tab leaves its run training (bounded by its epochs); a server that stops
    stops every run and records it as interrupted. No thread is left behind either way."""
    import threading

    import app_state

    def alive():
        return [t for t in threading.enumerate() if t.name == "training-job" and t.is_alive()]

    monkeypatch.setenv("MNIST_DIR", str(synthetic_dir))
    monkeypatch.setenv("MNIST_RUNS_DIR", str(tmp_path / "runs"))

    def start(epochs: int, batch: int) -> AppTest:
        at = new_app({"train_epochs": str(epochs), "train_batch": str(batch)})  # settings from a shared link
        at.switch_page("pages/train.py")
        at.run()
        at.button(key="train_start").click().run()
        return at

    start(epochs=3, batch=50)
    new_app()  # another tab, another session
    registry, store = app_state.registry(), app_state.store()
    deadline = time.monotonic() + 30
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive() == [] and store.run(1).status == "finished"  # it trained on to its end, then stopped

    start(epochs=200, batch=1)
    assert len(alive()) == 1
    registry.shutdown()  # what the server does when it stops
    assert alive() == [] and store.run(2).status == "interrupted"


def test_every_choice_the_form_offers_is_a_valid_config():
    """The Train page's controls cannot produce a config the engine would refuse."""
    import app_state
    from nets.config import LIMITS, TrainConfig

    for key, options in app_state.CHOICES.items():
        field = app_state.SETTING_KEYS[key]
        for value in options:
            assert getattr(TrainConfig(**{field: value}), field) == value
    for key, high in app_state.UI_MAX.items():
        field = app_state.SETTING_KEYS[key]
        assert LIMITS[field][0] <= high <= LIMITS[field][1]
    assert min(app_state.LEARNING_RATES) > 0 and max(app_state.LEARNING_RATES) <= LIMITS["learning_rate"][1]
