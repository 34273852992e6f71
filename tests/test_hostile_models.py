"""Crafted model files and bundles: every failure to read one is a ModelFileError with its true reason.

Each file here is built to break one step of reading (issue 13): a header that declares
an enormous shape, JSON nested 100,000 levels deep, an encrypted member, a compression
method no model file uses, a header past NumPy's 10,000-byte limit, junk in front of a
valid archive. Before the fix each one escaped as MemoryError, RecursionError,
RuntimeError, NotImplementedError or was blamed on "pickled data".
"""

import io
import json
import struct
import zipfile

import numpy as np
import pytest

from nets.bundle import read_bundle
from nets.checkpoint import ModelFileError, load_model, model_bytes
from nets.config import TrainConfig
from nets.two_layer_net import TwoLayerNet

CONFIG = TrainConfig(hidden_size=16, seed=3)
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture(scope="module")
def good() -> bytes:
    return model_bytes(TwoLayerNet.from_config(CONFIG), CONFIG, {"test_acc": 0.5})


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npy_header(header: dict, payload: bytes = b"", pad_to: int = 0) -> bytes:
    """An .npy member declaring `header` (its shape, dtype) over `payload`, written by hand."""
    text = repr(header).encode("latin1")
    text = text + b" " * max(0, pad_to - len(text)) + b"\n"
    if len(text) < 65536:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(text)) + text + payload


