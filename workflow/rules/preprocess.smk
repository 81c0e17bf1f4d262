# Decode every image once into a compact, memory-mappable tensor ------------------------------
rule preprocess:
    input:
        index=LAYOUT.ingest_index("{dataset}"),
        pointer=dvc_pointer,
    output:
        directory(LAYOUT.preprocessed("{dataset}", "{preset}")),
    log:
        LAYOUT.log("preprocess", "{dataset}_{preset}"),
    benchmark:
        LAYOUT.benchmark("preprocess", "{dataset}_{preset}")
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
