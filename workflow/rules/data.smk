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
    priority: data_priority
    conda:
        "../envs/cxr.yaml"
    # half the cores, as training: a data job never waits for every core to be free while
    # a training job runs
    threads: half_the_cores()
    resources:
        mem_mb=mem_mb_of("preprocess"),
        runtime=runtime_of("preprocess"),
    params:
        preset=preset_json,
        root=dataset_root,
    message:
        "Preprocessing {wildcards.dataset} with preset {wildcards.preset}"
    shell:
        "cxr preprocess --index {input.index} --root {params.root}"
        " --preset-json {params.preset:q} --out {output} --workers {threads} > {log} 2>&1"


# A figure of sample images per dataset with their labels and boxes -------------------------
rule gallery:
    input:
        indexes=expand(LAYOUT.ingest_index("{dataset}"), dataset=DATASETS),
    output:
        report(
            LAYOUT.gallery(),
            caption="../report/gallery.rst",
            category="Data",
            subcategory="ingestion",
            labels={"figure": "sample images of every dataset"},
        ),
    log:
        LAYOUT.log("gallery"),
    conda:
        "../envs/cxr.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb_of("gallery"),
        runtime=runtime_of("gallery"),
    params:
        panels=JOBS.gallery_panels(),
    message:
        "Drawing sample images of every ingested dataset"
    shell:
        "cxr gallery {params.panels} --out {output} > {log} 2>&1"
