"""MNIST data: the strict IDX reader, where files come from, and downloads from 127.0.0.1."""

import functools
import gzip
import hashlib
import http.server
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import idx_images_bytes, idx_labels_bytes, synthetic_digits, synthetic_idx_files, write_mnist_dir

from nets.data import (
    FILE_NAMES,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    DataError,
    download_mnist,
    load_mnist,
    parse_idx,
    read_directory,
    read_idx,
    split,
    to_float,
)


@pytest.fixture(autouse=True)
def no_data_env(monkeypatch):
    """These tests choose their sources themselves: CI's MNIST_DIR must not leak in."""
    for name in ("MNIST_DIR", "MNIST_CACHE_DIR", "MNIST_MIRRORS"):
        monkeypatch.delenv(name, raising=False)


# --- the IDX reader -------------------------------------------------------------------------


@pytest.fixture
def good_images():
    images, _ = synthetic_digits(7)
    return images, idx_images_bytes(images)


@pytest.mark.parametrize("gz", [False, True])
def test_reads_images_and_labels_raw_and_gz(tmp_path, good_images, gz):
    images, content = good_images
    labels = np.arange(7, dtype=np.uint8)
    pairs = {"i": (content, "images"), "l": (idx_labels_bytes(labels), "labels")}
    for stem, (data, kind) in pairs.items():
        path = tmp_path / (f"{stem}.gz" if gz else stem)
        path.write_bytes(gzip.compress(data) if gz else data)
        expected = images if kind == "images" else labels
        np.testing.assert_array_equal(read_idx(path, kind), expected)


CORRUPT = {
    "wrong magic": (lambda c: struct.pack(">I", 2049) + c[4:], "wrong magic number 2049"),
    "wrong dimensions": (lambda c: c[:8] + struct.pack(">II", 32, 32) + c[16:], "images are 32x32"),
    "truncated": (lambda c: c[:-10], "truncated: 5494 bytes, the header promises 5504"),
    "trailing bytes": (lambda c: c + b"\0\0\0", "3 unexpected bytes after the 7 images"),
    "too short for a header": (lambda c: c[:9], "too short for an IDX images header"),
    "empty": (lambda c: b"", "the file is empty"),
}


@pytest.mark.parametrize("fault", sorted(CORRUPT))
def test_corrupt_images_file_is_named_with_its_fault(tmp_path, good_images, fault):
    corrupt, message = CORRUPT[fault]
    path = tmp_path / TRAIN_IMAGES
    path.write_bytes(corrupt(good_images[1]))
    with pytest.raises(DataError) as info:
        read_idx(path, "images")
    text = str(info.value)
    assert text.startswith(f"{TRAIN_IMAGES}: ") and message in text and "\n" not in text


def test_label_outside_0_to_9(tmp_path):
    path = tmp_path / TRAIN_LABELS
    path.write_bytes(idx_labels_bytes(np.array([1, 2, 12, 3])))
    with pytest.raises(DataError, match="label 12 at index 2 is outside 0-9"):
        read_idx(path, "labels")


def test_gz_name_that_is_not_gzip(tmp_path, good_images):
    path = tmp_path / f"{TRAIN_IMAGES}.gz"
    path.write_bytes(b"<html>Not Found</html>")
    with pytest.raises(DataError, match=f"{TRAIN_IMAGES}.gz: not a gzip file"):
        read_idx(path, "images")


def test_truncated_gzip(tmp_path, good_images):
    path = tmp_path / f"{TRAIN_IMAGES}.gz"
    path.write_bytes(gzip.compress(good_images[1])[:-20])
    with pytest.raises(DataError, match="corrupt or truncated gzip data"):
        read_idx(path, "images")


def test_raw_file_is_memory_mapped_not_copied(tmp_path, good_images):
    path = tmp_path / TRAIN_IMAGES
    path.write_bytes(good_images[1])
    array = read_idx(path, "images")
    assert isinstance(array.base, np.memmap) or isinstance(getattr(array.base, "base", None), np.memmap)


def test_parse_idx_returns_a_view():
    """No copy of the payload: a 47 MB file is held once (its memory map, or its bytes)."""
    content = bytearray(idx_labels_bytes(np.array([3, 4])))
    labels = parse_idx(content, "x", "labels")
    assert labels.tolist() == [3, 4]
    assert np.shares_memory(labels, np.frombuffer(content, dtype=np.uint8))
    content[-1] = 7  # the buffer changes under it: the very same memory
    assert labels.tolist() == [3, 7]


