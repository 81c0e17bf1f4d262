# Train one model: a stage of a study on one split column (split or fold_<i>) -------------------
rule train:
    input:
        unpack(train_inputs),
    output:
        directory(LAYOUT.model("{study}", "{stage}", "{column}")),
    log:
        LAYOUT.log("train", "{study}/{stage}/{column}"),
    benchmark:
        LAYOUT.benchmark("train", "{study}/{stage}/{column}")
    priority: train_priority
    conda:
        "../envs/cxr.yaml"
    # half the cores, so two jobs overlap: one's start-up and I/O (serial, seconds) run beside
    # the other's compute; Snakemake sets OMP_NUM_THREADS to it
    threads: half_the_cores()
    resources:
        gpu=1,
        mem_mb=mem_mb_of("train"),
        runtime=runtime_of("train"),
    params:
        recipe=recipe_json,
        init=init_arg,
        data_version=data_version_arg,
    message:
        "Training {wildcards.study}/{wildcards.stage} on {wildcards.column}"
    shell:
        "cxr train --data {input.data} --split {input.split} --split-column {wildcards.column}"
        " --recipe-json {params.recipe:q} {params.init} {params.data_version}"
        " --out {output} > {log} 2>&1"


# A trained model's headline numbers, as a small metrics file DVC tracks ---------------------
rule train_summary:
    input:
        model=LAYOUT.model("{study}", "{stage}", "{column}"),
        evaluation=LAYOUT.evaluation("{study}", "{stage}", "{column}"),
    output:
        LAYOUT.train_metrics("{study}", "{stage}", "{column}"),
    log:
        LAYOUT.log("train_summary", "{study}/{stage}/{column}"),
    conda:
        "../envs/cxr.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb_of("train_summary"),
        runtime=runtime_of("train_summary"),
    message:
        "Summarising {wildcards.study}/{wildcards.stage}/{wildcards.column}"
    shell:
        "cxr train-summary --model {input.model} --evaluation {input.evaluation} --out {output}"
        " > {log} 2>&1"
