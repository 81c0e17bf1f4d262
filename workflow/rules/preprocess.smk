# Decode every image once into a compact, memory-mappable tensor ------------------------------
rule preprocess:
    input:
        index="results/ingest/{dataset}/index.parquet",
        pointer=dvc_pointer,
    output:
        directory("results/preprocessed/{dataset}/{preset}"),
    log:
        "logs/preprocess/{dataset}_{preset}.log",
    benchmark:
        "logs/preprocess/{dataset}_{preset}.benchmark.tsv"
    wildcard_constraints:
        dataset="|".join(DATASETS),
    conda:
        "../envs/cxr.yaml"
    threads: workflow.cores
    params:
        preset=preset_json,
        root=dataset_root,
    message:
        "Preprocessing {wildcards.dataset} with preset {wildcards.preset}"
    shell:
        "cxr preprocess --index {input.index} --root {params.root}"
        " --preset-json {params.preset:q} --out {output} --workers {threads} > {log} 2>&1"
