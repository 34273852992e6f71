"""Model files: one .npz with the four weight arrays, the config as JSON and a little metadata.

Loading never unpickles: the zip is inspected first (names, sizes), arrays are read with
allow_pickle=False, the config is validated, the net is rebuilt from it and only then are
the arrays, checked for shape, dtype and finiteness, put into it.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nets import safejson
from nets.config import ConfigError, TrainConfig
from nets.optimizers import state_names
from nets.two_layer_net import PARAM_NAMES, TwoLayerNet

FORMAT = "mnist-dashboard/two-layer-net"
FORMAT_VERSION = 1
MAX_MODEL_BYTES = 64 * 1024 * 1024  # a 4096-unit float64 net is about 26 MB
# Adam keeps two arrays per weight array: a file that continues a run may hold three nets' worth.
MAX_FILE_BYTES = 3 * MAX_MODEL_BYTES
REQUIRED = {*PARAM_NAMES, "config"}
OPTIONAL = {"meta"}
OPTIMIZER_PREFIX = "optimizer_"  # arrays of the optimiser's state (momentum, Adam moments), to continue a run
MAX_JSON_BYTES = 1024 * 1024  # config and meta: a few hundred characters in the files this app writes
MAX_JSON_DEPTH = 8  # the deepest JSON this app writes (a bundle's history: a list of objects) has 2 levels
MAX_HEADER_BYTES = 10_000  # NumPy's own limit for an .npy header read without trusting the file
NPY_MAGIC = b"\x93NUMPY"
MAX_MEMBERS = 32  # a bundle with Adam's state has 18 (4 weights, config, meta, 9 optimizer arrays, 3 run arrays)


class ModelFileError(ValueError):
    """A model file was refused; the one-line message says why."""


@dataclass
class LoadedModel:
    net: TwoLayerNet
    config: TrainConfig
    meta: dict = field(default_factory=dict)  # e.g. test_acc, epochs trained, when saved
    optimizer_state: dict = field(default_factory=dict)  # Optimizer.state() when saved with it, else empty


def _text_array(obj) -> np.ndarray:
    """JSON as a 0-d unicode array: readable with allow_pickle=False, unlike an object array."""
    return np.array(json.dumps(obj, sort_keys=True))


HALF = np.dtype(np.float16)  # a float32 net's weights may be stored in half precision (half the bytes)


def save_model(
    target,
    net: TwoLayerNet,
    config: TrainConfig,
    meta: dict | None = None,
    optimizer_state: dict | None = None,
    half: bool = False,
) -> None:
    """Write `net` and `config` to `target` (a path or a binary file object), with the
    optimiser's state when given (a run can then be continued exactly). With `half`, a
    float32 net's four weight arrays are stored as float16 and read back as float32: a model
    to ship or send, at the cost of rounding each weight to 11 significant bits.

    A path is written exactly as given (no ".npz" added), through a temporary file beside
    it that is renamed into place once complete: a full disk or an interruption raises
    OSError and leaves no half file under that name, nor any temporary one.
    """
    meta = {"format": FORMAT, "version": FORMAT_VERSION, **(meta or {})}
    arrays = {name: net.params[name] for name in PARAM_NAMES}
    if half:
        if net.dtype != np.float32 or optimizer_state:
            raise ValueError("only a float32 net's weights, without optimiser state, are stored in half precision")
        with np.errstate(over="ignore"):  # an overflow becomes inf, refused just below
            arrays = {name: array.astype(HALF) for name, array in arrays.items()}
        if not all(np.isfinite(array).all() for array in arrays.values()):
            raise ValueError("a weight is beyond float16's range: store this net in float32")
    arrays.update({OPTIMIZER_PREFIX + key: value for key, value in (optimizer_state or {}).items()})
    arrays.update(config=_text_array(config.to_dict()), meta=_text_array(meta))
    if not isinstance(target, (str, os.PathLike)):
        np.savez(target, **arrays)
        return
    path = Path(target)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False) as f:
        part = Path(f.name)
    try:
        with open(part, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


def model_bytes(net: TwoLayerNet, config: TrainConfig, meta: dict | None = None) -> bytes:
    """The model file's bytes, for a download button."""
    buffer = io.BytesIO()
    save_model(buffer, net, config, meta)
    return buffer.getvalue()


