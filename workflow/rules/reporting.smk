# One Markdown report of every trained study: tables beside the papers' numbers, captions ----
rule report:
    input:
        evaluation=PLAN.evaluation_targets(),
        train_metrics=PLAN.train_metric_targets(),
        cascade=PLAN.cascade_targets(),
    output:
        markdown=LAYOUT.report(),
        html=report(
            LAYOUT.report_html(),
            caption="../report/report.rst",
            category="Summary",
            labels={"file": "report (every study)"},
        ),
    log:
        LAYOUT.log("report"),
    conda:
        "../envs/cxr.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb_of("report"),
        runtime=runtime_of("report"),
    params:
        sources=JOBS.report_sources_json(),
        studies=JOBS.report_studies_json(),
        headlines=JOBS.report_headlines_json(),
        skipped=JOBS.report_skipped_json(),
        scale=PLAN.scale,
    message:
        "Writing the report of every trained study"
    shell:
        "cxr report --results results --logs logs --sources-json {params.sources:q}"
        " --studies-json {params.studies:q} --headlines-json {params.headlines:q}"
        " --skipped-json {params.skipped:q}"
        " --scale {params.scale}"
        " --out {output.markdown} --html {output.html} > {log} 2>&1"
