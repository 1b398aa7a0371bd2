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
        "{EXEC_CLI} fit-prior --queries {input.queries} --clips {input.clips} --num-windows {params.num_windows}"
        " --grid {params.grid} --iou-threshold {params.iou_threshold} --out {output} > {log} 2>&1"


def baseline_inputs(wc):
    inputs = {
        "queries": f"results/data/nlq/{wc.split}_queries.parquet",
        "clips": f"results/data/nlq/{wc.split}_clips.parquet",
        "code": src_files("evaluation", "evaluation.baselines", "evaluation.predictions"),
    }
    if wc.baseline == "prior":
        inputs["prior"] = "results/baselines/prior.json"
    return inputs


rule predict_baseline:
    input:
        unpack(baseline_inputs),
    output:
        "results/predictions/{baseline}/{split}.json",
    params:
        num_windows=config["baselines"]["num_windows"],
        prior=lambda wc, input: f"--prior {input.prior}" if wc.baseline == "prior" else "",
    log:
        "results/logs/predict_baseline/{baseline}_{split}.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "{EXEC_CLI} predict-baseline --kind {wildcards.baseline} --queries {input.queries} --clips {input.clips}"
        " {params.prior} --num-windows {params.num_windows} --out {output} > {log} 2>&1"
