"""Synthetic miniature of NIH ChestX-ray14 in the real on-disk formats (datasets.md §1).

Variants: ``box`` (NIH Box download: flat ``images/``, ``Data_Entry_2017_v2020.csv``) and
``kaggle`` (``images_001/images/`` ..., legacy ``Data_Entry_2017.csv`` with a trailing comma on
every line and a few impossible ages such as 412). Both carry ``BBox_List_2017.csv`` and the
patient-disjoint ``train_val_list.txt`` / ``test_list.txt``.

Statistics (patients' image counts, No Finding share, labels per image, per-label prevalence,
view and sex mix, original sizes) follow the real v2020 CSV (§1.8), scaled down. Findings
persist across a patient's follow-ups, so patient-level splits matter here as in the real data.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cxr.data.images import write_gray_png, write_rgba_png
from cxr.ingest.nih import (
    BBOX_CSV,
    BBOX_HEADER,
    BOX_FINDINGS,
    BOX_SPACE,
    ENTRY_HEADER,
    LEGACY_CSV,
    NO_FINDING,
    V2020_CSV,
)
from cxr.synth import parallel_map, rng_for
from cxr.synth.chest import (
    NIH_FINDINGS,
    Anatomy,
    Finding,
    finding_box,
    render_chest,
    sample_anatomy,
    to_uint8,
)

DEFAULT_N = 1000
DEFAULT_SIZE = 1024
VARIANTS = ("box", "kaggle")

TRAIN_VAL_LIST = "train_val_list.txt"
TEST_LIST = "test_list.txt"

# --- real statistics of Data_Entry_2017_v2020.csv (datasets.md §1.8) -------------------------
ALL_IMAGES = 112_120
VIEW_IMAGES = {"PA": 67_310, "AP": 44_810}
NO_FINDING_BY_VIEW = {"PA": 39_302, "AP": 21_059}
#: Positive images per finding over all views.
LABEL_IMAGES = {
    "Infiltration": 19_894,
    "Effusion": 13_317,
    "Atelectasis": 11_559,
    "Nodule": 6_331,
    "Mass": 5_782,
    "Pneumothorax": 5_302,
    "Consolidation": 4_667,
    "Pleural_Thickening": 3_385,
    "Cardiomegaly": 2_776,
    "Emphysema": 2_516,
    "Edema": 2_303,
    "Fibrosis": 1_686,
    "Pneumonia": 1_431,
    "Hernia": 227,
}
#: The per-view split known for three findings: AP is enriched for Edema and Consolidation.
LABEL_IMAGES_BY_VIEW = {
    "AP": {"Edema": 2_027, "Consolidation": 3_146, "Fibrosis": 278},
    "PA": {"Edema": 276, "Consolidation": 1_521, "Fibrosis": 1_408},
}
#: Labels per image, among images with at least one finding.
LABELS_PER_IMAGE = {1: 30_963, 2: 14_306, 3: 4_856, 4: 1_247, 5: 301, 6: 67, 7: 16, 8: 1, 9: 2}
#: Images per patient: (lowest, highest, patients).
IMAGES_PER_PATIENT = (
    (1, 1, 17_503),
    (2, 2, 4_113),
    (3, 3, 2_100),
    (4, 4, 1_330),
    (5, 5, 938),
    (6, 10, 2_596),
    (11, 20, 1_422),
    (21, 50, 652),
    (51, 100, 133),
    (101, 200, 18),
)
MALE_SHARE = 63_340 / ALL_IMAGES
CHILD_SHARE = 5_402 / ALL_IMAGES  # ages 0-17


@dataclass(frozen=True)
class Detector:
    """A family of original acquisitions: its pixel spacing as each CSV version writes it."""

    spacing: float
    v2020_text: str  # v2020 was re-written with full float repr: 0.14300000000000002
    legacy_text: str


DETECTORS = {
    0.143: Detector(0.143, "0.14300000000000002", "0.143"),
    0.139: Detector(0.139, "0.139", "0.139"),
    0.168: Detector(0.168, "0.168", "0.168"),
    0.171: Detector(0.171, "0.171", "0.171"),
    0.194311: Detector(0.194311, "0.19431099999999998", "0.194311"),
}
#: The five commonest original sizes with their images and spacing(s); 22% are other sizes.
COMMON_ORIGINALS = (
    (2500, 2048, 37_153, (0.171, 0.168)),
    (2992, 2991, 21_961, (0.143,)),
    (3056, 2544, 15_340, (0.139,)),
    (2048, 2500, 8_683, (0.171, 0.168)),
    (2021, 2021, 4_411, (0.194311,)),
)
#: Other sizes are crops of the same detectors: (spacing, share, min side, max w, max h).
OTHER_ORIGINALS = (
    (0.143, 0.6, 1605, 2992, 2991),
    (0.139, 0.25, 2000, 3056, 3056),
    (0.194311, 0.15, 1700, 2021, 2021),
)

# --- miniature choices -------------------------------------------------------------------------
#: Share of patients with 2+ images whose file suffixes are not in chronological order
#: (like real patient 3: files _001.._007 then _000).
SHUFFLED_SUFFIX_SHARE = 0.2
#: Probability that a follow-up repeats the previous image's findings instead of a fresh draw.
FINDINGS_PERSIST = 0.5
#: A patient's images share one view with this probability; base view AP for 1/3 of patients
#: gives the real 40% AP images (1/3 * 0.8 + 2/3 * 0.2).
VIEW_PERSIST, AP_PATIENT_SHARE = 0.8, 1 / 3
#: Share of images with a box among those with a box label. The real file has 880 boxed images
#: of 112,120 (0.8%); 15% gives later CAM evaluation some material even in a miniature.
BOXED_SHARE = 0.15
EXTRA_BOX_PROBABILITY = 0.25  # each further box label of a boxed image (real: 93/880 have 2+)
#: RGBA files: 6 of 621 real files, all "_000" images of patients with ID < 6000 (first 19.5%).
RGBA_SHARE, RGBA_PATIENT_SHARE = 0.03, 6_000 / 30_805
#: Legacy CSV: a few impossible ages (the real maximum is in the 400s).
LEGACY_BAD_AGE_SHARE, LEGACY_BAD_AGE = 0.002, 412
#: Real test list: 25,596 of 112,120 images.
TEST_SHARE = 0.23
#: Real rows: 99.95% alphabetical label order; the rest e.g. "Mass|Atelectasis".
UNSORTED_LABELS_SHARE = 0.0005

# rng_for key namespaces, so that no two uses share a stream
_PLAN, _ANATOMY, _BOX, _RENDER = 0, 1, 2, 3


@dataclass
class ImagePlan:
    """Everything known about one synthetic image before it is rendered."""

    patient_id: int
    suffix: int
    follow_up: int  # chronological rank within the patient
    age: int
    sex: str
    view: str
    findings: list[str]
    original: tuple[int, int] = (0, 0)  # original acquisition width, height
    detector: Detector = DETECTORS[0.143]
    label_text: str = ""
    boxes: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    boxed: list[str] = field(default_factory=list)  # findings written to the bbox file
    legacy_age: int | None = None  # an impossible age written to the legacy CSV only
    rgba: bool = False
    path: str = ""

    @property
    def name(self) -> str:
        return f"{self.patient_id:08d}_{self.suffix:03d}.png"


@dataclass(frozen=True)
class RenderJob:
    """One image to render; carries its own seed so output is independent of worker count."""

    path: str
    seed: int
    index: int
    anatomy: Anatomy
    findings: tuple[Finding, ...]
    size: int
    rgba: bool


def generate(out: Path, n: int, size: int, seed: int, variant: str, first_patient: int = 1) -> None:
    """Write a miniature of ``n`` images of side ``size`` in the ``variant`` layout into ``out``;
    its patient ids start at ``first_patient``."""
    rng = rng_for(seed, _PLAN)
    plans = plan_images(rng, n)
    anatomies = [image_anatomy(seed, p) for p in plans]
    place_findings(seed, plans, anatomies)
    choose_boxed(rng, plans)
    choose_rgba(rng, plans)
    for plan in plans:
        plan.patient_id += first_patient - 1
    assign_paths(plans, variant)
    write_label_files(out, rng, plans, variant)
    jobs = [
        RenderJob(str(out / p.path), seed, i, anatomy, finding_list(p), size, p.rgba)
        for i, (p, anatomy) in enumerate(zip(plans, anatomies, strict=True))
    ]
    for folder in sorted({Path(j.path).parent for j in jobs}):
        folder.mkdir(parents=True, exist_ok=True)
    parallel_map(render_image, jobs, desc="nih: rendering")


# ----------------------------------------------------------------------------- patients, labels


def plan_images(rng: np.random.Generator, n: int) -> list[ImagePlan]:
    """Patients 1..P with their images in chronological order, labels included."""
    plans: list[ImagePlan] = []
    for pid, count in enumerate(patient_image_counts(rng, n), start=1):
        plans.extend(plan_patient(rng, pid, count))
    ensure_suffix_mismatch(rng, plans)
    ensure_mixed_views(rng, plans)
    ensure_label_coverage(rng, plans)
    for p in plans:
        p.label_text = label_text(rng, p.findings)
    scramble_one_label_order(rng, plans)
    return plans


def patient_image_counts(rng: np.random.Generator, n: int) -> list[int]:
    """Images per patient from the real histogram, summing to ``n``.

    The tail is capped at about n/15 so a miniature keeps many patients; patient 1 gets 3
    images (as in the real file) so some patient always has follow-ups.
    """
    cap = max(3, n // 15)
    counts = [min(n, 3)]
    buckets = np.array([c for _lo, _hi, c in IMAGES_PER_PATIENT], float)
    while sum(counts) < n:
        lo, hi, _ = IMAGES_PER_PATIENT[rng.choice(len(buckets), p=buckets / buckets.sum())]
        drawn = int(math.exp(rng.uniform(math.log(lo), math.log(hi + 1))))  # log-uniform
        counts.append(min(drawn, hi, cap, n - sum(counts)))
    return counts


def plan_patient(rng: np.random.Generator, pid: int, count: int) -> list[ImagePlan]:
    """One patient's images in chronological order (Follow-up # 0..count-1)."""
    sex = "M" if rng.random() < MALE_SHARE else "F"
    ages = follow_up_ages(rng, count)
    base_view = "AP" if rng.random() < AP_PATIENT_SHARE else "PA"
    suffixes = chronological_suffixes(rng, count)
    plans: list[ImagePlan] = []
    for rank in range(count):
        view = base_view if rng.random() < VIEW_PERSIST else {"AP": "PA", "PA": "AP"}[base_view]
        if plans and rng.random() < FINDINGS_PERSIST:
            findings = list(plans[-1].findings)
        else:
            findings = draw_findings(rng, view)
        plan = ImagePlan(pid, int(suffixes[rank]), rank, ages[rank], sex, view, findings)
        plan.original, plan.detector = draw_original(rng)
        plans.append(plan)
    return plans


