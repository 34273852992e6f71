"""Shift augmentation: exact pixel moves, black fill, reproducible, input untouched."""

import numpy as np
import pytest

from nets.augment import random_shift, shift_images, shifted_batch


def one_pixel(y=10, x=12):
    image = np.zeros((1, 28, 28), dtype=np.float32)
    image[0, y, x] = 1
    return image


@pytest.mark.parametrize("dy, dx", [(0, 0), (1, 0), (0, -1), (-2, 3), (1, 1)])
def test_shift_moves_a_pixel_exactly(dy, dx):
    out = shift_images(one_pixel(), dy, dx)
    assert out.sum() == 1 and out[0, 10 + dy, 12 + dx] == 1


def test_what_enters_is_black_nothing_wraps():
    image = np.ones((1, 28, 28), dtype=np.float32)
    out = shift_images(image, 1, -1)
    assert out[0, 0, :].sum() == 0 and out[0, :, 27].sum() == 0  # top row and right column entered
    assert out.sum() == 27 * 27


def test_random_shift_rows_are_shifted_copies_within_range(rng):
    x = rng.random((64, 784), dtype=np.float32)
    x_before = x.copy()
    out = random_shift(x, 1, np.random.default_rng(0))
    np.testing.assert_array_equal(x, x_before)
    assert out.shape == x.shape and out.dtype == x.dtype
    images = x.reshape(-1, 28, 28)
    seen = set()
    for row in range(64):
        matches = [
            (dy, dx)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if np.array_equal(out[row], shift_images(images[row : row + 1], dy, dx).reshape(784))
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 9  # 64 rows use every one of the 9 shifts


def test_random_shift_is_reproducible_and_zero_is_identity(rng):
    x = rng.random((16, 784), dtype=np.float32)
    a = random_shift(x, 2, np.random.default_rng(5))
    b = random_shift(x, 2, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert random_shift(x, 0, np.random.default_rng(5)) is x


@pytest.mark.parametrize("index", [np.array([7, 3, 50, 33, 21, 0, 63, 12, 40, 41, 5, 9]), slice(8, 40)])
def test_shifted_batch_is_random_shifts_batch_grouped_by_shift_labels_alongside(rng, index):
    """The same digits shifted the same way as random_shift(x[index]) with the same draws,
    in another order (grouped by shift), each with its own label."""
    x = rng.random((64, 784), dtype=np.float32)
    y = np.arange(64)
    expected = random_shift(x[index], 2, np.random.default_rng(3))
    got, labels = shifted_batch(x, y, index, 2, np.random.default_rng(3))
    assert got.shape == expected.shape and got.dtype == x.dtype
    position = {row.tobytes(): i for i, row in enumerate(expected)}
    order = [position[row.tobytes()] for row in got]
    assert sorted(order) == list(range(len(expected)))  # a permutation of the same rows
    np.testing.assert_array_equal(labels, y[index][order])
