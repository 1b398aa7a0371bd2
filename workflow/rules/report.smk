# The report: the headline tables rendered as HTML pages, shown inside `snakemake --report` (the markdown and
# parquet files stay the machine-readable outputs of their stages).

# table -> (source written by its stage, title); only the tables the default run produces
REPORT_TABLES = {
    "validation": ("results/data/validation_report.json", "Validation report: quirks in the inputs"),
    "metrics": ("results/eval/metrics.md", "NLQ metrics of every predictor (official and strict modes)"),
    **({"experiments": ("results/experiments/table.md", "VSLNet experiments over seeds")} if RUNS else {}),
    **(
        {"moment_hits": ("results/keyframes/moment_hits.md", "Keyframes: moments hit by the selected frames")}
        if keyframe_targets()
        else {}
    ),
}


rule report_table:
    input:
        source=lambda wc: REPORT_TABLES[wc.table][0],
        code=src_files("report", "report"),
    output:
        report("results/report/{table}.html", caption="../report/tables.rst", category="0. Headline tables",
               labels=lambda wc: {"table": REPORT_TABLES[wc.table][1]}),
    params:
        title=lambda wc: REPORT_TABLES[wc.table][1],
    log:
        "results/logs/report_table/{table}.log",
    localrule: True
    conda:
        "../../envs/eval.yaml"
    shell:
        "exec python -m egonlq.cli report-table --source {input.source:q} --title {params.title:q}"
        " --out {output:q} > {log:q} 2>&1"
