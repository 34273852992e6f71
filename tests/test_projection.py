"""The 2-D map of the hidden layer: PCA in NumPy, checked on points whose spread is known."""

import numpy as np
import pytest

from nets import projection
from nets.projection import pca


def test_points_along_known_directions():
    # Spread 3 along (1, 1, 0)/sqrt(2), 1 along (0, 0, 1), nothing else: the components are those.
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(4000) * 3, rng.standard_normal(4000)
    x = a[:, None] * np.array([1, 1, 0]) / np.sqrt(2) + b[:, None] * np.array([0, 0, 1]) + 5.0
    p = pca(x.astype(np.float32))
    np.testing.assert_allclose(p.components[0], [1 / np.sqrt(2), 1 / np.sqrt(2), 0], atol=0.01)
    np.testing.assert_allclose(p.components[1], [0, 0, 1], atol=0.01)
    np.testing.assert_allclose(p.explained, [0.9, 0.1], atol=0.01)  # variances 9 and 1
    np.testing.assert_allclose(p.mean, [5, 5, 5], atol=0.2)
    np.testing.assert_allclose(p.points[:, 0], a, atol=0.05)
    np.testing.assert_allclose(p.place(x[:10]), p.points[:10], atol=1e-4)


def test_matches_numpy_svd_and_signs_are_fixed():
    x = np.random.default_rng(1).standard_normal((300, 12)) @ np.random.default_rng(2).standard_normal((12, 12))
    p = pca(x)
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    for k in range(2):
        assert abs(p.components[k] @ vt[k]) == pytest.approx(1.0, abs=1e-8)
        assert p.components[k][np.abs(p.components[k]).argmax()] > 0
    np.testing.assert_allclose(p.explained, s[:2] ** 2 / (s**2).sum(), rtol=1e-8)
    np.testing.assert_allclose(pca(-x).components, p.components, atol=1e-10)  # the picture does not flip


def test_needs_two_rows():
    with pytest.raises(ValueError, match="two rows"):
        pca(np.zeros((1, 5)))


def test_the_fast_path_for_large_layers_agrees_with_the_exact_components():
    # 2,500 x 300 is past EXACT_BELOW: randomized subspace iteration, checked against the SVD.
    rng = np.random.default_rng(4)
    scales = np.r_[8.0, 5.0, np.linspace(1.5, 0.1, 298)]
    x = (rng.standard_normal((2500, 300)) * scales) @ np.linalg.qr(rng.standard_normal((300, 300)))[0] + 2.0
    x = x.astype(np.float32)
    assert 2500 * 300 * 300 > projection.EXACT_BELOW
    p = pca(x)
    centred = x.astype(np.float64) - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    for k in range(2):
        assert abs(p.components[k] @ vt[k]) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(p.explained, s[:2] ** 2 / (s**2).sum(), rtol=1e-4)
