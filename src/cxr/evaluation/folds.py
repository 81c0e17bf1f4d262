"""Cross-validation: mean ± standard deviation of each metric over the folds' metrics.json,
and the table in the shape of seed 000's Table II (accuracy, specificity, sensitivity, in %)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cxr.atomic import atomic_path
from cxr.evaluation.metrics import flatten
from cxr.evaluation.paper import Paper, Reference, references
from cxr.evaluation.tables import markdown

#: Seed 000 Table II's columns.
TABLE = ("accuracy", "specificity", "sensitivity")


def _column(stats: dict, metric: str) -> str | None:
    """The key of ``metric`` in the flattened metrics: itself, or that of the single output."""
    if metric in stats:
        return metric
    per_output = [key for key in stats if key.startswith(f"{metric}/")]
    return per_output[0] if len(per_output) == 1 else None


def _cell(mean: float | None, std: float | None) -> str:
    if mean is None or np.isnan(mean):
        return ""
    return f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if std is not None else "")


def summarize_folds(
    metric_files: Sequence[str | Path],
    out: str | Path,
    *,
    table: Sequence[str] = TABLE,
    paper: Paper = None,
    label: str = "ours",
    ddof: int = 1,
) -> dict:
    """Mean, standard deviation (``ddof`` 1: the sample std), n and values of every metric of
    the folds' metrics.json files; writes folder ``out`` with ``folds.json``, ``folds.csv``
    (one row per metric) and ``table.{csv,md}`` (``table``'s metrics in %, mean ± std, one
    row for us and one per paper reference). A metric undefined in a fold counts n - 1."""
    if not metric_files:
        raise ValueError("summarize_folds: no metrics.json given")
    flat = []
    for path in metric_files:
        try:
            flat.append(flatten(json.loads(Path(path).read_text())))
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: cannot read these metrics ({err})") from err
    keys = list(dict.fromkeys(k for fold in flat for k in fold))
    stats = {}
    for key in keys:
        values = [fold[key] for fold in flat if key in fold]
        std = float(np.std(values, ddof=ddof)) if len(values) > ddof else None
        stats[key] = {
            "mean": float(np.mean(values)),
            "std": std,
            "n": len(values),
            "values": values,
        }
    summary = {"folds": len(flat), "files": [str(p) for p in metric_files], "ddof": ddof}
    summary["metrics"] = stats
    rows = [{"": label} | {m: _table_cell(stats, m) for m in table}]
    for ref in references(paper):
        rows.append({"": ref.label} | {m: _paper_cell(ref, m) for m in table})
    frame = pd.DataFrame(rows)
    summary["table"] = rows
    listing = pd.DataFrame(
        [{"metric": k, **{s: v[s] for s in ("mean", "std", "n")}} for k, v in stats.items()]
    )
    with atomic_path(out) as work:
        work.mkdir()
        (work / "folds.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
        listing.to_csv(work / "folds.csv", index=False)
        frame.to_csv(work / "table.csv", index=False)
        title = f"# {len(flat)} folds: mean ± std (%)\n\n"
        (work / "table.md").write_text(title + markdown(frame))
    return summary


def _table_cell(stats: dict, metric: str) -> str:
    key = _column(stats, metric)
    return _cell(stats[key]["mean"], stats[key]["std"]) if key else ""


def _paper_cell(ref: Reference, metric: str) -> str:
    """A paper's mean ± std of ``metric`` (a headline number or its single output's)."""

    def pick(value: object) -> float | None:
        if isinstance(value, Mapping):
            return float(next(iter(value.values()))) if len(value) == 1 else None
        return None if value is None else float(value)  # type: ignore[arg-type]

    return _cell(pick(ref.metrics.get(metric)), pick(ref.std.get(metric)))
