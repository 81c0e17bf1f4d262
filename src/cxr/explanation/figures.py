"""Heatmap overlays: the grayscale image below, the heatmap in colour above, ground truth drawn.

NIH and synthetic findings are drawn as their boxes with the finding's name; a JSRT nodule as
the circle of its size around its position. Ground truth of the panel's own output is drawn in
lime, any other finding in white dashes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib import patches
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from cxr.explanation.localisation import Box

MATCH, OTHER = "lime", "white"


@dataclass(frozen=True)
class Panel:
    """One overlay: an image, the heatmap of one output, and the image's ground truth."""

    image: np.ndarray  # uint8 (H, W)
    heatmap: np.ndarray | None  # float (H, W) in [0, 1]; None: the image alone, no colour bar
    image_id: str
    output: str
    probability: float
    boxes: Sequence[Box] = ()
    circles: Sequence[tuple[float, float, float, str]] = field(default=())  # x, y, radius, label
    title: str = ""  # replaces the default title (image id, output and probability)


def draw(ax: Axes, panel: Panel, alpha: float = 0.45, cmap: str = "jet") -> AxesImage:
    """Draw ``panel`` on ``ax``; returns the heatmap's image (for a colour bar), or the
    grayscale image's for a panel without heatmap."""
    shown = ax.imshow(panel.image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    if panel.heatmap is not None:
        shown = ax.imshow(panel.heatmap, cmap=cmap, vmin=0, vmax=1, alpha=alpha)
    scale = max(panel.image.shape) / 64
    for box in panel.boxes:
        colour, style = (MATCH, "-") if box.label == panel.output else (OTHER, "--")
        ax.add_patch(
            patches.Rectangle((box.x, box.y), box.w, box.h, fill=False, ec=colour, ls=style, lw=1.5)
        )
        _label(ax, box.x, box.y, box.label, colour, scale)
    for x, y, radius, label in panel.circles:
        colour = MATCH if label == panel.output or len(panel.circles) == 1 else OTHER
        ax.add_patch(patches.Circle((x, y), radius, fill=False, ec=colour, lw=1.5))
        _label(ax, x - radius, y - radius, label, colour, scale)
    title = panel.title or f"{panel.image_id}\n{panel.output}: p = {panel.probability:.3f}"
    ax.set_title(title, fontsize=8, pad=3)
    ax.set_xticks([])
    ax.set_yticks([])
    return shown


def _label(ax: Axes, x: float, y: float, text: str, colour: str, scale: float) -> None:
    ax.text(
        x,
        y - 0.5 * scale,
        text,
        color=colour,
        fontsize=6,
        va="bottom",
        bbox={"facecolor": "black", "alpha": 0.5, "pad": 1, "lw": 0},
    )


def grid(rows: Sequence[Sequence[Panel]], path: Path, title: str = "") -> None:
    """A figure of ``rows`` (one image each, its top-k outputs across) with colour bars, to PNG."""
    columns = max((len(r) for r in rows), default=1)
    height = max(len(rows), 1)
    fig = Figure(figsize=(2.9 * columns, 3.0 * height))
    FigureCanvasAgg(fig)  # no pyplot: no global figure state, safe in any thread
    axes = fig.subplots(height, columns, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, row in enumerate(rows):
        for j, panel in enumerate(row):
            ax = axes[i, j]
            ax.axis("on")
            shown = draw(ax, panel)
            opaque = ScalarMappable(norm=shown.norm, cmap=shown.cmap)  # the bar without alpha
            bar = fig.colorbar(opaque, ax=ax, fraction=0.046, pad=0.02)
            bar.ax.tick_params(labelsize=6)
            bar.ax.set_visible(panel.heatmap is not None)  # hidden: the image keeps its size
    if not rows:
        axes[0, 0].text(0.5, 0.5, "no image", ha="center", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")


def circles_of(row: object, boxes: Sequence[Box]) -> list[tuple[float, float, float, str]]:
    """A JSRT row's nodule as (x, y, radius, label): its position and the half-side of its box."""
    x, y = getattr(row, "nodule_x", math.nan), getattr(row, "nodule_y", math.nan)
    if x is None or y is None or not (math.isfinite(float(x)) and math.isfinite(float(y))):
        return []
    nodule = [b for b in boxes if b.label == "Nodule"]
    radius = nodule[0].w / 2 if nodule else 3.0
    return [(float(x), float(y), radius, "Nodule")]


def ground_truth(
    record: object, boxes: Sequence[Box]
) -> tuple[list[Box], list[tuple[float, float, float, str]]]:
    """What a panel draws of an index row's ground truth, as (boxes, circles): a JSRT nodule as
    the circle of :func:`circles_of`, every other box as it is."""
    jsrt = str(getattr(record, "dataset", "")) == "jsrt"
    circles = circles_of(record, boxes) if jsrt else []
    return [b for b in boxes if not circles or b.label != "Nodule"], circles
