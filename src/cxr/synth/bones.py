"""Phantom radiographs of the musculoskeletal body parts (and teeth), with optional lesions.

``render_part(part, rng, height, width, abnormal=False)`` returns ``(image, lesion_box)``:
a float32 ``(height, width)`` image in [0, 1] with MONOCHROME2 polarity (air dark, soft tissue
grey, bone bright, metal white) and, for an abnormal render, the lesion's ``(x, y, w, h)`` box as
fractions of the image (``None`` otherwise).

How a part is drawn:

1. A builder lays out the part's bones in a design frame (units about the part's length, y down):
   tapered rods with widened ends and a darker medullary canal (long bones, phalanges, teeth),
   ellipses and polygons (carpals, vertebrae, pelvis), soft-tissue shapes, and the place where the
   part should be framed. Sizes, angles, spread and view (AP, lateral) vary per render.
2. A random pose (rotation, zoom, shift, left/right mirror, quarter turn for a landscape image of
   a tall part) maps the design frame into the image.
3. For an abnormal render one lesion goes on a bone visible in the image: a fracture (a gap
   with displacement and soft-tissue swelling), a lytic lesion (a dark hole with a sclerotic rim)
   or hardware (a metal plate with screws, or wires). ``severity`` makes some of them subtle.
4. Bone and soft-tissue attenuation add up; the image is ``1 - exp(-gain * attenuation)``, then
   exposure, gamma, heel effect, blur, quantum noise, collimation, an "L"/"R" marker and, rarely,
   inverted polarity are applied.

All randomness comes from ``rng``. The lesion draws from a generator split off ``rng`` at a fixed
point, so the same seed renders the same patient with and without the lesion.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

BODY_PARTS: tuple[str, ...] = (
    "elbow",
    "finger",
    "forearm",
    "hand",
    "humerus",
    "shoulder",
    "wrist",
    "spine",
    "knee",
    "foot",
    "ankle",
    "hip",
    "dental",
)

Box = tuple[float, float, float, float]
Poly = np.ndarray  # (N, 2) float points
Point = tuple[float, float] | np.ndarray
Points = list[tuple[float, float]] | np.ndarray

LESION_KINDS: tuple[str, ...] = ("fracture", "lytic", "hardware")
INVERTED_SHARE = 0.03
MARKER_SHARE = 0.35
COLLIMATION_SHARE = 0.35
METAL = 3.0  # attenuation of metal: saturates the image


# ---------------------------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------------------------


def direction(angle_deg: float) -> np.ndarray:
    """Unit vector at ``angle_deg`` clockwise from straight up (y grows downwards)."""
    a = math.radians(angle_deg)
    return np.array([math.sin(a), -math.cos(a)])


def _normal(u: np.ndarray) -> np.ndarray:
    return np.array([-u[1], u[0]])


def ellipse(centre: Point, ax: float, ay: float, deg: float = 0.0) -> Poly:
    """Polygon of an ellipse with half-axes ``ax``, ``ay`` rotated by ``deg``."""
    pts = _CIRCLE * (ax, ay)
    return (_rotate(pts, deg) if deg else pts) + np.asarray(centre, float)


_CLOSED_CIRCLE = np.stack(
    [np.cos(np.linspace(0, 2 * np.pi, 25)), np.sin(np.linspace(0, 2 * np.pi, 25))], axis=1
)
_CIRCLE = np.stack(
    [
        np.cos(np.linspace(0, 2 * np.pi, 24, endpoint=False)),
        np.sin(np.linspace(0, 2 * np.pi, 24, endpoint=False)),
    ],
    axis=1,
)


def rounded_rect(
    centre: Point, hw: float, hh: float, deg: float = 0.0, round_frac: float = 0.35
) -> Poly:
    """Polygon of a rectangle with rounded corners (a vertebral body)."""
    rad = round_frac * min(hw, hh)
    pts = _ROUNDED_SIGNS * (hw - rad, hh - rad) + rad * _ROUNDED_ARCS
    return (_rotate(pts, deg) if deg else pts) + np.asarray(centre, float)


_QUARTERS = [np.radians(np.linspace(a, a + 90, 5)) for a in (0, 90, 180, 270)]
_ROUNDED_ARCS = np.concatenate([np.stack([np.cos(q), np.sin(q)], axis=1) for q in _QUARTERS])
_ROUNDED_SIGNS = np.repeat([(1, 1), (-1, 1), (-1, -1), (1, -1)], 5, axis=0).astype(float)


def band(points: np.ndarray, half_width: float) -> Poly:
    """Polygon of a thick polyline (ribs, cortical rims, wires); ``points`` may be a stack of
    polylines (..., p, 2), giving a stack of polygons."""
    points = np.asarray(points, float)
    tangent = np.empty_like(points)
    tangent[..., 1:-1, :] = points[..., 2:, :] - points[..., :-2, :]
    tangent[..., 0, :] = points[..., 1, :] - points[..., 0, :]
    tangent[..., -1, :] = points[..., -1, :] - points[..., -2, :]
    tangent /= np.sqrt((tangent**2).sum(axis=-1, keepdims=True)) + 1e-12
    normal = tangent[..., ::-1] * (-1.0, 1.0)
    return np.concatenate(
        [points + half_width * normal, (points - half_width * normal)[..., ::-1, :]], axis=-2
    )


def ring(centre: Point, ax: float, ay: float, deg: float, half_width: float) -> Poly:
    """Polygon of an elliptic ring (obturator rings)."""
    pts = ellipse(centre, ax, ay, deg)
    return band(np.concatenate([pts, pts[:1]]), half_width)


def glow(
    centre: Point, ax: float, ay: float, deg: float, t: float, steps: int = 4
) -> list[tuple[Poly, float]]:
    """Nested ellipses whose values add up to ``t`` in the middle, fading towards the rim."""
    return [(ellipse(centre, ax * f, ay * f, deg), t / steps) for f in np.linspace(1.0, 0.4, steps)]


def densify(poly: Poly, step: float) -> Poly:
    """The same closed polygon with extra vertices so that no edge is longer than ``step``."""
    if len(poly) < 2:
        return poly
    ends = np.roll(poly, -1, axis=0)
    pieces = np.maximum(1, np.ceil(np.linalg.norm(ends - poly, axis=1) / step)).astype(int)
    steps = [
        p + (e - p) * (np.arange(k)[:, None] / k)
        for p, e, k in zip(poly, ends, pieces, strict=True)
    ]
    return np.concatenate(steps)


def _rotate(pts: np.ndarray, deg: float) -> np.ndarray:
    a = math.radians(deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return pts @ rot.T


def clip_half_plane(poly: Poly, point: np.ndarray, normal: np.ndarray, offset: float) -> Poly:
    """Part of ``poly`` where ``dot(p - point, normal) >= offset`` (Sutherland-Hodgman)."""
    side = (poly - point) @ normal - offset
    out = []
    for i in range(len(poly)):
        j = (i + 1) % len(poly)
        if side[i] >= 0:
            out.append(poly[i])
        if (side[i] >= 0) != (side[j] >= 0):
            t = side[i] / (side[i] - side[j])
            out.append(poly[i] + t * (poly[j] - poly[i]))
    return np.array(out).reshape(-1, 2)


_CAP_PHI = np.linspace(0, np.pi, 9)[1:-1, None]
_CAP_COS, _CAP_SIN = np.cos(_CAP_PHI), np.sin(_CAP_PHI)


@dataclass
class Rod:
    """A tapered bone between ``p0`` and ``p1``: shaft half-width ``r``, ends ``r0``/``r1``."""

    p0: np.ndarray
    p1: np.ndarray
    r: float
    r0: float
    r1: float
    density: float
    marrow: float  # share of the density missing along the medullary canal
    site: bool  # a lesion may go here
    length: float = field(init=False)
    axis: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        delta = self.p1 - self.p0
        self.length = math.hypot(delta[0], delta[1])
        self.axis = delta / (self.length + 1e-12)

    def half_width(self, t: np.ndarray | float) -> np.ndarray:
        """Half-width profile: the shaft widens smoothly into both ends."""
        t = np.asarray(t, float)
        e = min(0.35, 2.0 * max(self.r0, self.r1) / max(self.length, 1e-6))
        flare0 = (self.r0 - self.r) * np.exp(-((t / e) ** 2))
        flare1 = (self.r1 - self.r) * np.exp(-(((1 - t) / e) ** 2))
        return self.r + flare0 + flare1

    @property
    def steps(self) -> int:
        """Points along each side of the outline (a few sizes, so outlines batch well)."""
        wanted = 1.2 * self.length / self.r
        return next((k for k in _STEP_SIZES if k >= wanted), _STEP_SIZES[-1])

    def outline(self) -> Poly:
        """Closed outline with round caps of the end half-widths."""
        return rod_outlines([self])[0]

    def canal(self) -> Poly | None:
        """Outline of the medullary canal, or None for a solid bone."""
        if self.marrow <= 0 or self.length < 3 * self.r:
            return None
        a, b = self.p0 + 0.15 * (self.p1 - self.p0), self.p0 + 0.85 * (self.p1 - self.p0)
        side = 0.5 * self.r * _normal(self.axis)
        return np.array([a + side, b + 0.6 * side, b - 0.6 * side, a - side])


_STEP_SIZES = (6, 12, 20, 30)


@lru_cache(maxsize=64)
def _unit_steps(k: int) -> np.ndarray:
    return np.linspace(0, 1, k)


def capsule(p0: np.ndarray, p1: np.ndarray, r: float) -> Poly:
    """Outline of a segment thickened by ``r`` with round ends (soft tissue of a limb)."""
    u = (p1 - p0) / (math.hypot(*(p1 - p0)) + 1e-12)
    n = _normal(u)
    cap = r * (_CAP_COS * n + _CAP_SIN * u)
    return np.concatenate([[p0 + r * n, p1 + r * n], p1 + cap, [p1 - r * n, p0 - r * n], p0 - cap])


def rod_outlines(rods: list[Rod]) -> list[Poly]:
    """:meth:`Rod.outline` of many rods, computed together for rods with as many steps."""
    out: list[Poly] = [np.empty((0, 2))] * len(rods)
    by_steps: dict[int, list[int]] = {}
    for i, rod in enumerate(rods):
        by_steps.setdefault(rod.steps, []).append(i)
    for steps, members in by_steps.items():
        for i, poly in zip(
            members, _same_step_outlines([rods[i] for i in members], steps), strict=True
        ):
            out[i] = poly
    return out


def _same_step_outlines(rods: list[Rod], steps: int) -> np.ndarray:
    """Outlines (m, 2 * steps + 14, 2) of rods sampled at ``steps`` points per side."""
    p0, p1 = np.array([r.p0 for r in rods]), np.array([r.p1 for r in rods])
    r, r0, r1, length = (
        np.array([getattr(rod, a) for rod in rods])[:, None] for a in ("r", "r0", "r1", "length")
    )
    t = _unit_steps(steps)[None, :]
    e = np.minimum(0.35, 2.0 * np.maximum(r0, r1) / np.maximum(length, 1e-6))
    hw = r + (r0 - r) * np.exp(-((t / e) ** 2)) + (r1 - r) * np.exp(-(((1 - t) / e) ** 2))
    u = ((p1 - p0) / (length + 1e-12))[:, None, :]
    n = u[..., ::-1] * (-1.0, 1.0)
    centre = p0[:, None, :] + t[..., None] * (p1 - p0)[:, None, :]
    cap = _CAP_COS[None] * n + _CAP_SIN[None] * u
    cap1 = p1[:, None, :] + hw[:, -1:, None] * cap
    cap0 = p0[:, None, :] - hw[:, :1, None] * cap
    left, right = centre + hw[..., None] * n, centre - hw[..., None] * n
    return np.concatenate([left, cap1, right[:, ::-1], cap0], axis=1)


@dataclass
class Site:
    """Where a lesion can go: a point on a bone, the bone's axis and its half-width there."""

    centre: np.ndarray
    axis: np.ndarray
    half_width: float
    density: float
    rod: int | None = None  # index of the rod in the scene, None for a blob


