"""Phantom chest radiographs with findings drawn where their labels and boxes say.

CONTRACT (other modules depend on exactly these names and signatures):

- ``NIH_FINDINGS``: the 14 ChestX-ray14 findings, alphabetical.
- ``EXTRA_PATTERNS``: ``("COVID", "Viral Pneumonia", "Lung_Opacity")``.
- ``Finding(name, box, variant="")``: ``box`` = (x, y, w, h) as fractions of the image side,
  origin top-left; ``variant`` is "malignant" or "benign" for a nodule, "" otherwise.
- ``sample_anatomy(rng, view="PA", age=None, sex=None) -> Anatomy``
- ``finding_box(name, anatomy, rng) -> (x, y, w, h)``: where a finding of that name sits in
  this patient's chest (fractions), to be passed back in ``Finding.box``.
- ``render_chest(anatomy, findings, size, rng) -> float32 (size, size)`` in [0, 1], MONOCHROME2
  polarity (air dark, bone bright).
- ``lung_mask(anatomy, size) -> bool (size, size)``.
- ``to_uint8(img) -> uint8``.

How the phantom works:

- Geometry is defined in a "canonical" upright frame (fractions of the image side) from the
  ``Anatomy`` parameters, then rotated by ``Anatomy.rotation`` about the midline. Outlines are
  filled with cv2 at a working resolution of ``min(size, 512)``.
- The image is a sum of attenuation layers (soft tissue thickness, lung lucency, bones, vessels,
  airways); a finding edits these layers only inside the pixels of its box, so the box is the
  ground truth. Cardiomegaly and Emphysema also change the geometry (heart width, diaphragm),
  and their boxes enclose the changed shapes.
- ``render_chest`` draws two seeds from ``rng`` up front (noise, findings), always the same
  number, so one anatomy rendered with and without a finding differs only around the finding.
  Each finding gets its own stream; its severity (density, width) is drawn from it, while its
  extent comes from the box that ``finding_box`` drew.
- Boxes come from the normal anatomy. A Cardiomegaly box fixes the enlarged heart's width (the
  renderer scales the heart to fill it). Emphysema lowers the diaphragm by a fixed amount; other
  findings of the same image stay inside their boxes, which then sit a little higher in the lung.
- ``lung_mask`` is the normal anatomy's lung fields (heart excluded); findings do not change it.
- Every pattern survives an area resize to 64 px (textures have meshes of about 2 px or more
  there, bands are about a pixel wide or more), with graded difficulty: large opacities and
  Cardiomegaly are easy, Nodule is hard. ``benchmarks/phantom_probe.py`` measures it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from cxr.core.datasets import NIH_FINDINGS

EXTRA_PATTERNS: tuple[str, ...] = ("COVID", "Viral Pneumonia", "Lung_Opacity")
NODULE_VARIANTS: tuple[str, ...] = ("malignant", "benign")

Box = tuple[float, float, float, float]

_WORK_MAX = 512  # internal working resolution cap
_SHIFT = 4  # fixed-point bits for sub-pixel cv2 drawing
_PIVOT_Y = 0.45  # rotation pivot (image fraction) on the midline
_LUNG_DROP = 0.42  # attenuation removed by fully aerated lung
_FIBROSIS_MESH = 0.035  # reticular mesh size (image fractions): ~2 px at 64 px


@dataclass(frozen=True)
class Finding:
    """One finding: its name, its box (x, y, w, h fractions) and, for a nodule, its variant."""

    name: str
    box: Box
    variant: str = ""

    def __post_init__(self) -> None:
        if self.name not in NIH_FINDINGS + EXTRA_PATTERNS:
            raise ValueError(f"unknown finding {self.name!r}")
        allowed = ("", *NODULE_VARIANTS) if self.name == "Nodule" else ("",)
        if self.variant not in allowed:
            raise ValueError(f"{self.name}: variant must be one of {allowed}, got {self.variant!r}")
        if len(self.box) != 4:
            raise ValueError(f"box must be (x, y, w, h), got {self.box!r}")


@dataclass(frozen=True)
class Anatomy:
    """One patient's chest: geometry in image fractions, plus acquisition settings."""

    view: str  # "PA" or "AP"
    age: float
    sex: str  # "M" or "F"
    cx: float  # midline x
    top: float  # lung apex y
    base: float  # right hemidiaphragm dome y (the left dome sits slightly lower)
    half_w: float  # midline to lateral lung wall
    dome: float  # depth of the costophrenic angles below the domes
    rib_gap: float  # vertical spacing of ribs and vertebrae
    heart_w: float  # transverse cardiac diameter
    heart_h: float
    heart_tilt: float  # degrees, apex down towards image right
    med_w: float  # half width of the upper mediastinum
    rotation: float  # degrees, about the midline
    body_margin: float  # soft tissue lateral to the ribs
    breast: float  # 0 for none
    brightness: float
    contrast: float
    gamma: float
    noise: float  # std of the final quantum noise
    blur: float  # Gaussian blur sigma in pixels at 256 px
    seed: int  # patient-specific texture (vessel tree)

    @property
    def ctr(self) -> float:
        """Cardiothoracic ratio of the normal heart."""
        return self.heart_w / (2 * self.half_w)


# --------------------------------------------------------------------------- anatomy sampling


