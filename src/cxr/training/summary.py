"""A trained model's headline numbers (and its test evaluation's): one small JSON per model
folder, for DVC metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cxr.atomic import atomic_path


def summarize(model: str | Path) -> dict:
    """The numbers of a ``cxr train`` folder: where it belongs, and its kept epoch's metrics.

    The kept epoch is the one with the lowest validation loss (the weights in model.pt); its
    row of history.csv gives the validation metrics (``val_auroc`` or ``val_accuracy``).
    """
    model = Path(model)
    run = json.loads((model / "run.json").read_text())
    history = pd.read_csv(model / "history.csv")
    kept = history.loc[history["epoch"] == run["best_epoch"]]
    if kept.empty:
        raise ValueError(f"{model}: history.csv has no row for the kept epoch {run['best_epoch']}")
    row = kept.iloc[0]
    metrics = {k: float(row[k]) for k in ("val_auroc", "val_accuracy") if k in row}
    return {
        "study": run["recipe"]["study"],
        "stage": run["recipe"]["stage"],
        "column": run["data"]["split_column"],
        "run_id": run["run_id"],
        "epochs_run": int(run["epochs_run"]),
        "best_epoch": int(run["best_epoch"]),
        "val_loss": float(run["best_val_loss"]),
        **metrics,
        "training_s": round(float(run["timings"]["training_s"]), 1),
        "carried_tensors": len((run.get("init") or {}).get("carried", [])),
    }


#: Headline numbers of an evaluation's metrics.json carried into the summary, as ``test_<key>``.
EVALUATION_KEYS = ("auroc_macro", "auroc_macro_ci", "auroc_micro", "accuracy_overall",
                   "label_accuracy", "ece_macro")  # fmt: skip


def evaluation_headline(evaluation: str | Path) -> dict:
    """The headline test numbers of a ``cxr evaluate`` folder (those it holds)."""
    metrics = json.loads((Path(evaluation) / "metrics.json").read_text())
    return {f"test_{k}": metrics[k] for k in EVALUATION_KEYS if metrics.get(k) is not None}


def write_summary(model: str | Path, out: str | Path, evaluation: str | Path | None = None) -> dict:
    """Write :func:`summarize` of ``model`` (plus the headline of its ``evaluation`` folder)
    to ``out`` (JSON) atomically; return it."""
    summary = summarize(model)
    if evaluation is not None:
        summary |= evaluation_headline(evaluation)
    with atomic_path(out) as work:
        work.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
