"""The per-batch training-loss trace: averaged down to a few points an epoch as batches
finish, and smoothed for reading the way Weights & Biases smooths a curve (an exponential
moving average, de-biased so that its first points are not pulled towards zero).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

TRACE_POINTS_PER_EPOCH = 50  # the per-batch loss is averaged down to at most this many points an epoch


class LossTrace:
    """Batch losses in, (fractional epoch, mean loss) points out: at most `per_epoch` a
    epoch, each the mean of the batches since the previous one. Step e + b/B is "after
    batch b of B in 0-based epoch e", so the last point of epoch e sits at e + 1, where the
    per-epoch curves put their point "after e + 1 epochs"."""

    def __init__(self, per_epoch: int = TRACE_POINTS_PER_EPOCH):
        self.per_epoch = per_epoch
        self.points: list[tuple[float, float]] = []
        self._bucket: list[float] = []

    def add(self, epoch: int, batch: int, batches: int, loss: float) -> tuple[float, float] | None:
        """Take one batch's loss (a non-finite one is skipped); the new point, if one is made."""
        if not math.isfinite(loss):
            return None
        self._bucket.append(loss)
        every = max(1, math.ceil(batches / self.per_epoch))
        if batch % every == 0 or batch == batches:
            point = (epoch + batch / batches, sum(self._bucket) / len(self._bucket))
            self.points.append(point)
            self._bucket.clear()
            return point
        return None

    def take(self) -> list[tuple[float, float]]:
        """The points made since the last take (a recorder commits them with their epoch)."""
        points, self.points = self.points, []
        return points


def ema(values: Sequence[float], smoothing: float) -> list[float]:
    """De-biased exponential moving average, as W&B's "exponential moving average" smoothing.

    last = smoothing * last + (1 - smoothing) * value, starting from 0, divided by
    1 - smoothing ** (i + 1): the first output is the first value, not (1 - smoothing)
    times it. smoothing 0 returns the values; it must be in [0, 1).
    """
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1) (got {smoothing!r})")
    out, last, weight = [], 0.0, 1.0
    for value in values:
        last = smoothing * last + (1 - smoothing) * value
        weight *= smoothing
        out.append(last / (1 - weight))
    return out
