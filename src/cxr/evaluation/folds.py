"""Cross-validation: mean ± standard deviation of each metric over the folds' metrics.json,
and the table in the shape of seed 000's Table II (accuracy, specificity, sensitivity, in %)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cxr.core.atomic import atomic_path
from cxr.core.readers import read_json_object
from cxr.evaluation.inputs import TASKS
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
    flat = [flatten(fold) for fold in read_folds(metric_files)]
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


def read_folds(metric_files: Sequence[str | Path]) -> list[dict]:
    """The metrics.json of each fold, checked to be ``cxr evaluate``'s, of one task, the
    same outputs and (where recorded) the same stage, and each of another file, content and
    model run."""
    folds: list[dict] = []
    seen: dict[tuple[str, str], Path] = {}
    stages: dict[str, Path] = {}
    for path in map(Path, metric_files):
        fold = read_json_object(path, "a metrics.json written by cxr evaluate")
        _check_fold(fold, path)
        for key in _identities(fold, path):
            if key in seen:
                raise ValueError(
                    f"{path}: the same fold as {seen[key]} ({key[0]}): each fold must be given once"
                )
            seen[key] = path
        if folds and _shape(fold) != _shape(folds[0]):
            first = Path(metric_files[0])
            raise ValueError(
                f"{path}: a fold of {_describe(fold)}, unlike {first} ({_describe(folds[0])})"
            )
        stage = _stage(fold)
        if stage is not None:
            stages.setdefault(stage, path)
        if len(stages) > 1:
            (one, first), (other, _) = stages.items()
            raise ValueError(
                f"{path}: evaluates a model of {other}, unlike {first} (of {one}): the folds "
                "of one stage are summarised together"
            )
        folds.append(fold)
    return folds


def _check_fold(fold: dict, path: Path) -> None:
    """Refuse a JSON object that is not the metrics.json of one evaluation."""
    if "folds" in fold and "metrics" in fold:
        raise ValueError(f"{path}: a fold summary (folds.json), not a fold's metrics.json")
    outputs = fold.get("outputs", [])
    if (
        fold.get("task") not in TASKS
        or not isinstance(fold.get("auroc"), dict)
        or not isinstance(outputs, list)
        or not all(isinstance(o, str) for o in outputs)
    ):
        raise ValueError(
            f"{path}: not a metrics.json written by cxr evaluate (no task, outputs and "
            "per-output auroc)"
        )
    bad = [k for k, v in flatten(fold).items() if not np.isfinite(v)]
    if bad:
        raise ValueError(f"{path}: values that are not finite numbers: {', '.join(bad[:5])}")


def _shape(fold: dict) -> tuple[str, tuple[str, ...]]:
    """The task and outputs a fold evaluates."""
    return fold["task"], tuple(fold.get("outputs") or fold["auroc"])


def _describe(fold: dict) -> str:
    task, outputs = _shape(fold)
    return f"task {task}, outputs {', '.join(outputs)}"


def _identities(fold: dict, path: Path) -> list[tuple[str, str]]:
    """What makes a fold one of a kind: its file, its content, its model's run."""
    keys = [
        ("the same file", str(path.resolve())),
        ("the same content", hashlib.sha256(path.read_bytes()).hexdigest()),
    ]
    run = _model(fold).get("run_id") or fold.get("run_id")
    if run:
        keys.append(("the same model run", str(run)))
    return keys


def _model(fold: dict) -> dict:
    """The model a fold evaluates, as ``cxr evaluate`` records it (``folder``, ``run_id``)."""
    model = fold.get("model")
    return model if isinstance(model, dict) else {}


def _stage(fold: dict) -> str | None:
    """The stage folder (``models/<study>/<stage>``) of the fold's model, if recorded."""
    folder = _model(fold).get("folder")
    return str(Path(folder).parent) if isinstance(folder, str) else None


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
