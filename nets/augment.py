"""Data augmentation: random small translations of the training digits.

MNIST digits are centred by their centre of mass, so a net that has only ever seen them
exactly centred generalises worse to the slight offsets of the test set. Shifting every
training digit by a random whole number of pixels (at most `max_shift` each way, filling
with black) gives it those offsets; the test data is never shifted.
"""

from __future__ import annotations

import numpy as np

SIDE = 28


def shift_images(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Images (N, 28, 28) moved dy pixels down and dx right; what enters is black (0)."""
    out = np.zeros_like(images)
    src_y, dst_y = slice(max(-dy, 0), SIDE - max(dy, 0)), slice(max(dy, 0), SIDE - max(-dy, 0))
    src_x, dst_x = slice(max(-dx, 0), SIDE - max(dx, 0)), slice(max(dx, 0), SIDE - max(-dx, 0))
    out[:, dst_y, dst_x] = images[:, src_y, src_x]
    return out


def random_shift(x: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Rows (N, 784) each shifted by its own random (dy, dx) in [-max_shift, max_shift].

    A new array; `x` is untouched. Rows are grouped by their shift, so the work is a
    handful of slice copies, not a Python loop over digits.
    """
    if max_shift == 0:
        return x
    images = x.reshape(len(x), SIDE, SIDE)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(len(x), 2))
    out = np.empty_like(images)
    codes = (shifts[:, 0] + max_shift) * (2 * max_shift + 1) + (shifts[:, 1] + max_shift)
    for code in np.unique(codes):
        rows = np.flatnonzero(codes == code)
        dy, dx = shifts[rows[0]]
        out[rows] = shift_images(images[rows], int(dy), int(dx))
    return out.reshape(len(x), SIDE * SIDE)


def shifted_batch(
    x: np.ndarray, y: np.ndarray, index: np.ndarray | slice, max_shift: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The batch x[index], y[index] with every digit shifted as `random_shift` shifts it.

    The same random draws give every digit the same shift, but the rows come back grouped
    by their shift (labels alongside): a batch is a set, its order changes no gradient.
    Each group is then one block of the output rows. Shifting a flattened 28x28 image by
    (dy, dx) moves it by dy * 28 + dx places, so a group is filled by one gather of whole
    row ranges straight from `x` into contiguous memory; then what entered from the
    neighbouring image row is blanked (dx columns) and the range that nothing filled.
    """
    rows = np.arange(len(x))[index] if isinstance(index, slice) else np.asarray(index)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(len(rows), 2))
    side = 2 * max_shift + 1
    codes = (shifts[:, 0] + max_shift) * side + (shifts[:, 1] + max_shift)
    order = np.argsort(codes, kind="stable")
    rows = rows[order]
    pixels = SIDE * SIDE
    flat = x.reshape(len(x), pixels)
    out = np.empty((len(rows), pixels), dtype=x.dtype)
    start = 0
    for code, count in enumerate(np.bincount(codes, minlength=side * side)):
        if not count:
            continue
        dy, dx = code // side - max_shift, code % side - max_shift
        block, source, offset = slice(start, start + count), rows[start : start + count], dy * SIDE + dx
        if offset >= 0:
            out[block, offset:] = flat[source, : pixels - offset]
            out[block, :offset] = 0
        else:
            out[block, :offset] = flat[source, -offset:]
            out[block, offset:] = 0
        image = out[block].reshape(count, SIDE, SIDE)  # a view of the block
        if dx > 0:
            image[:, :, :dx] = 0
        elif dx < 0:
            image[:, :, dx:] = 0
        start += count
    return out, y[rows]
