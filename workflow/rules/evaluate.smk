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
        report(
            directory(LAYOUT.cam("{study}", "{stage}", "{column}")),
            patterns=["{name,cam_grid}.{ext,png}", "{name,localisation}.{ext,md|csv}"],
            caption="../report/cam.rst",
            category="{study}",
            subcategory="{stage}",
            labels={"model": "{column}", "file": "{name}.{ext}"},
        ),
    log:
        LAYOUT.log("cam", "{study}/{stage}/{column}"),
    benchmark:
        LAYOUT.benchmark("cam", "{study}/{stage}/{column}")
    conda:
        "../envs/cxr.yaml"
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


# Several stages' heatmaps side by side on the same test images (a study's compare_cams) -----
rule cam_compare:
    input:
        unpack(compare_inputs),
    output:
        report(
            LAYOUT.cam_compare("{study}", "{pair}", "{column}"),
            caption="../report/cam_compare.rst",
            category="{study}",
            subcategory="{pair}",
            labels={"model": "{column}", "file": "{pair}.png"},
        ),
    log:
        LAYOUT.log("cam_compare", "{study}/{pair}/{column}"),
    benchmark:
        LAYOUT.benchmark("cam_compare", "{study}/{pair}/{column}")
    conda:
        "../envs/cxr.yaml"
    resources:
        gpu=1,
    params:
        args=compare_args,
    message:
        "Comparing the CAMs of {wildcards.study}/{wildcards.pair} on {wildcards.column}"
    shell:
        "cxr cam-compare {params.args} --data {input.data} --split {input.split}"
        " --split-column {wildcards.column} --out {output} > {log} 2>&1"
