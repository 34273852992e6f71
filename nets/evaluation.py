"""Evaluating a net on a whole set: loss, accuracy, predictions and the confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK = 10_000  # rows per forward pass: bounds the activations' memory for wide nets


@dataclass(frozen=True)
class Evaluation:
    """A net's outputs on a labelled set, computed once and then only read."""

    probs: np.ndarray  # (N, C) class probabilities
    labels: np.ndarray  # (N,) the truth
    loss: float  # mean cross-entropy

    @property
    def predictions(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).mean())

    @property
    def errors(self) -> int:
        return int((self.predictions != self.labels).sum())


def evaluate(net, x: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Probabilities, loss and accuracy of `net` on (x, labels), in chunks of CHUNK rows."""
    probs = np.empty((len(x), net.output_size), dtype=net.dtype)
    for start in range(0, len(x), CHUNK):
        probs[start : start + CHUNK] = net.probabilities(x[start : start + CHUNK])
    eps = np.finfo(probs.dtype).eps
    picked = probs[np.arange(len(labels)), labels]
    loss = float(-np.log(np.maximum(picked, eps)).mean()) if len(labels) else float("nan")
    return Evaluation(probs=probs, labels=labels, loss=loss)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """(num_classes, num_classes) counts: row = true class, column = predicted class."""
    return np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )
