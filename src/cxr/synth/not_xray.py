"""Photographs that are not X-rays: the negative class of an "is it an X-ray?" classifier
(seed 002 uses ImageNet photos).

Derived from the images scikit-image ships offline, by random crop, aspect change, scale,
rotation, flips, colour/brightness jitter, occasional tinting of gray sources, grayscale
conversion of colour ones and a few negatives, so that neither colour nor size alone separates
them from radiographs. Writes ``photos/<source>_<NNNN>.jpg`` (about 80%) or ``.png`` with
modes L, RGB and (for the logo) RGBA; the long side is around ``size``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from cxr.synth import parallel_map, rng_for

DEFAULT_N = 300
DEFAULT_SIZE = 256
VARIANTS = ("photos",)

#: ``skimage.data`` images that load without network access.
SOURCES: tuple[str, ...] = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "cat",
    "moon",
    "text",
    "page",
    "clock",
    "coins",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "colorwheel",
    "logo",
    "grass",
    "gravel",
    "brick",
)

PNG_SHARE = 0.2
GRAY_SHARE = 0.3  # colour photos turned gray
TINT_SHARE = 0.3  # gray photos turned colour
NEGATIVE_SHARE = 0.05
GRAY_AS_RGB_SHARE = 0.3  # gray photos stored as 3-channel files


@dataclass(frozen=True)
class PhotoJob:
    """Everything one worker needs to write one photo."""

    out: Path
    index: int
    source: str
    size: int
    seed: int


def generate(out: Path, n: int, size: int, seed: int, variant: str) -> None:
    """Write ``n`` photos into ``out/photos`` (see the module docstring)."""
    (out / "photos").mkdir()
    order = rng_for(seed, 1).permutation(len(SOURCES))
    jobs = [PhotoJob(out, i, SOURCES[order[i % len(SOURCES)]], size, seed) for i in range(n)]
    parallel_map(write_photo, jobs, desc="not_xray")


def write_photo(job: PhotoJob) -> Path:
    """Derive one photo from its source and write it; returns its path."""
    rng = rng_for(job.seed, 0, job.index)
    as_png = rng.random() < PNG_SHARE
    img = source_image(job.source).astype(np.float32) / 255
    img = _alpha_or_background(img, keep_alpha=as_png and rng.random() < 0.5, rng=rng)
    img = random_geometry(img, job.size, rng)
    img = random_colour(img, rng)
    img = np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1)
    pixels = np.rint(img * 255).astype(np.uint8)
    if pixels.ndim == 2 and rng.random() < GRAY_AS_RGB_SHARE:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    path = job.out / "photos" / f"{job.source}_{job.index:04d}.{'png' if as_png else 'jpg'}"
    _save(path, pixels, quality=int(rng.integers(70, 96)))
    return path


@lru_cache(maxsize=len(SOURCES))
def source_image(name: str) -> np.ndarray:
    """The named ``skimage.data`` image as uint8 (H, W) or (H, W, 3|4); cached per process."""
    import skimage.data

    img = getattr(skimage.data, name)()
    img.setflags(write=False)
    return img


def _alpha_or_background(img: np.ndarray, keep_alpha: bool, rng: np.random.Generator) -> np.ndarray:
    """Keep an alpha channel, or composite the image over a random flat background."""
    if img.ndim == 2 or img.shape[2] == 3 or keep_alpha:
        return img
    alpha = img[..., 3:]
    background = rng.uniform(0, 1, 3).astype(np.float32)
    return img[..., :3] * alpha + background * (1 - alpha)


def random_geometry(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Crop (changing the aspect), rotate, flip and scale so the long side is near ``size``."""
    img = _random_crop(img, rng)
    img = np.rot90(img, k=int(rng.integers(0, 4))) if rng.random() < 0.25 else img
    img = _small_rotation(img, rng) if rng.random() < 0.3 else img
    img = img[:, ::-1] if rng.random() < 0.5 else img
    img = img[::-1] if rng.random() < 0.1 else img
    return _resize_long_side(np.ascontiguousarray(img), size * rng.uniform(0.7, 1.3))


def _random_crop(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    ch, cw = (max(16, int(s * rng.uniform(0.45, 1.0))) for s in (h, w))
    ch, cw = min(ch, 2 * cw), min(cw, 2 * ch)  # aspect within 1:2 .. 2:1
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return img[y : y + ch, x : x + cw]


def _small_rotation(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(-15, 15)), 1.0)
    return cv2.warpAffine(np.ascontiguousarray(img), matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def _resize_long_side(img: np.ndarray, long_side: float) -> np.ndarray:
    h, w = img.shape[:2]
    scale = long_side / max(h, w)
    new = (max(16, round(w * scale)), max(16, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(img, new, interpolation=interp)


def random_colour(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Jitter brightness, contrast and gamma; swap gray and colour now and then."""
    rgb, alpha = (img[..., :3], img[..., 3:]) if img.ndim == 3 else (img, None)
    if rgb.ndim == 3 and rng.random() < GRAY_SHARE:
        rgb = _to_gray(rgb) if alpha is None else np.repeat(_to_gray(rgb)[..., None], 3, axis=2)
    elif rgb.ndim == 2 and rng.random() < TINT_SHARE:
        rgb = rgb[..., None] * rng.uniform(0.6, 1.0, 3).astype(np.float32)
    if rgb.ndim == 3:
        gray = _to_gray(rgb)[..., None]
        rgb = gray + (rgb - gray) * rng.uniform(0.5, 1.5)  # saturation
    rgb = (rgb - 0.5) * rng.uniform(0.7, 1.3) + 0.5 + rng.uniform(-0.15, 0.15)
    rgb = np.clip(rgb, 0, 1) ** rng.uniform(0.7, 1.4)
    rgb = 1 - rgb if rng.random() < NEGATIVE_SHARE else rgb
    return rgb if alpha is None else np.concatenate([rgb, alpha], axis=2)


def _to_gray(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


def _save(path: Path, pixels: np.ndarray, quality: int) -> None:
    """Write uint8 pixels (L, RGB or RGBA by shape) as PNG or JPEG by the file's extension."""
    image = Image.fromarray(pixels)
    if path.suffix == ".png":
        image.save(path, format="PNG", compress_level=6)
    else:
        image.save(path, format="JPEG", quality=quality)
