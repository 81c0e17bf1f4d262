"""Reading image headers and writing image files in the exact formats the real datasets use."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

#: File extensions torchvision's ImageFolder accepts (compared lower-case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

#: JSRT raw files: headerless big-endian 12-bit values in 16-bit words, 2048 x 2048.
JSRT_SIDE = 2048
JSRT_BYTES = JSRT_SIDE * JSRT_SIDE * 2

#: The smallest image side (pixels) accepted; anything smaller is an icon or a broken export.
#: Not higher: the miniatures at the side the tests use (64) hold images down to 16-23 px
#: (narrow MURA and x-ray-type portraits, cropped photos); real radiographs have hundreds.
MIN_SIDE = 16

_PNG_END = b"IEND\xaeB`\x82"
_JPEG_END = b"\xff\xd9"


class BadImage(ValueError):
    """An image file that cannot be used; the message says what is wrong with it."""


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    mode: str


def is_hidden(path: Path) -> bool:
    """OS litter that must be ignored: dot-files (``._x.png``, ``.DS_Store``) and ``Thumbs.db``."""
    return path.name.startswith(".") or path.name.lower() == "thumbs.db"


def probe(path: str | Path) -> ImageInfo:
    """Read an image's size and mode cheaply and check it is complete.

    Parses the header with PIL and checks the end marker of PNG and JPEG files, which catches
    truncated downloads without decoding every pixel, and refuses images smaller than
    :data:`MIN_SIDE`. Raises :class:`BadImage` with the reason.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as err:
        raise BadImage(f"unreadable: {err.strerror}") from err
    if size == 0:
        raise BadImage("empty file (0 bytes)")
    try:
        with Image.open(path) as im:
            fmt, width, height, mode = im.format, im.width, im.height, im.mode
    except Exception as err:  # PIL raises many types for garbage input
        raise BadImage(f"not a readable image: {err}") from err
    tail = _tail(path, 16)
    if fmt == "PNG" and _PNG_END not in tail:
        raise BadImage("truncated PNG (no IEND chunk at the end of the file)")
    if fmt == "JPEG" and _JPEG_END not in tail:
        raise BadImage("truncated JPEG (no end-of-image marker)")
    check_side(width, height)
    return ImageInfo(width, height, mode)


def check_side(width: int, height: int) -> None:
    """Raise :class:`BadImage` naming the size of an image smaller than :data:`MIN_SIDE`."""
    if min(width, height) < MIN_SIDE:
        raise BadImage(
            f"too small: {width}x{height} pixels (the smallest side accepted is {MIN_SIDE})"
        )


def probe_jsrt(path: str | Path) -> ImageInfo:
    """Check a JSRT ``.IMG`` raw file: exactly 8,388,608 bytes of big-endian 12-bit data."""
    size = os.path.getsize(path)
    if size != JSRT_BYTES:
        raise BadImage(
            f"wrong byte count {size:,} for a JSRT raw image (expected {JSRT_BYTES:,} = "
            f"{JSRT_SIDE}x{JSRT_SIDE} big-endian 16-bit words)"
        )
    return ImageInfo(JSRT_SIDE, JSRT_SIDE, "raw12be")


def _tail(path: Path, n: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - n))
        return fh.read()


def write_gray_png(path: str | Path, img: np.ndarray) -> None:
    """Write a 2D uint8 array as an 8-bit grayscale PNG (colour type 0, no extra chunks)."""
    _check_uint8_2d(img)
    Image.fromarray(img, mode="L").save(path, format="PNG", compress_level=1)


def write_rgba_png(path: str | Path, img: np.ndarray) -> None:
    """Write a 2D uint8 array as an 8-bit RGBA PNG with R = G = B and A = 255.

    Carries sRGB, gAMA and pHYs chunks, like the RGBA files of the real NIH release.
    """
    _check_uint8_2d(img)
    rgba = np.dstack([img, img, img, np.full_like(img, 255)])
    info = PngImagePlugin.PngInfo()
    info.add(b"sRGB", b"\x00")
    info.add(b"gAMA", (45455).to_bytes(4, "big"))
    Image.fromarray(rgba, mode="RGBA").save(
        path, format="PNG", pnginfo=info, dpi=(72, 72), compress_level=1
    )


def write_rgb(path: str | Path, img: np.ndarray, quality: int = 92) -> None:
    """Write a gray 2D uint8 array as a 3-channel file (PNG or JPEG by extension)."""
    _check_uint8_2d(img)
    rgb = Image.fromarray(np.dstack([img, img, img]), mode="RGB")
    if Path(path).suffix.lower() in (".jpg", ".jpeg"):
        rgb.save(path, format="JPEG", quality=quality)
    else:
        rgb.save(path, format="PNG", compress_level=1)


def write_jpeg(path: str | Path, img: np.ndarray, quality: int = 92) -> None:
    """Write a 2D uint8 array as a grayscale JPEG."""
    _check_uint8_2d(img)
    Image.fromarray(img, mode="L").save(path, format="JPEG", quality=quality)


def _check_uint8_2d(img: np.ndarray) -> None:
    if img.dtype != np.uint8 or img.ndim != 2:
        raise TypeError(f"expected a 2D uint8 array, got {img.dtype} with shape {img.shape}")
