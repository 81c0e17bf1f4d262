"""A trained model's headline numbers (and its test evaluation's): one small JSON per model
folder, for DVC metrics."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import pandas as pd

from cxr.core.atomic import atomic_path
from cxr.core.readers import first_line, read_json_object, value_at

RUN = "a run.json written by cxr train"
METRICS = "a metrics.json written by cxr evaluate"


def _history(path: Path) -> pd.DataFrame:
    """The history.csv of a ``cxr train`` folder (one row per epoch)."""
    try:
        history = pd.read_csv(path)
    except Exception as err:  # pandas raises many types for an empty or binary file
        raise ValueError(f"{path}: cannot read this training history ({first_line(err)})") from err
    if "epoch" not in history:
        raise ValueError(f"{path}: no column epoch: not a history.csv written by cxr train")
    return history


def _number(value: object, where: str) -> float:
    """``value`` as a float; ValueError naming ``where`` if it is not a finite number."""
    if not isinstance(value, bool):
        with contextlib.suppress(TypeError, ValueError):
            number = float(value)  # type: ignore[arg-type]
            if math.isfinite(number):
                return number
    raise ValueError(f"{where} is {value!r}, not a number")


def summarize(model: str | Path) -> dict:
    """The numbers of a ``cxr train`` folder: where it belongs, and its kept epoch's metrics.

    The kept epoch is the one with the lowest validation loss (the weights in model.pt); its
    row of history.csv gives the validation metrics (``val_auroc`` or ``val_accuracy``).
    """
    model = Path(model)
    path = model / "run.json"
    run = read_json_object(path, RUN)

    def get(key: str) -> object:
        return value_at(run, path, key, RUN)

    def number(key: str) -> float:
        return _number(get(key), f"{path}: {key}")

    history = _history(model / "history.csv")
    best = int(number("best_epoch"))
    kept = history.loc[history["epoch"] == best]
    if kept.empty:
        raise ValueError(f"{model}: history.csv has no row for the kept epoch {best}")
    row = kept.iloc[0]
    metrics = {  # undefined (NaN: validation of one class) is null
        k: None if pd.isna(row[k]) else _number(row[k], f"{model}/history.csv: {k} of {best}")
        for k in ("val_auroc", "val_accuracy")
        if k in row
    }
    init = run.get("init")
    return {
        "study": get("recipe.study"),
        "stage": get("recipe.stage"),
        "column": get("data.split_column"),
        "run_id": get("run_id"),
        "epochs_run": int(number("epochs_run")),
        "best_epoch": best,
        "val_loss": number("best_val_loss"),
        **metrics,
        "training_s": round(number("timings.training_s"), 1),
        "carried_tensors": len(init.get("carried", [])) if isinstance(init, dict) else 0,
    }


#: Headline numbers of an evaluation's metrics.json carried into the summary, as ``test_<key>``.
EVALUATION_KEYS = ("auroc_macro", "auroc_macro_ci", "auroc_micro", "accuracy_overall",
                   "label_accuracy", "ece_macro")  # fmt: skip


def evaluation_headline(evaluation: str | Path, run_id: str) -> dict:
    """The headline test numbers of a ``cxr evaluate`` folder (those it holds), which must
    evaluate the model of MLflow run ``run_id``."""
    path = Path(evaluation) / "metrics.json"
    if not path.is_file():
        raise ValueError(f"{evaluation}: holds no metrics.json: not a folder cxr evaluate wrote")
    metrics = read_json_object(path, METRICS)
    value_at(metrics, path, "task", METRICS)
    model = metrics.get("model") if isinstance(metrics.get("model"), dict) else {}
    evaluated = model.get("run_id") or metrics.get("run_id")
    if not evaluated:
        raise ValueError(
            f"{path}: names no model run, so it cannot be told to evaluate run {run_id}: "
            "evaluate with --model (or the model's own predictions/test.parquet)"
        )
    if evaluated != run_id:
        folder = model.get("folder") or "folder not recorded"
        raise ValueError(
            f"{path}: evaluates the model of run {evaluated} ({folder}), not this model's run "
            f"{run_id}: give the evaluation of this model"
        )
    return {f"test_{k}": metrics[k] for k in EVALUATION_KEYS if metrics.get(k) is not None}


def write_summary(model: str | Path, out: str | Path, evaluation: str | Path | None = None) -> dict:
    """Write :func:`summarize` of ``model`` (plus the headline of its ``evaluation`` folder)
    to ``out`` (JSON) atomically; return it."""
    summary = summarize(model)
    if evaluation is not None:
        summary |= evaluation_headline(evaluation, str(summary["run_id"]))
    with atomic_path(out) as work:
        work.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
