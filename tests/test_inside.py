"""A digit through the net, on tiny nets with numbers worked by hand."""

import numpy as np
import pytest

from nets.inside import (
    ablation,
    hidden_activations,
    most_exciting,
    read,
    scores,
    silence,
    silenced_scores,
    through,
    top_units,
)
from nets.two_layer_net import TwoLayerNet

# 2 inputs, 3 hidden units, 2 classes. For x = (1, 2) and ReLU:
# pre-activation = x @ W1 + b1 = (1 + 0, -2 + 0, 1 + 4 - 1) = (1, -2, 4) -> h = (1, 0, 4)
# logits = h @ W2 + b2 = (1*2 + 4*(-1) + 0.5, 1*1 + 4*3 - 1) = (-1.5, 12)
TINY = {
    "W1": np.array([[1.0, -2.0, 1.0], [0.0, 0.0, 2.0]]),
    "b1": np.array([0.0, 0.0, -1.0]),
    "W2": np.array([[2.0, 1.0], [5.0, 5.0], [-1.0, 3.0]]),
    "b2": np.array([0.5, -1.0]),
}
X = np.array([1.0, 2.0])


def test_hidden_activations_and_contributions_by_hand():
    reading = read(TINY, "relu", X)
    assert reading.hidden.tolist() == [1.0, 0.0, 4.0]
    assert reading.contributions.tolist() == [[2.0, 1.0], [0.0, 0.0], [-4.0, 12.0]]
    assert reading.logits.tolist() == [-1.5, 12.0]
    assert reading.predicted == 1


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_contributions_sum_to_the_logit_of_the_net(activation):
    net = TwoLayerNet(20, 7, 4, activation=activation, init="he", dtype="float64", rng=3)
    x = np.random.default_rng(1).random(20)
    reading = read(net.params, activation, x)
    logits = net.predict(x[None, :])[0]
    np.testing.assert_allclose(reading.contributions.sum(axis=0) + net.params["b2"], logits, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(reading.probs, net.probabilities(x[None, :])[0], rtol=1e-5)
    assert reading.predicted == int(logits.argmax())


def test_switching_a_unit_off_by_hand():
    reading = read(TINY, "relu", X, silenced=[2])  # the unit that made class 1 win
    assert reading.hidden.tolist() == [1.0, 0.0, 0.0]
    assert reading.logits.tolist() == [2.5, 0.0]
    assert reading.predicted == 0 and reading.silenced == (2,)


@pytest.mark.parametrize("units", [[0], [2, 5], [0, 1, 2, 3, 4, 5, 6]])
def test_silencing_equals_zeroing_the_units_outgoing_weights(units):
    net = TwoLayerNet(20, 7, 4, activation="sigmoid", init="xavier", dtype="float64", rng=5)
    x = np.random.default_rng(2).random((30, 20))
    zeroed = TwoLayerNet(20, 7, 4, activation="sigmoid", dtype="float64")
    zeroed.set_params(silence(net.params, units))
    expected = zeroed.predict(x)
    hidden = hidden_activations(net.params, "sigmoid", x).astype(np.float64)
    full = scores(net.params, hidden)
    np.testing.assert_allclose(silenced_scores(net.params, hidden, full, units), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(read(net.params, "sigmoid", x[0], silenced=units).logits, expected[0], rtol=1e-5)
    assert (net.params["W2"] != 0).all()  # silence() copies, the net keeps its weights


def test_top_units_for_and_against_a_class():
    top = top_units(read(TINY, "relu", X), cls=0, k=2)
    assert top.toward.tolist() == [0] and top.toward_share.tolist() == [2.0]  # unit 1 is silent: no share
    assert top.against.tolist() == [2] and top.against_share.tolist() == [-4.0]
    top1 = top_units(read(TINY, "relu", X), cls=1, k=3)
    assert top1.toward.tolist() == [2, 0] and top1.against.size == 0


def test_most_exciting_rows_strongest_first():
    hidden = np.array([[0.0, 1.0], [3.0, 0.0], [2.0, 5.0], [9.0, 4.0]])
    assert most_exciting(hidden, 0, k=2).tolist() == [3, 1]
    assert most_exciting(hidden, 1, k=10).tolist() == [2, 3, 0, 1]


def test_ablation_counts_accuracy_and_changed_predictions():
    hidden = np.array([[1.0, 0.0, 4.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    full = scores(TINY, hidden)  # rows: (-1.5, 12) -> 1; (2.5, 0) -> 0; (5.5, 4) -> 0
    labels = np.array([1, 0, 1])
    result = ablation(TINY, hidden, full, labels, [2])  # row 0 becomes (2.5, 0) -> 0, wrong now
    assert result.accuracy == pytest.approx(2 / 3)
    assert result.silenced_accuracy == pytest.approx(1 / 3)
    assert result.changed == 1 and result.units == (2,)


def test_a_set_through_the_net_matches_the_net_and_is_read_only():
    net = TwoLayerNet(20, 7, 4, activation="tanh", init="xavier", rng=8)
    x = np.random.default_rng(3).random((50, 20)).astype(np.float32)
    labels = np.random.default_rng(4).integers(0, 4, 50)
    seen = through(net.params, "tanh", x, labels)
    np.testing.assert_allclose(seen.scores, net.predict(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(seen.probs, net.probabilities(x), rtol=1e-4, atol=1e-6)
    assert seen.predictions.tolist() == net.predict(x).argmax(axis=1).tolist()
    with pytest.raises(ValueError, match="read-only"):
        seen.hidden[0, 0] = 1.0