# --- directories and the split ---------------------------------------------------------------


def test_directory_with_some_files_missing(tmp_path):
    files = synthetic_idx_files(n_train=5010, n_test=20)
    del files[TEST_LABELS]
    write_mnist_dir(tmp_path, files)
    with pytest.raises(DataError, match=f"has only 3 of the 4 MNIST files; missing {TEST_LABELS}"):
        read_directory(tmp_path)


def test_image_and_label_counts_must_agree(tmp_path):
    files = synthetic_idx_files(n_train=5010, n_test=20)
    files[TRAIN_LABELS] = idx_labels_bytes(np.zeros(5009, dtype=np.uint8))
    write_mnist_dir(tmp_path, files, gz=False)
    with pytest.raises(DataError, match=f"{TRAIN_LABELS}: 5009 labels for 5010 images"):
        read_directory(tmp_path)


def test_no_such_directory(tmp_path):
    with pytest.raises(DataError, match="no such directory"):
        load_mnist(tmp_path / "nope")


def test_split_is_the_notebooks_and_read_only(synthetic_dir):
    data = load_mnist(synthetic_dir)
    assert data.x_train.shape == (5100 - 5000, 784) and data.x_val.shape == (5000, 784)
    assert data.x_test.shape == (200, 784) and data.y_test.dtype == np.int64
    assert data.x_train.dtype == np.float32 and 0 <= data.x_train.min() and data.x_train.max() <= 1
    with pytest.raises(ValueError):
        data.x_train[0, 0] = 1
    raw = read_directory(synthetic_dir)
    np.testing.assert_array_equal(data.x_val, to_float(raw[TRAIN_IMAGES])[-5000:])
    np.testing.assert_allclose(to_float(np.array([[[255, 0]]], dtype=np.uint8)), [[1, 0]])
    assert data.source == f"directory {synthetic_dir}"


def test_environment_variable_then_cache(tmp_path, monkeypatch, synthetic_dir):
    monkeypatch.setenv("MNIST_DIR", str(synthetic_dir))
    assert load_mnist().source == f"directory {synthetic_dir}"
    monkeypatch.delenv("MNIST_DIR")
    cache = write_mnist_dir(tmp_path / "cache", gz=False)
    monkeypatch.setenv("MNIST_CACHE_DIR", str(cache))
    assert load_mnist(download=False).source == f"cache {cache}"


def test_missing_everywhere_without_download(tmp_path, monkeypatch):
    monkeypatch.delenv("MNIST_DIR", raising=False)
    with pytest.raises(DataError, match="not found in the cache .* set MNIST_DIR"):
        load_mnist(cache_dir=tmp_path, download=False)


