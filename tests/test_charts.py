"""Figure builders: the traces, axes and images they promise, from plain data."""

import numpy as np

import charts
from nets.training import EpochMetrics


def record(epoch: int, loss: float) -> EpochMetrics:
    return EpochMetrics(epoch, 3, loss, 0.9, loss, 0.91, loss, 0.92, 80, 0.1, 1.0, 0.1, 1000.0)


def test_training_figure_has_one_line_per_split_and_run():
    runs = [("run 1", [record(0, 0.5), record(1, 0.3)]), ("run 2", [record(0, 0.6)])]
    fig = charts.training_figure(charts.series_for(runs), epochs=3)
    names = [t.name for t in fig.data]
    assert names == [
        f"{run} · {split}"
        for run in ("run 1", "run 2")
        for split in ("train", "validation", "train", "validation", "test")
    ]
    assert list(fig.data[0].x) == [1, 2] and list(fig.data[0].y) == [0.5, 0.3]  # epochs from 1
    assert fig.data[0].line.color != fig.data[5].line.color  # one colour per run
    assert fig.layout.xaxis.range == (0.5, 3.5)


def test_tile_lays_images_row_by_row_with_gaps():
    images = np.arange(3 * 2 * 2, dtype=float).reshape(3, 2, 2)
    mosaic = charts.tile(images, columns=2, gap=1, fill=-1)
    assert mosaic.shape == (5, 5)
    np.testing.assert_array_equal(mosaic[:2, 3:], images[1])
    np.testing.assert_array_equal(mosaic[3:, :2], images[2])
    assert (mosaic[2] == -1).all() and (mosaic[3:, 3:] == -1).all()


def test_weights_figure_scales_each_unit_to_its_range(rng):
    W1 = rng.standard_normal((784, 20))
    W1[:, 3] *= 100
    fig = charts.weights_figure(W1, units=range(8), columns=4)
    z = np.array(fig.data[0].z, dtype=float)
    assert z.shape == (2 * 29 - 1, 4 * 29 - 1)
    assert np.nanmax(np.abs(z)) == 1.0 and fig.data[0].zmin == -1


def test_digits_figure_captions_every_digit(rng):
    fig = charts.digits_figure(rng.random((12, 784)), [str(i % 10) for i in range(12)], columns=5)
    assert [a.text for a in fig.layout.annotations] == [str(i % 10) for i in range(12)]
    assert np.array(fig.data[0].z).shape == (3 * 40 - 12, 5 * 40 - 12)


def test_class_counts():
    fig = charts.class_counts_figure(np.array([0, 1, 1, 9]), "t")
    assert list(fig.data[0].y) == [1, 2, 0, 0, 0, 0, 0, 0, 0, 1]


def test_confusion_figure_clickable_cells_and_mistake_colours():
    cm = np.arange(100).reshape(10, 10)
    fig = charts.confusion_figure(cm, selected=(9, 4))
    heat, targets = fig.data
    assert np.isnan(np.array(heat.z, dtype=float)[3, 3]) and heat.text[9][4] == 94  # diagonal uncoloured
    assert list(targets.customdata[94]) == [9, 4] and targets.x[94] == 4 and targets.y[94] == 9
    assert fig.layout.shapes[0].x0 == 3.5 and fig.layout.shapes[0].y0 == 8.5  # the selected cell


def test_digit_grid_click_targets_carry_test_indices(rng):
    fig = charts.digit_grid_figure(rng.random((3, 784)), ["a", "b", "c"], [17, 5, 999], columns=2)
    assert list(fig.data[1].customdata) == [17, 5, 999]
    assert [a.text for a in fig.layout.annotations] == ["a", "b", "c"]


def test_training_figure_before_the_first_epoch_has_readable_axes():
    fig = charts.training_figure([], epochs=5)
    assert {t.xaxis for t in fig.data} == {"x", "x2"}  # one empty trace per panel: Plotly draws both
    assert all(len(t.x) == 0 for t in fig.data)
    assert list(fig.layout.yaxis.range) == [0, 2.5] and list(fig.layout.yaxis2.range) == [0, 1]
    assert list(fig.layout.xaxis2.range) == [0.5, 5.5]
