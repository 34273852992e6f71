"""A photo of a handwritten digit, read as MNIST made its digits; hostile files refused in one line.

A photo is not a canvas: the ink may be dark on light paper or light on dark, the paper is
grey and uneven, and the file comes from anyone. So: check the size in bytes and, from the
header alone, in pixels before decoding anything; decode only PNG or JPEG; turn it grey;
make the ink bright on black (the border tells which side is paper); threshold the
background away (Otsu's threshold); drop specks; then the drawing's own path to 28x28
(crop, 20 px box, centre of mass, `nets.preprocess.to_mnist`).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from nets.preprocess import Preprocessed, stroke_width, to_mnist

MAX_BYTES = 10 * 2**20  # a phone photo is 2-6 MB
MAX_PIXELS = 30_000_000  # from the header, before decoding: a 48 MP photo would need ~150 MB decoded
FORMATS = ("PNG", "JPEG")
WORKING_SIDE = 280  # the photo is reduced to fit this square before thresholding (the canvas's size)
MIN_SIDE_FOR_DESPECKLE = 100  # smaller pictures have strokes too thin to survive an opening
MIN_CONTRAST = 40  # grey levels between the paper and the ink: less is a stain or a shadow, not a digit


class PhotoError(ValueError):
    """A file that cannot be read as a photo of a digit; the message is one line naming it."""


def read_photo(data: bytes, name: str = "the file") -> Preprocessed:
    """Bytes of a PNG or JPEG -> the (784,) input the net receives (empty when no ink is found).

    Raises PhotoError for anything else: too many bytes or pixels, not PNG/JPEG, truncated
    or damaged, a decompression bomb.
    """
    if len(data) > MAX_BYTES:
        raise PhotoError(
            f"{name} is {len(data) / 2**20:.1f} MB; a photo of a digit may be at most {MAX_BYTES // 2**20} MB"
        )
    if not data:
        raise PhotoError(f"{name} is empty")
    try:
        grey = _decode(data, name)
    except PhotoError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoError(f"{name} declares too many pixels to decode safely (a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise PhotoError(f"{name} is not a PNG or JPEG image") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise PhotoError(
            f"{name} could not be decoded (truncated or damaged): {str(exc).splitlines()[0][:80]}"
        ) from None
    image = to_mnist(ink_on_black(grey))
    if image is None:
        return Preprocessed(None)
    return Preprocessed(image.reshape(-1), stroke_width(image))


def _decode(data: bytes, name: str) -> np.ndarray:
    """The photo as (h, w) grey levels 0-255, reduced to fit WORKING_SIDE."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # Pillow's own limit, as an error
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            width, height = image.size  # from the header: nothing decoded yet
            if width * height > MAX_PIXELS:
                raise PhotoError(
                    f"{name} is {width:,}x{height:,} pixels; at most {MAX_PIXELS / 1e6:.0f} megapixels, please"
                )
            if image.format == "JPEG":
                image.draft("L", (2 * WORKING_SIDE, 2 * WORKING_SIDE))  # decode at a fraction of the size
            image.load()
            image = ImageOps.exif_transpose(image)  # phones store the turn in EXIF
            grey = _grey(image)
    grey.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.BOX)
    return np.asarray(grey, dtype=np.float32)


def _grey(image: Image.Image) -> Image.Image:
    """An 8-bit grey image; transparency is laid on white paper, deep grey levels scaled to 0-255."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("L")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = values.max() if values.size else 0
        return Image.fromarray(np.round(255 * values / top if top > 0 else values).astype(np.uint8), mode="L")
    return image.convert("L")


def otsu(values: np.ndarray) -> float:
    """Otsu's threshold of grey levels 0-255: the split that maximises the between-class variance."""
    counts = np.bincount(np.clip(values, 0, 255).astype(np.int64).ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256)
    weight = np.cumsum(counts)
    mass = np.cumsum(counts * levels)
    total, total_mass = weight[-1], mass[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_low = mass / weight
        mean_high = (total_mass - mass) / (total - weight)
        between = weight * (total - weight) * (mean_low - mean_high) ** 2
    return float(np.nanargmax(between)) if np.isfinite(between).any() else 0.0


def ink_on_black(grey: np.ndarray) -> np.ndarray:
    """(h, w) grey 0-255 -> ink 0-255, bright on black, the background thresholded to 0.

    The paper is what the border shows: light paper means dark ink, so the picture is
    inverted. Below Otsu's threshold is paper; above it, the ink is stretched to 0-255.
    """
    border = np.concatenate([grey[:2].ravel(), grey[-2:].ravel(), grey[:, :2].ravel(), grey[:, -2:].ravel()])
    paper = float(np.median(border))
    ink = 255 - grey if paper > 127 else grey.copy()
    paper = min(paper, 255 - paper)
    threshold = max(otsu(ink), paper)
    top = float(np.percentile(ink[ink > threshold], 99)) if (ink > threshold).any() else 0.0
    if top - paper < MIN_CONTRAST:
        return np.zeros_like(ink)
    ink = np.clip((ink - threshold) / (top - threshold) * 255, 0, 255)
    if min(ink.shape) >= MIN_SIDE_FOR_DESPECKLE:
        ink = ink * _opened(ink > 0)
    return ink


def _opened(mask: np.ndarray) -> np.ndarray:
    """A binary opening with a 3x3 square: specks smaller than 3x3 vanish, strokes stay."""
    return _square(_square(mask, np.minimum), np.maximum)


def _square(mask: np.ndarray, reduce) -> np.ndarray:
    padded = np.pad(mask, 1)
    h, w = mask.shape
    return reduce.reduce([padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)])
