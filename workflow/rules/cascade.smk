# Seed 002's cascade: the held-out mixed set and its modules' sets, then the cascade end to end


if cascade_study() is not None:
    _cascade_folders, _cascade_splits, _cascade_report = cascade_outputs()

    # Hold out every source's test side; give the modules the rest, minus anything that shares
    # a patient or a picture with a held-out image, across sources ---------------------------
    rule cascade_sets:
        input:
            unpack(cascade_inputs),
        output:
            **{k: directory(v) for k, v in _cascade_folders.items()},
            **_cascade_splits,
            report=_cascade_report,
        log:
            "logs/cascade_sets.log",
        benchmark:
            "logs/cascade_sets.benchmark.tsv"
        conda:
            "../envs/cxr.yaml"
        params:
            sources=cascade_source_args,
            preset=cascade_config()["preset"],
            fraction=cascade_config().get("chest_fraction", 0.1),
            seed=config["seed"],
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
            modules=cascade_modules(),
            chest_evaluation=f"results/evaluation/{cascade_study()}/{cascade_config()['modules'][2]}/split",
        output:
            summary=f"results/metrics/train/{cascade_study()}/end_to_end.json",
            folder=report(
                directory(f"results/evaluation/{cascade_study()}/end_to_end"),
                patterns=["{name}.{ext,png|md}"],
                caption="../report/cascade.rst",
                category=cascade_study(),
                subcategory="end to end",
                labels={"model": "cascade", "file": "{name}.{ext}"},
            ),
        log:
            f"logs/cascade_evaluate/{cascade_study()}.log",
        benchmark:
            f"logs/cascade_evaluate/{cascade_study()}.benchmark.tsv"
        conda:
            "../envs/cxr.yaml"
        message:
            "Running the cascade end to end on its held-out mixed set"
        shell:
            "cxr cascade-evaluate --heldout {input.heldout} --modules {input.modules}"
            " --chest-evaluation {input.chest_evaluation} --out {output.folder}"
            " --summary {output.summary} > {log} 2>&1"
