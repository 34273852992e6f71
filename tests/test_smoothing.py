"""The loss trace's downsampling and its W&B-style de-biased smoothing."""

from __future__ import annotations

import pytest

from nets.smoothing import LossTrace, ema


def test_ema_is_debiased_from_the_first_point():
    # last: 0.5, 1.25, 2.125; divided by 1 - 0.5, 1 - 0.25, 1 - 0.125.
    assert ema([1.0, 2.0, 3.0], 0.5) == pytest.approx([1.0, 1.25 / 0.75, 2.125 / 0.875])
    assert ema([4.0, 4.0, 4.0], 0.9) == pytest.approx([4.0, 4.0, 4.0])  # a flat curve stays flat
    assert ema([1.0, 5.0], 0.0) == [1.0, 5.0]
    with pytest.raises(ValueError):
        ema([1.0], 1.0)


def test_trace_averages_batches_into_at_most_fifty_points_an_epoch_ending_on_the_epoch():
    trace = LossTrace(50)
    for epoch in range(2):
        for batch in range(1, 121):
            trace.add(epoch, batch, 120, float(batch))
    points = trace.take()
    assert len(points) == 80  # every 3 batches: 40 an epoch
    assert points[0] == (pytest.approx(3 / 120), 2.0)  # mean of batches 1, 2, 3
    assert points[39][0] == 1.0 and points[-1][0] == 2.0
    assert trace.take() == []


def test_trace_skips_non_finite_losses():
    trace = LossTrace(50)
    assert trace.add(0, 1, 2, float("nan")) is None
    assert trace.add(0, 2, 2, 1.5) == (1.0, 1.5)
