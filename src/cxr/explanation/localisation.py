"""How well heatmaps localise ground-truth boxes: pointing game, IoU and IoBB.

All coordinates are in preprocessed pixels; pixel ``(row, col)`` covers ``[col, col + 1) x
[row, row + 1)``. For one heatmap and one ground-truth box of its finding:

- **pointing game**: a hit when the centre of the heatmap's maximum pixel lies in the box;
- **detected box** (:func:`detected_box`): the heatmap thresholded at ``fraction`` of its
  maximum (0.5 by default), its 8-connected regions labelled, and the bounding box of the
  largest region (ties: the one holding the maximum). The ChestX-ray14 paper also
  thresholds its normalised heatmap and boxes the isolated regions it leaves;
- **IoU** = |D ∩ G| / |D ∪ G| and **IoBB** = |D ∩ G| / |D| (intersection over the *detected*
  box, the ChestX-ray14 paper's measure); accuracy at T = share of boxes with IoBB >= T.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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


def pointing_hit(heatmap: np.ndarray, box: Box) -> bool:
    """Whether the centre of the heatmap's maximum pixel lies in ``box``."""
    row, col = peak(heatmap)
    return box.contains(col + 0.5, row + 0.5)


def detected_box(heatmap: np.ndarray, fraction: float = 0.5, label: str = "") -> Box | None:
    """Bounding box of the largest 8-connected region of ``heatmap >= fraction * max``."""
    if not 0 < fraction <= 1:
        raise ValueError(f"box fraction must be in (0, 1], got {fraction}")
    top = float(np.max(heatmap))
    if not math.isfinite(top) or top <= 0:
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


def accuracy_table(
    records: Iterable[dict], thresholds: Sequence[float] = THRESHOLDS
) -> pd.DataFrame:
    """Per finding (and ``all``): boxes, pointing game, IoBB and IoU accuracies at each T, mean
    IoU / IoBB, and the ChestX-ray14 paper's accuracy beside ours where it gives one."""
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
        for t, paper in PAPER_IOBB_ACCURACY.items():
            row[f"paper_iobb_acc@{t:g}"] = paper.get(str(finding), math.nan)
        rows.append(row)
    return pd.DataFrame(rows)


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
