"""Predictions read from any model and aligned with the labels of an ingested index.

A predictions file is the pipeline's ``predictions/<side>.parquet`` (``image_id``,
``prob_<output>``, and the truth columns it was trained against) or another model's CSV: an
image id column (``image_id``, or ``Image Index`` as in NIH's files) and one probability
column per finding or class, named ``prob_<Name>`` or ``<Name>`` (matched to the index's names
ignoring case, spaces and punctuation: ``Pleural Thickening`` is ``Pleural_Thickening``).

Images are never dropped silently. Which index images the predictions should cover (the
*scope*) is, in order: the ``side`` of a split table column if one is given; else the images
of the predictions themselves when they carry truth columns (the pipeline predicts every image
of a side, so its files cover their side by construction, and the other sides of the index are
not missing); else the index rows of a ``source_split`` (e.g. NIH's official ``test`` list);
else the whole index. Predicted images absent from the index, scope images absent from the
predictions, and predicted images outside the scope are counted and named; the last are not
evaluated.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cxr.index import FINDING_PREFIX, finding_columns, read_index
from cxr.split_io import read_split_table

log = logging.getLogger(__name__)

#: Image id columns, in order of preference.
ID_COLUMNS = ("image_id", "Image Index")
PROB_PREFIX = "prob_"
#: How many ids a report names.
EXAMPLES = 5
TASKS = ("binary", "multilabel", "multiclass")


@dataclass(frozen=True)
class Cohort:
    """Predictions and labels of the same images, row for row."""

    task: str  # binary, multilabel or multiclass
    outputs: tuple[str, ...]  # finding names, class names, or the positive label
    image_ids: np.ndarray  # (n,) str
    groups: np.ndarray  # (n,) int: patient of each image (an image alone if unknown)
    probs: np.ndarray  # (n, k) float in [0, 1]
    targets: np.ndarray  # (n, k) 1 / 0 / NaN (unknown); one-hot rows for multiclass
    patients_known: bool  # whether any patient id was known (bootstrap unit)
    report: dict  # how the two files were aligned, for metrics.json


def named(ids: pd.Series | np.ndarray | list) -> dict:
    """``{"count": n, "first": [up to EXAMPLES ids]}`` of a set of image ids."""
    ids = sorted(map(str, ids))
    return {"count": len(ids), "first": ids[:EXAMPLES]}


def read_predictions(path: str | Path, id_column: str | None = None) -> pd.DataFrame:
    """A predictions file (Parquet or CSV) with its image ids as ``image_id`` (str)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        else:
            frame = pd.read_parquet(path)
    except Exception as err:  # pandas and pyarrow raise many types for a bad file
        raise ValueError(f"{path}: cannot read these predictions ({err})") from err
    candidates = (id_column,) if id_column else ID_COLUMNS
    found = next((c for c in candidates if c in frame.columns), None)
    if found is None:
        raise ValueError(
            f"{path}: no image id column (expected {' or '.join(map(repr, candidates))}; "
            f"columns: {', '.join(map(str, frame.columns))})"
        )
    ids = frame[found].astype(str)
    if ids.duplicated().any():
        raise ValueError(f"{path}: image ids listed twice: {named(ids[ids.duplicated()])}")
    frame = frame.drop(columns=[c for c in ID_COLUMNS if c in frame.columns and c != found])
    return frame.rename(columns={found: "image_id"}).assign(image_id=ids)


def _key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.casefold())


def _truth_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(FINDING_PREFIX) or c == "label"]


def _matches(columns: list[str], names: list[str], path: Path) -> dict[str, str]:
    """``{column: name}`` for the columns that name one of ``names``."""
    by_key = {_key(n): n for n in names}
    found: dict[str, str] = {}
    for column in columns:
        name = by_key.get(_key(column.removeprefix(PROB_PREFIX)))
        if name is None:
            continue
        if name in found.values():
            raise ValueError(f"{path}: two probability columns for {name!r}")
        found[column] = name
    return found


