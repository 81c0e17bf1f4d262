"""`cxr evaluate`: score a predictions file against an ingested index, into one folder.

The folder (written atomically: complete or not at all) holds ``metrics.json``, the tables
``metrics.{csv,md}`` (per finding / class, the papers' numbers beside ours) and
``headline.csv``, the point files ``roc.csv``, ``pr.csv``, ``calibration.csv`` and (binary
or multi-class) ``confusion.csv`` (one row per image) and ``confusion_matrix.csv`` that
``dvc plots`` reads, and the figures ``roc.png``, ``pr.png``, ``confusion.png`` and
``reliability.png``. Given a run id (or a ``cxr train`` folder, whose run.json names its run),
the headline metrics and the folder are also logged to that MLflow run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from cxr import tracking
from cxr.core.atomic import atomic_path
from cxr.core.readers import read_json_object
from cxr.evaluation import curves, figures, tables
from cxr.evaluation.inputs import Cohort, align, named
from cxr.evaluation.metrics import (
    Thresholds,
    calibration_tables,
    choose_thresholds,
    classes,
    compute,
    decide,
    flatten,
)
from cxr.evaluation.paper import Paper, Reference, references

#: Metrics logged to MLflow: headline numbers, and these per output.
LOGGED = ("auroc", "sensitivity", "specificity", "ece")


def run_id_of(model: str | Path) -> str:
    """The MLflow run id in the run.json of a ``cxr train`` folder."""
    path = Path(model) / "run.json"
    run_id = read_json_object(path, "a run.json written by cxr train").get("run_id")
    if not run_id or not isinstance(run_id, str):
        raise ValueError(f"{path}: names no MLflow run (run_id)")
    return run_id


def model_of(predictions: str | Path) -> Path | None:
    """The ``cxr train`` folder that wrote ``predictions`` (``<model>/predictions/<side>``),
    or None for predictions from elsewhere."""
    path = Path(predictions)
    folder = path.parent.parent
    if path.parent.name == "predictions" and (folder / "run.json").is_file():
        return folder
    return None


def origin(
    predictions: Path, val_predictions: Path | None, model: str | Path | None
) -> dict[str, str | None]:
    """The model the predictions come from (``folder``, MLflow ``run_id``): ``model``, else the
    ``cxr train`` folder holding them. Refuses files of different models (run ids)."""
    claims = {f"--model {model}": Path(model)} if model is not None else {}
    for path in (predictions, val_predictions):
        folder = model_of(path) if path is not None else None
        if folder is not None:
            claims[str(path)] = folder
    runs = {who: run_id_of(folder) for who, folder in claims.items()}
    if len(set(runs.values())) > 1:
        named = "; ".join(f"{who}: run {run} ({claims[who]})" for who, run in runs.items())
        raise ValueError(f"these files come from different trained models: {named}")
    folder = Path(model) if model is not None else model_of(predictions)
    if folder is None:  # predictions from elsewhere (validation ones alone do not say)
        return {"folder": None, "run_id": None}
    return {"folder": str(folder), "run_id": run_id_of(folder)}


def _check_overlap(cohort: Cohort, val: Cohort) -> None:
    """Refuse validation predictions of test images: thresholds chosen on the images scored."""
    shared = np.intersect1d(cohort.image_ids, val.image_ids)
    if len(shared):
        raise ValueError(
            f"{val.report['predictions']}: {len(shared)} of its image(s) are also in "
            f"{cohort.report['predictions']} (e.g. {', '.join(named(shared)['first'])}): "
            "thresholds must be chosen on validation images, not on the images evaluated"
        )


def evaluate(
    predictions: str | Path,
    labels: str | Path,
    out: str | Path,
    *,
    val_predictions: str | Path | None = None,
    threshold: str | float | None = None,
    task: str | None = None,
    split: str | Path | None = None,
    split_column: str = "split",
    side: str = "test",
    source_split: str | None = None,
    id_column: str | None = None,
    normal: str = "Normal",
    paper: Paper = None,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    run_id: str | None = None,
    model: str | Path | None = None,
    prefix: str = "test",
    allow_partial: bool = False,
) -> dict:
    """Evaluate ``predictions`` against the index ``labels``; write ``out``; return metrics.

    ``threshold``: ``"youden"`` (per output on ``val_predictions``; the default when they are
    given), ``"fixed"`` (0.5, the default otherwise) or a number. ``split``/``split_column``/
    ``side`` or ``source_split`` say which index images the predictions should cover (see
    :mod:`cxr.evaluation.inputs`; ``allow_partial`` evaluates predictions that miss some).
    ``paper``: published numbers to print beside ours (a name of
    :data:`cxr.evaluation.paper.REFERENCES`, a Reference, or ``{finding: AUROC}``).
    ``run_id`` or ``model``: log to that MLflow run, metrics named ``<prefix>/<metric>``.
    metrics.json records the model the predictions come from (``model``: folder, run id).
    """
    if split is not None and source_split is not None:
        raise ValueError("--split and --source-split both say which images to cover: give one")
    refs = references(paper)
    source = origin(Path(predictions), val_predictions and Path(val_predictions), model)
    if model is not None and run_id is None:
        run_id = source["run_id"]
    if run_id:
        tracking.check_store()  # an unreachable server fails now, not after the work
    where = {"split": split, "split_column": split_column, "id_column": id_column}
    where |= {"allow_partial": allow_partial}
    cohort = align(predictions, labels, task=task, side=side, source_split=source_split, **where)
    val = None
    if val_predictions is not None:
        val = validation(val_predictions, labels, cohort, **where)
    thresholds, how = thresholds_of(cohort, threshold, val)
    return score(
        cohort, thresholds, how, out, refs=refs, resamples=resamples, seed=seed, level=level,
        normal=normal, run_id=run_id, model=source, prefix=prefix,
    )  # fmt: skip


def validation(val_predictions: str | Path, labels: str | Path, cohort: Cohort, **where) -> Cohort:
    """Validation predictions aligned as ``cohort``'s (its task and outputs, their own images
    as the scope), refused if they hold an image of ``cohort``."""
    val = align(
        val_predictions,
        labels,
        task=cohort.task,
        side="val",
        outputs=cohort.outputs,
        coverage=False,
        **where,
    )
    _check_overlap(cohort, val)
    return val


def thresholds_of(
    cohort: Cohort, threshold: str | float | None, val: Cohort | None
) -> tuple[dict[str, float], dict]:
    """Each output's threshold and how it was chosen (multi-class: argmax, no threshold)."""
    if cohort.task == "multiclass":
        return {}, {"method": "argmax", "rule": "the class of highest probability"}
    return choose_thresholds(cohort, threshold, val)