def follow_up_ages(rng: np.random.Generator, count: int) -> list[int]:
    """Non-decreasing ages in years (real: mean 46.6, median 49, max 95, 4.8% under 18)."""
    if rng.random() < CHILD_SHARE:
        first = int(rng.integers(0, 18))
    else:
        first = int(np.clip(rng.normal(48.5, 16.5), 18, 95))
    span = int(rng.integers(0, min(8, count) + 1)) if count > 1 else 0
    steps = np.sort(rng.integers(0, span + 1, count))
    return [min(95, first + int(s)) for s in steps]


def chronological_suffixes(rng: np.random.Generator, count: int) -> np.ndarray:
    """File suffixes in chronological order: 0..count-1, or for some patients out of order."""
    order = np.arange(count)
    if count > 1 and rng.random() < SHUFFLED_SUFFIX_SHARE:
        shuffle_suffixes(rng, order)
    return order


def shuffle_suffixes(rng: np.random.Generator, order: np.ndarray) -> None:
    """Put ``order`` out of sequence in place: one file moved to the end, or two swapped."""
    if rng.random() < 0.5:
        moved = int(rng.integers(0, len(order) - 1))
        order[:] = [*np.delete(order, moved), order[moved]]
    else:
        i, j = rng.choice(len(order), size=2, replace=False)
        order[[i, j]] = order[[j, i]]