def _outputs(
    frame: pd.DataFrame, index: pd.DataFrame, task: str | None, path: Path
) -> tuple[str, dict[str, str]]:
    """The task and ``{probability column: output}``, ordered as the index orders them."""
    columns = [c for c in frame.columns if c != "image_id" and c not in _truth_columns(frame)]
    findings = [c.removeprefix(FINDING_PREFIX) for c in finding_columns(index)]
    classes = sorted(index["label"].dropna().astype(str).unique())
    by_finding, by_class = _matches(columns, findings, path), _matches(columns, classes, path)
    if task is None:
        if len(by_class) >= 2 and len(by_class) > len(by_finding):
            task = "multiclass"
        elif by_finding or len(by_class) == 1:
            task = "binary" if len(by_finding or by_class) == 1 else "multilabel"
    elif task not in TASKS:
        raise ValueError(f"task {task!r}: one of {', '.join(TASKS)}")
    chosen = (
        by_class if task == "multiclass" or (task == "binary" and not by_finding) else by_finding
    )
    if task is None or not chosen:
        raise ValueError(
            f"{path}: no probability column matches a finding or class of the labels "
            f"(columns: {', '.join(columns) or 'none'}; findings: {', '.join(findings) or 'none'}"
            f"; classes: {', '.join(classes) or 'none'})"
        )
    if task == "binary" and len(chosen) != 1:
        raise ValueError(f"{path}: task binary needs one probability column, not {list(chosen)}")
    if task == "multiclass" and len(chosen) < len(classes):
        absent = sorted(set(classes) - set(chosen.values()))
        raise ValueError(f"{path}: multi-class predictions lack the classes {absent}")
    order = findings if chosen is by_finding else classes
    return task, dict(sorted(chosen.items(), key=lambda item: order.index(item[1])))


def _probabilities(frame: pd.DataFrame, columns: list[str], path: Path) -> np.ndarray:
    """The probability columns as floats, each checked to be a number in [0, 1]."""
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | ~values.between(0.0, 1.0)
        if bad.any():
            first = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(
                f"{path}: column {column!r} has {int(bad.sum())} value(s) that are not "
                f"probabilities in [0, 1] (e.g. {frame[column].iloc[first]!r} for image "
                f"{frame['image_id'].iloc[first]})"
            )
        frame[column] = values
    return frame[columns].to_numpy(np.float64)


def _targets(rows: pd.DataFrame, task: str, outputs: tuple[str, ...]) -> np.ndarray:
    """1 / 0 / NaN targets of ``rows`` of the index, one column per output."""
    if task == "multiclass" or f"{FINDING_PREFIX}{outputs[0]}" not in rows:
        labels = rows["label"].astype("string")
        known = labels.notna().to_numpy()
        hits = np.stack([(labels == o).fillna(False).to_numpy(bool) for o in outputs], axis=1)
        return np.where(known[:, None], hits, np.nan)
    return rows[[f"{FINDING_PREFIX}{o}" for o in outputs]].to_numpy(np.float64)


def _scope(
    index: pd.DataFrame,
    pred: pd.DataFrame,
    split: str | Path | None,
    split_column: str,
    side: str,
    source_split: str | None,
) -> tuple[str, pd.Index]:
    """A description of the scope and the index image ids in it."""
    ids = pd.Index(index["image_id"].astype(str))
    if split is not None:
        table = read_split_table(split)
        if split_column not in table or "image_id" not in table:
            raise ValueError(f"{split}: needs columns image_id and {split_column}")
        chosen = table.loc[table[split_column].astype(str) == side, "image_id"].astype(str)
        return f"{split}: {split_column} == {side}", ids[ids.isin(chosen)]
    if _truth_columns(pred):
        return "the predictions' own images (they carry truth columns)", ids[
            ids.isin(pred.image_id)
        ]
    if source_split is not None:
        chosen = index["source_split"].astype("string") == source_split
        return f"source_split == {source_split}", ids[chosen.fillna(False).to_numpy(bool)]
    return "the whole index", ids


