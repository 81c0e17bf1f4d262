# Leak-proof splits, stored as data -------------------------------------------------------------
rule split:
    input:
        unpack(split_inputs),
    output:
        LAYOUT.split_table("{dataset}", "{scheme}"),
    log:
        LAYOUT.log("split", "{dataset}_{scheme}"),
    wildcard_constraints:
        dataset="|".join(DATASETS),
    priority: data_priority
    conda:
        "../envs/cxr.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb_of("split"),
        runtime=runtime_of("split"),
    params:
        scheme=scheme_json,
        seed=PLAN.seed,
    message:
        "Splitting {wildcards.dataset} by scheme {wildcards.scheme}"
    shell:
        "cxr split --data {input.data} --scheme-json {params.scheme:q} --seed {params.seed}"
        " --duplicates {input.duplicates} --out {output} > {log} 2>&1"


# Fail the workflow if a patient or an image crosses splits; else report the split ------------
rule check_leakage:
    input:
        unpack(split_inputs),
        split=LAYOUT.split_table("{dataset}", "{scheme}"),
    output:
        LAYOUT.leakage_report("{dataset}", "{scheme}"),
    log:
        LAYOUT.log("check_leakage", "{dataset}_{scheme}"),
    priority: data_priority
    conda:
        "../envs/cxr.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb_of("check_leakage"),
        runtime=runtime_of("check_leakage"),
    params:
        duplicates=duplicates_arg,
    message:
        "Checking {wildcards.dataset}/{wildcards.scheme} for leakage across splits"
    shell:
        "cxr check-leakage --split {input.split} --data {input.data} {params.duplicates}"
        " --out {output} > {log} 2>&1"


# Groups of exact and near-duplicate images, with a figure of what was merged ------------------
rule duplicates:
    input:
        data=grouped_data,
    output:
        table=LAYOUT.duplicates("{dataset}"),
        figure=report(
            LAYOUT.duplicates_figure("{dataset}"),
            caption="../report/duplicates.rst",
            category="Data",
            subcategory="near-duplicates",
            labels={"dataset": "{dataset}"},
        ),
    log:
        LAYOUT.log("duplicates", "{dataset}"),
    benchmark:
        LAYOUT.benchmark("duplicates", "{dataset}")
    priority: data_priority
    conda:
        "../envs/cxr.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb_of("duplicates"),
        runtime=runtime_of("duplicates"),
    message:
        "Finding near-duplicate images in {wildcards.dataset}"
    shell:
        "cxr duplicates --data {input.data} --out {output.table} > {log} 2>&1"
