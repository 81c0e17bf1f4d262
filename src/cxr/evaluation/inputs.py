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
else the whole index. Predicted images absent from the index, and images of a given scope (a
split side, a source split) absent from the predictions, are refused (``allow_partial``
evaluates the others, recorded and warned about); images of the whole index absent from the
predictions, and predicted images outside the scope, are counted, named and not evaluated.
Truth columns that disagree with the index, and an alignment that leaves no image, are refused.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd

from cxr.core.readers import first_line
from cxr.data.index import FINDING_PREFIX, finding_columns, read_index
from cxr.splits.files import read_split_table

log = logging.getLogger(__name__)

#: Image id columns, in order of preference.
ID_COLUMNS = ("image_id", "Image Index")
PROB_PREFIX = "prob_"
#: How many ids a report names.
EXAMPLES = 5
TASKS = ("binary", "multilabel", "multiclass")
#: The alignment counts that --allow-partial lets through.
COVERAGE = ("predictions_missing_from_labels", "labels_missing_from_predictions")
#: The scope when nothing says which images the predictions cover: unpredicted ones are warned
#: about, not refused (the predictions may well be of one side only).
WHOLE_INDEX = "the whole index"
#: Columns of an index (cxr ingest) that the evaluation reads.
INDEX_COLUMNS = ("image_id", "label", "patient_id")


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
        raise ValueError(f"{path}: cannot read these predictions ({first_line(err)})") from err
    frame.columns = frame.columns.map(str)
    candidates = (id_column,) if id_column else ID_COLUMNS
    found = next((c for c in candidates if c in frame.columns), None)
    if found is None:
        raise ValueError(
            f"{path}: no image id column (expected {' or '.join(map(repr, candidates))}; "
            f"columns: {', '.join(frame.columns) or 'none'}; --id-column names another)"
        )
    ids = frame[found].astype(str)
    if ids.duplicated().any():
        raise ValueError(f"{path}: image ids listed twice: {named(ids[ids.duplicated()])}")
    frame = frame.drop(columns=[c for c in ID_COLUMNS if c in frame.columns and c != found])
    return frame.rename(columns={found: "image_id"}).assign(image_id=ids)


def _kind(table: pd.DataFrame) -> str:
    """What a table that is not an index seems to be, by its columns."""
    if any(c.startswith(PROB_PREFIX) for c in table.columns):
        return "a predictions file"
    if "split" in table or any(c.startswith("fold_") for c in table.columns):
        return "a split table (give it as --split)"
    return "a table of another kind"


def read_labels(path: str | Path) -> pd.DataFrame:
    """The index written by ``cxr ingest`` at ``path``, checked to be one, ids as str."""
    path = Path(path)
    try:
        index = read_index(path)
    except Exception as err:  # pyarrow raises many types for a file that is not Parquet
        raise ValueError(
            f"{path}: cannot read this index ({first_line(err)}); the labels are the "
            "index.parquet written by cxr ingest or cxr preprocess"
        ) from err
    index.columns = index.columns.map(str)
    absent = [c for c in INDEX_COLUMNS if c not in index]
    if absent:
        raise ValueError(
            f"{path}: {_kind(index)}, not an index written by cxr ingest (no column "
            f"{', '.join(absent)}; columns: {', '.join(index.columns) or 'none'})"
        )
    ids = index["image_id"].astype(str)
    if ids.duplicated().any():
        raise ValueError(f"{path}: image ids listed twice: {named(ids[ids.duplicated()])}")
    text = [c for c in finding_columns(index) if not pd.api.types.is_numeric_dtype(index[c])]
    if text:
        raise ValueError(f"{path}: finding columns that are not 1/0/NaN numbers: {text}")
    if index.empty:
        raise ValueError(f"{path}: the index holds no image")
    return index.assign(image_id=ids)


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


