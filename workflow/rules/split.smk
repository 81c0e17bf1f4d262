# Leak-proof splits, stored as data -------------------------------------------------------------
rule split:
    input:
        data=grouped_preset_dir,
    output:
        "results/splits/{dataset}/{scheme}.parquet",
    log:
        "logs/split/{dataset}_{scheme}.log",
    wildcard_constraints:
        dataset="|".join(DATASETS),
    conda:
        "../envs/cxr.yaml"
    params:
        scheme=scheme_json,
        seed=config["seed"],
    message:
        "Splitting {wildcards.dataset} by scheme {wildcards.scheme}"
    shell:
        "cxr split --data {input.data} --scheme-json {params.scheme:q} --seed {params.seed}"
        " --out {output} > {log} 2>&1"


# Fail the workflow if a patient or an image crosses splits; else report the split ------------
rule check_leakage:
    input:
        split="results/splits/{dataset}/{scheme}.parquet",
        data=grouped_preset_dir,
    output:
        "results/metrics/splits/{dataset}/{scheme}.json",
    log:
        "logs/check_leakage/{dataset}_{scheme}.log",
    conda:
        "../envs/cxr.yaml"
    message:
        "Checking {wildcards.dataset}/{wildcards.scheme} for leakage across splits"
    shell:
        "cxr check-leakage --split {input.split} --data {input.data} --out {output} > {log} 2>&1"


# Groups of exact and near-duplicate images, with a figure of what was merged ------------------
rule duplicates:
    input:
        data=grouped_preset_dir,
    output:
        table="results/duplicates/{dataset}.csv",
        figure=report(
            "results/duplicates/{dataset}.png",
            caption="../report/duplicates.rst",
            category="Data",
            subcategory="near-duplicates",
            labels={"dataset": "{dataset}"},
        ),
    log:
        "logs/duplicates/{dataset}.log",
    benchmark:
        "logs/duplicates/{dataset}.benchmark.tsv"
    conda:
        "../envs/cxr.yaml"
    message:
        "Finding near-duplicate images in {wildcards.dataset}"
    shell:
        "cxr duplicates --data {input.data} --out {output.table} > {log} 2>&1"