@dataclass
class Scene:
    """A part laid out in design units, before posing and rasterising."""

    frame: tuple[float, float, float, float]  # x0, y0, x1, y1 to fit into the image
    rods: list[Rod] = field(default_factory=list)
    bones: list[tuple[Poly, float]] = field(default_factory=list)  # or (k, p, 2) groups
    soft: list[tuple[Poly, float]] = field(default_factory=list)
    metal: list[Poly] = field(default_factory=list)
    blob_sites: list[Site] = field(default_factory=list)
    rotation_sd: float = 7.0
    fixed_orientation: bool = False  # never turned by a quarter (panoramic dental)


class Builder:
    """Collects the shapes of one part; ``rng`` supplies the anatomical variation."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.scene = Scene(frame=(-0.5, -0.5, 0.5, 0.5))

    def rod(
        self,
        p0: Point,
        p1: Point,
        r: float,
        r0: float | None = None,
        r1: float | None = None,
        d: float = 0.8,
        marrow: float = 0.45,
        site: bool = True,
    ) -> Rod:
        """A tapered bone from ``p0`` to ``p1`` (ends default to 1.4 x the shaft)."""
        rod = Rod(
            np.asarray(p0, float),
            np.asarray(p1, float),
            r,
            1.4 * r if r0 is None else r0,
            1.4 * r if r1 is None else r1,
            d,
            marrow,
            site,
        )
        self.scene.rods.append(rod)
        return rod

    def blob(
        self,
        centre: Point,
        ax: float,
        ay: float,
        deg: float = 0.0,
        d: float = 0.6,
        site: bool = False,
    ) -> None:
        """An elliptic bone (carpal, tarsal, head); ``site`` lets a lesion go on it."""
        self.scene.bones.append((ellipse(centre, ax, ay, deg), d))
        if site:  # the bone's axis is the ellipse's long axis
            self.site(centre, deg + 90 if ax >= ay else deg, min(ax, ay), d)

    def poly(self, pts: Points, d: float) -> None:
        """A bone polygon (negative ``d`` makes a hole, e.g. the obturator foramen)."""
        self.scene.bones.append((np.asarray(pts, float), d))

    def poly_group(self, polys: np.ndarray, d: float) -> None:
        """Several same-valued bone polygons that do not overlap, (k, p, 2): drawn at once."""
        self.scene.bones.append((polys, d))

    def site(self, centre: Point, axis_deg: float, half_width: float, d: float) -> None:
        """A lesion site on a non-rod bone whose axis points at ``axis_deg`` (0 = up)."""
        axis = direction(axis_deg)
        self.scene.blob_sites.append(Site(np.asarray(centre, float), axis, half_width, d))

    def soft_rod(self, p0: Point, p1: Point, r: float, t: float = 0.8) -> None:
        """Soft tissue around a limb segment (``t`` = thickness)."""
        self.scene.soft.append((capsule(np.asarray(p0, float), np.asarray(p1, float), r), t))

    def soft_blob(
        self, centre: Point, ax: float, ay: float, deg: float = 0.0, t: float = 0.8
    ) -> None:
        """Elliptic soft tissue (a palm, a foot, the pelvis)."""
        self.scene.soft.append((ellipse(centre, ax, ay, deg), t))

    def soft_poly(self, pts: Points, t: float = 0.8) -> None:
        """Soft tissue of any outline (a trunk, a body wall)."""
        self.scene.soft.append((np.asarray(pts, float), t))

    def soft_glow(
        self, centre: Point, ax: float, ay: float, deg: float = 0.0, t: float = -0.5
    ) -> None:
        """A smooth-edged change of soft tissue (lungs, sinuses): nested ellipses adding up."""
        self.scene.soft.extend(glow(centre, ax, ay, deg, t))

    def chain(
        self,
        start: Point,
        angle: float,
        segments: list[tuple[float, float, float, float]],
        joint: float,
        bends: np.ndarray,
        d: float = 0.8,
        site: bool = True,
    ) -> tuple[np.ndarray, float]:
        """Bones end to end (metacarpal, phalanges): ``(length, r, r_base, r_head)`` each.

        Returns the far tip and the last direction.
        """
        p = np.asarray(start, float)
        for i, (length, r, r_base, r_head) in enumerate(segments):
            if i:
                angle += float(bends[i - 1])
                p = p + direction(angle) * (joint + r_base + segments[i - 1][3])
            q = p + direction(angle) * length
            self.rod(p, q, r, r_base, r_head, d=d, marrow=0.35, site=site)
            p = q
        return p + direction(angle) * segments[-1][3], angle

    def u(self, lo: float, hi: float) -> float:
        """A uniform draw (sizes, angles)."""
        return float(self.rng.uniform(lo, hi))

    def jitter(self, sd: float) -> float:
        """A zero-mean normal draw (small anatomical variation)."""
        return float(self.rng.normal(0, sd))


# ---------------------------------------------------------------------------------------------
# Part builders (right side, PA/AP unless the view says otherwise; mirroring makes left sides)
# ---------------------------------------------------------------------------------------------


def _digit_segments(lengths: list[float], r: float) -> list[tuple[float, float, float, float]]:
    """Segments of a digit: the first is the metacarpal/metatarsal, the rest phalanges."""
    widths = [1.0, 0.95, 0.8, 0.62][: len(lengths)]
    return [
        (ln, r * w, r * w * 1.5, r * w * (1.45 if i < len(lengths) - 1 else 1.25))
        for i, (ln, w) in enumerate(zip(lengths, widths, strict=True))
    ]


def _finger(b: Builder) -> None:
    """One digit: metacarpal head and 3 phalanges in a row (2 for a thumb), vertical."""
    k = b.u(0.9, 1.1)
    thumb = b.rng.random() < 0.15
    lengths = [0.42, 0.27, 0.2] if thumb else [0.42, 0.3, 0.2, 0.14]
    r = 0.034 * k * (1.15 if thumb else 1.0)
    bends = b.rng.normal(0, 5, 3) + (b.u(5, 35) if b.rng.random() < 0.3 else 0)
    segs = _digit_segments([ln * k for ln in lengths], r)
    start = (0.0, 0.95)
    tip, _ = b.chain(start, b.jitter(3), segs, 0.012 * k, bends)
    b.soft_rod(start, tip, 2.3 * r, 0.75)
    b.soft_blob((0.0, 0.95), 0.22, 0.25, 0, 0.8)
    for side in (-1, 1):
        if b.rng.random() < 0.4:  # neighbouring finger at the edge of the film
            base = (side * 0.25, 0.92)
            nb_tip, _ = b.chain(base, side * b.u(6, 14), segs[:3], 0.012 * k, bends, site=False)
            b.soft_rod(base, nb_tip, 2.2 * r, 0.7)
    b.scene.frame = (-0.17, float(tip[1]) - 0.05, 0.17, 0.68)


def _hand_bones(b: Builder) -> None:
    """Distal forearm, 8 carpals, 5 metacarpals and the phalanges of a PA hand."""
    spread = b.u(0.5, 1.6)
    k = b.u(0.93, 1.07)
    b.rod((-0.1, 1.05), (-0.075, 0.5), 0.045, 0.05, 0.085, site=True)  # radius
    b.rod((0.11, 1.05), (0.09, 0.535), 0.03, 0.035, 0.042, site=True)  # ulna
    carpals = [
        ((-0.09, 0.415), 0.034, 0.052, -35),
        ((-0.018, 0.43), 0.036, 0.034, 0),
        ((0.048, 0.415), 0.03, 0.03, 0),
        ((0.072, 0.39), 0.02, 0.02, 0),
        ((-0.105, 0.325), 0.03, 0.03, 0),
        ((-0.055, 0.325), 0.024, 0.03, 0),
        ((-0.002, 0.335), 0.03, 0.05, 0),
        ((0.05, 0.345), 0.03, 0.042, 10),
    ]
    for c, ax, ay, deg in carpals:
        b.blob((c[0] * k, c[1]), ax * k, ay * k, deg + b.jitter(5), d=0.55 + b.jitter(0.04))
    rays = [
        (-0.062, -8.0, [0.30, 0.22, 0.125, 0.085]),
        (-0.015, -2.0, [0.29, 0.235, 0.14, 0.09]),
        (0.03, 4.0, [0.265, 0.215, 0.13, 0.088]),
        (0.07, 11.0, [0.245, 0.17, 0.1, 0.08]),
    ]
    tips = []
    for x, ang, lengths in rays:
        segs = _digit_segments([ln * k for ln in lengths], 0.021 * k)
        tip, _ = b.chain(
            (x * k, 0.285),
            ang * spread + b.jitter(2),
            segs,
            0.01 * k,
            b.rng.normal(0, 3, 3) + ang * 0.2 * spread,
        )
        tips.append(((x * k, 0.285), tip))
    segs = _digit_segments([0.19 * k, 0.14 * k, 0.1 * k], 0.025 * k)
    thumb_tip, _ = b.chain(
        (-0.115 * k, 0.31), -38 * spread**0.5 + b.jitter(4), segs, 0.01 * k, b.rng.normal(8, 4, 2)
    )
    tips.append(((-0.115 * k, 0.31), thumb_tip))
    for base, tip in tips:
        b.soft_rod(base, tip, 0.042 * k, 0.65)
    b.soft_poly(
        [(-0.16, 0.55), (-0.14, 0.22), (-0.1, 0.0), (0.1, 0.02), (0.14, 0.3), (0.15, 0.55)], 0.9
    )
    b.soft_rod((0.0, 0.45), (0.0, 1.2), 0.17, 0.9)


def _hand(b: Builder) -> None:
    """Whole hand: fingers, metacarpals, carpals and the distal forearm."""
    _hand_bones(b)
    b.scene.frame = (-0.42, -0.62, 0.3, 0.72)


def _wrist(b: Builder) -> None:
    """Carpals between the distal radius/ulna and the metacarpal bases (PA or lateral)."""
    if b.rng.random() < 0.3:
        _wrist_lateral(b)
        return
    _hand_bones(b)
    b.scene.frame = (-0.24, 0.06, 0.2, 0.86)


def _wrist_lateral(b: Builder) -> None:
    """Lateral wrist: radius and ulna superimposed, lunate cupped by the radius, metacarpals up."""
    b.rod((0.0, 1.05), (0.0, 0.52), 0.05, 0.05, 0.07, d=0.8)
    b.rod((0.02, 1.05), (0.015, 0.55), 0.03, 0.03, 0.04, d=0.7)
    b.blob((0.0, 0.43), 0.05, 0.04, 0, 0.65)  # lunate
    b.blob((0.0, 0.34), 0.045, 0.055, 0, 0.65)  # capitate
    b.blob((0.05, 0.37), 0.04, 0.06, 20, 0.5)  # scaphoid/trapezium overlap
    b.blob((-0.04, 0.38), 0.03, 0.035, 0, 0.5)  # pisiform/triquetrum
    for i in range(4):
        b.rod((0.005 * i, 0.27), (0.01 * i + b.jitter(0.01), -0.05), 0.02, 0.03, 0.03, d=0.45)
    b.rod((0.06, 0.3), (0.14, 0.08), 0.022, 0.03, 0.03)  # thumb metacarpal
    b.soft_rod((0.0, -0.1), (0.0, 1.2), 0.13, 1.0)
    b.scene.frame = (-0.22, 0.06, 0.22, 0.86)


def _forearm(b: Builder) -> None:
    """Radius and ulna: two long parallel bones, wrist at the top, elbow at the bottom."""
    sep = b.u(0.025, 0.065)
    b.rod((-sep + 0.02, 0.5), (-sep - 0.02, -0.5), 0.03, 0.038, 0.07)  # radius
    b.rod((sep, 0.52), (sep + 0.01, -0.47), 0.03, 0.06, 0.036)  # ulna, olecranon below
    for i in range(3):  # carpals at the top edge
        b.blob((-0.06 + 0.055 * i + b.jitter(0.01), -0.6), 0.03, 0.028, 0, 0.5)
    b.blob((0.01, 0.615), 0.11, 0.045, 0, 0.55)  # humeral condyles at the bottom edge
    b.soft_rod((0.0, -0.7), (0.0, 0.75), 0.13 + sep, 0.9)
    b.scene.frame = (-0.2, -0.58, 0.2, 0.6)


def _humerus(b: Builder) -> None:
    """One long bone with a round head at the top and flared condyles at the bottom."""
    b.rod((0.0, 0.42), (0.01, -0.35), 0.042, 0.1, 0.058)
    b.blob((-0.025, -0.395), 0.085, 0.09, 0, 0.75)  # head
    b.blob((0.055, -0.38), 0.04, 0.05, 0, 0.4)  # greater tuberosity
    b.blob((0.0, 0.47), 0.12, 0.045, 0, 0.55)  # condyles
    b.blob((-0.3, -0.36), 0.18, 0.12, 35, 0.18)  # scapula
    b.blob((-0.125, -0.4), 0.03, 0.08, 0, 0.4)  # glenoid
    b.rod((-0.3, -0.54), (0.06, -0.53), 0.025, site=False)  # acromion
    b.rod((-0.035, 0.55), (-0.045, 0.95), 0.025, 0.04, 0.03, site=False)
    b.rod((0.045, 0.53), (0.055, 0.95), 0.028, 0.05, 0.03, site=False)
    b.soft_rod((0.0, -0.55), (0.0, 0.8), 0.17, 0.9)
    b.soft_blob((-0.05, -0.45), 0.25, 0.15, 0, 0.6)
    b.scene.frame = (-0.22, -0.58, 0.22, 0.62)


def _elbow(b: Builder) -> None:
    """Distal humerus meeting radius and ulna: lateral (flexed) or AP (straight) view."""
    if b.rng.random() < 0.6:
        _elbow_lateral(b)
    else:
        _elbow_ap(b)


def _elbow_lateral(b: Builder) -> None:
    flex = b.u(55, 110)
    b.rod((0.0, -0.65), (0.0, -0.04), 0.05, 0.05, 0.07)
    b.blob((0.01, 0.04), 0.075, 0.075, 0, 0.55)  # trochlea/capitulum
    b.blob((0.01, 0.04), 0.04, 0.04, 0, -0.15)
    b.blob((-0.005, -0.1), 0.035, 0.05, 0, -0.25)  # olecranon fossa
    joint = np.array([0.01, 0.1])
    fwd = direction(180 - flex)
    b.rod(joint + fwd * 0.04, joint + fwd * 0.65, 0.034, 0.05, 0.045)  # ulna
    b.blob((-0.06, 0.03), 0.04, 0.065, -20, 0.6)  # olecranon
    head = joint + fwd * 0.04 + _normal(fwd) * 0.06
    b.rod(head, head + fwd * 0.58, 0.027, 0.045, 0.06)  # radius
    b.soft_rod((0.0, -0.8), (0.0, 0.05), 0.2, 0.9)
    b.soft_rod(joint, joint + fwd * 0.8, 0.18, 0.9)
    b.scene.frame = (-0.3, -0.55, 0.45, 0.5)


def _elbow_ap(b: Builder) -> None:
    valgus = b.u(3, 15)
    b.rod((0.0, -0.65), (0.0, -0.06), 0.05, 0.05, 0.12)
    b.blob((0.0, 0.0), 0.15, 0.055, 0, 0.55)  # condyles
    b.blob((-0.15, -0.025), 0.035, 0.03, 0, 0.4)  # medial epicondyle
    b.blob((0.0, -0.05), 0.04, 0.03, 0, -0.3)  # olecranon fossa
    for x, r0, d in ((-0.04, 0.06, 0.8), (0.075, 0.045, 0.75)):  # ulna, radius
        p0 = np.array([x, 0.09])
        p1 = p0 + direction(180 - valgus) * 0.55
        b.rod(p0, p1, 0.032, r0, 0.04, d=d)
    b.soft_rod((0.0, -0.8), (0.0, 0.8), 0.24, 0.9)
    b.scene.frame = (-0.3, -0.55, 0.3, 0.55)


def _shoulder(b: Builder) -> None:
    """Humeral head in the glenoid, clavicle and acromion above, scapula and ribs medially."""
    abduct = b.u(-10, 25)
    b.rod((0.12, 0.08) + direction(180 - abduct) * 0.7, (0.12, 0.08), 0.065, 0.07, 0.12)
    b.blob((0.11, -0.01), 0.13, 0.14, 0, 0.75)  # humeral head
    b.blob((0.23, -0.02), 0.06, 0.08, 0, 0.35)  # greater tuberosity
    b.blob((-0.04, 0.0), 0.035, 0.11, 5, 0.6)  # glenoid
    b.poly([(-0.03, -0.1), (-0.12, -0.15), (-0.58, -0.17), (-0.32, 0.62), (-0.08, 0.16)], 0.22)
    b.rod((-0.55, -0.13), (-0.05, -0.22), 0.02, site=False, d=0.4)  # scapular spine
    b.rod((-0.05, -0.22), (0.22, -0.23), 0.035, 0.04, 0.045, d=0.55)  # acromion
    b.rod((-0.1, -0.1), (0.02, -0.13), 0.025, site=False, d=0.5)  # coracoid
    lift = b.jitter(0.03)
    b.rod((-0.8, -0.38 + lift), (-0.32, -0.3), 0.035, 0.04, 0.035)  # clavicle, medial
    b.rod((-0.32, -0.3), (0.08, -0.28), 0.03, 0.035, 0.045)  # clavicle, lateral
    for i in range(6):
        s = np.linspace(0, 1, 12)[:, None]
        y0 = -0.35 + 0.17 * i
        pts = np.hstack([-0.95 + 0.75 * s, y0 + 0.12 * s - 0.1 * np.sin(np.pi * s)])
        b.poly(band(pts, 0.022), 0.2)
    b.soft_poly(
        [(-1.0, -0.5), (0.05, -0.5), (0.3, -0.36), (0.42, -0.05), (0.35, 0.9), (-1.0, 0.9)], 1.0
    )
    b.soft_blob((-0.68, 0.25), 0.35, 0.55, 0, -0.55)  # lung
    b.scene.frame = (-0.65, -0.5, 0.45, 0.6)


def _spine(b: Builder) -> None:
    """AP thoracolumbar spine: 17 stacked vertebral bodies (T1-L5), ribs, maybe scoliotic."""
    n, k = 17, b.u(0.93, 1.07)
    hh = np.linspace(0.021, 0.034, n) * k
    hw = np.linspace(0.05, 0.085, n) * k
    discs = np.linspace(0.011, 0.02, n - 1) * k
    curve = b.u(0.02, 0.13) if b.rng.random() < 0.6 else b.u(0, 0.015)
    phase, waves = b.u(0, 2 * np.pi), b.u(0.6, 1.6)
    y = -0.62 + np.cumsum(np.concatenate([[hh[0]], hh[:-1] + hh[1:] + discs]))
    x = curve * np.sin(phase + waves * np.pi * (y - y[0]) / (y[-1] - y[0]))
    deg = -np.degrees(np.arctan(np.gradient(x, y)))
    _vertebrae(b, np.stack([x, y], axis=1), hw, hh, deg)
    for side in (-1, 1):  # iliac wings at the bottom edge
        wing = ((x[-1] + side * 0.27, 0.8), 0.2, 0.14, side * -25)
        b.blob(*wing, 0.3)
        b.poly(band(ellipse(*wing)[13:24], 0.012), 0.18)
    b.soft_poly([(-0.46, -0.8), (0.46, -0.8), (0.5, 0.9), (-0.5, 0.9)], 1.2)
    for side in (-1, 1):
        b.soft_glow((side * 0.22, -0.22), 0.17, 0.36, 0, -0.9)  # lungs
    b.scene.frame = (-0.28, -0.66, 0.28, 0.68)
    b.scene.rotation_sd = 3.0


_RIB_S = np.linspace(0, 1, 8)
N_RIBS = 12


def _vertebrae(b: Builder, c: np.ndarray, hw: np.ndarray, hh: np.ndarray, deg: np.ndarray) -> None:
    """AP vertebrae (all at once): bodies, pedicle rings, spinous and transverse processes, and
    the ribs of the first 12 (thoracic). Each kind is one group of non-overlapping contours."""
    n = len(c)
    rad = 0.35 * np.minimum(hw, hh)[:, None, None]
    half = np.stack([hw, hh], axis=1)[:, None, :]
    body = _ROUNDED_SIGNS * (half - rad) + rad * _ROUNDED_ARCS
    b.poly_group(_place(body, deg, c), 0.5)
    inner = _ROUNDED_SIGNS * (half * (0.82, 0.7) - 0.7 * rad) + 0.7 * rad * _ROUNDED_ARCS
    b.poly_group(_place(inner, deg, c), -0.1)
    for i in range(n):
        b.site(c[i], float(deg[i]), float(hw[i]), 0.5)
    spinous = (
        _CIRCLE * np.stack([0.11 * hw, 0.5 * hh], axis=1)[:, None, :]
        + (np.stack([0 * hh, 0.25 * hh], axis=1)[:, None, :])
    )
    b.poly_group(_place(spinous, deg, c), 0.18)
    for side in (-1, 1):
        pedicle = np.stack([side * 0.62 * hw, -0.2 * hh], axis=1)[:, None, :]
        tip = np.stack([side * 1.55 * hw, -0.15 * hh], axis=1)[:, None, :]
        ring_w = 0.04 * hw[:, None, None]
        axes = np.stack([0.14 * hw, 0.26 * hh], axis=1)[:, None, :]
        rings = np.concatenate(
            [_CLOSED_CIRCLE * (axes + ring_w), _CLOSED_CIRCLE[::-1] * (axes - ring_w)], axis=1
        )
        b.poly_group(_place(rings + pedicle, deg, c), 0.25)
        across = np.stack([0 * hh, 0.12 * hh], axis=1)[:, None, :]
        process = np.concatenate(
            [pedicle + across, tip + across, tip - across, pedicle - across], axis=1
        )
        b.poly_group(_place(process, deg, c), 0.35)
        tips = _place(tip, deg, c)[:N_RIBS]
        ribs = tips + np.stack(
            [side * 0.42 * _RIB_S, -0.04 * np.sin(2.2 * _RIB_S) + 0.2 * _RIB_S**1.5], axis=1
        )
        b.poly_group(band(ribs, 0.012), 0.15)


def _place(pts: np.ndarray, deg: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Rotate each shape ``pts[i]`` (local coordinates) by ``deg[i]`` and move it to
    ``centres[i]``."""
    a = np.radians(deg)[:, None]
    cos, sin = np.cos(a), np.sin(a)
    x, y = pts[..., 0], pts[..., 1]
    return np.stack([x * cos - y * sin, x * sin + y * cos], axis=-1) + centres[:, None, :]


