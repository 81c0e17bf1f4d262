# Score a model's test predictions: AUROC with intervals, thresholds, calibration, figures -----
rule evaluate:
    input:
        unpack(evaluation_inputs),
    output:
        directory("results/evaluation/{study}/{stage}/{column}"),
    log:
        "logs/evaluate/{study}/{stage}/{column}.log",
    benchmark:
        "logs/evaluate/{study}/{stage}/{column}.benchmark.tsv"
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
        directory("results/evaluation/{study}/{stage}/folds"),
    log:
        "logs/evaluate/{study}/{stage}/folds.log",
    params:
        metrics=fold_metric_files,
        paper=fold_paper_args,
    message:
        "Summarising the folds of {wildcards.study}/{wildcards.stage}"
    shell:
        "cxr summarize-folds {params.metrics} {params.paper} --out {output} > {log} 2>&1"


# Class activation maps of the test images, scored against the ground-truth boxes ------------
rule cam:
    input:
        unpack(cam_inputs),
    output:
        directory("results/cam/{study}/{stage}/{column}"),
    log:
        "logs/cam/{study}/{stage}/{column}.log",
    benchmark:
        "logs/cam/{study}/{stage}/{column}.benchmark.tsv"
    threads: workflow.cores
    resources:
        gpu=1,
    params:
        args=cam_args,
    message:
        "Drawing the CAMs of {wildcards.study}/{wildcards.stage}/{wildcards.column}"
    shell:
        "cxr cam --model {input.model} --data {input.data} --split {input.split} {params.args}"
        " --out {output} > {log} 2>&1"
