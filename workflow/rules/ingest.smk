# Read a dataset in its real on-disk layout into the uniform index ------------------------------
rule ingest:
    input:
        dataset_inputs,
    output:
        index="results/ingest/{dataset}/index.parquet",
        manifest="results/ingest/{dataset}/index.manifest.csv",
        summary="results/metrics/ingest/{dataset}.json",
    log:
        "logs/ingest/{dataset}.log",
    benchmark:
        "logs/ingest/{dataset}.benchmark.tsv"
    conda:
        "../envs/cxr.yaml"
    params:
        root=dataset_root,
    message:
        "Ingesting {wildcards.dataset} from {params.root}"
    shell:
        "cxr ingest {wildcards.dataset} --root {params.root} --out {output.index}"
        " --summary {output.summary} > {log} 2>&1"


# A figure of sample images per dataset with their labels and boxes -------------------------
rule gallery:
    input:
        indexes=expand("results/ingest/{dataset}/index.parquet", dataset=DATASETS),
    output:
        report(
            "results/figures/ingest_gallery.png",
            caption="../report/gallery.rst",
            category="Data",
            subcategory="ingestion",
            labels={"figure": "sample images of every dataset"},
        ),
    log:
        "logs/gallery.log",
    conda:
        "../envs/cxr.yaml"
    params:
        panels=gallery_panels,
    message:
        "Drawing sample images of every ingested dataset"
    shell:
        "cxr gallery {params.panels} --out {output} > {log} 2>&1"