def _knee(b: Builder) -> None:
    """Femoral condyles over the tibial plateau, fibular head, patella (AP or lateral)."""
    if b.rng.random() < 0.35:
        _knee_lateral(b)
        return
    b.rod((0.0, -0.75), (0.0, -0.1), 0.065, 0.065, 0.14)  # femur
    for side in (-1, 1):
        b.blob((side * 0.08, -0.025), 0.075, 0.06, 0, 0.45)  # condyles
    b.blob((0.0, -0.005), 0.025, 0.035, 0, -0.35)  # intercondylar notch
    b.rod((0.0, 0.75), (0.0, 0.14), 0.06, 0.06, 0.15)  # tibia
    b.poly(rounded_rect((0.0, 0.085), 0.16, 0.028), 0.35)  # plateau
    b.poly(ellipse((0.0, 0.05), 0.03, 0.02), 0.3)  # tibial spines
    b.rod((0.17, 0.75), (0.145, 0.18), 0.022, 0.022, 0.042)  # fibula
    b.blob((0.0, -0.11), 0.065, 0.08, 0, 0.35, site=True)  # patella
    b.soft_rod((0.0, -0.9), (0.0, 0.9), 0.3, 0.9)
    b.scene.frame = (-0.32, -0.55, 0.32, 0.55)


