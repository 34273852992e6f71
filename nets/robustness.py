"""Spoiled digits: Gaussian noise, rotation and stroke thickness, and accuracy against each.

Every transform is deterministic (the noise is seeded) and works on (N, 784) images in
[0, 1], in NumPy: a rotation is one bilinear resampling map shared by all N digits, a
thicker or thinner stroke is a grey dilation or erosion with a 4-neighbour cross.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

SIDE = 28
CENTRE = (SIDE - 1) / 2  # rotations turn about the middle of the 28x28 grid


def add_noise(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Gaussian noise of standard deviation `sigma` on every pixel, clipped to [0, 1]."""
    images = np.asarray(images, dtype=np.float32)
    if sigma == 0:
        return images.copy()
    noise = np.random.default_rng(seed).standard_normal(images.shape, dtype=np.float32)
    return np.clip(images + np.float32(sigma) * noise, 0, 1)


def _rotation_map(degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """For every output pixel, its 4 source pixels (4, 784) and bilinear weights (4, 784);
    sources outside the image get weight 0 (index 0)."""
    theta = np.deg2rad(degrees)
    r, c = np.indices((SIDE, SIDE)).reshape(2, -1).astype(np.float64)
    x, y = c - CENTRE, CENTRE - r  # y up, so that positive degrees turn counter-clockwise on screen
    xs = x * np.cos(theta) + y * np.sin(theta)  # where the output pixel comes from: turned back by -theta
    ys = -x * np.sin(theta) + y * np.cos(theta)
    cs, rs = xs + CENTRE, CENTRE - ys
    c0, r0 = np.floor(cs), np.floor(rs)
    fc, fr = cs - c0, rs - r0
    index, weight = [], []
    for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        rr, cc = r0 + dr, c0 + dc
        inside = (rr >= 0) & (rr < SIDE) & (cc >= 0) & (cc < SIDE)
        index.append(np.where(inside, rr * SIDE + cc, 0).astype(np.int64))
        weight.append(np.where(inside, w, 0.0))
    return np.array(index), np.array(weight, dtype=np.float32)


def rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    """Each digit turned by `degrees` (counter-clockwise as seen) about its centre, bilinear."""
    images = np.asarray(images, dtype=np.float32).reshape(-1, SIDE * SIDE)
    if degrees % 360 == 0:
        return images.copy()
    index, weight = _rotation_map(degrees)
    out = np.zeros_like(images)
    for i, w in zip(index, weight, strict=True):
        out += images[:, i] * w
    return np.clip(out, 0, 1)


def _cross(images: np.ndarray, reduce) -> np.ndarray:
    """Each pixel replaced by `reduce` (max or min) of itself and its 4 neighbours (edges padded with 0)."""
    grid = images.reshape(-1, SIDE, SIDE)
    padded = np.pad(grid, ((0, 0), (1, 1), (1, 1)))
    stack = (grid, padded[:, :-2, 1:-1], padded[:, 2:, 1:-1], padded[:, 1:-1, :-2], padded[:, 1:-1, 2:])
    return reduce.reduce(np.stack(stack), axis=0).reshape(images.shape)


def thicken(images: np.ndarray, steps: int) -> np.ndarray:
    """Strokes made thicker (`steps` > 0: grey dilation) or thinner (< 0: erosion), about
    2 px of width per step."""
    out = np.asarray(images, dtype=np.float32).copy()
    for _ in range(abs(int(steps))):
        out = _cross(out, np.maximum if steps > 0 else np.minimum)
    return out


@dataclass(frozen=True)
class Spoiler:
    """One kind of spoiling: its name, unit and the strengths its curve is drawn at."""

    key: str
    unit: str
    strengths: tuple[float, ...]
    apply: Callable[[np.ndarray, float, int], np.ndarray]  # (images, strength, seed) -> images


SPOILERS = {
    "noise": Spoiler(
        "noise", "σ", (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0), lambda x, s, seed: add_noise(x, s, seed)
    ),
    "rotation": Spoiler("rotation", "°", (0, 10, 20, 30, 40, 50, 60, 75, 90), lambda x, s, seed: rotate(x, s)),
    "thickness": Spoiler("thickness", "px steps", (-2, -1, 0, 1, 2, 3), lambda x, s, seed: thicken(x, int(s))),
}


def spoil(kind: str, images: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
    if kind not in SPOILERS:
        raise ValueError(f"kind must be one of {', '.join(SPOILERS)} (got {kind!r})")
    return SPOILERS[kind].apply(images, strength, seed)


def sample(total: int, size: int, seed: int = 0) -> np.ndarray:
    """A fixed random subset of `size` of `total` indices (all of them when size >= total), sorted."""
    if size >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size, replace=False))


@dataclass(frozen=True)
class Curve:
    """Accuracy of one net on spoiled digits, at each strength."""

    kind: str
    strengths: np.ndarray
    accuracy: np.ndarray


def accuracy_curve(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    labels: np.ndarray,
    kind: str,
    strengths: Sequence[float] | None = None,
    seed: int = 0,
) -> Curve:
    """`predict` maps images (N, 784) to labels (N,); its accuracy at each strength of `kind`."""
    strengths = SPOILERS[kind].strengths if strengths is None else tuple(strengths)
    accuracy = [float((predict(spoil(kind, images, s, seed)) == labels).mean()) for s in strengths]
    return Curve(kind, np.asarray(strengths, dtype=np.float64), np.asarray(accuracy))
