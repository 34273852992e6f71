"""Layers: shapes, no writes into dout, and every gradient against central differences."""

import numpy as np
import pytest

from nets.functions import cross_entropy, one_hot, softmax
from nets.gradcheck import numerical_gradient, relative_error
from nets.layers import Affine, Relu, Sigmoid, SoftmaxWithCrossEntropy, Tanh

TOL = 1e-6  # relative error allowed between backprop and central differences, float64


def affine(rng, d_in=5, d_out=4):
    params = {"W": rng.standard_normal((d_in, d_out)), "b": rng.standard_normal(d_out)}
    grads = {}
    return Affine(params, grads, "W", "b"), params, grads


def test_affine_shapes_and_values(rng):
    layer, params, _ = affine(rng)
    x = rng.standard_normal((3, 5))
    out = layer.forward(x)
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out, x @ params["W"] + params["b"])
    dx = layer.backward(np.ones((3, 4)))
    assert dx.shape == (3, 5)
    assert layer.grads["W"].shape == (5, 4) and layer.grads["b"].shape == (4,)


def test_affine_reads_replaced_weights(rng):
    """No stale reference: a layer sees an array put into the params dict after it was built."""
    layer, params, _ = affine(rng)
    x = rng.standard_normal((2, 5))
    params["W"] = np.zeros((5, 4))
    np.testing.assert_allclose(layer.forward(x), np.broadcast_to(params["b"], (2, 4)))
    assert layer.params["W"] is params["W"]


def test_affine_without_input_grad_returns_none(rng):
    params = {"W": rng.standard_normal((5, 4)), "b": np.zeros(4)}
    layer = Affine(params, {}, "W", "b", input_grad=False)
    layer.forward(rng.standard_normal((2, 5)))
    assert layer.backward(np.ones((2, 4))) is None
    assert layer.grads["W"].shape == (5, 4)


@pytest.mark.parametrize("name", ["W", "b", "x"])
def test_affine_gradients(rng, name):
    layer, params, grads = affine(rng)
    x = rng.standard_normal((3, 5))
    dout = rng.standard_normal((3, 4))

    def f():  # a scalar whose gradient w.r.t. the output is dout
        return float((layer.forward(x) * dout).sum())

    layer.forward(x)
    dx = layer.backward(dout)
    analytic = {"W": grads["W"], "b": grads["b"], "x": dx}[name].copy()
    target = x if name == "x" else params[name]
    assert relative_error(analytic, numerical_gradient(f, target)) < TOL


@pytest.mark.parametrize("cls", [Relu, Sigmoid, Tanh])
def test_activation_gradient_and_dout_untouched(rng, cls):
    layer = cls()
    # Keep ReLU inputs away from the kink at 0, where central differences are undefined.
    x = rng.standard_normal((4, 6))
    x[np.abs(x) < 0.05] = 0.5
    dout = rng.standard_normal((4, 6))
    dout_before = dout.copy()

    def f():
        return float((layer.forward(x) * dout).sum())

    out = layer.forward(x)
    assert out.shape == x.shape
    dx = layer.backward(dout)
    np.testing.assert_array_equal(dout, dout_before)
    assert dx is not dout
    assert relative_error(dx, numerical_gradient(f, x)) < TOL


def test_activation_values():
    x = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_allclose(Relu().forward(x), [[0, 0, 3]])
    np.testing.assert_allclose(Sigmoid().forward(x), 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(Tanh().forward(x), np.tanh(x))


def test_sigmoid_does_not_overflow():
    with np.errstate(all="raise"):
        out = Sigmoid().forward(np.array([[-1000.0, 1000.0]], dtype=np.float32))
    np.testing.assert_allclose(out, [[0, 1]])


def test_softmax_cross_entropy_gradient(rng):
    layer = SoftmaxWithCrossEntropy()
    scores = rng.standard_normal((5, 10))
    labels = rng.integers(0, 10, 5)
    layer.forward(scores, labels)
    dscores = layer.backward()
    # Fused gradient: (probs - one_hot) / N.
    np.testing.assert_allclose(dscores, (softmax(scores) - one_hot(labels, 10, np.float64)) / 5)
    numeric = numerical_gradient(lambda: layer.forward(scores, labels), scores)
    assert relative_error(dscores, numeric) < TOL


def test_softmax_cross_entropy_backward_twice_is_the_same(rng):
    layer = SoftmaxWithCrossEntropy()
    layer.forward(rng.standard_normal((3, 10)), np.array([1, 2, 3]))
    np.testing.assert_array_equal(layer.backward(), layer.backward())


def test_softmax_is_stable_for_huge_scores():
    scores = np.array([[1000.0, 1001.0, -1000.0]], dtype=np.float32)
    probs = softmax(scores.copy())
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(), 1, rtol=1e-6)


def test_softmax_works_row_by_row_and_leaves_its_input_alone(rng):
    # Rows far apart (offsets of +-500): each is shifted by its own maximum, not a shared one.
    scores = (rng.standard_normal((300, 10)) + rng.uniform(-500, 500, (300, 1))).astype(np.float32)
    before = scores.copy()
    probs = softmax(scores)
    assert probs.shape == (300, 10)
    np.testing.assert_array_equal(scores, before)
    # The textbook row-wise formula, in float64: the class-major passes sum in another
    # order, so they agree to float32's rounding, not to the last bit.
    shifted = np.exp(scores.astype(np.float64) - scores.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probs, shifted / shifted.sum(axis=1, keepdims=True), rtol=2e-6, atol=1e-9)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=2e-6)
    assert probs.dtype == np.float32 and probs.flags.c_contiguous


def test_cross_entropy_of_a_certain_mistake_is_large_but_finite():
    loss = SoftmaxWithCrossEntropy().forward(np.array([[0.0, 1e4]], dtype=np.float32), np.array([0]))
    assert np.isfinite(loss)
    assert loss == pytest.approx(-np.log(np.finfo(np.float32).eps))
    assert cross_entropy(np.array([[0.5, 0.5]]), np.array([1])) == pytest.approx(np.log(2))
