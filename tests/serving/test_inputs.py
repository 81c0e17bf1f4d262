"""Inputs as users have them decode to one gray image; bad ones fail with what is wrong."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from cxr.data.images import BadImage
from cxr.serving.inputs import MAX_PIXELS, decode, read_file
from serving.conftest import bomb_png

GRADIENT = np.tile(np.linspace(0, 255, 96, dtype=np.float32), (64, 1))


def png(img: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", img)
    assert ok
    return buffer.tobytes()


def pil_bytes(img: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def test_png_8_and_16_bit_gray_rgb_rgba_and_jpeg_decode_alike():
    gray = GRADIENT.astype(np.uint8)
    sixteen = (GRADIENT * 257).astype(np.uint16)
    rgb = np.dstack([gray] * 3)
    rgba = np.dstack([gray, gray, gray, np.full_like(gray, 255)])
    for data in (png(gray), png(sixteen), png(rgb), png(rgba)):
        out = decode(data)
        assert out.shape == (64, 96)
        assert out.dtype == np.uint8
        assert np.abs(out.astype(int) - gray).max() <= 1
    jpeg = decode(pil_bytes(Image.fromarray(rgb), "JPEG"))
    assert jpeg.shape == (64, 96)
    assert np.abs(jpeg.astype(int) - gray).mean() < 3


def test_a_12_bit_png_keeps_its_grey_range_and_any_size_is_taken():
    twelve = (GRADIENT * 4095 / 255).astype(np.uint16)
    assert decode(png(twelve)).max() == 255
    assert decode(png(np.zeros((17, 3000), np.uint8))).shape == (17, 3000)


def test_dicom_is_read_with_the_optional_extra():
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.Rows, ds.Columns = 64, 96
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 16, 12, 11
    ds.PixelRepresentation = 0
    ds.PixelData = (GRADIENT * 16).astype(np.uint16).tobytes()
    out = io.BytesIO()
    pydicom.dcmwrite(out, ds, enforce_file_format=True)
    img = decode(out.getvalue())
    assert img.shape == (64, 96)
    assert img[0, 0] == 255 and img[0, -1] == 0  # MONOCHROME1 inverted


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "empty file", id="empty"),
        pytest.param(b"hello, not an image\n" * 10, "not an image", id="text"),
        pytest.param(png(GRADIENT.astype(np.uint8))[:300], "truncated PNG", id="truncated-png"),
        pytest.param(
            pil_bytes(Image.fromarray(GRADIENT.astype(np.uint8)), "JPEG")[:-200],
            "truncated JPEG",
            id="truncated-jpeg",
        ),
        pytest.param(bomb_png(20_000, 20_000), "decompression bomb", id="bomb"),
        pytest.param(png(np.zeros((8, 8), np.uint8)), "too small", id="tiny"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "not", id="damaged-png-header"),
    ],
)
def test_bad_inputs_say_what_is_wrong(data, message):
    with pytest.raises(BadImage, match=message):
        decode(data)


def test_the_bomb_limit_is_far_above_a_radiograph():
    assert MAX_PIXELS > 4_000 * 5_000


def test_files_that_cannot_be_read(tmp_path: Path):
    (tmp_path / "dangling.png").symlink_to(tmp_path / "gone.png")
    with pytest.raises(BadImage, match="unreadable: No such file"):
        read_file(tmp_path / "dangling.png")
    (tmp_path / "big.png").write_bytes(b"\0" * 2000)
    with pytest.raises(BadImage, match="too large: 2,000 bytes"):
        read_file(tmp_path / "big.png", max_bytes=1000)
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(BadImage, match="not a file"):
        read_file(tmp_path / "folder.png")
