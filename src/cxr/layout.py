"""Where every artefact of the pipeline lives: the one definition of the path scheme.

Every method returns a path as a string, relative to the project folder unless the folders
given are absolute. Arguments may be Snakemake wildcards, so ``Layout().model("{study}",
"{stage}", "{column}")`` is the pattern of the train rule's output. A model, its evaluation and
its CAMs are keyed by study, stage and split column (``split`` or ``fold_<i>``).

Imports nothing heavy: the workflow, the report and serving code all read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The column of a stage's summary over its folds, beside its fold_<i> evaluations.
FOLDS = "folds"
#: The column of a stage's evaluation of its folds' test predictions pooled (cxr pool-folds).
POOLED = "pooled"
#: The stage name of a cascade's end-to-end evaluation, beside its modules' evaluations.
END_TO_END = "end_to_end"


@dataclass(frozen=True)
class Layout:
    """The path scheme under three top folders: generated data, results and logs."""

    data: str = "data"
    results: str = "results"
    logs: str = "logs"

    # --- data -----------------------------------------------------------------------------

    def synthetic(self, dataset: str) -> str:
        """The embedded miniature of a dataset (cxr synth)."""
        return f"{self.data}/synthetic/{dataset}"

    @staticmethod
    def pointer(folder: str) -> str:
        """The DVC pointer of a dataset folder (``data/raw/nih`` -> ``data/raw/nih.dvc``)."""
        path = Path(folder)  # drops a trailing separator
        return str(path.with_name(f"{path.name}.dvc"))

    # --- ingest, preprocess, split --------------------------------------------------------

    def ingest_index(self, dataset: str) -> str:
        return f"{self.results}/ingest/{dataset}/index.parquet"

    def ingest_manifest(self, dataset: str) -> str:
        return f"{self.results}/ingest/{dataset}/index.manifest.csv"

    def ingest_summary(self, dataset: str) -> str:
        return f"{self.results}/metrics/ingest/{dataset}.json"

    def gallery(self) -> str:
        return f"{self.results}/figures/ingest_gallery.png"

    def preprocessed(self, dataset: str, preset: str) -> str:
        """The tensors of a dataset (or a cascade set) at a preset: a folder."""
        return f"{self.results}/preprocessed/{dataset}/{preset}"

    def split_table(self, dataset: str, scheme: str) -> str:
        return f"{self.results}/splits/{dataset}/{scheme}.parquet"

    def leakage_report(self, dataset: str, scheme: str) -> str:
        return f"{self.results}/metrics/splits/{dataset}/{scheme}.json"

    def duplicates(self, dataset: str) -> str:
        """The table of near-duplicate groups (its figure: the same name, ``.png``)."""
        return f"{self.results}/duplicates/{dataset}.csv"

    def duplicates_figure(self, dataset: str) -> str:
        return f"{self.results}/duplicates/{dataset}.png"

    def cascade_report(self, preset: str) -> str:
        """What cxr cascade-sets reports of the held-out set and the modules' sets."""
        return f"{self.results}/metrics/cascade/{preset}.json"

    # --- training ---------------------------------------------------------------------------

    def model(self, study: str, stage: str, column: str) -> str:
        """The folder cxr train writes."""
        return f"{self.results}/models/{study}/{stage}/{column}"

    def weights(self, study: str, stage: str, column: str) -> str:
        return f"{self.model(study, stage, column)}/model.pt"

    def predictions(self, study: str, stage: str, column: str, side: str) -> str:
        """A model's predictions of one split side (val or test)."""
        return f"{self.model(study, stage, column)}/predictions/{side}.parquet"

    def train_metrics(self, study: str, stage: str, column: str) -> str:
        """A model's headline numbers (a DVC metrics file)."""
        return f"{self.results}/metrics/train/{study}/{stage}/{column}.json"

    # --- evaluation, explanation, report ----------------------------------------------------

    def evaluation(self, study: str, stage: str, column: str) -> str:
        """The folder cxr evaluate writes (``column`` ``folds``: the summary over folds)."""
        return f"{self.results}/evaluation/{study}/{stage}/{column}"

    def evaluation_metrics(self, study: str, stage: str, column: str) -> str:
        return f"{self.evaluation(study, stage, column)}/metrics.json"

    def fold_summary(self, study: str, stage: str) -> str:
        return self.evaluation(study, stage, FOLDS)

    def pooled_evaluation(self, study: str, stage: str) -> str:
        """The evaluation of a k-fold stage's test predictions pooled over its folds."""
        return self.evaluation(study, stage, POOLED)

    def cam(self, study: str, stage: str, column: str) -> str:
        return f"{self.results}/cam/{study}/{stage}/{column}"

    def cam_compare(self, study: str, pair: str, column: str) -> str:
        """The figure of several stages' heatmaps side by side (``pair``: a_vs_b)."""
        return f"{self.results}/cam_compare/{study}/{pair}/{column}.png"

    def cascade_evaluation(self, study: str) -> str:
        return f"{self.results}/evaluation/{study}/{END_TO_END}"

    def cascade_summary(self, study: str) -> str:
        return f"{self.results}/metrics/train/{study}/{END_TO_END}.json"

    # --- the trees the report lists: studies, then their stages, then their columns ----------

    def model_tree(self, study: str = "", stage: str = "") -> str:
        """Every study's models, one study's (a folder per stage) or one stage's (per column)."""
        return _below(f"{self.results}/models", study, stage)

    def evaluation_tree(self, study: str = "", stage: str = "") -> str:
        """Every study's evaluations, one study's (a folder per stage) or one stage's."""
        return _below(f"{self.results}/evaluation", study, stage)

    def cam_tree(self, study: str = "", stage: str = "") -> str:
        """Every study's CAMs, one study's (a folder per stage) or one stage's (per column)."""
        return _below(f"{self.results}/cam", study, stage)

    def cam_compare_tree(self, study: str) -> str:
        """A study's CAM comparisons: a folder per compared pair (``a_vs_b``)."""
        return f"{self.results}/cam_compare/{study}"

    def run_record(self, study: str, stage: str, column: str) -> str:
        """The run.json cxr train writes beside the weights: the recipe and the data used."""
        return f"{self.model(study, stage, column)}/run.json"

    def report(self) -> str:
        return f"{self.results}/report.md"

    def report_html(self) -> str:
        return f"{self.results}/report.html"

    # --- logs -----------------------------------------------------------------------------

    def log(self, rule: str, job: str = "") -> str:
        """A job's log: ``logs/<rule>/<job>.log``, or ``logs/<rule>.log`` for a single job."""
        return f"{self.logs}/{rule}/{job}.log" if job else f"{self.logs}/{rule}.log"

    def benchmark(self, rule: str, job: str = "") -> str:
        """A job's Snakemake benchmark, beside its log."""
        return self.log(rule, job).removesuffix(".log") + ".benchmark.tsv"


def _below(root: str, study: str, stage: str) -> str:
    """``root``, or its ``study`` folder, or that study's ``stage`` folder."""
    if stage and not study:
        raise ValueError(f"{root}: stage {stage!r} given without its study")
    return "/".join([root, *(key for key in (study, stage) if key)])