def load_model(source, name: str | None = None) -> LoadedModel:
    """Read a model file from a path, bytes or a binary file object; refuse anything odd.

    Raises ModelFileError with a one-line message naming the file and the fault.
    """
    if isinstance(source, (str, Path)):
        name = name or Path(source).name
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise ModelFileError(f"{name}: cannot read it ({exc.strerror or exc})") from None
    elif isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        data = source.read()
    name = name or "model file"
    return guarded(name, lambda: read_archive(data, name)[0])


def guarded(name: str, read):
    """`read()`, with any failure of reading a file turned into a ModelFileError.

    The checks below refuse every fault they know with its own reason; this is the net
    under them, so that no exception (a MemoryError, a RecursionError, a library's
    surprise) ever reaches a page as a traceback. Its reason is still one true line.
    """
    try:
        return read()
    except ModelFileError:
        raise
    except MemoryError:
        raise ModelFileError(f"{name}: too large to read here (out of memory)") from None
    except Exception as exc:  # noqa: BLE001 (the net under the specific checks, see above)
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ModelFileError(f"{name}: not a readable model file ({reason})") from None


def open_archive(data: bytes, name: str, what: str = "an .npz model file") -> zipfile.ZipFile:
    """The zip archive in `data`, once its directory shows nothing a model file never has.

    Refused before any member is read: no zip, other data in front of the archive (a
    file this app writes starts with it), encrypted members, compression methods other
    than stored and deflated (what np.savez and np.savez_compressed write), a name twice.
    """
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ModelFileError(f"{name}: not {what} (expected a zip archive of arrays)")
    members = _member_count(data)
    if members is None:
        raise ModelFileError(
            f"{name}: a ZIP64 archive (65,535 members or more); a model file has at most {MAX_MEMBERS}"
        )
    if members > MAX_MEMBERS:
        raise ModelFileError(f"{name}: {members:,} members in its zip archive; a model file has at most {MAX_MEMBERS}")
    archive = zipfile.ZipFile(io.BytesIO(data))
    infos = archive.infolist()
    front = min((info.header_offset for info in infos), default=0)
    if front > 0:
        raise ModelFileError(
            f"{name}: {front:,} bytes of something else in front of the zip archive; not {what} as this app writes it"
        )
    seen = set()
    for info in infos:
        if info.flag_bits & 0x1:
            raise ModelFileError(f"{name}: member {info.filename!r} is encrypted; model files never are")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelFileError(
                f"{name}: member {info.filename!r} uses compression method {info.compress_type}; "
                "model files are stored or deflated"
            )
        if info.filename in seen:
            raise ModelFileError(f"{name}: member {info.filename!r} appears twice")
        seen.add(info.filename)
    return archive


