"""How well heatmaps localise ground-truth boxes: pointing game, IoU and IoBB.

All coordinates are in preprocessed pixels; pixel ``(row, col)`` covers ``[col, col + 1) x
[row, row + 1)``. For one heatmap and one ground-truth box of its finding:

- **pointing game**: a hit when the centre of the heatmap's maximum pixel lies in the box.
  Ties: when several pixels share the maximum, a hit only if *every* one of them lies in the
  box (not the first of them in row-major order, which favours the top-left corner);
- **detected box** (:func:`detected_box`): the heatmap thresholded at ``fraction`` of its
  maximum (0.5 by default), its 8-connected regions labelled, and the bounding box of the
  largest region (ties: the one holding the maximum). The ChestX-ray14 paper also
  thresholds its normalised heatmap and boxes the isolated regions it leaves;
- **IoU** = |D ∩ G| / |D ∪ G| and **IoBB** = |D ∩ G| / |D| (intersection over the *detected*
  box, the ChestX-ray14 paper's measure); accuracy at T = share of boxes with IoBB >= T.

A *flat* heatmap (the same value at every pixel, e.g. the all-zero map a dead Grad-CAM gives
after normalisation, or one with a non-finite value) points nowhere and detects no box: no hit,
IoU = IoBB = 0, whatever the box. Without that rule a flat map would point at pixel (0, 0) and
a flat positive one would detect the whole image, whose IoBB is the box's share of the image.

**Baseline**: chest findings sit in the lungs, so a heatmap that ignores the image scores
something. :func:`centred_blob` is such a heatmap, scored with the same boxes, box fraction,
thresholds and grouping (:func:`baseline_entries`); a model's heatmaps mean something only as
far as they beat it (:data:`MARGIN_METRICS`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import ndimage

from cxr.data.index import boxes_from_json

#: T(IoBB) of the ChestX-ray14 paper's Table 4 (Wang et al. 2017).
THRESHOLDS = (0.1, 0.25, 0.5, 0.75, 0.9)

#: The ChestX-ray14 paper's Table 4: localisation accuracy of its ResNet-50 heatmaps at
#: T(IoBB) = 0.1 (seeds.md gives no other row; the paper's other thresholds are not copied).
PAPER_IOBB_ACCURACY = {
    0.1: {
        "Atelectasis": 0.73,
        "Cardiomegaly": 0.99,
        "Effusion": 0.71,
        "Infiltration": 0.79,
        "Mass": 0.44,
        "Nodule": 0.16,
        "Pneumonia": 0.75,
        "Pneumothorax": 0.46,
    }
}


#: Width of the centred blob, as a share of the heatmap's shorter side: sigma = side / 4. Its
#: half-maximum disc (the detected box at the default box fraction 0.5) has a diameter of
#: 2 sqrt(2 ln 2) sigma ~ 0.59 side, i.e. it covers the central ~60% of each axis: roughly the
#: thorax of a PA film (both lungs' inner parts, mediastinum, heart), the "knows where the chest
#: is and nothing else" prior. A narrower blob would box only the mediastinum; a wider one would
#: box nearly the whole image and win IoBB only on the largest boxes.
BLOB_SIGMA = 0.25

#: The scorers of the localisation tables, in the order their rows are written.
SCORERS = ("model", "centred_blob")

#: The headline metrics whose model-minus-blob difference (the "all" row) is reported: the
#: pointing game, the ChestX-ray14 paper's T(IoBB) = 0.1 accuracy and the mean IoBB.
MARGIN_METRICS = ("pointing_game", "iobb_acc@0.1", "mean_iobb")


@dataclass(frozen=True)
class Box:
    """An axis-aligned box: top-left ``(x, y)``, width ``w`` and height ``h`` in pixels."""

    label: str
    x: float
    y: float
    w: float
    h: float

    @property
    def area(self) -> float:
        return max(self.w, 0.0) * max(self.h, 0.0)

    def contains(self, px: float, py: float) -> bool:
        return self.x <= px <= self.x + self.w and self.y <= py <= self.y + self.h


def parse_boxes(value: object) -> list[Box]:
    """The boxes of an index's ``boxes`` cell (JSON, or missing)."""
    return [
        Box(str(b["label"]), float(b["x"]), float(b["y"]), float(b["w"]), float(b["h"]))
        for b in boxes_from_json(value)
    ]


