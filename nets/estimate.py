"""How long an epoch of a config takes on this machine, and how sure that figure is.

First choice: the runs already made here with the same cost (the same shapes, batch,
optimiser and augmentation): their measured epochs, training and evaluation together.
Otherwise a measurement now: the real training loop on a slice of the data, a few times,
the fastest slice scaled up, so one disturbed moment (another session training, a page
being sent) does not decide the figure.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass

from nets.config import TrainConfig
from nets.data import Mnist
from nets.training import EpochMetrics, train
from nets.two_layer_net import TwoLayerNet

# The settings that decide an epoch's cost; the others (seed, learning rate, ...) do not.
COST_FIELDS = (
    "hidden_size", "activation", "optimizer", "batch_size", "augment_shift", "augment_elastic", "augment_rotate",
    "augment_scale", "dtype", "train_samples",
)  # fmt: skip


@dataclass(frozen=True)
class EpochEstimate:
    seconds: float  # the typical epoch, training and evaluation
    low: float  # the spread seen: the fastest and the slowest epoch (runs) or trial (measured)
    high: float
    basis: str  # "runs": from earlier runs here; "measured": timed now
    samples: int  # epochs (runs) or trials (measured) behind the figure


TRAIN_ROWS = 55_000  # the training set's rows when a config uses them all
BATCH_WORK = 2e6  # a batch's fixed cost beyond its products (updates, softmax, calls), in multiply-adds


def relative_work(config: TrainConfig) -> float:
    """A run's training work in multiply-adds, roughly: the two layers' products forward and
    back for every row of every epoch, plus a fixed cost per batch. Only for ordering runs by
    length (a sweep's grid, longest first); the seconds come from `from_history` or `measure`."""
    rows = min(config.train_samples or TRAIN_ROWS, TRAIN_ROWS)
    per_row = 3 * config.hidden_size * (784 + 10)
    return config.epochs * (rows * per_row + math.ceil(rows / config.batch_size) * BATCH_WORK)


def same_cost(a: TrainConfig, b: TrainConfig) -> bool:
    return all(getattr(a, f) == getattr(b, f) for f in COST_FIELDS)


def from_history(histories: Iterable[list[EpochMetrics]], recent: int = 20) -> EpochEstimate | None:
    """The median of the most recent epochs of earlier runs with the same cost (the first
    epoch of each run is left out: it pays for warm-up)."""
    epochs = [m.seconds + m.eval_seconds for history in histories for m in history[1:]][-recent:]
    if not epochs:
        return None
    return EpochEstimate(statistics.median(epochs), min(epochs), max(epochs), "runs", len(epochs))


def measure(config: TrainConfig, data: Mnist, budget: float = 1.0, tries: int = 3) -> EpochEstimate:
    """Train the config for real on a slice of the training rows (about 10 batches): once
    to warm up (first touches of the data and the weights), then up to `tries` times within
    `budget` seconds; scale the fastest slice to the full epoch. The fastest is the one
    least disturbed by whatever else the machine did meanwhile (a page being sent, another
    session). The epoch's evaluation is timed as the loop runs it."""
    rows = config.train_samples or len(data.x_train)
    sample = min(rows, max(10 * config.batch_size, 1000))
    # The cost does not depend on the step size; a small one keeps a trial of a diverging
    # recipe (a learning rate of 10, say) from stopping before it is timed.
    trial = config.replace(epochs=1, train_samples=sample, lr_schedule="constant", learning_rate=1e-4)
    epochs = []
    deadline = time.perf_counter() + budget
    for attempt in range(tries + 1):
        (metrics,) = list(train(TwoLayerNet.from_config(trial), data, trial))
        if attempt:
            epochs.append(metrics.seconds / sample * rows + metrics.eval_seconds)
        if epochs and time.perf_counter() > deadline:
            break
    return EpochEstimate(min(epochs), min(epochs), max(epochs), "measured", len(epochs))