def _member_count(data: bytes) -> int | None:
    """How many members the zip's end record declares (None: it defers to a ZIP64 record, as
    an archive of 65,535 members or more does), read before the directory is parsed: Python
    builds an object per member, and 300,000 empty ones (26 MB) took 6.5 s and 200 MB."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))  # the end record: 22 bytes + a comment
    if end < 0 or len(data) < end + 12:
        return 0  # zipfile found an archive anyway: let it speak
    count = int.from_bytes(data[end + 10 : end + 12], "little")
    return None if count == 0xFFFF else count


def read_archive(
    data: bytes, name: str, extras: tuple[str, ...] = (), extras_limit: int = 0
) -> tuple[LoadedModel, dict]:
    """The model in a model file's bytes, and the JSON values of the `extras` it holds
    (the arrays a run bundle adds, at most `extras_limit` bytes together), all checked."""
    if len(data) > MAX_FILE_BYTES + extras_limit:
        raise ModelFileError(f"{name}: {len(data)} bytes, larger than any model this app makes")
    with open_archive(data, name) as archive:
        members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
        extra = {key: members.pop(key) for key in extras if key in members}
        optimizer = sum(info.file_size for key, info in members.items() if key.startswith(OPTIMIZER_PREFIX))
        weights = sum(info.file_size for info in members.values()) - optimizer
        if weights > MAX_MODEL_BYTES or optimizer > 2 * MAX_MODEL_BYTES:
            raise ModelFileError(f"{name}: its arrays would take more than {MAX_FILE_BYTES} bytes")
        if sum(info.file_size for info in extra.values()) > extras_limit:
            raise ModelFileError(f"{name}: its history would take more than {extras_limit} bytes")
        missing = sorted(REQUIRED - set(members))
        unknown = sorted(n for n in set(members) - REQUIRED - OPTIONAL if not n.startswith(OPTIMIZER_PREFIX))
        if missing:
            raise ModelFileError(f"{name}: missing array {missing[0]!r} (a model file holds W1, b1, W2, b2, config)")
        if unknown:
            raise ModelFileError(f"{name}: unexpected array {unknown[0]!r}")
        member = _Members(archive, name)
        loaded = _model(member, members, name)
        return loaded, {key: member.json(info, key, extras_limit // 4) for key, info in extra.items()}


def _model(member: _Members, members: dict, name: str) -> LoadedModel:
    """The config first (it says what every array must be), then each array checked
    against it from its header, before its data is read."""
    try:
        config = TrainConfig.from_dict(member.json(members["config"], "config"))
    except (ConfigError, TypeError) as exc:
        raise ModelFileError(f"{name}: bad config: {exc}") from None
    meta = member.json(members["meta"], "meta") if "meta" in members else {}
    if not isinstance(meta, dict):
        raise ModelFileError(f"{name}: meta must be a JSON object")
    net = TwoLayerNet.from_config(config)
    arrays = {}
    for key in PARAM_NAMES:
        expected = net.params[key]
        header = member.header(members[key], key)
        if header.dtype != expected.dtype and not (header.dtype == HALF and expected.dtype == np.float32):
            raise ModelFileError(f"{name}: {key} is {header.dtype}, the config says {expected.dtype}")
        if header.shape != expected.shape:
            raise ModelFileError(
                f"{name}: {key} has shape {header.shape}, the config (hidden_size {config.hidden_size}) "
                f"needs {expected.shape}"
            )
        arrays[key] = member.array(header)
        if not np.isfinite(arrays[key]).all():
            raise ModelFileError(f"{name}: {key} holds NaN or infinite values")
    net.set_params(arrays)
    state = _optimizer_state(member, members, net, config, name)
    return LoadedModel(net=net, config=config, meta=meta, optimizer_state=state)


def _optimizer_state(member: _Members, members: dict, net: TwoLayerNet, config: TrainConfig, name: str) -> dict:
    """The saved optimiser state, checked against the config's optimiser and the weights' shapes."""
    allowed = state_names(config.optimizer, PARAM_NAMES)
    state = {}
    for member_key, info in members.items():
        if not member_key.startswith(OPTIMIZER_PREFIX):
            continue
        key = member_key.removeprefix(OPTIMIZER_PREFIX)
        if key not in allowed:
            raise ModelFileError(f"{name}: unexpected optimizer state {key!r} for the {config.optimizer} optimizer")
        header = member.header(info, member_key)
        if key == "step":
            if header.shape != () or header.dtype.kind not in "iu":
                raise ModelFileError(f"{name}: optimizer step must be a non-negative whole number")
            value = member.array(header)
            if not 0 <= int(value) < 2**53:
                raise ModelFileError(f"{name}: optimizer step must be a non-negative whole number")
            state[key] = value
            continue
        param = net.params[key.split("_", 1)[1]]
        if header.shape != param.shape or header.dtype != param.dtype:
            raise ModelFileError(f"{name}: optimizer state {key} must be {param.dtype} {param.shape}")
        value = member.array(header)
        if not np.isfinite(value).all():
            raise ModelFileError(f"{name}: optimizer state {key} holds NaN or infinite values")
        state[key] = value
    if state and set(state) != allowed:
        raise ModelFileError(f"{name}: incomplete optimizer state (missing {sorted(allowed - set(state))[0]!r})")
    return state


@dataclass(frozen=True)
class _Header:
    """What an .npy member declares, read before any of its data is."""

    key: str
    raw: bytes  # the whole member
    offset: int  # where the data starts
    shape: tuple
    dtype: np.dtype
    fortran_order: bool


class _Members:
    """Reads the members of one archive as .npy arrays, trusting nothing they declare:
    the header is parsed within NumPy's 10,000-byte limit, its dtype may not hold Python
    objects, the caller checks its shape and dtype against what they must be, and its
    size must account for exactly the bytes that follow before any array is made: a
    header that promises (10^9, 10^9) allocates nothing."""

    def __init__(self, archive: zipfile.ZipFile, name: str):
        self.archive, self.name = archive, name

    def header(self, info: zipfile.ZipInfo, key: str) -> _Header:
        name = self.name
        raw = self.archive.read(info)  # at most the size checked above; the CRC is checked too
        if not raw.startswith(NPY_MAGIC) or len(raw) < 10:
            raise ModelFileError(f"{name}: {key} is not a NumPy array")
        major = raw[6]
        if major not in (1, 2):  # version 3 (UTF-8 field names) is for structured arrays, which models never hold
            raise ModelFileError(
                f"{name}: {key} is an .npy file of format version {major}, which model files never use"
            )
        length = int.from_bytes(raw[8:10] if major == 1 else raw[8:12], "little")
        if length > MAX_HEADER_BYTES:
            raise ModelFileError(
                f"{name}: {key} has a {length:,}-byte array header, over NumPy's limit of {MAX_HEADER_BYTES:,} "
                "(the arrays this app writes have headers of about 100 bytes)"
            )
        stream = io.BytesIO(raw)
        try:
            np.lib.format.read_magic(stream)
            read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = read(stream, max_header_size=MAX_HEADER_BYTES)
        except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError) as exc:
            reason = " ".join(str(exc).split())[:120]
            raise ModelFileError(f"{name}: {key} has a malformed array header ({reason})") from None
        if dtype.hasobject:
            raise ModelFileError(f"{name}: {key} holds object arrays (pickled data), which are never loaded")
        return _Header(key, raw, stream.tell(), tuple(shape), dtype, bool(fortran_order))

    def array(self, header: _Header) -> np.ndarray:
        """The array a header describes (its shape and dtype checked by the caller), once its
        size accounts for exactly the bytes that follow it; its own copy, writeable."""
        count = math.prod(header.shape)  # Python integers: no overflow
        declared, held = count * header.dtype.itemsize, len(header.raw) - header.offset
        if declared != held:
            raise ModelFileError(
                f"{self.name}: {header.key} declares {header.shape} {header.dtype} ({declared:,} bytes) "
                f"but holds {held:,} bytes"
            )
        flat = np.frombuffer(header.raw, dtype=header.dtype, count=count, offset=header.offset)
        return flat.reshape(header.shape, order="F" if header.fortran_order else "C").copy()

    def json(self, info: zipfile.ZipInfo, key: str, max_bytes: int = MAX_JSON_BYTES):
        """A 0-d text array holding JSON, parsed within bounds of size and depth."""
        if info.file_size > 4 * max_bytes + MAX_HEADER_BYTES + 16:  # 4 bytes per character in an .npy
            raise ModelFileError(f"{self.name}: {key} is larger than any JSON this app writes")
        header = self.header(info, key)
        if header.shape != () or header.dtype.kind != "U":
            raise ModelFileError(f"{self.name}: {key} must be a JSON string")
        try:
            return safejson.loads(str(self.array(header)), max_bytes=max_bytes, max_depth=MAX_JSON_DEPTH)
        except safejson.JsonError as exc:
            if str(exc).startswith("not valid JSON"):
                raise ModelFileError(f"{self.name}: {key} is {exc}") from None
            raise ModelFileError(f"{self.name}: {key}: {exc}") from None
