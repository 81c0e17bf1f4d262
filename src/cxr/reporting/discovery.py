"""Which studies, stages and split columns the results tree holds, and each stage's run.json.

The trees are read through :class:`cxr.layout.Layout` as ``cxr train``, ``cxr evaluate``,
``cxr summarize-folds`` and ``cxr cam`` wrote them: ``<tree>/<study>/<stage>/<column>`` for the
models, the evaluations and the CAMs. Studies and stages are discovered there (or taken, in
order, from ``expected``). Whatever a stage should have and does not is listed in its
``missing``, for the report to name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from cxr.core.readers import read_json_object
from cxr.layout import END_TO_END, FOLDS, POOLED, Layout

RUN = "a run.json written by cxr train"


@dataclass
class Stage:
    """A stage of a study as the results tree holds it: its split columns, fold summary and
    run.json, and what it lacks."""

    study: str
    name: str
    columns: list[str] = field(default_factory=list)  # "split" or "fold_<i>", in order
    folds: Path | None = None  # the fold summary folder, if any
    run: dict = field(default_factory=dict)  # run.json of its first trained column
    missing: list[str] = field(default_factory=list)


def trees(layout: Layout, study: str = "", stage: str = "") -> list[Path]:
    """The models', evaluations' and CAMs' folders (of a study, of a stage): where stages are."""
    return [
        Path(tree(study, stage))
        for tree in (layout.model_tree, layout.evaluation_tree, layout.cam_tree)
    ]


def subfolders(folder: Path) -> list[str]:
    """The names of ``folder``'s subfolders, sorted ([] if it is not a folder)."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base``, with forward slashes (for links and messages)."""
    return os.path.relpath(path, base).replace(os.sep, "/")


def _column_key(column: str) -> tuple[int, int, str]:
    match = re.fullmatch(r"fold_(\d+)", column)
    return (1, int(match.group(1)), column) if match else (0, 0, column)


def discover(layout: Layout, expected: dict[str, list[str]] | None = None) -> list[Stage]:
    """Every (study, stage) with results, in the expected order when one is given."""
    found: dict[str, list[str]] = {}
    for tree in trees(layout):
        for study in subfolders(tree):
            stages = found.setdefault(study, [])
            stages += [s for s in subfolders(tree / study) if s not in stages and s != END_TO_END]
    plan = expected if expected is not None else {s: sorted(found[s]) for s in sorted(found)}
    return [_stage(layout, study, name) for study, names in plan.items() for name in names]


def _stage(layout: Layout, study: str, name: str) -> Stage:
    stage = Stage(study, name)
    base = Path(layout.results).parent
    columns = set()
    for tree in trees(layout, study, name):
        columns |= {c for c in subfolders(tree) if c not in (FOLDS, POOLED)}
    stage.columns = sorted(columns, key=_column_key)
    folds = Path(layout.fold_summary(study, name))
    if folds.is_dir():
        stage.folds = folds
    elif any(c.startswith("fold_") for c in stage.columns):
        stage.missing.append(f"{relative(folds, base)} (the fold summary)")
    if not stage.columns:
        stage.missing.append(f"every output of {study}/{name} (no model, evaluation or CAM)")
    for column in stage.columns:
        run = Path(layout.run_record(study, name, column))
        if run.is_file():
            stage.run = read_run(run)
            break
    else:
        if stage.columns:
            models = relative(Path(layout.model_tree(study, name)), base)
            stage.missing.append(f"{models}/*/run.json (the recipe)")
    return stage


def is_dataset(value: object) -> bool:
    """A dataset's name, the names of a mixed set's, or None (unknown)."""
    if isinstance(value, list):
        return all(isinstance(v, str) for v in value)
    return isinstance(value, str | None)


def _is_stage(value: object) -> bool:
    """None, or the ``{"study", "stage", "column"}`` of the model a stage started from."""
    keys = ("study", "stage", "column")
    return value is None or (
        isinstance(value, dict) and all(isinstance(value.get(k), str) for k in keys)
    )


def read_run(path: Path) -> dict:
    """A run.json, checked to have the shape the captions read."""
    run = read_json_object(path, RUN)
    shapes = {"recipe": dict, "data": dict, "epochs_run": int, "best_epoch": int}
    wrong = [
        k
        for k, kind in shapes.items()
        if k in run and (not isinstance(run[k], kind) or isinstance(run[k], bool))
    ]
    data = run.get("data") if isinstance(run.get("data"), dict) else {}
    texts = ("folder", "split", "init", "preset")
    wrong += [f"data.{k}" for k in texts if not isinstance(data.get(k), str | None)]
    wrong += ["data.dataset"] if not is_dataset(data.get("dataset")) else []
    wrong += ["data.init_stage"] if not _is_stage(data.get("init_stage")) else []
    if wrong:
        raise ValueError(f"{path}: {', '.join(wrong)} of the wrong type: not {RUN}")
    return run


def nothing_found(layout: Layout, stages: list[Stage]) -> str:
    """Why there is nothing to report: no study under the results, or none of those expected."""
    results = Path(layout.results)
    names = ", ".join(tree.name for tree in trees(layout))
    if stages:
        found = sorted({study for tree in trees(layout) for study in subfolders(tree)})
        text = (
            f"{results}: no expected stage has a model, evaluation or CAM (missing: "
            f"{', '.join(f'{s.study}/{s.name}' for s in stages)}; studies found: "
            f"{', '.join(found) or 'none'})"
        )
    else:
        text = f"{results}: no study found (no model, evaluation or CAM under {names})"
    for guess in (results / "results", results.parent):
        if guess != results and any(t.is_dir() for t in trees(Layout(results=str(guess)))):
            return text + f"; did you mean --results {guess}?"
    return text
