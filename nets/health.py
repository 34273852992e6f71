"""The net's health, per epoch: how strong its gradients are, how far each step moves the
weights, how many hidden units are dead or saturated, and how the weights spread out.

Everything is measured as a side effect of work the loop does anyway, so that it costs a
few percent of an epoch at most (`bench/bench_health.py`):
- gradients and update sizes on a few sampled batches of the epoch (HEALTH_SAMPLES), at
  the moment the loop has them;
- dead and saturated units from the validation pass the loop makes after each epoch
  (`evaluate_watching_units` replaces `evaluate` there, same numbers);
- histograms of W1 and W2 on 40 bins, with the initial weights counted on the same bins.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from nets.config import TrainConfig
from nets.evaluation import CHUNK, Evaluation
from nets.functions import cross_entropy, softmax

HEALTH_SAMPLES = 10  # batches an epoch whose gradients and updates are measured
HISTOGRAM_BINS = 40
WEIGHTS = ("W1", "W2")
# A sigmoid unit is saturated where its output is within this of 0 or 1 (its slope is
# then below 0.02 of its peak of 0.25 ... about 0.08 of it); a tanh unit where |out| > 1 - this.
SATURATION_MARGIN = 0.02
# A unit counts as saturated when it is saturated on at least this share of validation digits.
SATURATED_ROWS = 0.9


@dataclass(frozen=True)
class WeightHistogram:
    """A layer's weights on HISTOGRAM_BINS bins, and its initial weights on the same bins."""

    edges: tuple[float, ...]  # HISTOGRAM_BINS + 1 bin edges, symmetric around 0
    counts: tuple[int, ...]  # the weights after the epoch
    initial: tuple[int, ...]  # the weights the run started from


@dataclass(frozen=True)
class EpochHealth:
    """What one epoch shows of the net's health. Layer figures are keyed "W1", "W2"."""

    epoch: int  # 0-based, as EpochMetrics.epoch
    grad_rms: dict[str, float]  # gradient norm / sqrt(weights): per weight, so a big layer does not look strong
    update_ratio: dict[str, float]  # |step| / |W| of one update, mean over the sampled batches
    dead_share: float | None  # ReLU: share of hidden units never active on the validation set (else None)
    saturated_share: float | None  # sigmoid/tanh: share of hidden units saturated on most validation digits
    histograms: dict[str, WeightHistogram]
    seconds: float  # what measuring all this cost during the epoch

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EpochHealth:
        hists = {k: WeightHistogram(tuple(h["edges"]), tuple(h["counts"]), tuple(h["initial"]))
                 for k, h in data["histograms"].items()}  # fmt: skip
        return cls(**{**data, "histograms": hists})


@dataclass(frozen=True)
class UnitActivity:
    """Per hidden unit, over a set of digits: whether it was ever active, and how often it
    was saturated."""

    ever_active: np.ndarray  # (H,) bool: output > 0 on at least one digit
    saturated_rows: np.ndarray  # (H,) int: digits on which it was saturated
    rows: int

    def dead_share(self) -> float:
        return float(1.0 - self.ever_active.mean())

    def saturated_share(self) -> float:
        if not self.rows:
            return 0.0
        return float((self.saturated_rows >= SATURATED_ROWS * self.rows).mean())


def _saturated(activation: str, h: np.ndarray) -> np.ndarray:
    if activation == "sigmoid":
        return (h < SATURATION_MARGIN) | (h > 1 - SATURATION_MARGIN)
    if activation == "tanh":
        return np.abs(h) > 1 - SATURATION_MARGIN
    return np.zeros(h.shape, dtype=bool)


def evaluate_watching_units(net, x: np.ndarray, labels: np.ndarray) -> tuple[Evaluation, UnitActivity, float]:
    """`evaluation.evaluate`, the same numbers, plus what the hidden units did on the way,
    and the seconds the unit counts took (the extra cost)."""
    probs = np.empty((len(x), net.output_size), dtype=net.dtype)
    hidden_in, activation_layer, output = net.layers
    ever_active = np.zeros(net.hidden_size, dtype=bool)
    saturated = np.zeros(net.hidden_size, dtype=np.int64)
    extra = 0.0
    for start in range(0, len(x), CHUNK):
        chunk = x[start : start + CHUNK]
        if chunk.dtype != net.dtype:
            chunk = chunk.astype(net.dtype)
        h = activation_layer.forward(hidden_in.forward(chunk))
        probs[start : start + CHUNK] = softmax(output.forward(h))
        began = time.perf_counter()
        ever_active |= (h > 0).any(axis=0)
        if net.activation != "relu":
            saturated += _saturated(net.activation, h).sum(axis=0)
        extra += time.perf_counter() - began
    loss = cross_entropy(probs, labels) if len(labels) else float("nan")
    return Evaluation(probs=probs, labels=labels, loss=loss), UnitActivity(ever_active, saturated, len(x)), extra


