"""Photos of digits: read as MNIST made its digits; hostile files refused with one line."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from nets.photo import MAX_BYTES, PhotoError, ink_on_black, otsu, read_photo
from nets.preprocess import to_mnist


def png(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


def seven(size=(600, 800), paper=205, ink=40, width=40, noise=8.0, seed=0) -> Image.Image:
    """A '7' in dark ink on grey, noisy paper, like a phone photo."""
    picture = Image.new("L", size, paper)
    d = ImageDraw.Draw(picture)
    w, h = size
    d.line([(w * 0.25, h * 0.25), (w * 0.75, h * 0.25), (w * 0.45, h * 0.8)], fill=ink, width=width)
    pixels = np.asarray(picture, dtype=np.float64) + np.random.default_rng(seed).normal(0, noise, (h, w))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def corr(a, b) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_a_dark_on_light_photo_reads_like_the_same_digit_drawn_bright_on_black():
    photo = read_photo(png(seven(), "JPEG", quality=85), "seven.jpg")
    clean = to_mnist(255.0 - np.asarray(seven(noise=0.0, paper=255, ink=0), dtype=np.float32))
    assert photo.x.shape == (784,) and photo.x.min() >= 0 and photo.x.max() <= 1
    assert corr(photo.x, clean) > 0.9
    assert photo.stroke_width > 0


def test_light_on_dark_photo_gives_the_same_digit():
    dark = png(Image.eval(seven(), lambda v: 255 - v))
    light = png(seven())
    assert corr(read_photo(dark).x, read_photo(light).x) > 0.98


def test_an_mnist_digit_photographed_large_comes_back():
    # A test-like digit made bright on black, scaled up 14x as dark ink on white paper, read back.
    digit = np.zeros((28, 28), dtype=np.float32)
    digit[6:22, 12:16] = 1.0
    digit[6:9, 9:16] = 1.0
    big = Image.fromarray((255 * (1 - digit)).astype(np.uint8)).resize((392, 392), Image.NEAREST)
    back = read_photo(png(big)).x
    assert corr(back, to_mnist(255 * digit)) > 0.95


def test_exif_orientation_is_applied():
    upright = seven()
    turned = upright.rotate(-90, expand=True)  # stored a quarter turn clockwise, EXIF saying so
    exif = Image.Exif()
    exif[0x0112] = 8  # "turn a quarter counter-clockwise to display"
    a = read_photo(png(turned, "JPEG", exif=exif.tobytes())).x
    assert corr(a, read_photo(png(upright, "JPEG")).x) > 0.9
    assert corr(read_photo(png(turned, "JPEG")).x, read_photo(png(upright, "JPEG")).x) < 0.5  # the check can fail


@pytest.mark.parametrize("paper", [230, 40])
def test_blank_or_faintly_stained_paper_reads_as_no_digit(paper):
    assert read_photo(png(Image.new("L", (300, 300), paper))).empty
    assert read_photo(png(seven(ink=paper - 12 if paper > 128 else paper + 12, paper=paper, noise=2))).empty


def test_transparent_png_lays_the_ink_on_white():
    rgba = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).line([(150, 40), (150, 260)], fill=(0, 0, 0, 255), width=24)
    assert not read_photo(png(rgba)).empty


def test_otsu_splits_two_levels_and_specks_are_dropped():
    values = np.r_[np.full(100, 30.0), np.full(100, 200.0)]
    assert 30 <= otsu(values) < 200
    paper = np.full((200, 200), 220.0)
    paper[50:150, 90:110] = 20.0  # a stroke
    paper[10, 10] = paper[180, 30] = 0.0  # two specks of dust
    ink = ink_on_black(paper)
    assert ink[100, 100] == 255 and ink[10, 10] == 0 and ink[180, 30] == 0


def huge_png(width: int, height: int) -> bytes:
    """A tiny file whose header claims width x height pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"hello, not a picture", "is not a PNG or JPEG image"),
        (png(Image.new("L", (50, 50)), "GIF"), "is not a PNG or JPEG image"),
        (b"\x00" * (MAX_BYTES + 1), "may be at most 10 MB"),
        (huge_png(6000, 6000), "6,000x6,000 pixels; at most 30 megapixels"),
        (huge_png(40000, 40000), "too many pixels to decode safely"),
        (png(seven())[:3000], "could not be decoded (truncated or damaged)"),
        (png(seven(), "JPEG")[:2000], "could not be decoded (truncated or damaged)"),
        (huge_png(100, 100), "could not be decoded"),  # its pixel data is far too short
    ],
    ids=["empty", "text", "gif", "bytes", "pixels", "bomb", "truncated-png", "truncated-jpeg", "short-data"],
)
def test_hostile_files_are_refused_in_one_line(data, message):
    with pytest.raises(PhotoError) as caught:
        read_photo(data, "upload.png")
    text = str(caught.value)
    assert message in text and "\n" not in text and text.startswith("upload.png")
