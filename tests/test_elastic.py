"""Elastic and affine distortions (nets/elastic.py), on a few small arrays."""

import numpy as np
import pytest

from nets.config import PRESETS
from nets.elastic import (
    SIDE,
    Distortion,
    affine_coordinates,
    displacement_fields,
    distort,
    identity_coordinates,
    sample,
    smoothing_matrix,
)
from nets.training import distortion_of

STRONG = Distortion(alpha=34.0, sigma=4.0, rotate=15.0, scale=0.15)


def digits(n: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, SIDE * SIDE), dtype=np.float32)


def test_shape_dtype_and_input_untouched():
    x = digits()
    before = x.copy()
    out = distort(x, STRONG, np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == np.float32
    assert np.array_equal(x, before)
    assert not np.array_equal(out, x)


def test_values_stay_within_the_inputs_bounds():
    """Bilinear reads are convex combinations of pixels and black: never outside [0, 1]."""
    out = distort(digits(20), STRONG, np.random.default_rng(2))
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_zero_strength_is_the_identity():
    x = digits()
    assert distort(x, Distortion(), np.random.default_rng(0)) is x
    coords = affine_coordinates(len(x), 0.0, 0.0, np.random.default_rng(0))
    assert np.array_equal(coords, identity_coordinates(len(x)))
    images = x.reshape(-1, SIDE, SIDE)
    assert np.array_equal(sample(images, coords), images)  # the interpolation itself changes nothing


def test_same_seed_same_digits_other_seed_differs():
    x = digits()
    a = distort(x, STRONG, np.random.default_rng(7))
    b = distort(x, STRONG, np.random.default_rng(7))
    c = distort(x, STRONG, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize(("dy", "dx"), [(1, 0), (0, -2), (3, 2)])
def test_a_whole_pixel_displacement_moves_a_pixel_the_other_way(dy, dx):
    """The output at p reads the input at p + d: a bright input pixel appears at its place - d."""
    image = np.zeros((1, SIDE, SIDE), np.float32)
    image[0, 10, 12] = 1.0
    coords = identity_coordinates(1)
    coords[:, 0] += dy
    coords[:, 1] += dx
    out = sample(image, coords)
    assert out[0, 10 - dy, 12 - dx] == 1.0 and out.sum() == 1.0


def test_a_half_pixel_displacement_splits_a_pixel_in_two():
    image = np.zeros((1, SIDE, SIDE), np.float32)
    image[0, 10, 12] = 1.0
    coords = identity_coordinates(1)
    coords[:, 1] += 0.5
    out = sample(image, coords)
    assert out[0, 10, 12] == 0.5 and out[0, 10, 11] == 0.5 and out.sum() == 1.0


def test_what_comes_from_outside_is_black_nothing_wraps():
    image = np.ones((1, SIDE, SIDE), np.float32)
    coords = identity_coordinates(1)
    coords[:, 1] += 5  # every pixel reads 5 to its right: the last 5 columns read outside
    out = sample(image, coords)
    assert np.all(out[0, :, -5:] == 0) and np.all(out[0, :, :-5] == 1)
    far = identity_coordinates(1) + 1000  # far outside, clipped to the black border
    assert np.all(sample(image, far) == 0)


def test_a_quarter_turn_turns_the_image():
    image = digits(1).reshape(1, SIDE, SIDE)
    rng = np.random.default_rng(0)
    # Draw until the random angle is near 90 degrees would be slow: call with rotate=90 and
    # check against the angle actually drawn, taken from the same generator state.
    angle = np.deg2rad(np.random.default_rng(0).uniform(-90, 90, 1))[0]
    coords = affine_coordinates(1, 90.0, 0.0, rng)
    centre = (SIDE - 1) / 2
    y, x = 3 - centre, 20 - centre  # output pixel (3, 20)
    expected = (np.cos(angle) * y - np.sin(angle) * x + centre, np.sin(angle) * y + np.cos(angle) * x + centre)
    assert coords[0, :, 3, 20] == pytest.approx(expected, abs=1e-4)
    assert sample(image, coords).shape == image.shape


def test_displacement_fields_are_smooth_and_scaled_by_alpha():
    fields = displacement_fields(50, 1.0, 4.0, np.random.default_rng(3))
    assert fields.shape == (50, 2, SIDE, SIDE) and fields.dtype == np.float32
    neighbour_step = np.abs(np.diff(fields, axis=-1)).mean()
    assert neighbour_step < 0.25 * np.abs(fields).mean()  # neighbours move together
    scaled = displacement_fields(50, 34.0, 4.0, np.random.default_rng(3))
    assert np.allclose(scaled, 34 * fields, rtol=1e-5, atol=1e-6)


def test_smoothing_matrix_is_a_normalised_gaussian():
    G = smoothing_matrix(4.0, side=64)
    assert np.allclose(G, G.T)
    assert G[32].sum() == pytest.approx(1.0, abs=1e-5)  # away from the edges, the whole kernel
    assert G[32, 32] > G[32, 36] > G[32, 40] > 0 and G[32, 49] == 0  # truncated at 4 sigma


def test_the_record_preset_distorts_and_the_others_do_not():
    assert distortion_of(PRESETS["record"]) is not None
    assert all(distortion_of(PRESETS[name]) is None for name in ("seed", "fast", "best"))