def score(
    cohort: Cohort,
    thresholds: Thresholds,
    how: dict,
    out: str | Path,
    *,
    refs: tuple[Reference, ...] = (),
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    normal: str = "Normal",
    run_id: str | None = None,
    model: dict | None = None,
    prefix: str = "test",
    extra: Mapping[str, dict] | None = None,
) -> dict:
    """Score ``cohort`` at ``thresholds`` (chosen as ``how`` records), write folder ``out``,
    log to MLflow run ``run_id`` if given; return the metrics. ``model``: the model evaluated
    (``folder``, ``run_id``); ``extra``: sections ``{name: content}`` recorded in metrics.json
    and written beside it as ``<name>.json``."""
    extra = dict(extra or {})
    metrics = {
        "task": cohort.task,
        "outputs": list(cohort.outputs),
        "alignment": cohort.report,
        "threshold": how,
        **compute(cohort, thresholds, resamples, seed, level, normal),
        "paper": {ref.label: ref.metrics for ref in refs},
        "run_id": run_id,
        "model": model or {"folder": None, "run_id": None},
        **extra,
    }
    with atomic_path(out) as work:
        work.mkdir()
        write_folder(work, cohort, thresholds, metrics, refs)
        for name, content in extra.items():
            text = json.dumps(content, indent=2, allow_nan=False)
            (work / f"{name}.json").write_text(text + "\n")
    if run_id:
        tracking.log_to_run(run_id, logged_metrics(metrics, prefix), Path(out), "evaluation")
    return metrics


def logged_metrics(metrics: dict, prefix: str) -> dict[str, float]:
    """The headline and per-output metrics to log, with MLflow-safe names."""
    flat = flatten(metrics)
    keep = {k: v for k, v in flat.items() if "/" not in k or k.split("/")[0] in LOGGED}
    return {re.sub(r"[^\w\-. /]", "_", f"{prefix}/{k}"): v for k, v in keep.items()}


