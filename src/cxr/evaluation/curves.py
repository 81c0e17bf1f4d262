"""Point files of the curves, one row per point, as ``dvc plots`` reads them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxr.evaluation.inputs import Cohort
from cxr.evaluation.ranking import precision_recall_curve, roc_curve

#: Points kept per curve: enough to draw it, few enough for dvc plots to render.
MAX_POINTS = 1000


def _thin(*columns: np.ndarray) -> list[np.ndarray]:
    """At most MAX_POINTS evenly spaced points of a curve, its two ends kept."""
    n = len(columns[0])
    if n <= MAX_POINTS:
        return list(columns)
    keep = np.unique(np.linspace(0, n - 1, MAX_POINTS).round().astype(int))
    return [c[keep] for c in columns]


def _each(cohort: Cohort) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(output, labels, probabilities) of every output with both classes among known labels."""
    out = []
    for k, output in enumerate(cohort.outputs):
        known = ~np.isnan(cohort.targets[:, k])
        y = cohort.targets[known, k].astype(int)
        if len(np.unique(y)) == 2:
            out.append((output, y, cohort.probs[known, k]))
    return out


def roc_points(cohort: Cohort) -> pd.DataFrame:
    """``finding, fpr, tpr`` of each output's ROC curve (outputs with one class are left out;
    long curves thinned to MAX_POINTS)."""
    parts = [
        pd.DataFrame({"finding": output, "fpr": fpr, "tpr": tpr})
        for output, y, p in _each(cohort)
        for fpr, tpr in [_thin(*roc_curve(y, p)[:2])]
    ]
    return pd.concat(parts, ignore_index=True) if parts else _empty("finding", "fpr", "tpr")


def pr_points(cohort: Cohort) -> pd.DataFrame:
    """``finding, recall, precision`` of each output's precision-recall curve."""
    parts = [
        pd.DataFrame({"finding": output, "recall": recall, "precision": precision})
        for output, y, p in _each(cohort)
        for precision, recall in [_thin(*precision_recall_curve(y, p)[:2])]
    ]
    return (
        pd.concat(parts, ignore_index=True) if parts else _empty("finding", "recall", "precision")
    )


def confusion_points(labels: list[str], truth: np.ndarray, guess: np.ndarray) -> pd.DataFrame:
    """``actual, predicted`` per image (class names), for a dvc confusion plot."""
    names = np.asarray(labels, dtype=object)
    return pd.DataFrame({"actual": names[truth], "predicted": names[guess]})


def calibration_points(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The reliability tables of all outputs, one row per bin, with a ``finding`` column."""
    parts = [table.assign(finding=name) for name, table in tables.items()]
    frame = pd.concat(parts, ignore_index=True)
    return frame[["finding", *[c for c in frame.columns if c != "finding"]]]


def _empty(*columns: str) -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in columns})