def test_xdg_cache_home(monkeypatch, tmp_path):
    from nets.data import default_cache_dir

    monkeypatch.delenv("MNIST_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "mnist-dashboard"


# --- downloads from a local server -----------------------------------------------------------

FILES = synthetic_idx_files(n_train=5010, n_test=30)
CHECKSUMS = {name: hashlib.sha256(content).hexdigest() for name, content in FILES.items()}
TIMEOUT = 0.3  # seconds a test waits for a mirror (a socket on 127.0.0.1 answers in well under that)
SLOW = 2 * TIMEOUT  # how long the "slow" mirror takes to answer


@functools.cache
def gzipped(name: str, wrong: bool = False) -> bytes:
    """A file as a mirror serves it, or (`wrong`) other content of the same size; compressed
    once per test session (4 MB take a tenth of a second, which a timeout test would feel)."""
    content = FILES[name][:-1] + b"\x01" if wrong else FILES[name]
    return gzip.compress(content, compresslevel=1)


class Mirror:
    """One HTTP server on 127.0.0.1 playing several mirrors, one per path prefix.

    `behaviour[prefix]` says what that mirror does: "ok", "404", "html", "truncated" (a
    Content-Length larger than the body, then the connection closes), "corrupt" (gzip
    whose bytes were altered), "wrong" (valid gzip of other content), "bomb" (a small gzip
    of 1 MB of zeros) or "slow" (answers after SLOW seconds, past the tests' TIMEOUT).
    """

    def __init__(self):
        self.behaviour: dict[str, str] = {}
        self.requests: list[str] = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                mirror.requests.append(self.path)
                prefix, _, file = self.path.strip("/").partition("/")
                name = file.removesuffix(".gz")
                mode = mirror.behaviour.get(prefix, "404")
                if mode == "404" or name not in FILES:
                    return self.send_error(404)
                body = gzipped(name)
                if mode == "html":
                    body = b"<!doctype html><title>Moved</title>"
                if mode == "corrupt":
                    body = body[:40] + bytes(64) + body[104:]
                if mode == "wrong":
                    body = gzipped(name, wrong=True)
                if mode == "bomb":
                    body = gzip.compress(bytes(1 << 20), compresslevel=9)
                if mode == "slow":
                    time.sleep(SLOW)
                self.send_response(200)
                length = len(body) + (1000 if mode == "truncated" else 0)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:  # the client gave up (a timeout test): nothing to do
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def url(self, prefix: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/{prefix}/"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror():
    server = Mirror()
    yield server
    server.close()


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name not in FILE_NAMES)


def test_download_verifies_and_reports_progress(tmp_path, mirror):
    mirror.behaviour = {"a": "ok"}
    seen = []
    data = load_mnist(
        cache_dir=tmp_path, mirrors=[mirror.url("a")], checksums=CHECKSUMS, progress=lambda *p: seen.append(p)
    )
    assert data.source == f"cache {tmp_path} (downloaded)"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILE_NAMES)
    for name in FILE_NAMES:
        assert (tmp_path / name).read_bytes() == FILES[name]
    last = {name: (done, total) for name, done, total in seen}
    assert all(done == total for done, total in last.values()) and set(last) == set(FILE_NAMES)
    # A second load reads the cache and asks no mirror.
    count = len(mirror.requests)
    assert load_mnist(cache_dir=tmp_path, mirrors=[mirror.url("a")], checksums=CHECKSUMS).source == f"cache {tmp_path}"
    assert len(mirror.requests) == count


@pytest.mark.parametrize("fault", ["404", "html", "truncated", "corrupt", "wrong", "slow"])
def test_a_failing_mirror_falls_through_to_the_next(tmp_path, mirror, fault):
    mirror.behaviour = {"bad": fault, "good": "ok"}
    for name in (TRAIN_LABELS, TEST_IMAGES):  # two files cached already: two to fetch, one wait each when slow
        (tmp_path / name).write_bytes(FILES[name])
    download_mnist(tmp_path, mirrors=[mirror.url("bad"), mirror.url("good")], checksums=CHECKSUMS, timeout=TIMEOUT)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILE_NAMES)
    assert (tmp_path / TRAIN_IMAGES).read_bytes() == FILES[TRAIN_IMAGES]
    assert [r.split("/")[1] for r in mirror.requests] == ["bad", "good", "bad", "good"]  # each file: bad, then good


@pytest.mark.parametrize(
    "fault, reason",
    [
        ("404", "HTTP 404"),
        ("html", "not valid gzip data"),
        ("truncated", "transfer interrupted|IncompleteRead|not valid gzip"),
        ("corrupt", "not valid gzip data|SHA-256 mismatch"),
        ("wrong", "SHA-256 mismatch"),
        ("slow", "timed out"),
    ],
)
def test_every_mirror_failing_leaves_nothing_and_says_what_was_tried(tmp_path, mirror, fault, reason):
    mirror.behaviour = {"one": fault, "two": "404"}
    with pytest.raises(DataError) as info:
        download_mnist(tmp_path, mirrors=[mirror.url("one"), mirror.url("two")], checksums=CHECKSUMS, timeout=TIMEOUT)
    text = str(info.value)
    assert text.startswith(f"could not download {TRAIN_IMAGES}: ") and "set MNIST_DIR" in text and "\n" not in text
    assert mirror.url("one") in text and mirror.url("two") in text
    assert __import__("re").search(reason, text), text
    assert leftovers(tmp_path) == [] and not (tmp_path / TRAIN_IMAGES).exists()


