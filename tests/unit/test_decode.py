"""Decoding: 16-bit files scaled by the bit depth they hold, tiny images refused by size."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxr.data.decode import png_significant_bits, read_gray
from cxr.data.images import MIN_SIDE, BadImage, probe, write_gray_png

IHDR_END = 8 + 4 + 4 + 13 + 4  # signature, then IHDR's length, type, data and CRC


def ramp(top: int, h: int = 40, w: int = 64) -> np.ndarray:
    """A uint16 horizontal ramp from 0 to ``top``."""
    return np.tile(np.linspace(0, top, w).round().astype(np.uint16), (h, 1))


def scaled(img: np.ndarray, top: int) -> np.ndarray:
    return (img.astype(np.float32) * (255.0 / top) + 0.5).astype(np.uint8)


def with_sbit(png: bytes, bits: bytes) -> bytes:
    """``png`` with an sBIT chunk declaring ``bits`` (one byte per channel) after IHDR."""
    body = b"sBIT" + bits
    chunk = len(bits).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
    return png[:IHDR_END] + chunk + png[IHDR_END:]


def write_png16(path: Path, img: np.ndarray, sbit: bytes | None = None) -> None:
    ok, encoded = cv2.imencode(".png", img)
    assert ok and encoded[24] == 16  # a 16-bit PNG
    data = encoded.tobytes()
    path.write_bytes(with_sbit(data, sbit) if sbit else data)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_twelve_bit_data_in_a_sixteen_bit_file_keeps_its_grey_range(
    tmp_path: Path, suffix: str
) -> None:
    img = ramp(4095)  # a 12-bit radiograph export, no declared depth
    path = tmp_path / f"x{suffix}"
    assert cv2.imwrite(str(path), img)
    out = read_gray(path)
    assert np.array_equal(out, scaled(img, 4095))
    assert out.max() == 255
    assert len(np.unique(out)) == 64  # every column its own level, not 16 near-black ones


def test_a_full_range_sixteen_bit_png_is_still_scaled_by_65535(tmp_path: Path) -> None:
    img = ramp(65535)
    write_png16(tmp_path / "x.png", img)
    assert np.array_equal(read_gray(tmp_path / "x.png"), scaled(img, 65535))


@pytest.mark.parametrize("channels", [1, 3])
def test_the_declared_sbit_depth_scales_sixteen_bit_pngs(tmp_path: Path, channels: int) -> None:
    img = ramp(2000)  # 12-bit data whose brightest pixel needs only 11 bits
    write_png16(tmp_path / "x.png", np.dstack([img] * channels), sbit=bytes([12] * channels))
    assert png_significant_bits((tmp_path / "x.png").read_bytes()) == 12
    assert np.array_equal(read_gray(tmp_path / "x.png"), scaled(img, 4095))


def test_sbit_with_values_shifted_to_sixteen_bits_is_scaled_by_65535(tmp_path: Path) -> None:
    img = ramp(4095) << 4  # what the PNG standard asks: sBIT 12, samples left-aligned
    write_png16(tmp_path / "x.png", img, sbit=bytes([12]))
    assert np.array_equal(read_gray(tmp_path / "x.png"), scaled(img, 65535))


def test_significant_bits_are_none_without_the_chunk_or_in_8_bit_pngs(tmp_path: Path) -> None:
    write_png16(tmp_path / "x16.png", ramp(4095))
    write_gray_png(tmp_path / "x8.png", np.zeros((32, 32), np.uint8))
    assert png_significant_bits((tmp_path / "x16.png").read_bytes()) is None
    assert png_significant_bits((tmp_path / "x8.png").read_bytes()) is None


@pytest.mark.parametrize(("width", "height"), [(1, 1), (MIN_SIDE - 1, 200), (300, 2)])
def test_tiny_images_are_refused_naming_their_size(tmp_path: Path, width: int, height: int) -> None:
    path = tmp_path / "tiny.png"
    write_gray_png(path, np.full((height, width), 128, np.uint8))
    message = f"too small: {width}x{height} pixels (the smallest side accepted is {MIN_SIDE})"
    with pytest.raises(BadImage, match=re.escape(message)):
        probe(path)
    with pytest.raises(BadImage, match=re.escape(f"tiny.png: {message}")):
        read_gray(path)


def test_an_image_of_the_minimum_side_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    write_gray_png(path, np.full((MIN_SIDE, 3 * MIN_SIDE), 128, np.uint8))
    assert probe(path).width == 3 * MIN_SIDE
    assert read_gray(path).shape == (MIN_SIDE, 3 * MIN_SIDE)
