"""Decode any image the index holds to one 2D gray uint8 array in radiograph polarity.

8-bit and 16-bit PNG, gray / LA / RGB / RGBA (to one gray channel), JPEG, JSRT raw (big-endian
12-bit, scaled by 4095, turned to radiograph polarity) and DICOM through pydicom where it is
installed (MONOCHROME1 inverted).

16-bit data (PNG, TIFF) is scaled by the bit depth it holds, not always by 65535: a PNG's
``sBIT`` chunk where it declares one, else the bit length of the largest value (at least 8), so
12-bit radiographs (0..4095) stored in 16-bit files keep their full grey range.
Images whose smaller side is under :data:`~cxr.data.images.MIN_SIDE` pixels are refused.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import imagecodecs
import numpy as np

from cxr.data.images import JSRT_BYTES, JSRT_SIDE, BadImage, check_side

# OpenCV's own threads fight the worker processes that decode in parallel.
cv2.setNumThreads(1)


def read_gray(path: str | Path, mode: str | None = None) -> np.ndarray:
    """Read ``path`` as a 2D uint8 array (air dark, bone bright).

    ``mode`` is the index's pixel mode; ``"raw12be"`` selects the JSRT reader and ``"dicom"``
    the DICOM one, anything else is decoded by OpenCV from the file's own header.
    Raises :class:`BadImage` naming what is wrong (an image too small to use included).
    """
    path = Path(path)
    img = _decode(path, mode)
    try:
        check_side(img.shape[1], img.shape[0])
    except BadImage as err:
        raise BadImage(f"{path}: {err}") from None
    return img


def _decode(path: Path, mode: str | None) -> np.ndarray:
    if mode == "raw12be" or path.suffix.upper() == ".IMG":
        return read_jsrt(path)
    if mode == "dicom" or path.suffix.lower() == ".dcm":
        return read_dicom(path)
    if path.suffix.lower() == ".png":
        data = path.read_bytes()
        return to_gray_uint8(read_png(data, path), path, "RGB", png_significant_bits(data))
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise BadImage(f"{path}: OpenCV cannot decode this file")
    return to_gray_uint8(img, path, order="BGR")


def read_png(data: bytes, path: Path | str = "") -> np.ndarray:
    """Decode a PNG with imagecodecs (libpng with zlib-ng): about 1.5x faster than
    ``cv2.imread`` on radiographs, and decoding is most of the cost of preprocessing."""
    try:
        return imagecodecs.png_decode(data)
    except Exception as err:  # imagecodecs raises its own error types for corrupt data
        raise BadImage(f"{path}: cannot decode this PNG ({err})") from err


def png_significant_bits(data: bytes) -> int | None:
    """The bit depth a 16-bit PNG's ``sBIT`` chunk declares for its colour channels, or None.

    Walks the chunk headers before the first IDAT; decodes nothing. None for 8-bit PNGs, for
    files without the chunk and for a malformed one.
    """
    if len(data) < 33 or data[24] != 16:  # IHDR's bit depth
        return None
    channels = 3 if data[25] & 2 else 1  # colour type: RGB(A) or gray(+alpha)
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if kind in (b"IDAT", b"IEND"):
            return None
        if kind == b"sBIT":
            bits = max(data[pos + 8 : pos + 8 + min(length, channels)], default=0)
            return bits if 1 <= bits <= 16 else None
        pos += 12 + length
    return None


_TO_GRAY = {
    ("RGB", 3): cv2.COLOR_RGB2GRAY,
    ("RGB", 4): cv2.COLOR_RGBA2GRAY,
    ("BGR", 3): cv2.COLOR_BGR2GRAY,
    ("BGR", 4): cv2.COLOR_BGRA2GRAY,
}


def to_gray_uint8(
    img: np.ndarray, path: Path | str = "", order: str = "BGR", bits: int | None = None
) -> np.ndarray:
    """Collapse channels (colour in ``order``, with or without alpha; gray + alpha) to gray and
    bring 16-bit data to 8 bits, scaled by :func:`bit_depth` (``bits``: what the file declares)."""
    if img.ndim == 3:
        channels = img.shape[2]
        if channels in (1, 2):  # gray, or gray + alpha
            img = img[:, :, 0]
        elif (order, channels) in _TO_GRAY:
            img = cv2.cvtColor(img, _TO_GRAY[order, channels])
        else:
            raise BadImage(f"{path}: unsupported number of channels {channels}")
    if img.dtype == np.uint16:
        top = float((1 << bit_depth(img, bits)) - 1)
        img = (img.astype(np.float32) * (255.0 / top) + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise BadImage(f"{path}: unsupported pixel type {img.dtype}")
    return np.ascontiguousarray(img)


def bit_depth(img: np.ndarray, declared: int | None = None) -> int:
    """Bits that 16-bit ``img`` uses: ``declared`` where its values fit in it, else the bit
    length of its largest value, at least 8 (a 12-bit image gives 12, a full-range one 16).

    Values above the declared depth mean the writer shifted them to the full 16-bit range,
    as the PNG standard asks, so the declaration only records the original depth.
    """
    used = int(img.max(initial=0)).bit_length()
    return declared if declared is not None and used <= declared else max(used, 8)


def read_jsrt(path: str | Path) -> np.ndarray:
    """Read a JSRT ``.IMG``: 2048x2048 big-endian 12-bit film density, inverted to radiograph
    polarity (the raw values are high where the lung is radiolucent)."""
    raw = np.fromfile(path, dtype=">u2")
    if raw.size * 2 != JSRT_BYTES:
        raise BadImage(f"{path}: {raw.size * 2:,} bytes, a JSRT raw image has {JSRT_BYTES:,}")
    if raw.max() > 4095:
        raise BadImage(f"{path}: values above 4095; not 12-bit big-endian JSRT data")
    img = 4095 - raw.reshape(JSRT_SIDE, JSRT_SIDE).astype(np.float32)
    return (img * (255.0 / 4095.0) + 0.5).astype(np.uint8)


def read_dicom(path: str | Path) -> np.ndarray:
    """Read a monochrome DICOM radiograph (needs the optional ``pydicom`` extra)."""
    try:
        import pydicom
    except ImportError as err:  # pragma: no cover - depends on the user's environment
        raise BadImage(f"{path}: reading DICOM needs pydicom (pip install 'cxr[dicom]')") from err
    ds = pydicom.dcmread(path)
    interpretation = str(getattr(ds, "PhotometricInterpretation", ""))
    if interpretation not in ("MONOCHROME1", "MONOCHROME2"):
        raise BadImage(f"{path}: photometric interpretation {interpretation!r} is not monochrome")
    pixels = ds.pixel_array.astype(np.float32)
    lo, hi = float(pixels.min()), float(pixels.max())
    img = (pixels - lo) / max(hi - lo, 1.0)
    if interpretation == "MONOCHROME1":
        img = 1.0 - img
    return (img * 255.0 + 0.5).astype(np.uint8)
