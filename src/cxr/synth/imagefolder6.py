"""The 6-class chest X-ray ImageFolder set of seed 003, in miniature.

Layout ``{train,validation,test}/<class>/<image>`` with the classes ``Covid-19``,
``Effusions``, ``Infiltration``, ``No-Findings``, ``Pneumonia``, ``Pneumothorax``. Splits
follow seed 003's proportions (13,500 / 2,705 / 900) scaled to ``n``, with at least one image
per class and split (so at least 18 images), classes balanced within a split. Images are chest
phantoms with the class's finding, of varied sizes (the real set mixes sizes), stored as
grayscale PNG, grayscale or 3-channel JPEG and 3-channel PNG; exactly one RGBA PNG and one
upper-case ``.PNG``; plus a ``.DS_Store`` and a ``Thumbs.db`` that readers must ignore
(datasets.md 5.4 "Synthetic miniature"). File names are unknown for the real set [UNCONF]:
``<class>_<NNNN>.<ext>``, with some Kaggle-style ``<class> (<k>).<ext>`` names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from cxr.data.images import write_gray_png, write_jpeg, write_rgb, write_rgba_png
from cxr.synth import parallel_map, rng_for
from cxr.synth.chest import Finding, finding_box, render_chest, sample_anatomy, to_uint8

if TYPE_CHECKING:
    from cxr.synth.chest import Anatomy

DEFAULT_N = 600
DEFAULT_SIZE = 128
VARIANTS = ("seed003",)

#: Class folder names, in sorted (torchvision class-index) order.
CLASSES: tuple[str, ...] = (
    "Covid-19",
    "Effusions",
    "Infiltration",
    "No-Findings",
    "Pneumonia",
    "Pneumothorax",
)
#: The phantom finding drawn for each class (None: a normal chest).
FINDING_OF: dict[str, str | None] = {
    "Covid-19": "COVID",
    "Effusions": "Effusion",
    "Infiltration": "Infiltration",
    "No-Findings": None,
    "Pneumonia": "Pneumonia",
    "Pneumothorax": "Pneumothorax",
}
SPLITS: tuple[str, ...] = ("train", "validation", "test")
SEED_SPLIT_SIZES: tuple[int, ...] = (13_500, 2_705, 900)

#: (split, class, number within the class) of the files whose format is fixed.
RGBA_AT = ("train", "Effusions", 0)
UPPER_PNG_AT = ("validation", "Pneumonia", 0)

#: Random file formats and their shares (the two fixed ones are never drawn).
KINDS: tuple[str, ...] = ("gray_png", "gray_jpg", "rgb_jpg", "rgb_png")
KIND_SHARES: tuple[float, ...] = (0.45, 0.25, 0.2, 0.1)
EXTENSION = {
    "gray_png": ".png",
    "gray_jpg": ".jpg",
    "rgb_jpg": ".jpg",
    "rgb_png": ".png",
    "rgba_png": ".png",
    "upper_png": ".PNG",
}

DS_STORE = "train/.DS_Store"
THUMBS_DB = "test/Pneumothorax/Thumbs.db"


@dataclass(frozen=True)
class ChestJob:
    """Everything one worker needs to write one image."""

    path: Path
    label: str
    index: int  # position in the whole run; keys the random stream
    kind: str
    size: int
    seed: int


def generate(out: Path, n: int, size: int, seed: int, variant: str) -> None:
    """Write the miniature into ``out`` (see the module docstring)."""
    jobs = plan_jobs(out, n, size, seed)
    for folder in sorted({job.path.parent for job in jobs}):
        folder.mkdir(parents=True)
    parallel_map(write_chest, jobs, desc="imagefolder6")
    write_os_litter(out)


def split_sizes(n: int) -> dict[str, int]:
    """Images per split: seed 003's proportions scaled to ``n`` (largest remainder), each
    split holding at least one image per class; what small splits gain is taken from train,
    so the total is ``max(n, 18)``."""
    total = sum(SEED_SPLIT_SIZES)
    exact = [n * s / total for s in SEED_SPLIT_SIZES]
    sizes = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: sizes[i] - exact[i])
    for i in by_remainder[: n - sum(sizes)]:
        sizes[i] += 1
    sizes = [max(len(CLASSES), k) for k in sizes]
    sizes[0] = max(len(CLASSES), sizes[0] - (sum(sizes) - n))
    return dict(zip(SPLITS, sizes, strict=True))


def class_sizes(split_size: int) -> dict[str, int]:
    """Balanced images per class; the remainder goes to the first classes."""
    base, extra = divmod(split_size, len(CLASSES))
    return {c: base + (i < extra) for i, c in enumerate(CLASSES)}


def plan_jobs(out: Path, n: int, size: int, seed: int) -> list[ChestJob]:
    """One job per image, in split / class / number order."""
    jobs = []
    for split, split_size in split_sizes(n).items():
        for label, count in class_sizes(split_size).items():
            for k in range(count):
                index = len(jobs)
                kind = _kind_for((split, label, k), rng_for(seed, 1, index))
                name = _file_name(label, k) + EXTENSION[kind]
                jobs.append(ChestJob(out / split / label / name, label, index, kind, size, seed))
    return jobs


def _kind_for(at: tuple[str, str, int], rng: np.random.Generator) -> str:
    if at == RGBA_AT:
        return "rgba_png"
    if at == UPPER_PNG_AT:
        return "upper_png"
    return str(rng.choice(KINDS, p=KIND_SHARES))


def _file_name(label: str, k: int) -> str:
    """``Covid-19_0003``, or Kaggle-style ``Covid-19 (4)`` for every 7th file."""
    return f"{label} ({k + 1})" if k % 7 == 6 else f"{label}_{k:04d}"


def write_chest(job: ChestJob) -> Path:
    """Render the job's chest with its class's finding, at a random size, and write it."""
    rng = rng_for(job.seed, 0, job.index)
    anatomy = sample_anatomy(rng, view="PA")
    findings = _findings(job.label, anatomy, rng)
    img = to_uint8(render_chest(anatomy, findings, job.size, rng))
    img = _random_resize(img, job.size, rng)
    _write(job.path, img, job.kind, quality=int(rng.integers(80, 96)))
    return job.path


def _findings(label: str, anatomy: Anatomy, rng: np.random.Generator) -> list[Finding]:
    """The class's finding (COVID: one or two patches); none for No-Findings."""
    name = FINDING_OF[label]
    if name is None:
        return []
    count = int(rng.integers(1, 3)) if name == "COVID" else 1
    return [Finding(name, finding_box(name, anatomy, rng)) for _ in range(count)]


def _random_resize(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Keep the square ``size`` now and then; otherwise scale to a varied, mostly portrait
    shape, as the real set mixes image sizes."""
    if rng.random() < 0.3:
        return img
    width = max(16, round(size * rng.uniform(0.8, 1.3)))
    height = max(16, round(width * rng.uniform(0.9, 1.25)))
    shrink = width * height < size * size
    return cv2.resize(
        img, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )


def _write(path: Path, img: np.ndarray, kind: str, quality: int) -> None:
    if kind in ("gray_png", "upper_png"):
        write_gray_png(path, img)
    elif kind == "gray_jpg":
        write_jpeg(path, img, quality=quality)
    elif kind == "rgba_png":
        write_rgba_png(path, img)
    else:
        write_rgb(path, img, quality=quality)


def write_os_litter(out: Path) -> None:
    """A macOS ``.DS_Store`` beside the class folders and a Windows ``Thumbs.db`` inside one."""
    (out / DS_STORE).write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(2040))
    (out / THUMBS_DB).write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
