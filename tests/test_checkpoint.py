"""Model files: round trip, and every kind of wrong or hostile file refused with a reason."""

import io
import json
import zipfile

import numpy as np
import pytest

from nets.checkpoint import MAX_MODEL_BYTES, ModelFileError, load_model, model_bytes, save_model
from nets.config import TrainConfig
from nets.two_layer_net import TwoLayerNet

CONFIG = TrainConfig(hidden_size=16, activation="tanh", seed=3)


@pytest.fixture
def net():
    return TwoLayerNet.from_config(CONFIG)


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def arrays_of(net, train_config=CONFIG, **changes):
    arrays = {name: a for name, a in net.params.items()}
    arrays["config"] = np.array(json.dumps(train_config.to_dict()))
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_path_bytes_and_file(tmp_path, dtype, rng):
    config = CONFIG.replace(dtype=dtype)
    net = TwoLayerNet.from_config(config)
    path = tmp_path / "model.npz"
    save_model(path, net, config, {"test_acc": 0.97})
    x = rng.random((3, 784), dtype=np.float32)
    for source in (path, str(path), path.read_bytes(), io.BytesIO(path.read_bytes())):
        loaded = load_model(source)
        assert loaded.config == config and loaded.meta["test_acc"] == 0.97
        assert loaded.meta["format"] == "mnist-dashboard/two-layer-net"
        np.testing.assert_array_equal(loaded.net.predict(x), net.predict(x))
        assert loaded.net.params["W1"].dtype == np.dtype(dtype)
    assert model_bytes(net, config)[:2] == b"PK"


def test_loaded_net_is_independent_of_the_file_arrays(net):
    loaded = load_model(model_bytes(net, CONFIG))
    loaded.net.params["W1"][0, 0] += 1
    assert loaded.net.params["W1"][0, 0] != net.params["W1"][0, 0]


def refused(data: bytes, message: str):
    with pytest.raises(ModelFileError) as info:
        load_model(data, name="up.npz")
    text = str(info.value)
    assert text.startswith("up.npz: ") and message in text and "\n" not in text, text


def test_not_a_zip():
    refused(b"hello, world", "not an .npz model file")


def test_empty_file():
    refused(b"", "not an .npz model file")


def test_plain_npy_file():
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    refused(buffer.getvalue(), "not an .npz model file")


def test_object_array_is_never_unpickled(net):
    hostile = arrays_of(net, meta=np.array([{"evil": 1}], dtype=object))
    refused(npz_bytes(**hostile), "object arrays (pickled data)")


def test_pickled_member_is_never_unpickled(net):
    buffer = io.BytesIO(npz_bytes(**arrays_of(net)))
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr("meta.npy", b"\x80\x04\x95pickle-bytes")  # not even an .npy header
    refused(buffer.getvalue(), "meta is not a NumPy array")


def test_missing_array(net):
    refused(npz_bytes(**arrays_of(net, b2=None)), "missing array 'b2'")


def test_extra_array(net):
    refused(npz_bytes(**arrays_of(net, W3=np.zeros(2))), "unexpected array 'W3'")


def test_wrong_shape(net):
    refused(
        npz_bytes(**arrays_of(net, W1=np.zeros((784, 17), np.float32))),
        "W1 has shape (784, 17), the config (hidden_size 16) needs (784, 16)",
    )


def test_wrong_dtype(net):
    refused(npz_bytes(**arrays_of(net, b1=np.zeros(16, np.float64))), "b1 is float64, the config says float32")


def test_half_precision_weights_load_as_float32_and_only_for_a_float32_net(net, tmp_path):
    """The shipped model is stored in float16: each weight rounded once, read back as float32."""
    path = tmp_path / "half.npz"
    save_model(path, net, CONFIG, half=True)
    loaded = load_model(path)
    for name, value in net.params.items():
        assert loaded.net.params[name].dtype == np.float32
        np.testing.assert_array_equal(loaded.net.params[name], value.astype(np.float16).astype(np.float32))
    assert path.stat().st_size < len(model_bytes(net, CONFIG)) * 0.6
    wide = TwoLayerNet.from_config(CONFIG.replace(dtype="float64"))
    with pytest.raises(ValueError, match="only a float32 net"):
        save_model(tmp_path / "wide.npz", wide, CONFIG.replace(dtype="float64"), half=True)
    refused(npz_bytes(**arrays_of(wide, CONFIG.replace(dtype="float64"), W1=wide.params["W1"].astype(np.float16))),
            "W1 is float16, the config says float64")  # fmt: skip
    big = net.params["W2"].copy()
    big[0, 0] = 1e5  # beyond float16's largest value, 65,504
    net.params["W2"] = big
    with pytest.raises(ValueError, match="beyond float16's range"):
        save_model(tmp_path / "big.npz", net, CONFIG, half=True)
    assert not (tmp_path / "big.npz").exists()
    with np.errstate(over="ignore"):
        half_big = big.astype(np.float16)
    refused(npz_bytes(**arrays_of(net, W2=half_big)), "W2 holds NaN or infinite values")


