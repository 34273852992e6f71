"""The drawing canvas's payload, read as what it is: input from the browser.

The canvas component sends the drawing as Fabric.js JSON and a PNG data URL, but a
modified client can send anything in their place. The component's own `image_data`
opens any image format PIL knows, at any size (a 6,000 x 6,000 PNG of a few KB decodes
to 144 MB), and raises on a malformed URL. Here the image must be a PNG, of at most
MAX_PNG_BYTES, exactly the canvas's size; the JSON must be an object of bounded depth
and size (it is sent back to the browser to restore the drawing). Anything else is a
CanvasError, whose message says what was wrong.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from nets import safejson

MAX_PNG_BYTES = 1024 * 1024  # a 280x280 RGBA PNG is at most about 320 KB
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_DRAWING_DEPTH = 12  # Fabric's JSON: drawing > objects > object > path > command is 5 levels
MAX_DRAWING_VALUES = 500_000  # a few thousand strokes' points


class CanvasError(ValueError):
    """The canvas sent something that is not a drawing of this canvas."""


def png_pixels(png: bytes | None, width: int, height: int) -> np.ndarray | None:
    """The canvas's PNG as (height, width, 4) uint8 RGBA; None when it sent no image."""
    if png is None:
        return None
    if not isinstance(png, bytes) or not png.startswith(PNG_MAGIC):
        raise CanvasError("the image is not a PNG")
    if len(png) > MAX_PNG_BYTES:
        raise CanvasError(f"the image has {len(png):,} bytes, more than a drawing can")
    try:
        with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
            if image.size != (width, height):  # read from the header, before anything is decoded
                raise CanvasError(f"the image is {image.size[0]}x{image.size[1]}, the canvas {width}x{height}")
            return np.asarray(image.convert("RGBA"))
    except CanvasError:
        raise
    except Exception as exc:  # noqa: BLE001 (PIL raises many kinds on a damaged PNG; all mean the same here)
        raise CanvasError(f"the image is not a readable PNG ({type(exc).__name__})") from None


def drawing_json(value) -> dict | None:
    """The canvas's Fabric.js JSON, when it is an object of bounded depth and size (None: none sent)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("objects", []), list):
        raise CanvasError("the drawing is not a canvas drawing (an object with a list of objects)")
    try:
        safejson.check_tree(value, max_depth=MAX_DRAWING_DEPTH, max_nodes=MAX_DRAWING_VALUES)
    except safejson.JsonError as exc:
        raise CanvasError(f"the drawing is {exc}") from None
    return value
