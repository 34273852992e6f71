"""How long an epoch of a config takes on this machine, and how sure that figure is.

First choice: the runs already made here with the same cost (the same shapes, batch,
optimiser and augmentation): their measured epochs, training and evaluation together.
Otherwise a measurement now: enough timed training steps to fill a fixed time budget,
so one slow step (another session training, a page redraw) does not decide the figure.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from nets.config import TrainConfig
from nets.optimizers import make_optimizer
from nets.training import EpochMetrics
from nets.two_layer_net import TwoLayerNet

# The settings that decide an epoch's cost; the others (seed, learning rate, ...) do not.
COST_FIELDS = ("hidden_size", "activation", "optimizer", "batch_size", "augment_shift", "dtype", "train_samples")


@dataclass(frozen=True)
class EpochEstimate:
    seconds: float  # the typical epoch, training and evaluation
    low: float  # the spread seen: fastest and slowest epoch (runs), or quartiles of the steps (measured)
    high: float
    basis: str  # "runs": from earlier runs here; "measured": timed now
    samples: int  # epochs (runs) or training steps (measured) behind the figure


def same_cost(a: TrainConfig, b: TrainConfig) -> bool:
    return all(getattr(a, f) == getattr(b, f) for f in COST_FIELDS)


def from_history(histories: Iterable[list[EpochMetrics]], recent: int = 20) -> EpochEstimate | None:
    """The median of the most recent epochs of earlier runs with the same cost (the first
    epoch of each run is left out: it pays for warm-up)."""
    epochs = [m.seconds + m.eval_seconds for history in histories for m in history[1:]][-recent:]
    if len(epochs) < 3:
        return None
    return EpochEstimate(statistics.median(epochs), min(epochs), max(epochs), "runs", len(epochs))


def measure(config: TrainConfig, rows: int, budget: float = 0.4, max_steps: int = 200) -> EpochEstimate:
    """Time training steps on random data of the config's shapes for about `budget` seconds
    (at least 5 steps after a warm-up), and scale the median step to an epoch. An epoch's
    evaluation (15,000 rows forward) is added as three steps' worth of forward work."""
    rng = np.random.default_rng(0)
    step_rows = min(config.batch_size, 1000)
    net = TwoLayerNet.from_config(config.replace(seed=0))
    optimizer = make_optimizer(config.optimizer, config.learning_rate, config.momentum, config.weight_decay)
    x = rng.random((step_rows, net.input_size), dtype=np.float32)
    y = rng.integers(0, net.output_size, step_rows)
    times: list[float] = []
    deadline = time.perf_counter() + budget
    for step in range(max_steps + 1):
        started = time.perf_counter()
        _, _, grads = net.loss_and_gradient(x, y)
        optimizer.update(net.params, grads)
        if step:  # the first step warms up
            times.append(time.perf_counter() - started)
        if len(times) >= 5 and time.perf_counter() > deadline:
            break
    scale = (config.batch_size / step_rows) * math.ceil(rows / config.batch_size)
    q1, median, q3 = statistics.quantiles(times, n=4) if len(times) >= 4 else (times[0],) * 3
    started = time.perf_counter()
    net.predict(x)
    forward = time.perf_counter() - started
    evaluation = forward * (15_000 / step_rows)
    return EpochEstimate(median * scale + evaluation, q1 * scale + evaluation, q3 * scale + evaluation, "measured",
                         len(times))  # fmt: skip
