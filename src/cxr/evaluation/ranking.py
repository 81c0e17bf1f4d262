"""ROC and precision-recall curves, average precision and confusion counts in numpy: the values
of sklearn.metrics (its conventions, to floating point), without its import (about a second per
evaluation job). tests/unit/test_ranking.py holds them to sklearn's on random and tied scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _descending(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positives at each distinct score, highest first, and those scores."""
    y, scores = np.asarray(y).ravel(), np.asarray(scores, dtype=float).ravel()
    order = np.argsort(scores, kind="mergesort")[::-1]
    scores, y = scores[order], (y[order] == 1).astype(float)
    last = np.r_[np.flatnonzero(np.diff(scores)), y.size - 1]  # each distinct score's last row
    tps = np.cumsum(y)[last]
    return 1 + last - tps, tps, scores[last]


def roc_curve(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``fpr, tpr, thresholds`` of 0/1 labels ``y``: sklearn's ``roc_curve`` with its defaults
    (collinear points dropped; a first point (0, 0) at threshold inf)."""
    fps, tps, thresholds = _descending(y, scores)
    if fps.size > 2:
        keep = np.flatnonzero(np.r_[True, (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0), True])
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fps, tps, thresholds = np.r_[0, fps], np.r_[0, tps], np.r_[np.inf, thresholds]
    with np.errstate(invalid="ignore", divide="ignore"):
        fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
        tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr, thresholds


def precision_recall_curve(
    y: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``precision, recall, thresholds``: sklearn's ``precision_recall_curve`` (increasing
    thresholds; a last point of precision 1 at recall 0)."""
    fps, tps, thresholds = _descending(y, scores)
    called = tps + fps
    precision = np.divide(tps, called, out=np.zeros_like(tps), where=called != 0)
    recall = np.ones_like(tps) if tps[-1] == 0 else tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def average_precision(y: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall step curve: sklearn's ``average_precision_score``."""
    precision, recall, _ = precision_recall_curve(y, scores)
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def confusion_matrix(truth: np.ndarray, guess: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """Counts of (actual ``labels[i]``, predicted ``labels[j]``); pairs outside ``labels`` are
    not counted (sklearn's ``confusion_matrix`` with ``labels``)."""
    labels = list(labels)
    k, where = len(labels), {label: i for i, label in enumerate(labels)}
    rows = np.array([where.get(v, -1) for v in np.asarray(truth).tolist()], dtype=int)
    cols = np.array([where.get(v, -1) for v in np.asarray(guess).tolist()], dtype=int)
    known = (rows >= 0) & (cols >= 0)
    flat = np.bincount(rows[known] * k + cols[known], minlength=k * k)
    return flat.reshape(k, k)


def one_vs_rest_counts(truth: np.ndarray, guess: np.ndarray, k: int) -> np.ndarray:
    """(k, 4) tn, fp, fn, tp of each class against the rest: sklearn's
    ``multilabel_confusion_matrix(truth, guess, labels=range(k)).reshape(k, 4)``."""
    matrix = confusion_matrix(truth, guess, range(k))
    tp = np.diag(matrix)
    fp, fn = matrix.sum(axis=0) - tp, matrix.sum(axis=1) - tp
    tn = matrix.sum() - tp - fp - fn
    return np.stack([tn, fp, fn, tp], axis=1)
