"""What each rule's job is given: its inputs and the arguments of its ``cxr`` command.

Methods take a job's wildcards by name and return what Snakemake wants: paths, dicts of named
inputs, and argument strings. A value passed as a rule's params is recorded by Snakemake, so
editing its part of params.yaml reruns exactly the jobs it feeds.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from cxr.layout import Layout
from cxr.plan.parts import (
    CASCADE_SCHEME,
    CASCADE_SETS,
    HELDOUT_SET,
    PRETRAINING,
    SPLIT,
    Cascade,
    PlanError,
    Stage,
)
from cxr.plan.plan import Plan


@dataclass(frozen=True)
class Jobs:
    """The inputs and command-line arguments of the rules' jobs, from a plan."""

    plan: Plan

    @property
    def layout(self) -> Layout:
        return self.plan.layout

    # --- scheduling: Snakemake runs the ready job of highest priority first ------------------

    def data_priority(self, dataset: str = "") -> int:
        """Data steps before training, the stand-ins' corpus first of all: the longest chain of
        jobs (corpus, stand-in, the stages that start from it) begins there."""
        stand_ins = self.plan.studies.get(PRETRAINING)
        corpus = {s.dataset for s in stand_ins.stages.values()} if stand_ins else set()
        return 100 if dataset in corpus else 80

    def train_priority(self, study: str, stage: str) -> int:
        """Stand-ins first, then stages that later stages start from, then the rest (scoring,
        maps and reports come after: they start nothing)."""
        if study == PRETRAINING:
            return 90
        stages = self.plan.studies[study].stages.values()
        return 60 if any(s.init_from == stage for s in stages) else 50

    # --- data -------------------------------------------------------------------------------

    def dataset_root(self, dataset: str) -> str:
        """The folder cxr ingest reads: the generated miniature, or the user's real download."""
        return self.plan.datasets[dataset].folder

    def dvc_pointer(self, dataset: str) -> list[str]:
        """The dataset's DVC pointer when it is DVC-tracked, else nothing.

        The pointer matters: ``dvc checkout`` restores old files with old timestamps, which
        Snakemake would miss; git rewrites the small pointer, so listing it triggers the rerun.
        """
        pointer = self.layout.pointer(self.dataset_root(dataset))
        return [pointer] if Path(pointer).exists() else []

    def dataset_inputs(self, dataset: str) -> list[str]:
        """The raw inputs of a dataset: its folder, and its DVC pointer if it has one."""
        return [self.dataset_root(dataset), *self.dvc_pointer(dataset)]

    def synth_args(self, dataset: str) -> str:
        s = self.plan.datasets[dataset].synthetic
        return f"--n {s.n} --size {s.size} --variant {s.variant} --seed {self.plan.seed}"

    def gallery_panels(self) -> str:
        """``--panel NAME INDEX ROOT`` of cxr gallery, one per enabled dataset."""
        return " ".join(
            f"--panel {name} {self.layout.ingest_index(name)} {self.dataset_root(name)}"
            for name in self.plan.enabled
        )

    def preset_json(self, preset: str) -> str:
        return json.dumps({**self.plan.presets[preset], "name": preset}, sort_keys=True)

    def scheme_json(self, dataset: str, scheme: str) -> str:
        return json.dumps(self.plan.schemes[dataset][scheme], sort_keys=True)

    def grouped_data(self, dataset: str) -> str:
        """The tensors a dataset's splits are made from: its first built preset (a cascade
        set's: the cascade's preset)."""
        if dataset in CASCADE_SETS:
            return self.layout.preprocessed(dataset, self._cascade().preset)
        return self.layout.preprocessed(dataset, self.plan.builds[dataset][0])

    def split_inputs(self, dataset: str) -> dict[str, str]:
        """The tensors a dataset is split from and, but for a cascade set (whose groups
        cxr cascade-sets keeps), their near-duplicate table, so that no step searches twice."""
        data = {"data": self.grouped_data(dataset)}
        if dataset in CASCADE_SETS:
            return data
        return data | {"duplicates": self.layout.duplicates(dataset)}

    def duplicates_arg(self, dataset: str) -> str:
        found = self.split_inputs(dataset).get("duplicates")
        return "" if found is None else f"--duplicates {shlex.quote(found)}"

    # --- training ---------------------------------------------------------------------------

    def train_inputs(self, study: str, stage: str, column: str) -> dict[str, str]:
        """Tensors, split, the split's passed leakage check, and the model of the init_from
        stage that starts this column."""
        found = self._trains(study, stage, column)
        inputs = {
            "data": self.plan.data(found),
            "split": self.plan.split_table(found),
            "leakage": self.layout.leakage_report(found.dataset, found.split),
        }
        if found.init_from is not None:
            inputs["init"] = self.layout.model(
                found.init_study or study, found.init_from, found.init_columns[column]
            )
        return inputs

    def init_arg(self, study: str, stage: str, column: str) -> str:
        """``--init <model.pt>`` of the init_from stage, or nothing."""
        found = self._trains(study, stage, column)
        if found.init_from is None:
            return ""
        start = (found.init_study or study, found.init_from, found.init_columns[column])
        return f"--init {self.layout.weights(*start)}"

    def _trains(self, study: str, stage: str, column: str) -> Stage:
        """The stage, checked to train ``column``."""
        found = self.plan.stage(study, stage)
        if column not in found.columns:
            raise PlanError(f"training {study}/{stage} does not train {column}")
        return found

    def recipe_json(self, study: str, stage: str) -> str:
        return self.plan.stage(study, stage).recipe_json()

    def data_version_arg(self, study: str, stage: str) -> str:
        """``--data-version <md5>`` from the dataset's DVC pointer when it has one."""
        dataset = self.plan.stage(study, stage).dataset
        if dataset not in self.plan.datasets:
            return ""  # a cascade set: its sources' versions reach it through its inputs
        pointers = self.dvc_pointer(dataset)
        if not pointers:
            return ""
        outs = yaml.safe_load(Path(pointers[0]).read_text()).get("outs") or [{}]
        md5 = outs[0].get("md5")
        return f"--data-version {md5}" if md5 else ""

    # --- evaluation and explanation ---------------------------------------------------------

    def evaluation_inputs(self, study: str, stage: str, column: str) -> dict[str, str]:
        """The model, and the tensors it was trained on (their index holds the labels)."""
        found = self.plan.stage(study, stage)
        return {"model": self.layout.model(study, stage, column), "data": self.plan.data(found)}

    def evaluate_args(self, study: str, stage: str) -> str:
        return self.plan.stage(study, stage).evaluate.args()

    def fold_evaluations(self, study: str, stage: str) -> list[str]:
        """The evaluation folder of every fold a stage trains."""
        return [self.layout.evaluation(study, stage, c) for c in self._folds(study, stage)]

    def fold_metric_files(self, study: str, stage: str) -> str:
        """The metrics.json of every fold's evaluation (cxr summarize-folds' arguments)."""
        return " ".join(
            self.layout.evaluation_metrics(study, stage, c) for c in self._folds(study, stage)
        )

    def pooled_inputs(self, study: str, stage: str) -> dict[str, list[str] | str]:
        """The model of every fold a stage trains (at least two), and their tensors."""
        found = self.plan.stage(study, stage)
        columns = self._folds(study, stage)
        if len(columns) < 2:
            raise PlanError(f"{study}/{stage} trains one fold: nothing to pool")
        models = [self.layout.model(study, stage, c) for c in columns]
        return {"models": models, "data": self.plan.data(found)}

    def pooled_model_args(self, study: str, stage: str) -> str:
        """``--model <fold>`` of cxr pool-folds, one per fold."""
        return " ".join(f"--model {m}" for m in self.pooled_inputs(study, stage)["models"])

    def _folds(self, study: str, stage: str) -> tuple[str, ...]:
        found = self.plan.stage(study, stage)
        if not found.folds:
            raise PlanError(f"{study}/{stage} trains no folds")
        return found.columns

    def fold_paper_args(self, study: str, stage: str) -> str:
        return self.plan.stage(study, stage).evaluate.paper_args()

    def cam_inputs(self, study: str, stage: str, column: str) -> dict[str, str]:
        """The model, its tensors and its split table."""
        found = self.plan.stage(study, stage)
        return {
            "model": self.layout.model(study, stage, column),
            "data": self.plan.data(found),
            "split": self.plan.split_table(found),
        }

    def cam_args(self, study: str, stage: str, column: str) -> str:
        cam = self.plan.stage(study, stage).cam
        if cam is None:
            raise PlanError(f"{study}/{stage}: logistic regression has no feature map to draw")
        return cam.args(column)

    def compare_inputs(self, study: str, pair: str, column: str) -> dict:
        """The model of each compared stage, and the tensors and split table they share."""
        stages = self._compared(study, pair, column)
        return {
            "models": [self.layout.model(study, s.name, column) for s in stages],
            "data": self.plan.data(stages[0]),
            "split": self.plan.split_table(stages[0]),
        }

    def compare_args(self, study: str, pair: str, column: str) -> str:
        """``--model``, ``--label``, ``--method`` and ``--images`` of cxr cam-compare."""
        compare = self.plan.studies[study].compare
        models = self.compare_inputs(study, pair, column)["models"]
        return " ".join(
            [
                f"--model {m} --label {shlex.quote(t)}"
                for m, t in zip(models, compare.labels, strict=True)
            ]
            + [f"--method {compare.method} --images {compare.images}"]
        )

    def _compared(self, study: str, pair: str, column: str) -> list[Stage]:
        """The stages a cam_compare job draws, checked against its wildcards."""
        found = self.plan.studies.get(study)
        compare = None if found is None else found.compare
        if compare is None or pair != compare.pair:
            raise PlanError(f"{study} has no compare_cams of {pair} in params.yaml")
        if column not in compare.columns:
            raise PlanError(f"{study}/{pair}: not every stage trains {column}")
        return [found.stages[name] for name in compare.stages]

    # --- the cascade ------------------------------------------------------------------------

    def _cascade(self) -> Cascade:
        cascade = self.plan.cascade
        if cascade is None:
            raise PlanError("no study of params.yaml has a cascade")
        return cascade

    def cascade_inputs(self) -> dict[str, str]:
        """Each source's tensors at the cascade's preset, its split and passed leakage check."""
        cascade, inputs = self._cascade(), {}
        for source, scheme in cascade.sources.items():
            inputs[f"{source}_data"] = self.layout.preprocessed(source, cascade.preset)
            inputs[f"{source}_split"] = self.layout.split_table(source, scheme)
            inputs[f"{source}_leakage"] = self.layout.leakage_report(source, scheme)
        return inputs

    def cascade_source_args(self) -> str:
        """``--source NAME DATA SPLIT`` of cxr cascade-sets, one per source."""
        cascade = self._cascade()
        return " ".join(
            f"--source {source} {self.layout.preprocessed(source, cascade.preset)}"
            f" {self.layout.split_table(source, scheme)}"
            for source, scheme in cascade.sources.items()
        )

    def cascade_outputs(self) -> tuple[dict[str, str], dict[str, str], str]:
        """What cxr cascade-sets writes: the sets' folders, split tables and its report."""
        preset = self._cascade().preset
        folders = {
            name.removeprefix("cascade_"): self.layout.preprocessed(name, preset)
            for name in (HELDOUT_SET, *CASCADE_SETS)
        }
        splits = {
            f"{name.removeprefix('cascade_')}_split": self.layout.split_table(name, CASCADE_SCHEME)
            for name in CASCADE_SETS
        }
        return folders, splits, self.layout.cascade_report(preset)

    def cascade_modules(self) -> list[str]:
        """The models of Modules I, II and III (their ``split`` column)."""
        cascade = self._cascade()
        return [self.layout.model(cascade.study, stage, SPLIT) for stage in cascade.modules]

    def cascade_chest_evaluation(self) -> str:
        """Module III's evaluation: its per-finding thresholds."""
        cascade = self._cascade()
        return self.layout.evaluation(cascade.study, cascade.modules[2], SPLIT)

    # --- the report -------------------------------------------------------------------------

    def report_sources_json(self) -> str:
        return json.dumps(self.plan.report_sources(), sort_keys=True)

    def report_studies_json(self) -> str:
        return json.dumps(self.plan.report_studies())

    def report_headlines_json(self) -> str:
        return json.dumps(self.plan.report_headlines())

    def report_skipped_json(self) -> str:
        return json.dumps(self.plan.report_skipped())
