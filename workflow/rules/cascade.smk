# Seed 002's cascade: the held-out mixed set and its modules' sets, then the cascade end to end


if CASCADE is not None:
    _cascade_folders, _cascade_splits, _cascade_report = JOBS.cascade_outputs()

    # Hold out every source's test side; give the modules the rest, minus anything that shares
    # a patient or a picture with a held-out image, across sources ---------------------------
    rule cascade_sets:
        input:
            **JOBS.cascade_inputs(),
        output:
            **{k: directory(v) for k, v in _cascade_folders.items()},
            **_cascade_splits,
            report=_cascade_report,
        log:
            LAYOUT.log("cascade_sets"),
        benchmark:
            LAYOUT.benchmark("cascade_sets")
        priority: JOBS.data_priority()
        conda:
            "../envs/cxr.yaml"
        threads: 1
        resources:
            mem_mb=mem_mb_of("cascade_sets"),
            runtime=runtime_of("cascade_sets"),
        params:
            sources=JOBS.cascade_source_args(),
            preset=CASCADE.preset,
            fraction=CASCADE.chest_fraction,
            seed=PLAN.seed,
        message:
            "Holding out a mixed test set and building the cascade modules' data"
        shell:
            "cxr cascade-sets {params.sources} --preset {params.preset}"
            " --chest-fraction {params.fraction} --seed {params.seed} --out-root results"
            " > {log} 2>&1"

    # The three modules in a row on the held-out mixed set ------------------------------------
    rule cascade_evaluate:
        input:
            heldout=_cascade_folders["heldout"],
            modules=JOBS.cascade_modules(),
            chest_evaluation=JOBS.cascade_chest_evaluation(),
        output:
            summary=LAYOUT.cascade_summary(CASCADE.study),
            folder=report(
                directory(LAYOUT.cascade_evaluation(CASCADE.study)),
                patterns=["{name}.{ext,png|md}"],
                caption="../report/cascade.rst",
                category=CASCADE.study,
                subcategory="end to end",
                labels={"model": "cascade", "file": "{name}.{ext}"},
            ),
        log:
            LAYOUT.log("cascade_evaluate", CASCADE.study),
        benchmark:
            LAYOUT.benchmark("cascade_evaluate", CASCADE.study)
        conda:
            "../envs/cxr.yaml"
        threads: 1
        resources:
            mem_mb=mem_mb_of("cascade_evaluate"),
            runtime=runtime_of("cascade_evaluate"),
        message:
            "Running the cascade end to end on its held-out mixed set"
        shell:
            "cxr cascade-evaluate --heldout {input.heldout} --modules {input.modules}"
            " --chest-evaluation {input.chest_evaluation} --out {output.folder}"
            " --summary {output.summary} > {log} 2>&1"
