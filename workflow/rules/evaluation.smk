# Evaluation: the official Recall@k at IoU thresholds (compatible with the official script) and strict mode.


rule evaluate:
    input:
        gt=lambda wc: gt_json(wc.split),
        predictions="results/predictions/{predictor}/{split}.json",
        queries="results/data/nlq/{split}_queries.parquet",
        preflight=ancient(PREFLIGHT),  # its data fingerprint is recorded; only its existence counts
        code=src_files("evaluation", "evaluation.metric", "evaluation.predictions", "data.tables",
                       "data.provenance"),
    output:
        "results/eval/{predictor}/{split}.json",
    params:
        thresholds=" ".join(str(t) for t in config["evaluation"]["thresholds"]),
        ks=" ".join(str(k) for k in config["evaluation"]["ks"]),
        exclude=" ".join(config["evaluation"]["strict_exclude"]),
        provenance=json.dumps({"evaluation": config["evaluation"]}, sort_keys=True),
    log:
        "results/logs/evaluate/{predictor}_{split}.log",
    benchmark:
        "results/benchmarks/evaluate/{predictor}_{split}.tsv"
    conda:
        "../../envs/eval.yaml"
    shell:
        "exec python -m egonlq.cli evaluate --gt {input.gt:q} --predictions {input.predictions:q} --queries {input.queries:q}"
        " --predictor {wildcards.predictor} --split {wildcards.split} --thresholds {params.thresholds}"
        " --ks {params.ks} --exclude {params.exclude} --out {output:q}"
        " --provenance {params.provenance:q} --preflight {input.preflight:q} > {log:q} 2>&1"


rule metrics_table:
    input:
        metrics=expand("results/eval/{predictor}/{split}.json", predictor=predictor_names(), split=EVAL_SPLITS),
        preflight=ancient(PREFLIGHT),
        code=src_files("evaluation", "evaluation.metric", "data.provenance"),
    output:
        parquet="results/eval/metrics.parquet",
        markdown=report("results/eval/metrics.md", caption="../report/metrics.rst", category="2. Metrics"),
    params:
        provenance=json.dumps({"evaluation": config["evaluation"]}, sort_keys=True),
    log:
        "results/logs/metrics_table/metrics_table.log",
    conda:
        "../../envs/eval.yaml"
    shell:
        "exec python -m egonlq.cli metrics-table --inputs {input.metrics:q} --parquet {output.parquet:q}"
        " --markdown {output.markdown:q} --provenance {params.provenance:q} --preflight {input.preflight:q}"
        " > {log:q} 2>&1"
