"""The "which X-ray type" collection: ``<type>/<type>_NNNN.<ext>`` for the 14 types of seed 002.

Thirteen types are body-part phantoms (:mod:`cxr.synth.bones`), ``chest`` is the chest phantom
(:mod:`cxr.synth.chest`). Counts follow seed 002's proportions (wrist and chest common, hip rare)
with at least 3 images per type when ``n`` allows. Like the real sources, ``spine`` (AASCE) and
``dental`` (panoramic) are JPEG, mostly 3-channel; the others are 8-bit gray PNG. Shapes vary per
type: panoramic dental about 1.9:1 landscape, spine tall and narrow, chest square, pelvis
landscape, limbs portrait of varying width. All images are normal (abnormality is MURA's job).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxr.data.images import write_gray_png, write_jpeg, write_rgb
from cxr.ingest.xray_types import XRAY_TYPES
from cxr.synth import parallel_map, rng_for
from cxr.synth.bones import render_part
from cxr.synth.chest import render_chest, sample_anatomy, to_uint8

DEFAULT_N = 700
DEFAULT_SIZE = 256
VARIANTS: tuple[str, ...] = ("folders",)

#: Images per type in seed 002 (Module II).
SEED_COUNTS: dict[str, int] = {
    "spine": 609,
    "elbow": 5396,
    "finger": 5567,
    "forearm": 2126,
    "hand": 6003,
    "wrist": 10411,
    "knee": 534,
    "foot": 348,
    "ankle": 322,
    "hip": 94,
    "humerus": 1560,
    "shoulder": 9054,
    "dental": 1500,
    "chest": 11001,
}
MIN_PER_TYPE = 3
JPEG_TYPES = frozenset({"spine", "dental"})
RGB_JPEG_SHARE = 0.7


@dataclass(frozen=True)
class ImageJob:
    path: Path
    kind: str
    size: int
    seed: int
    index: int


def generate(out: Path, n: int, size: int, seed: int, variant: str) -> None:
    """Write ``n`` images into one folder per type under ``out``."""
    jobs = []
    for kind, count in type_counts(n).items():
        if count:
            (out / kind).mkdir()
        ext = "jpg" if kind in JPEG_TYPES else "png"
        for i in range(1, count + 1):
            path = out / kind / f"{kind}_{i:04d}.{ext}"
            jobs.append(ImageJob(path, kind, size, seed, len(jobs)))
    parallel_map(write_image, jobs, desc="xray_types")


def type_counts(n: int) -> dict[str, int]:
    """Images per type: seed 002's proportions, largest remainders, at least 3 when possible."""
    floor = min(MIN_PER_TYPE, n // len(XRAY_TYPES))
    weights = np.array([SEED_COUNTS[t] for t in XRAY_TYPES], float)
    share = (n - floor * len(XRAY_TYPES)) * weights / weights.sum()
    counts = np.floor(share).astype(int)
    for i in np.argsort(counts - share)[: n - floor * len(XRAY_TYPES) - counts.sum()]:
        counts[i] += 1
    return {t: int(c) + floor for t, c in zip(XRAY_TYPES, counts, strict=True)}


def image_shape(kind: str, size: int, rng: np.random.Generator) -> tuple[int, int]:
    """(height, width) of one image of ``kind`` whose long side is ``size``."""
    if kind == "dental":
        return round(size / rng.uniform(1.8, 2.0)), size
    if kind == "spine":
        return size, round(size * rng.uniform(0.35, 0.55))
    if kind == "chest":
        return size, size
    if kind == "hip":
        return round(size * rng.uniform(0.75, 0.95)), size
    width = round(size * rng.uniform(0.5, 1.0))
    return (width, size) if rng.random() < 0.08 else (size, width)


def render(kind: str, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A normal radiograph of ``kind`` as float32 in [0, 1]."""
    if kind == "chest":
        return render_chest(sample_anatomy(rng), [], height, rng)
    img, _box = render_part(kind, rng, height, width)
    return img


def write_image(job: ImageJob) -> None:
    """Render one image and write it in its type's file format."""
    rng = rng_for(job.seed, job.index)
    height, width = image_shape(job.kind, job.size, rng)
    pixels = to_uint8(render(job.kind, rng, height, width))
    if job.kind not in JPEG_TYPES:
        write_gray_png(job.path, pixels)
    elif rng.random() < RGB_JPEG_SHARE:
        write_rgb(job.path, pixels, quality=int(rng.integers(85, 96)))
    else:
        write_jpeg(job.path, pixels, quality=int(rng.integers(85, 96)))
