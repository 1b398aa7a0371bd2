# VSLNet: frozen-encoder text embeddings, the two-stage recipe (pretrain on synthetic queries, fine-tune on
# NLQ train), predictions in the challenge format, and the experiment table over runs x seeds.


rule text_embeddings:
    input:
        training="results/queries/training_queries.parquet",
        queries=expand("results/data/nlq/{split}_queries.parquet", split=["val", "test"]),
        code=src_files("grounding", "grounding.text_encoder"),
    output:
        cache=TEXT_CACHE,
        stats=f"results/text/{TEXT_TAG}/stats.json",
    params:
        model=TEXT_ENCODER,
        max_len=VCFG["model"]["max_pos_len"],
    log:
        f"results/logs/text_embeddings/{TEXT_TAG}.log",
    benchmark:
        f"results/benchmarks/text_embeddings/{TEXT_TAG}.tsv"
    resources:
        mem_mb=4000,
    conda:
        "../../envs/vslnet.yaml"
    shell:
        "exec python -m egonlq.cli text-cache --tables {input.training:q} {input.queries:q} --model {params.model:q}"
        " --max-len {params.max_len} --out {output.cache:q} --stats {output.stats:q} > {log:q} 2>&1"

rule train_vslnet:
    input:
        unpack(train_inputs),
    output:
        model=f"{run_dir('{run}', '{seed}')}/model.safetensors",
        config=f"{run_dir('{run}', '{seed}')}/config.json",
        metrics=f"{run_dir('{run}', '{seed}')}/metrics.csv",
        summary=f"{run_dir('{run}', '{seed}')}/summary.json",
    params:
        # Everything that affects the run's results; the resumable state (last.pt) is not an output.
        device=DEVICE,
        compat=VCFG["compat"],
        spec=lambda wc: json.dumps(RUNS[wc.run].train_spec_dict(int(wc.seed)) | {"text": VCFG["text"]},
                                   sort_keys=True),
        out_dir=lambda wc: run_dir(wc.run, wc.seed),
        text_model=TEXT_ENCODER,
        video_dim=FEATURE_DIM,
        init=lambda wc, input: f"--init-from {shlex.quote(str(Path(input.init).parent))}" if "init" in input.keys() else "",
        text_cache=lambda wc, input: f"--text-cache {shlex.quote(input.text_cache)}" if "text_cache" in input.keys() else "",
        # the resolved settings beside the spec and the data fingerprint, recorded in the run's train_spec.json
        provenance=TRAIN_PROVENANCE,
        preflight=lambda wc, input: f"--preflight {shlex.quote(input.preflight)}" if "preflight" in input.keys() else "",
    log:
        "results/logs/train_vslnet/{run}_seed{seed}.log",
    benchmark:
        "results/benchmarks/train_vslnet/{run}_seed{seed}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=GPU_REQUEST,
    conda:
        "../../envs/vslnet.yaml"
    shell:
        "exec python -m egonlq.cli train --device {params.device:q} --compat {params.compat} --spec {params.spec:q} --video-dim {params.video_dim} --train-queries {input.train_queries:q}"
        " --train-clips {input.train_clips:q} --train-features {input.train_features:q}"
        " --val-queries {input.val_queries:q} --val-clips {input.val_clips:q} --val-features {input.val_features:q}"
        " --val-gt {input.val_gt:q} {params.text_cache} --text-model {params.text_model:q} {params.init}"
        " --provenance {params.provenance:q} {params.preflight} --threads {threads} --out-dir {params.out_dir:q}"
        " > {log:q} 2>&1"

rule predict_vslnet:
    input:
        unpack(predict_inputs),
    output:
        "results/predictions/vslnet_{run}_seed{seed}/{split}.json",
    params:
        model_dir=lambda wc, input: Path(input.model).parent,
        text_model=TEXT_ENCODER,
        label_mode=lambda wc: RUNS[wc.run].label_mode,  # the run's own (a zeroshot run's: its init's)
        compat=VCFG["compat"],
        text_cache=lambda wc, input: f"--text-cache {shlex.quote(input.text_cache)}" if "text_cache" in input.keys() else "",
    log:
        "results/logs/predict_vslnet/{run}_seed{seed}_{split}.log",
    threads: 1
    conda:
        "../../envs/vslnet.yaml"
    shell:
        "exec python -m egonlq.cli predict --model-dir {params.model_dir:q} --queries {input.queries:q} --clips {input.clips:q}"
        " --features {input.features:q} {params.text_cache} --text-model {params.text_model:q}"
        " --label-mode {params.label_mode:q} --compat {params.compat} --threads {threads} --out {output:q} > {log:q} 2>&1"


rule experiment_table:
    input:
        metrics=expand("results/eval/{predictor}/{split}.json", predictor=predictor_names(), split=EVAL_SPLITS),
        curves=[f"{run_dir(r, s)}/metrics.csv" for r, spec in RUNS.items() if spec.trains for s in SEEDS],
        preflight=ancient(PREFLIGHT),  # its data fingerprint is recorded; only its existence counts
        code=src_files("grounding", "grounding.experiment_table", "grounding.plots"),
    output:
        parquet="results/experiments/table.parquet",
        markdown=report("results/experiments/table.md", caption="../report/experiments.rst",
                        category="3. Experiments"),
        curves=report("results/experiments/training_curves.png", caption="../report/curves.rst",
                      category="3. Experiments"),
        recall=report("results/experiments/recall_by_run.png", caption="../report/recall.rst",
                      category="3. Experiments"),
    params:
        synthetic="--synthetic" if IS_DEMO else "",
        vslnet=json.dumps({k: VCFG[k] for k in ("label_mode", "model", "train")}, sort_keys=True),
        experiments=json.dumps(config["experiments"], sort_keys=True),
        sources=",".join(sorted(RUN_SOURCES)),
        provenance=json.dumps({"vslnet": VCFG, "experiments": config["experiments"]}, sort_keys=True),
    log:
        "results/logs/experiment_table/experiment_table.log",
    conda:
        "../../envs/vslnet.yaml"
    shell:
        "exec python -m egonlq.cli experiment-table --metrics {input.metrics:q} --curves {input.curves:q} --vslnet {params.vslnet:q}"
        " --experiments {params.experiments:q} --sources {params.sources:q} {params.synthetic}"
        " --parquet {output.parquet:q} --markdown {output.markdown:q} --curves-png {output.curves:q}"
        " --recall-png {output.recall:q} --provenance {params.provenance:q} --preflight {input.preflight:q}"
        " > {log:q} 2>&1"
