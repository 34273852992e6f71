"""Evaluating a net on a whole set: loss, accuracy, predictions and the confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nets.functions import cross_entropy

CHUNK = 2_500  # rows per forward pass: the activations stay in the L3 cache (10,000 took 1.19 of the first
# product for the seed net, 2,500 1.14, on a 32 MB-L3 EPYC) and their memory stays bounded for wide nets


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
    loss = cross_entropy(probs, labels) if len(labels) else float("nan")
    return Evaluation(probs=probs, labels=labels, loss=loss)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """(num_classes, num_classes) counts: row = true class, column = predicted class."""
    return np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def per_class_accuracy(labels: np.ndarray, predictions: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """(num_classes,) fraction of each true class predicted right (NaN for an absent class)."""
    totals = np.bincount(labels, minlength=num_classes)
    right = np.bincount(labels[predictions == labels], minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return right / totals


SORTS = ("index", "confidence", "margin")


def misclassified(
    ev: Evaluation, true: int | None = None, predicted: int | None = None, sort: str = "index"
) -> np.ndarray:
    """Indices of the wrong predictions, optionally of one true and/or predicted class.

    sort: "index" (test order), "confidence" (most confident mistakes first: the
    probability given to the wrong class), or "margin" (largest gap first between the
    predicted class's probability and the true class's: how far from right).
    """
    preds = ev.predictions
    mask = preds != ev.labels
    if true is not None:
        mask &= ev.labels == true
    if predicted is not None:
        mask &= preds == predicted
    idx = np.flatnonzero(mask)
    if sort == "confidence":
        idx = idx[np.argsort(-ev.probs[idx, preds[idx]], kind="stable")]
    elif sort == "margin":
        margin = ev.probs[idx, preds[idx]] - ev.probs[idx, ev.labels[idx]]
        idx = idx[np.argsort(-margin, kind="stable")]
    elif sort != "index":
        raise ValueError(f"sort must be one of {', '.join(SORTS)} (got {sort!r})")
    return idx


def unsure_correct(ev: Evaluation, true: int | None = None, threshold: float = 1.0) -> np.ndarray:
    """Indices of right predictions made with a confidence below `threshold` (the
    probability of the predicted class), least confident first: the near misses.

    The default, 1.0, keeps every right prediction that is not certain.
    """
    preds = ev.predictions
    confidence = ev.probs[np.arange(len(preds)), preds]
    mask = (preds == ev.labels) & (confidence < threshold)
    if true is not None:
        mask &= ev.labels == true
    idx = np.flatnonzero(mask)
    return idx[np.argsort(confidence[idx], kind="stable")]


def runner_up(probs_row: np.ndarray) -> int:
    """The second most probable class of one (C,) probability row."""
    return int(np.argsort(probs_row)[-2])


def evidence(net, x: np.ndarray, toward: int, away_from: int) -> np.ndarray:
    """Input x gradient of (score[toward] - score[away_from]) for one image x (D,).

    Positive pixels pushed the net toward `toward` (the prediction) rather than
    `away_from` (the truth). For this net it is exact and cheap: one forward pass and the
    chain rule back through W2, the activation and W1.
    """
    x = x.reshape(1, -1).astype(net.dtype)
    activation = net.layers[1]
    activation.forward(net.layers[0].forward(x))  # caches what the activation's backward needs
    W1, W2 = net.params["W1"], net.params["W2"]
    dh = (W2[:, toward] - W2[:, away_from])[None, :]  # d(score difference) / dh, (1, H)
    da = activation.backward(dh)  # (1, H)
    dx = da @ W1.T  # (1, D)
    return (x * dx)[0]