def draw_findings(rng: np.random.Generator, view: str) -> list[str]:
    """A fresh label set for one image of ``view``: empty for No Finding."""
    if rng.random() < NO_FINDING_BY_VIEW[view] / VIEW_IMAGES[view]:
        return []
    counts = np.array(list(LABELS_PER_IMAGE.values()), float)
    k = min(list(LABELS_PER_IMAGE)[rng.choice(len(counts), p=counts / counts.sum())], 14)
    weights = np.array([finding_rate(name, view) for name in NIH_FINDINGS])
    picked = rng.choice(len(NIH_FINDINGS), size=k, replace=False, p=weights / weights.sum())
    return sorted(NIH_FINDINGS[i] for i in picked)


def finding_rate(name: str, view: str) -> float:
    """Share of images of ``view`` positive for ``name`` (view-specific where known)."""
    if name in LABEL_IMAGES_BY_VIEW[view]:
        return LABEL_IMAGES_BY_VIEW[view][name] / VIEW_IMAGES[view]
    return LABEL_IMAGES[name] / ALL_IMAGES


def draw_original(rng: np.random.Generator) -> tuple[tuple[int, int], Detector]:
    """Original acquisition size and detector: one of the five common ones, or a crop."""
    common = sum(c for _w, _h, c, _s in COMMON_ORIGINALS)
    if rng.random() < common / ALL_IMAGES:
        weights = np.array([c for _w, _h, c, _s in COMMON_ORIGINALS], float)
        w, h, _c, spacings = COMMON_ORIGINALS[rng.choice(len(weights), p=weights / common)]
        return (w, h), DETECTORS[spacings[int(rng.integers(len(spacings)))]]
    shares = np.array([s for _sp, s, *_ in OTHER_ORIGINALS])
    spacing, _s, low, max_w, max_h = OTHER_ORIGINALS[rng.choice(len(shares), p=shares)]
    size = (int(rng.integers(low, max_w + 1)), int(rng.integers(low, max_h + 1)))
    return size, DETECTORS[spacing]


