"""The numbers of one evaluation: AUROC with bootstrap intervals, the caret-style report at a
threshold (seed 003), the 14-label accuracy (seed 001), confusion matrices, the images of each
disease predicted Normal (seed 004) and calibration. Metrics come from scikit-learn; only the
ratios of caret's report that scikit-learn lacks are derived here from its confusion counts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from cxr.evaluation.auroc import rank_auroc
from cxr.evaluation.bootstrap import bootstrap_accuracy, bootstrap_auroc, percentile_interval
from cxr.evaluation.calibration import BINS, expected_calibration_error, reliability
from cxr.evaluation.inputs import Cohort
from cxr.evaluation.ranking import (
    average_precision,
    confusion_matrix,
    one_vs_rest_counts,
    roc_curve,
)

log = logging.getLogger(__name__)

#: The default probability threshold, and the seeds' fixed one.
FIXED = 0.5
#: caret's confusionMatrix(...)$byClass, in its order, as metrics.json keys.
RATES = (
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "precision",
    "recall",
    "f1",
    "prevalence",
    "detection_rate",
    "detection_prevalence",
    "balanced_accuracy",
    "accuracy",
)


def _known(cohort: Cohort, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels (int) and probabilities of output ``k`` over the images whose label is known."""
    known = ~np.isnan(cohort.targets[:, k])
    return cohort.targets[known, k].astype(int), cohort.probs[known, k]