def replaced(data: bytes, **members: bytes) -> bytes:
    """A copy of model file `data` with some members' bytes replaced (or added)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            key = info.filename.removesuffix(".npy")
            dst.writestr(info, members.pop(key) if key in members else src.read(info))
        for key, content in members.items():
            dst.writestr(f"{key}.npy", content)
    return out.getvalue()


def patched_member(data: bytes, member: str, flag_bits: int | None = None, method: int | None = None) -> bytes:
    """`data` with one member's general-purpose flags or compression method changed in both
    its local header and its central directory entry (what a crafted archive would say)."""
    raw = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(member)
    local = info.header_offset
    central = raw.index(b"PK\x01\x02")  # the central directory's entries: find ours by its name
    while raw[central + 46 : central + 46 + len(member)] != member.encode():
        central = raw.index(b"PK\x01\x02", central + 4)
    for offset, field in ((local + 6, central + 8), (local + 8, central + 10)):
        value = flag_bits if offset == local + 6 else method
        if value is not None:
            raw[offset : offset + 2] = raw[field : field + 2] = struct.pack("<H", value)
    return bytes(raw)


def refused(data: bytes, message: str, reader=load_model) -> str:
    with pytest.raises(ModelFileError) as info:
        reader(data, name="up.npz")
    text = str(info.value)
    assert text.startswith("up.npz: ") and message in text and "\n" not in text, text
    return text


def test_a_header_declaring_a_huge_shape_allocates_nothing(good):
    huge = npy_header({"descr": "<f4", "fortran_order": False, "shape": (10**9, 10**9)}, payload=bytes(64))
    refused(replaced(good, W1=huge), "W1 has shape (1000000000, 1000000000), the config (hidden_size 16) needs")


def test_a_header_whose_shape_matches_but_whose_data_is_missing(good):
    short = npy_header({"descr": "<f4", "fortran_order": False, "shape": (784, 16)}, payload=bytes(64))
    refused(replaced(good, W1=short), "W1 declares (784, 16) float32 (50,176 bytes) but holds 64 bytes")


def test_a_text_array_declaring_a_gigantic_string_allocates_nothing(good):
    huge = npy_header({"descr": "<U100000000", "fortran_order": False, "shape": ()}, payload=b"{\0\0\0}\0\0\0")
    refused(replaced(good, meta=huge), "meta declares () <U100000000 (400,000,000 bytes) but holds 8 bytes")


@pytest.mark.parametrize("member", ["config", "meta"])
def test_json_nested_100000_levels_is_refused_with_its_depth(good, member):
    refused(replaced(good, **{member: npy(np.array(DEEP))}), f"{member}: JSON nested 100000 levels deep")


def test_an_encrypted_member_is_refused(good):
    refused(patched_member(good, "W2.npy", flag_bits=0x1), "member 'W2.npy' is encrypted; model files never are")


@pytest.mark.parametrize("method", [9, 12, 99])  # deflate64 (Python cannot read it), bzip2, unassigned
def test_a_compression_method_no_model_file_uses_is_refused(good, method):
    refused(patched_member(good, "b1.npy", method=method), f"member 'b1.npy' uses compression method {method}")


def test_a_header_longer_than_numpys_limit_says_so_not_pickled_data(good):
    long = npy_header({"descr": "<f4", "fortran_order": False, "shape": (16,)}, bytes(64), pad_to=20_000)
    text = refused(replaced(good, b1=long), "b1 has a 20,001-byte array header, over NumPy's limit of 10,000")
    assert "pickled" not in text


def test_junk_in_front_of_a_valid_model_says_so_not_pickled_data(good):
    assert load_model(good).config == CONFIG  # the same file without the junk loads
    text = refused(bytes(1024) + good, "1,024 bytes of something else in front of the zip archive")
    assert "pickled" not in text


def test_object_arrays_are_still_called_pickled_data(good):
    refused(replaced(good, meta=npy_object()), "meta holds object arrays (pickled data), which are never loaded")


def npy_object() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "member, reason",
    [
        (npy_header({"descr": "<f4", "fortran_order": False, "shape": "(16,"}, bytes(64)), "malformed array header"),
        (b"\x93NUMPY\x07\x00" + bytes(20), "format version 7, which model files never use"),
        (b"\x93NUMPY", "b1 is not a NumPy array"),
    ],
    ids=["bad-shape", "version-7", "cut-short"],
)
def test_malformed_npy_headers_are_named(good, member, reason):
    refused(replaced(good, b1=member), reason)


def test_a_corrupt_member_is_a_model_file_error_too(good):
    """Below the specific checks, any failure of reading (here a bad CRC) is still a one-line refusal."""
    raw = bytearray(good)
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        info = archive.getinfo("W1.npy")
    raw[info.header_offset + 30 + len("W1.npy") + 200] ^= 0xFF  # a byte of W1's data
    refused(bytes(raw), "not a readable model file (Bad CRC-32 for file 'W1.npy')")


def test_json_a_little_too_deep_is_refused_too(good):
    """Nine levels: parsed fine by Python, but deeper than anything this app writes."""
    nine = json.dumps([[[[[[[[[1]]]]]]]]])
    refused(replaced(good, meta=npy(np.array(nine))), "meta: JSON nested 9 levels deep, more than the 8 allowed")


def bundle_with(good: bytes, **members: bytes) -> bytes:
    run = npy(np.array(json.dumps({"name": "x", "status": "finished"})))
    base = {"run": run, "history": npy(np.array("[]")), "trace": npy(np.array("[]"))}
    return replaced(good, **{**base, **members})


@pytest.mark.parametrize(
    "member, content, message",
    [
        ("history", npy(np.array(DEEP)), "history: JSON nested 100000 levels deep"),
        ("trace", npy_header({"descr": "<U9", "fortran_order": False, "shape": (10**12,)}), "trace must be a JSON"),
        ("run", npy_header({"descr": "<U1", "fortran_order": False, "shape": ()}, bytes(4), 20_000), "over NumPy's"),
    ],
    ids=["deep-history", "huge-trace", "long-header"],
)
def test_a_bundle_is_read_with_the_same_checks(good, member, content, message):
    assert read_bundle(bundle_with(good), name="up.npz").name == "x"  # the untouched bundle reads
    refused(bundle_with(good, **{member: content}), message, reader=read_bundle)


def test_a_bundle_with_an_encrypted_history_is_refused(good):
    data = patched_member(bundle_with(good), "history.npy", flag_bits=0x1)
    refused(data, "member 'history.npy' is encrypted", reader=read_bundle)


def test_the_train_page_refuses_a_crafted_upload_in_one_line(
    good, monkeypatch, synthetic_dir, tmp_path, steady_apptest
):
    """The whole path: a crafted file uploaded on the Train page gives 'Not loaded' and no traceback."""
    import streamlit as st
    from conftest import ROOT
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MNIST_DIR", str(synthetic_dir))
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MNIST_RUNS_DIR", str(tmp_path / "runs"))
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
        at.run()
        at.switch_page("pages/train.py")
        at.run()
        crafted = replaced(good, config=npy(np.array(DEEP)))
        at.file_uploader(key="train_model_upload").upload("deep.npz", crafted).run()
        assert not at.exception
        errors = " | ".join(str(e.value) for e in at.error)
        assert "Not loaded, nothing changed: deep.npz: config: JSON nested 100000 levels deep" in errors, errors
        assert not at.dataframe  # no run was added
    finally:
        st.cache_resource.clear()


@pytest.mark.parametrize(
    "count, message",
    [(60_000, "60,000 members in its zip archive; a model file has at most 32"), (0xFFFF, "a ZIP64 archive")],
)
def test_an_archive_declaring_thousands_of_members_is_refused_before_its_directory_is_read(good, count, message):
    """Python parses a zip's directory into an object per member: 300,000 empty members (a
    26 MB upload) took 6.5 s and 200 MB before anything was checked. The end record's count
    is read first (here patched into a real model file: the same refusal, without the build)."""
    end = good.rindex(b"PK\x05\x06")
    crafted = good[: end + 8] + struct.pack("<HH", count, count) + good[end + 12 :]
    assert zipfile.is_zipfile(io.BytesIO(crafted))
    refused(crafted, message)
