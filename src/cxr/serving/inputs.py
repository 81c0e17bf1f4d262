"""An image file as users have it, to one 2D gray uint8 array, checked by decoding it.

PNG (8/16-bit, gray / LA / RGB / RGBA), JPEG, TIFF, BMP, WebP and DICOM (the optional
``pydicom`` extra), any size within :data:`MAX_PIXELS`. The kind is told by the bytes, never by
a file name or a declared type. Every failure is a :class:`~cxr.data.images.BadImage` whose
message says what is wrong: empty, truncated, not an image, too many pixels, unreadable.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from cxr.data.decode import png_significant_bits, read_dicom, read_png, to_gray_uint8
from cxr.data.images import BadImage, check_side

#: The most pixels an image may have (a decompression bomb is refused before decoding):
#: 50 megapixels, far above any radiograph (a 43 x 43 cm detector at 0.1 mm is 18 MP).
MAX_PIXELS = 50_000_000
#: The largest file read (bytes).
MAX_BYTES = 64 * 1024 * 1024

_PNG = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"
_JPEG, _JPEG_END = b"\xff\xd8\xff", b"\xff\xd9"


def read_file(path: Path, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of ``path``; a BadImage if it is missing, unreadable, empty or too large."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise BadImage("not a file")
        if size > max_bytes:
            raise BadImage(f"too large: {size:,} bytes (the limit is {max_bytes:,})")
        return path.read_bytes()
    except OSError as err:
        raise BadImage(f"unreadable: {err.strerror or err}") from None


def _dicom(data: bytes) -> bool:
    return len(data) > 132 and data[128:132] == b"DICM"


def _header_size(data: bytes) -> tuple[int, int, str]:
    """Width, height and format from the header alone (PIL opens lazily: nothing decoded)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return im.width, im.height, str(im.format)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise BadImage(f"refused: too many pixels, a decompression bomb? ({err})") from None
    except Image.UnidentifiedImageError:
        raise BadImage("not an image: no PNG, JPEG, TIFF, BMP, WebP or DICOM header") from None
    except Exception as err:  # PIL raises many types for a damaged header
        raise BadImage(f"not a readable image ({type(err).__name__}: {err})") from None


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise BadImage(
            f"refused: {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{MAX_PIXELS:,} (a decompression bomb?)"
        )
    check_side(width, height)


def decode(data: bytes) -> np.ndarray:
    """``data`` (a whole file) as a 2D uint8 gray image in radiograph polarity."""
    if not data:
        raise BadImage("empty file (0 bytes)")
    if _dicom(data):
        return _decode_dicom(data)
    width, height, fmt = _header_size(data)
    _check_pixels(width, height)
    tail = data[-16:]
    if data.startswith(_PNG):
        if _PNG_END not in tail:
            raise BadImage("truncated PNG (no IEND chunk at the end of the file)")
        return to_gray_uint8(read_png(data), "", "RGB", png_significant_bits(data))
    if data.startswith(_JPEG) and _JPEG_END not in tail:
        raise BadImage("truncated JPEG (no end-of-image marker)")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise BadImage(f"a {fmt} file that cannot be decoded (damaged?)")
    return to_gray_uint8(img, "", order="BGR")


def _decode_dicom(data: bytes) -> np.ndarray:
    try:
        import pydicom
    except ImportError:
        raise BadImage(
            "a DICOM file: reading it needs pydicom (pip install 'cxr[dicom]')"
        ) from None
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        rows, columns = int(ds.Rows), int(ds.Columns)
    except Exception as err:  # pydicom raises many types for a damaged header
        raise BadImage(f"a damaged DICOM file ({type(err).__name__}: {err})") from None
    _check_pixels(columns, rows)
    try:
        img = read_dicom(io.BytesIO(data))  # type: ignore[arg-type]
    except BadImage as err:
        raise BadImage(str(err).removeprefix(": ").split(">: ", 1)[-1]) from None
    except Exception as err:  # truncated pixel data, unsupported transfer syntax...
        raise BadImage(f"DICOM pixel data unreadable ({type(err).__name__}: {err})") from None
    if img.ndim != 2:
        raise BadImage(f"DICOM with {img.ndim} dimensions: one 2D radiograph expected")
    return img
