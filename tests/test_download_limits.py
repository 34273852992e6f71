"""The MNIST download's limits against hostile mirrors on 127.0.0.1 (issue 13).

A gzip that inflates past the official file's size stops at that size; a mirror that
trickles (its body or even its headers) is cut off by the per-file deadline or the
minimum rate; a second download into the same cache does not wait behind the first when
asked not to; a full disk while caching says so, tries no other mirror and leaves no file
behind. Limits are patched down to kilobytes and timeouts are fractions of a second.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import http.server
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import synthetic_idx_files

import nets.data
from nets.data import FILE_NAMES, TRAIN_IMAGES, DataError, DownloadBusy, download_mnist

FILES = synthetic_idx_files(n_train=5010, n_test=30)
CHECKSUMS = {name: hashlib.sha256(content).hexdigest() for name, content in FILES.items()}
BODIES = {name: gzip.compress(content, compresslevel=1) for name, content in FILES.items()}
BOMB = gzip.compress(bytes(4 << 20), compresslevel=9)  # 4 MB of zeros in about 4 KB


class Mirror:
    """A server on 127.0.0.1 whose first path segment says how it behaves: "ok", "bomb"
    (a small gzip of zeros, far larger than any file once inflated), "trickle" (the body,
    one byte every `gap` seconds), "trickle-headers" (the status line itself, so)."""

    gap = 0.02

    def __init__(self):
        self.requests: list[str] = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                mirror.requests.append(self.path)
                mode, _, file = self.path.strip("/").partition("/")
                name = file.removesuffix(".gz")
                body = BOMB if mode == "bomb" else BODIES[name]
                try:
                    if mode == "trickle-headers":
                        for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 10_000:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(mirror.gap)
                        return
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if mode == "trickle":
                        for byte in body:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(mirror.gap)
                    else:
                        self.wfile.write(body)
                except OSError:  # the client hung up (what the limits are for)
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/{mode}/"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror():
    server = Mirror()
    yield server
    server.close()


def only_train_images_missing(cache: Path) -> None:
    for name in FILE_NAMES:
        if name != TRAIN_IMAGES:
            (cache / name).write_bytes(FILES[name])


def names_in(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir())


class Written:
    """NamedTemporaryFile for nets.data, counting what is written and failing with ENOSPC
    past `room` bytes (a full disk, without filling one)."""

    def __init__(self, monkeypatch, room: float = float("inf")):
        self.room, self.most = room, 0
        real = tempfile.NamedTemporaryFile
        counter = self

        class Counted:
            def __init__(self, f):
                self.f, self.name, self.size = f, f.name, 0

            def write(self, data):
                if self.size + len(data) > counter.room:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                self.size += len(data)
                counter.most = max(counter.most, self.size)
                return self.f.write(data)

            def __getattr__(self, attr):
                return getattr(self.f, attr)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

        monkeypatch.setattr(nets.data.tempfile, "NamedTemporaryFile", lambda *a, **k: Counted(real(*a, **k)))


def test_a_bomb_stops_at_the_official_size_of_its_file(tmp_path, mirror, monkeypatch):
    """The limit is each file's own size (patched to 64 KB here): the part file never grows past it."""
    monkeypatch.setitem(nets.data.SIZES, TRAIN_IMAGES, 65_536)
    written = Written(monkeypatch)
    only_train_images_missing(tmp_path)
    with pytest.raises(DataError) as info:
        download_mnist(tmp_path, mirrors=[mirror.url("bomb")], checksums=CHECKSUMS, timeout=1)
    assert f"{TRAIN_IMAGES}.gz: decompresses to more than 65536 bytes" in str(info.value)
    assert written.most <= 65_536  # refused at once, not after writing the rest
    assert names_in(tmp_path) == sorted(set(FILE_NAMES) - {TRAIN_IMAGES})  # no part file left


def test_labels_are_held_to_their_own_small_size(tmp_path, mirror):
    """The real limits: a labels file may not inflate past 60,008 bytes, whatever MAX_IDX_BYTES allows."""
    (tmp_path / TRAIN_IMAGES).write_bytes(FILES[TRAIN_IMAGES])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: decompresses to more than 60008 bytes"):
        download_mnist(tmp_path, mirrors=[mirror.url("bomb")], checksums=CHECKSUMS, timeout=1)


def test_a_trickling_mirror_meets_the_deadline(tmp_path, mirror):
    """A byte every 20 ms never trips a 0.5 s read timeout; the 0.6 s deadline for the file does."""
    only_train_images_missing(tmp_path)
    started = time.monotonic()
    with pytest.raises(DataError) as info:
        download_mnist(
            tmp_path, mirrors=[mirror.url("trickle")], checksums=CHECKSUMS, timeout=0.5, deadline=0.6, min_rate=0
        )
    assert time.monotonic() - started < 2.0
    assert f"{TRAIN_IMAGES}.gz: not complete after 0.6 s, the limit for one file" in str(info.value)
    assert names_in(tmp_path) == sorted(set(FILE_NAMES) - {TRAIN_IMAGES})


def test_a_mirror_trickling_its_headers_meets_the_deadline_too(tmp_path, mirror):
    only_train_images_missing(tmp_path)
    started = time.monotonic()
    with pytest.raises(DataError, match="not complete after 0.5 s"):
        download_mnist(tmp_path, mirrors=[mirror.url("trickle-headers")], checksums=CHECKSUMS, timeout=1, deadline=0.5)
    assert time.monotonic() - started < 2.0


