"""The parts of a plan: datasets, studies, their stages and settings, at one scale (frozen)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: The split column of a stage trained without folds (else fold_<i>).
SPLIT = "split"
#: The sets of a study's cascade (cxr cascade-sets), read by the modules' stages ...
CASCADE_SETS = ("cascade_xray", "cascade_type", "cascade_chest")
#: ... and the held-out mixed set the cascade is evaluated on; all of them at this split scheme.
HELDOUT_SET = "cascade_heldout"
CASCADE_SCHEME = "heldout"
#: The study of the synthetic pretraining stand-ins (params.yaml's ``pretraining`` block).
PRETRAINING = "pretraining"


class PlanError(ValueError):
    """params.yaml is invalid, or something is asked of the plan that it does not hold."""


@dataclass(frozen=True)
class Synthetic:
    """How cxr synth generates a dataset's miniature."""

    n: int
    size: int
    variant: str


@dataclass(frozen=True)
class Dataset:
    name: str
    enabled: bool
    source: str  # synthetic | real
    folder: str  # what cxr ingest reads: the generated miniature, or the real download
    synthetic: Synthetic


@dataclass(frozen=True)
class Evaluate:
    """How cxr evaluate scores a stage: its threshold rule, and the papers shown beside."""

    threshold: str | float
    paper: tuple[str, ...]

    def paper_args(self) -> str:
        return " ".join(f"--paper {name}" for name in self.paper)

    def args(self) -> str:
        return f"--threshold {self.threshold} {self.paper_args()}".strip()


@dataclass(frozen=True)
class Cam:
    """The class activation maps cxr cam draws of a stage's test images."""

    method: str
    top_k: int
    images: int  # in the figure grid
    max_images: int | str  # explained, or "all"
    layer: str = "last"  # the feature map drawn

    def args(self, column: str) -> str:
        cap = "" if self.max_images == "all" else f" --max-images {self.max_images}"
        layer = "" if self.layer == "last" else f" --layer {self.layer}"
        return (
            f"--method {self.method} --top-k {self.top_k} --figure-images {self.images}"
            f" --split-column {column}{cap}{layer}"
        )


@dataclass(frozen=True)
class Stage:
    """A stage of a study at the plan's scale, with what it trains and what starts it."""

    study: str
    name: str
    dataset: str
    preset: str
    split: str
    columns: tuple[str, ...]  # ("split",) or the fold_<i> it trains
    init_from: str | None
    init_columns: dict[str, str]  # column -> the init_from stage's model that starts it
    recipe: dict[str, Any]  # what cxr train gets: study, stage, input_size and seed filled in
    evaluate: Evaluate
    cam: Cam | None  # None: logistic regression has no feature map to draw
    init_study: str | None = None  # the study of init_from, when not this one (pretraining)

    @property
    def folds(self) -> bool:
        """Whether the stage trains folds (its evaluations get a summary over them)."""
        return self.columns != (SPLIT,)

    def recipe_json(self) -> str:
        return json.dumps(self.recipe, sort_keys=True)


@dataclass(frozen=True)
class CompareCams:
    """Several stages' heatmaps side by side on the test images of each column they share."""

    stages: tuple[str, ...]
    labels: tuple[str, ...]
    method: str
    images: int
    columns: tuple[str, ...]

    @property
    def pair(self) -> str:
        """The folder of the comparison: its stages joined by ``_vs_``."""
        return "_vs_".join(self.stages)


@dataclass(frozen=True)
class Cascade:
    """Seed 002's cascade: a held-out mixed set of its sources' test sides, and the sets its
    three modules (stages of ``study``) train on."""

    study: str
    preset: str
    sources: dict[str, str]  # dataset -> the split scheme whose test side is held out
    chest_fraction: float
    modules: tuple[str, ...]


@dataclass(frozen=True)
class Study:
    name: str
    enabled: bool
    stages: dict[str, Stage]  # in training order
    compare: CompareCams | None
    cascade: Cascade | None
    headline: str = ""  # the stage the report's first table shows (default: the last)
    skipped: tuple[str, ...] = ()  # stages with `enabled: false` at this scale
