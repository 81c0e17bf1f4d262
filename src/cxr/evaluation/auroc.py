"""AUROC as the Mann-Whitney statistic, in numpy and pandas: a training job scores its
validation side, and an evaluation its test side, without importing sklearn."""

from __future__ import annotations

import numpy as np
import pandas as pd


def rank_auroc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of 0/1 labels ``y`` (both present) as the Mann-Whitney statistic, ties
    counted half: sklearn's value (to 1e-12); training's validation AUROC."""
    ranks = pd.Series(scores).rank().to_numpy()
    positive = y == 1
    n1 = int(positive.sum())
    n0 = len(y) - n1
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
