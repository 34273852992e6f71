"""Shared fixtures: a seeded rng, tiny synthetic MNIST-like data, IDX writers, real MNIST."""

from __future__ import annotations

import os

# One BLAS thread for the tests (and the processes they start), set before NumPy loads: they
# train tiny nets, where OpenBLAS's second thread only adds waiting, and on a busy machine makes
# a small batch 5-8 times slower. Results differ at most in float summation order; a thread
# count set in the environment is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import contextlib
import functools
import gzip
import io
import shutil
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nets.data import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, DataError, Mnist, load_mnist

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items):
    """A test on the real MNIST belongs to the slow lane, marked or not: the fast lane
    (`-m "not slow and not browser"`) needs no data and stays well under a minute."""
    for item in items:
        if "mnist" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True, scope="session")
def streamlit_components_scanned_once():
    """Each new AppTest scans every installed package's metadata for Streamlit components
    (0.4-1 s here, ~100 times in a run); a server does it once at start. The installed
    packages do not change during a test session, so the scan runs once."""
    if "streamlit" not in sys.modules:  # no AppTest collected: nothing to speed up
        yield
        return
    from streamlit.components.v2 import manifest_scanner

    original = manifest_scanner.scan_component_manifests
    manifest_scanner.scan_component_manifests = functools.cache(original)
    yield
    manifest_scanner.scan_component_manifests = original


@pytest.fixture(autouse=True, scope="session")
def private_runs_dir(tmp_path_factory) -> Path:
    """Every test (and every server a test starts) records runs into a temporary store,
    never into the user's own runs directory."""
    path = tmp_path_factory.mktemp("runs")
    os.environ["MNIST_RUNS_DIR"] = str(path)
    return path


@pytest.fixture(autouse=True, scope="session")
def private_unpacked_dir(tmp_path_factory) -> Path:
    """Decompressed copies of .gz MNIST files (nets.unpacked) go to a temporary folder, never
    into the user's cache; a .gz MNIST_DIR is then inflated once per test session."""
    path = tmp_path_factory.mktemp("unpacked")
    os.environ["MNIST_UNPACKED_DIR"] = str(path)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


def synthetic_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n learnable fake digits: uint8 images (n, 28, 28) and labels (n,) 0-9.

    Each class is a fixed random blob pattern plus noise, so a small net separates them in
    a few epochs, while the task is not trivial from the first batch.
    """
    rng = np.random.default_rng(seed)
    prototypes = rng.random((10, 28, 28)) < 0.2
    labels = rng.integers(0, 10, n)
    images = prototypes[labels] * 200.0 + rng.normal(0, 40, (n, 28, 28))
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)


def tiny_mnist(n_train: int = 300, n_val: int = 100, n_test: int = 100, seed: int = 0) -> Mnist:
    images, labels = synthetic_digits(n_train + n_val + n_test, seed)
    x = images.reshape(len(images), -1).astype(np.float32) / 255
    y = labels.astype(np.int64)
    a, b = n_train, n_train + n_val
    return Mnist(x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:], source="synthetic")


@pytest.fixture
def tiny_data() -> Mnist:
    return tiny_mnist()


def idx_images_bytes(images: np.ndarray) -> bytes:
    n, rows, cols = images.shape
    return struct.pack(">IIII", 2051, n, rows, cols) + images.astype(np.uint8).tobytes()


def idx_labels_bytes(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes()


def synthetic_idx_files(n_train: int = 5100, n_test: int = 200, seed: int = 0) -> dict[str, bytes]:
    """The four MNIST files' decompressed bytes, synthetic, keyed by base name."""
    train_images, train_labels = synthetic_digits(n_train, seed)
    test_images, test_labels = synthetic_digits(n_test, seed + 1)
    return {
        TRAIN_IMAGES: idx_images_bytes(train_images),
        TRAIN_LABELS: idx_labels_bytes(train_labels),
        TEST_IMAGES: idx_images_bytes(test_images),
        TEST_LABELS: idx_labels_bytes(test_labels),
    }


def write_mnist_dir(directory: Path, files: dict[str, bytes] | None = None, gz: bool = True) -> Path:
    files = files or synthetic_idx_files()
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(content, compresslevel=1))
        else:
            (directory / name).write_bytes(content)
    return directory


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """A directory with four valid synthetic MNIST .gz files (5,100 train, 200 test)."""
    return write_mnist_dir(tmp_path_factory.mktemp("synthetic-mnist"))


@pytest.fixture(scope="session")
def mnist() -> Mnist:
    """The real MNIST: MNIST_DIR, the cache, or a download.

    Without data and network the tests that need it skip, except on CI, where they fail.
    """
    try:
        return load_mnist(os.environ.get("MNIST_DIR") or None, download=not os.environ.get("CI"), timeout=10)
    except DataError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the real MNIST (set MNIST_DIR): {exc}")
        pytest.skip(f"no MNIST here (set MNIST_DIR) and no network: {exc}")


@pytest.fixture
def steady_apptest(monkeypatch):
    """AppTest behaving like a live server past its first request.

    AppTest resets Streamlit's legacy pages/ flag before every run, so every run after
    the first would execute the page file without dashboard.py, in another context than
    the run before (widget ids differ, clicks get lost). A live server clears the flag for
    good at its first st.navigation call. The first request of a fresh server is tested in
    a real browser (test_browser.py).
    """
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import app_test

    class ServerPastFirstRequest(PagesManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            PagesManager.uses_pages_directory = False

    monkeypatch.setattr(app_test, "PagesManager", ServerPastFirstRequest)


def training_threads() -> list[threading.Thread]:
    """The training jobs alive in this process."""
    return [t for t in threading.enumerate() if t.name == "training-job" and t.is_alive()]


@pytest.fixture
def new_app(steady_apptest):
    """Make AppTests of the whole dashboard on a fresh server: `new_app(query)` runs one.

    Set the environment (MNIST_DIR, MNIST_RUNS_DIR, ...) before the first call. Whatever
    the test's outcome, its trainings stop (as a stopping server stops them) and the
    server-wide caches (data, store, registry) are cleared, so nothing leaks into the next test.
    """
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_resource.clear()

    def make(query: dict | None = None) -> AppTest:
        at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
        at.query_params.update(query or {})
        at.run()
        return at

    yield make  # pytest resumes here after the test, passed or failed
    if training_threads():
        import app_state

        app_state.registry().shutdown()
    st.cache_resource.clear()
    deadline = time.monotonic() + 5
    while training_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert training_threads() == [], "a training outlived its test"


def cli_in_process(*args) -> subprocess.CompletedProcess:
    """`python -m nets.train ARGS` in this process (no interpreter start, no imports: about
    a second saved per call); exit status, stdout and stderr as a subprocess would give them."""
    from nets.train import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([str(a) for a in args])
        except SystemExit as exc:
            status = exc.code
    return subprocess.CompletedProcess(["nets.train", *args], status, out.getvalue(), err.getvalue())


def copy_store(template: Path, target: Path):
    """A runs store copied from one recorded once per module: recording costs about 0.2 s a
    run (each epoch's commit is synced to disk), a copy a few milliseconds."""
    from nets.store import RunStore

    shutil.copytree(template, target, ignore=shutil.ignore_patterns("*-shm"))  # SQLite rebuilds the WAL index
    return RunStore(target)
