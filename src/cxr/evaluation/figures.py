"""Figures of an evaluation (matplotlib, Agg canvas, no pyplot state): ROC and PR curves,
confusion matrix, reliability diagram."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

DPI = 120


def _legend_size(n: int) -> str:
    return "small" if n <= 8 else "x-small"


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)


def roc_figure(points: pd.DataFrame, auroc: dict[str, float | None], path: Path) -> None:
    """ROC curve of every output, legend with its AUROC, chance diagonal."""
    fig = Figure(figsize=(6.5, 6))
    ax = fig.add_subplot()
    for finding, curve in points.groupby("finding", sort=False):
        ax.plot(curve["fpr"], curve["tpr"], lw=1.3, label=f"{finding} (AUROC {auroc[finding]:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8, label="chance")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), title="ROC curves", aspect="equal")
    ax.set_xlabel("False positive rate (1 - specificity)")
    ax.set_ylabel("True positive rate (sensitivity)")
    ax.legend(loc="lower right", fontsize=_legend_size(points["finding"].nunique() + 1))
    _save(fig, path)


def pr_figure(points: pd.DataFrame, precision_avg: dict[str, float | None], path: Path) -> None:
    """Precision-recall curve of every output, legend with its average precision."""
    fig = Figure(figsize=(6.5, 6))
    ax = fig.add_subplot()
    for finding, curve in points.groupby("finding", sort=False):
        label = f"{finding} (AP {precision_avg[finding]:.3f})"
        ax.plot(curve["recall"], curve["precision"], lw=1.3, label=label, drawstyle="steps-post")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), title="Precision-recall curves")
    ax.set_xlabel("Recall (sensitivity)")
    ax.set_ylabel("Precision (PPV)")
    ax.legend(loc="upper right", fontsize=_legend_size(points["finding"].nunique()))
    _save(fig, path)


def confusion_figure(labels: list[str], matrix: np.ndarray, path: Path, title: str) -> None:
    """A confusion matrix as a heat map with the count in each cell."""
    k = len(labels)
    fig = Figure(figsize=(2.2 + 0.9 * k, 1.8 + 0.8 * k))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    for (i, j), count in np.ndenumerate(matrix):
        dark = count > matrix.max() / 2
        ax.text(j, i, str(count), ha="center", va="center", color="white" if dark else "black")
    ax.set_xticks(range(k), labels, rotation=45, ha="right")
    ax.set_yticks(range(k), labels)
    ax.set(title=title, xlabel="Predicted", ylabel="Actual")
    _save(fig, path)


def confusion_grid(counts: dict[str, tuple[int, int, int, int]], path: Path, title: str) -> None:
    """One 2x2 matrix per output (multi-label): rows actual, columns predicted."""
    names = list(counts)
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(2.6 * cols, 2.5 * rows))
    for n, name in enumerate(names):
        tn, fp, fn, tp = counts[name]
        matrix = np.array([[tn, fp], [fn, tp]])
        ax = fig.add_subplot(rows, cols, n + 1)
        ax.imshow(matrix, cmap="Blues")
        for (i, j), count in np.ndenumerate(matrix):
            dark = count > matrix.max() / 2
            ax.text(j, i, str(count), ha="center", va="center", color="white" if dark else "black")
        ax.set_xticks([0, 1], ["neg", "pos"])
        ax.set_yticks([0, 1], ["neg", "pos"])
        ax.set_title(name, fontsize="small")
        ax.set_xlabel("Predicted", fontsize="x-small")
        ax.set_ylabel("Actual", fontsize="x-small")
    fig.suptitle(title)
    _save(fig, path)


def reliability_figure(
    tables: dict[str, pd.DataFrame], ece: dict[str, float | None], path: Path
) -> None:
    """Observed frequency against mean predicted probability per bin, legend with ECE."""
    fig = Figure(figsize=(6.5, 6))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8, label="perfect calibration")
    for name, table in tables.items():
        used = table[table["count"] > 0]
        if len(used):
            label = f"{name} (ECE {ece[name]:.3f})"
            ax.plot(used["confidence"], used["frequency"], marker="o", ms=3, lw=1, label=label)
    ax.set(xlim=(0, 1), ylim=(0, 1), title="Reliability diagram", aspect="equal")
    ax.set_xlabel("Mean predicted probability")
    ax.set_ylabel("Observed frequency")
    ax.legend(loc="upper left", fontsize=_legend_size(len(tables) + 1))
    _save(fig, path)