def _split_side(split: str | Path, split_column: str, side: str) -> pd.Series:
    """The image ids of ``side`` in column ``split_column`` of the split table ``split``."""
    table = read_split_table(split)
    table.columns = table.columns.map(str)
    absent = [c for c in ("image_id", split_column) if c not in table]
    if absent:
        raise ValueError(
            f"{split}: no column {', '.join(absent)} (columns: {', '.join(table.columns)}); "
            "--split takes a split table written by cxr split, --split-column one of its columns"
        )
    sides = sorted(set(table[split_column].dropna().astype(str)))
    if side not in sides:
        raise ValueError(
            f"{split}: column {split_column!r} has no side {side!r} "
            f"(its sides: {', '.join(sides) or 'none'})"
        )
    return table.loc[table[split_column].astype(str) == side, "image_id"].astype(str)


def _scope(
    index: pd.DataFrame,
    pred: pd.DataFrame,
    split: str | Path | None,
    split_column: str,
    side: str,
    source_split: str | None,
) -> tuple[str, pd.Index]:
    """A description of the scope and the index image ids in it."""
    ids = pd.Index(index["image_id"])
    if split is not None:
        chosen = _split_side(split, split_column, side)
        return f"{split}: {split_column} == {side}", ids[ids.isin(chosen)]
    if _truth_columns(pred):
        return "the predictions' own images (they carry truth columns)", ids[
            ids.isin(pred.image_id)
        ]
    if source_split is not None:
        own = index.get("source_split", pd.Series(dtype="string")).astype("string")
        chosen = (own == source_split).fillna(False).to_numpy(bool)
        if not chosen.any():
            known = ", ".join(sorted(own.dropna().unique())) or "none"
            raise ValueError(
                f"source split {source_split!r}: no image of the index has it: {known}"
            )
        return f"source_split == {source_split}", ids[chosen]
    return WHOLE_INDEX, ids


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
    allow_partial: bool = False,
) -> Cohort:
    """Read ``predictions`` and the index ``labels`` and pair them image by image.

    ``outputs`` (e.g. those of the test predictions, for validation ones) must be exactly
    those predicted. ``coverage=False`` (e.g. for validation predictions, used only to choose
    thresholds) takes the predictions' own images as the scope unless a split is given.
    Raises ValueError naming the file for unusable input: predicted images unknown to the
    labels or scope images not predicted (unless ``allow_partial``: then warns), truth
    columns that disagree with the labels, or no image left to evaluate.
    """
    predictions, labels = Path(predictions), Path(labels)
    pred = read_predictions(predictions, id_column)
    index = read_labels(labels)
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
        "partial_allowed": allow_partial,
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
    known = int((~np.isnan(targets)).any(axis=1).sum())
    _check_empty(report, len(pred), int(in_index.sum()), int(keep.sum()), known)
    _check_coverage(report, allow_partial)
    _check_truth(report)
    _warn(report)
    groups, patients_known = _groups(rows, ids)
    return Cohort(
        task=task,
        outputs=outputs,
        image_ids=ids.to_numpy(str),
        groups=groups,
        probs=probs,
        targets=targets,
        patients_known=patients_known,
        report=report,
    )


def _groups(rows: pd.DataFrame, ids: pd.Series) -> tuple[np.ndarray, bool]:
    """The group (0..) of each of ``ids``: its patient in ``rows`` (index rows by image id), or
    the image alone where unknown; and whether any patient was known."""
    patient = rows.loc[ids, "patient_id"].astype("string")
    alone = pd.Series(ids.to_numpy(), index=patient.index)
    groups = ("patient:" + patient).fillna("image:" + alone)
    return pd.factorize(groups)[0], bool(patient.notna().any())


def pool(cohorts: Sequence[Cohort], labels: str | Path) -> Cohort:
    """One cohort of the images of ``cohorts`` (aligned with the index ``labels``, of one task
    and outputs, no image in two), grouped by patient across them; its report sums theirs and
    keeps each under ``folds``."""
    first = cohorts[0]
    ids = pd.Series(np.concatenate([c.image_ids for c in cohorts]), dtype=str)
    if ids.duplicated().any():
        raise ValueError(f"images in more than one cohort: {named(ids[ids.duplicated()])}")
    groups, patients_known = _groups(read_labels(labels).set_index("image_id"), ids)
    return Cohort(
        task=first.task,
        outputs=first.outputs,
        image_ids=ids.to_numpy(str),
        groups=groups,
        probs=np.concatenate([c.probs for c in cohorts]),
        targets=np.concatenate([c.targets for c in cohorts]),
        patients_known=patients_known,
        report=_pooled_report([c.report for c in cohorts]),
    )


