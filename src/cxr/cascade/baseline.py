"""What the cascade's end-to-end accuracy is measured against: the best constant answer (the
majority baseline), and the bootstrap interval of the accuracy itself.

An image is right end to end when its route is right (its type, or "not an X-ray") and, for a
chest X-ray with known findings, its verdict (abnormal or normal). A constant answer is one
type and one verdict, given to every image: it is right on the images of that type whose
verdict it matches or whose findings are unknown. The majority baseline is the best such answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxr.evaluation.bootstrap import bootstrap_accuracy, percentile_interval

#: The bootstrap of the end-to-end accuracy: as ``cxr evaluate``'s, over images.
BOOTSTRAP = {"resamples": 1000, "seed": 0, "level": 0.95, "unit": "image", "method": "percentile"}
#: The columns of predictions.csv (``cxr cascade-evaluate``) that :func:`baselines` reads.
COLUMNS = ("true_type", "true_abnormal", "end_to_end_right")


def majority_baseline(true_type: pd.Series, true_abnormal: pd.Series) -> tuple[str, float] | None:
    """(answer, share of images it gets right) of the best constant answer, e.g.
    ``("chest, normal", 0.41)``; None for no images. Ties: the first answer in sorted order."""
    types = true_type.astype(str).to_numpy()
    abnormal = pd.array(true_abnormal, dtype="boolean")
    known = ~np.asarray(abnormal.isna())
    is_abnormal = np.asarray(abnormal.fillna(False), dtype=bool)
    if not len(types):
        return None
    best: tuple[str, float] | None = None
    for kind in sorted(set(types)):
        of_kind = types == kind
        answers = [(kind, of_kind)]  # a type without known findings: its route only
        if (of_kind & known).any():
            answers = [
                (f"{kind}, {word}", of_kind & (~known | (is_abnormal == value)))
                for word, value in (("abnormal", True), ("normal", False))
            ]
        for answer, right in answers:
            share = float(right.mean())
            if best is None or share > best[1]:
                best = (answer, share)
    return best


def accuracy_interval(right: pd.Series) -> list[float] | None:
    """The 95% percentile bootstrap interval of the share of ``right`` images (None for none)."""
    right = np.asarray(pd.array(right, dtype="boolean").fillna(False), dtype=float)
    if not len(right):
        return None
    each_alone = np.arange(len(right))  # every image its own resampling unit
    samples = bootstrap_accuracy(right, each_alone, BOOTSTRAP["resamples"], BOOTSTRAP["seed"])
    return percentile_interval(samples, BOOTSTRAP["level"])


def baselines(predictions: pd.DataFrame) -> dict:
    """metrics.json's entries of a ``predictions.csv`` of ``cxr cascade-evaluate``: the
    end-to-end accuracy's interval and the majority baseline (answer and share)."""
    majority = majority_baseline(predictions["true_type"], predictions["true_abnormal"])
    return {
        "end_to_end_accuracy_ci": accuracy_interval(predictions["end_to_end_right"]),
        "majority_class": majority[0] if majority else None,
        "majority_share": majority[1] if majority else None,
        "bootstrap": dict(BOOTSTRAP),
    }
