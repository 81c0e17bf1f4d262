"""The plan: what params.yaml asks for at one scale, and what the default target builds."""

from __future__ import annotations

from dataclasses import dataclass

from cxr.layout import Layout
from cxr.plan.parts import (
    CASCADE_SCHEME,
    CASCADE_SETS,
    HELDOUT_SET,
    Cascade,
    Dataset,
    PlanError,
    Stage,
    Study,
)


@dataclass(frozen=True)
class Plan:
    """Datasets, presets, split schemes and studies, checked, with paths from ``layout``."""

    scale: str  # demo | paper
    seed: int
    datasets: dict[str, Dataset]
    presets: dict[str, dict]  # name -> preset, the schema's defaults filled in
    builds: dict[str, tuple[str, ...]]  # dataset -> presets built (the first: its splits')
    schemes: dict[str, dict[str, dict]]  # dataset -> scheme name -> scheme
    studies: dict[str, Study]
    layout: Layout

    # --- lookups --------------------------------------------------------------------------

    @property
    def enabled(self) -> list[str]:
        """The datasets the default target builds."""
        return [name for name, dataset in self.datasets.items() if dataset.enabled]

    @property
    def cascade(self) -> Cascade | None:
        """The cascade (at most one study has one)."""
        return next((s.cascade for s in self.studies.values() if s.cascade is not None), None)

    def stage(self, study: str, stage: str) -> Stage:
        try:
            return self.studies[study].stages[stage]
        except KeyError:
            raise PlanError(f"no training stage {study}/{stage} in params.yaml") from None

    def available(self, dataset: str) -> bool:
        """An enabled dataset, or a cascade set whose sources are all enabled."""
        if dataset in CASCADE_SETS:
            cascade = self.cascade
            return cascade is not None and all(s in self.enabled for s in cascade.sources)
        return dataset in self.enabled

    @property
    def trained(self) -> list[Study]:
        """Enabled studies whose datasets are all available: those the default target trains."""
        return [
            study
            for study in self.studies.values()
            if study.enabled and all(self.available(s.dataset) for s in study.stages.values())
        ]

    @property
    def cascade_trained(self) -> bool:
        cascade = self.cascade
        return cascade is not None and cascade.study in {s.name for s in self.trained}

    def models(self) -> list[tuple[str, str, str]]:
        """(study, stage, column) of every model the default target trains, stages in order."""
        return [
            (study.name, stage.name, column)
            for study in self.trained
            for stage in study.stages.values()
            for column in stage.columns
        ]

    def data(self, stage: Stage) -> str:
        """The tensors a stage trains on."""
        return self.layout.preprocessed(stage.dataset, stage.preset)

    def split_table(self, stage: Stage) -> str:
        return self.layout.split_table(stage.dataset, stage.split)

    # --- what the default target builds -----------------------------------------------------

    def preprocessed_targets(self) -> list[str]:
        return [
            self.layout.preprocessed(d, p) for d in self.enabled for p in self.builds.get(d, ())
        ]

    def leakage_targets(self) -> list[str]:
        return [
            self.layout.leakage_report(d, s) for d in self.enabled for s in self.schemes.get(d, {})
        ]

    def model_targets(self) -> list[str]:
        return [self.layout.model(*model) for model in self.models()]

    def train_metric_targets(self) -> list[str]:
        return [self.layout.train_metrics(*model) for model in self.models()]

    def evaluation_targets(self) -> list[str]:
        """Every model's evaluation and CAM folders, each fold stage's summary over its folds
        (and, with two folds or more, its evaluation of their test sides pooled), and each
        study's CAM comparison figures."""
        targets = []
        for study, stage, column in self.models():
            targets.append(self.layout.evaluation(study, stage, column))
            if self.stage(study, stage).cam is not None:
                targets.append(self.layout.cam(study, stage, column))
        for study in self.trained:
            for s in study.stages.values():
                if s.folds:
                    targets.append(self.layout.fold_summary(study.name, s.name))
                if s.folds and len(s.columns) > 1:
                    targets.append(self.layout.pooled_evaluation(study.name, s.name))
        return targets + self.compare_targets()

    def compare_targets(self) -> list[str]:
        """The comparison figure of each split column of every trained study's compare_cams."""
        return [
            self.layout.cam_compare(study.name, study.compare.pair, column)
            for study in self.trained
            if study.compare is not None
            for column in study.compare.columns
        ]

    def cascade_targets(self) -> list[str]:
        """The cascade's end-to-end evaluation and its sets' leakage reports, when it trains."""
        if not self.cascade_trained:
            return []
        return [
            self.layout.cascade_evaluation(self.cascade.study),
            *(self.layout.leakage_report(name, CASCADE_SCHEME) for name in CASCADE_SETS),
        ]

    def report_headlines(self) -> dict[str, str]:
        """Each trained study's headline stage: the one the report's first table shows."""
        return {study.name: study.headline for study in self.trained if study.headline}

    def report_skipped(self) -> dict[str, list[str]]:
        """Each trained study's stages that are not trained at this scale (``enabled: false``)."""
        return {study.name: list(study.skipped) for study in self.trained if study.skipped}

    def report_studies(self) -> dict[str, list[str]]:
        """The trained studies and their stages, in order: what the report covers."""
        return {study.name: list(study.stages) for study in self.trained}

    def report_sources(self) -> dict[str, str]:
        """Each enabled dataset's source (synthetic or real), and the cascade sets' (synthetic,
        real, or mixed of their sources') when the cascade trains."""
        sources = {name: self.datasets[name].source for name in self.enabled}
        if self.cascade_trained:
            kinds = {self.datasets[d].source for d in self.cascade.sources}
            kind = kinds.pop() if len(kinds) == 1 else "mixed (synthetic and real)"
            sources |= dict.fromkeys((HELDOUT_SET, *CASCADE_SETS), kind)
        return sources
