# Generate the embedded, format-faithful miniature of a dataset ---------------------------------
rule synth:
    output:
        directory(LAYOUT.synthetic("{dataset}")),
    log:
        LAYOUT.log("synth", "{dataset}"),
    benchmark:
        LAYOUT.benchmark("synth", "{dataset}")
    conda:
        "../envs/cxr.yaml"
    threads: workflow.cores
    params:
        args=synth_args,
    message:
        "Generating the synthetic {wildcards.dataset} miniature"
    shell:
        "CXR_WORKERS={threads} cxr synth {wildcards.dataset} --out {output} {params.args}"
        " > {log} 2>&1"