def _knee_lateral(b: Builder) -> None:
    flex = b.u(0, 30)
    b.rod((0.0, -0.75), (0.02, -0.1), 0.065, 0.065, 0.1)
    b.blob((0.03, -0.03), 0.11, 0.1, 0, 0.6)  # condyles superimposed
    leg = direction(180 + flex)
    top = np.array([0.02, 0.14])
    b.rod(top + leg * 0.62, top, 0.06, 0.06, 0.13)  # tibia
    b.poly(ellipse(top - leg * 0.03, 0.14, 0.035, -8 + flex), 0.35)
    b.rod(top + leg * 0.6 + (-0.06, 0), top + (-0.07, 0.05), 0.02, 0.02, 0.035)  # fibula
    b.blob((0.17, -0.1), 0.04, 0.085, 12, 0.7, site=True)  # patella, anterior
    b.soft_rod((0.0, -0.9), (0.04, 0.05), 0.27, 0.9)
    b.soft_rod(top, top + leg * 0.85, 0.25, 0.9)
    b.scene.frame = (-0.32, -0.55, 0.36, 0.55)


def _ankle(b: Builder) -> None:
    """Tibia and fibula over the talar dome (AP mortise or lateral with the calcaneus)."""
    if b.rng.random() < 0.35:
        _ankle_lateral(b)
        return
    b.rod((0.0, -0.75), (0.0, 0.04), 0.06, 0.06, 0.12)  # tibia
    b.rod((-0.085, 0.06), (-0.095, 0.15), 0.028, 0.03, 0.025, site=False)  # medial malleolus
    b.rod((0.15, -0.75), (0.145, 0.19), 0.022, 0.022, 0.04)  # fibula, lateral malleolus lower
    b.poly(rounded_rect((0.0, 0.21), 0.11, 0.065, 0, 0.7), 0.6)  # talus
    b.site((0.0, 0.21), 0, 0.06, 0.6)
    b.blob((0.02, 0.37), 0.13, 0.09, 0, 0.4)  # calcaneus
    b.blob((-0.1, 0.33), 0.05, 0.05, 0, 0.35)  # navicular
    b.soft_rod((0.0, -0.9), (0.0, 0.25), 0.21, 0.9)
    b.soft_blob((0.0, 0.37), 0.25, 0.17, 0, 0.9)
    b.scene.frame = (-0.3, -0.55, 0.3, 0.5)


