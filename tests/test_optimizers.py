"""Optimisers: one or two steps worked out by hand."""

import numpy as np
import pytest

from nets.optimizers import SGD, Adam, Momentum, make_optimizer


def params_and_grads():
    params = {"W1": np.array([1.0, -2.0]), "b1": np.array([0.5])}
    grads = {"W1": np.array([0.5, 1.0]), "b1": np.array([2.0])}
    return params, grads


def test_sgd_step():
    params, grads = params_and_grads()
    W = params["W1"]
    SGD(0.1).update(params, grads)
    # W - 0.1 * g = [1 - 0.05, -2 - 0.1];  b = 0.5 - 0.2
    np.testing.assert_allclose(params["W1"], [0.95, -2.1])
    np.testing.assert_allclose(params["b1"], [0.3])
    assert params["W1"] is W  # updated in place


def test_sgd_weight_decay_applies_to_weights_only():
    params, grads = params_and_grads()
    SGD(0.1, weight_decay=0.5).update(params, grads)
    # W: g + 0.5 W = [0.5 + 0.5, 1 - 1] = [1, 0] -> W = [0.9, -2];  b unchanged by decay: 0.3
    np.testing.assert_allclose(params["W1"], [0.9, -2.0])
    np.testing.assert_allclose(params["b1"], [0.3])


def test_momentum_two_steps():
    params, grads = params_and_grads()
    opt = Momentum(0.1, momentum=0.9)
    opt.update(params, grads)  # v = -0.1 g = [-0.05, -0.1];  W = [0.95, -2.1]
    opt.update(params, grads)  # v = 0.9 v - 0.1 g = [-0.095, -0.19];  W = [0.855, -2.29]
    np.testing.assert_allclose(params["W1"], [0.855, -2.29])


def test_adam_first_step_is_lr_times_sign():
    params, grads = params_and_grads()
    Adam(0.01).update(params, grads)
    # After bias correction m_hat = g and v_hat = g^2, so the step is lr * g / |g| (+ eps).
    np.testing.assert_allclose(params["W1"], [0.99, -2.01], rtol=1e-6)
    np.testing.assert_allclose(params["b1"], [0.49], rtol=1e-6)


def test_adam_keeps_float32():
    params = {"W1": np.ones(3, dtype=np.float32)}
    opt = Adam(0.01)
    for _ in range(3):
        opt.update(params, {"W1": np.ones(3, dtype=np.float32)})
    assert params["W1"].dtype == np.float32
    assert opt.m["W1"].dtype == np.float32


def textbook_adam(W, grads, lr, weight_decay, b1=0.9, b2=0.999, eps=1e-8):
    """Kingma & Ba's algorithm 1, in float64, with the L2 term added to the gradient."""
    m, v = np.zeros_like(W), np.zeros_like(W)
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * W
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        W = W - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return W


@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_float32_adam_follows_the_textbook_over_many_steps(rng, weight_decay):
    """The in-place float32 update (a scratch array, bias corrections in the step size)
    tracks the float64 textbook formula, and leaves the caller's gradients as they were."""
    W0 = rng.standard_normal((6, 5))
    grads = [rng.standard_normal((6, 5)) for _ in range(200)]
    params = {"W1": W0.astype(np.float32)}
    opt = Adam(1e-2, weight_decay=weight_decay)
    for g in grads:
        g32 = g.astype(np.float32)
        opt.update(params, {"W1": g32})
        assert np.array_equal(g32, g.astype(np.float32))  # the gradient is not used as scratch
    assert params["W1"].dtype == np.float32
    expected = textbook_adam(W0, grads, 1e-2, weight_decay)
    np.testing.assert_allclose(params["W1"], expected, rtol=0, atol=2e-5)
    assert np.abs(expected - W0).max() > 0.2  # far past the tolerance: the check means something


@pytest.mark.parametrize("name, cls", [("sgd", SGD), ("momentum", Momentum), ("adam", Adam)])
def test_make_optimizer(name, cls):
    assert isinstance(make_optimizer(name, 0.1), cls)


def test_make_optimizer_refuses_unknown():
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("rmsprop", 0.1)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_state_continues_exactly_where_it_was(name, rng):
    """Three steps, or one step, then a fresh optimiser loaded with the state, then two."""
    grads = [{"W1": rng.standard_normal(3), "b1": rng.standard_normal(1)} for _ in range(3)]
    straight = {"W1": np.array([1.0, -2.0, 0.5]), "b1": np.array([0.5])}
    opt = make_optimizer(name, 0.1)
    for g in grads:
        opt.update(straight, g)

    continued = {"W1": np.array([1.0, -2.0, 0.5]), "b1": np.array([0.5])}
    first = make_optimizer(name, 0.1)
    first.update(continued, grads[0])
    state = first.state()
    second = make_optimizer(name, 0.1)
    second.load_state(state)
    for g in grads[1:]:
        second.update(continued, g)
    for key in straight:
        np.testing.assert_array_equal(continued[key], straight[key])
    assert set(state) == {"sgd": set(), "momentum": {"velocity_W1", "velocity_b1"},
                          "adam": {"step", "m_W1", "m_b1", "v_W1", "v_b1"}}[name]  # fmt: skip


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_state_and_load_state_copy_the_arrays(name):
    params, grads = params_and_grads()
    opt = make_optimizer(name, 0.1)
    opt.update(params, grads)
    state = opt.state()
    before = {k: np.array(v) for k, v in state.items()}
    opt.update(params, grads)  # the optimiser moves on; the saved state does not
    assert all(np.array_equal(state[k], before[k]) for k in state)
    fresh = make_optimizer(name, 0.1)
    fresh.load_state(state)
    fresh.update(params, grads)  # nor does the caller's state change when the loaded one does
    assert all(np.array_equal(state[k], before[k]) for k in state)


def test_sgd_refuses_a_state():
    with pytest.raises(ValueError, match="SGD keeps no state"):
        make_optimizer("sgd", 0.1).load_state({"velocity_W1": np.zeros(2)})
