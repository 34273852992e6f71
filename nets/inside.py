"""A digit through the net: hidden activations, each unit's share of every score, units switched off.

For this net a class score is exactly a sum over the hidden units plus a bias:
logit[c] = sum_j h[j] * W2[j, c] + b2[c]. So "what a unit did for a class" needs no
approximation: it is h[j] * W2[j, c], its contribution. Switching a unit off sets its
activation to 0, which is the same as zeroing its outgoing weights (W2[j, :]).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nets.functions import softmax

CHUNK = 5_000  # rows per pass: bounds the memory of a wide net's activations


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


ACTIVATIONS = {"relu": lambda z: np.maximum(z, 0), "sigmoid": _sigmoid, "tanh": np.tanh}


def hidden_activations(params: dict, activation: str, x: np.ndarray) -> np.ndarray:
    """Images (N, D) -> hidden activations (N, H), float32, in chunks of CHUNK rows."""
    W1, b1 = params["W1"], params["b1"]
    x = np.atleast_2d(x)
    out = np.empty((len(x), W1.shape[1]), dtype=np.float32)
    act = ACTIVATIONS[activation]
    for start in range(0, len(x), CHUNK):
        out[start : start + CHUNK] = act(x[start : start + CHUNK].astype(W1.dtype) @ W1 + b1)
    return out


def scores(params: dict, hidden: np.ndarray) -> np.ndarray:
    """Hidden activations (N, H) -> class scores (logits) (N, C)."""
    return hidden @ params["W2"] + params["b2"]


def silenced_scores(params: dict, hidden: np.ndarray, full: np.ndarray, units: Sequence[int]) -> np.ndarray:
    """The scores (N, C) with `units` switched off, from the full scores: full minus the
    silenced units' contributions (one small product, not a new forward pass)."""
    units = list(units)
    if not units:
        return full
    return full - hidden[:, units] @ params["W2"][units]


def silence(params: dict, units: Sequence[int]) -> dict:
    """A copy of `params` whose `units` are switched off: their outgoing weights are zero."""
    out = {name: array.copy() for name, array in params.items()}
    out["W2"][list(units)] = 0
    return out


@dataclass(frozen=True)
class Reading:
    """How the net reads one digit: the hidden layer, the scores and who made them."""

    hidden: np.ndarray  # (H,) activations
    contributions: np.ndarray  # (H, C): hidden[j] * W2[j, c], unit j's share of score c
    bias: np.ndarray  # (C,) b2
    silenced: tuple[int, ...]  # units switched off (their contributions are 0)

    @property
    def logits(self) -> np.ndarray:
        """(C,): each score is its units' contributions plus the bias, exactly."""
        return self.contributions.sum(axis=0) + self.bias

    @property
    def probs(self) -> np.ndarray:
        return softmax(self.logits[None, :])[0]

    @property
    def predicted(self) -> int:
        return int(self.logits.argmax())


def read(params: dict, activation: str, x: np.ndarray, silenced: Sequence[int] = ()) -> Reading:
    """One image x (D,) through the net, with the `silenced` units switched off."""
    h = hidden_activations(params, activation, x.reshape(1, -1))[0].astype(np.float64)
    silenced = tuple(sorted({int(u) for u in silenced}))
    h[list(silenced)] = 0.0
    contributions = h[:, None] * params["W2"].astype(np.float64)
    return Reading(h, contributions, params["b2"].astype(np.float64), silenced)


@dataclass(frozen=True)
class TopUnits:
    """The units that pushed one class's score up most (`toward`) and down most (`against`),
    strongest first, with their contributions to it."""

    cls: int
    toward: np.ndarray  # unit indices, contribution > 0, largest first
    against: np.ndarray  # unit indices, contribution < 0, most negative first
    toward_share: np.ndarray  # their contributions
    against_share: np.ndarray


def top_units(reading: Reading, cls: int, k: int = 6) -> TopUnits:
    """The k units contributing most for and most against class `cls`."""
    share = reading.contributions[:, cls]
    order = np.argsort(-share, kind="stable")
    toward = order[:k][share[order[:k]] > 0]
    low = np.argsort(share, kind="stable")[:k]
    against = low[share[low] < 0]
    return TopUnits(cls, toward, against, share[toward], share[against])


def most_exciting(hidden: np.ndarray, unit: int, k: int = 12) -> np.ndarray:
    """Indices of the k rows of `hidden` (N, H) where `unit` is most active, most first."""
    column = hidden[:, unit]
    k = min(k, len(column))
    best = np.argpartition(-column, k - 1)[:k]
    return best[np.argsort(-column[best], kind="stable")]


@dataclass(frozen=True)
class Ablation:
    """The test set with some units switched off, beside the same net whole."""

    units: tuple[int, ...]
    accuracy: float  # whole net
    silenced_accuracy: float
    changed: int  # digits whose prediction changed


def ablation(params: dict, hidden: np.ndarray, full: np.ndarray, labels: np.ndarray, units: Sequence[int]) -> Ablation:
    """Test accuracy with and without `units`, from the test set's hidden activations and scores."""
    before = full.argmax(axis=1)
    after = silenced_scores(params, hidden, full, units).argmax(axis=1)
    return Ablation(
        tuple(sorted(int(u) for u in units)),
        float((before == labels).mean()),
        float((after == labels).mean()),
        int((before != after).sum()),
    )


@dataclass(frozen=True)
class TestSetInside:
    """A labelled set through the net, once per model version: what the map, the units'
    favourite digits and the switched-off accuracy are computed from. Read-only arrays."""

    hidden: np.ndarray  # (N, H) float32 activations
    scores: np.ndarray  # (N, C) logits of the whole net
    labels: np.ndarray  # (N,)

    @property
    def predictions(self) -> np.ndarray:
        return self.scores.argmax(axis=1)

    @property
    def probs(self) -> np.ndarray:
        return softmax(self.scores)


def through(params: dict, activation: str, x: np.ndarray, labels: np.ndarray) -> TestSetInside:
    """Every image of (x, labels) through the net: hidden activations and scores."""
    hidden = hidden_activations(params, activation, x)
    full = scores(params, hidden).astype(np.float32)
    for array in (hidden, full):
        array.flags.writeable = False
    return TestSetInside(hidden, full, np.asarray(labels))
