# Class activation maps of the test images, scored against the ground-truth boxes ------------
rule cam:
    input:
        unpack(cam_inputs),
    output:
        report(
            directory(LAYOUT.cam("{study}", "{stage}", "{column}")),
            patterns=["{name,cam_grid}.{ext,png}", "{name,localisation}.{ext,md|csv}"],
            caption="../report/cam.rst",
            category="{study}",
            subcategory="{stage}",
            labels={"model": "{column}", "file": "{name}.{ext}"},
        ),
    log:
        LAYOUT.log("cam", "{study}/{stage}/{column}"),
    benchmark:
        LAYOUT.benchmark("cam", "{study}/{stage}/{column}")
    conda:
        "../envs/cxr.yaml"
    # half the cores, so two jobs overlap: one's start-up and I/O (serial, seconds) run beside
    # the other's compute; Snakemake sets OMP_NUM_THREADS to it
    threads: half_the_cores()
    resources:
        gpu=1,
        mem_mb=mem_mb_of("cam"),
        runtime=runtime_of("cam"),
    params:
        args=cam_args,
    message:
        "Drawing the CAMs of {wildcards.study}/{wildcards.stage}/{wildcards.column}"
    shell:
        "cxr cam --model {input.model} --data {input.data} --split {input.split} {params.args}"
        " --out {output} > {log} 2>&1"


# Several stages' heatmaps side by side on the same test images (a study's compare_cams) -----
rule cam_compare:
    input:
        unpack(compare_inputs),
    output:
        report(
            LAYOUT.cam_compare("{study}", "{pair}", "{column}"),
            caption="../report/cam_compare.rst",
            category="{study}",
            subcategory="{pair}",
            labels={"model": "{column}", "file": "{pair}.png"},
        ),
    log:
        LAYOUT.log("cam_compare", "{study}/{pair}/{column}"),
    benchmark:
        LAYOUT.benchmark("cam_compare", "{study}/{pair}/{column}")
    conda:
        "../envs/cxr.yaml"
    threads: 1
    resources:
        gpu=1,
        mem_mb=mem_mb_of("cam_compare"),
        runtime=runtime_of("cam_compare"),
    params:
        args=compare_args,
    message:
        "Comparing the CAMs of {wildcards.study}/{wildcards.pair} on {wildcards.column}"
    shell:
        "cxr cam-compare {params.args} --data {input.data} --split {input.split}"
        " --split-column {wildcards.column} --out {output} > {log} 2>&1"
