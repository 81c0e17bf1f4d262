# cxr: the workflow. The DAG is declared here, once; DVC runs it as a single stage (dvc.yaml).
# Rules are thin: each calls one `cxr` subcommand. Settings come from params.yaml only.


configfile: "params.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/cascade.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        ingest_summaries=expand(
            "results/metrics/ingest/{dataset}.json", dataset=DATASETS
        ),
        gallery="results/figures/ingest_gallery.png",
        tensors=preprocessed_targets(),
        leakage_reports=leakage_reports(),
        duplicates=expand("results/duplicates/{dataset}.csv", dataset=DATASETS),
        models=model_targets(),
        train_metrics=train_metric_targets(),
        evaluation=evaluation_targets(),
        cascade=cascade_targets(),
        report="results/report.md",
