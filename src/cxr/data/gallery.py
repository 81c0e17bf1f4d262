"""A figure of sample images per dataset, with their labels and boxes drawn."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.patches import Rectangle

from cxr.core.atomic import atomic_path
from cxr.data.decode import read_gray
from cxr.data.index import FINDING_PREFIX, boxes_from_json, finding_columns, read_index


@dataclass(frozen=True)
class Panel:
    """One row of the gallery: a name, an index and the dataset root its paths are relative to."""

    name: str
    index: Path
    root: Path


def caption(row: pd.Series, findings: list[str]) -> str:
    """Short label text of an index row: its class, or its positive findings."""
    if isinstance(row.get("label"), str):
        return row["label"]
    positive = [c.removeprefix(FINDING_PREFIX) for c in findings if row[c] == 1]
    return "|".join(positive) if positive else "No Finding"


def pick_diverse(index: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    """Up to ``k`` rows covering as many distinct captions as possible, boxed ones first."""
    findings = finding_columns(index)
    frame = index.sample(frac=1.0, random_state=seed).assign(
        _caption=lambda f: f.apply(caption, axis=1, findings=findings),
        _boxed=lambda f: f["boxes"].notna(),
    )
    frame = frame.sort_values("_boxed", ascending=False, kind="stable")
    frame["_rank"] = frame.groupby("_caption").cumcount()
    return frame.sort_values(["_rank", "_boxed"], ascending=[True, False], kind="stable").head(k)


def render_gallery(panels: list[Panel], out: str | Path, per_row: int = 8, seed: int = 0) -> None:
    """Write a PNG with one row of ``per_row`` sample images per panel."""
    fig, axes = plt.subplots(
        len(panels), per_row, figsize=(per_row * 1.9, len(panels) * 2.15), squeeze=False
    )
    for axes_row, panel in zip(axes, panels, strict=True):
        rows = pick_diverse(read_index(panel.index), per_row, seed)
        for ax, (_i, row) in zip(axes_row, rows.iterrows(), strict=False):
            img = read_gray(panel.root / row["path"], row["mode"])
            ax.imshow(img, cmap="gray", vmin=0, vmax=255)
            for box in boxes_from_json(row["boxes"]):
                ax.add_patch(
                    Rectangle(
                        (box["x"], box["y"]),
                        box["w"],
                        box["h"],
                        fill=False,
                        edgecolor="red",
                        linewidth=1,
                    )
                )
            ax.set_title(_shorten(row["_caption"]), fontsize=7)
        for ax in axes_row:
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        axes_row[0].set_ylabel(panel.name, fontsize=9)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _shorten(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
