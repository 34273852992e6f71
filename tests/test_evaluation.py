"""Evaluation: confusion matrix, per-class accuracy, mistake lists and sorting, evidence."""

import numpy as np
import pytest

from nets.evaluation import (
    Evaluation,
    confusion_matrix,
    evaluate,
    evidence,
    misclassified,
    per_class_accuracy,
    runner_up,
    unsure_correct,
)
from nets.gradcheck import numerical_gradient, relative_error
from nets.two_layer_net import TwoLayerNet


def toy() -> Evaluation:
    """Five digits; truth 0 1 2 2 1; predictions 0 2 2 1 1 with chosen confidences."""
    probs = np.full((5, 10), 0.0)
    rows = [(0, 0.9, None), (2, 0.6, (1, 0.3)), (2, 0.5, None), (1, 0.95, (2, 0.01)), (1, 0.55, None)]
    for i, (pred, p, other) in enumerate(rows):
        probs[i, pred] = p
        if other:
            probs[i, other[0]] = other[1]
    return Evaluation(probs=probs, labels=np.array([0, 1, 2, 2, 1]), loss=0.0)


def test_confusion_matrix_and_per_class_accuracy():
    ev = toy()
    cm = confusion_matrix(ev.labels, ev.predictions)
    assert cm.sum() == 5 and cm[1, 2] == 1 and cm[2, 1] == 1 and cm[0, 0] == 1 and np.trace(cm) == 3
    acc = per_class_accuracy(ev.labels, ev.predictions)
    np.testing.assert_allclose(acc[:3], [1.0, 0.5, 0.5])
    assert np.isnan(acc[3])
    assert ev.errors == 2 and ev.accuracy == pytest.approx(0.6)


def test_misclassified_filters_and_sorts():
    ev = toy()
    assert misclassified(ev).tolist() == [1, 3]
    assert misclassified(ev, true=2).tolist() == [3]
    assert misclassified(ev, predicted=2).tolist() == [1]
    assert misclassified(ev, true=0).tolist() == []
    assert misclassified(ev, sort="confidence").tolist() == [3, 1]  # 0.95 before 0.6
    # margins: row 1: 0.6 - 0.3 = 0.3; row 3: 0.95 - 0.01 = 0.94
    assert misclassified(ev, sort="margin").tolist() == [3, 1]
    with pytest.raises(ValueError, match="sort must be one of"):
        misclassified(ev, sort="random")


def test_unsure_correct_lowest_confidence_first():
    ev = toy()
    assert unsure_correct(ev).tolist() == [2, 4, 0]  # 0.5, 0.55, 0.9
    assert unsure_correct(ev, true=1).tolist() == [4]
    assert runner_up(ev.probs[1]) == 1


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [(0.9, [2, 4]), (0.55, [2]), (0.5, []), (0.95, [2, 4, 0])],  # right ones: 0.5, 0.55, 0.9 sure
)
def test_unsure_correct_keeps_only_those_below_the_threshold(threshold, expected):
    ev = toy()
    shown = unsure_correct(ev, threshold=threshold)
    assert shown.tolist() == expected  # never a mistake (rows 1 and 3), never one as sure as the threshold
    assert unsure_correct(ev, true=2, threshold=threshold).tolist() == [i for i in expected if i == 2]


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_evidence_is_input_times_the_numerical_gradient(rng, activation):
    net = TwoLayerNet(
        input_size=12, hidden_size=6, output_size=4, activation=activation, init="xavier", dtype="float64"
    )
    x = rng.random(12) + 0.05  # away from ReLU kinks in practice for this seed

    def score_gap():
        scores = net.predict(x.reshape(1, -1))[0]
        return float(scores[3] - scores[1])

    numeric = numerical_gradient(score_gap, x)
    assert relative_error(evidence(net, x, toward=3, away_from=1), x * numeric) < 1e-6


def test_evidence_sums_to_the_score_gap_for_a_linear_unit_net(rng):
    """With biases zero and ReLU, scores are positively homogeneous in x, so x . grad = gap."""
    net = TwoLayerNet(input_size=12, hidden_size=6, output_size=4, init="xavier", dtype="float64", rng=3)
    x = rng.random(12)
    scores = net.predict(x.reshape(1, -1))[0]
    assert evidence(net, x, 2, 0).sum() == pytest.approx(scores[2] - scores[0])


def test_evaluate_in_chunks_matches_one_pass(rng, monkeypatch):
    import nets.evaluation as evaluation

    net = TwoLayerNet(hidden_size=8, init="he")
    x = rng.random((25, 784), dtype=np.float32)
    y = rng.integers(0, 10, 25)
    whole = evaluate(net, x, y)
    monkeypatch.setattr(evaluation, "CHUNK", 7)
    chunked = evaluate(net, x, y)
    np.testing.assert_allclose(chunked.probs, whole.probs, rtol=1e-5)  # float32: blocking differs
    assert chunked.loss == pytest.approx(whole.loss, rel=1e-6)