def test_a_mirror_under_the_minimum_rate_is_dropped_for_the_next(tmp_path, mirror):
    """After the first `timeout` seconds, under `min_rate` bytes a second is too slow; the next mirror serves."""
    only_train_images_missing(tmp_path)
    started = time.monotonic()
    download_mnist(
        tmp_path, mirrors=[mirror.url("trickle"), mirror.url("ok")], checksums=CHECKSUMS, timeout=0.3, min_rate=1000
    )
    assert time.monotonic() - started < 2.0
    assert names_in(tmp_path) == sorted(FILE_NAMES)
    assert [r.split("/")[1] for r in mirror.requests] == ["trickle", "ok"]


def test_too_slow_says_so(tmp_path, mirror):
    only_train_images_missing(tmp_path)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: too slow: \d+ bytes in 0.\d s, under the 1,000"):
        download_mnist(tmp_path, mirrors=[mirror.url("trickle")], checksums=CHECKSUMS, timeout=0.3, min_rate=1000)


def test_a_download_under_way_elsewhere_is_not_waited_for(tmp_path, mirror):
    """A page asks with wait=False: it hears at once that another session downloads, and asks no mirror."""
    import fcntl

    holder = os.open(tmp_path, os.O_RDONLY)  # another process holding the cache's download lock
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(DownloadBusy, match="being downloaded into .* by another session or process"):
            download_mnist(tmp_path, mirrors=[mirror.url("ok")], checksums=CHECKSUMS, timeout=1, wait=False)
        assert time.monotonic() - started < 0.5 and mirror.requests == []
    finally:
        os.close(holder)
    download_mnist(tmp_path, mirrors=[mirror.url("ok")], checksums=CHECKSUMS, timeout=1, wait=False)
    assert names_in(tmp_path) == sorted(FILE_NAMES)  # and no lock file left behind


def test_a_waiting_download_uses_what_the_first_one_fetched(tmp_path, mirror):
    """The command line waits (wait=True): once the first download is done, nothing is left to fetch."""
    first_started, second_done = threading.Event(), []
    release = threading.Event()

    def slow_progress(name, done, total):
        first_started.set()
        release.wait(5)

    first = threading.Thread(
        target=download_mnist,
        args=(tmp_path,),
        kwargs=dict(mirrors=[mirror.url("ok")], checksums=CHECKSUMS, timeout=5, progress=slow_progress),
    )
    first.start()
    assert first_started.wait(5)
    second = threading.Thread(
        target=lambda: second_done.append(download_mnist(tmp_path, mirrors=[mirror.url("ok")], checksums=CHECKSUMS))
    )
    second.start()
    time.sleep(0.2)
    assert second_done == []  # waiting for the lock
    release.set()
    first.join(5)
    second.join(5)
    assert second_done == [tmp_path] and len(mirror.requests) == len(FILE_NAMES)  # each file fetched once


def test_a_full_disk_while_caching_says_so_and_leaves_nothing(tmp_path, mirror, monkeypatch):
    """ENOSPC on the 5th kilobyte: one clear line, no other mirror tried, no part file left."""
    Written(monkeypatch, room=4096)
    with pytest.raises(DataError) as info:
        download_mnist(tmp_path, mirrors=[mirror.url("ok"), mirror.url("ok2")], checksums=CHECKSUMS, timeout=1)
    text = str(info.value)
    assert text.startswith(f"cannot write {TRAIN_IMAGES} into the cache directory {tmp_path}: No space left")
    assert "(the disk is full)" in text and "MNIST_CACHE_DIR" in text and "\n" not in text
    assert len(mirror.requests) == 1  # another mirror cannot make room
    assert names_in(tmp_path) == []


def test_a_full_disk_while_installing_uploads_says_so_and_leaves_nothing(tmp_path, monkeypatch):
    Written(monkeypatch, room=4096)
    with pytest.raises(DataError) as info:
        nets.data.install_files({f"{TRAIN_IMAGES}.gz": BODIES[TRAIN_IMAGES]}, tmp_path)
    assert str(info.value).startswith(f"cannot write {TRAIN_IMAGES} into the cache directory {tmp_path}: No space")
    assert names_in(tmp_path) == []


def test_a_refused_connection_is_still_unreachable(tmp_path):
    """The watched connections change nothing for a mirror that is not there."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(DataError, match="no mirror could be reached"):
        download_mnist(tmp_path, mirrors=[f"http://127.0.0.1:{port}/"], checksums=CHECKSUMS, timeout=0.5)


def test_a_page_does_not_wait_for_another_sessions_download(tmp_path, monkeypatch, steady_apptest):
    """The dashboard's first start while another session downloads: a clear line at once, no
    traceback, no blocked script; once the files are there, the next run has the data."""
    import fcntl

    import streamlit as st
    from conftest import ROOT, write_mnist_dir
    from streamlit.testing.v1 import AppTest

    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("MNIST_CACHE_DIR", str(cache))
    monkeypatch.setenv("MNIST_MIRRORS", "http://127.0.0.1:9/")
    monkeypatch.setenv("MNIST_RUNS_DIR", str(tmp_path / "runs"))
    st.cache_resource.clear()
    holder = os.open(cache, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=10)
        started = time.monotonic()
        at.run()
        assert time.monotonic() - started < 5
        assert not at.exception and not at.error
        info = " | ".join(str(i.value) for i in at.info)
        assert f"MNIST is being downloaded into {cache} by another session or process" in info, info
        write_mnist_dir(cache, synthetic_idx_files(n_train=5100, n_test=200), gz=False)  # the other one finished
    finally:
        os.close(holder)
    at.run()
    assert not at.exception and not at.info
    assert {m.label: m.value for m in at.metric}["Training images"] == "100"
    st.cache_resource.clear()