def ensure_label_coverage(rng: np.random.Generator, plans: list[ImagePlan]) -> None:
    """Guarantees the proportions alone would not give a miniature.

    Deviation from the real statistics: when n >= 200 every finding gets at least 2 positive
    images (Hernia, 0.2% of real images, would otherwise often vanish), taken from No Finding
    images. Any n >= 2 has a No Finding image and an image with two box findings
    (Effusion|Infiltration, the commonest real pair) so a 2-box image can exist.
    """
    if len(plans) >= 200:
        for name in NIH_FINDINGS:
            missing = 2 - sum(name in p.findings for p in plans)
            for p in pick(rng, [p for p in plans if not p.findings], missing):
                p.findings = [name]
    if len(plans) < 2:
        return
    if all(p.findings for p in plans):
        pick(rng, plans, 1)[0].findings = []
    if not any(len(box_findings(p)) >= 2 for p in plans):
        target = pick(rng, [p for p in plans if p.findings] or plans, 1)[0]
        target.findings = sorted({*target.findings, "Effusion", "Infiltration"})


def patients_of(plans: list[ImagePlan]) -> dict[int, list[ImagePlan]]:
    """Each patient's images in chronological order."""
    out: dict[int, list[ImagePlan]] = {}
    for p in plans:
        out.setdefault(p.patient_id, []).append(p)
    return out


def ensure_suffix_mismatch(rng: np.random.Generator, plans: list[ImagePlan]) -> None:
    """Make sure one patient's file suffixes are out of chronological order (spec §1.11)."""
    patients = [ps for ps in patients_of(plans).values() if len(ps) > 1]
    if patients and all(p.suffix == p.follow_up for p in plans):
        images = pick(rng, patients, 1)[0]
        order = np.array([p.suffix for p in images])
        shuffle_suffixes(rng, order)
        for p, suffix in zip(images, order, strict=True):
            p.suffix = int(suffix)


def ensure_mixed_views(rng: np.random.Generator, plans: list[ImagePlan]) -> None:
    """Make sure one patient has both PA and AP images (spec §1.11)."""
    patients = [ps for ps in patients_of(plans).values() if len(ps) > 1]
    if patients and not any(len({p.view for p in ps}) == 2 for ps in patients):
        last = pick(rng, patients, 1)[0][-1]
        last.view = {"AP": "PA", "PA": "AP"}[last.view]


def pick(rng: np.random.Generator, items: list, k: int) -> list:
    """Up to ``k`` distinct random items."""
    if k <= 0 or not items:
        return []
    return [items[i] for i in rng.choice(len(items), size=min(k, len(items)), replace=False)]


def label_text(rng: np.random.Generator, findings: list[str]) -> str:
    """``Finding Labels``: |-joined, alphabetical in 99.95% of rows; ``No Finding`` if none."""
    if not findings:
        return NO_FINDING
    if len(findings) > 1 and rng.random() < UNSORTED_LABELS_SHARE:
        return "|".join(unsorted(rng, findings))
    return "|".join(sorted(findings))


def unsorted(rng: np.random.Generator, findings: list[str]) -> list[str]:
    """The findings in a non-alphabetical order."""
    order = sorted(findings)
    return [*order[1:], order[0]] if rng.random() < 0.5 else order[::-1]


