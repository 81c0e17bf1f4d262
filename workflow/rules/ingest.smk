# Read a dataset in its real on-disk layout into the uniform index ------------------------------
rule ingest:
    input:
        dataset_inputs,
    output:
        index=LAYOUT.ingest_index("{dataset}"),
        manifest=LAYOUT.ingest_manifest("{dataset}"),
        summary=LAYOUT.ingest_summary("{dataset}"),
    log:
        LAYOUT.log("ingest", "{dataset}"),
    benchmark:
        LAYOUT.benchmark("ingest", "{dataset}")
    priority: data_priority
    conda:
        "../envs/cxr.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb_of("ingest"),
        runtime=runtime_of("ingest"),
    params:
        root=dataset_root,
    message:
        "Ingesting {wildcards.dataset} from {params.root}"
    shell:
        "cxr ingest {wildcards.dataset} --root {params.root} --out {output.index}"
        " --summary {output.summary} > {log} 2>&1"
