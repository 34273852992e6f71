"""Figure builders: the traces, axes and images they promise, from plain data."""

import base64
import io

import numpy as np
from PIL import Image

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


def png_pixels(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    return np.array(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def test_digits_figure_captions_every_digit_and_ships_one_small_png(rng):
    images = rng.random((12, 784))
    fig = charts.digits_figure(images, [str(i % 10) for i in range(12)], columns=5)
    assert [a.text for a in fig.layout.annotations] == [str(i % 10) for i in range(12)]
    pixels = png_pixels(fig.data[0].source)
    assert pixels.shape == (3 * 40 - 12, 5 * 40 - 12)
    np.testing.assert_allclose(pixels[:28, 40:68], np.round(255 * (1 - images[1].reshape(28, 28))), atol=0.5)
    assert (pixels[28:40] == 255).all()  # the gaps are white
    assert len(fig.to_json()) < 30_000  # a heatmap of the same grid was about 200 kB of JSON


def test_digits_png_is_crisp_and_labelled(rng):
    images = rng.random((12, 784))
    pixels = np.array(Image.open(io.BytesIO(charts.digits_png(images, [str(i % 10) for i in range(12)], columns=5))))
    scale, pitch = 3, 40  # 3 screen pixels a pixel; 28 + a 12-pixel gap for the labels
    assert pixels.shape == (3 * pitch * scale, (5 * pitch - 12) * scale)
    digit = pixels[: 28 * scale, pitch * scale : (pitch + 28) * scale]  # the second digit
    np.testing.assert_array_equal(digit, digit[::scale, ::scale].repeat(scale, 0).repeat(scale, 1))  # crisp squares
    np.testing.assert_allclose(digit[::scale, ::scale], np.round(255 * (1 - images[1].reshape(28, 28))), atol=0.5)
    label = pixels[28 * scale : pitch * scale, : 28 * scale]
    assert (label < 200).any() and (pixels[28 * scale : pitch * scale, 28 * scale : pitch * scale] == 255).all()


def test_grid_leaves_room_for_the_outer_captions():
    fig = charts.digit_grid_figure(np.zeros((20, 784)), ["#1<br>0→1 50%"] * 20, list(range(20)), columns=10)
    gap = 24
    x0, x1 = fig.layout.xaxis.range
    assert x0 <= -0.5 - gap / 2 and x1 >= 10 * (28 + gap) - gap - 0.5 + gap / 2  # half a gap beyond each side


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
    assert heat.texttemplate == "%{text:,}"  # 1,135, not 1135


def test_confusion_figure_axes_are_exactly_the_ten_digits():
    """No scaleanchor: keeping the cells square made Plotly widen the y range (-3..12) in a
    narrow column. The browser check is in test_browser_ui.py."""
    fig = charts.confusion_figure(np.ones((10, 10), dtype=int))
    assert list(fig.layout.yaxis.range) == [9.5, -0.5] and list(fig.layout.xaxis.range) == [-0.5, 9.5]
    assert fig.layout.yaxis.scaleanchor is None and fig.layout.xaxis.scaleanchor is None


def test_per_class_axis_ends_at_100_percent():
    fig = charts.per_class_figure(np.array([0.99, 1.0, 0.9, 0.95, 0.97, 0.96, 0.98, 0.97, 0.93, 0.94]))
    assert fig.layout.xaxis.range == (0.85, 1.0)
    assert fig.data[0].orientation == "h" and fig.data[0].text[1] == "100.0%"


def test_class_counts_use_thousands_separators():
    fig = charts.class_counts_figure(np.zeros(1200, dtype=int), "t")
    assert fig.data[0].texttemplate == "%{y:,}" and fig.layout.yaxis.tickformat == ","


def test_evidence_map_with_one_huge_pixel_still_colours_the_others(rng):
    evidence = rng.normal(0, 1, 784)
    evidence[100] = 1000.0  # one pixel 300 times larger than the rest
    fig = charts.evidence_figure(np.zeros(784), evidence, toward=3, away_from=5)
    heat = fig.data[1]
    assert heat.zmin == -heat.zmax  # symmetric around zero: white means no evidence
    assert heat.zmax < 5  # the 99th percentile of |values|, not the outlier
    visible = np.abs(evidence) / heat.zmax > 0.25  # at least a quarter of the way to full colour
    assert visible.mean() > 0.5, visible.mean()
    assert charts.robust_limit(np.zeros(784)) == 1.0
    sparse = np.zeros(784)
    sparse[:3] = [0.5, -2.0, 1.0]  # fewer non-zero pixels than the top 1%: the largest sets the range
    assert charts.robust_limit(sparse) == 2.0


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


def test_a_long_run_is_drawn_on_an_axis_that_grows_with_it_not_squeezed_into_the_plan():
    def upper(done: int, planned: int) -> float:
        runs = [("run 1", [record(e, 1.0) for e in range(done)])]
        return charts.training_figure(charts.series_for(runs), epochs=planned).layout.xaxis.range[1]

    assert upper(4, 200) == 10.5  # four epochs of 200: on ten, not on two hundred
    assert upper(9, 200) == 20.5 and upper(40, 200) == 50.5 and upper(190, 200) == 200.5
    assert upper(4, 12) == 12.5  # a short plan is drawn whole, as before
    assert charts.axis_epochs(0, 200) == 10 and charts.axis_epochs(400, 500) == 500
