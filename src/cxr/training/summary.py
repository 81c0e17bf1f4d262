"""A trained model's headline numbers: one small JSON per model folder, for DVC metrics."""

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


def write_summary(model: str | Path, out: str | Path) -> dict:
    """Write :func:`summarize` of ``model`` to ``out`` (JSON) atomically; return it."""
    summary = summarize(model)
    with atomic_path(out) as work:
        work.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