def intersection(a: Box, b: Box) -> float:
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    return max(w, 0.0) * max(h, 0.0)


def iou(a: Box, b: Box) -> float:
    """Intersection over union (0 when both are empty)."""
    inter = intersection(a, b)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def iobb(detected: Box, truth: Box) -> float:
    """Intersection over the detected box's area (the ChestX-ray14 paper's IoBB)."""
    return intersection(detected, truth) / detected.area if detected.area > 0 else 0.0


def peak(heatmap: np.ndarray) -> tuple[int, int]:
    """(row, col) of the heatmap's maximum (the first one in row-major order)."""
    row, col = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return int(row), int(col)


def is_flat(heatmap: np.ndarray) -> bool:
    """Whether ``heatmap`` has one value at every pixel, or a non-finite one: it points nowhere."""
    top, low = float(np.max(heatmap)), float(np.min(heatmap))
    return not (math.isfinite(top) and math.isfinite(low)) or top == low


def pointing_hit(heatmap: np.ndarray, box: Box) -> bool:
    """Whether the centre of every pixel at the heatmap's maximum lies in ``box`` (a flat map:
    never)."""
    if is_flat(heatmap):
        return False
    rows, cols = np.nonzero(heatmap == np.max(heatmap))
    px, py = cols + 0.5, rows + 0.5
    inside = (box.x <= px) & (px <= box.x + box.w) & (box.y <= py) & (py <= box.y + box.h)
    return bool(inside.all())


def detected_box(heatmap: np.ndarray, fraction: float = 0.5, label: str = "") -> Box | None:
    """Bounding box of the largest 8-connected region of ``heatmap >= fraction * max`` (none
    for a flat map or one with no positive value)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"box fraction must be in (0, 1], got {fraction}")
    top = float(np.max(heatmap))
    if is_flat(heatmap) or top <= 0:
        return None
    regions, count = ndimage.label(heatmap >= fraction * top, structure=np.ones((3, 3)))
    sizes = np.bincount(regions.ravel(), minlength=count + 1)
    sizes[0] = 0
    largest = np.flatnonzero(sizes == sizes.max())
    at_peak = regions[peak(heatmap)]
    chosen = at_peak if at_peak in largest else int(largest[0])
    rows, cols = np.nonzero(regions == chosen)
    x0, y0 = int(cols.min()), int(rows.min())
    return Box(label, x0, y0, int(cols.max()) + 1 - x0, int(rows.max()) + 1 - y0)


def score_boxes(
    heatmap: np.ndarray, truths: Sequence[Box], fraction: float = 0.5
) -> list[dict[str, float | bool]]:
    """Pointing hit, IoU and IoBB of ``heatmap`` against each ground-truth box."""
    detected = detected_box(heatmap, fraction)
    rows = []
    for truth in truths:
        rows.append(
            {
                "pointing": pointing_hit(heatmap, truth),
                "iou": iou(detected, truth) if detected else 0.0,
                "iobb": iobb(detected, truth) if detected else 0.0,
            }
        )
    return rows


@lru_cache(maxsize=8)
def centred_blob(shape: tuple[int, int]) -> np.ndarray:
    """A heatmap that ignores the image: an isotropic Gaussian at the centre of a ``shape``
    map, sigma = :data:`BLOB_SIGMA` x the shorter side, peak 1 (read-only; cached per shape).
    An even side has its four centre pixels tied at the maximum."""
    height, width = shape
    sigma = BLOB_SIGMA * min(height, width)
    y = (np.arange(height) - (height - 1) / 2) ** 2
    x = (np.arange(width) - (width - 1) / 2) ** 2
    blob = np.exp(-(y[:, None] + x[None, :]) / (2 * sigma**2))
    blob.flags.writeable = False
    return blob


def accuracy_table(
    records: Iterable[dict], thresholds: Sequence[float] = THRESHOLDS, paper: bool = True
) -> pd.DataFrame:
    """Per finding (and ``all``): boxes, pointing game, IoBB and IoU accuracies at each T, mean
    IoU / IoBB, and (``paper``) the ChestX-ray14 paper's accuracy beside ours where it gives
    one."""
    frame = pd.DataFrame(list(records), columns=["image_id", "finding", "pointing", "iou", "iobb"])
    rows = []
    groups = [(f, g) for f, g in frame.groupby("finding", sort=True)] + [("all", frame)]
    for finding, group in groups:
        row: dict[str, object] = {"finding": finding, "boxes": len(group)}
        row["pointing_game"] = _mean(group["pointing"])
        for t in thresholds:
            row[f"iobb_acc@{t:g}"] = _mean(group["iobb"] >= t)
        for t in thresholds:
            row[f"iou_acc@{t:g}"] = _mean(group["iou"] >= t)
        row["mean_iobb"], row["mean_iou"] = _mean(group["iobb"]), _mean(group["iou"])
        for t, published in PAPER_IOBB_ACCURACY.items() if paper else ():
            row[f"paper_iobb_acc@{t:g}"] = published.get(str(finding), math.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def margin(model: pd.DataFrame, blob: pd.DataFrame) -> dict[str, float | None]:
    """Model minus centred blob on the ``all`` row, for each of :data:`MARGIN_METRICS` (None
    where there are no boxes)."""
    ours, theirs = _all_row(model), _all_row(blob)
    diffs = {m: float(ours[m]) - float(theirs[m]) for m in MARGIN_METRICS}
    return {m: None if math.isnan(d) else d for m, d in diffs.items()}


def baseline_entries(model: pd.DataFrame, blob: pd.DataFrame) -> dict[str, object]:
    """The centred blob's keys of ``localisation.json``: what it is, its per-finding rows (as
    ``findings``, less the paper's columns) and the ``all`` row's margin of the model over it."""
    return {
        "centred_blob_heatmap": (
            f"isotropic Gaussian at the image centre, sigma = {BLOB_SIGMA:g} x the shorter side, "
            "scored on the same boxes with the same box fraction and thresholds; margin: the "
            "model minus the blob on the 'all' row"
        ),
        "centred_blob": table_records(blob),
        "margin": margin(model, blob),
    }


def table_records(table: pd.DataFrame) -> list[dict]:
    """The table's rows as JSON-ready dicts (NaN as None)."""
    return json.loads(table.to_json(orient="records"))