def _pooled_report(reports: list[dict]) -> dict:
    """The alignment report of pooled cohorts: counts summed, examples merged."""

    def merged(key: str) -> dict:
        found = [r[key] for r in reports]
        first = sorted(chain.from_iterable(f["first"] for f in found))[:EXAMPLES]
        return {"count": sum(f["count"] for f in found), "first": first}

    unlabelled = [r["unlabelled"] for r in reports]
    out = {
        "predictions": f"the pooled test predictions of {len(reports)} folds",
        "labels": reports[0]["labels"],
        "scope": "the images of each fold's predictions (each fold's test side)",
        **{key: merged(key) for key in (*COVERAGE, "predictions_outside_scope")},
        "partial_allowed": any(r["partial_allowed"] for r in reports),
        "unlabelled": (
            merged("unlabelled")
            if "count" in unlabelled[0]
            else {o: sum(u[o] for u in unlabelled) for o in unlabelled[0]}
        ),
        "truth_disagreements": {},
        "ignored_columns": sorted({c for r in reports for c in r["ignored_columns"]}),
        "images_evaluated": sum(r["images_evaluated"] for r in reports),
    }
    return out | {"folds": reports}


def _check_coverage(report: dict, allow_partial: bool) -> None:
    """Refuse predictions of images the labels lack, or that leave out images of a scope that
    was given (a split side or a source split)."""
    if allow_partial:
        return
    unknown = report["predictions_missing_from_labels"]
    missing = report["labels_missing_from_predictions"]
    problems = []
    if unknown["count"]:
        problems.append(
            f"{unknown['count']} predicted image(s) are not in the labels {report['labels']} "
            f"(e.g. {', '.join(unknown['first'])}): are these the labels of the predicted images?"
        )
    if missing["count"] and report["scope"] != WHOLE_INDEX:
        problems.append(
            f"{missing['count']} image(s) of {report['scope']} are not predicted "
            f"(e.g. {', '.join(missing['first'])})"
        )
    if problems:
        raise ValueError(
            f"{report['predictions']}: " + "; ".join(problems) + "; --allow-partial evaluates "
            "the images both files hold, and records it in metrics.json"
        )


def _check_empty(report: dict, predicted: int, labelled: int, paired: int, known: int) -> None:
    """Refuse an alignment that leaves no image with a known label to evaluate, saying why."""
    if known:
        return
    if not predicted:
        why = "the file holds no prediction"
    elif not labelled:
        why = (
            f"none of its {predicted} image(s) is in the labels {report['labels']}: are these "
            "the labels of the predicted images?"
        )
    elif not paired:
        why = f"none of its {predicted} image(s) lies in {report['scope']}"
    else:
        why = f"none of the {paired} image(s) in {report['scope']} has a known label"
    raise ValueError(f"{report['predictions']}: no image to evaluate: {why}")


def _check_truth(report: dict) -> None:
    """Refuse truth columns that disagree with the labels."""
    if report["truth_disagreements"]:
        counts = ", ".join(f"{c}: {n}" for c, n in report["truth_disagreements"].items())
        raise ValueError(
            f"{report['predictions']}: its truth columns disagree with the labels "
            f"{report['labels']} (images that differ, per column: {counts}); evaluate against "
            "the index the model was trained on"
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
            a, b = (pd.to_numeric(c, errors="coerce").to_numpy(np.float64) for c in (mine, theirs))
            same = (a == b) | (np.isnan(a) & np.isnan(b))  # a value that is no number differs
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
    partial = sum(report[k]["count"] for k in COVERAGE)
    if partial and report["partial_allowed"]:
        log.warning(
            "%s: PARTIAL evaluation (--allow-partial): %d image(s) predicted but not labelled "
            "or labelled but not predicted are left out; metrics.json records it",
            report["predictions"],
            partial,
        )
