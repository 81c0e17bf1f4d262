"""Synthetic miniature of the JSRT Standard Digital Image Database (spec section 2).

Writes the original CD layout::

    All247images/JPCLN001.IMG ...   nodule cases (malignant or benign)
    All247images/JPCNN001.IMG ...   non-nodule cases
    Clinical_Information/CLNDAT_EN.txt   tab-separated, CR line endings
    Clinical_Information/CNNDAT_EN.TXT   runs of spaces, CR line endings

Every ``.IMG`` is a headerless big-endian 2048x2048 array of 12-bit values with film-density
polarity (lung high). ``size`` is only the phantom's render resolution before upsampling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cxr.data.images import JSRT_SIDE
from cxr.synth import parallel_map, rng_for, scaled_counts
from cxr.synth.chest import Finding, finding_box, render_chest, sample_anatomy

DEFAULT_N = 247
DEFAULT_SIZE = 512
VARIANTS: tuple[str, ...] = ("raw",)

PIXEL_MM = 0.175
MAX_VALUE = 4095
#: The drawn diameters: JSRT's own, about 15 mm on average, inside its real 5-40 mm (NIH's
#: Nodule boxes run larger).
DRAWN_NODULE_MM = (7.0, 21.5)
#: Real class mix: 100 malignant + 54 benign nodules, 93 without nodule.
CLASS_WEIGHTS = {"malignant": 100, "benign": 54, "non-nodule": 93}
#: Real subtlety counts for groups 1..5 (sum 154).
SUBTLETY_WEIGHTS = (25, 29, 50, 38, 12)

MALIGNANT_DIAGNOSES = ("lung cancer", "lung cancer", "lung cancer", "metastasis")
BENIGN_DIAGNOSES = (
    "granuloma",
    "hamartoma",
    "tuberculoma",
    "inflammatory mass",
    "pulmonary hematoma",
    "cryptococcosis",
)
#: Segments per lobe, keyed by (patient side, lobe); the patient's right is the image's left.
SEGMENTS = {
    ("r", "upper"): ("S1", "S2", "S3"),
    ("r", "middle"): ("S4", "S5"),
    ("r", "lower"): ("S6", "S8", "S9", "S10"),
    ("l", "upper"): ("S1+2", "S3", "S4", "S5"),
    ("l", "lower"): ("S6", "S8", "S9", "S10"),
}
#: Key of the generator that draws the table-level choices (kept apart from image keys).
_TABLE_KEY = 0x15A7


@dataclass(frozen=True)
class Case:
    """One JSRT case: what the worker needs to render it and what the clinical file says."""

    name: str
    index: int
    seed: int
    label: str  # "malignant", "benign" or "non-nodule"
    age: int
    sex: str  # "male" / "female"
    subtlety: int = 0


@dataclass(frozen=True)
class Nodule:
    """Where the worker drew the nodule, in 2048-pixel coordinates."""

    x: int
    y: int
    size_mm: int


def generate(out: Path, n: int, size: int, seed: int, variant: str) -> None:
    """Write ``n`` JSRT cases (raw ``.IMG`` files and both clinical files) into ``out``."""
    cases = plan_cases(n, seed)
    images = out / "All247images"
    images.mkdir()
    jobs = [(case, images / case.name, size) for case in cases]
    nodules = parallel_map(_render_case, jobs, desc="jsrt")
    clinical = out / "Clinical_Information"
    clinical.mkdir()
    table_rng = rng_for(seed, _TABLE_KEY, 1)
    nodule_cases = [(c, m) for c, m in zip(cases, nodules, strict=True) if m is not None]
    plain_cases = [c for c in cases if c.label == "non-nodule"]
    (clinical / "CLNDAT_EN.txt").write_bytes(clndat_text(nodule_cases, table_rng).encode("latin-1"))
    (clinical / "CNNDAT_EN.TXT").write_bytes(cnndat_text(plain_cases, table_rng).encode("latin-1"))


def plan_cases(n: int, seed: int) -> list[Case]:
    """Decide the label, age, sex and subtlety of every case, deterministically for ``seed``."""
    rng = rng_for(seed, _TABLE_KEY, 0)
    counts = scaled_counts(n, CLASS_WEIGHTS, minimum=1 if n >= 3 else 0)
    n_nodule = counts["malignant"] + counts["benign"]
    kinds = np.array(["malignant"] * counts["malignant"] + ["benign"] * counts["benign"])
    kinds = rng.permutation(kinds)
    subtleties = rng.permutation(_subtlety_groups(n_nodule))
    cases = []
    for i in range(n_nodule):
        age, sex = _age_sex(rng, mean_age=60)
        name = f"JPCLN{i + 1:03d}.IMG"
        cases.append(Case(name, i, seed, str(kinds[i]), age, sex, int(subtleties[i])))
    for j in range(counts["non-nodule"]):
        age, sex = _age_sex(rng, mean_age=50)
        name = f"JPCNN{j + 1:03d}.IMG"
        cases.append(Case(name, n_nodule + j, seed, "non-nodule", age, sex))
    return cases


def _subtlety_groups(n_nodule: int) -> np.ndarray:
    """Subtlety grades 1..5 in the real proportions, one per nodule case."""
    weights = {str(g): w for g, w in enumerate(SUBTLETY_WEIGHTS, start=1)}
    counts = scaled_counts(n_nodule, weights, minimum=0)
    return np.repeat(np.arange(1, 6), [counts[str(g)] for g in range(1, 6)])


def _age_sex(rng: np.random.Generator, mean_age: float) -> tuple[int, str]:
    age = int(np.clip(round(rng.normal(mean_age, 13)), 16, 89))
    return age, str(rng.choice(["male", "female"]))


def _render_case(job: tuple[Case, Path, int]) -> Nodule | None:
    """Render one case and write its ``.IMG``; returns the nodule drawn, if any."""
    case, path, size = job
    rng = rng_for(case.seed, case.index)
    anatomy = sample_anatomy(rng, view="PA", age=case.age, sex=case.sex[0].upper())
    findings, nodule = [], None
    if case.label != "non-nodule":
        box = _nodule_box(finding_box("Nodule", anatomy, rng), rng.uniform(*DRAWN_NODULE_MM))
        findings.append(Finding("Nodule", box, case.label))
        nodule = _nodule_record(box)
    image = render_chest(anatomy, findings, size, rng)
    write_raw_img(path, film_density(image))
    return nodule


def _nodule_box(
    box: tuple[float, float, float, float], diameter_mm: float
) -> tuple[float, float, float, float]:
    """A square box of ``diameter_mm`` (to the whole mm) about ``box``'s centre."""
    x, y, w, h = box
    side = float(round(diameter_mm) / (JSRT_SIDE * PIXEL_MM))
    cx, cy = x + w / 2, y + h / 2
    return (cx - side / 2, cy - side / 2, side, side)


