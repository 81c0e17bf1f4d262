"""Bootstrap confidence intervals of ROC AUC, resampling patients (or images), vectorised.

A resample is how many times each patient was drawn; each of its images counts that many
times. The AUROC of a weighted sample is the Mann-Whitney statistic with those weights (ties
count one half). For a block of resamples at once, one sparse product turns the patients'
counts into the weight of positives and of negatives at each distinct score, and a cumulative
sum over the scores gives, per positive, the weight of the negatives scored below it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import sparse

#: Resample counts held in memory at once (resamples x distinct scores).
BLOCK = 2_000_000


def resample_counts(
    n_groups: int, resamples: int, seed: int, block_rows: int
) -> Iterator[np.ndarray]:
    """Blocks of (b, n_groups) counts: each resample draws ``n_groups`` groups with
    replacement. Deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, block_rows):
        b = min(block_rows, resamples - start)
        drawn = rng.integers(0, n_groups, size=(b, n_groups))
        offsets = (drawn + n_groups * np.arange(b)[:, None]).ravel()
        yield np.bincount(offsets, minlength=b * n_groups).reshape(b, n_groups).astype(float)


class WeightedAuroc:
    """AUROC of fixed labels, scores and groups (patients) under many resamples of the groups."""

    def __init__(self, y: np.ndarray, scores: np.ndarray, groups: np.ndarray, n_groups: int):
        _, level = np.unique(scores, return_inverse=True)
        y = np.asarray(y, np.float64)
        shape = (n_groups, int(level.max()) + 1 if len(level) else 0)
        # per group and distinct score: how many positive / negative images
        self.pos = sparse.csr_matrix((y, (groups, level)), shape=shape)
        self.neg = sparse.csr_matrix((1.0 - y, (groups, level)), shape=shape)

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        """(b,) AUROC for (b, n_groups) counts; NaN where a resample leaves one class only."""
        pos = np.asarray(self.pos.T.dot(counts.T).T)
        neg = np.asarray(self.neg.T.dot(counts.T).T)
        below = np.cumsum(neg, axis=1) - 0.5 * neg  # negatives below, ties one half
        wins = np.einsum("ij,ij->i", pos, below)
        pairs = pos.sum(axis=1) * neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(pairs > 0, wins / pairs, np.nan)


def bootstrap_auroc(
    targets: np.ndarray, probs: np.ndarray, groups: np.ndarray, resamples: int, seed: int
) -> np.ndarray:
    """(resamples, k) AUROC of every output under the same resamples of ``groups``.

    ``targets`` (n, k) holds 1 / 0 / NaN; an image of unknown label is left out of that
    output only. ``groups`` (n,) numbers the patients 0.. (or the images, to resample those).
    NaN where a resample lacks positives or negatives of an output.
    """
    groups = np.asarray(groups)
    n_groups = _count(groups)
    known = ~np.isnan(targets)
    scorers = [
        WeightedAuroc(targets[known[:, k], k], probs[known[:, k], k], groups[known[:, k]], n_groups)
        for k in range(targets.shape[1])
    ]
    if not n_groups:
        return np.full((resamples, targets.shape[1]), np.nan)
    blocks = [
        np.stack([score(counts) for score in scorers], axis=1)
        for counts in resample_counts(n_groups, resamples, seed, _block_rows(groups))
    ]
    return np.concatenate(blocks) if blocks else np.empty((0, targets.shape[1]))


def bootstrap_accuracy(
    correct: np.ndarray, groups: np.ndarray, resamples: int, seed: int
) -> np.ndarray:
    """(resamples,) share of ``correct`` (n,) images under the resamples of ``groups`` that
    :func:`bootstrap_auroc` draws for the same ``seed``: the two intervals are paired."""
    groups = np.asarray(groups)
    n_groups = _count(groups)
    if not n_groups:
        return np.full(resamples, np.nan)
    right = np.bincount(groups, weights=np.asarray(correct, float), minlength=n_groups)
    images = np.bincount(groups, minlength=n_groups).astype(float)
    blocks = [
        counts @ right / (counts @ images)
        for counts in resample_counts(n_groups, resamples, seed, _block_rows(groups))
    ]
    return np.concatenate(blocks) if blocks else np.empty(0)


def _count(groups: np.ndarray) -> int:
    """How many groups ``groups`` (numbered 0..) holds."""
    return int(groups.max()) + 1 if len(groups) else 0


def _block_rows(groups: np.ndarray) -> int:
    """Resamples drawn per block: the same for every statistic of the same images."""
    return max(1, BLOCK // max(len(groups), 1))


def percentile_interval(samples: np.ndarray, level: float) -> list[float] | None:
    """The percentile interval of the defined samples; None if none is defined."""
    samples = samples[~np.isnan(samples)]
    if not len(samples):
        return None
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return [float(low), float(high)]
