"""Calibration: reliability table and expected calibration error (equal-width bins)."""

from __future__ import annotations

import numpy as np
import pandas as pd

BINS = 15


def reliability(probs: np.ndarray, hits: np.ndarray, bins: int = BINS) -> pd.DataFrame:
    """Per bin of ``[k/bins, (k+1)/bins)`` (the last one closed): its bounds, how many
    predictions fall in it, their mean probability (confidence) and how often they were
    right (frequency). Empty bins have NaN means."""
    probs, hits = np.asarray(probs, np.float64), np.asarray(hits, np.float64)
    which = np.minimum((probs * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, probs, minlength=bins) / count
        frequency = np.bincount(which, hits, minlength=bins) / count
    edges = np.linspace(0.0, 1.0, bins + 1)
    return pd.DataFrame(
        {
            "bin": np.arange(bins),
            "lower": edges[:-1],
            "upper": edges[1:],
            "count": count,
            "confidence": confidence,
            "frequency": frequency,
        }
    )


def expected_calibration_error(table: pd.DataFrame) -> float | None:
    """ECE of a :func:`reliability` table: sum over bins of (share of predictions) x
    |frequency - confidence|; None without predictions."""
    total = table["count"].sum()
    if not total:
        return None
    used = table[table["count"] > 0]
    gap = (used["frequency"] - used["confidence"]).abs()
    return float((used["count"] * gap).sum() / total)