def test_a_download_larger_than_any_mnist_file_is_cut_off(tmp_path, mirror, monkeypatch):
    """A mirror sending more than MNIST's largest file is stopped at the limit, not read to
    its end (the limit patched from 64 MB down to 4 KB: the same code, without a 64 MB body)."""
    monkeypatch.setattr("nets.data.MAX_IDX_BYTES", 4096)
    mirror.behaviour = {"big": "ok"}
    with pytest.raises(DataError) as info:
        download_mnist(tmp_path, mirrors=[mirror.url("big")], checksums=CHECKSUMS)
    assert f"{mirror.url('big')}{TRAIN_IMAGES}.gz: more than 4096 bytes, not an MNIST file" in str(info.value)
    assert leftovers(tmp_path) == [] and not any(tmp_path.iterdir())


def test_a_download_that_decompresses_past_the_limit_is_cut_off(tmp_path, mirror, monkeypatch):
    """A small gzip that inflates beyond MNIST's size (a bomb) is stopped while it inflates,
    before it fills the disk; nothing is left behind (limit patched down to 64 KB)."""
    monkeypatch.setattr("nets.data.MAX_IDX_BYTES", 1 << 16)
    mirror.behaviour = {"bomb": "bomb"}
    with pytest.raises(DataError) as info:
        download_mnist(tmp_path, mirrors=[mirror.url("bomb")], checksums=CHECKSUMS)
    assert f"{TRAIN_IMAGES}.gz: decompresses to more than 65536 bytes" in str(info.value)
    assert leftovers(tmp_path) == [] and not any(tmp_path.iterdir())


def test_mirrors_from_the_environment(tmp_path, mirror, monkeypatch):
    mirror.behaviour = {"a": "ok"}
    monkeypatch.setenv("MNIST_MIRRORS", f"http://127.0.0.1:9/, {mirror.url('a')}")
    download_mnist(tmp_path, checksums=CHECKSUMS, timeout=TIMEOUT)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILE_NAMES)


def test_unreachable_mirror(tmp_path):
    with pytest.raises(DataError, match="could not download .*127.0.0.1:9/"):
        download_mnist(tmp_path, mirrors=["http://127.0.0.1:9/"], checksums=CHECKSUMS, timeout=TIMEOUT)


def test_partial_cache_downloads_only_what_is_missing(tmp_path, mirror):
    mirror.behaviour = {"a": "ok"}
    (tmp_path / TRAIN_IMAGES).write_bytes(FILES[TRAIN_IMAGES])
    download_mnist(tmp_path, mirrors=[mirror.url("a")], checksums=CHECKSUMS)
    assert not any(TRAIN_IMAGES in r for r in mirror.requests)
    assert len(mirror.requests) == 3


def test_cache_directory_not_writable(tmp_path, mirror):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(DataError, match="cannot write to the cache directory .* set MNIST_CACHE_DIR"):
        load_mnist(cache_dir=blocker / "cache", mirrors=[mirror.url("a")], checksums=CHECKSUMS)


def test_split_rejects_too_few_training_images(tmp_path):
    files = synthetic_idx_files(n_train=100, n_test=10)
    write_mnist_dir(tmp_path, files)
    with pytest.raises(DataError, match="need more than the 5000 held out"):
        read_directory(tmp_path)


def test_split_holds_out_the_last_5000_as_read_only_views():
    images, labels = synthetic_digits(5003)
    test_images, test_labels = synthetic_digits(4, seed=1)
    arrays = {TRAIN_IMAGES: images, TRAIN_LABELS: labels, TEST_IMAGES: test_images, TEST_LABELS: test_labels}
    data = split(arrays, source="here")
    assert (len(data.x_train), len(data.x_val), len(data.x_test), data.source) == (3, 5000, 4, "here")
    np.testing.assert_array_equal(data.x_train, to_float(images[:3]))
    np.testing.assert_array_equal(data.x_val, to_float(images[3:]))
    assert data.y_train.tolist() == labels[:3].tolist() and data.y_val.tolist() == labels[3:].tolist()
    # Training and validation rows are two views of one float array: MNIST is held once.
    assert data.x_train.base is not None and data.x_train.base is data.x_val.base
    for array in (data.x_train, data.y_train, data.x_val, data.y_val, data.x_test, data.y_test):
        assert not array.flags.writeable
