"""Result tables: per finding / class and headline numbers, with the papers' numbers beside
ours; as CSV and Markdown."""

from __future__ import annotations

import math

import pandas as pd

from cxr.evaluation.paper import Reference

#: Per-output columns of the table, in order (``auroc`` is followed by its interval).
COLUMNS = (
    "images",
    "positives",
    "auroc",
    "average_precision",
    "threshold",
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "f1",
    "accuracy",
    "balanced_accuracy",
    "prevalence",
    "detection_rate",
    "detection_prevalence",
    "ece",
    "tp",
    "fp",
    "fn",
    "tn",
)
#: Headline metrics, in order, where present.
HEADLINE = (
    "auroc_macro",
    "auroc_micro",
    "accuracy_overall",
    "majority_share",
    "label_accuracy",
    "label_accuracy_at_0.5",
    "ece_macro",
)


def paper_value(reference: Reference, metric: str, output: str, outputs: list[str]) -> float:
    """The paper's ``metric`` of ``output`` (``"*"``: the single output), NaN if not given."""
    values = reference.per_output().get(metric, {})
    if output in values:
        return float(values[output])
    return float(values["*"]) if "*" in values and len(outputs) == 1 else math.nan


def per_output(metrics: dict, references: tuple[Reference, ...] = ()) -> pd.DataFrame:
    """One row per finding / class; each paper column follows the metric it reports."""
    outputs = list(metrics["auroc"])
    frame = pd.DataFrame({"finding": outputs})
    for column in COLUMNS:
        if column == "auroc":
            ci = [metrics["auroc_ci"][o] or [None, None] for o in outputs]
            frame["auroc"] = [metrics["auroc"][o] for o in outputs]
            frame["auroc_low"] = [c[0] for c in ci]
            frame["auroc_high"] = [c[1] for c in ci]
        elif column == "threshold":
            frame["threshold"] = _thresholds(metrics["threshold"], outputs)
        else:
            frame[column] = [metrics[column].get(o) for o in outputs]
        for ref in references:
            if column in ref.per_output():
                frame[f"{ref.label} {column}"] = [
                    paper_value(ref, column, o, outputs) for o in outputs
                ]
    return frame


def _thresholds(how: dict, outputs: list[str]) -> list[float] | str:
    """The threshold column: each output's, or how the images were classified without one
    (``argmax``; ``per fold`` where pooled folds each had their own)."""
    values = how.get("values")
    if values:
        return [values[o] for o in outputs]
    return "argmax" if how["method"] == "argmax" else "per fold"


def headline(metrics: dict, references: tuple[Reference, ...] = ()) -> pd.DataFrame:
    """One row per headline metric: ours (with its interval ``<metric>_ci``, where there is
    one) and each paper's."""
    names = [m for m in HEADLINE if m in metrics]
    names += [m for ref in references for m in ref.headline() if m not in names]
    frame = pd.DataFrame(
        {
            "metric": names,
            "value": [metrics.get(m) for m in names],
            "ci": [metrics.get(f"{m}_ci") or None for m in names],
        }
    )
    for ref in references:
        frame[ref.label] = [ref.headline().get(m, math.nan) for m in names]
    return frame


def _cell(value: object, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, list):
        return "[" + ", ".join(_cell(v, digits) for v in value) + "]"
    return str(value)


def markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub Markdown table; floats with ``digits`` decimals, missing values blank."""
    head = [str(c) for c in frame.columns]
    rows = [[_cell(v, digits) for v in row] for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def confusion_frame(labels: list[str], matrix: list[list[int]]) -> pd.DataFrame:
    """The confusion matrix as a table: one row per actual class, one column per predicted."""
    frame = pd.DataFrame(matrix, columns=[f"pred {n}" for n in labels])
    frame.insert(0, "actual", labels)
    return frame