def _nodule_record(box: tuple[float, float, float, float]) -> Nodule:
    x, y, w, h = box
    centre_x = round((x + w / 2) * JSRT_SIDE)
    centre_y = round((y + h / 2) * JSRT_SIDE)
    return Nodule(int(centre_x), int(centre_y), round(w * JSRT_SIDE * PIXEL_MM))


def film_density(image: np.ndarray) -> np.ndarray:
    """A [0, 1] MONOCHROME2 render -> 2048x2048 12-bit values, lung high (inverted)."""
    side = (JSRT_SIDE, JSRT_SIDE)
    full = cv2.resize(image.astype(np.float32), side, interpolation=cv2.INTER_CUBIC)
    inverted = 1.0 - np.clip(full, 0.0, 1.0)
    return np.rint(inverted * MAX_VALUE).astype(np.uint16)


def write_raw_img(path: Path, values: np.ndarray) -> None:
    """Write 12-bit values as headerless big-endian 16-bit words."""
    path.write_bytes(values.astype(">u2").tobytes())


def clndat_text(cases: list[tuple[Case, Nodule]], rng: np.random.Generator) -> str:
    """``CLNDAT_EN.txt``: tab-separated records, CR endings, and two junk trailing entries."""
    if not cases:
        return "\r\r"
    unknown_age = int(rng.integers(len(cases)))
    split_row = int(rng.integers(len(cases)))
    lines = []
    for k, (case, nodule) in enumerate(cases):
        age = "?" if k == unknown_age else str(case.age)
        location = _location(nodule, rng, force_segment=k == 0)
        diagnosis = _diagnosis(case.label, rng, two_words=k == split_row)
        if k == split_row:
            diagnosis_fields = diagnosis.split(" ", 1)  # a two-word diagnosis spills over a tab
        elif rng.random() < 0.3:
            diagnosis_fields = ["", diagnosis]  # an empty extra tab field
        else:
            diagnosis_fields = [diagnosis]
        fields = [case.name, str(case.subtlety), str(nodule.size_mm), age, case.sex]
        fields += [str(nodule.x), str(nodule.y), case.label, location, *diagnosis_fields]
        lines.append("\t".join(fields))
    return "\r".join(lines) + "\r\t\r"


def _location(nodule: Nodule, rng: np.random.Generator, force_segment: bool) -> str:
    """Anatomic location like ``l.upper lobe(S1+2)``, from where the nodule sits."""
    side = "r" if nodule.x < JSRT_SIDE / 2 else "l"
    if nodule.y < 0.42 * JSRT_SIDE:
        lobe = "upper"
    elif side == "r" and nodule.y < 0.55 * JSRT_SIDE:
        lobe = "middle"
    else:
        lobe = "lower" if nodule.y >= 0.5 * JSRT_SIDE else "upper"
    location = f"{side}.{lobe} lobe"
    if force_segment or rng.random() < 0.6:
        location += f"({rng.choice(SEGMENTS[side, lobe])})"
    return location


def _diagnosis(label: str, rng: np.random.Generator, two_words: bool) -> str:
    choices = MALIGNANT_DIAGNOSES if label == "malignant" else BENIGN_DIAGNOSES
    if two_words:
        choices = tuple(d for d in choices if " " in d)
    return str(rng.choice(choices))


def cnndat_text(cases: list[Case], rng: np.random.Generator) -> str:
    """``CNNDAT_EN.TXT``: ``JPCNN010.IMG 54 male non-nodule`` with runs of spaces, CR endings."""
    lines = []
    for k, case in enumerate(cases):
        gaps = [" " * int(rng.integers(1, 3)) for _ in range(3)]
        if k == 0:
            gaps[1] = "  "  # at least one run of spaces, as between age and sex in the real file
        lines.append(f"{case.name}{gaps[0]}{case.age}{gaps[1]}{case.sex}{gaps[2]}non-nodule")
    return "".join(line + "\r" for line in lines)
