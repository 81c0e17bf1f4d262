"""MURA v1.1 miniature: the real folder layout and the four header-less CSVs.

Writes ``out/MURA-v1.1/`` with ``train/`` and ``valid/`` folders
``XR_<PART>/patientNNNNN/studyK_{positive|negative}/imageM.png`` and the CSVs
``{train,valid}_image_paths.csv`` (one path per line) and ``{train,valid}_labeled_studies.csv``
(study folder with a trailing ``/``, then 0/1), all relative to ``out`` (the parent of
``MURA-v1.1``), with no header and not sorted.

Statistics follow the real release (spec section 4.3): the 7 body parts in their study
proportions, about 8% of the studies in ``valid`` (the next patient goes to valid whenever valid
falls behind that share), abnormal rates per part and split, images per study from the real
histogram, ``studyK`` mostly 1 with a few 2..4, patients imaged under more than one body part,
valid patient ids continuing the train numbering, non-padded ``imageM`` and a few RGB PNGs.
Whatever ``n``, the plan includes (when ``n`` allows): a train patient under two body parts, one
of them with ``study2``; a study of 11 images (so ``image10.png`` exists); a valid patient.
Every image of an abnormal study shows a lesion (:func:`cxr.synth.bones.render_part`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxr.data.images import write_gray_png, write_rgb
from cxr.synth import parallel_map, rng_for
from cxr.synth.bones import render_part
from cxr.synth.chest import to_uint8

DEFAULT_N = 800
DEFAULT_SIZE = 512
VARIANTS: tuple[str, ...] = ("v1.1",)

ROOT_NAME = "MURA-v1.1"
SPLITS: tuple[str, ...] = ("train", "valid")
PARTS: tuple[str, ...] = ("ELBOW", "FINGER", "FOREARM", "HAND", "HUMERUS", "SHOULDER", "WRIST")

#: Real study counts per part: (train normal, train abnormal, valid normal, valid abnormal).
STUDY_COUNTS: dict[str, tuple[int, int, int, int]] = {
    "ELBOW": (1094, 660, 92, 66),
    "FINGER": (1280, 655, 92, 83),
    "FOREARM": (590, 287, 69, 64),
    "HAND": (1497, 521, 101, 66),
    "HUMERUS": (321, 271, 68, 67),
    "SHOULDER": (1364, 1457, 99, 95),
    "WRIST": (2134, 1326, 140, 97),
}
#: Real histogram of images per study (train).
IMAGES_PER_STUDY: dict[int, int] = {
    1: 1131,
    2: 3733,
    3: 6466,
    4: 1887,
    5: 197,
    6: 27,
    7: 13,
    8: 2,
    11: 1,
}
#: Real counts of studies numbered K (train): how many (patient, part) pairs reach study K.
STUDY_NUMBERS: dict[int, int] = {1: 12934, 2: 480, 3: 35, 4: 8}
#: Share of the studies in valid (1,199 of 14,656).
VALID_STUDY_SHARE = 1199 / (13457 + 1199)
#: Share of patients imaged under more than one body part, per split.
MULTI_PART_SHARE: dict[str, float] = {"train": 1467 / 11184, "valid": 248 / 783}
RGB_SHARE = 0.01
LARGEST_STUDY = 11


@dataclass(frozen=True)
class Study:
    """One study of the plan; ``patient`` is a provisional key until numbering."""

    split: str
    part: str
    patient: int
    number: int
    abnormal: bool
    n_images: int

    def folder(self) -> str:
        """Study folder relative to the parent of ``MURA-v1.1`` (no trailing slash)."""
        suffix = "positive" if self.abnormal else "negative"
        return (
            f"{ROOT_NAME}/{self.split}/XR_{self.part}/patient{self.patient:05d}/"
            f"study{self.number}_{suffix}"
        )


@dataclass(frozen=True)
class ImageJob:
    path: Path
    part: str
    abnormal: bool
    size: int
    seed: int
    index: int
    rgb: bool


def generate(out: Path, n: int, size: int, seed: int, variant: str) -> None:
    """Write the MURA miniature of ``n`` images into ``out`` (see the module docstring)."""
    studies = plan_studies(n, rng_for(seed, 0))
    rng = rng_for(seed, 1)
    order = rng.permutation(len(studies))  # the real CSV rows are not sorted
    studies = [studies[i] for i in order]
    jobs = image_jobs(out, studies, size, seed, rng)
    for job in jobs:
        job.path.parent.mkdir(parents=True, exist_ok=True)
    parallel_map(write_image, jobs, desc="mura")
    write_csvs(out, studies)


def plan_studies(n: int, rng: np.random.Generator) -> list[Study]:
    """Studies totalling exactly ``n`` images, patients numbered train first, then valid."""
    groups = _forced_groups(n)
    budget = n - sum(s.n_images for g in groups for s in g)
    key = len(groups)
    while budget > 0:
        studies = [s for g in groups for s in g]
        valid = sum(s.split == "valid" for s in studies)
        split = "valid" if valid < VALID_STUDY_SHARE * len(studies) else "train"
        group = _random_patient(rng, key, split)
        groups.append(group)
        budget -= sum(s.n_images for s in group)
        key += 1
    studies = _trim_to(n, [s for g in groups for s in g])
    return _number_patients(studies, rng)


def _forced_groups(n: int) -> list[list[Study]]:
    """The layout's pitfalls, present whenever ``n`` leaves room for them."""
    if n < LARGEST_STUDY + 6:
        return []
    return [
        [
            Study("train", "WRIST", 0, 1, True, 2),
            Study("train", "HAND", 0, 1, False, 1),
            Study("train", "HAND", 0, 2, True, 1),
        ],
        [Study("train", "SHOULDER", 1, 1, False, LARGEST_STUDY)],
        [Study("valid", "WRIST", 2, 1, True, 1)],
    ]


