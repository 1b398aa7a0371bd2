# Ingest: Ego4D metadata, NLQ annotations, narrations and EgoClip rows into parquet tables,
# with every quirk of the real data counted in a validation report.


rule ingest_metadata:
    input:
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
        "{CLI} ingest-metadata --input {input.json} --videos {output.videos} --report {output.report} > {log} 2>&1"


rule ingest_nlq:
    input:
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
        "{CLI} ingest-nlq --input {input.json} --split {wildcards.split} --clips {output.clips}"
        " --queries {output.queries} --videos {output.videos} --report {output.report} > {log} 2>&1"


rule ingest_narrations:
    input:
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
        "{CLI} ingest-narrations --input {input.json} --videos {input.videos} --narrations {output.narrations}"
        " --summaries {output.summaries} --report {output.report} > {log} 2>&1"


if EGOCLIP:

    rule ingest_egoclip:
        input:
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
            "{CLI} ingest-egoclip --input {input.csv} --table {output.table} --report {output.report} > {log} 2>&1"


def ingest_reports():
    reports = ["results/data/reports/metadata.json", "results/data/reports/narrations.json"]
    reports += expand("results/data/reports/nlq_{split}.json", split=SPLITS)
    if EGOCLIP:
        reports.append("results/data/reports/egoclip.json")
    return reports


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
        "{CLI} validation-report --inputs {input.reports} --out {output} > {log} 2>&1"