def _ankle_lateral(b: Builder) -> None:
    b.rod((0.0, -0.75), (0.0, 0.02), 0.065, 0.065, 0.1)  # tibia
    b.rod((-0.03, -0.75), (-0.04, 0.1), 0.02, 0.02, 0.035)  # fibula behind
    b.blob((0.01, 0.12), 0.1, 0.065, 0, 0.6, site=True)  # talus
    b.blob((-0.1, 0.27), 0.17, 0.08, 15, 0.55, site=True)  # calcaneus
    b.blob((0.14, 0.16), 0.04, 0.05, 0, 0.5)  # navicular
    b.blob((0.11, 0.27), 0.045, 0.04, 0, 0.45)  # cuboid
    for i in range(3):
        b.rod((0.2, 0.2 + 0.02 * i), (0.55, 0.26 + 0.03 * i), 0.02, 0.03, 0.025, d=0.5)
    b.soft_rod((0.0, -0.9), (0.0, 0.1), 0.19, 0.9)
    b.soft_poly([(-0.3, 0.1), (0.15, 0.02), (0.7, 0.2), (0.7, 0.38), (-0.3, 0.38)], 0.9)
    b.scene.frame = (-0.32, -0.55, 0.38, 0.45)


def _foot(b: Builder) -> None:
    """Metatarsals fanning from the tarsals, short toes (dorsoplantar) or a lateral foot."""
    if b.rng.random() < 0.3:
        _foot_lateral(b)
        return
    spread, k = b.u(0.6, 1.5), b.u(0.93, 1.07)
    tarsals = [
        ((0.03, 0.62), 0.09, 0.1),
        ((-0.01, 0.48), 0.08, 0.07),
        ((-0.05, 0.36), 0.065, 0.035),
        ((0.07, 0.38), 0.05, 0.06),
        ((-0.085, 0.27), 0.035, 0.045),
        ((-0.03, 0.26), 0.025, 0.04),
        ((0.02, 0.27), 0.028, 0.04),
    ]
    for c, ax, ay in tarsals:
        b.blob((c[0] * k, c[1]), ax * k, ay * k, b.jitter(6), d=0.5 + b.jitter(0.04))
    rays = [
        (-0.09, -5.0, [0.24, 0.11, 0.075], 0.034),
        (-0.035, -1.0, [0.3, 0.07, 0.035, 0.03], 0.018),
        (0.01, 4.0, [0.28, 0.065, 0.033, 0.028], 0.017),
        (0.05, 9.0, [0.26, 0.06, 0.03, 0.026], 0.017),
        (0.09, 16.0, [0.24, 0.055, 0.028, 0.024], 0.018),
    ]
    for x, ang, lengths, r in rays:
        segs = _digit_segments([ln * k for ln in lengths], r * k)
        base = (x * k, 0.21)
        tip, _ = b.chain(base, ang * spread + b.jitter(2), segs, 0.008, b.rng.normal(0, 3, 3))
        b.soft_rod(base, tip, 1.6 * r * k + 0.015, 0.7)
    head = np.array([-0.09 * k, 0.21]) + direction(-5 * spread) * 0.24 * k
    for dx in (-0.016, 0.016):
        b.blob(head + (dx, 0.01), 0.012, 0.015, 0, 0.4)  # sesamoids
    b.soft_poly(
        [(-0.15, 0.75), (-0.16, 0.3), (-0.18, -0.15), (0.2, -0.05), (0.17, 0.35), (0.12, 0.75)], 0.9
    )
    b.scene.frame = (-0.28, -0.5, 0.28, 0.72)