def sample_anatomy(
    rng: np.random.Generator, view: str = "PA", age: float | None = None, sex: str | None = None
) -> Anatomy:
    """Draw a patient: size, shape, heart, pose and exposure vary; AP films are bedside-like."""
    if view not in ("PA", "AP"):
        raise ValueError(f"view must be 'PA' or 'AP', got {view!r}")
    ap = view == "AP"
    age = float(rng.uniform(30, 90) if ap else rng.uniform(18, 85)) if age is None else float(age)
    sex = str(rng.choice(["M", "F"])) if sex is None else sex.upper()[:1]
    child = min(max(age, 0.0), 18.0) / 18.0
    scale = (0.80 + 0.20 * child) * (0.97 if sex == "F" else 1.0) * _clipped(rng, 1, 0.04, 0.1)
    half_w = 0.33 * scale
    height = 0.50 * scale * _clipped(rng, 1, 0.05, 0.12) * (0.93 if ap else 1.0)
    top = 0.17 + (1 - scale) * 0.3 + _clipped(rng, 0, 0.015, 0.035)
    ctr = rng.uniform(0.38, 0.5) + 0.04 * (1 - child)
    heart_w = 2 * half_w * ctr * (1.12 if ap else 1.0)
    return Anatomy(
        view=view,
        age=age,
        sex=sex,
        cx=0.5 + _clipped(rng, 0, 0.015, 0.035),
        top=top,
        base=top + height,
        half_w=half_w,
        dome=float(rng.uniform(0.04, 0.07)),
        rib_gap=height / 8.6,
        heart_w=heart_w,
        heart_h=heart_w * float(rng.uniform(0.62, 0.75)),
        heart_tilt=float(rng.uniform(15, 30)),
        med_w=float(rng.uniform(0.04, 0.052)) * scale,
        rotation=_clipped(rng, 0, 1.5, 4.0),
        body_margin=float(rng.uniform(0.05, 0.1)),
        breast=float(rng.uniform(0.3, 1.0)) if sex == "F" and age >= 16 else 0.0,
        brightness=_clipped(rng, 0, 0.03, 0.08),
        contrast=float(rng.uniform(0.7, 0.9) if ap else rng.uniform(0.9, 1.15)),
        gamma=float(rng.uniform(0.8, 1.25)),
        noise=float(rng.uniform(0.02, 0.04) if ap else rng.uniform(0.008, 0.02)),
        blur=float(rng.uniform(0.6, 1.4) if ap else rng.uniform(0.3, 1.0)),
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def _clipped(rng: np.random.Generator, mean: float, std: float, limit: float) -> float:
    return float(mean + np.clip(rng.normal(0, std), -limit, limit))


# --------------------------------------------------------------------------- canonical geometry


def _dome_y(a: Anatomy, side: int) -> float:
    """Height of the hemidiaphragm dome; side -1 = image left (patient right)."""
    return a.base + (0.018 if side > 0 else 0.0)


def _cp_y(a: Anatomy, side: int) -> float:
    return _dome_y(a, side) + a.dome


def _lat_d(a: Anatomy, t: np.ndarray | float) -> np.ndarray:
    """Midline distance of the lateral lung wall at height fraction t (0 apex, 1 CP angle)."""
    d_apex = 0.4 * a.half_w
    return d_apex + (a.half_w - d_apex) * (1 - (1 - np.asarray(t)) ** 3) ** 0.8


def _hilum(a: Anatomy, side: int) -> tuple[float, float]:
    return a.cx + side * (a.med_w + 0.04), a.top + 0.42 * (a.base - a.top)


def _lung_outline(a: Anatomy, side: int, k: int = 28) -> np.ndarray:
    """Canonical polygon (x, y) of one lung field including the part behind the heart."""
    cp, dome = _cp_y(a, side), _dome_y(a, side)
    t = np.linspace(0, 1, k)
    lateral = np.stack([_lat_d(a, t), a.top + t * (cp - a.top)], 1)
    d_card = a.med_w + 0.012
    d_peak = 0.55 * a.half_w
    dd = np.linspace(a.half_w, d_card, k)[1:]
    outer = a.dome * ((dd - d_peak) / (a.half_w - d_peak)) ** 2
    inner = 0.35 * a.dome * ((d_peak - dd) / (d_peak - d_card)) ** 2
    diaphragm = np.stack([dd, dome + np.where(dd > d_peak, outer, inner)], 1)
    apex_y = a.top + 0.1 * (a.base - a.top)
    my = np.linspace(diaphragm[-1, 1], apex_y, k // 2)[1:]
    medial = np.stack([a.med_w + 0.012 * (my - apex_y) / (a.base - a.top), my], 1)
    s = np.linspace(0, 1, k // 2)[1:-1]
    d_apex = float(_lat_d(a, 0.0))
    cap = np.stack(
        [a.med_w + (d_apex - a.med_w) * np.sin(s * np.pi / 2), apex_y - (apex_y - a.top) * s**0.6],
        1,
    )
    pts = np.concatenate([lateral, diaphragm, medial, cap])
    return np.stack([a.cx + side * pts[:, 0], pts[:, 1]], 1)


def _heart_ellipse(a: Anatomy, k: float = 1.0) -> tuple[float, float, float, float, float]:
    """Heart as (cx, cy, semi-axis a, semi-axis b, tilt deg); k scales its width."""
    tilt = math.radians(a.heart_tilt)
    half_b = a.heart_h / 2 * (1 + 0.3 * (k - 1))
    ex = k * a.heart_w / 2
    half_a = math.sqrt(max(ex**2 - (half_b * math.sin(tilt)) ** 2, 1e-6)) / math.cos(tilt)
    ey = math.sqrt((half_a * math.sin(tilt)) ** 2 + (half_b * math.cos(tilt)) ** 2)
    hx = a.cx - (a.med_w + 0.03) + a.heart_w / 2 + 0.25 * (k - 1) * a.heart_w / 2
    hy = a.base + 0.025 - 0.6 * ey
    return hx, hy, half_a, half_b, a.heart_tilt


def _ellipse_pts(cx: float, cy: float, ha: float, hb: float, deg: float, k: int = 48) -> np.ndarray:
    s = np.linspace(0, 2 * np.pi, k, endpoint=False)
    c, n = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    x, y = ha * np.cos(s), hb * np.sin(s)
    return np.stack([cx + c * x - n * y, cy + n * x + c * y], 1)


def _heart_outline(a: Anatomy, k: float = 1.0) -> np.ndarray:
    return _ellipse_pts(*_heart_ellipse(a, k))


def _aortic_knob(a: Anatomy) -> np.ndarray:
    r = 0.024 * a.half_w / 0.33
    return _ellipse_pts(a.cx + a.med_w + 0.006, a.top + 0.11 * (a.base - a.top) + 0.04, r, r, 0)


def _body_outline(a: Anatomy) -> np.ndarray:
    """Canonical polygon of the body (neck, shoulders, trunk)."""
    w = a.half_w + a.body_margin
    one = np.array(
        [
            (0.075, -0.05),
            (0.085, a.top - 0.09),
            (0.55 * a.half_w, a.top - 0.075),
            (w + 0.05, a.top - 0.045),
            (w + 0.065, a.top + 0.05),
            (w + 0.01, a.top + 0.22),
            (w, a.base),
            (w + 0.02, 1.05),
        ]
    )
    right = one[::-1] * (-1, 1)
    pts = np.concatenate([right, one])
    return pts + (a.cx, 0)


def _place(a: Anatomy, pts: np.ndarray) -> np.ndarray:
    """Canonical -> image fractions: rotate by ``a.rotation`` about the midline pivot."""
    th = math.radians(a.rotation)
    c, s = math.cos(th), math.sin(th)
    dx, dy = pts[..., 0] - a.cx, pts[..., 1] - _PIVOT_Y
    return np.stack([a.cx + c * dx - s * dy, _PIVOT_Y + s * dx + c * dy], -1)


def _px(pts: np.ndarray, n: int) -> np.ndarray:
    """Image fractions -> fixed-point pixel coordinates for cv2 (pixel centres at i + 0.5)."""
    return np.round((pts * n - 0.5) * (1 << _SHIFT)).astype(np.int32)


def _fill(canvas: np.ndarray, pts: np.ndarray, value: float) -> None:
    cv2.fillPoly(canvas, [_px(pts, canvas.shape[0])], value, cv2.LINE_8, _SHIFT)


# --------------------------------------------------------------------------- boxes


def _bbox(pts: np.ndarray, margin: float = 0.0) -> Box:
    """Axis-aligned box of image-fraction points, clipped to the unit square."""
    x0, y0 = np.clip(pts.min(0) - margin, 0.0, 1.0)
    x1, y1 = np.clip(pts.max(0) + margin, 0.0, 1.0)
    x0, y0 = min(x0, 1 - 1e-3), min(y0, 1 - 1e-3)
    x1, y1 = max(x1, x0 + 1e-3), max(y1, y0 + 1e-3)
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def _box_around(a: Anatomy, cx: float, cy: float, w: float, h: float) -> Box:
    """Box of size (w, h) centred on the placed canonical point, shifted to fit in [0, 1]."""
    px, py = _place(a, np.array([cx, cy]))
    x0 = float(np.clip(px - w / 2, 0, 1 - w))
    y0 = float(np.clip(py - h / 2, 0, 1 - h))
    return (x0, y0, w, h)


def _canon_rect(a: Anatomy, x0: float, y0: float, x1: float, y1: float) -> Box:
    corners = np.array([(x0, y0), (x1, y0), (x0, y1), (x1, y1)])
    return _bbox(_place(a, corners))


def _in_lung(a: Anatomy, side: int, x: float, y: float) -> bool:
    p = (float(x), float(y))
    in_lung = cv2.pointPolygonTest(_lung_outline(a, side).astype(np.float32), p, False) > 0
    in_heart = cv2.pointPolygonTest(_heart_outline(a).astype(np.float32), p, False) >= 0
    return in_lung and not in_heart


def _lung_point(
    a: Anatomy,
    side: int,
    rng: np.random.Generator,
    t_range: tuple[float, float],
    l_range: tuple[float, float],
) -> tuple[float, float]:
    """Canonical point in a lung zone: t = apex(0)..CP angle(1), l = medial(0)..lateral(1)."""
    for _ in range(40):
        t, lat = rng.uniform(*t_range), rng.uniform(*l_range)
        y = a.top + t * (_cp_y(a, side) - a.top)
        d = a.med_w + lat * (float(_lat_d(a, t)) - a.med_w)
        x = a.cx + side * d
        if _in_lung(a, side, x, y):
            return x, y
    return a.cx + side * 0.6 * a.half_w, a.top + 0.45 * (a.base - a.top)


def _emphysema_anatomy(a: Anatomy) -> Anatomy:
    """Hyperinflated chest: a lower, flatter diaphragm."""
    return replace(a, base=a.base + 0.045, dome=a.dome * 0.45)


def _side(rng: np.random.Generator) -> int:
    return int(rng.choice([-1, 1]))


def finding_box(name: str, anatomy: Anatomy, rng: np.random.Generator) -> Box:
    """Where a finding named ``name`` sits in this patient's chest, as (x, y, w, h) fractions."""
    if name not in _BOXERS:
        raise ValueError(f"unknown finding {name!r}")
    x, y, w, h = _BOXERS[name](anatomy, rng)
    x, y = min(max(x, 0.0), 1.0 - w), min(max(y, 0.0), 1.0 - h)
    return (float(x), float(y), float(w), float(h))


def _box_nodule(a: Anatomy, rng: np.random.Generator) -> Box:
    side = _side(rng)
    x, y = _lung_point(a, side, rng, (0.15, 0.85), (0.15, 0.9))
    # box side 46-102 px of 1024, as the real Nodule boxes (47-102 px in the shared NIH
    # sample); 20-61 px drew nodules smaller than any of them
    s = float(rng.uniform(0.045, 0.1))
    return _box_around(a, x, y, s, s)


def _box_mass(a: Anatomy, rng: np.random.Generator) -> Box:
    side = _side(rng)
    x, y = _lung_point(a, side, rng, (0.2, 0.75), (0.3, 0.75))
    s = float(rng.uniform(0.08, 0.18))
    return _box_around(a, x, y, s * rng.uniform(0.9, 1.1), s * rng.uniform(0.9, 1.1))


def _box_effusion(a: Anatomy, rng: np.random.Generator) -> Box:
    side = _side(rng)
    cp = _cp_y(a, side)
    w, h = a.half_w * rng.uniform(0.45, 0.8), rng.uniform(0.08, 0.22)
    x_lat, x_med = a.cx + side * (a.half_w + 0.01), a.cx + side * (a.half_w - w)
    return _canon_rect(a, min(x_lat, x_med), cp - h, max(x_lat, x_med), cp + 0.012)


def _heart_box(a: Anatomy, k: float) -> Box:
    pts = _place(a, _heart_outline(a, k))
    pts[:, 1] = np.minimum(pts[:, 1], a.base + 0.03)
    return _bbox(pts, 0.004)


def _box_cardiomegaly(a: Anatomy, rng: np.random.Generator) -> Box:
    target_ctr = rng.uniform(0.5, 0.63)
    k = max(target_ctr / a.ctr, 1.06)
    return _heart_box(a, k)


def _box_pneumothorax(a: Anatomy, rng: np.random.Generator) -> Box:
    side = _side(rng)
    h = (_cp_y(a, side) - a.top) * rng.uniform(0.35, 0.75)
    x_lat, x_med = a.cx + side * (a.half_w + 0.012), a.cx + side * 0.7 * float(_lat_d(a, 0))
    return _canon_rect(a, min(x_lat, x_med), a.top - 0.012, max(x_lat, x_med), a.top + h)


def _box_atelectasis(a: Anatomy, rng: np.random.Generator) -> Box:
    side = _side(rng)
    if rng.random() < 0.5:  # basal: plate-like band plus raised hemidiaphragm
        w, h = rng.uniform(0.12, 0.2), rng.uniform(0.07, 0.12)
        xc = a.cx + side * a.half_w * rng.uniform(0.55, 0.7)
        return _canon_rect(a, xc - w / 2, _dome_y(a, side) - h, xc + w / 2, _dome_y(a, side) + 0.03)
    x, y = _lung_point(a, side, rng, (0.45, 0.75), (0.3, 0.7))
    return _box_around(a, x, y, rng.uniform(0.1, 0.18), rng.uniform(0.05, 0.1))


def _box_lobar(t_range: tuple[float, float], size: tuple[float, float]) -> Callable:
    def boxer(a: Anatomy, rng: np.random.Generator) -> Box:
        x, y = _lung_point(a, _side(rng), rng, t_range, (0.35, 0.7))
        return _box_around(a, x, y, rng.uniform(*size), rng.uniform(*size))

    return boxer


def _box_edema(a: Anatomy, rng: np.random.Generator) -> Box:
    hy = _hilum(a, 1)[1]
    w = a.half_w + 0.01
    return _canon_rect(a, a.cx - w, hy - rng.uniform(0.1, 0.14), a.cx + w, _cp_y(a, 1) - 0.01)


def _box_emphysema(a: Anatomy, rng: np.random.Generator) -> Box:
    e = _emphysema_anatomy(a)
    pts = np.concatenate([_place(e, _lung_outline(e, s)) for s in (-1, 1)])
    return _bbox(pts, 0.01)


def _box_fibrosis(a: Anatomy, rng: np.random.Generator) -> Box:
    side = _side(rng)
    y0 = a.top + (a.base - a.top) * rng.uniform(0.25, 0.45)
    x_lat, x_med = a.cx + side * (a.half_w + 0.01), a.cx + side * a.half_w * rng.uniform(0.35, 0.55)
    return _canon_rect(a, min(x_lat, x_med), y0, max(x_lat, x_med), _dome_y(a, side) + 0.01)


def _box_hernia(a: Anatomy, rng: np.random.Generator) -> Box:
    r = rng.uniform(0.04, 0.065)
    x = a.cx + rng.uniform(-0.01, 0.05)
    y = a.base - rng.uniform(0.02, 0.06)
    return _box_around(a, x, y, 2 * r, 2 * r)


def _box_pleural_thickening(a: Anatomy, rng: np.random.Generator) -> Box:
    side = _side(rng)
    if rng.random() < 0.35:  # apical cap
        d_apex = float(_lat_d(a, 0.0))
        x0, x1 = a.cx + side * 0.5 * a.med_w, a.cx + side * (d_apex + 0.07)
        return _canon_rect(a, min(x0, x1), a.top - 0.012, max(x0, x1), a.top + 0.07)
    t0 = rng.uniform(0.15, 0.5)
    t1 = min(t0 + rng.uniform(0.2, 0.4), 0.9)
    y0, y1 = (a.top + t * (_cp_y(a, side) - a.top) for t in (t0, t1))
    d = float(_lat_d(a, t1))
    x_lat, x_med = a.cx + side * (a.half_w + 0.012), a.cx + side * (d - 0.07)
    return _canon_rect(a, min(x_lat, x_med), y0, max(x_lat, x_med), y1)


def _box_covid(a: Anatomy, rng: np.random.Generator) -> Box:
    y0 = a.top + (a.base - a.top) * rng.uniform(0.3, 0.5)
    w = a.half_w + 0.012
    return _canon_rect(a, a.cx - w, y0, a.cx + w, _cp_y(a, 1) + 0.005)


def _box_viral(a: Anatomy, rng: np.random.Generator) -> Box:
    (xl, hy), (xr, _) = _hilum(a, -1), _hilum(a, 1)
    reach = a.half_w * rng.uniform(0.45, 0.6)
    return _canon_rect(a, xl - reach, hy - 0.13, xr + reach, hy + 0.15)


def _box_lung_opacity(a: Anatomy, rng: np.random.Generator) -> Box:
    x, y = _lung_point(a, _side(rng), rng, (0.3, 0.8), (0.35, 0.7))
    return _box_around(a, x, y, rng.uniform(0.12, 0.22), rng.uniform(0.12, 0.24))


_BOXERS: dict[str, Callable[[Anatomy, np.random.Generator], Box]] = {
    "Atelectasis": _box_atelectasis,
    "Cardiomegaly": _box_cardiomegaly,
    "Consolidation": _box_lobar((0.3, 0.8), (0.12, 0.22)),
    "Edema": _box_edema,
    "Effusion": _box_effusion,
    "Emphysema": _box_emphysema,
    "Fibrosis": _box_fibrosis,
    "Hernia": _box_hernia,
    "Infiltration": _box_lobar((0.2, 0.85), (0.1, 0.22)),
    "Mass": _box_mass,
    "Nodule": _box_nodule,
    "Pleural_Thickening": _box_pleural_thickening,
    "Pneumonia": _box_lobar((0.55, 0.85), (0.12, 0.22)),
    "Pneumothorax": _box_pneumothorax,
    "COVID": _box_covid,
    "Viral Pneumonia": _box_viral,
    "Lung_Opacity": _box_lung_opacity,
}


# --------------------------------------------------------------------------- lung mask


def _lung_canvas(a: Anatomy, n: int, heart: np.ndarray | None = None) -> np.ndarray:
    """uint8 mask of the visible lung fields (heart and aortic knob excluded)."""
    canvas = np.zeros((n, n), np.uint8)
    for side in (-1, 1):
        _fill(canvas, _place(a, _lung_outline(a, side)), 1)
    _fill(canvas, _place(a, _heart_outline(a) if heart is None else heart), 0)
    _fill(canvas, _place(a, _aortic_knob(a)), 0)
    return canvas


def lung_mask(anatomy: Anatomy, size: int) -> np.ndarray:
    """Boolean mask of both lung fields (the normal heart excluded) at ``size`` pixels."""
    return _lung_canvas(anatomy, size).astype(bool)


# --------------------------------------------------------------------------- anatomy layers


@dataclass
class _Layers:
    """Attenuation layers at working resolution; findings edit them in place."""

    anat: Anatomy
    n: int
    soft: np.ndarray  # soft tissue minus lung lucency (+ findings)
    drop: np.ndarray  # the lung lucency that was subtracted (opacities fill it back)
    bones: np.ndarray
    vessels: np.ndarray
    lung_bin: np.ndarray  # uint8 lung mask
    dist: np.ndarray  # distance (image fractions) of lung pixels to the lung edge

    def compose(self) -> np.ndarray:
        return self.soft + self.bones + self.vessels


def _soft_tissue(a: Anatomy, n: int) -> np.ndarray:
    """Body thickness map: thick centrally, thin at the skin edge, zero in air (computed at
    half resolution: it is smooth)."""
    m = max(16, n // 2)
    body = np.zeros((m, m), np.uint8)
    _fill(body, _place(a, _body_outline(a)), 1)
    dist = cv2.distanceTransform(body, cv2.DIST_L2, 3) * np.float32(1 / m)
    skin = np.minimum(dist * np.float32(1 / 0.03), 1) ** np.float32(0.5)
    soft = skin * (0.33 + 0.27 * np.minimum(dist * np.float32(1 / 0.2), 1))
    soft = cv2.GaussianBlur(soft, (0, 0), 0.8)
    return cv2.resize(soft, (n, n), interpolation=cv2.INTER_LINEAR)


def _edge_distance(mask: np.ndarray) -> np.ndarray:
    """Distance in image fractions from each mask pixel to the mask edge."""
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    return cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1] / mask.shape[0]


def _lung_lucency(a: Anatomy, n: int, dist: np.ndarray) -> np.ndarray:
    """How much darker each pixel is for lying over aerated lung: less at the thin periphery
    and the apices, with a faint parenchymal mottle."""
    depth = np.clip(dist / 0.045, 0, 1) ** 0.5
    soft = cv2.GaussianBlur(np.where(dist > 0, 0.55 + 0.45 * depth, 0), (0, 0), max(0.6, 0.003 * n))
    rows = (np.arange(n, dtype=np.float32) + 0.5) / n
    ramp = 0.78 + 0.22 * np.clip((rows - a.top) / 0.18, 0, 1)
    mottle = 1 + 0.04 * _smooth_noise(np.random.default_rng(a.seed + 1), (n, n), 0.02 * n)
    return (_LUNG_DROP * soft * ramp[:, None] * mottle).astype(np.float32)


def _rib_curves(a: Anatomy, k: int = 16) -> np.ndarray:
    """Canonical posterior ribs (20, k, 2): each rises briefly from the spine, then slopes and
    curls down laterally, ending about two interspaces below its head."""
    s = np.linspace(0, 1, k)[None, :]
    gap = a.rib_gap
    heads = a.top - 0.035 + np.arange(10)[:, None] * gap
    reach = (a.half_w + 0.015) * np.array([0.75, 0.9, *[1.0] * 8])[:, None]
    d = 0.02 + (reach - 0.02) * s**0.85
    y = heads + (gap * 17.2) * (0.13 * s**2.5 - 0.02 * np.sin(np.pi * s))
    return _mirror(a, d, y)


def _anterior_ribs(a: Anatomy) -> np.ndarray:
    """Canonical anterior ribs (20, 3, 2): fainter, running down-medially from the side wall."""
    gap = a.rib_gap
    y = a.top + 0.05 + np.arange(10)[:, None] * gap * 0.95
    d_lat = _lat_d(a, np.clip((y - a.top) / (a.base - a.top), 0, 1))
    return _mirror(a, d_lat * np.array([1.0, 0.7, 0.35]), y + np.array([0.0, 0.045, 0.06]))


def _mirror(a: Anatomy, d: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Curves given as midline distance d and height y (m, k) -> both sides (2m, k, 2)."""
    d, y = np.broadcast_arrays(d, y)
    right = np.stack([a.cx - d, y], -1)
    left = np.stack([a.cx + d, y], -1)
    return np.concatenate([right, left])


def _polylines(canvas: np.ndarray, a: Anatomy, curves: np.ndarray, value: float, thick: int):
    pts = _px(_place(a, curves), canvas.shape[0])
    cv2.polylines(canvas, list(pts), False, value, max(1, thick), cv2.LINE_8, _SHIFT)


def _draw_bones(a: Anatomy, n: int) -> np.ndarray:
    """Ribs (posterior and anterior), clavicles and humeral heads; AP adds scapulae."""
    post = np.zeros((n, n), np.float32)
    ante = np.zeros((n, n), np.float32)
    thick = max(1, round(0.017 * n * a.half_w / 0.33))
    ribs = _rib_curves(a)
    _polylines(post, a, ribs, 1.0, thick)
    if thick >= 4:  # cortical rims brighter than the medulla
        _polylines(post, a, ribs, 0.55, thick // 2)
    _polylines(ante, a, _anterior_ribs(a), 0.45, thick)
    clav_d = np.array([[0.03, 0.15, a.half_w + 0.07]])
    clav_y = a.top + np.array([[0.02, -0.01, -0.05]])
    _polylines(post, a, _mirror(a, clav_d, clav_y), 1.0, round(thick * 1.3))
    for side in (-1, 1):
        head = (a.cx + side * (a.half_w + a.body_margin + 0.03), a.top - 0.035)
        _fill(post, _place(a, _ellipse_pts(*head, 0.045, 0.05, 0)), 0.9)
        if a.view == "AP":
            _fill(ante, _place(a, _scapula(a, side)), 0.5)
    return cv2.GaussianBlur(post + ante, (0, 0), max(0.5, 0.002 * n))


def _scapula(a: Anatomy, side: int) -> np.ndarray:
    w = a.half_w
    pts = np.array([(w + 0.06, a.top - 0.02), (w - 0.1, a.top + 0.03), (w - 0.05, a.top + 0.3)])
    return pts * (side, 1) + (a.cx, 0)


def _spine_and_airways(a: Anatomy, n: int) -> np.ndarray:
    """Signed layer: vertebral column (bright), trachea, bronchi and gastric bubble (dark)."""
    layer = np.zeros((n, n), np.float32)
    gap = a.rib_gap
    half = 0.026 * a.half_w / 0.33
    y = a.top - 0.06 + np.arange(-3, 16)[:, None] * gap + np.array([0, 0, 0.8, 0.8]) * gap
    x = a.cx + np.array([-half, half, half, -half])
    bodies = _px(_place(a, np.stack(np.broadcast_arrays(x, y), -1)), n)
    cv2.fillPoly(layer, list(bodies), 0.045, cv2.LINE_8, _SHIFT)
    carina = (a.cx + 0.004, a.top + 0.16 * (a.base - a.top) + 0.03)
    airway = np.array([(a.cx, -0.02), (a.cx, a.top), carina])
    width = max(1, round(0.028 * n * a.half_w / 0.33))
    cv2.polylines(layer, [_px(_place(a, airway), n)], False, -0.2, width, cv2.LINE_8, _SHIFT)
    for side in (-1, 1):
        hx, hy = _hilum(a, side)
        bronchus = _px(_place(a, np.array([carina, (hx - side * 0.01, hy - 0.03)])), n)
        cv2.polylines(layer, [bronchus], False, -0.08, max(1, width // 2), cv2.LINE_8, _SHIFT)
    bubble = _ellipse_pts(a.cx + 0.5 * a.half_w, _dome_y(a, 1) + 0.04, 0.035, 0.018, 0)
    _fill(layer, _place(a, bubble), -0.15)
    return cv2.GaussianBlur(layer, (0, 0), max(0.7, 0.004 * n))


def _vessel_tree(a: Anatomy) -> list[tuple[np.ndarray, float, float]]:
    """Patient-specific vessel tree grown from the hila, generation by generation.

    Returns groups of canonical segments (m, 2, 2) sharing a width and a strength."""
    rng = np.random.default_rng(a.seed)
    side = np.repeat([-1.0, 1.0], 7)
    p = np.array([_hilum(a, int(sd)) for sd in side])
    ang = np.tile(np.linspace(-1.35, 1.2, 7), 2) + rng.normal(0, 0.1, 14)
    length = a.half_w * rng.uniform(0.28, 0.38, 14)
    width, value = 0.0085, 1.0
    groups = []
    for _ in range(4):
        for taper in (1.0, 0.85, 0.72):  # three wiggly, tapering pieces per branch
            ang = ang + rng.normal(0, 0.12, ang.size)
            q = p + np.stack([side * np.cos(ang), np.sin(ang)], 1) * (length / 3)[:, None]
            groups.append((np.stack([p, q], 1), width * taper, value * taper))
            p = q
        turn = rng.uniform(0.2, 0.55, (ang.size, 2)) * (-1, 1)
        ang = (ang[:, None] + turn).ravel()
        p, side = np.repeat(p, 2, 0), np.repeat(side, 2)
        length = np.repeat(length, 2) * rng.uniform(0.55, 0.75, ang.size)
        width, value = width * 0.6, value * 0.8
    return groups


def _draw_vessels(a: Anatomy, n: int, lung_soft: np.ndarray) -> np.ndarray:
    canvas = np.zeros((n, n), np.float32)
    for segments, width, value in _vessel_tree(a):
        _polylines(canvas, a, segments, value, round(width * n))
    for side in (-1, 1):
        hx, hy = _hilum(a, side)
        _fill(canvas, _place(a, _ellipse_pts(hx, hy, 0.025, 0.045, 0)), 0.8)
    canvas = cv2.GaussianBlur(canvas, (0, 0), max(0.5, 0.0025 * n))
    return 0.09 * canvas * lung_soft


def _draw_breasts(a: Anatomy, n: int) -> np.ndarray:
    """Soft breast shadows over the lower zones (drawn at quarter resolution: very smooth)."""
    m = max(16, n // 4)
    layer = np.zeros((m, m), np.float32)
    for side in (-1, 1):
        c = (a.cx + side * a.half_w * 0.62, a.base - 0.02)
        _fill(layer, _place(a, _ellipse_pts(*c, 0.13, 0.085, 0)), 0.09 * a.breast)
    layer = cv2.GaussianBlur(layer, (0, 0), 0.02 * m)
    return cv2.resize(layer, (n, n), interpolation=cv2.INTER_LINEAR)


def _build_layers(a: Anatomy, n: int, heart: np.ndarray) -> _Layers:
    lung = _lung_canvas(a, n, heart)
    dist = _edge_distance(lung)
    drop = _lung_lucency(a, n, dist)
    soft = _soft_tissue(a, n) - drop + _spine_and_airways(a, n)
    if a.breast > 0:
        soft += _draw_breasts(a, n)
    lung_soft = np.clip(drop / _LUNG_DROP, 0, 1)
    bones = _draw_bones(a, n) * (0.03 + 0.045 * lung_soft)
    vessels = _draw_vessels(a, n, lung_soft)
    return _Layers(a, n, soft.astype(np.float32), drop, bones, vessels, lung, dist)


# --------------------------------------------------------------------------- finding painters


@dataclass(frozen=True)
class _Region:
    """The pixels of a finding's box, with box-relative coordinates u, v in [0, 1]."""

    ys: slice
    xs: slice
    u: np.ndarray  # (1, w)
    v: np.ndarray  # (h, 1)
    side: int  # +1 when the box lies right of the midline in the image
    n: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.v.shape[0], self.u.shape[1]

    @property
    def lateral(self) -> np.ndarray:
        """0 at the box edge nearest the midline, 1 at the outer edge."""
        return self.u if self.side > 0 else 1 - self.u


def _region(box: Box, n: int, midline: float) -> _Region:
    x, y, w, h = box
    x0, y0 = int(np.clip(math.floor(x * n), 0, n - 1)), int(np.clip(math.floor(y * n), 0, n - 1))
    x1 = int(np.clip(math.ceil((x + w) * n), x0 + 1, n))
    y1 = int(np.clip(math.ceil((y + h) * n), y0 + 1, n))
    u = ((np.arange(x0, x1, dtype=np.float32) + 0.5) / n - x) / max(w, 1e-6)
    v = ((np.arange(y0, y1, dtype=np.float32) + 0.5) / n - y) / max(h, 1e-6)
    side = 1 if x + w / 2 >= midline else -1
    u, v = np.clip(u, 0, 1), np.clip(v, 0, 1)
    return _Region(slice(y0, y1), slice(x0, x1), u[None, :], v[:, None], side, n)


def _smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0, 1)
    return t * t * (3 - 2 * t)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell_px: float) -> np.ndarray:
    """Band-limited noise of roughly unit std with features about ``cell_px`` wide."""
    h, w = shape
    gh, gw = max(2, round(h / max(cell_px, 1)) + 2), max(2, round(w / max(cell_px, 1)) + 2)
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    coarse = (coarse - coarse.mean()) / max(float(coarse.std()), 0.3) * 1.4
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def _edge_fade(r: _Region, frac: float = 0.12) -> np.ndarray:
    """1 inside the box, fading to 0 over ``frac`` of the box at its borders."""
    du = _smoothstep(np.minimum(r.u, 1 - r.u), 0, frac)
    dv = _smoothstep(np.minimum(r.v, 1 - r.v), 0, frac)
    return du * dv


def _opacify(L: _Layers, r: _Region, alpha: np.ndarray, hide: float = 1.0, extra: float = 0.0):
    """Fill the lung lucency back by ``alpha`` (0..1), hiding vessels; ``extra`` adds density
    beyond the lung too (solid lesions over the heart or mediastinum)."""
    alpha = np.clip(alpha, 0, 1).astype(np.float32)
    L.soft[r.ys, r.xs] += alpha * L.drop[r.ys, r.xs] + extra * alpha
    L.vessels[r.ys, r.xs] *= 1 - hide * alpha
    L.bones[r.ys, r.xs] *= 1 - 0.4 * alpha  # ribs lose contrast against dense lung


def _polar(r: _Region) -> tuple[np.ndarray, np.ndarray]:
    du, dv = 2 * r.u - 1, 2 * r.v - 1
    return np.hypot(du, dv), np.arctan2(dv, du)


def _paint_nodule(L: _Layers, r: _Region, rng: np.random.Generator, s: float, variant: str):
    variant = variant or str(rng.choice(NODULE_VARIANTS))
    rad, theta = _polar(r)
    edge_px = max(r.shape) / 2
    if variant == "malignant":
        lobes = int(rng.integers(3, 6))
        outline = 0.55 * (1 + 0.12 * np.sin(lobes * theta + rng.uniform(0, 6.3)))
        body = _smoothstep(outline - rad, -1.2 / edge_px, 1.2 / edge_px)
        body *= 0.75 + 0.25 * _smooth_noise(rng, r.shape, max(r.shape) / 3)
        body = np.maximum(body, _spicules(r, rng, 0.5) * 0.7)
        _opacify(L, r, body * (0.45 + 0.5 * s), extra=0.08)
    else:
        outline = rng.uniform(0.55, 0.75)
        body = _smoothstep(outline - rad, -0.6 / edge_px, 0.6 / edge_px)
        _opacify(L, r, body * (0.4 + 0.5 * s), extra=0.07)
        if rng.random() < 0.4:  # calcified core
            core = _smoothstep(outline * 0.45 - rad, -0.6 / edge_px, 0.6 / edge_px)
            L.soft[r.ys, r.xs] += core * (0.1 + 0.1 * s)


def _spicules(r: _Region, rng: np.random.Generator, start: float) -> np.ndarray:
    """Thin radial strands from radius ``start`` to the box edge (box-relative units)."""
    h, w = r.shape
    canvas = np.zeros((h, w), np.float32)
    c = np.array([w, h]) / 2
    for ang in rng.uniform(0, 2 * np.pi, int(rng.integers(6, 12))):
        d = np.array([math.cos(ang), math.sin(ang)]) * c
        p0 = np.round((c + d * start - 0.5) * 16).astype(int)
        p1 = np.round((c + d * rng.uniform(0.8, 0.97) - 0.5) * 16).astype(int)
        cv2.line(canvas, tuple(map(int, p0)), tuple(map(int, p1)), 1.0, 1, cv2.LINE_AA, 4)
    return canvas


def _paint_mass(L: _Layers, r: _Region, rng: np.random.Generator, s: float, variant: str):
    du, dv = 2 * r.u - 1, 2 * r.v - 1
    body = np.zeros(r.shape, np.float32)
    for _ in range(int(rng.integers(3, 6))):
        rad = rng.uniform(0.35, 0.55)
        ox, oy = rng.uniform(-1, 1, 2) * (0.92 - rad) * 0.8
        body = np.maximum(body, _smoothstep(rad - np.hypot(du - ox, dv - oy), -0.04, 0.04))
    body *= 0.85 + 0.15 * _smooth_noise(rng, r.shape, max(r.shape) / 4)
    _opacify(L, r, body * (0.45 + 0.45 * s), extra=0.04)


def _paint_effusion(L: _Layers, r: _Region, rng: np.random.Generator, s: float, variant: str):
    lat = r.lateral
    level = 0.05 + 0.5 * (1 - lat) ** 1.4 * rng.uniform(0.6, 1.0)  # meniscus rises laterally
    fluid = _smoothstep(r.v - level, 0, 0.1) * _smoothstep(lat, 0.0, 0.15)
    depth = 0.85 + 0.15 * r.v
    _opacify(L, r, fluid * depth * (0.75 + 0.25 * s), extra=0.04)


def _paint_pneumothorax(L: _Layers, r: _Region, rng: np.random.Generator, s: float, variant: str):
    dist = L.dist[r.ys, r.xs]
    inside = L.lung_bin[r.ys, r.xs] > 0
    width = (0.015 + 0.045 * s) * _smoothstep(1 - r.v, 0.0, 0.45) * _smoothstep(r.lateral, 0, 0.3)
    px = 1.0 / L.n
    rim = _smoothstep(width - dist, -px, px) * inside
    line = np.exp(-(((dist - width) / (0.8 * px)) ** 2)) * (width > 2 * px) * inside
    collapsed = inside * (dist > width) * _smoothstep(width, 0, 0.01)
    air = 0.6 * (_LUNG_DROP - L.drop[r.ys, r.xs]) + 0.025 + 0.055 * s  # no lung tissue: darker
    soft = L.soft[r.ys, r.xs]
    darker = np.maximum(soft - rim * air, np.minimum(soft, 0.1))  # never as black as free air
    L.soft[r.ys, r.xs] = darker + line * 0.08 + collapsed * 0.04 * s
    L.vessels[r.ys, r.xs] *= 1 - rim
    L.bones[r.ys, r.xs] *= 1 - 0.3 * rim


def _paint_atelectasis(L: _Layers, r: _Region, rng: np.random.Generator, s: float, variant: str):
    h, w = r.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(-0.35, 0.35)
    y0 = h * rng.uniform(0.35, 0.6)
    across = np.abs((yy - y0) * math.cos(ang) - (xx - w / 2) * math.sin(ang))
    thick = max(0.8, (0.008 + 0.01 * s) * L.n)
    band = np.exp(-((across / thick) ** 2)) * _smoothstep(np.minimum(r.u, 1 - r.u), 0.02, 0.2)
    alpha = band * (0.55 + 0.4 * s)
    _opacify(L, r, np.maximum(alpha, _raised_diaphragm(L, r, s)))


def _raised_diaphragm(L: _Layers, r: _Region, s: float) -> np.ndarray:
    """Opacity filling the lowest lung pixels of each column whose diaphragm is in the box."""
    lung = L.lung_bin[r.ys, r.xs] > 0
    h = lung.shape[0]
    lowest = h - 1 - np.argmax(lung[::-1], axis=0)
    valid = lung.any(0) & (lowest < h - 2) & (lowest > h // 2)
    rows = np.arange(h)[:, None]
    rise = max(1.0, (0.02 + 0.03 * s) * L.n)
    fill = _smoothstep(rows - (lowest - rise), -1, 1) * valid
    return fill * 0.9 * _smoothstep(np.minimum(r.u, 1 - r.u), 0.0, 0.2)


def _bronchograms(r: _Region, rng: np.random.Generator) -> np.ndarray:
    """A few dark branching air-filled bronchi, entering from the medial side of the box."""
    h, w = r.shape
    canvas = np.zeros((h, w), np.float32)
    x_med = 0.1 * w if r.side > 0 else 0.9 * w
    thick = max(1, round(0.004 * r.n))
    for _ in range(int(rng.integers(2, 4))):
        p = np.array([x_med, h * rng.uniform(0.3, 0.7)])
        ang = (0 if r.side > 0 else math.pi) + rng.uniform(-0.5, 0.5)
        for _ in range(3):
            q = p + np.array([math.cos(ang), math.sin(ang)]) * min(h, w) * rng.uniform(0.15, 0.3)
            cv2.line(canvas, _ipt(p), _ipt(q), 1.0, thick, cv2.LINE_AA, 4)
            p, ang = q, ang + rng.uniform(-0.5, 0.5)
    return cv2.GaussianBlur(canvas, (0, 0), 0.6)


def _ipt(p: np.ndarray) -> tuple[int, int]:
    return round(float(p[0]) * 16 - 8), round(float(p[1]) * 16 - 8)


def _blob_shape(r: _Region, rng: np.random.Generator, ragged: float) -> np.ndarray:
    """Irregular rounded region filling much of the box; ``ragged`` roughens its edge."""
    rad, _ = _polar(r)
    noise = _smooth_noise(rng, r.shape, max(r.shape) / 3)
    return _smoothstep(0.66 - rad + ragged * 0.12 * np.clip(noise, -1.5, 1.5), -0.08, 0.2)


def _paint_consolidation(L: _Layers, r: _Region, rng: np.random.Generator, s: float, v: str):
    body = _blob_shape(r, rng, 0.8) * _edge_fade(r, 0.12)
    alpha = body * (0.45 + 0.4 * s) * (1 - 0.5 * _bronchograms(r, rng))
    _opacify(L, r, alpha)


def _gaussian_blobs(r: _Region, rng: np.random.Generator, count: int, sigma: tuple) -> np.ndarray:
    out = np.zeros(r.shape, np.float32)
    for _ in range(count):
        cu, cv = rng.uniform(0.25, 0.75, 2)
        sg = rng.uniform(*sigma)
        out += np.exp(-((r.u - cu) ** 2 + (r.v - cv) ** 2) / (2 * sg**2))
    return out


def _paint_infiltration(L: _Layers, r: _Region, rng: np.random.Generator, s: float, v: str):
    blobs = _gaussian_blobs(r, rng, int(rng.integers(3, 7)), (0.08, 0.18))
    patchy = np.clip(blobs, 0, 1.2) * (0.6 + 0.4 * _smooth_noise(rng, r.shape, max(r.shape) / 6))
    _opacify(L, r, patchy * _edge_fade(r) * (0.2 + 0.3 * s), hide=0.5)


def _paint_pneumonia(L: _Layers, r: _Region, rng: np.random.Generator, s: float, v: str):
    body = _blob_shape(r, rng, 1.4)
    patchy = body * np.clip(0.75 + 0.35 * _smooth_noise(rng, r.shape, max(r.shape) / 5), 0, 1)
    alpha = patchy * _edge_fade(r, 0.12) * (0.3 + 0.45 * s)
    if rng.random() < 0.4:
        alpha *= 1 - 0.6 * _bronchograms(r, rng)
    _opacify(L, r, alpha)


def _region_px(L: _Layers, r: _Region, pts: np.ndarray) -> np.ndarray:
    """Image-fraction points -> pixel coordinates relative to the region's top-left."""
    return pts * L.n - 0.5 - np.array([r.xs.start, r.ys.start])


def _gauss_at(r: _Region, centre: np.ndarray, sx: float, sy: float) -> np.ndarray:
    h, w = r.shape
    x = np.arange(w, dtype=np.float32)[None, :] - centre[0]
    y = np.arange(h, dtype=np.float32)[:, None] - centre[1]
    return np.exp(-(x**2) / (2 * sx**2) - y**2 / (2 * sy**2))


def _paint_edema(L: _Layers, r: _Region, rng: np.random.Generator, s: float, v: str):
    a, n = L.anat, L.n
    haze = np.zeros(r.shape, np.float32)
    for side in (-1, 1):
        hilum = _region_px(L, r, _place(a, np.array(_hilum(a, side))))
        haze += _gauss_at(r, hilum, 0.1 * n * rng.uniform(0.8, 1.2), 0.13 * n)
    alpha = np.clip(haze, 0, 1) * (0.03 + 0.35 * s)
    kerley = _kerley_lines(L, r, rng)
    _opacify(L, r, np.maximum(alpha, kerley * (0.2 + 0.5 * s)) * _edge_fade(r, 0.04), hide=0.4)


def _kerley_lines(L: _Layers, r: _Region, rng: np.random.Generator) -> np.ndarray:
    """Short horizontal septal lines reaching the lateral pleura at both bases."""
    a, n = L.anat, L.n
    canvas = np.zeros(r.shape, np.float32)
    for side in (-1, 1):
        for t in rng.uniform(0.68, 0.93, int(rng.integers(4, 9))):
            y = a.top + t * (_cp_y(a, side) - a.top)
            d = float(_lat_d(a, t))
            length = rng.uniform(0.015, 0.03)
            seg = np.array([(a.cx + side * d, y), (a.cx + side * (d - length), y)])
            p = _region_px(L, r, _place(a, seg))
            cv2.line(canvas, _ipt(p[0] + 0.5), _ipt(p[1] + 0.5), 1.0, 1, cv2.LINE_AA, 4)
    return canvas * (L.lung_bin[r.ys, r.xs] > 0) * max(1.0, n / 256)


def _paint_emphysema(L: _Layers, r: _Region, rng: np.random.Generator, s: float, v: str):
    fade = _edge_fade(r, 0.03)
    L.soft[r.ys, r.xs] -= fade * L.drop[r.ys, r.xs] * (0.05 + 0.2 * s)
    L.vessels[r.ys, r.xs] *= 1 - fade * (0.3 + 0.5 * s)
    for _ in range(int(rng.integers(0, 3))):  # apical bullae
        side = _side(rng)
        x, y = _lung_point(L.anat, side, rng, (0.1, 0.35), (0.3, 0.8))
        c = _region_px(L, r, _place(L.anat, np.array([x, y])))
        rad = rng.uniform(0.02, 0.04) * L.n
        dist = np.sqrt(_sq_dist(r, c))
        bulla = _smoothstep(rad - dist, -1, 1) * (L.lung_bin[r.ys, r.xs] > 0)
        L.soft[r.ys, r.xs] -= bulla * 0.08 * s
        L.vessels[r.ys, r.xs] *= 1 - bulla


def _sq_dist(r: _Region, centre: np.ndarray) -> np.ndarray:
    """Squared pixel distance of each region pixel to ``centre``."""
    h, w = r.shape
    x = np.arange(w, dtype=np.float32)[None, :] - centre[0]
    y = np.arange(h, dtype=np.float32)[:, None] - centre[1]
    return x**2 + y**2


def _paint_fibrosis(L: _Layers, r: _Region, rng: np.random.Generator, s: float, v: str):
    """Coarse reticulation over a haze, densest at the outer base of the box. The net's
    meshes are about two pixels at 64 px, so a downsized image keeps both the texture and
    the net opacity (a finer net averages out to almost nothing)."""
    net = np.exp(-((_smooth_noise(rng, r.shape, _FIBROSIS_MESH * L.n) / 0.5) ** 2))
    weight = r.lateral**0.6 * np.clip(r.v, 0.15, 1) ** 0.5 * _edge_fade(r, 0.06)
    _opacify(L, r, weight * (0.18 + 0.14 * s + net * (0.4 + 0.35 * s)), hide=0.5)


def _paint_hernia(L: _Layers, r: _Region, rng: np.random.Generator, s: float, v: str):
    rad, _ = _polar(r)
    edge = 2.0 / max(r.shape)
    sac = _smoothstep(0.92 - rad, -edge, edge)
    lumen = _smoothstep(0.75 - rad, -edge, edge)
    level = rng.uniform(0.45, 0.65)
    gas = lumen * _smoothstep(level - r.v, -0.02, 0.02)
    fluid = lumen - gas
    L.soft[r.ys, r.xs] += sac * 0.07 - gas * (0.12 + 0.16 * s) + fluid * 0.04


def _paint_pleural_thickening(L: _Layers, r: _Region, rng: np.random.Generator, s: float, v: str):
    """A dense, lumpy band along the pleura, 0.01 to 0.06 of the image side wide (at least
    about a pixel at 64 px; a thinner band vanishes into the blurred lung edge)."""
    dist = L.dist[r.ys, r.xs]
    inside = L.lung_bin[r.ys, r.xs] > 0
    noise = _smooth_noise(rng, r.shape, max(r.shape) / 5)
    width = (0.022 + 0.018 * s) * np.clip(1 + 0.4 * noise, 0.5, 1.6) * _edge_fade(r, 0.15)
    band = _smoothstep(width - dist, -1 / L.n, 1 / L.n) * inside
    _opacify(L, r, band, extra=0.07)


def _paint_covid(L: _Layers, r: _Region, rng: np.random.Generator, s: float, v: str):
    a, n = L.anat, L.n
    ggo = np.zeros(r.shape, np.float32)
    for side in (-1, 1):
        for _ in range(int(rng.integers(2, 5))):
            x, y = _lung_point(a, side, rng, (0.55, 0.92), (0.6, 0.95))
            c = _region_px(L, r, _place(a, np.array([x, y])))
            sg = rng.uniform(0.025, 0.055) * n
            ggo += _gauss_at(r, c, sg, sg * rng.uniform(0.8, 1.4)) * rng.uniform(0.6, 1.0)
    ggo *= 0.7 + 0.3 * _smooth_noise(rng, r.shape, 0.03 * n)
    _opacify(L, r, np.clip(ggo, 0, 1) * _edge_fade(r, 0.04) * (0.25 + 0.35 * s), hide=0.3)


def _paint_viral(L: _Layers, r: _Region, rng: np.random.Generator, s: float, v: str):
    a, n = L.anat, L.n
    haze = np.zeros(r.shape, np.float32)
    tracks = []
    for side in (-1, 1):
        hx, hy = _hilum(a, side)
        centre = _region_px(L, r, _place(a, np.array([hx, hy])))
        haze += _gauss_at(r, centre, 0.07 * n, 0.09 * n)
        for ang in rng.uniform(-1.4, 1.3, int(rng.integers(8, 14))):
            steps = np.linspace(0.02, a.half_w * rng.uniform(0.2, 0.45), 4)[:, None]
            wiggle = np.cumsum(rng.normal(0, 0.15, 4))[:, None]
            dirs = np.concatenate([side * np.cos(ang + wiggle), np.sin(ang + wiggle)], 1)
            tracks.append(_region_px(L, r, _place(a, np.array([hx, hy]) + steps * dirs)))
    streaks = np.zeros(r.shape, np.float32)
    fixed = [np.round((t + 0.5) * 16 - 8).astype(np.int32) for t in tracks]
    cv2.polylines(streaks, fixed, False, 1.0, max(1, round(0.009 * n)), cv2.LINE_AA, 4)
    if n >= 200:  # peribronchial cuffing: walls denser than the lumen
        cv2.polylines(streaks, fixed, False, 0.45, max(1, round(0.004 * n)), cv2.LINE_AA, 4)
    streaks = cv2.GaussianBlur(streaks, (0, 0), max(0.7, 0.003 * n))
    alpha = streaks * (0.08 + 0.3 * s) + np.clip(haze, 0, 1) * (0.03 + 0.15 * s)
    _opacify(L, r, alpha * _edge_fade(r, 0.05), hide=0.3)


def _paint_lung_opacity(L: _Layers, r: _Region, rng: np.random.Generator, s: float, v: str):
    body = np.zeros(r.shape, np.float32)
    for _ in range(int(rng.integers(1, 3))):
        cu, cv = rng.uniform(0.35, 0.65, 2)
        rad = rng.uniform(0.2, 0.35)
        dist = np.hypot(r.u - cu, r.v - cv)
        noise = _smooth_noise(rng, r.shape, max(r.shape) / 4)
        body = np.maximum(body, _smoothstep(rad - dist + 0.06 * noise, -0.12, 0.1))
    _opacify(L, r, body * _edge_fade(r, 0.05) * (0.35 + 0.45 * s))


def _paint_cardiomegaly(L: _Layers, r: _Region, rng: np.random.Generator, s: float, v: str):
    """Cardiomegaly is drawn through the geometry (a wider heart)."""


_Painter = Callable[[_Layers, _Region, np.random.Generator, float, str], None]
_PAINTERS: dict[str, _Painter] = {
    "Atelectasis": _paint_atelectasis,
    "Cardiomegaly": _paint_cardiomegaly,
    "Consolidation": _paint_consolidation,
    "Edema": _paint_edema,
    "Effusion": _paint_effusion,
    "Emphysema": _paint_emphysema,
    "Fibrosis": _paint_fibrosis,
    "Hernia": _paint_hernia,
    "Infiltration": _paint_infiltration,
    "Mass": _paint_mass,
    "Nodule": _paint_nodule,
    "Pleural_Thickening": _paint_pleural_thickening,
    "Pneumonia": _paint_pneumonia,
    "Pneumothorax": _paint_pneumothorax,
    "COVID": _paint_covid,
    "Viral Pneumonia": _paint_viral,
    "Lung_Opacity": _paint_lung_opacity,
}


# --------------------------------------------------------------------------- rendering


def _heart_scale(a: Anatomy, box: Box) -> float:
    """Heart width factor whose heart box matches a Cardiomegaly box."""
    k = 1.0
    for _ in range(3):
        k *= box[2] / max(_heart_box(a, k)[2], 1e-6)
    return max(k, 1.0)


def _effective_anatomy(a: Anatomy, findings: Sequence[Finding]) -> tuple[Anatomy, np.ndarray]:
    """Geometry changed by findings: hyperinflation (Emphysema) and heart size (Cardiomegaly).

    Returns the anatomy to draw and its placed heart outline. An enlarged heart keeps the
    place its box was computed for, even in a hyperinflated chest."""
    names = {f.name for f in findings}
    drawn = _emphysema_anatomy(a) if "Emphysema" in names else a
    enlarged = [_heart_scale(a, f.box) for f in findings if f.name == "Cardiomegaly"]
    heart = _heart_outline(a, max(enlarged)) if enlarged else _heart_outline(drawn)
    return drawn, heart


def _display(a: Anatomy, att: np.ndarray) -> np.ndarray:
    """Attenuation -> displayed intensity with the film's contrast, brightness, gamma, blur."""
    img = np.clip((att - 0.3) * a.contrast * 1.25 + 0.42 + a.brightness, 0, 1)
    img = img ** np.float32(a.gamma)
    n = img.shape[0]
    return cv2.GaussianBlur(img, (0, 0), max(0.3, a.blur * n / 256))


def render_chest(
    anatomy: Anatomy, findings: Sequence[Finding], size: int, rng: np.random.Generator
) -> np.ndarray:
    """Render a phantom radiograph (float32, [0, 1], MONOCHROME2) with ``findings`` in their
    boxes. Deterministic for a given ``rng`` state; draws exactly two seeds from ``rng``."""
    noise_seed, finding_seed = (int(x) for x in rng.integers(0, 2**63 - 1, size=2))
    n = min(size, _WORK_MAX)
    a, heart = _effective_anatomy(anatomy, findings)
    layers = _build_layers(a, n, heart)
    for i, f in enumerate(findings):
        frng = np.random.default_rng([finding_seed, i])
        severity = float(frng.uniform(0.0, 1.0))
        region = _region(f.box, n, anatomy.cx)
        _PAINTERS[f.name](layers, region, frng, severity, f.variant)
    img = _display(anatomy, layers.compose())
    if size != n:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
    return _add_noise(img, anatomy.noise, np.random.default_rng(noise_seed))


def _add_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Quantum-like noise, stronger in bright (low-dose) pixels, at the final size."""
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    noise *= np.float32(0.5 * sigma)
    scaled = img * noise
    scaled += noise
    img += scaled
    return np.clip(img, 0, 1, out=img)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """[0, 1] float image -> uint8 (rounded, clipped)."""
    return np.clip(np.rint(np.asarray(img, dtype=np.float32) * 255), 0, 255).astype(np.uint8)