def write_folder(
    work: Path,
    cohort: Cohort,
    thresholds: Thresholds,
    metrics: dict,
    refs: tuple[Reference, ...],
) -> None:
    """Every file of the output folder into ``work``."""
    (work / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    per_output = tables.per_output(metrics, refs)
    head = tables.headline(metrics, refs)
    per_output.to_csv(work / "metrics.csv", index=False)
    head.to_csv(work / "headline.csv", index=False)
    sections = [
        f"# Evaluation of {metrics['alignment']['predictions']}\n",
        _alignment_text(metrics),
        "## Headline\n",
        tables.markdown(head),
        *_majority_text(metrics),
        "## Per finding / class\n",
        tables.markdown(per_output),
    ]
    roc, pr = curves.roc_points(cohort), curves.pr_points(cohort)
    roc.to_csv(work / "roc.csv", index=False)
    pr.to_csv(work / "pr.csv", index=False)
    figures.roc_figure(roc, metrics["auroc"], work / "roc.png")
    figures.pr_figure(pr, metrics["average_precision"], work / "pr.png")
    calibration = calibration_tables(cohort)
    curves.calibration_points(calibration).to_csv(work / "calibration.csv", index=False)
    figures.reliability_figure(calibration, metrics["ece"], work / "reliability.png")
    predicted = decide(cohort, thresholds)
    if "confusion" in metrics:
        labels, truth, guess = classes(cohort, predicted)
        curves.confusion_points(labels, truth, guess).to_csv(work / "confusion.csv", index=False)
        matrix = tables.confusion_frame(labels, metrics["confusion"]["matrix"])
        matrix.to_csv(work / "confusion_matrix.csv", index=False)
        sections += ["## Confusion matrix (rows actual)\n", tables.markdown(matrix)]
        figures.confusion_figure(
            labels, matrix.iloc[:, 1:].to_numpy(), work / "confusion.png", "Confusion matrix"
        )
    else:
        counts = {o: tuple(metrics[c][o] for c in ("tn", "fp", "fn", "tp")) for o in cohort.outputs}
        figures.confusion_grid(counts, work / "confusion.png", "Confusion matrices at threshold")
    if "predicted_as_normal" in metrics:
        normal = pd.DataFrame(
            list(metrics["predicted_as_normal"].items()), columns=["class", "predicted Normal"]
        )
        normal.to_csv(work / "predicted_as_normal.csv", index=False)
        sections += ["## Images of each class predicted Normal\n", tables.markdown(normal)]
    (work / "metrics.md").write_text("\n".join(sections))


def _alignment_text(metrics: dict) -> str:
    """The lines of metrics.md saying which images were evaluated and which were not."""
    report = metrics["alignment"]
    lines = [
        f"- labels: {report['labels']}; scope: {report['scope']}",
        f"- images evaluated: {report['images_evaluated']}",
    ]
    for key in (
        "predictions_missing_from_labels",
        "labels_missing_from_predictions",
        "predictions_outside_scope",
    ):
        if report[key]["count"]:
            first = ", ".join(report[key]["first"])
            lines.append(f"- {key.replace('_', ' ')}: {report[key]['count']} (e.g. {first})")
    if report["partial_allowed"]:
        lines.append("- PARTIAL: --allow-partial evaluated the images both files hold")
    how = metrics["threshold"]
    lines.append(f"- threshold: {how['method']} ({how['rule']})")
    if how.get("fallback_0.5"):
        lines.append(
            "- threshold 0.5, not Youden's (the validation labels hold one class, or none): "
            + ", ".join(how["fallback_0.5"])
        )
    boot = metrics["bootstrap"]
    what = "AUROC and accuracy" if "accuracy_overall_ci" in metrics else "AUROC"
    lines.append(
        f"- {what} intervals: {boot['level']:.0%} {boot['method']} bootstrap, "
        f"{boot['resamples']} resamples of {boot['unit']}s, seed {boot['seed']}"
    )
    if "pooled" in metrics:
        folds = metrics["pooled"]["folds"]
        each = ", ".join(f"{fold['model']} ({fold['images']})" for fold in folds)
        lines.append(f"- pooled: the test sides of {len(folds)} folds: {each}")
    return "\n".join(lines) + "\n"


def _majority_text(metrics: dict) -> list[str]:
    """The line of metrics.md naming the majority class a multi-class accuracy should beat."""
    if "majority_class" not in metrics:
        return []
    return [
        f"Majority class: {metrics['majority_class']} ({metrics['majority_share']:.1%} of the "
        "images evaluated): always guessing it would score an accuracy of "
        f"{metrics['majority_share']:.3f} (row majority_share).\n"
    ]
