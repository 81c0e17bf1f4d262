# Score a model's test predictions: AUROC with intervals, thresholds, calibration, figures -----
rule evaluate:
    input:
        unpack(evaluation_inputs),
    output:
        report(
            directory(LAYOUT.evaluation("{study}", "{stage}", "{column}")),
            patterns=[
                "{name}.{ext,png}",
                "{name,metrics}.{ext,md}",
                "{name,headline|metrics}.{ext,csv}",
            ],
            caption="../report/evaluation.rst",
            category="{study}",
            subcategory="{stage}",
            labels={"model": "{column}", "file": "{name}.{ext}"},
        ),
    log:
        LAYOUT.log("evaluate", "{study}/{stage}/{column}"),
    benchmark:
        LAYOUT.benchmark("evaluate", "{study}/{stage}/{column}")
    conda:
        "../envs/cxr.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb_of("evaluate"),
        runtime=runtime_of("evaluate"),
    params:
        args=evaluate_args,
    message:
        "Evaluating {wildcards.study}/{wildcards.stage}/{wildcards.column}"
    shell:
        "cxr evaluate --predictions {input.model}/predictions/test.parquet"
        " --val-predictions {input.model}/predictions/val.parquet --labels {input.data}/index.parquet"
        " --model {input.model} {params.args} --out {output} > {log} 2>&1"


# Mean +- standard deviation over the folds of a k-fold stage (seed 000's Table II) ----------
rule evaluate_folds:
    input:
        fold_evaluations,
    output:
        report(
            directory(LAYOUT.fold_summary("{study}", "{stage}")),
            patterns=["{name,table}.{ext,md}", "{name,table|folds}.{ext,csv}"],
            caption="../report/folds.rst",
            category="{study}",
            subcategory="{stage}",
            labels={"model": "folds", "file": "{name}.{ext}"},
        ),
    log:
        LAYOUT.log("evaluate", "{study}/{stage}/folds"),
    conda:
        "../envs/cxr.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb_of("evaluate_folds"),
        runtime=runtime_of("evaluate_folds"),
    params:
        metrics=fold_metric_files,
        paper=fold_paper_args,
    message:
        "Summarising the folds of {wildcards.study}/{wildcards.stage}"
    shell:
        "cxr summarize-folds {params.metrics} {params.paper} --out {output} > {log} 2>&1"


# The folds' test predictions pooled: every image tested once, one AUROC with its interval -----
rule evaluate_pooled:
    input:
        unpack(pooled_inputs),
    output:
        directory(LAYOUT.pooled_evaluation("{study}", "{stage}")),
    log:
        LAYOUT.log("evaluate", "{study}/{stage}/pooled"),
    benchmark:
        LAYOUT.benchmark("evaluate", "{study}/{stage}/pooled")
    conda:
        "../envs/cxr.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb_of("evaluate_pooled"),
        runtime=runtime_of("evaluate_pooled"),
    params:
        models=pooled_model_args,
        args=evaluate_args,
    message:
        "Pooling the folds of {wildcards.study}/{wildcards.stage}"
    shell:
        "cxr pool-folds {params.models} --labels {input.data}/index.parquet {params.args}"
        " --out {output} > {log} 2>&1"
