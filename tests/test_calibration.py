"""Calibration on five answers worked by hand: reliability bins, ECE, histograms, threshold."""

import numpy as np
import pytest

from nets.calibration import at_threshold, confidence_histograms, coverage_curve, reliability

# Confidence (the predicted class's probability), right or wrong:
# 0.40 right, 0.45 wrong, 0.90 right, 0.80 wrong, 0.60 right.
PROBS = np.array([[0.4, 0.3, 0.3], [0.2, 0.45, 0.35], [0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.6, 0.2, 0.2]])
LABELS = np.array([0, 2, 0, 0, 0])


def test_reliability_bins_and_ece_by_hand():
    r = reliability(PROBS, LABELS, bins=4)  # [0, .25) [.25, .5) [.5, .75) [.75, 1]
    assert r.counts.tolist() == [0, 2, 1, 2]
    np.testing.assert_allclose(r.confidence[1:], [0.425, 0.6, 0.85])
    np.testing.assert_allclose(r.accuracy[1:], [0.5, 1.0, 0.5])
    assert np.isnan(r.confidence[0]) and np.isnan(r.accuracy[0])
    # (2 |0.5 - 0.425| + 1 |1 - 0.6| + 2 |0.5 - 0.85|) / 5 = (0.15 + 0.4 + 0.7) / 5
    assert r.ece == pytest.approx(0.25)


def test_bin_edges_lower_edge_in_a_certain_answer_in_the_last():
    probs = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.25, 0.75, 0.0]])
    r = reliability(probs, np.array([0, 0, 1]), bins=4)
    assert r.counts.tolist() == [0, 0, 1, 2]  # 0.5 -> [.5, .75); 1.0 and 0.75 -> [.75, 1]


def test_a_calibrated_net_has_no_calibration_error():
    # Four answers at 0.75 confidence, three right: accuracy equals confidence.
    probs = np.tile([0.75, 0.25], (4, 1))
    assert reliability(probs, np.array([0, 0, 0, 1]), bins=10).ece == pytest.approx(0.0)


def test_confidence_histograms_split_right_from_wrong():
    h = confidence_histograms(PROBS, LABELS, bins=4)
    assert h.right.tolist() == [0, 1, 1, 1]
    assert h.wrong.tolist() == [0, 1, 0, 1]


def test_threshold_answers_only_when_sure_enough():
    point = at_threshold(PROBS, LABELS, 0.7)  # answers 0.9 (right) and 0.8 (wrong)
    assert (point.answered, point.right, point.total) == (2, 1, 5)
    assert point.coverage == pytest.approx(0.4) and point.accuracy == pytest.approx(0.5)
    none = at_threshold(PROBS, LABELS, 0.95)
    assert none.answered == 0 and none.accuracy == 1.0 and none.coverage == 0.0
    everything = at_threshold(PROBS, LABELS, 0.0)
    assert everything.coverage == 1.0 and everything.accuracy == pytest.approx(0.6)


def test_coverage_curve_by_hand():
    curve = coverage_curve(PROBS, LABELS)
    np.testing.assert_allclose(curve.thresholds, [0.4, 0.45, 0.6, 0.8, 0.9])
    np.testing.assert_allclose(curve.coverage, [1.0, 0.8, 0.6, 0.4, 0.2])
    np.testing.assert_allclose(curve.accuracy, [3 / 5, 2 / 4, 2 / 3, 1 / 2, 1.0])


def test_coverage_curve_agrees_with_the_threshold_and_ties_count_together():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10) * 0.3, size=500)
    probs[:50] = probs[0]  # 50 equal confidences: one threshold answers all of them or none
    labels = rng.integers(0, 10, 500)
    curve = coverage_curve(probs, labels, points=1000)
    for t, cov, acc in zip(curve.thresholds, curve.coverage, curve.accuracy, strict=True):
        point = at_threshold(probs, labels, t)
        assert point.coverage == pytest.approx(cov) and point.accuracy == pytest.approx(acc)
    assert len(coverage_curve(probs, labels, points=40).thresholds) == 40