def auroc(y: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC; None (undefined) unless both classes occur."""
    return rank_auroc(y, scores) if len(np.unique(y)) == 2 else None


def _row_means(samples: np.ndarray) -> np.ndarray:
    """Mean of the defined values of each row; NaN for a row with none."""
    counts = (~np.isnan(samples)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.nansum(samples, axis=1) / counts, np.nan)


def _average_precision(y: np.ndarray, scores: np.ndarray) -> float | None:
    """Average precision (area under the PR curve); None without positives."""
    return average_precision(y, scores) if y.any() else None


def youden_threshold(y: np.ndarray, scores: np.ndarray) -> float | None:
    """The threshold maximising sensitivity + specificity (positive when score >= it);
    None unless both classes occur."""
    if len(np.unique(y)) < 2:
        return None
    fpr, tpr, thresholds = roc_curve(y, scores)
    return float(min(thresholds[int(np.argmax(tpr - fpr))], 1.0))


def rates(tn: int, fp: int, fn: int, tp: int) -> dict[str, float | None]:
    """caret's per-class report from confusion counts; None where a denominator is 0."""

    def ratio(a: float, b: float) -> float | None:
        return float(a / b) if b else None

    n = tn + fp + fn + tp
    sens, spec, ppv = ratio(tp, tp + fn), ratio(tn, tn + fp), ratio(tp, tp + fp)
    f1 = ratio(2 * tp, 2 * tp + fp + fn)
    return {
        "sensitivity": sens,
        "specificity": spec,
        "ppv": ppv,
        "npv": ratio(tn, tn + fn),
        "precision": ppv,
        "recall": sens,
        "f1": f1 if tp + fp and tp + fn else None,
        "prevalence": ratio(tp + fn, n),
        "detection_rate": ratio(tp, n),
        "detection_prevalence": ratio(tp + fp, n),
        "balanced_accuracy": (sens + spec) / 2 if sens is not None and spec is not None else None,
        "accuracy": ratio(tp + tn, n),
    }


def choose_thresholds(
    cohort: Cohort, threshold: str | float | None, val: Cohort | None
) -> tuple[dict[str, float], dict]:
    """Per-output thresholds: ``"fixed"`` (0.5), a number, or ``"youden"`` chosen on ``val``
    (the default when ``val`` is given); and how they were chosen, for metrics.json."""
    if threshold is None:
        threshold = "youden" if val is not None else "fixed"
    if isinstance(threshold, (int, float)):
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold {threshold}: not in [0, 1]")
        method, value = "fixed", float(threshold)
    elif threshold in ("fixed", "youden"):
        method, value = threshold, FIXED
    else:
        raise ValueError(f"threshold {threshold!r}: 'youden', 'fixed' or a number in [0, 1]")
    info = {"method": method, "rule": "positive when probability >= threshold"}
    if method == "youden":
        if val is None:
            raise ValueError(
                "threshold youden: needs validation predictions (--val-predictions) to choose it on"
            )
        chosen = {o: youden_threshold(*_known(val, k)) for k, o in enumerate(val.outputs)}
        fallback = sorted(o for o, t in chosen.items() if t is None)
        info |= _youden_method(fallback, len(chosen))
        info["per_output"] = {o: "fixed" if t is None else "youden" for o, t in chosen.items()}
        info["validation"] = val.report
        values = {o: FIXED if t is None else t for o, t in chosen.items()}
    else:
        values = dict.fromkeys(cohort.outputs, value)
    return values, info | {"values": values}


def _youden_method(fallback: list[str], outputs: int) -> dict:
    """What a requested Youden threshold became: ``method`` is "youden" only where every
    output got one; outputs whose validation labels hold one class (or none) get 0.5, named."""
    if not fallback:
        return {"method": "youden", "fallback_0.5": []}
    log.warning(
        "no Youden threshold for %s (the validation labels hold one class only, or none): "
        "0.5 is used instead, and metrics.json says so",
        ", ".join(fallback),
    )
    method = "fixed" if len(fallback) == outputs else "mixed"
    return {"method": method, "requested": "youden", "fallback_0.5": fallback}


#: Each output's threshold: one number, or one per image (pooled folds: each fold's own).
Thresholds = Mapping[str, float | np.ndarray]


def decide(cohort: Cohort, thresholds: Thresholds) -> np.ndarray:
    """(n, k) 0/1 predictions: at each output's threshold, or one-hot argmax (multiclass)."""
    if cohort.task == "multiclass":
        return np.eye(len(cohort.outputs), dtype=int)[cohort.probs.argmax(axis=1)]
    n = len(cohort.probs)
    cut = np.stack([np.broadcast_to(thresholds[o], (n,)) for o in cohort.outputs], axis=1)
    return (cohort.probs >= cut).astype(int)


def _counts(cohort: Cohort, predicted: np.ndarray) -> np.ndarray:
    """(k, 4) tn, fp, fn, tp per output over its known labels."""
    if cohort.task == "multiclass":
        k = len(cohort.outputs)
        truth, guess = cohort.targets.argmax(axis=1), predicted.argmax(axis=1)
        return one_vs_rest_counts(truth, guess, k)
    rows = []
    for k in range(len(cohort.outputs)):
        known = ~np.isnan(cohort.targets[:, k])
        if not known.any():  # no known label: no counts
            rows.append(np.zeros(4, int))
            continue
        y = cohort.targets[known, k].astype(int)
        rows.append(confusion_matrix(y, predicted[known, k], labels=[0, 1]).ravel())
    return np.array(rows).reshape(-1, 4)


def classes(cohort: Cohort, predicted: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Class names, actual and predicted class of each image of a binary (known label) or
    multi-class task."""
    if cohort.task == "multiclass":
        labels = list(cohort.outputs)
        return labels, cohort.targets.argmax(axis=1), predicted.argmax(axis=1)
    labels = [f"not {cohort.outputs[0]}", cohort.outputs[0]]
    known = ~np.isnan(cohort.targets[:, 0])
    return labels, cohort.targets[known, 0].astype(int), predicted[known, 0]


def calibration_tables(cohort: Cohort) -> dict[str, object]:
    """A reliability table per output (one-vs-rest), and the top label's for multi-class."""
    tables = {}
    for k, output in enumerate(cohort.outputs):
        y, p = _known(cohort, k)
        tables[output] = reliability(p, y)
    if cohort.task == "multiclass":
        right = cohort.probs.argmax(axis=1) == cohort.targets.argmax(axis=1)
        tables["top label"] = reliability(cohort.probs.max(axis=1), right)
    return tables


#: Sections of metrics.json that are not metrics.
NOT_METRICS = (
    "task",
    "outputs",
    "alignment",
    "threshold",
    "bootstrap",
    "paper",
    "run_id",
    "model",
    "pooled",
)


def flatten(metrics: dict) -> dict[str, float]:
    """The numbers of metrics.json as ``{"auroc_macro": v, "auroc/<output>": v, ...}``
    (undefined values, intervals, counts of images and the confusion matrix left out)."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if key in NOT_METRICS or key in ("confusion", "images", "positives", "ece_bins"):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[key] = float(value)
        elif isinstance(value, dict):
            for output, v in value.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    flat[f"{key}/{output}"] = float(v)
    return flat


def majority(cohort: Cohort) -> tuple[str, float]:
    """The most frequent true class of a multi-class cohort (the first in the outputs' order
    on a tie) and its share of the images: the accuracy of always guessing it."""
    counts = np.bincount(cohort.targets.argmax(axis=1), minlength=len(cohort.outputs))
    top = int(np.argmax(counts))
    return cohort.outputs[top], float(counts[top] / counts.sum())


def _multiclass_accuracy(
    cohort: Cohort, predicted: np.ndarray, resamples: int, seed: int, level: float
) -> dict:
    """Overall accuracy with its bootstrap interval (the AUROC's resamples), and the majority
    class baseline it should beat."""
    right = cohort.targets.argmax(axis=1) == predicted.argmax(axis=1)
    samples = bootstrap_accuracy(right, cohort.groups, resamples, seed)
    name, share = majority(cohort)
    return {
        "accuracy_overall": float(right.mean()),
        "accuracy_overall_ci": percentile_interval(samples, level),
        "majority_class": name,
        "majority_share": share,
    }


def compute(
    cohort: Cohort,
    thresholds: Thresholds,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    normal: str = "Normal",
) -> dict:
    """Every metric of ``cohort`` at ``thresholds``, as the JSON-able body of metrics.json."""
    outputs = cohort.outputs
    known = ~np.isnan(cohort.targets)
    points = [auroc(*_known(cohort, k)) for k in range(len(outputs))]
    samples = bootstrap_auroc(cohort.targets, cohort.probs, cohort.groups, resamples, seed)
    defined = [k for k, v in enumerate(points) if v is not None]
    y_all, p_all = cohort.targets[known].astype(int), cohort.probs[known]
    out: dict = {
        "auroc": dict(zip(outputs, points, strict=True)),
        "auroc_ci": {
            o: percentile_interval(samples[:, k], level) if points[k] is not None else None
            for k, o in enumerate(outputs)
        },
        "auroc_macro": float(np.mean([points[k] for k in defined])) if defined else None,
        "auroc_macro_ci": (
            percentile_interval(_row_means(samples[:, defined]), level) if defined else None
        ),
        "auroc_micro": auroc(y_all, p_all),
        "bootstrap": {
            "resamples": resamples,
            "seed": seed,
            "level": level,
            "unit": "patient" if cohort.patients_known else "image",
            "method": "percentile",
        },
        "average_precision": {
            o: _average_precision(*_known(cohort, k)) for k, o in enumerate(outputs)
        },
        "images": {o: int(n) for o, n in zip(outputs, known.sum(axis=0), strict=True)},
        "positives": {o: int(np.nansum(cohort.targets[:, k])) for k, o in enumerate(outputs)},
    }
    predicted = decide(cohort, thresholds)
    counts = _counts(cohort, predicted)
    report = [rates(*map(int, row)) for row in counts]
    for name in RATES:
        out[name] = {o: r[name] for o, r in zip(outputs, report, strict=True)}
    for j, name in enumerate(("tn", "fp", "fn", "tp")):
        out[name] = {o: int(c) for o, c in zip(outputs, counts[:, j], strict=True)}
    if cohort.task == "multiclass":
        out |= _multiclass_accuracy(cohort, predicted, resamples, seed, level)
    else:
        out["label_accuracy"] = float((counts[:, 0] + counts[:, 3]).sum() / counts.sum())
        at_half = _counts(cohort, decide(cohort, dict.fromkeys(outputs, FIXED)))
        out["label_accuracy_at_0.5"] = float((at_half[:, 0] + at_half[:, 3]).sum() / at_half.sum())
        if cohort.task == "binary":
            out["accuracy_overall"] = out["accuracy"][outputs[0]]
    if cohort.task != "multilabel":
        labels, truth, guess = classes(cohort, predicted)
        matrix = confusion_matrix(truth, guess, labels=range(len(labels)))
        out["confusion"] = {"labels": labels, "matrix": matrix.tolist()}
        if cohort.task == "multiclass" and normal in outputs:
            col = outputs.index(normal)
            out["predicted_as_normal"] = {
                o: int(matrix[k, col]) for k, o in enumerate(outputs) if o != normal
            }
    tables = calibration_tables(cohort)
    out["ece"] = {o: expected_calibration_error(t) for o, t in tables.items()}
    eces = [out["ece"][o] for o in outputs if out["ece"][o] is not None]
    out["ece_macro"] = float(np.mean(eces)) if eces else None
    out["ece_bins"] = BINS
    return out
