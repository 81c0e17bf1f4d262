# Generate the embedded, format-faithful miniature of a dataset ---------------------------------
rule synth:
    output:
        directory(LAYOUT.synthetic("{dataset}")),
    log:
        LAYOUT.log("synth", "{dataset}"),
    benchmark:
        LAYOUT.benchmark("synth", "{dataset}")
    priority: data_priority
    conda:
        "../envs/cxr.yaml"
    # half the cores, as training: a data job never waits for every core to be free while
    # a training job runs
    threads: half_the_cores()
    resources:
        mem_mb=mem_mb_of("synth"),
        runtime=runtime_of("synth"),
    params:
        args=synth_args,
    message:
        "Generating the synthetic {wildcards.dataset} miniature"
    shell:
        "CXR_WORKERS={threads} cxr synth {wildcards.dataset} --out {output} {params.args}"
        " > {log} 2>&1"
