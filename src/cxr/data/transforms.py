"""Image preprocessing steps: what `cxr preprocess` does to each decoded image, following its
preset (:mod:`cxr.data.presets`)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from cxr.data.presets import Preset


@dataclass(frozen=True)
class Geometry:
    """Maps a pixel coordinate of the original image to the output: ``x' = x * sx + ox``."""

    sx: float
    sy: float
    ox: float
    oy: float
    # size of the resized image before padding / cropping
    inner_w: int
    inner_h: int


def geometry(width: int, height: int, preset: Preset) -> Geometry:
    """The resize geometry of an image of ``width`` x ``height`` under ``preset``."""
    size = preset.size
    if preset.fit == "stretch":
        return Geometry(size / width, size / height, 0.0, 0.0, size, size)
    scale = (min if preset.fit == "pad" else max)(size / width, size / height)
    inner_w, inner_h = max(1, round(width * scale)), max(1, round(height * scale))
    ox, oy = (size - inner_w) // 2, (size - inner_h) // 2
    return Geometry(inner_w / width, inner_h / height, float(ox), float(oy), inner_w, inner_h)


def apply_preset(img: np.ndarray, preset: Preset) -> np.ndarray:
    """Run the preset's steps on a 2D uint8 image; returns (size, size) uint8."""
    for step in preset.steps:
        if step == "equalize":
            img = cv2.equalizeHist(img)
        elif step == "clahe":
            clahe = cv2.createCLAHE(preset.clahe_clip, (preset.clahe_tile, preset.clahe_tile))
            img = clahe.apply(img)
        elif step == "median3":
            img = cv2.medianBlur(img, 3)
        else:
            img = resize(img, preset)
    return img


def resize(img: np.ndarray, preset: Preset) -> np.ndarray:
    """Area-interpolated resize to the preset's size, stretched, padded or centre-cropped."""
    h, w = img.shape
    g = geometry(w, h, preset)
    inner = area_resize(img, g.inner_w, g.inner_h)
    if preset.fit == "stretch":
        return inner
    x0, y0, size = int(g.ox), int(g.oy), preset.size
    if preset.fit == "crop":  # offsets are <= 0: the centre of the inner image
        return np.ascontiguousarray(inner[-y0 : -y0 + size, -x0 : -x0 + size])
    out = np.zeros((size, size), np.uint8)
    out[y0 : y0 + g.inner_h, x0 : x0 + g.inner_w] = inner
    return out


def area_resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """``cv2.resize`` with area interpolation, halving first by exact 2x2 means while the image
    is still more than twice the target (area interpolation of an area-halved image is the same
    box average, computed on a quarter of the pixels)."""
    while img.shape[1] >= 4 * width and img.shape[0] >= 4 * height:
        h2, w2 = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
        img = cv2.resize(img[:h2, :w2], (w2 // 2, h2 // 2), interpolation=cv2.INTER_AREA)
    if img.shape[1] == width and img.shape[0] == height:
        return img
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
