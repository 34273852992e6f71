"""Model files: one .npz with the four weight arrays, the config as JSON and a little metadata.

Loading never unpickles: the zip is inspected first (names, sizes), arrays are read with
allow_pickle=False, the config is validated, the net is rebuilt from it and only then are
the arrays, checked for shape, dtype and finiteness, put into it.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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


def save_model(
    target, net: TwoLayerNet, config: TrainConfig, meta: dict | None = None, optimizer_state: dict | None = None
) -> None:
    """Write `net` and `config` to `target` (a path or a binary file object), with the
    optimiser's state when given (a run can then be continued exactly)."""
    meta = {"format": FORMAT, "version": FORMAT_VERSION, **(meta or {})}
    arrays = {name: net.params[name] for name in PARAM_NAMES}
    arrays.update({OPTIMIZER_PREFIX + key: value for key, value in (optimizer_state or {}).items()})
    np.savez(target, **arrays, config=_text_array(config.to_dict()), meta=_text_array(meta))


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
    try:
        return _load(data, name)
    except ModelFileError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, KeyError, EOFError) as exc:
        raise ModelFileError(f"{name}: not a readable model file ({exc})") from None


def _load(data: bytes, name: str) -> LoadedModel:
    if len(data) > MAX_FILE_BYTES:
        raise ModelFileError(f"{name}: {len(data)} bytes, larger than any model this app makes")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ModelFileError(f"{name}: not an .npz model file (expected a zip archive of arrays)")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        names = {info.filename.removesuffix(".npy") for info in infos}
        optimizer = sum(info.file_size for info in infos if info.filename.startswith(OPTIMIZER_PREFIX))
        weights = sum(info.file_size for info in infos) - optimizer
        if weights > MAX_MODEL_BYTES or optimizer > 2 * MAX_MODEL_BYTES:
            raise ModelFileError(f"{name}: its arrays would take more than {MAX_FILE_BYTES} bytes")
    missing = sorted(REQUIRED - names)
    extra = sorted(n for n in names - REQUIRED - OPTIONAL if not n.startswith(OPTIMIZER_PREFIX))
    if missing:
        raise ModelFileError(f"{name}: missing array {missing[0]!r} (a model file holds W1, b1, W2, b2, config)")
    if extra:
        raise ModelFileError(f"{name}: unexpected array {extra[0]!r}")

    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in names}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ModelFileError(f"{name}: holds object arrays (pickled data), which are never loaded") from None
        raise
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):  # np.load hands back raw bytes for a non-.npy member
            raise ModelFileError(f"{name}: {key} is not a NumPy array")

    try:
        config = TrainConfig.from_dict(_json(arrays["config"], "config", name))
    except (ConfigError, TypeError) as exc:
        raise ModelFileError(f"{name}: bad config: {exc}") from None
    meta = _json(arrays["meta"], "meta", name) if "meta" in arrays else {}
    if not isinstance(meta, dict):
        raise ModelFileError(f"{name}: meta must be a JSON object")
    net = TwoLayerNet.from_config(config)
    for key in PARAM_NAMES:
        array, expected = arrays[key], net.params[key]
        if array.dtype != expected.dtype:
            raise ModelFileError(f"{name}: {key} is {array.dtype}, the config says {expected.dtype}")
        if array.shape != expected.shape:
            raise ModelFileError(
                f"{name}: {key} has shape {array.shape}, the config (hidden_size {config.hidden_size}) "
                f"needs {expected.shape}"
            )
        if not np.isfinite(array).all():
            raise ModelFileError(f"{name}: {key} holds NaN or infinite values")
    net.set_params(arrays)
    return LoadedModel(net=net, config=config, meta=meta, optimizer_state=_optimizer_state(arrays, net, config, name))


def _optimizer_state(arrays: dict, net: TwoLayerNet, config: TrainConfig, name: str) -> dict:
    """The saved optimiser state, checked against the config's optimiser and the weights' shapes."""
    state = {k.removeprefix(OPTIMIZER_PREFIX): v for k, v in arrays.items() if k.startswith(OPTIMIZER_PREFIX)}
    allowed = state_names(config.optimizer, PARAM_NAMES)
    for key, value in state.items():
        if key not in allowed:
            raise ModelFileError(f"{name}: unexpected optimizer state {key!r} for the {config.optimizer} optimizer")
        if key == "step":
            if value.shape != () or value.dtype.kind not in "iu" or not 0 <= int(value) < 2**53:
                raise ModelFileError(f"{name}: optimizer step must be a non-negative whole number")
            continue
        param = net.params[key.split("_", 1)[1]]
        if value.shape != param.shape or value.dtype != param.dtype:
            raise ModelFileError(f"{name}: optimizer state {key} must be {param.dtype} {param.shape}")
        if not np.isfinite(value).all():
            raise ModelFileError(f"{name}: optimizer state {key} holds NaN or infinite values")
    if state and set(state) != allowed:
        raise ModelFileError(f"{name}: incomplete optimizer state (missing {sorted(allowed - set(state))[0]!r})")
    return state


def _json(array: np.ndarray, key: str, name: str):
    if array.shape != () or array.dtype.kind != "U":
        raise ModelFileError(f"{name}: {key} must be a JSON string")
    try:
        value = json.loads(str(array))
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{name}: {key} is not valid JSON ({exc.msg})") from None
    return value
