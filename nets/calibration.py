"""How sure the net should be: reliability bins, expected calibration error, and what a
confidence threshold trades (answers given against their accuracy).

A net is calibrated when, of the answers it gives with 80% confidence, 80% are right.
Confidence here is the probability of the predicted class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def confidences(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) probabilities -> (confidence of the predicted class (N,), the predictions (N,))."""
    predictions = probs.argmax(axis=1)
    return probs[np.arange(len(probs)), predictions].astype(np.float64), predictions


def _bin_of(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bins over [0, 1]: [i/B, (i+1)/B), the last one closed at 1."""
    return np.minimum((confidence * bins).astype(np.int64), bins - 1)


@dataclass(frozen=True)
class Reliability:
    """Confidence against accuracy, bin by bin (empty bins have count 0 and NaN means)."""

    edges: np.ndarray  # (B + 1,)
    counts: np.ndarray  # (B,)
    confidence: np.ndarray  # (B,) mean confidence in each bin
    accuracy: np.ndarray  # (B,) fraction right in each bin
    ece: float  # expected calibration error: sum over bins of (count / N) * |accuracy - confidence|


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> Reliability:
    conf, predictions = confidences(probs)
    right = (predictions == labels).astype(np.float64)
    which = _bin_of(conf, bins)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, conf, minlength=bins) / counts
        accuracy = np.bincount(which, right, minlength=bins) / counts
    gaps = np.where(counts > 0, np.abs(np.nan_to_num(accuracy) - np.nan_to_num(mean_conf)), 0.0)
    ece = float((counts * gaps).sum() / max(len(conf), 1))
    return Reliability(np.linspace(0, 1, bins + 1), counts, mean_conf, accuracy, ece)


@dataclass(frozen=True)
class ConfidenceHistograms:
    """How many right and wrong answers were given at each confidence."""

    edges: np.ndarray  # (B + 1,)
    right: np.ndarray  # (B,)
    wrong: np.ndarray  # (B,)


def confidence_histograms(probs: np.ndarray, labels: np.ndarray, bins: int = 20) -> ConfidenceHistograms:
    conf, predictions = confidences(probs)
    which = _bin_of(conf, bins)
    ok = predictions == labels
    return ConfidenceHistograms(
        np.linspace(0, 1, bins + 1),
        np.bincount(which[ok], minlength=bins),
        np.bincount(which[~ok], minlength=bins),
    )


@dataclass(frozen=True)
class Coverage:
    """The net answers only when at least `threshold` sure, else says "I don't know"."""

    threshold: float
    answered: int
    total: int
    right: int

    @property
    def coverage(self) -> float:
        return self.answered / self.total if self.total else 0.0

    @property
    def accuracy(self) -> float:
        """Accuracy of the answers given (1.0 when it gives none: it made no mistake)."""
        return self.right / self.answered if self.answered else 1.0


def at_threshold(probs: np.ndarray, labels: np.ndarray, threshold: float) -> Coverage:
    conf, predictions = confidences(probs)
    answered = conf >= threshold
    right = int((predictions[answered] == labels[answered]).sum())
    return Coverage(float(threshold), int(answered.sum()), len(conf), right)


@dataclass(frozen=True)
class CoverageCurve:
    """Coverage against accuracy as the threshold rises, at up to `points` thresholds."""

    thresholds: np.ndarray  # (P,) ascending
    coverage: np.ndarray  # (P,) fraction answered
    accuracy: np.ndarray  # (P,) accuracy of the answers given


def coverage_curve(probs: np.ndarray, labels: np.ndarray, points: int = 200) -> CoverageCurve:
    """Every threshold at once: sort by confidence, most sure first; answering the k most sure
    covers k/N with accuracy (right among them)/k. Thresholds at the confidences themselves."""
    conf, predictions = confidences(probs)
    order = np.argsort(-conf, kind="stable")
    right = np.cumsum(predictions[order] == labels[order])
    k = np.arange(1, len(conf) + 1)
    # Ties: a threshold answers every digit at least that sure, so keep the last of each run of equal confidences.
    sorted_conf = conf[order]
    last = np.flatnonzero(np.r_[sorted_conf[1:] != sorted_conf[:-1], True])
    if len(last) > points:
        last = last[np.unique(np.linspace(0, len(last) - 1, points).round().astype(int))]
    return CoverageCurve(sorted_conf[last][::-1], (k[last] / len(conf))[::-1], (right[last] / k[last])[::-1])
