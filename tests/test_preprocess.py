"""Drawing preprocessing: synthetic strokes land centred, 20 px tall, bright; edge cases."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from nets.preprocess import (
    ink,
    nearest,
    preprocess,
    squared_norms,
    stroke_width,
    to_mnist,
    typical_stroke_widths,
)


def canvas(draw, size: int = 280, transparent: bool = False) -> np.ndarray:
    """An RGBA canvas as the drawing component returns it: white ink on black (or on alpha 0)."""
    background = (0, 0, 0, 0) if transparent else (0, 0, 0, 255)
    image = Image.new("RGBA", (size, size), background)
    draw(ImageDraw.Draw(image))
    return np.asarray(image)


def vertical_stroke(d):  # a "1" in the top-left part of the canvas
    d.line([(60, 30), (60, 190)], fill=(255, 255, 255, 255), width=18)


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(image.shape)
    return (ys * image).sum() / image.sum(), (xs * image).sum() / image.sum()


@pytest.mark.parametrize("transparent", [False, True])
def test_a_stroke_lands_centred_20_pixels_tall_and_bright(transparent):
    result = preprocess(canvas(vertical_stroke, transparent=transparent))
    assert not result.empty and result.x.shape == (784,) and result.x.dtype == np.float32
    image = result.x.reshape(28, 28)
    rows = np.flatnonzero(image.max(axis=1) > 0.05)
    assert rows[-1] - rows[0] + 1 in (20, 21)  # the longer side fills the 20 px box
    cy, cx = centre_of_mass(image)
    assert abs(cy - 14.0) <= 0.5 and abs(cx - 14.0) <= 0.5  # where MNIST puts it
    assert image.max() == pytest.approx(1.0, abs=0.02) and image.min() == 0.0


def test_aspect_ratio_is_kept():
    wide = preprocess(canvas(lambda d: d.rectangle([40, 120, 240, 160], fill=(255, 255, 255, 255))))
    image = wide.x.reshape(28, 28)
    cols = np.flatnonzero(image.max(axis=0) > 0.05)
    rows = np.flatnonzero(image.max(axis=1) > 0.05)
    assert cols[-1] - cols[0] + 1 in (20, 21) and rows[-1] - rows[0] + 1 in (4, 5, 6)  # 200 x 40 -> 20 x 4


def test_empty_canvas_is_empty():
    assert preprocess(canvas(lambda d: None)).empty
    assert preprocess(canvas(lambda d: None, transparent=True)).empty
    assert to_mnist(np.zeros((0, 0))) is None


def test_one_pixel_drawing_is_centred_not_an_error():
    dot = np.zeros((280, 280, 4), dtype=np.uint8)
    dot[..., 3] = 255
    dot[200, 17, :3] = 255
    result = preprocess(dot)
    assert not result.empty
    cy, cx = centre_of_mass(result.x.reshape(28, 28))
    assert abs(cy - 14.0) <= 0.5 and abs(cx - 14.0) <= 0.5  # where MNIST puts it


def test_ink_from_colour_or_alpha():
    opaque = np.zeros((2, 2, 4), dtype=np.uint8)
    opaque[..., 3] = 255
    opaque[0, 0, :3] = 200
    assert ink(opaque)[0, 0] == 200 and ink(opaque)[1, 1] == 0
    transparent = np.zeros((2, 2, 4), dtype=np.uint8)
    transparent[1, 0, 3] = 255
    assert ink(transparent)[1, 0] == 255 and ink(np.full((2, 2), 7))[0, 0] == 7


@pytest.mark.parametrize("width", [1, 2, 3, 5])
def test_stroke_width_of_a_bar(width):
    image = np.zeros((28, 28))
    image[4:24, 10 : 10 + width] = 1
    assert stroke_width(image) == pytest.approx(width, rel=0.15)
    assert stroke_width(np.zeros((28, 28))) == 0.0


def test_typical_stroke_widths_and_nearest(rng):
    images = rng.random((50, 784)).astype(np.float32)
    low, high = typical_stroke_widths(images, sample=50)
    assert 0 < low <= high
    x = images[17] + 0.01
    assert nearest(x, images, squared_norms(images), k=3)[0] == 17
    assert list(nearest(x, images, k=1)) == [17]