def _foot_lateral(b: Builder) -> None:
    b.blob((-0.42, 0.14), 0.17, 0.085, 8, 0.55, site=True)  # calcaneus
    b.blob((-0.24, 0.0), 0.11, 0.07, -5, 0.55)  # talus
    b.blob((-0.1, 0.04), 0.04, 0.055, 0, 0.5)  # navicular
    b.blob((-0.1, 0.15), 0.05, 0.045, 0, 0.5)  # cuboid
    b.blob((0.0, 0.07), 0.05, 0.05, 0, 0.45)  # cuneiforms
    for i in range(4):
        p0 = np.array([0.04, 0.08 + 0.02 * i])
        b.rod(p0, p0 + direction(98 + 3 * i) * 0.36, 0.02, 0.028, 0.028, d=0.45)
        tip = p0 + direction(98 + 3 * i) * 0.42
        b.rod(tip, tip + direction(88) * 0.09, 0.012, d=0.4)
    b.rod((-0.25, -0.07), (-0.27, -0.55), 0.06, 0.08, 0.06)  # tibia
    b.soft_poly(
        [
            (-0.62, 0.05),
            (-0.4, -0.08),
            (-0.38, -0.6),
            (-0.14, -0.6),
            (-0.1, -0.06),
            (0.58, 0.14),
            (0.62, 0.26),
            (-0.55, 0.26),
        ],
        0.9,
    )
    b.scene.frame = (-0.62, -0.45, 0.62, 0.32)


def _hip(b: Builder) -> None:
    """AP pelvis: iliac wings, sacrum, pelvic brim, obturator rings, femoral heads and necks."""
    flare = b.u(0.9, 1.1)
    b.poly(rounded_rect((0.0, -0.43), 0.09, 0.04), 0.5)  # L5
    b.poly(
        [(-0.12, -0.34), (0.12, -0.34), (0.1, -0.2), (0.04, 0.04), (-0.04, 0.04), (-0.1, -0.2)], 0.3
    )  # sacrum
    for row in range(4):
        for side in (-1, 1):
            b.blob((side * 0.045, -0.28 + 0.06 * row), 0.012, 0.01, 0, -0.15)  # sacral foramina
    b.poly(band(ellipse((0.0, -0.02), 0.27, 0.2)[1:12], 0.015), 0.25)  # pelvic brim
    for s in (-1, 1):
        wing = (s * 0.33 * flare, -0.23)
        b.blob(wing, 0.23 * flare, 0.16, s * -25, 0.28)  # iliac wing
        b.poly([(s * 0.19, -0.16), (s * 0.44, -0.14), (s * 0.42, 0.0), (s * 0.25, 0.03)], 0.3)
        crest = ellipse(wing, 0.23 * flare, 0.16, s * -25)
        b.poly(band(crest[13:24], 0.012), 0.18)
        b.poly(ring((s * 0.14, 0.23), 0.1, 0.075, s * 12, 0.025), 0.45)  # obturator ring
        b.poly(band(ellipse((s * 0.32, 0.05), 0.095, 0.095)[13:23], 0.02), 0.35)  # acetabular roof
        b.blob((s * 0.32, 0.055), 0.075, 0.075, 0, 0.55)  # femoral head
        b.rod((s * 0.33, 0.06), (s * 0.44, 0.17), 0.042, 0.045, 0.05, marrow=0.2)  # neck
        b.rod((s * 0.43, 0.78), (s * 0.44, 0.17), 0.055, 0.055, 0.075)  # shaft
        b.blob((s * 0.49, 0.14), 0.045, 0.07, 0, 0.4)  # greater trochanter
        b.blob((s * 0.38, 0.27), 0.025, 0.03, 0, 0.3)  # lesser trochanter
        b.soft_rod((s * 0.43, 0.2), (s * 0.45, 0.95), 0.2, 0.9)
    b.soft_poly(
        [(-0.6, -0.55), (0.6, -0.55), (0.68, 0.2), (0.62, 0.95), (-0.62, 0.95), (-0.68, 0.2)], 1.0
    )
    b.soft_glow((0.0, -0.1), 0.2, 0.15, 0, -0.25)  # bowel gas
    unilateral = b.rng.random() < 0.35
    b.scene.frame = (0.0, -0.3, 0.65, 0.55) if unilateral else (-0.62, -0.48, 0.62, 0.55)
    b.scene.rotation_sd = 4.0
    b.scene.fixed_orientation = True


TOOTH_HALF_WIDTHS = (0.034, 0.029, 0.031, 0.032, 0.032, 0.047, 0.046, 0.042)
TOOTH_ROOTS = (0.22, 0.2, 0.27, 0.21, 0.21, 0.18, 0.18, 0.16)


def _dental(b: Builder) -> None:
    """Panoramic: two arches of teeth (bright crowns, tapered roots) in the jaws."""
    smile, k = b.u(0.05, 0.12), b.u(0.93, 1.05)
    b.soft_poly([(-1.1, -0.6), (1.1, -0.6), (1.1, 0.6), (-1.1, 0.6)], 0.7)
    b.soft_glow((0.0, -0.33), 0.75, 0.06, 0, -0.25)  # air between tongue and palate
    for side in (-1, 1):
        b.soft_glow((side * 0.36, -0.36), 0.2, 0.1, 0, -0.3)  # maxillary sinus
        b.soft_rod((side * 0.95, -0.6), (side * 0.95, 0.6), 0.06, 1.1)  # spine ghost
        b.soft_glow((side * 0.55, -0.05), 0.12, 0.35, 0, 0.3)  # tongue and cheeks
    _mandible(b)
    _maxilla(b, smile)
    x_occ, caps = 0.0, []
    for i, hw in enumerate(TOOTH_HALF_WIDTHS):
        x_occ += hw
        for side in (-1, 1):
            x = side * x_occ * k
            y = 0.03 - smile * (x / 0.65) ** 2
            for jaw in (-1, 1):  # upper (roots up), lower (roots down)
                if b.rng.random() < (0.25 if i == 7 else 0.03):
                    continue  # missing tooth (wisdom teeth often)
                caps.append(_tooth(b, x, y + jaw * 0.012, jaw, hw * k, TOOTH_ROOTS[i] * k, side))
        x_occ += hw + 0.004
    b.poly_group(np.stack(caps), 0.55)  # enamel
    b.scene.frame = (-0.95, -0.5, 0.95, 0.5)
    b.scene.rotation_sd = 1.5
    b.scene.fixed_orientation = True


def _mandible(b: Builder) -> None:
    """U-shaped mandible: body along the bottom, rami rising to the condyles at both sides."""
    s = np.linspace(-1, 1, 25)
    lower = np.stack([0.8 * s, 0.42 - 0.16 * s**4], axis=1)
    upper = np.stack([0.66 * s[::-1], 0.14 - 0.06 * s[::-1] ** 2], axis=1)
    ramus = np.array(
        [
            (0.84, 0.18),
            (0.86, -0.05),
            (0.84, -0.3),
            (0.8, -0.4),
            (0.74, -0.33),
            (0.72, -0.2),
            (0.66, -0.27),
            (0.62, -0.15),
            (0.66, 0.06),
        ]
    )
    mirrored = ramus[::-1] * (-1, 1)
    b.poly(np.concatenate([lower, ramus, upper, mirrored]), 0.3)
    b.poly(band(lower, 0.02), 0.22)  # cortical lower border
    for side in (-1, 1):
        b.poly(band(ramus[:4] * (side, 1), 0.015), 0.18)  # posterior border of the ramus


def _maxilla(b: Builder, smile: float) -> None:
    """Upper jaw holding the upper roots, with the hard palate as its upper border."""
    x = np.linspace(-0.7, 0.7, 15)
    top = np.stack([x, -0.34 + 0.06 * (x / 0.7) ** 2], axis=1)
    bottom = np.stack([x[::-1], 0.0 - smile * (x[::-1] / 0.65) ** 2], axis=1)
    b.poly(np.concatenate([top, bottom]), 0.22)
    b.poly(band(top, 0.018), 0.25)  # hard palate


def _tooth(b: Builder, x: float, y: float, jaw: int, hw: float, root: float, side: int) -> Poly:
    """One tooth: crown at the occlusal plane, root towards the jaw (``jaw`` -1 up, 1 down).

    Returns the outline of its enamel cap, drawn with the other caps in one group.
    """
    tilt = side * b.jitter(3.0) + side * 6 * abs(x)
    crown = np.array([x, y])
    apex = crown + direction(tilt if jaw < 0 else 180 - tilt) * root
    b.rod(crown, apex, 0.6 * hw, 0.9 * hw, 0.25 * hw, d=0.45, marrow=0.5)
    cap = crown + direction(tilt if jaw < 0 else 180 - tilt) * 0.035
    if b.rng.random() < 0.06:
        b.scene.metal.append(ellipse(cap, 0.5 * hw, 0.02))  # filling
    return rounded_rect(cap, 0.92 * hw, 0.045, tilt if jaw < 0 else -tilt, 0.6)


