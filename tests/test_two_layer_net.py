"""TwoLayerNet: whole-net gradient check, a hand-worked example, init, params ownership."""

import numpy as np
import pytest

from nets.config import TrainConfig
from nets.gradcheck import check_net_gradients
from nets.two_layer_net import TwoLayerNet, init_std


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_whole_net_gradients_match_numerical(rng, activation):
    net = TwoLayerNet(
        input_size=10, hidden_size=5, output_size=3, activation=activation, init="xavier", dtype="float64", rng=1
    )
    net.params["b1"][:] = rng.standard_normal(5) * 0.1  # non-zero biases test more paths
    x = rng.standard_normal((5, 10))
    labels = np.array([0, 1, 2, 1, 0])
    errors = check_net_gradients(net, x, labels)
    assert max(errors.values()) < 1e-6, errors


def test_hand_worked_example():
    """A 2-2-2 ReLU net whose forward and backward pass fit in comments."""
    net = TwoLayerNet(input_size=2, hidden_size=2, output_size=2, dtype="float64")
    net.set_params(
        {
            "W1": np.array([[1.0, -1.0], [0.5, 2.0]]),
            "b1": np.array([0.0, 0.5]),
            "W2": np.array([[1.0, 0.0], [0.0, 1.0]]),
            "b2": np.array([0.0, 0.0]),
        }
    )
    x = np.array([[2.0, 1.0]])
    # a1 = x W1 + b1 = [2*1 + 1*0.5, 2*(-1) + 1*2 + 0.5] = [2.5, 0.5];  h = relu(a1) = [2.5, 0.5]
    # scores = h W2 + b2 = [2.5, 0.5]
    # probs = softmax = [e^2 / (e^2 + 1), 1 / (e^2 + 1)] = [0.880797, 0.119203]
    p0 = np.exp(2) / (np.exp(2) + 1)
    np.testing.assert_allclose(net.predict(x), [[2.5, 0.5]])
    # label 1: loss = -log(0.119203) = 2.126928
    assert net.loss(x, np.array([1])) == pytest.approx(-np.log(1 - p0))
    grads = net.gradient(x, np.array([1]))
    # dscores = probs - one_hot(1) = [p0, -p0];  dW2 = h^T dscores;  db2 = dscores
    np.testing.assert_allclose(grads["b2"], [p0, -p0])
    np.testing.assert_allclose(grads["W2"], [[2.5 * p0, -2.5 * p0], [0.5 * p0, -0.5 * p0]])
    # dh = dscores W2^T = [p0, -p0]; both units active, so da1 = dh;  dW1 = x^T da1
    np.testing.assert_allclose(grads["b1"], [p0, -p0])
    np.testing.assert_allclose(grads["W1"], [[2 * p0, -2 * p0], [p0, -p0]])


def test_relu_blocks_gradient_of_inactive_unit():
    net = TwoLayerNet(input_size=1, hidden_size=2, output_size=2, dtype="float64")
    net.set_params({"W1": np.array([[1.0, -1.0]]), "b1": np.zeros(2), "W2": np.eye(2), "b2": np.zeros(2)})
    grads = net.gradient(np.array([[3.0]]), np.array([0]))
    assert grads["W1"][0, 1] == 0 and grads["b1"][1] == 0  # unit 2 had a1 = -3 < 0


def test_same_seed_same_weights_float32_matches_float64():
    a = TwoLayerNet(hidden_size=16, init="he", dtype="float32", rng=7)
    b = TwoLayerNet(hidden_size=16, init="he", dtype="float32", rng=7)
    c = TwoLayerNet(hidden_size=16, init="he", dtype="float64", rng=7)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
        np.testing.assert_allclose(a.params[name], c.params[name], rtol=1e-6)
    assert a.params["W1"].dtype == np.float32 and c.params["W1"].dtype == np.float64


@pytest.mark.parametrize("init, expected", [("std", 0.01), ("xavier", np.sqrt(1 / 784)), ("he", np.sqrt(2 / 784))])
def test_init_scales(init, expected):
    net = TwoLayerNet(hidden_size=256, init=init, rng=0)
    assert init_std(init, 784) == pytest.approx(expected)
    assert net.params["W1"].std() == pytest.approx(expected, rel=0.02)
    assert not net.params["b1"].any()


def test_set_params_replaces_without_stale_reference(rng):
    net = TwoLayerNet(hidden_size=8, rng=0)
    x = rng.random((4, 784), dtype=np.float32)
    new = {name: np.zeros_like(a) for name, a in net.params.items()}
    net.set_params(new)
    np.testing.assert_array_equal(net.predict(x), np.zeros((4, 10)))
    new["W2"][:] = 5  # the net holds copies, not the caller's arrays
    np.testing.assert_array_equal(net.predict(x), np.zeros((4, 10)))


def test_set_params_refuses_wrong_shape():
    net = TwoLayerNet(hidden_size=8)
    params = net.copy_params()
    params["W1"] = np.zeros((784, 9), dtype=np.float32)
    with pytest.raises(ValueError, match="W1 has shape"):
        net.set_params(params)


def test_from_config_and_repr():
    net = TwoLayerNet.from_config(TrainConfig(hidden_size=32, activation="tanh", dtype="float64"))
    assert net.hidden_size == 32 and net.dtype == np.float64
    assert (
        repr(net)
        == "TwoLayerNet([Affine(784 -> 32), Tanh(), Affine(32 -> 10), SoftmaxWithCrossEntropy()], dtype=float64)"
    )


def test_probabilities_sum_to_one(rng):
    net = TwoLayerNet(hidden_size=8, init="he")
    probs = net.probabilities(rng.random((6, 784), dtype=np.float32))
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