def scramble_one_label_order(rng: np.random.Generator, plans: list[ImagePlan]) -> None:
    """Make sure one multi-label row (3 labels where there is one) is not alphabetical."""
    multi = [p for p in plans if len(p.findings) > 2] or [p for p in plans if len(p.findings) > 1]
    if multi and all(p.label_text == "|".join(sorted(p.findings)) for p in multi):
        target = pick(rng, multi, 1)[0]
        target.label_text = "|".join(unsorted(rng, target.findings))


# ----------------------------------------------------------------------------- geometry, boxes


def image_anatomy(seed: int, plan: ImagePlan) -> Anatomy:
    """The patient's anatomy in this view (same draw for every image of the patient and view)."""
    rng = rng_for(seed, _ANATOMY, plan.patient_id, int(plan.view == "AP"))
    return sample_anatomy(rng, plan.view, plan.age, plan.sex)


def place_findings(seed: int, plans: list[ImagePlan], anatomies: list[Anatomy]) -> None:
    """A box (fractions, inside the image) per finding; a persisting finding stays in place."""
    for plan, anatomy in zip(plans, anatomies, strict=True):
        for name in plan.findings:
            key = (plan.patient_id, int(plan.view == "AP"), NIH_FINDINGS.index(name))
            plan.boxes[name] = clip_box(finding_box(name, anatomy, rng_for(seed, _BOX, *key)))


