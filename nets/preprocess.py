"""A drawing, made to look like an MNIST digit: crop, 20 px box, centre of mass, [0, 1].

MNIST digits were size-normalised to fit a 20x20 box keeping their aspect ratio (the
grey edges come from anti-aliasing), then centred in 28x28 by their centre of mass; ink
is bright on black. A drawing gets the same treatment before the net sees it; shrinking
the whole canvas to 28x28 instead would give the net shapes it never saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from nets.augment import shift_images

SIDE = 28
BOX = 20
EMPTY_INK = 10  # a canvas whose brightest pixel is dimmer than this (of 255) is empty
# Where MNIST put the centre of mass: measured over the 10,000 test digits it is at row
# 14.0 and column 14.0 (std 0.29), pixel indices, not at the geometric centre 13.5.
CENTRE = 14.0


@dataclass(frozen=True)
class Preprocessed:
    """What the net receives for one drawing, or why it receives nothing."""

    x: np.ndarray | None  # (784,) float32 in [0, 1], or None for an empty drawing
    stroke_width: float = 0.0  # mean stroke width after normalisation, in 28x28 pixels

    @property
    def empty(self) -> bool:
        return self.x is None


def ink(rgba: np.ndarray) -> np.ndarray:
    """An (H, W, 4) RGBA canvas -> (H, W) ink intensity 0-255, bright ink on black.

    With an opaque background the ink is the brightness of the colour; with a
    transparent one it is only in the alpha channel.
    """
    rgba = np.asarray(rgba)
    if rgba.ndim == 2:
        return rgba.astype(np.float32)
    if rgba.shape[2] == 4 and rgba[..., 3].min() < 255:  # transparent background
        return rgba[..., 3].astype(np.float32)
    return rgba[..., :3].astype(np.float32).mean(axis=2)


def to_mnist(intensity: np.ndarray) -> np.ndarray | None:
    """(H, W) ink 0-255 -> (28, 28) float32 in [0, 1], as MNIST made its digits; None if empty."""
    if intensity.size == 0 or intensity.max() < EMPTY_INK:
        return None
    rows = np.flatnonzero(intensity.max(axis=1) >= EMPTY_INK)
    cols = np.flatnonzero(intensity.max(axis=0) >= EMPTY_INK)
    crop = intensity[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL wants (width, height)
    image = Image.fromarray(np.clip(crop, 0, 255).astype(np.uint8)).resize(size, Image.LANCZOS)
    small = np.asarray(image, dtype=np.float32)
    out = np.zeros((SIDE, SIDE), dtype=np.float32)
    top, left = (SIDE - small.shape[0]) // 2, (SIDE - small.shape[1]) // 2
    out[top : top + small.shape[0], left : left + small.shape[1]] = small
    out = _centre_of_mass_to_middle(out)
    return np.clip(out / 255, 0, 1)


def _centre_of_mass_to_middle(image: np.ndarray) -> np.ndarray:
    """Shift by whole pixels so that the centre of mass lands where MNIST put it (CENTRE)."""
    total = image.sum()
    if total == 0:
        return image
    ys, xs = np.indices(image.shape)
    cy, cx = (ys * image).sum() / total, (xs * image).sum() / total
    return shift_images(image[None], round(CENTRE - cy), round(CENTRE - cx))[0]


def stroke_width(image: np.ndarray) -> float:
    """Mean stroke width of a (28, 28) digit in [0, 1], in pixels, without a skeleton.

    Model the ink (pixels >= 0.5) as one stroke of length L and width w: area A = L*w
    and perimeter P = 2(L + w), so w is the smaller root of w^2 - (P/2) w + A = 0.
    """
    mask = image.reshape(SIDE, SIDE) >= 0.5
    area = float(mask.sum())
    if area == 0:
        return 0.0
    padded = np.pad(mask, 1)
    perimeter = float((padded[1:, :] != padded[:-1, :]).sum() + (padded[:, 1:] != padded[:, :-1]).sum())
    half = perimeter / 2
    return float((half - np.sqrt(max(half * half - 4 * area, 0.0))) / 2)


def preprocess(rgba: np.ndarray) -> Preprocessed:
    """A canvas's RGBA pixels -> the (784,) input the net receives, with its stroke width."""
    image = to_mnist(ink(rgba))
    if image is None:
        return Preprocessed(None)
    return Preprocessed(image.reshape(-1), stroke_width(image))


def typical_stroke_widths(images: np.ndarray, sample: int = 2000, seed: int = 0) -> tuple[float, float]:
    """The 5th and 95th percentile stroke widths of (N, 784) MNIST digits (a fixed sample)."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(images), min(sample, len(images)), replace=False)
    widths = [stroke_width(images[i]) for i in rows]
    low, high = np.percentile(widths, [5, 95])
    return float(low), float(high)


def squared_norms(images: np.ndarray) -> np.ndarray:
    """||t||^2 of every row of (N, 784) images: computed once, reused by `nearest`."""
    return np.einsum("ij,ij->i", images, images)


def nearest(x: np.ndarray, images: np.ndarray, norms: np.ndarray | None = None, k: int = 8) -> np.ndarray:
    """Indices of the k rows of `images` (N, 784) closest to x (784,) in pixel space.

    ||x - t||^2 = ||t||^2 - 2 x.t + ||x||^2 (the last term is the same for every t):
    one matrix-vector product for all N.
    """
    norms = squared_norms(images) if norms is None else norms
    distances = norms - 2 * (images @ x.astype(images.dtype))
    k = min(k, len(images))
    best = np.argpartition(distances, k - 1)[:k]
    return best[np.argsort(distances[best])]
