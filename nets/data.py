"""MNIST: a strict IDX reader, where the files come from, a verified download, the split.

Sources, in order: a directory given explicitly (argument or MNIST_DIR); the user's cache
directory (MNIST_CACHE_DIR, else $XDG_CACHE_HOME/mnist-dashboard, else
~/.cache/mnist-dashboard); a download from public mirrors, each file checked against the
SHA-256 of the official decompressed file and written atomically. No pickle anywhere: the
cache holds the decompressed IDX files themselves, memory-mapped when read.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import http.client
import io
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nets import unpacked

try:
    import fcntl
except ImportError:  # not on Windows: downloads are then not serialised
    fcntl = None

IMAGE_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABEL_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
IMAGE_SIDE = 28
VALIDATION_SIZE = 5000  # the notebook's split: the last 5,000 training images

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILE_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# SHA-256 of each decompressed official file (the .gz bytes differ between mirrors).
SHA256 = {
    TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# Public mirrors of the original .gz files, tried in turn.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://yann.lecun.com/exdb/mnist/",
)
MAX_IDX_BYTES = 64 * 1024 * 1024  # the largest file (train images) is 47,040,016 bytes
# The official files' decompressed sizes: a download is refused the moment it grows past its file's.
SIZES = {TRAIN_IMAGES: 47_040_016, TRAIN_LABELS: 60_008, TEST_IMAGES: 7_840_016, TEST_LABELS: 10_008}
DEADLINE = 1200.0  # seconds for one file in all (the largest, 9.9 MB compressed, takes 990 s at MIN_RATE)
MIN_RATE = 10_000  # bytes a second on average, after the first `timeout` seconds
GZIP_MAGIC = b"\x1f\x8b"

ProgressCallback = Callable[[str, int, "int | None"], None]  # (file name, bytes done, total)


class DataError(ValueError):
    """MNIST could not be read or fetched; the message is one line naming file and fault."""


@dataclass(frozen=True)
class Mnist:
    """The notebook's split, pixels float32 in [0, 1], labels int64 0-9. Read-only arrays."""

    x_train: np.ndarray  # (55000, 784)
    y_train: np.ndarray  # (55000,)
    x_val: np.ndarray  # (5000, 784)
    y_val: np.ndarray  # (5000,)
    x_test: np.ndarray  # (10000, 784)
    y_test: np.ndarray  # (10000,)
    source: str = ""  # where the files came from, for the UI and the CLI

    @property
    def nbytes(self) -> int:
        arrays = (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test)
        return sum(a.nbytes for a in arrays)


# --- IDX parsing --------------------------------------------------------------------------


