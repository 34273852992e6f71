"""Decompressed copies of .gz MNIST files (nets.unpacked): used when verified, rebuilt otherwise."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_idx_files, write_mnist_dir

import nets.data
from nets.data import FILE_NAMES, TRAIN_IMAGES, DataError, load_mnist, read_directory

FILES = synthetic_idx_files(n_train=5010, n_test=30)


@pytest.fixture
def copies(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "unpacked"
    monkeypatch.setenv("MNIST_UNPACKED_DIR", str(root))
    return root


@pytest.fixture
def gz_dir(tmp_path) -> Path:
    return write_mnist_dir(tmp_path / "mnist", FILES)


def inflations(monkeypatch) -> list[str]:
    """The names of the .gz files nets.data inflates from now on."""
    seen = []
    real = nets.data._gunzip

    def counting(fileobj, name):
        seen.append(name)
        return real(fileobj, name)

    monkeypatch.setattr(nets.data, "_gunzip", counting)
    return seen


def copy_of(root: Path, name: str) -> Path:
    (found,) = [p for p in root.iterdir() if p.name.endswith(f"-{name}")]
    return found


def test_the_second_read_uses_the_verified_copy(gz_dir, copies, monkeypatch):
    first = read_directory(gz_dir)
    assert sorted(p.name.split("-", 1)[1] for p in copies.iterdir() if not p.name.endswith(".json")) == sorted(
        FILE_NAMES
    )
    seen = inflations(monkeypatch)
    second = read_directory(gz_dir)
    assert seen == []  # nothing inflated
    for name in FILE_NAMES:
        np.testing.assert_array_equal(first[name], second[name])
        base = second[name].base
        assert isinstance(base, np.memmap) or isinstance(getattr(base, "base", None), np.memmap)  # mapped, not read
    assert copy_of(copies, TRAIN_IMAGES).read_bytes() == FILES[TRAIN_IMAGES]


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(p.read_bytes()[:-1] + b"\x01"),  # one byte changed, same length
        lambda p: p.write_bytes(p.read_bytes()[:1000]),  # cut short
        lambda p: p.unlink(),  # gone
        lambda p: p.with_name(p.name + ".json").write_text("{not json"),  # its record damaged
        lambda p: p.with_name(p.name + ".json").write_text("[" * 100_000),  # a hostile record
    ],
    ids=["flipped", "truncated", "missing", "bad-record", "deep-record"],
)
def test_a_damaged_copy_is_rebuilt_never_trusted(gz_dir, copies, monkeypatch, damage):
    read_directory(gz_dir)
    damage(copy_of(copies, TRAIN_IMAGES))
    seen = inflations(monkeypatch)
    arrays = read_directory(gz_dir)
    assert seen == [f"{TRAIN_IMAGES}.gz"]  # that one file inflated again, the others taken from their copies
    assert arrays[TRAIN_IMAGES].tobytes() == FILES[TRAIN_IMAGES][16:]
    assert copy_of(copies, TRAIN_IMAGES).read_bytes() == FILES[TRAIN_IMAGES]  # and its copy rebuilt


def test_a_changed_gz_file_is_read_again(gz_dir, copies, monkeypatch):
    read_directory(gz_dir)
    other = synthetic_idx_files(n_train=5010, n_test=30, seed=7)[TRAIN_IMAGES]
    (gz_dir / f"{TRAIN_IMAGES}.gz").write_bytes(gzip.compress(other, compresslevel=1))
    os.utime(gz_dir / f"{TRAIN_IMAGES}.gz", ns=(1, 1))  # even with an old modification time: the size differs
    seen = inflations(monkeypatch)
    assert read_directory(gz_dir)[TRAIN_IMAGES].tobytes() == other[16:]
    assert seen == [f"{TRAIN_IMAGES}.gz"]


def test_a_copy_is_never_taken_for_another_folder(gz_dir, copies, tmp_path, monkeypatch):
    read_directory(gz_dir)
    elsewhere = write_mnist_dir(tmp_path / "fashion", synthetic_idx_files(n_train=5010, n_test=30, seed=3))
    seen = inflations(monkeypatch)
    read_directory(elsewhere)
    assert sorted(seen) == sorted(f"{name}.gz" for name in FILE_NAMES)


def test_a_bad_gz_file_is_refused_and_nothing_kept(tmp_path, copies):
    files = dict(FILES)
    files[TRAIN_IMAGES] = files[TRAIN_IMAGES][:-5]  # truncated IDX inside valid gzip
    folder = write_mnist_dir(tmp_path / "bad", files)
    with pytest.raises(DataError, match="truncated"):
        read_directory(folder)
    assert not copies.exists() or not any(p.name.endswith(f"-{TRAIN_IMAGES}") for p in copies.iterdir())


def test_a_cache_that_cannot_be_written_costs_only_the_speed(gz_dir, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("MNIST_UNPACKED_DIR", str(blocker / "unpacked"))
    assert len(load_mnist(gz_dir).x_train) == 10


def test_off_keeps_no_copy(gz_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_UNPACKED_DIR", "off")
    before = set(tmp_path.rglob("*"))
    read_directory(gz_dir)
    assert set(tmp_path.rglob("*")) == before


def test_the_default_place_is_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("MNIST_UNPACKED_DIR", raising=False)
    monkeypatch.delenv("MNIST_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert nets.data.unpacked_dir() == tmp_path / "mnist-dashboard" / "unpacked"


def test_old_copies_are_pruned(tmp_path, copies, monkeypatch):
    monkeypatch.setattr("nets.unpacked.KEEP", 4)
    for i in range(3):
        folder = tmp_path / f"set-{i}"
        shutil.copytree(write_mnist_dir(tmp_path / "src", FILES), folder)
        read_directory(folder)
    assert len(list(copies.glob("*.json"))) == 4 and len([p for p in copies.iterdir() if p.suffix != ".json"]) == 4


def test_a_full_disk_while_keeping_a_copy_leaves_no_part_file(gz_dir, copies, monkeypatch):
    """ENOSPC while writing a copy: the data still loads (from the .gz), and no half copy stays."""
    import errno
    import tempfile

    real = tempfile.NamedTemporaryFile

    class Full:
        def __init__(self, *args, **kwargs):
            self.f = real(*args, **kwargs)
            self.name = self.f.name

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr("nets.unpacked.tempfile.NamedTemporaryFile", Full)
    assert len(load_mnist(gz_dir).x_train) == 10
    assert list(copies.iterdir()) == []
