"""One model's test numbers as the glance reads them: its AUROC and (multi-class) accuracy,
each with its 95% interval, the baseline no skill beats, the papers' numbers, and a verdict.

Read from ``headline.csv`` (``cxr evaluate``; a k-fold stage's ``pooled`` folder holds one of
its folds' test predictions pooled) and, for what it lacks, ``metrics.json`` (the task, the
test images, the majority class's share).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from cxr.core.datasets import PRETRAIN
from cxr.core.readers import read_csv_rows, read_json_object
from cxr.layout import POOLED, Layout
from cxr.reporting.discovery import Stage
from cxr.reporting.provenance import data_of
from cxr.reporting.tables import fmt

AUROC, ACCURACY, MAJORITY = "auroc_macro", "accuracy_overall", "majority_share"
#: What no skill scores on the AUROC.
CHANCE = 0.5
MULTICLASS = "multiclass"
#: Below this many test images a one-point interval (every resample alike) tells nothing.
FEW_IMAGES = 30
METRICS = "a metrics.json written by cxr evaluate"


def verdict(
    low: float | None,
    high: float | None,
    baseline: float | None = CHANCE,
    images: int | None = None,
) -> str:
    """``learned`` when the whole interval lies above ``baseline``, ``worse than baseline``
    when below, else ``not distinguishable from baseline``; an interval of one point on fewer
    than :data:`FEW_IMAGES` test images (or an unknown number) says it is too few to tell."""
    if baseline is None:
        return "no baseline"
    if low is None or high is None:
        return "no interval"
    if low == high and (images is None or images < FEW_IMAGES):
        return "too few test images to tell"
    if low > baseline:
        return "learned"
    if high < baseline:
        return "worse than baseline"
    return "not distinguishable from baseline"


def interval(text: object) -> tuple[float | None, float | None]:
    """(low, high) of a ``[low, high]`` cell or list, (None, None) if it is not one."""
    with contextlib.suppress(TypeError, ValueError):
        low, high = json.loads(text) if isinstance(text, str) else text
        return float(low), float(high)
    return None, None


def number(value: object) -> float | None:
    """A cell or JSON value as a float, None when empty or not a number."""
    with contextlib.suppress(TypeError, ValueError):
        return float(value)  # type: ignore[arg-type]
    return None


@dataclass
class Score:
    """A metric of one model on its test set, beside its baseline and the papers' numbers."""

    metric: str  # "AUROC" or "accuracy"
    value: float | None
    low: float | None = None
    high: float | None = None
    baseline: float | None = CHANCE
    papers: tuple[tuple[str, float], ...] = ()  # (paper, its number)
    images: int | None = None

    @property
    def verdict(self) -> str:
        return verdict(self.low, self.high, self.baseline, self.images)

    def ours(self) -> str:
        """``0.712 [0.610, 0.830]`` (the interval left out when there is none)."""
        span = f" [{fmt(self.low)}, {fmt(self.high)}]" if self.low is not None else ""
        return (fmt(self.value) or "–") + span

    def paper(self, named: bool = True) -> str:
        """The papers' numbers, ``Seed 003 0.810; ...`` (``–`` when none)."""
        cells = [f"{p} {fmt(v)}" if named else fmt(v) for p, v in self.papers]
        return "; ".join(cells) or "–"


@dataclass
class Evaluated:
    """One evaluation of a stage: its split column, or the pooled folds of a k-fold stage."""

    stage: Stage
    label: str  # "split", "fold_0", "pooled over 3 folds"
    folder: Path
    task: str | None
    auroc: Score | None
    accuracy: Score | None

    @property
    def headline(self) -> Score | None:
        """Accuracy against the majority class for a multi-class task, else the AUROC."""
        if self.task == MULTICLASS and self.accuracy is not None:
            return self.accuracy
        return self.auroc


def is_stand_in(stage: Stage, layout: Layout) -> bool:
    """Whether the stage trains on the synthetic pretraining corpus (an ImageNet stand-in)."""
    return data_of(stage, layout)[0] == PRETRAIN


def evaluation_folders(stage: Stage, layout: Layout) -> list[tuple[str, Path]]:
    """(label, folder) of the stage's evaluations: the pooled one of a k-fold stage when it has
    one, else one per split column."""
    pooled = Path(layout.evaluation(stage.study, stage.name, POOLED))
    if pooled.is_dir():
        folds = sum(c.startswith("fold_") for c in stage.columns)
        return [(f"{POOLED} over {folds} folds" if folds else POOLED, pooled)]
    return [(c, Path(layout.evaluation(stage.study, stage.name, c))) for c in stage.columns]


def headline_of(stage: Stage, layout: Layout) -> Evaluated | None:
    """The stage's one headline evaluation: pooled, its ``split``, else its first fold."""
    for label, folder in evaluation_folders(stage, layout):
        found = evaluated(stage, label, folder)
        if found is not None:
            if label.startswith("fold_"):
                found.label = f"{label} only, no pooled evaluation"
            return found
    return None


def evaluated(stage: Stage, label: str, folder: Path) -> Evaluated | None:
    """The AUROC and accuracy of the evaluation in ``folder`` (None without a headline.csv)."""
    path = folder / "headline.csv"
    if not path.is_file():
        return None
    rows = {r["metric"]: r for r in read_csv_rows(path, ("metric", "value"))}
    metrics_path = folder / "metrics.json"
    metrics = read_json_object(metrics_path, METRICS) if metrics_path.is_file() else {}
    task = metrics.get("task") or (stage.run.get("recipe") or {}).get("task")
    images = _images(metrics)
    auroc = _score("AUROC", rows.get(AUROC), CHANCE, images)
    accuracy = None
    if task == MULTICLASS:
        share = number((rows.get(MAJORITY) or {}).get("value"))
        share = share if share is not None else _majority_share(metrics)
        accuracy = _score("accuracy", rows.get(ACCURACY), share, images)
    return Evaluated(stage, label, folder, task, auroc, accuracy)


def _score(
    metric: str, row: dict | None, baseline: float | None, images: int | None
) -> Score | None:
    if row is None:
        return None
    low, high = interval(row.get("ci"))
    papers = tuple(
        (k, v)
        for k, v in ((k, number(v)) for k, v in row.items() if k not in ("metric", "value", "ci"))
        if v is not None
    )
    return Score(metric, number(row.get("value")), low, high, baseline, papers, images)


def _images(metrics: dict) -> int | None:
    """How many test images metrics.json scored (the most of any output)."""
    images = metrics.get("images")
    if isinstance(images, dict):
        counts = [c for c in (number(v) for v in images.values()) if c is not None]
        return int(max(counts)) if counts else None
    value = number(images)
    return int(value) if value is not None else None


def _majority_share(metrics: dict) -> float | None:
    """metrics.json's ``majority_share``, else the largest class's share of its test images."""
    share = number(metrics.get(MAJORITY))
    if share is not None:
        return share
    positives, images = metrics.get("positives"), _images(metrics)
    if not isinstance(positives, dict) or not images:
        return None
    counts = [number(v) for v in positives.values()]
    counts = [c for c in counts if c is not None]
    return max(counts) / images if counts else None
