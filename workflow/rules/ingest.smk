# Ingest: Ego4D metadata, NLQ annotations, narrations and EgoClip rows into parquet tables,
# with every quirk of the real data counted in a validation report.

import shlex

PREFLIGHT = "results/preflight/report.json"


rule ingest_metadata:
    input:
        preflight=ancient(PREFLIGHT),  # the download is checked first (only its existence counts)
        json=data_path(DATA["metadata"]),
        code=src_files("data", "data.metadata", "data.tables"),
    output:
        videos="results/data/videos.parquet",
        report="results/data/reports/metadata.json",
    log:
        "results/logs/ingest_metadata/ingest_metadata.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "exec python -m egonlq.cli ingest-metadata --input {input.json:q} --videos {output.videos:q} --report {output.report:q} > {log:q} 2>&1"


rule ingest_nlq:
    input:
        preflight=ancient(PREFLIGHT),  # the download is checked first (only its existence counts)
        json=lambda wc: nlq_json(wc.split),
        code=src_files("data", "data.annotations", "data.tables"),
    output:
        clips="results/data/nlq/{split}_clips.parquet",
        queries="results/data/nlq/{split}_queries.parquet",
        videos="results/data/nlq/{split}_videos.parquet",
        report="results/data/reports/nlq_{split}.json",
    log:
        "results/logs/ingest_nlq/{split}.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "exec python -m egonlq.cli ingest-nlq --input {input.json:q} --split {wildcards.split} --clips {output.clips:q}"
        " --queries {output.queries:q} --videos {output.videos:q} --report {output.report:q} > {log:q} 2>&1"


rule ingest_narrations:
    input:
        preflight=ancient(PREFLIGHT),  # the download is checked first (only its existence counts)
        json=data_path(DATA["narrations"]),
        videos=rules.ingest_metadata.output.videos,
        code=src_files("data", "data.narrations", "data.tables"),
    output:
        narrations="results/data/narrations.parquet",
        summaries="results/data/summaries.parquet",
        report="results/data/reports/narrations.json",
    log:
        "results/logs/ingest_narrations/ingest_narrations.log",
    benchmark:
        "results/benchmarks/ingest_narrations/ingest_narrations.tsv"
    resources:
        mem_mb=4000,
    conda:
        "../../envs/data.yaml"
    shell:
        "exec python -m egonlq.cli ingest-narrations --input {input.json:q} --videos {input.videos:q} --narrations {output.narrations:q}"
        " --summaries {output.summaries:q} --report {output.report:q} > {log:q} 2>&1"


if EGOCLIP:

    rule ingest_egoclip:
        input:
            preflight=ancient(PREFLIGHT),  # the download is checked first (only its existence counts)
            csv=EGOCLIP,
            code=src_files("data", "data.egoclip", "data.tables", "io"),
        output:
            table="results/data/egoclip.parquet",
            report="results/data/reports/egoclip.json",
        log:
            "results/logs/ingest_egoclip/ingest_egoclip.log",
        conda:
            "../../envs/data.yaml"
        shell:
            "exec python -m egonlq.cli ingest-egoclip --input {input.csv:q} --table {output.table:q} --report {output.report:q} > {log:q} 2>&1"

rule validation_report:
    input:
        reports=ingest_reports(),
        code=src_files("data", "io"),
    output:
        report(
            "results/data/validation_report.json",
            caption="../report/validation.rst",
            category="1. Data",
        ),
    log:
        "results/logs/validation_report/validation_report.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "exec python -m egonlq.cli validation-report --inputs {input.reports:q} --out {output:q} > {log:q} 2>&1"

# `snakemake preflight`: is the download complete, and which release is it? (paths are params, not inputs:
# a missing file is reported with all the others instead of stopping the plan)
rule preflight:
    input:
        world=["results/demo/stats.json"] if IS_DEMO else [],
        code=src_files("data", "data.preflight"),
    output:
        json=PREFLIGHT,
        markdown="results/preflight/report.md",
    params:
        args=lambda wc: preflight_args(),
        demo="--demo" if IS_DEMO else "",
    log:
        "results/logs/preflight/preflight.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "exec python -m egonlq.cli preflight {params.args} {params.demo} --json {output.json:q} --markdown {output.markdown:q} > {log:q} 2>&1"
