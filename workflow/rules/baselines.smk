# Baseline predictors (uniform windows, a train prior): the chance floor every trained model must beat.


rule fit_prior:
    input:
        queries="results/data/nlq/train_queries.parquet",
        clips="results/data/nlq/train_clips.parquet",
        code=src_files("evaluation", "evaluation.baselines", "evaluation.predictions"),
    output:
        "results/baselines/prior.json",
    params:
        num_windows=config["baselines"]["num_windows"],
        grid=config["baselines"]["prior"]["grid"],
        iou_threshold=config["baselines"]["prior"]["iou_threshold"],
    log:
        "results/logs/fit_prior/fit_prior.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "exec python -m egonlq.cli fit-prior --queries {input.queries:q} --clips {input.clips:q} --num-windows {params.num_windows}"
        " --grid {params.grid} --iou-threshold {params.iou_threshold} --out {output:q} > {log:q} 2>&1"

rule predict_baseline:
    input:
        unpack(baseline_inputs),
    output:
        "results/predictions/{baseline}/{split}.json",
    params:
        num_windows=config["baselines"]["num_windows"],
        prior=lambda wc, input: f"--prior {shlex.quote(input.prior)}" if wc.baseline == "prior" else "",
    log:
        "results/logs/predict_baseline/{baseline}_{split}.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "exec python -m egonlq.cli predict-baseline --kind {wildcards.baseline} --queries {input.queries:q} --clips {input.clips:q}"
        " {params.prior} --num-windows {params.num_windows} --out {output:q} > {log:q} 2>&1"
