"""Image preprocessing steps and presets: what `cxr preprocess` does to each decoded image.

A preset is an ordered list of steps ending in a resize, as the seed papers order them, e.g.
seed 000: histogram equalisation, 3x3 median filter, resize to 224.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from cxr.core.settings import from_mapping

STEPS = ("equalize", "clahe", "median3", "resize")
FITS = ("stretch", "pad", "crop")


@dataclass(frozen=True)
class Preset:
    """Steps (in order), output side, and how the aspect ratio is handled by the resize.

    fit: ``stretch`` resizes to size x size; ``pad`` keeps the aspect ratio and pads with black;
    ``crop`` keeps the aspect ratio and crops the centre. ``name``: the preset's name in
    params.yaml, recorded with the tensors so that nothing reads it from a folder name.
    """

    size: int
    steps: tuple[str, ...] = ("resize",)
    fit: str = "stretch"
    clahe_clip: float = 2.0
    clahe_tile: int = 8
    name: str = ""

    def __post_init__(self) -> None:
        unknown = [s for s in self.steps if s not in STEPS]
        if unknown:
            raise ValueError(f"unknown preprocessing step(s) {unknown}; known: {', '.join(STEPS)}")
        if self.steps.count("resize") != 1:
            raise ValueError(f"a preset needs exactly one 'resize' step, got {list(self.steps)}")
        if self.fit not in FITS:
            raise ValueError(f"unknown fit {self.fit!r}; choose one of {', '.join(FITS)}")
        if self.size < 8:
            raise ValueError(f"output size {self.size} is too small")

    @classmethod
    def from_dict(cls, cfg: dict) -> Preset:
        """A preset from its params.yaml / JSON form; unknown keys are named."""
        return from_mapping(cls, cfg, "preset")


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