def _random_patient(rng: np.random.Generator, key: int, split: str) -> list[Study]:
    """One patient's studies in ``split``: one or more parts, ``study1..K`` per part."""
    n_parts = 2 if rng.random() < MULTI_PART_SHARE[split] else 1
    weights = np.array([_split_counts(p, split).sum() for p in PARTS], float)
    parts = rng.choice(PARTS, size=n_parts, replace=False, p=weights / weights.sum())
    studies = []
    for part in parts:
        normal, abnormal = _split_counts(str(part), split)
        for number in range(1, _study_count(rng) + 1):
            is_abnormal = bool(rng.random() < abnormal / (normal + abnormal))
            studies.append(Study(split, str(part), key, number, is_abnormal, _images(rng)))
    return studies


def _split_counts(part: str, split: str) -> np.ndarray:
    counts = STUDY_COUNTS[part]
    return np.array(counts[:2] if split == "train" else counts[2:])


def _study_count(rng: np.random.Generator) -> int:
    """How many studies (study1..K) a patient has under one part, from the real counts."""
    reach = np.array(list(STUDY_NUMBERS.values()), float)
    exact = reach - np.append(reach[1:], 0)
    return int(rng.choice(list(STUDY_NUMBERS), p=exact / exact.sum()))


def _images(rng: np.random.Generator) -> int:
    counts = np.array(list(IMAGES_PER_STUDY.values()), float)
    return int(rng.choice(list(IMAGES_PER_STUDY), p=counts / counts.sum()))


def _trim_to(n: int, studies: list[Study]) -> list[Study]:
    """Cut the last studies so that the images add up to exactly ``n``."""
    out, total = [], 0
    for study in studies:
        take = min(study.n_images, n - total)
        if take <= 0:
            break
        out.append(_replace(study, n_images=take))
        total += take
    return _renumber_studies(out)


def _renumber_studies(studies: list[Study]) -> list[Study]:
    """Keep ``studyK`` contiguous from 1 per (patient, part) after trimming."""
    seen: dict[tuple[int, str], int] = {}
    out = []
    for s in studies:
        number = seen.get((s.patient, s.part), 0) + 1
        seen[(s.patient, s.part)] = number
        out.append(_replace(s, number=number))
    return out


def _number_patients(studies: list[Study], rng: np.random.Generator) -> list[Study]:
    """Patient ids 1..T for train patients (random order), T+1.. for valid ones."""
    ids: dict[int, int] = {}
    for split in SPLITS:
        keys = sorted({s.patient for s in studies if s.split == split})
        for key in (keys[i] for i in rng.permutation(len(keys))):
            ids[key] = len(ids) + 1
    return [_replace(s, patient=ids[s.patient]) for s in studies]


def _replace(study: Study, **changes: int) -> Study:
    fields = {**study.__dict__, **changes}
    return Study(**fields)


def image_jobs(
    out: Path, studies: list[Study], size: int, seed: int, rng: np.random.Generator
) -> list[ImageJob]:
    """One job per image, with at least one RGB file."""
    jobs = []
    for study in studies:
        for m in range(1, study.n_images + 1):
            jobs.append(
                ImageJob(
                    out / study.folder() / f"image{m}.png",
                    study.part.lower(),
                    study.abnormal,
                    size,
                    seed,
                    len(jobs),
                    bool(rng.random() < RGB_SHARE),
                )
            )
    if jobs and not any(j.rgb for j in jobs):
        i = int(rng.integers(len(jobs)))
        jobs[i] = ImageJob(**{**jobs[i].__dict__, "rgb": True})
    return jobs


def image_shape(size: int, rng: np.random.Generator) -> tuple[int, int]:
    """(height, width): long side mostly ``size``, width 0.5-1.0 x height, a few landscape."""
    long_side = size if rng.random() < 0.85 else round(size * rng.uniform(0.5, 1.0))
    short_side = round(long_side * rng.uniform(0.5, 1.0))
    shape = (max(16, long_side), max(16, short_side))
    return shape[::-1] if rng.random() < 0.08 else shape


def write_image(job: ImageJob) -> None:
    """Render and write one radiograph (8-bit gray PNG, or RGB PNG for a few)."""
    rng = rng_for(job.seed, 2, job.index)
    height, width = image_shape(job.size, rng)
    img, _box = render_part(job.part, rng, height, width, abnormal=job.abnormal)
    pixels = to_uint8(img)
    if job.rgb:
        write_rgb(job.path, pixels)
    else:
        write_gray_png(job.path, pixels)


def write_csvs(out: Path, studies: list[Study]) -> None:
    """The four header-less CSVs inside ``MURA-v1.1``, rows in the (shuffled) study order."""
    root = out / ROOT_NAME
    root.mkdir(exist_ok=True)
    for split in SPLITS:
        mine = [s for s in studies if s.split == split]
        images = [[f"{s.folder()}/image{m}.png"] for s in mine for m in range(1, s.n_images + 1)]
        labels = [[f"{s.folder()}/", int(s.abnormal)] for s in mine]
        _write_rows(root / f"{split}_image_paths.csv", images)
        _write_rows(root / f"{split}_labeled_studies.csv", labels)


def _write_rows(path: Path, rows: list[list]) -> None:
    with open(path, "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
