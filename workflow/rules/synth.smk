# Generate the embedded, format-faithful miniature of a dataset ---------------------------------
rule synth:
    output:
        directory("data/synthetic/{dataset}"),
    log:
        "logs/synth/{dataset}.log",
    benchmark:
        "logs/synth/{dataset}.benchmark.tsv"
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
