"""The spoiling transforms (noise, rotation, stroke thickness) and the accuracy curves."""

import numpy as np
import pytest

from nets.robustness import SPOILERS, accuracy_curve, add_noise, rotate, sample, spoil, thicken


def digits(n=5, seed=0):
    return np.random.default_rng(seed).random((n, 784)).astype(np.float32)


@pytest.mark.parametrize("quarter", [1, 2, 3])
def test_quarter_turns_are_exact_and_counter_clockwise(quarter):
    x = digits()
    turned = rotate(x, 90 * quarter).reshape(-1, 28, 28)
    np.testing.assert_allclose(turned, np.rot90(x.reshape(-1, 28, 28), quarter, axes=(1, 2)), atol=1e-5)


def test_a_point_turns_about_the_centre():
    x = np.zeros((1, 28, 28), dtype=np.float32)
    x[0, 3, 13] = x[0, 3, 14] = 1.0  # a dot above the centre (13.5, 13.5)
    out = rotate(x.reshape(1, -1), 90).reshape(28, 28)  # counter-clockwise: it moves to the left side
    assert out[13:15, 3].sum() == pytest.approx(2.0, abs=1e-5)
    assert out.sum() == pytest.approx(2.0, abs=1e-5)
    small = rotate(x.reshape(1, -1), 10).reshape(28, 28)
    assert 0 < small.sum() <= 2.0 and small[:, :13].sum() > small[:, 15:].sum()  # bilinear, leaning left


def test_no_rotation_no_noise_no_thickening_leave_the_digit():
    x = digits()
    for kind in SPOILERS:
        np.testing.assert_array_equal(spoil(kind, x, 0), x)


def test_noise_is_seeded_clipped_and_of_the_asked_size():
    x = np.full((200, 784), 0.5, dtype=np.float32)
    a, b = add_noise(x, 0.1, seed=7), add_noise(x, 0.1, seed=7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, add_noise(x, 0.1, seed=8))
    assert float((a - x).std()) == pytest.approx(0.1, rel=0.02)
    strong = add_noise(x, 5.0, seed=0)
    assert strong.min() == 0.0 and strong.max() == 1.0


def test_thickening_and_thinning_a_line_by_hand():
    x = np.zeros((1, 28, 28), dtype=np.float32)
    x[0, 5:20, 10:13] = 1.0  # a vertical bar 3 px wide
    thick = thicken(x.reshape(1, -1), 1).reshape(28, 28)
    assert thick[10].nonzero()[0].tolist() == [9, 10, 11, 12, 13]  # 2 px wider (1 each side)
    assert thick[4, 10:13].tolist() == [1, 1, 1] and thick[4, 9] == 0  # a cross, not a square
    thin = thicken(x.reshape(1, -1), -1).reshape(28, 28)
    assert thin[10].nonzero()[0].tolist() == [11]
    assert thicken(x.reshape(1, -1), -2).sum() == 0  # a 3 px bar thinned twice is gone


def test_accuracy_curve_on_a_predictor_that_sees_rotation():
    # A "net" that says 1 when the ink leans to the upper half, 0 otherwise: turning a top dot
    # by 180 degrees moves it to the bottom half.
    x = np.zeros((4, 28, 28), dtype=np.float32)
    x[:, 4, 12:16] = 1.0
    labels = np.ones(4, dtype=np.int64)

    def predict(images):
        grid = images.reshape(-1, 28, 28)
        return (grid[:, :14].sum(axis=(1, 2)) > grid[:, 14:].sum(axis=(1, 2))).astype(np.int64)

    curve = accuracy_curve(predict, x.reshape(4, -1), labels, "rotation", [0, 45, 180])
    assert curve.accuracy.tolist() == [1.0, 1.0, 0.0]
    assert curve.strengths.tolist() == [0, 45, 180] and curve.kind == "rotation"


def test_sample_is_fixed_and_bounded():
    assert sample(10, 20).tolist() == list(range(10))
    s = sample(10_000, 2_000, seed=3)
    assert len(set(s.tolist())) == 2_000 and s.tolist() == sorted(s.tolist())
    np.testing.assert_array_equal(s, sample(10_000, 2_000, seed=3))
    with pytest.raises(ValueError, match="kind must be one of"):
        spoil("blur", digits(), 1)
