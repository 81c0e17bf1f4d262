"""Where a stage's data came from: its dataset, its preset, the model it started from.

Read from what the pipeline recorded, never from folder names: run.json's ``data`` block
(``dataset``, ``preset``, ``init_stage``, written by ``cxr train``); for what it does not say,
the ``stats.json`` beside the labels the stage was evaluated on (its ``dataset`` and
``preset``, written by ``cxr preprocess`` and ``cxr cascade-sets``).
"""

from __future__ import annotations

from pathlib import Path

from cxr.core.readers import read_json_object
from cxr.layout import Layout
from cxr.reporting.discovery import Stage, is_dataset

METRICS = "a metrics.json written by cxr evaluate"
STATS = "a stats.json written by cxr preprocess or cxr cascade-sets"

#: A dataset's name, the names of a mixed set's, or None (unknown).
Dataset = str | list[str] | None


def data_of(stage: Stage, layout: Layout) -> tuple[Dataset, str | None]:
    """(dataset, preset) of the stage: run.json's, else its evaluated labels' stats.json."""
    data = stage.run.get("data") or {}
    dataset, preset = data.get("dataset") or None, data.get("preset") or None
    if dataset is None or preset is None:
        labels_dataset, labels_preset = _evaluated_data(stage, layout)
        dataset = labels_dataset if dataset is None else dataset
        preset = labels_preset if preset is None else preset
    return dataset, preset


def started_from(run: dict) -> str | None:
    """The model a stage started from: ``<stage>/<column>`` of run.json's ``init_stage``, else
    the weights' path as recorded, else None (it started from its recipe's ``init``)."""
    data = run.get("data") or {}
    begun = data.get("init_stage")
    if begun:
        return f"{begun['stage']}/{begun['column']}"
    return data.get("init") or None


def _evaluated_data(stage: Stage, layout: Layout) -> tuple[Dataset, str | None]:
    """(dataset, preset) recorded beside the labels of the stage's first evaluation
    (metrics.json's ``alignment.labels``: ``<tensor folder>/index.parquet``)."""
    for column in stage.columns:
        metrics = Path(layout.evaluation_metrics(stage.study, stage.name, column))
        if metrics.is_file():
            alignment = read_json_object(metrics, METRICS).get("alignment")
            labels = alignment.get("labels") if isinstance(alignment, dict) else None
            return recorded_in(Path(labels).parent) if isinstance(labels, str) else (None, None)
    return None, None


def recorded_in(folder: Path) -> tuple[Dataset, str | None]:
    """(dataset, preset) of a tensor folder's stats.json ((None, None) if it has none)."""
    from cxr.data.preprocess import STATS_FILE  # here: the module imports cv2 and pandas

    path = folder / STATS_FILE
    if not path.is_file():
        return None, None
    stats = read_json_object(path, STATS)
    dataset, preset = stats.get("dataset"), stats.get("preset")
    if isinstance(preset, dict):  # cxr preprocess: the preset itself, its name among its keys
        preset = preset.get("name")
    if not is_dataset(dataset) or not isinstance(preset, str | None):
        raise ValueError(f"{path}: its dataset or preset name of the wrong type: not {STATS}")
    return dataset or None, preset or None