BUILDERS: dict[str, Callable[[Builder], None]] = {
    "elbow": _elbow,
    "finger": _finger,
    "forearm": _forearm,
    "hand": _hand,
    "humerus": _humerus,
    "shoulder": _shoulder,
    "wrist": _wrist,
    "spine": _spine,
    "knee": _knee,
    "foot": _foot,
    "ankle": _ankle,
    "hip": _hip,
    "dental": _dental,
}


def build_scene(part: str, rng: np.random.Generator) -> Scene:
    """Lay out ``part`` in design units (see :data:`BODY_PARTS`)."""
    if part not in BUILDERS:
        raise ValueError(f"unknown body part {part!r}; choose one of {', '.join(BODY_PARTS)}")
    builder = Builder(rng)
    BUILDERS[part](builder)
    return builder.scene


# ---------------------------------------------------------------------------------------------
# Pose: design units -> pixels
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pose:
    """Affine map ``pixel = matrix @ design + offset``; ``scale`` is pixels per design unit."""

    matrix: np.ndarray
    offset: np.ndarray
    scale: float

    def apply(self, pts: np.ndarray) -> np.ndarray:
        return np.asarray(pts, float) @ self.matrix.T + self.offset


def random_pose(scene: Scene, rng: np.random.Generator, height: int, width: int) -> Pose:
    """Fit the scene's frame into the image with random turn, zoom, shift and mirroring."""
    x0, y0, x1, y1 = scene.frame
    fw, fh = x1 - x0, y1 - y0
    quarter = float(rng.choice([-90.0, 90.0]))
    turned = (
        not scene.fixed_orientation
        and (width > 1.15 * height) != (fw > 1.15 * fh)
        and rng.random() < 0.8
    )
    angle = (quarter if turned else 0.0) + float(np.clip(rng.normal(0, scene.rotation_sd), -25, 25))
    if turned:
        fw, fh = fh, fw
    scale = min(width / fw, height / fh) * float(rng.uniform(0.85, 1.1))
    mirror = -1.0 if rng.random() < 0.5 else 1.0
    shift = rng.normal(0, 0.035, 2) * (width, height)
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    matrix = scale * rot @ np.diag([mirror, 1.0])
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    offset = np.array([width / 2, height / 2]) + shift - matrix @ centre
    return Pose(matrix, offset, scale)


# ---------------------------------------------------------------------------------------------
# Layers and lesions
# ---------------------------------------------------------------------------------------------


@dataclass
class Layers:
    """Polygons with their attenuation per canvas, ready to rasterise."""

    bone: list[tuple[Poly, float]]
    soft: list[tuple[Poly, float]]
    metal: list[tuple[Poly, float]]
    rod_polys: dict[int, list[int]]  # rod index -> its indices in ``bone`` (outline, canal)


def scene_layers(scene: Scene) -> Layers:
    """Turn rods into outline and canal polygons, next to the other shapes."""
    bone: list[tuple[Poly, float]] = []
    rod_polys: dict[int, list[int]] = {}
    for i, (rod, outline) in enumerate(zip(scene.rods, rod_outlines(scene.rods), strict=True)):
        rod_polys[i] = [len(bone)]
        bone.append((outline, rod.density))
        canal = rod.canal()
        if canal is not None:
            rod_polys[i].append(len(bone))
            bone.append((canal, -rod.marrow * rod.density))
    bone.extend(scene.bones)
    metal = [(p, METAL) for p in scene.metal]
    return Layers(bone, list(scene.soft), metal, rod_polys)


def candidate_sites(scene: Scene, rng: np.random.Generator, k: int = 48) -> list[Site]:
    """Random lesion sites along the eligible rods (weighted by length) and on blob sites."""
    rods = [i for i, r in enumerate(scene.rods) if r.site]
    sites = list(scene.blob_sites)
    if rods:
        weights = np.array([scene.rods[i].length for i in rods])
        for i in rng.choice(rods, size=k, p=weights / weights.sum()):
            rod = scene.rods[int(i)]
            t = float(rng.uniform(0.2, 0.8))
            centre = rod.p0 + t * (rod.p1 - rod.p0)
            half_width = min(float(rod.half_width(t)), 1.25 * rod.r)
            sites.append(Site(centre, rod.axis, half_width, rod.density, int(i)))
    rng.shuffle(sites)
    return sites


def pick_visible_site(sites: list[Site], pose: Pose, height: int, width: int) -> Site:
    """The first site well inside the image, else the one nearest the centre."""
    size = np.array([width, height], float)
    centres = np.array([pose.apply(s.centre[None])[0] for s in sites]) / size
    inside = np.all((centres > 0.12) & (centres < 0.88), axis=1)
    if inside.any():
        return sites[int(np.argmax(inside))]
    return sites[int(np.argmin(np.linalg.norm(centres - 0.5, axis=1)))]


def add_lesion(
    layers: Layers, site: Site, pose: Pose, rng: np.random.Generator, height: int, width: int
) -> Box:
    """Draw one lesion at ``site``; returns its box (fractions of the image)."""
    kind = str(rng.choice(LESION_KINDS, p=[0.5, 0.25, 0.25]))
    severity = float(rng.uniform(0.25, 1.0))
    if kind == "fracture":
        extent = _fracture(layers, site, pose, severity, rng)
    elif kind == "lytic":
        extent = _lytic(layers, site, severity, rng)
    else:
        extent = _hardware(layers, site, rng)
    return _box_of(pose.apply(extent), height, width, margin=2 + 0.01 * max(height, width))


def _corners(c: np.ndarray, u: np.ndarray, along: float, across: float) -> np.ndarray:
    n = _normal(u)
    return np.array([c + su * along * u + sn * across * n for su in (-1, 1) for sn in (-1, 1)])


def _fracture(
    layers: Layers, site: Site, pose: Pose, severity: float, rng: np.random.Generator
) -> np.ndarray:
    """A gap across the bone, the far side shifted and fading back over 3 half-widths."""
    c, u, hw = site.centre, site.axis, site.half_width
    gap = float(rng.uniform(0.5, 2.0)) * severity * max(1.0, pose.scale / 400) / pose.scale
    normal = _rotate(u[None], float(rng.uniform(-35, 35)))[0]
    shift = _normal(u) * hw * float(rng.uniform(0.1, 0.8)) * severity * rng.choice([-1, 1])
    shift = shift - u * hw * float(rng.uniform(0, 0.3)) * severity
    if site.rod is not None:
        for idx in layers.rod_polys[site.rod]:
            layers.bone.extend(_break(*layers.bone[idx], c, normal, gap, shift, 3 * hw))
    else:
        crack = np.array([c - 1.1 * hw * _normal(normal), c + 1.1 * hw * _normal(normal)])
        layers.bone.append((band(crack, gap), -0.9 * site.density))
        layers.bone.append((band(crack + normal * 3 * gap, gap), 0.3 * severity))
    deg = math.degrees(math.atan2(u[1], u[0]))
    layers.soft.extend(glow(c, 2.6 * hw, 1.9 * hw, deg, 0.25 * severity))
    return _corners(c, u, 3.8 * hw, 2.8 * hw)


def _break(
    poly: Poly,
    value: float,
    c: np.ndarray,
    normal: np.ndarray,
    gap: float,
    shift: np.ndarray,
    fade: float,
) -> list[tuple[Poly, float]]:
    """Polygons that, added to ``poly``, break it along the line through ``c``.

    The strip from ``-gap`` to ``fade`` (signed distance along ``normal``) is taken out and its
    far part put back shifted by ``shift`` at the break, fading to no shift at ``fade``. Both
    pieces share the vertices on the ``fade`` line, so nothing changes beyond it.
    """
    strip = clip_half_plane(poly, c, -normal, -fade)
    removed = clip_half_plane(strip, c, normal, -gap)
    far = densify(clip_half_plane(strip, c, normal, gap), fade / 6)
    weight = np.clip(1 - ((far - c) @ normal - gap) / (fade - gap), 0, 1)
    return [(removed, -value), (far + weight[:, None] * shift, value)]