def clip_box(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """The part of a fractional (x, y, w, h) box that lies inside the unit square."""
    x, y, w, h = (float(v) for v in box)
    x0, y0 = min(max(x, 0.0), 0.99), min(max(y, 0.0), 0.99)
    x1, y1 = min(max(x + w, x0 + 0.01), 1.0), min(max(y + h, y0 + 0.01), 1.0)
    return (x0, y0, x1 - x0, y1 - y0)


def box_findings(plan: ImagePlan) -> list[str]:
    """The image's findings that the bbox file can hold."""
    return [f for f in plan.findings if f in BOX_FINDINGS]


def choose_boxed(rng: np.random.Generator, plans: list[ImagePlan]) -> None:
    """Pick the findings written to the bbox file: at most one box per label per image.

    The first image with 2+ box findings (preferring one with Infiltration, so an
    ``Infiltrate`` row exists) gets a box for each of them.
    """
    for plan in plans:
        candidates = box_findings(plan)
        if candidates and rng.random() < BOXED_SHARE:
            first, *others = pick(rng, candidates, len(candidates))
            plan.boxed = [first, *(f for f in others if rng.random() < EXTRA_BOX_PROBABILITY)]
    multi = [p for p in plans if len(box_findings(p)) >= 2]
    if multi and not any(len(p.boxed) >= 2 for p in plans):
        target = next((p for p in multi if "Infiltration" in p.findings), multi[0])
        target.boxed = box_findings(target)


def choose_rgba(rng: np.random.Generator, plans: list[ImagePlan]) -> None:
    """Mark ~3% of images (at least one) as RGBA, preferring "_000" files of low patient IDs."""
    low_ids = max(1, round(RGBA_PATIENT_SHARE * plans[-1].patient_id))
    preferred = [p for p in plans if p.suffix == 0 and p.patient_id <= low_ids]
    others = [p for p in plans if not (p.suffix == 0 and p.patient_id <= low_ids)]
    want = max(1, round(RGBA_SHARE * len(plans)))
    chosen = pick(rng, preferred, want)
    for p in chosen + pick(rng, others, want - len(chosen)):
        p.rgba = True


def finding_list(plan: ImagePlan) -> tuple[Finding, ...]:
    """The findings to draw, each at its box (nodules get a benign or malignant look)."""
    return tuple(
        Finding(name, plan.boxes[name], nodule_variant(plan) if name == "Nodule" else "")
        for name in plan.findings
    )


def nodule_variant(plan: ImagePlan) -> str:
    """NIH does not grade nodules; alternate by patient so both looks occur."""
    return "malignant" if plan.patient_id % 2 else "benign"


# ----------------------------------------------------------------------------- layout, files


def assign_paths(plans: list[ImagePlan], variant: str) -> None:
    """Relative image paths: flat ``images/`` or Kaggle's ``images_NNN/images/`` runs."""
    names = sorted(p.name for p in plans)
    folder_of = dict.fromkeys(names, "images")
    if variant == "kaggle":
        for number, chunk in enumerate(kaggle_chunks(names), start=1):
            folder_of.update(dict.fromkeys(chunk, f"images_{number:03d}/images"))
    for p in plans:
        p.path = f"{folder_of[p.name]}/{p.name}"


def kaggle_chunks(names: list[str]) -> list[list[str]]:
    """Contiguous runs of sorted names; the first about half the others (real 4,999 / 10,000)."""
    n = len(names)
    folders = min(12, max(2, math.ceil(n / 100)))
    per = math.ceil(n / (folders - 0.5))
    bounds = [0, max(1, per // 2)]
    while bounds[-1] < n:
        bounds.append(min(n, bounds[-1] + per))
    return [names[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def write_label_files(
    out: Path, rng: np.random.Generator, plans: list[ImagePlan], variant: str
) -> None:
    """Entry CSV of the variant, bbox CSV and the two split lists."""
    train_val, test = split_lists(rng, plans)
    if variant == "kaggle":
        mark_legacy_ages(rng, plans)
        write_lines(out / LEGACY_CSV, [ENTRY_HEADER + ",", *legacy_rows(plans)], final_lf=True)
    else:
        write_lines(out / V2020_CSV, [ENTRY_HEADER, *v2020_rows(plans)], final_lf=True)
    write_lines(out / BBOX_CSV, [BBOX_HEADER, *bbox_rows(plans)], final_lf=True)
    write_lines(out / TRAIN_VAL_LIST, train_val, final_lf=False)
    write_lines(out / TEST_LIST, test, final_lf=False)


def write_lines(path: Path, lines: list[str], final_lf: bool) -> None:
    """ASCII, LF line endings, no quoting."""
    path.write_bytes(("\n".join(lines) + ("\n" if final_lf and lines else "")).encode("ascii"))


def entry_fields(p: ImagePlan, follow_up: int, age: int, spacing: str) -> str:
    return (
        f"{p.name},{p.label_text},{follow_up},{p.patient_id},{age},{p.sex},{p.view},"
        f"{p.original[0]},{p.original[1]},{spacing},{spacing}"
    )


def v2020_rows(plans: list[ImagePlan]) -> list[str]:
    """Grouped by patient in chronological order; Follow-up # is the chronological rank."""
    return [entry_fields(p, p.follow_up, p.age, p.detector.v2020_text) for p in plans]


def legacy_rows(plans: list[ImagePlan]) -> list[str]:
    """Sorted by Image Index; Follow-up # is the file suffix (§1.4); trailing comma."""
    ordered = sorted(plans, key=lambda p: p.name)
    return [
        entry_fields(
            p, p.suffix, p.age if p.legacy_age is None else p.legacy_age, p.detector.legacy_text
        )
        + ","
        for p in ordered
    ]


def mark_legacy_ages(rng: np.random.Generator, plans: list[ImagePlan]) -> None:
    """A few legacy rows carry ages > 100 (corrected in v2020); the first one says 412."""
    count = max(1, round(LEGACY_BAD_AGE_SHARE * len(plans)))
    for i, p in enumerate(pick(rng, plans, count)):
        p.legacy_age = LEGACY_BAD_AGE if i == 0 else int(rng.integers(101, 415))


def bbox_rows(plans: list[ImagePlan]) -> list[str]:
    """6-field rows grouped by box label as in the real file; floats in 1024 x 1024 space."""
    rows = []
    for label in BOX_FINDINGS:
        for p in plans:
            if label in p.boxed:
                coords = ",".join(f"{v * BOX_SPACE:.15g}" for v in p.boxes[label])
                rows.append(f"{p.name},{bbox_label(label)},{coords}")
    return rows


def bbox_label(finding: str) -> str:
    """The bbox file's spelling of a finding ("Infiltrate" for Infiltration)."""
    return "Infiltrate" if finding == "Infiltration" else finding


def split_lists(rng: np.random.Generator, plans: list[ImagePlan]) -> tuple[list[str], list[str]]:
    """Patient-disjoint train_val / test name lists, about 77/23 by images, sorted."""
    by_patient = patients_of(plans)
    patients = list(by_patient)
    test: list[str] = []
    for pid in rng.permutation(patients)[: max(0, len(patients) - 1)]:
        if len(test) >= TEST_SHARE * len(plans):
            break
        test.extend(p.name for p in by_patient[int(pid)])
    test_set = set(test)
    train_val = [p.name for p in plans if p.name not in test_set]
    return sorted(train_val), sorted(test)


def render_image(job: RenderJob) -> None:
    """Render and write one image (module level, so worker processes can run it)."""
    rng = rng_for(job.seed, _RENDER, job.index)
    img = to_uint8(render_chest(job.anatomy, list(job.findings), job.size, rng))
    (write_rgba_png if job.rgba else write_gray_png)(job.path, img)
