# cxr: the workflow. The DAG is declared here, once; DVC runs it as a single stage (dvc.yaml).
# Rules are thin: each calls one `cxr` subcommand. Settings come from params.yaml only.


configfile: "params.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/explanation.smk"
include: "workflow/rules/cascade.smk"
include: "workflow/rules/reporting.smk"


rule all:
    default_target: True
    input:
        ingest_summaries=expand(LAYOUT.ingest_summary("{dataset}"), dataset=DATASETS),
        gallery=LAYOUT.gallery(),
        tensors=PLAN.preprocessed_targets(),
        leakage_reports=PLAN.leakage_targets(),
        duplicates=expand(LAYOUT.duplicates("{dataset}"), dataset=DATASETS),
        models=PLAN.model_targets(),
        train_metrics=PLAN.train_metric_targets(),
        evaluation=PLAN.evaluation_targets(),
        cascade=PLAN.cascade_targets(),
        report=LAYOUT.report(),