def parse_idx(buf, name: str, kind: str) -> np.ndarray:
    """Check an IDX buffer completely and return its payload as uint8 (N, 28, 28) or (N,).

    `kind` is "images" or "labels". Checked: the magic number, the dimensions, that the
    length is exactly header + payload (truncated or trailing bytes are both faults) and,
    for labels, that every label is 0-9. `buf` may be bytes or a memory map; the result is
    a view of it, not a copy.
    """
    data = np.frombuffer(buf, dtype=np.uint8)
    magic, ndim = (IMAGE_MAGIC, 3) if kind == "images" else (LABEL_MAGIC, 1)
    header_len = 4 + 4 * ndim
    if data.size == 0:
        raise DataError(f"{name}: the file is empty")
    if data.size < header_len:
        raise DataError(f"{name}: only {data.size} bytes, too short for an IDX {kind} header")
    header = data[:header_len].view(">u4")
    if int(header[0]) != magic:
        raise DataError(
            f"{name}: wrong magic number {int(header[0])} (IDX {kind} files start with {magic}): "
            "not an MNIST file, or the wrong one"
        )
    dims = tuple(int(d) for d in header[1:])
    if kind == "images" and dims[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(f"{name}: images are {dims[1]}x{dims[2]}, MNIST images are 28x28")
    expected = header_len + int(np.prod(dims))
    if data.size < expected:
        raise DataError(f"{name}: truncated: {data.size} bytes, the header promises {expected}")
    if data.size > expected:
        raise DataError(f"{name}: {data.size - expected} unexpected bytes after the {dims[0]} {kind}")
    payload = data[header_len:].reshape(dims)
    if kind == "labels" and payload.size and int(payload.max()) > 9:
        bad = int(np.argmax(payload > 9))
        raise DataError(f"{name}: label {int(payload[bad])} at index {bad} is outside 0-9")
    return payload


def read_idx(path: Path, kind: str) -> np.ndarray:
    """Read and check one IDX file, gzip-compressed (by content, not name) or raw.

    A raw file is memory-mapped (fast, nothing copied); a .gz one is decompressed, once:
    its checked content is kept in the user's cache (nets.unpacked), and later reads
    memory-map that copy once it is verified.
    """
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
        if size == 0:
            raise DataError(f"{name}: the file is empty")
        with open(path, "rb") as f:
            head = f.read(2)
        if head == GZIP_MAGIC:
            copies = unpacked_dir()
            copy = unpacked.lookup(path, copies)
            if copy is not None:
                return parse_idx(copy, name, kind)
            with open(path, "rb") as f:
                buf = _gunzip(f, name)
            payload = parse_idx(buf, name, kind)
            unpacked.store(path, buf, copies)
            return payload
        elif path.suffix == ".gz":
            raise DataError(f"{name}: not a gzip file, though its name ends in .gz")
        else:
            if size > MAX_IDX_BYTES:
                raise DataError(f"{name}: {size} bytes, too large for MNIST")
            buf = np.memmap(path, dtype=np.uint8, mode="r")
    except OSError as exc:
        raise DataError(f"{name}: cannot read it ({exc.strerror or exc})") from None
    return parse_idx(buf, name, kind)


def _gunzip(fileobj, name: str) -> bytes:
    """Decompress a gzip stream, refusing corrupt data and anything larger than MNIST."""
    try:
        with gzip.GzipFile(fileobj=fileobj) as f:
            data = f.read(MAX_IDX_BYTES + 1)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{name}: corrupt or truncated gzip data ({exc})") from None
    if len(data) > MAX_IDX_BYTES:
        raise DataError(f"{name}: decompresses to more than {MAX_IDX_BYTES} bytes, too large for MNIST")
    return data


def _kind(file_name: str) -> str:
    return "images" if "images" in file_name else "labels"


# --- where the files are --------------------------------------------------------------------


def default_cache_dir() -> Path:
    """MNIST_CACHE_DIR, else $XDG_CACHE_HOME/mnist-dashboard, else ~/.cache/mnist-dashboard."""
    if os.environ.get("MNIST_CACHE_DIR"):
        return Path(os.environ["MNIST_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist-dashboard"


def unpacked_dir() -> Path | None:
    """Where decompressed copies of .gz files are kept: MNIST_UNPACKED_DIR ("off" for
    nowhere), else the "unpacked" folder of the cache directory (default_cache_dir)."""
    named = os.environ.get("MNIST_UNPACKED_DIR")
    if named:
        return None if named == "off" else Path(named)
    return default_cache_dir() / "unpacked"


def find_files(directory: Path) -> dict[str, Path]:
    """The MNIST files present in `directory`, raw preferred to .gz, keyed by base name."""
    found = {}
    for name in FILE_NAMES:
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                found[name] = candidate
                break
    return found


def read_directory(directory: Path) -> dict[str, np.ndarray]:
    """All four files of a directory, checked, and checked against each other."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: no such directory")
    found = find_files(directory)
    missing = [name for name in FILE_NAMES if name not in found]
    if missing:
        raise DataError(
            f"{directory}: has only {len(found)} of the 4 MNIST files; missing {', '.join(missing)} (raw or .gz)"
        )
    arrays = {name: read_idx(path, _kind(name)) for name, path in found.items()}
    for images, labels in ((TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)):
        n_images, n_labels = len(arrays[images]), len(arrays[labels])
        if n_images != n_labels:
            raise DataError(f"{found[labels].name}: {n_labels} labels for {n_images} images in {found[images].name}")
    if len(arrays[TRAIN_IMAGES]) <= VALIDATION_SIZE:
        raise DataError(
            f"{found[TRAIN_IMAGES].name}: {len(arrays[TRAIN_IMAGES])} images, "
            f"need more than the {VALIDATION_SIZE} held out for validation"
        )
    return arrays


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) -> float32 rows (N, 784) in [0, 1], like the notebook's x / 255."""
    return np.divide(images.reshape(len(images), -1), np.float32(255), dtype=np.float32)


def split(arrays: dict[str, np.ndarray], source: str = "") -> Mnist:
    """The notebook's split: the last 5,000 training images are validation. Read-only views."""
    x_all = to_float(arrays[TRAIN_IMAGES])
    y_all = arrays[TRAIN_LABELS].astype(np.int64)
    x_test = to_float(arrays[TEST_IMAGES])
    y_test = arrays[TEST_LABELS].astype(np.int64)
    for a in (x_all, y_all, x_test, y_test):
        a.flags.writeable = False
    cut = len(x_all) - VALIDATION_SIZE
    return Mnist(x_all[:cut], y_all[:cut], x_all[cut:], y_all[cut:], x_test, y_test, source)


def load_mnist(
    data_dir: str | Path | None = None,
    *,
    cache_dir: str | Path | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    checksums: dict[str, str] = SHA256,
    timeout: float = 30.0,
    progress: ProgressCallback | None = None,
) -> Mnist:
    """MNIST from the first source that has it: `data_dir` or MNIST_DIR, the cache, a download.

    An explicit directory is used as it is, or fails: it never silently falls back to
    another source. Raises DataError with one line saying what was tried.
    """
    data_dir = data_dir or os.environ.get("MNIST_DIR") or None
    if data_dir:
        return split(read_directory(Path(data_dir)), source=f"directory {data_dir}")
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    if len(find_files(cache)) == len(FILE_NAMES):
        return split(read_directory(cache), source=f"cache {cache}")
    if not download:
        raise DataError(
            f"MNIST not found in the cache {cache} and downloading is off; "
            "set MNIST_DIR (or --data-dir) to a directory holding the four files"
        )
    download_mnist(cache, mirrors=mirrors, checksums=checksums, timeout=timeout, progress=progress)
    return split(read_directory(cache), source=f"cache {cache} (downloaded)")


def install_files(files: dict[str, bytes], cache_dir: str | Path | None = None) -> list[str]:
    """Check uploaded MNIST files and put them in the cache; returns the base names installed.

    `files` maps a file name as uploaded (e.g. "t10k-labels-idx1-ubyte.gz", raw or gzip) to
    its bytes. Every file is checked completely, and pairs uploaded together are checked
    against each other, before anything is written: one bad file and nothing is cached.
    """
    checked: dict[str, bytes] = {}
    for upload_name, content in files.items():
        base = Path(upload_name).name.removesuffix(".gz")
        if base not in FILE_NAMES:
            expected = ", ".join(FILE_NAMES)
            raise DataError(f"{upload_name}: not an MNIST file name (expected one of {expected}, raw or .gz)")
        if content[:2] == GZIP_MAGIC:
            content = _gunzip(io.BytesIO(content), upload_name)
        parse_idx(content, upload_name, _kind(base))
        checked[base] = content
    for images, labels in ((TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)):
        if images in checked and labels in checked:
            n_images = len(parse_idx(checked[images], images, "images"))
            n_labels = len(parse_idx(checked[labels], labels, "labels"))
            if n_images != n_labels:
                raise DataError(f"{labels}: {n_labels} labels for {n_images} images in {images}")
    cache = _writable_cache(Path(cache_dir) if cache_dir else default_cache_dir())
    for base, content in checked.items():
        part = None
        try:
            with _local_write(cache, base):
                with tempfile.NamedTemporaryFile(dir=cache, prefix=f".{base}.", suffix=".part", delete=False) as f:
                    part = Path(f.name)
                    f.write(content)
                os.replace(part, cache / base)
            part = None
        finally:
            if part is not None:
                part.unlink(missing_ok=True)  # a full disk leaves no half file behind
    return sorted(checked)


def _writable_cache(cache: Path) -> Path:
    try:
        cache.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=cache, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as exc:
        raise DataError(
            f"cannot write to the cache directory {cache} ({exc.strerror or exc}); "
            "set MNIST_CACHE_DIR to a writable directory, or MNIST_DIR to the files"
        ) from None
    return cache


# --- download -------------------------------------------------------------------------------


def mirrors_from_env() -> tuple[str, ...]:
    """MNIST_MIRRORS (comma-separated base URLs, e.g. an internal mirror), else the public ones."""
    named = [m.strip() for m in os.environ.get("MNIST_MIRRORS", "").split(",") if m.strip()]
    return tuple(named) or MIRRORS


def download_mnist(
    cache_dir: str | Path,
    *,
    mirrors: Sequence[str] | None = None,
    checksums: dict[str, str] = SHA256,
    timeout: float = 30.0,
    progress: ProgressCallback | None = None,
    wait: bool = True,
    deadline: float = DEADLINE,
    min_rate: float = MIN_RATE,
) -> Path:
    """Fetch every file missing from `cache_dir`, trying each mirror in turn.

    Each file is decompressed as it arrives into a temporary file in the cache directory
    (refused the moment it grows past the official file's size), its SHA-256 compared
    with `checksums`, its IDX structure checked, and only then renamed into place: an
    interrupted or corrupt download never leaves a file that looks valid. Each file has
    `deadline` seconds in all and, after the first `timeout` seconds, must arrive at
    `min_rate` bytes a second on average. One download at a time per cache directory:
    with `wait` False, a download already under way elsewhere (another session, another
    process) raises DownloadBusy at once instead of waiting for it. Raises DataError
    listing every mirror's failure when a file cannot be had, and at once (no other
    mirror tried) when the cache directory cannot take the file (a full disk).
    """
    cache = _writable_cache(Path(cache_dir))
    mirrors = mirrors_from_env() if mirrors is None else mirrors
    limits = _Limits(timeout, deadline, min_rate)
    with _download_lock(cache, wait):
        present = find_files(cache)  # looked at under the lock: another download may have just finished
        for name in FILE_NAMES:
            if name in present:
                continue
            failures, unreachable = [], True
            for mirror in mirrors:
                url = mirror.rstrip("/") + f"/{name}.gz"
                try:
                    _fetch_verified(url, cache / name, name, checksums[name], limits, progress)
                    break
                except CacheWriteError:
                    raise
                except (DataError, OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as exc:
                    failures.append(f"{url}: {_reason(exc)}")
                    unreachable &= _unreachable(exc)
            else:
                raise DataError(download_failure(name, cache, failures, unreachable))
    return cache


class DownloadBusy(DataError):
    """Another session or process is downloading MNIST into the same cache right now."""


class CacheWriteError(DataError):
    """The cache directory could not take a file (a full disk, say): no mirror can help."""


@dataclass(frozen=True)
class _Limits:
    timeout: float  # seconds for the connection and for each read; also the grace before `min_rate` counts
    deadline: float  # seconds for the whole file
    min_rate: float  # bytes a second, on average, after the first `timeout` seconds


def download_under_way(cache_dir: str | Path) -> bool:
    """Whether a download into `cache_dir` runs now (in this process or another)."""
    try:
        with _download_lock(Path(cache_dir), wait=False):
            return False
    except DownloadBusy:
        return True
    except OSError:  # no cache directory yet: nothing downloads into it
        return False


@contextlib.contextmanager
def _download_lock(cache: Path, wait: bool):
    """Hold the cache directory's download lock: flock on the directory itself (no lock
    file to leave behind), released when its holder closes it or dies."""
    if fcntl is None:  # no flock here (Windows): downloads are not serialised
        yield
        return
    handle = os.open(cache, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise DownloadBusy(
                f"MNIST is being downloaded into {cache} by another session or process; "
                "it will be used as soon as it is complete"
            ) from None
        yield
    finally:
        os.close(handle)  # releases the lock


def download_failure(name: str, cache: Path, failures: Sequence[str], unreachable: bool) -> str:
    """One line: what failed, what to do, then what was tried ("url: reason; ...").

    The dashboard shows the part before " Tried: " and lists the attempts under it.
    """
    why = "no mirror could be reached (no network?)" if unreachable else "every mirror failed"
    return (
        f"could not download {name}: {why}. Put the four MNIST files (raw or .gz) in a directory and "
        f"set MNIST_DIR to it, or copy them into the cache {cache}.{TRIED}{'; '.join(failures)}"
    )


TRIED = " Tried: "  # where the attempts start in a download failure's message


def _unreachable(exc: BaseException) -> bool:
    """The mirror never answered (no route, no name, refused, timed out): no network, likely."""
    if isinstance(exc, urllib.error.HTTPError):
        return False
    return isinstance(exc, (urllib.error.URLError, TimeoutError, ConnectionError))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, DataError):
        return str(exc).split(": ", 1)[-1]
    return str(exc) or type(exc).__name__


def _fetch_verified(
    url: str, target: Path, name: str, sha256: str, limits: _Limits, progress: ProgressCallback | None
) -> None:
    """Download url (a .gz), decompressing as it arrives, verify, and atomically rename to `target`."""
    part = None
    watchdog = _Watchdog(limits.deadline)
    start = time.monotonic()
    try:
        with _local_write(target.parent, name):
            out = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{name}.", suffix=".part", delete=False)
            part = Path(out.name)
        with out, watchdog.open(url, limits.timeout) as response:
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            inflate = _Inflate(out, target.parent, name, min(SIZES.get(name, MAX_IDX_BYTES), MAX_IDX_BYTES))
            read = getattr(response, "read1", response.read)  # read1: whatever has arrived, not 64 KB or the end
            done = 0
            while chunk := read(1 << 16):
                done += len(chunk)
                if done > MAX_IDX_BYTES:
                    raise DataError(f"{name}: more than {MAX_IDX_BYTES} bytes, not an MNIST file")
                inflate.feed(chunk)
                if progress:
                    progress(name, done, total)
                elapsed = time.monotonic() - start
                if elapsed > limits.timeout and done < limits.min_rate * elapsed:
                    raise DataError(
                        f"{name}: too slow: {done:,} bytes in {elapsed:.1f} s, "
                        f"under the {limits.min_rate:,.0f} bytes a second needed"
                    )
            watchdog.check(name)
            if total is not None and done != total:
                raise DataError(f"{name}: transfer interrupted after {done} of {total} bytes")
            inflate.finish()
        if inflate.digest.hexdigest() != sha256:
            got = inflate.digest.hexdigest()
            raise DataError(f"{name}: SHA-256 mismatch (got {got[:12]}..., want {sha256[:12]}...)")
        read_idx(part, _kind(name))  # structure, too, before it is given the real name
        with _local_write(target.parent, name):
            os.replace(part, target)
        part = None
    except (OSError, http.client.HTTPException, urllib.error.URLError, ValueError):
        watchdog.check(name)  # a connection cut by the deadline reads as the deadline
        raise
    finally:
        watchdog.cancel()
        if part is not None:
            part.unlink(missing_ok=True)


@contextlib.contextmanager
def _local_write(cache: Path, name: str):
    """OSError while writing into the cache -> CacheWriteError, with what to do about it."""
    try:
        yield
    except OSError as exc:
        full = " (the disk is full)" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        raise CacheWriteError(
            f"cannot write {name} into the cache directory {cache}: {exc.strerror or exc}{full}; "
            "free some space, or set MNIST_CACHE_DIR to a directory with room for 55 MB"
        ) from None


class _Inflate:
    """gzip bytes in, the decompressed file out (written and hashed as it comes), refused
    the moment it would grow past `limit`: a decompression bomb stops where MNIST ends."""

    def __init__(self, out, cache: Path, name: str, limit: int):
        self.out, self.cache, self.name, self.limit = out, cache, name, limit
        self.stream = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)  # gzip framing
        self.digest = hashlib.sha256()
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        data = chunk
        while data:
            if self.stream.eof:
                raise DataError(f"{self.name}: unexpected data after the end of the gzip stream")
            try:
                piece = self.stream.decompress(data, self.limit - self.size + 1)
            except zlib.error as exc:
                raise DataError(f"{self.name}: the response is not valid gzip data ({exc})") from None
            self.size += len(piece)
            if self.size > self.limit:
                raise DataError(f"{self.name}: decompresses to more than {self.limit} bytes, more than MNIST's file")
            with _local_write(self.cache, self.name):
                self.out.write(piece)
            self.digest.update(piece)
            data = self.stream.unconsumed_tail or self.stream.unused_data

    def finish(self) -> None:
        if not self.stream.eof:
            raise DataError(f"{self.name}: the response is not valid gzip data (it ends before the gzip stream)")
        with _local_write(self.cache, self.name):
            self.out.flush()
            os.fsync(self.out.fileno())


class _Watchdog:
    """One file's deadline over everything its download does: connecting, the headers, the
    body. Per-read timeouts alone let a mirror that sends a byte now and then hold a
    download for ever; when the deadline passes, this shuts the file's connections down,
    which ends any read in progress."""

    def __init__(self, deadline: float):
        self.deadline, self.expired = deadline, False
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.timer = threading.Timer(deadline, self._expire)
        self.timer.daemon = True

    def open(self, url: str, timeout: float):
        self.timer.start()
        return _opener(self._watch).open(url, timeout=timeout)

    def _watch(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.append(sock)
            expired = self.expired
        if expired:
            self._shut(sock)

    def _expire(self) -> None:
        with self.lock:
            self.expired = True
            sockets = list(self.sockets)
        for sock in sockets:
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def check(self, name: str) -> None:
        if self.expired:
            raise DataError(f"{name}: not complete after {self.deadline:g} s, the limit for one file")

    def cancel(self) -> None:
        self.timer.cancel()


def _opener(watch) -> urllib.request.OpenerDirector:
    """urllib's opener, whose HTTP and HTTPS connections hand their sockets to `watch`."""

    def connection(base):
        class Watched(base):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                create = self._create_connection

                def create_and_watch(*a, **k):
                    sock = create(*a, **k)
                    watch(sock)
                    return sock

                self._create_connection = create_and_watch

        return Watched

    http_connection, https_connection = connection(http.client.HTTPConnection), connection(http.client.HTTPSConnection)

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(http_connection, req)

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(https_connection, req, context=self._context)

    return urllib.request.build_opener(HTTP, HTTPS)