def test_integer_weights(net):
    refused(npz_bytes(**arrays_of(net, W2=np.zeros((16, 10), np.int32))), "W2 is int32")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights(net, bad):
    W2 = net.params["W2"].copy()
    W2[3, 3] = bad
    refused(npz_bytes(**arrays_of(net, W2=W2)), "W2 holds NaN or infinite values")


def test_config_that_does_not_match_the_arrays(net):
    refused(npz_bytes(**arrays_of(net, CONFIG.replace(hidden_size=32))), "the config (hidden_size 32) needs")


@pytest.mark.parametrize(
    "config, message",
    [
        (np.array("{not json"), "config is not valid JSON"),
        (np.array(json.dumps({"hidden_size": 0})), "bad config: hidden_size must be between 1 and 4096"),
        (np.array(json.dumps({"layers": 3})), "bad config: unknown config field 'layers'"),
        (np.array(json.dumps([1, 2])), "bad config: a config must be a JSON object"),
        (np.zeros(3), "config must be a JSON string"),
    ],
)
def test_bad_config(net, config, message):
    refused(npz_bytes(**arrays_of(net, config=config)), message)


def test_huge_declared_size_is_refused_before_loading(net, monkeypatch):
    """The limits patched from 64 and 192 MB down to 64 and 192 KB: the same check, without
    an 80 MB buffer."""
    monkeypatch.setattr("nets.checkpoint.MAX_MODEL_BYTES", 1 << 16)
    monkeypatch.setattr("nets.checkpoint.MAX_FILE_BYTES", 3 << 16)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("W1.npy", bytes(1 << 20))  # 1 MB that compresses to 1 KB
    refused(buffer.getvalue(), f"its arrays would take more than {3 << 16} bytes")


def test_unreadable_path(tmp_path):
    with pytest.raises(ModelFileError, match="nope.npz: cannot read it"):
        load_model(tmp_path / "nope.npz")


def adam_state(net, steps: int = 2) -> dict:
    from nets.optimizers import make_optimizer

    optimizer = make_optimizer("adam", 1e-3)
    grads = {k: np.ones_like(v) for k, v in net.params.items()}
    for _ in range(steps):
        optimizer.update({k: v.copy() for k, v in net.params.items()}, grads)
    return optimizer.state()


def test_optimizer_state_round_trip(net):
    state = adam_state(net)
    buffer = io.BytesIO()
    save_model(buffer, net, CONFIG, optimizer_state=state)
    loaded = load_model(buffer.getvalue())
    assert loaded.optimizer_state.keys() == state.keys() and int(loaded.optimizer_state["step"]) == 2
    assert all(np.array_equal(loaded.optimizer_state[k], state[k]) for k in state)
    assert load_model(model_bytes(net, CONFIG)).optimizer_state == {}  # a file without it


def with_state(net, key: str, value) -> bytes:
    """A model file with Adam's state, its `key` replaced by `value` (None: left out)."""
    state = {f"optimizer_{k}": v for k, v in adam_state(net).items()}
    state[f"optimizer_{key}"] = value
    return npz_bytes(**arrays_of(net, **state))


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("velocity_W1", np.zeros((784, 16), np.float32), "unexpected optimizer state 'velocity_W1' for the adam"),
        ("m_W1", np.zeros((3, 3), np.float32), "optimizer state m_W1 must be float32 (784, 16)"),
        ("v_b2", np.zeros(10, np.float64), "optimizer state v_b2 must be float32 (10,)"),
        ("m_b1", np.full(16, np.nan, np.float32), "optimizer state m_b1 holds NaN or infinite values"),
        ("step", np.array(-1), "optimizer step must be a non-negative whole number"),
        ("step", np.array(1.5), "optimizer step must be a non-negative whole number"),
        ("v_W2", None, "incomplete optimizer state (missing 'v_W2')"),
    ],
)
def test_bad_optimizer_state_is_refused(net, key, value, message):
    refused(with_state(net, key, value), message)


def test_the_largest_net_with_adam_state_loads_back(tmp_path):
    """4,096 float64 hidden units and Adam's two moments: about 78 MB, three nets' worth."""
    from nets.optimizers import make_optimizer

    config = TrainConfig(hidden_size=4096, dtype="float64", optimizer="adam")
    net = TwoLayerNet.from_config(config)
    adam = make_optimizer("adam", 1e-3)
    adam.update(net.params, {k: np.ones_like(v) for k, v in net.params.items()})
    path = tmp_path / "big.npz"
    save_model(path, net, config, optimizer_state=adam.state())
    assert path.stat().st_size > MAX_MODEL_BYTES
    loaded = load_model(path)
    assert loaded.optimizer_state["step"] == 1 and loaded.optimizer_state["m_W1"].shape == (784, 4096)
