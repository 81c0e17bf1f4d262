# One Markdown report of every trained study: tables beside the papers' numbers, captions ----
rule report:
    input:
        evaluation=evaluation_targets(),
        train_metrics=train_metric_targets(),
        cascade=cascade_targets(),
    output:
        markdown="results/report.md",
        html=report(
            "results/report.html",
            caption="../report/report.rst",
            category="Summary",
            labels={"file": "report (every study)"},
        ),
    log:
        "logs/report.log",
    conda:
        "../envs/cxr.yaml"
    params:
        sources=report_sources(),
        studies=report_studies(),
        scale=SCALE,
    message:
        "Writing the report of every trained study"
    shell:
        "cxr report --results results --logs logs --sources-json {params.sources:q}"
        " --studies-json {params.studies:q} --scale {params.scale}"
        " --out {output.markdown} --html {output.html} > {log} 2>&1"