def _lytic(layers: Layers, site: Site, severity: float, rng: np.random.Generator) -> np.ndarray:
    """A dark hole with a faint sclerotic rim (one or two of them)."""
    hw, u = site.half_width, site.axis
    deg = math.degrees(math.atan2(u[1], u[0]))
    extent = []
    for _ in range(int(rng.integers(1, 3))):
        c = (
            site.centre
            + _normal(u) * hw * float(rng.uniform(-0.3, 0.3))
            + u * hw * float(rng.uniform(-0.8, 0.8))
        )
        a = hw * float(rng.uniform(0.35, 0.75)) * (0.6 + 0.4 * severity)
        b = a * float(rng.uniform(0.8, 1.8))
        layers.bone.append((ellipse(c, 1.3 * b, 1.3 * a, deg), 0.12))
        layers.bone.append((ellipse(c, b, a, deg), -site.density * (0.45 + 0.45 * severity)))
        extent.append(_corners(c, u, 1.4 * b, 1.4 * a))
    return np.concatenate(extent)


def _hardware(layers: Layers, site: Site, rng: np.random.Generator) -> np.ndarray:
    """A plate with screws along the bone, or crossing wires."""
    c, u, hw = site.centre, site.axis, site.half_width
    n = _normal(u)
    if rng.random() < 0.3:
        extent = []
        for _ in range(int(rng.integers(1, 4))):
            w = _rotate(u[None], float(rng.uniform(-40, 40)))[0]
            wire = np.array([c - 2.5 * hw * w, c + 2.5 * hw * w]) + n * hw * float(
                rng.uniform(-0.4, 0.4)
            )
            layers.metal.append((band(wire, 0.07 * hw), METAL))
            extent.append(wire)
        return np.concatenate(extent)
    half_length = hw * float(rng.uniform(2.0, 3.5))
    side = float(rng.choice([-1, 1]))
    plate_c = c + side * n * hw * 0.95
    layers.metal.append(
        (band(np.array([plate_c - half_length * u, plate_c + half_length * u]), 0.22 * hw), METAL)
    )
    for s in np.linspace(-0.8, 0.8, int(rng.integers(3, 7))):
        head = plate_c + s * half_length * u
        layers.metal.append((band(np.array([head, head - side * n * 2.1 * hw]), 0.09 * hw), METAL))
    return _corners(c - side * n * 0.1 * hw, u, half_length + 0.3 * hw, 1.4 * hw)


def _box_of(pixels: np.ndarray, height: int, width: int, margin: float) -> Box:
    x0, y0 = np.clip(pixels.min(axis=0) - margin, 0, [width, height])
    x1, y1 = np.clip(pixels.max(axis=0) + margin, 0, [width, height])
    return (
        float(x0 / width),
        float(y0 / height),
        float((x1 - x0) / width),
        float((y1 - y0) / height),
    )


# ---------------------------------------------------------------------------------------------
# Rasterising and image formation
# ---------------------------------------------------------------------------------------------


def rasterize(
    polys: list[tuple[Poly, float]], pose: Pose, height: int, width: int, combine: str = "sum"
) -> np.ndarray:
    """The filled polygons in pixels, each adding its value (``combine="max"``: the largest).

    A polygon may be a stack (k, p, 2) of non-overlapping contours of the same value.
    """
    canvas = np.zeros((height, width), np.float32)
    polys = [(p, v) for p, v in polys if p.shape[-2] >= 3 and p.size]
    if not polys:
        return canvas
    sizes = [p.size // 2 for p, _ in polys]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    px = pose.apply(np.concatenate([p.reshape(-1, 2) for p, _ in polys]))
    lows = np.maximum(np.floor(np.minimum.reduceat(px, starts)).astype(int) - 1, 0)
    highs = np.minimum(np.ceil(np.maximum.reduceat(px, starts)).astype(int) + 2, (width, height))
    fixed = np.round(px * 16).astype(np.int32)
    for (poly, value), start, size, (x0, y0), (x1, y1) in zip(
        polys, starts, sizes, lows, highs, strict=True
    ):
        if x1 <= x0 or y1 <= y0:
            continue
        patch = np.zeros((y1 - y0, x1 - x0), np.float32)
        pts = (fixed[start : start + size] - (x0 * 16, y0 * 16)).reshape(-1, poly.shape[-2], 2)
        cv2.fillPoly(patch, list(pts), float(value), lineType=cv2.LINE_8, shift=4)
        if combine == "max":
            np.maximum(canvas[y0:y1, x0:x1], patch, out=canvas[y0:y1, x0:x1])
        else:
            canvas[y0:y1, x0:x1] += patch
    return canvas


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Zero-mean, unit-ish noise varying over about ``cell`` pixels."""
    small = rng.standard_normal((height // cell + 2, width // cell + 2), dtype=np.float32)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def form_image(
    bone: np.ndarray, soft: np.ndarray, metal: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Attenuation -> exposure -> gamma, heel effect, blur and quantum noise."""
    height, width = bone.shape
    side = max(height, width)
    bone = np.maximum(bone, 0) * (1 + 0.15 * _smooth_noise(rng, height, width, max(2, side // 40)))
    soft_sigma = 0.01 * side * float(rng.uniform(0.6, 1.4))
    soft = cv2.GaussianBlur(soft, (0, 0), soft_sigma)
    att = float(rng.uniform(0.3, 0.5)) * np.maximum(soft, 0) + bone + metal
    img = 1 - np.exp(-float(rng.uniform(1.0, 1.7)) * att)
    img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.4, 1.0)) * max(1.0, side / 256))
    fog = float(rng.uniform(0.0, 0.08))
    ramp = np.linspace(-1, 1, width, dtype=np.float32)[None, :] * float(rng.uniform(-0.1, 0.1))
    img = (fog + (1 - fog) * img) * (1 + ramp)
    img = np.clip(img, 0, 1) ** float(rng.uniform(0.75, 1.3))
    noise_sd = float(rng.uniform(0.006, 0.03))
    return img + noise_sd * rng.standard_normal((height, width), dtype=np.float32)


def collimate(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Now and then, a rectangular field with bright (unexposed) or black (shutter) borders."""
    if rng.random() >= COLLIMATION_SHARE:
        return img
    height, width = img.shape
    left, top, right, bottom = rng.uniform(0, 0.1, 4)
    outside = np.ones_like(img, dtype=bool)
    outside[
        int(top * height) : height - int(bottom * height),
        int(left * width) : width - int(right * width),
    ] = False
    level = float(rng.uniform(0.75, 0.95)) if rng.random() < 0.6 else float(rng.uniform(0, 0.05))
    img[outside] = level
    return img


def add_marker(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Now and then, a bright side marker ("L", "R", ...) in a corner."""
    if rng.random() >= MARKER_SHARE:
        return img
    height, width = img.shape
    text = str(rng.choice(["L", "R", "L", "R", "PA", "LAT", "OBL"]))
    scale = max(0.3, min(height, width) / 256 * float(rng.uniform(0.6, 1.3)))
    thickness = max(1, round(2 * scale))
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x = (
        int(rng.uniform(0.03, 0.12) * width)
        if rng.random() < 0.5
        else max(0, width - tw - int(rng.uniform(0.03, 0.12) * width))
    )
    y = (
        th + int(rng.uniform(0.03, 0.12) * height)
        if rng.random() < 0.5
        else height - int(rng.uniform(0.03, 0.12) * height)
    )
    mask = np.zeros((height, width), np.uint8)
    cv2.putText(mask, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_AA)
    return np.maximum(img, mask.astype(np.float32) * (float(rng.uniform(0.85, 1.0)) / 255))


def render_part(
    part: str, rng: np.random.Generator, height: int, width: int, abnormal: bool = False
) -> tuple[np.ndarray, Box | None]:
    """Render one radiograph of ``part``; returns (float32 image in [0, 1], lesion box or None)."""
    scene = build_scene(part, rng)
    pose = random_pose(scene, rng, height, width)
    lesion_rng = np.random.default_rng(int(rng.integers(0, 2**63)))
    layers = scene_layers(scene)
    box = None
    if abnormal:
        site = pick_visible_site(candidate_sites(scene, lesion_rng), pose, height, width)
        box = add_lesion(layers, site, pose, lesion_rng, height, width)
    bone = rasterize(layers.bone, pose, height, width)
    soft = rasterize([sp for sp in layers.soft if sp[1] > 0], pose, height, width, combine="max")
    soft += rasterize([sp for sp in layers.soft if sp[1] <= 0], pose, height, width)
    metal = rasterize(layers.metal, pose, height, width)
    img = form_image(bone, soft, metal, rng)
    img = add_marker(collimate(img, rng), rng)
    if rng.random() < INVERTED_SHARE:
        img = 1 - img
    return np.clip(img, 0, 1).astype(np.float32), box