def side_by_side(model: pd.DataFrame, blob: pd.DataFrame) -> pd.DataFrame:
    """One table with a ``scorer`` column after ``finding``: each finding's model row, then its
    centred-blob row (the blob's paper columns left empty)."""
    theirs = {row["finding"]: row for row in blob.to_dict("records")}
    rows = []
    for ours in model.to_dict("records"):
        rows.append({**ours, "scorer": SCORERS[0]})
        rows.append({**theirs[ours["finding"]], "scorer": SCORERS[1]})
    columns = ["finding", "scorer", *[c for c in model.columns if c != "finding"]]
    return pd.DataFrame(rows, columns=columns)


def pointing_sentence(model: pd.DataFrame, blob: pd.DataFrame, heatmap: str = "CAM") -> str:
    """The ``all`` rows' pointing games in words: "The CAM points at the box for X% of the N
    boxes, a centred blob for Y%: Z points better/worse." """
    ours, theirs = _all_row(model), _all_row(blob)
    boxes = int(ours["boxes"])
    if not boxes:
        return f"No boxes were scored, so the {heatmap} is not compared with a centred blob."
    x, y = 100 * float(ours["pointing_game"]), 100 * float(theirs["pointing_game"])
    z = round(x - y, 1)
    verdict = "level with it" if z == 0 else f"{abs(z):.1f} points {'better' if z > 0 else 'worse'}"
    return (
        f"The {heatmap} points at the box for {x:.1f}% of the {boxes} boxes, "
        f"a centred blob for {y:.1f}%: {verdict}."
    )


def _all_row(table: pd.DataFrame) -> pd.Series:
    return table.loc[table["finding"] == "all"].iloc[0]


def _mean(values: pd.Series) -> float:
    return float(values.astype(float).mean()) if len(values) else math.nan


def to_markdown(table: pd.DataFrame) -> str:
    """The table as a GitHub Markdown table (floats to 3 decimals, NaN as a dash)."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return "–" if math.isnan(v) else f"{v:.3f}"
        return str(v)

    lines = [
        "| " + " | ".join(table.columns) + " |",
        "|" + "|".join("---" for _ in table.columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(False)]
    return "\n".join(lines) + "\n"