def align(
    predictions: str | Path,
    labels: str | Path,
    *,
    task: str | None = None,
    split: str | Path | None = None,
    split_column: str = "split",
    side: str = "test",
    source_split: str | None = None,
    id_column: str | None = None,
    outputs: tuple[str, ...] | None = None,
    coverage: bool = True,
) -> Cohort:
    """Read ``predictions`` and the index ``labels`` and pair them image by image.

    ``outputs`` (e.g. those of the test predictions, for validation ones) must be exactly
    those predicted. ``coverage=False`` (e.g. for validation predictions, used only to choose
    thresholds) takes the predictions' own images as the scope unless a split is given.
    Raises ValueError naming the file for unusable input; warns about unmatched images.
    """
    predictions, labels = Path(predictions), Path(labels)
    pred = read_predictions(predictions, id_column)
    index = read_index(labels)
    index = index.assign(image_id=index["image_id"].astype(str))
    task, columns = _outputs(pred, index, task, predictions)
    if outputs is not None and tuple(columns.values()) != tuple(outputs):
        raise ValueError(
            f"{predictions}: outputs {list(columns.values())}, expected {list(outputs)}"
        )
    probs = _probabilities(pred, list(columns), predictions)
    if coverage or split is not None:
        scope, expected = _scope(index, pred, split, split_column, side, source_split)
    else:
        scope, expected = "the predictions' own images", pd.Index(pred.image_id)
    in_index = pred.image_id.isin(index.image_id).to_numpy()
    in_scope = pred.image_id.isin(expected).to_numpy()
    report = {
        "predictions": str(predictions),
        "labels": str(labels),
        "scope": scope,
        "predictions_missing_from_labels": named(pred.image_id[~in_index]),
        "labels_missing_from_predictions": named(expected[~expected.isin(pred.image_id)]),
        "predictions_outside_scope": named(pred.image_id[in_index & ~in_scope]),
    }
    keep = in_index & in_scope
    rows = index.set_index("image_id").loc[pred.image_id[keep]]
    outputs = tuple(columns.values())
    targets, probs, ids = _targets(rows, task, outputs), probs[keep], pred.image_id[keep]
    unknown = np.isnan(targets)
    if task == "multiclass":  # an image of no known class has no target at all
        report["unlabelled"] = named(ids[unknown.any(axis=1)])
        known = ~unknown.any(axis=1)
        targets, probs, ids = targets[known], probs[known], ids[known]
    else:
        report["unlabelled"] = {o: int(n) for o, n in zip(outputs, unknown.sum(0), strict=True)}
    report["truth_disagreements"] = _disagreements(pred[keep], rows)
    report["ignored_columns"] = [c for c in pred.columns if c not in {"image_id", *columns}]
    report["images_evaluated"] = len(ids)
    _warn(report)
    patient = rows.loc[ids, "patient_id"].astype("string")
    alone = pd.Series(ids.to_numpy(), index=patient.index)
    groups = ("patient:" + patient).fillna("image:" + alone)
    return Cohort(
        task=task,
        outputs=outputs,
        image_ids=ids.to_numpy(str),
        groups=pd.factorize(groups)[0],
        probs=probs,
        targets=targets,
        patients_known=bool(patient.notna().any()),
        report=report,
    )


def _disagreements(pred: pd.DataFrame, rows: pd.DataFrame) -> dict[str, int]:
    """Per truth column the predictions carry: images whose label differs from the index's."""
    out = {}
    for column in _truth_columns(pred):
        if column not in rows:
            continue
        mine, theirs = pred[column], rows[column]
        if column == "label":
            same = (
                mine.astype("string").fillna("").to_numpy()
                == theirs.astype("string").fillna("").to_numpy()
            )
        else:
            a, b = mine.to_numpy(np.float64), theirs.to_numpy(np.float64)
            same = (a == b) | (np.isnan(a) & np.isnan(b))
        if (~same).any():
            out[column] = int((~same).sum())
    return out


def _warn(report: dict) -> None:
    """Log a warning for every image that is not evaluated or not predicted."""
    for key, what in (
        ("predictions_missing_from_labels", "predicted images are not in the labels"),
        ("labels_missing_from_predictions", f"images of {report['scope']} are not predicted"),
        ("predictions_outside_scope", f"predicted images lie outside {report['scope']}"),
    ):
        if report[key]["count"]:
            log.warning(
                "%s: %d %s, e.g. %s",
                report["predictions"],
                report[key]["count"],
                what,
                ", ".join(report[key]["first"]),
            )
    if report["truth_disagreements"]:
        log.warning(
            "%s: labels differ from %s: %s",
            report["predictions"],
            report["labels"],
            report["truth_disagreements"],
        )
