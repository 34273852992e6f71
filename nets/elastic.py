"""Elastic distortions plus small affine changes of the training digits (Simard et al., 2003).

Each digit gets its own random displacement field: uniform noise in [-1, 1] for each pixel
and direction, smoothed by a Gaussian of `sigma` pixels and scaled by `alpha`, so that
neighbouring pixels move together, the way a hand wobbles. On top of it a small rotation
and scaling about the image centre. The output pixel at p takes the input's value at
p + displacement(p), read by bilinear interpolation; what lies outside the image is black.

Everything is done for a whole batch at once: the smoothing as two matrix products (a
Gaussian is separable), the interpolation as four gathers from a zero-padded copy. The test
digits are never distorted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIDE = 28
PAD = 2  # zero border of the padded copy: coordinates are clipped to [-1, SIDE], so every read lands in it
CENTRE = (SIDE - 1) / 2
_CENTRED = np.stack(np.meshgrid(np.arange(SIDE) - CENTRE, np.arange(SIDE) - CENTRE, indexing="ij")).astype(np.float32)


@dataclass(frozen=True)
class Distortion:
    """How strongly to distort: elastic `alpha` (0 = none) with smoothing `sigma` in pixels,
    rotations up to `rotate` degrees either way, scalings up to `scale` (0.1 = +-10%)."""

    alpha: float = 0.0
    sigma: float = 4.0
    rotate: float = 0.0
    scale: float = 0.0

    @property
    def none(self) -> bool:
        return self.alpha == 0 and self.rotate == 0 and self.scale == 0


def smoothing_matrix(sigma: float, side: int = SIDE, dtype=np.float32) -> np.ndarray:
    """(side, side) symmetric G: G @ f smooths f along its first axis by a Gaussian.

    The kernel is normalised to sum to one and truncated at 4 sigma; what lies beyond the
    image counts as 0 (so fields are a little weaker near the edges).
    """
    offsets = np.arange(side)[:, None] - np.arange(side)[None, :]
    radius = int(4 * sigma + 0.5)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2) * (np.abs(offsets) <= radius)
    full = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).sum()
    return (kernel / full).astype(dtype)


def displacement_fields(n: int, alpha: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 2, SIDE, SIDE) random smooth displacements, dy then dx, in pixels."""
    noise = rng.random((n, 2, SIDE, SIDE), dtype=np.float32)
    noise *= 2
    noise -= 1
    G = smoothing_matrix(sigma)
    along_x = (noise.reshape(-1, SIDE) @ G).reshape(n, 2, SIDE, SIDE)  # G is symmetric: f @ G smooths rows
    along_y = (along_x.transpose(0, 1, 3, 2).reshape(-1, SIDE) @ G).reshape(n, 2, SIDE, SIDE)
    fields = along_y.transpose(0, 1, 3, 2)  # back to (y, x)
    return np.multiply(fields, np.float32(alpha))


def affine_coordinates(n: int, rotate: float, scale: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 2, SIDE, SIDE) source coordinates (y, x) of each output pixel under a random
    rotation (up to `rotate` degrees) and scaling (factor 1 +- `scale`) about the centre."""
    angle = np.deg2rad(rng.uniform(-rotate, rotate, n)) if rotate else np.zeros(n)
    factor = 1 + rng.uniform(-scale, scale, n) if scale else np.ones(n)
    cos = (np.cos(angle) / factor).astype(np.float32)[:, None, None]
    sin = (np.sin(angle) / factor).astype(np.float32)[:, None, None]
    y, x = _CENTRED[0], _CENTRED[1]
    # The inverse map: an output pixel reads the input where rotating back and unscaling lands.
    coords = np.empty((n, 2, SIDE, SIDE), dtype=np.float32)
    source_y, source_x = coords[:, 0], coords[:, 1]
    np.multiply(cos, y, out=source_y)
    source_y -= sin * x
    source_y += np.float32(CENTRE)
    np.multiply(sin, y, out=source_x)
    source_x += cos * x
    source_x += np.float32(CENTRE)
    return coords


def identity_coordinates(n: int) -> np.ndarray:
    """(n, 2, SIDE, SIDE) every pixel's own coordinates."""
    y, x = np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij")
    return np.broadcast_to(np.stack([y, x]).astype(np.float32), (n, 2, SIDE, SIDE)).copy()


def sample(images: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Images (n, SIDE, SIDE) read at coords (n, 2, SIDE, SIDE), bilinearly; black outside.

    The output at (i, j) is the input at (coords[:, 0, i, j], coords[:, 1, i, j]).
    """
    n = len(images)
    side = SIDE + 2 * PAD
    padded = np.zeros((n, side, side), dtype=images.dtype)
    padded[:, PAD:-PAD, PAD:-PAD] = images
    y = np.clip(coords[:, 0], -1, SIDE)
    x = np.clip(coords[:, 1], -1, SIDE)
    y0, x0 = np.floor(y), np.floor(x)
    wy, wx = y - y0, x - x0
    corner = (y0.astype(np.intp) + PAD) * side + (x0.astype(np.intp) + PAD)
    corner += (np.arange(n) * side * side)[:, None, None]
    flat = padded.reshape(-1)
    top_left, top_right = flat[corner], flat[corner + 1]
    bottom_left, bottom_right = flat[corner + side], flat[corner + side + 1]
    top = top_left + wx * (top_right - top_left)
    bottom = bottom_left + wx * (bottom_right - bottom_left)
    return (top + wy * (bottom - top)).astype(images.dtype, copy=False)


def distort(x: np.ndarray, distortion: Distortion, rng: np.random.Generator) -> np.ndarray:
    """Rows (N, 784) each distorted by its own random field and affine change; a new array.

    `x` is untouched; with no distortion it is returned as it is.
    """
    if distortion.none:
        return x
    n = len(x)
    coords = affine_coordinates(n, distortion.rotate, distortion.scale, rng)
    if distortion.alpha:
        coords += displacement_fields(n, distortion.alpha, distortion.sigma, rng)
    return sample(x.reshape(n, SIDE, SIDE), coords).reshape(n, SIDE * SIDE)