def rms(array: np.ndarray) -> float:
    """sqrt(mean(a^2)): a norm per element."""
    flat = array.ravel()
    return math.sqrt(float(np.dot(flat, flat)) / flat.size) if flat.size else 0.0


def norm(array: np.ndarray) -> float:
    flat = array.ravel()
    return math.sqrt(float(np.dot(flat, flat)))


def histogram(weights: np.ndarray, initial: np.ndarray, bins: int = HISTOGRAM_BINS) -> WeightHistogram:
    """Both sets of weights on the same bins, symmetric around 0, wide enough for both."""
    limit = float(max(np.abs(weights).max(initial=0.0), np.abs(initial).max(initial=0.0))) or 1.0
    edges = np.linspace(-limit, limit, bins + 1)
    counts = _counts(weights, limit, bins)
    return WeightHistogram(tuple(float(e) for e in edges), counts, _counts(initial, limit, bins))


def _counts(values: np.ndarray, limit: float, bins: int) -> tuple[int, ...]:
    # One pass of arithmetic and a bincount: several times faster than np.histogram.
    index = ((values.ravel().astype(np.float64) + limit) * (bins / (2 * limit))).astype(np.int64)
    np.clip(index, 0, bins - 1, out=index)
    return tuple(int(c) for c in np.bincount(index, minlength=bins))


def initial_weights(config: TrainConfig) -> dict[str, np.ndarray]:
    """The weights a run of `config` started from (its initialisation is seeded: drawn again)."""
    from nets.two_layer_net import TwoLayerNet

    net = TwoLayerNet.from_config(config)
    return {name: net.params[name] for name in WEIGHTS}


class HealthProbe:
    """Measures one run's health as it trains. The loop calls `sampled(batch)`, and for a
    sampled batch `before_update` and `after_update` around the optimiser's step; at the
    end of an epoch, `finish` with what the validation pass saw."""

    def __init__(self, initial: dict[str, np.ndarray], batches: int):
        self.initial = initial
        self.every = max(1, math.ceil(batches / HEALTH_SAMPLES))
        self._reset()

    def _reset(self) -> None:
        self._grad: dict[str, list[float]] = {name: [] for name in WEIGHTS}
        self._ratio: dict[str, list[float]] = {name: [] for name in WEIGHTS}
        self._before: dict[str, np.ndarray] = {}
        self.seconds = 0.0

    def sampled(self, batch: int) -> bool:
        """Is this 1-based batch one of the measured ones? (The first, then every `every`-th.)"""
        return (batch - 1) % self.every == 0

    def before_update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        began = time.perf_counter()
        for name in WEIGHTS:
            self._grad[name].append(rms(grads[name]))
            self._before[name] = params[name].copy()
        self.seconds += time.perf_counter() - began

    def after_update(self, params: dict[str, np.ndarray]) -> None:
        began = time.perf_counter()
        for name in WEIGHTS:
            before = self._before.pop(name)
            size = norm(before)
            self._ratio[name].append(norm(params[name] - before) / size if size else float("inf"))
        self.seconds += time.perf_counter() - began

    def finish(self, epoch: int, params: dict[str, np.ndarray], units: UnitActivity, activation: str,
               units_seconds: float = 0.0) -> EpochHealth:  # fmt: skip
        began = time.perf_counter()
        hists = {name: histogram(params[name], self.initial[name]) for name in WEIGHTS}
        relu = activation == "relu"
        health = EpochHealth(
            epoch=epoch,
            grad_rms={name: _mean(v) for name, v in self._grad.items()},
            update_ratio={name: _mean(v) for name, v in self._ratio.items()},
            dead_share=units.dead_share() if relu else None,
            saturated_share=None if relu else units.saturated_share(),
            histograms=hists,
            seconds=self.seconds + units_seconds + time.perf_counter() - began,
        )
        self._reset()
        return health


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values)) if values else float("nan")
